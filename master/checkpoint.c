/*
 * checkpoint.c - writing, validating, loading and pruning checkpoint files
 * (format in mst_checkpoint.h).
 *
 * The writer is deliberately plain -- a buffer, write(2), fsync, rename --
 * because it runs in a forked child of the multi-threaded master. The loader
 * makes two passes over a candidate: the first validates everything, the
 * second delivers records, so a damaged checkpoint is skipped before the
 * caller has built anything from it.
 */
#include "mst_checkpoint.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_diskio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "checkpoint"
#define CKPT_MAGIC "CAIRNCKP"
#define CKPT_VERSION 1u
#define CKPT_PREFIX "checkpoint"
#define CKPT_HDR 32u
#define CKPT_TRAILER 32u
#define CKPT_FRAME 8u
#define CKPT_END 0xFFFFFFFFu
#define WBUF_SIZE (1u << 20)

struct mst_ckpt_writer {
  char *dir, *tmp, *path;
  int fd;
  uint64_t lsn, records;
  uint32_t crc; /* over every byte put so far */
  unsigned char *buf;
  size_t len;
  int err; /* first write error; the writer is failed once set */
};

/* ---- writer ---- */

static int wflush(mst_ckpt_writer *w) {
  if (w->len == 0) return 0;
  int rc = cmn_write_all(w->fd, w->buf, w->len);
  w->len = 0;
  return rc;
}

/* Buffer bytes (extending the running CRC); pieces larger than the buffer
 * go straight to the file after what is buffered. */
static int wput(mst_ckpt_writer *w, const void *p, size_t n) {
  int rc;
  w->crc = cmn_crc32c(w->crc, p, n);
  if (n > WBUF_SIZE - w->len && (rc = wflush(w)) != 0) return rc;
  if (n >= WBUF_SIZE) return cmn_write_all(w->fd, p, n);
  memcpy(w->buf + w->len, p, n);
  w->len += n;
  return 0;
}

static void writer_free(mst_ckpt_writer *w) {
  if (w->fd >= 0) close(w->fd);
  free(w->buf);
  free(w->dir);
  free(w->tmp);
  free(w->path);
  free(w);
}

int mst_ckpt_writer_open(const char *dir, uint64_t lsn, mst_ckpt_writer **out) {
  if (!dir || !*dir || !out) return CAIRN_EINVAL;
  mst_ckpt_writer *w = cmn_calloc(1, sizeof *w);
  int rc = 0;
  w->dir = cmn_strdup(dir);
  w->path = cmn_sprintf("%s/" CKPT_PREFIX ".%016" PRIx64, dir, lsn);
  w->tmp = cmn_sprintf("%s.tmp", w->path);
  w->lsn = lsn;
  w->buf = cmn_malloc(WBUF_SIZE);
  w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    rc = cmn_errno_to_cairn(errno);
    CMN_ERROR(MOD, "cannot create file=%s errno=\"%s\"", w->tmp, strerror(errno));
    goto fail;
  }
  unsigned char hdr[CKPT_HDR] = {0};
  memcpy(hdr, CKPT_MAGIC, 8);
  mst__put_le32(hdr + 8, CKPT_VERSION);
  mst__put_le64(hdr + 16, lsn);
  mst__put_le32(hdr + 24, cmn_crc32c(0, hdr, 24));
  if ((rc = wput(w, hdr, sizeof hdr)) != 0) goto fail;
  *out = w;
  return 0;
fail:
  if (w->fd >= 0) unlink(w->tmp);
  writer_free(w);
  return rc;
}

int mst_ckpt_write(mst_ckpt_writer *w, const void *data, size_t len) {
  if (!w || (!data && len > 0)) return CAIRN_EINVAL;
  if (w->err) return w->err;
  if (len > MST_CKPT_MAX_RECORD) return CAIRN_ETOOBIG;
  unsigned char fr[CKPT_FRAME];
  mst__put_le32(fr, (uint32_t)len);
  mst__put_le32(fr + 4, cmn_crc32c(0, data, len));
  int rc = wput(w, fr, sizeof fr);
  if (rc == 0 && len > 0) rc = wput(w, data, len);
  if (rc != 0) {
    CMN_ERROR(MOD, "write failed file=%s err=%s", w->tmp, cairn_err_name(rc));
    w->err = rc;
    return rc;
  }
  w->records++;
  return 0;
}

