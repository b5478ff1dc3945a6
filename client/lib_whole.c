/*
 * lib_whole.c - whole files to and from file descriptors: cairn_put_fd and
 * cairn_get_fd, on the ordered ring of lib_xfer.c.
 *
 * put: the bytes go to a hidden temporary file next to the target
 * ("/dir/.name.put-<16 hex>"), which is renamed over the target once every
 * byte is durable and the size recorded; a failure removes it. Pieces are
 * whole chunks, so no two workers ever write the same chunk (writes to one
 * chunk must come in order: a chunkserver refuses gaps). From a regular
 * file each worker reads its own chunk with pread in CAIRN__IO_MAX steps;
 * from a pipe the calling thread must read in order, so it buffers whole
 * chunks, as many as fit in CAIRN__PUT_BUFFER_BUDGET (at least one).
 *
 * get: pieces of CAIRN__IO_MAX bytes are read by the workers in parallel
 * and written to the descriptor in order by the calling thread.
 *
 * Progress callbacks run on the calling thread after each piece.
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct put_ctx {
  cairn_file *f;
  int fd;
  uint64_t cs;
  bool seekable;
  uint64_t start;   /* seekable: where the copy starts in fd */
  uint64_t total;   /* seekable: bytes to copy; else 0 (unknown) */
  uint64_t done;                /* bytes of the pieces drained */
  atomic_uint_fast64_t moved;   /* bytes written so far, in any order (progress) */
  uint64_t shown;               /* what the callback was last told */
  cairn_progress_fn cb;
  void *cb_arg;
} put_ctx;

/* Read up to n bytes from fd (at `at` when seekable): short only at the end. */
static int64_t read_full(int fd, bool seekable, uint64_t at, uint8_t *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = seekable ? pread(fd, buf + got, n - got, (off_t)(at + got))
                         : read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return CAIRN_EIO;
    if (r == 0) break;
    got += (size_t)r;
  }
  return (int64_t)got;
}

/* Piece k: chunk k of the new file. */
static int put_fill(void *arg, cairn__slot *s) {
  put_ctx *p = arg;
  s->offset = s->index * p->cs;
  if (p->seekable) {
    if (s->offset >= p->total) return 0;
    s->len = (size_t)CMN_MIN(p->cs, p->total - s->offset);
    return 1;
  }
  int64_t n = read_full(p->fd, false, 0, s->buf, (size_t)p->cs);
  if (n < 0) return (int)n;
  s->len = (size_t)n;
  return n > 0 ? 1 : 0;
}

/* Write the piece (one chunk) in CAIRN__IO_MAX steps, in order: from the
 * slot's buffer, or read from the file at the piece's place. */
static int put_work(void *arg, cairn__slot *s) {
  put_ctx *p = arg;
  for (uint64_t pos = 0; pos < s->len;) {
    size_t n = (size_t)CMN_MIN((uint64_t)CAIRN__IO_MAX, s->len - pos);
    const uint8_t *src = s->buf + pos;
    if (p->seekable) {
      int64_t got = read_full(p->fd, true, p->start + s->offset + pos, s->buf, n);
      if (got < 0) return (int)got;
      if ((size_t)got < n) return CAIRN_EIO; /* the file shrank while we copied it */
      src = s->buf;
    }
    int rc = cairn__write_range(p->f, s->offset + pos, src, n, 1, CAIRN__IO_MAX);
    if (rc != 0) return rc;
    atomic_fetch_add(&p->moved, n);
    pos += n;
  }
  return 0;
}

static void put_tick(void *arg) {
  put_ctx *p = arg;
  uint64_t moved = atomic_load(&p->moved);
  if (p->cb && moved > p->shown) {
    p->shown = moved;
    p->cb(p->cb_arg, moved, p->total);
  }
}

static int put_drain(void *arg, cairn__slot *s) {
  put_ctx *p = arg;
  p->done += s->len;
  put_tick(p);
  return 0;
}

/* Move the finished temporary file to `path`. A repeated Rename (after the
 * master became unreachable) may find its first attempt done: then the
 * target is our file. */
static int put_rename(cairn_client *c, const char *tmp, const char *path, int overwrite,
                      uint64_t id) {
  int rc = cairn_rename(c, tmp, path, overwrite);
  if (rc == CAIRN_ENOENT) {
    cairn_stat st;
    if (cairn_stat_path(c, path, &st) == 0 && st.id == id) rc = 0;
  }
  return rc;
}

