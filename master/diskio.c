/*
 * diskio.c - windowed file reader, numbered file names, directory fsync
 * (see mst_diskio.h).
 */
#include "mst_diskio.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RD_WINDOW (1u << 20)

int mst__rd_init(mst__rd *r, int fd) {
  struct stat st;
  memset(r, 0, sizeof *r);
  r->fd = fd;
  if (fstat(fd, &st) != 0) return CAIRN_EIO;
  r->size = (uint64_t)st.st_size;
  return 0;
}

/*
 * Serve [off, off + n) from the buffer when it is there; otherwise refill the
 * buffer starting at `off` with as much as the window (or the request, if
 * larger) holds. A short pread before the end of the file is retried: only
 * the recorded file size decides what "past the end" means.
 */
int mst__rd_get(mst__rd *r, uint64_t off, size_t n, const unsigned char **p) {
  if (off > r->size || n > r->size - off) return 1;
  if (off >= r->buf_off && off + n <= r->buf_off + r->buf_len) {
    *p = r->buf + (off - r->buf_off);
    return 0;
  }
  size_t want = CMN_MAX(n, (size_t)RD_WINDOW);
  if (want > r->size - off) want = (size_t)(r->size - off);
  if (want > r->cap) {
    r->buf = cmn_realloc(r->buf, want);
    r->cap = want;
  }
  size_t got = 0;
  while (got < want) {
    ssize_t k = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));
    if (k < 0) {
      if (errno == EINTR) continue;
      r->buf_len = 0;
      return CAIRN_EIO;
    }
    if (k == 0) break; /* file shrank under us: treat as end */
    got += (size_t)k;
  }
  r->buf_off = off;
  r->buf_len = got;
  if (got < n) return 1;
  *p = r->buf;
  return 0;
}

void mst__rd_free(mst__rd *r) {
  free(r->buf);
  r->buf = NULL;
  r->cap = r->buf_len = 0;
}

int mst__parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *num) {
  size_t pl = strlen(prefix), sl = strlen(suffix);
  if (strlen(name) != pl + 1 + 16 + sl) return 0;
  if (memcmp(name, prefix, pl) != 0 || name[pl] != '.') return 0;
  if (memcmp(name + pl + 17, suffix, sl) != 0) return 0;
  uint64_t v = 0;
  for (size_t i = 0; i < 16; i++) {
    char c = name[pl + 1 + i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return 0;
    v = v << 4 | (uint64_t)d;
  }
  *num = v;
  return 1;
}

int mst__fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return CAIRN_EIO;
  int rc = fsync(fd) == 0 ? 0 : CAIRN_EIO;
  close(fd);
  return rc;
}