/*
 * Seal the file: trailer (record count, LSN, CRC of everything before it),
 * flush, fsync, close, rename, directory fsync. Only after the directory
 * fsync is the checkpoint durable under its final name.
 */
int mst_ckpt_commit(mst_ckpt_writer *w) {
  if (!w) return CAIRN_EINVAL;
  int renamed = 0;
  int rc = w->err;
  if (rc != 0) goto fail;
  unsigned char tr[CKPT_TRAILER] = {0};
  mst__put_le32(tr, CKPT_END);
  mst__put_le64(tr + 8, w->records);
  mst__put_le64(tr + 16, w->lsn);
  mst__put_le32(tr + 24, w->crc);
  mst__put_le32(tr + 28, cmn_crc32c(0, tr, 28));
  if ((rc = wput(w, tr, sizeof tr)) != 0 || (rc = wflush(w)) != 0) goto fail;
  if (fsync(w->fd) != 0) {
    rc = CAIRN_EIO;
    goto fail;
  }
  int fd = w->fd;
  w->fd = -1;
  if (close(fd) != 0) {
    rc = CAIRN_EIO;
    goto fail;
  }
  if (rename(w->tmp, w->path) != 0) {
    rc = cmn_errno_to_cairn(errno);
    goto fail;
  }
  /* From here the file under its final name is whole: if the directory
   * fsync fails it is kept, and a later load finds it complete or not at all. */
  renamed = 1;
  if ((rc = mst__fsync_dir(w->dir)) != 0) goto fail;
  CMN_INFO(MOD, "written file=%s lsn=%" PRIu64 " records=%" PRIu64, w->path, w->lsn, w->records);
  writer_free(w);
  return 0;
fail:
  CMN_ERROR(MOD, "commit failed file=%s err=%s errno=\"%s\"", renamed ? w->path : w->tmp,
            cairn_err_name(rc), strerror(errno));
  if (!renamed) unlink(w->tmp);
  writer_free(w);
  return rc;
}

void mst_ckpt_abort(mst_ckpt_writer *w) {
  if (!w) return;
  unlink(w->tmp);
  writer_free(w);
}

/* ---- directory listing ---- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Committed checkpoint LSNs, ascending; with `clean_tmp`, leftover temp
 * files are removed on the way (directory fsynced if any were). */
static int list_dir(const char *dir, int clean_tmp, uint64_t **lsns, size_t *count) {
  uint64_t *v = NULL;
  size_t n = 0, cap = 0;
  int removed = 0;
  DIR *d = opendir(dir);
  if (!d) {
    int rc = errno == ENOENT ? CAIRN_ENOENT : cmn_errno_to_cairn(errno);
    CMN_ERROR(MOD, "cannot open directory dir=%s errno=\"%s\"", dir, strerror(errno));
    return rc;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    uint64_t lsn;
    if (clean_tmp && mst__parse_name(de->d_name, CKPT_PREFIX, ".tmp", &lsn)) {
      char *p = cmn_sprintf("%s/%s", dir, de->d_name);
      if (unlink(p) == 0) removed++;
      CMN_WARN(MOD, "removed leftover temp file=%s", p);
      free(p);
    } else if (mst__parse_name(de->d_name, CKPT_PREFIX, "", &lsn)) {
      if (n == cap) {
        cap = cap ? cap * 2 : 8;
        v = cmn_realloc(v, cap * sizeof *v);
      }
      v[n++] = lsn;
    }
  }
  closedir(d);
  if (n > 0) qsort(v, n, sizeof *v, cmp_u64);
  *lsns = v;
  *count = n;
  return removed > 0 ? mst__fsync_dir(dir) : 0;
}