int cairn_put_fd(cairn_client *c, int fd, const char *path, int overwrite, cairn_progress_fn cb,
                 void *arg, uint64_t *bytes) {
  if (!c || fd < 0) return CAIRN_EINVAL;
  char tmp[CAIRN__PATH_MAX + 1];
  int rc = cairn__temp_path(path, cairn__rand(c), tmp, sizeof tmp);
  if (rc != 0) return rc;
  cairn_stat st;
  rc = cairn_stat_path(c, path, &st);
  if (rc == 0 && st.type == CAIRN_TYPE_DIR) return CAIRN_EISDIR;
  if (rc == 0 && !overwrite) return CAIRN_EEXIST; /* fail before moving any byte */
  if (rc != 0 && rc != CAIRN_ENOENT) return rc;
  put_ctx p = {.fd = fd, .cb = cb, .cb_arg = arg};
  if ((rc = cairn__chunk_size(c, &p.cs)) != 0) return rc;
  struct stat fst;
  off_t here = lseek(fd, 0, SEEK_CUR);
  if (fstat(fd, &fst) != 0) return CAIRN_EIO;
  p.seekable = S_ISREG(fst.st_mode) && here >= 0;
  if (p.seekable) {
    p.start = (uint64_t)here;
    p.total = (uint64_t)fst.st_size > p.start ? (uint64_t)fst.st_size - p.start : 0;
  }
  cairn_file *f = NULL;
  rc = cairn_open(c, tmp, CAIRN_O_WRITE | CAIRN_O_CREATE | CAIRN_O_EXCL, &f);
  if (rc != 0) return rc;
  p.f = f;
  int threads = c->o.io_threads;
  size_t slot = (size_t)CMN_MIN((uint64_t)CAIRN__IO_MAX, p.cs);
  if (p.seekable) {
    uint64_t pieces = (p.total + p.cs - 1) / p.cs;
    if ((uint64_t)threads > pieces) threads = pieces > 0 ? (int)pieces : 1;
  } else {
    uint64_t fit = CAIRN__PUT_BUFFER_BUDGET / p.cs;
    if ((uint64_t)threads > fit) threads = fit > 0 ? (int)fit : 1;
    slot = (size_t)p.cs;
  }
  if (cb) cb(arg, 0, p.total);
  cairn__ring_ops ops = {put_fill, put_work, put_drain, put_tick};
  rc = cairn__ring_run(threads, slot, &ops, &p);
  if (rc == 0) rc = cairn__complete_write(f, p.done);
  uint64_t id = f->id;
  cairn_close(f);
  if (rc == 0) rc = put_rename(c, tmp, path, overwrite, id);
  if (rc != 0) {
    int rm = cairn_remove(c, tmp, 0, NULL, 0);
    CMN_DEBUG(CAIRN__LOG, "put failed path=%s error=%s temp_removed=%s", path, cairn_err_name(rc),
              cairn_err_name(rm));
    return rc;
  }
  if (p.seekable) (void)lseek(fd, (off_t)(p.start + p.done), SEEK_SET);
  if (bytes) *bytes = p.done;
  return 0;
}

/* ---- get ------------------------------------------------------------------------------------- */

typedef struct get_ctx {
  cairn_file *f;
  int fd;
  uint64_t total, done;
  cairn_progress_fn cb;
  void *cb_arg;
} get_ctx;

static int get_fill(void *arg, cairn__slot *s) {
  get_ctx *g = arg;
  s->offset = s->index * s->cap;
  if (s->offset >= g->total) return 0;
  s->len = (size_t)CMN_MIN((uint64_t)s->cap, g->total - s->offset);
  return 1;
}

static int get_work(void *arg, cairn__slot *s) {
  get_ctx *g = arg;
  return cairn__read_range(g->f, s->offset, s->len, s->buf, 1);
}

static int get_drain(void *arg, cairn__slot *s) {
  get_ctx *g = arg;
  int rc = cmn_write_all(g->fd, s->buf, s->len);
  if (rc != 0) return rc;
  g->done += s->len;
  if (g->cb) g->cb(g->cb_arg, g->done, g->total);
  return 0;
}

int cairn_get_fd(cairn_client *c, const char *path, int fd, cairn_progress_fn cb, void *arg,
                 uint64_t *bytes) {
  if (!c || fd < 0) return CAIRN_EINVAL;
  cairn_file *f = NULL;
  int rc = cairn_open(c, path, CAIRN_O_READ, &f);
  if (rc != 0) return rc;
  get_ctx g = {.f = f, .fd = fd, .total = f->st.size, .cb = cb, .cb_arg = arg};
  size_t slot = (size_t)CMN_MIN((uint64_t)CAIRN__IO_MAX, g.total ? g.total : 1);
  int threads = g.total <= slot ? 1 : c->o.io_threads;
  if (cb) cb(arg, 0, g.total);
  cairn__ring_ops ops = {get_fill, get_work, get_drain, NULL};
  rc = cairn__ring_run(threads, slot, &ops, &g);
  cairn_close(f);
  if (rc != 0) return rc;
  if (bytes) *bytes = g.done;
  return 0;
}