int mst_ckpt_list(const char *dir, uint64_t **lsns, size_t *n) {
  if (!dir || !lsns || !n) return CAIRN_EINVAL;
  *lsns = NULL;
  *n = 0;
  return list_dir(dir, 0, lsns, n);
}

int mst_ckpt_prune(const char *dir, unsigned keep, uint64_t *oldest_kept) {
  if (!dir || keep == 0) return CAIRN_EINVAL;
  uint64_t *v = NULL;
  size_t n = 0;
  int rc = list_dir(dir, 0, &v, &n);
  if (rc != 0) goto fail;
  size_t drop = n > keep ? n - keep : 0;
  for (size_t i = 0; i < drop; i++) {
    char *p = cmn_sprintf("%s/" CKPT_PREFIX ".%016" PRIx64, dir, v[i]);
    if (unlink(p) != 0 && errno != ENOENT) {
      CMN_ERROR(MOD, "cannot remove file=%s errno=\"%s\"", p, strerror(errno));
      rc = CAIRN_EIO;
    } else {
      CMN_INFO(MOD, "removed old checkpoint file=%s", p);
    }
    free(p);
  }
  if (oldest_kept) *oldest_kept = n > drop ? v[drop] : 0;
  if (drop > 0 && rc == 0) rc = mst__fsync_dir(dir);
  if (rc == 0) rc = (int)drop;
fail:
  free(v);
  return rc;
}

/* ---- loader ---- */

/* Where and why a candidate failed validation. */
typedef struct finding {
  uint64_t off;
  const char *why;
} finding;

/*
 * Check one checkpoint file completely; with `cb`, also deliver its records.
 * Returns 0, CAIRN_ECORRUPT with *f set, CAIRN_EIO, or cb's code.
 */
static int walk(const char *path, uint64_t lsn, mst_ckpt_record_fn cb, void *arg, finding *f) {
  mst__rd rd;
  const unsigned char *p;
  int rc = 0;
  uint64_t off = CKPT_HDR, count = 0;
  uint32_t crc = 0;
  memset(&rd, 0, sizeof rd);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = cmn_errno_to_cairn(errno);
    goto fail;
  }
  if ((rc = mst__rd_init(&rd, fd)) != 0) goto fail;
/* Report damage at offset o and stop. */
#define BAD(o, w)        \
  do {                   \
    f->off = (o);        \
    f->why = (w);        \
    rc = CAIRN_ECORRUPT; \
    goto fail;           \
  } while (0)
/* Point p at [o, o + n): an I/O error stops the walk, a short file is damage. */
#define GET(o, n)                                 \
  do {                                            \
    int r_ = mst__rd_get(&rd, (o), (n), &p);      \
    if (r_ < 0) {                                 \
      rc = r_;                                    \
      goto fail;                                  \
    }                                             \
    if (r_ > 0) BAD((o), "file ends inside a structure"); \
  } while (0)
  if (rd.size < CKPT_HDR + CKPT_TRAILER) BAD(0, "file too short for header and trailer");
  uint64_t end = rd.size - CKPT_TRAILER;
  GET(0, CKPT_HDR);
  if (memcmp(p, CKPT_MAGIC, 8) != 0) BAD(0, "bad magic");
  if (mst__get_le32(p + 24) != cmn_crc32c(0, p, 24)) BAD(24, "header checksum mismatch");
  if (mst__get_le32(p + 8) != CKPT_VERSION) BAD(8, "unsupported format version");
  if (mst__get_le64(p + 16) != lsn) BAD(16, "header lsn does not match the file name");
  crc = cmn_crc32c(crc, p, CKPT_HDR);
  GET(end, CKPT_TRAILER);
  if (mst__get_le32(p) != CKPT_END || mst__get_le32(p + 28) != cmn_crc32c(0, p, 28))
    BAD(end, "missing or damaged trailer (incomplete file?)");
  uint64_t want_count = mst__get_le64(p + 8);
  uint32_t want_crc = mst__get_le32(p + 24);
  if (mst__get_le64(p + 16) != lsn) BAD(end + 16, "trailer lsn does not match the file name");
  while (off < end) {
    if (end - off < CKPT_FRAME) BAD(off, "partial record header");
    GET(off, CKPT_FRAME);
    uint32_t len = mst__get_le32(p), rcrc = mst__get_le32(p + 4);
    if (len > MST_CKPT_MAX_RECORD || len > end - off - CKPT_FRAME)
      BAD(off, "record length out of bounds");
    GET(off, CKPT_FRAME + (size_t)len);
    if (cmn_crc32c(0, p + CKPT_FRAME, len) != rcrc) BAD(off, "record checksum mismatch");
    crc = cmn_crc32c(crc, p, CKPT_FRAME + (size_t)len);
    if (cb && (rc = cb(arg, p + CKPT_FRAME, len)) != 0) goto fail;
    count++;
    off += CKPT_FRAME + (uint64_t)len;
  }
  if (count != want_count) BAD(end, "record count does not match the trailer");
  if (crc != want_crc) BAD(end, "file checksum does not match the trailer");
#undef GET
#undef BAD
fail:
  mst__rd_free(&rd);
  if (fd >= 0) close(fd);
  return rc;
}

/*
 * Newest first: validate, and on success stream the records. A candidate
 * that fails validation is logged and the next older one tried; if every
 * candidate fails, the finding for the newest is reported -- never a silent
 * fresh start while checkpoint files exist.
 */
int mst_ckpt_load_newest(const char *dir, mst_ckpt_record_fn cb, void *arg, uint64_t *lsn,
                         char *err, size_t errlen) {
  if (err && errlen > 0) err[0] = '\0';
  if (!dir || !*dir || !lsn) return CAIRN_EINVAL;
  uint64_t *v = NULL;
  size_t n = 0;
  int delivered = 0;
  char why[512] = "";
  *lsn = 0;
  int rc = list_dir(dir, 1, &v, &n);
  if (rc != 0) goto fail;
  for (size_t i = n; i-- > 0 && !delivered;) {
    char *path = cmn_sprintf("%s/" CKPT_PREFIX ".%016" PRIx64, dir, v[i]);
    finding f = {0, NULL};
    rc = walk(path, v[i], NULL, NULL, &f);
    if (rc == 0) {
      rc = walk(path, v[i], cb, arg, &f);
      if (rc == 0) {
        *lsn = v[i];
        CMN_INFO(MOD, "loaded file=%s lsn=%" PRIu64, path, v[i]);
      } else if (rc == CAIRN_ECORRUPT) {
        snprintf(why, sizeof why, "checkpoint changed while loading file=%s offset=%" PRIu64 ": %s",
                 path, f.off, f.why);
        CMN_ERROR(MOD, "%s", why);
      }
      free(path);
      delivered = 1; /* one way or the other: no fallback once cb has run */
      continue;
    }
    char line[512];
    if (rc == CAIRN_ECORRUPT)
      snprintf(line, sizeof line, "damaged checkpoint file=%s offset=%" PRIu64 ": %s", path,
               f.off, f.why);
    else
      snprintf(line, sizeof line, "unreadable checkpoint file=%s err=%s", path,
               cairn_err_name(rc));
    CMN_WARN(MOD, "%s%s", line, i > 0 ? " (falling back to an older checkpoint)" : "");
    if (!why[0]) snprintf(why, sizeof why, "%s", line);
    free(path);
    rc = CAIRN_ECORRUPT;
  }
  if (n == 0) CMN_INFO(MOD, "no checkpoint dir=%s: starting from an empty state", dir);
  else if (!delivered)
    CMN_ERROR(MOD, "no valid checkpoint among %zu in dir=%s: %s", n, dir, why);
fail:
  if (rc == CAIRN_ECORRUPT && err && errlen > 0) snprintf(err, errlen, "%s", why);
  free(v);
  return rc;
}
