/*
 * oplog_recover.c - reading the operation log back at start-up.
 *
 * Recovery walks every segment in LSN order, checks each header and record
 * (length bound, CRC, consecutive LSN), replays the records the checkpoint
 * does not cover, and leaves the last segment open for appending. The one
 * kind of damage it repairs is a torn tail: the last record(s) of the last
 * segment half-written when the process or machine died. Every other kind
 * of damage stops the start with CAIRN_ECORRUPT and a message naming the
 * file and byte offset, because dropping records there would silently lose
 * mutations that were acknowledged.
 *
 * Also here: creating a segment file durably, shared with rotation.
 */
#include "oplog_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_diskio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD "oplog"

typedef struct recov {
  const char *dir;
  size_t max_record;
  uint64_t after_lsn;
  mst_oplog_replay_fn replay;
  void *arg;
  char *err;
  size_t errlen;
} recov;

/* One record as read from disk; `payload` points into the reader's buffer. */
typedef struct frame {
  uint64_t lsn;
  uint32_t len;
  const unsigned char *payload;
  const char *bad; /* why the frame is unusable, NULL when it is sound */
} frame;

uint32_t mst_oplog__frame_crc(const unsigned char *lsn_and_payload, size_t payload_len) {
  return cmn_crc32c(0, lsn_and_payload, 8 + payload_len);
}

char *mst_oplog__segment_path(const char *dir, uint64_t first_lsn) {
  return cmn_sprintf("%s/" MST_OPLOG__PREFIX ".%016" PRIx64, dir, first_lsn);
}

/*
 * Record a corruption finding: one line naming file and offset, into the
 * caller's buffer and the error log. Returns CAIRN_ECORRUPT so call sites
 * read `return corrupt(...)`.
 */
static int corrupt(const recov *R, const char *path, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int corrupt(const recov *R, const char *path, uint64_t off, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  CMN_ERROR(MOD, "corrupt operation log file=%s offset=%" PRIu64 ": %s", path, off, why);
  if (R->err && R->errlen > 0)
    snprintf(R->err, R->errlen, "corrupt operation log file=%s offset=%" PRIu64 ": %s", path,
             off, why);
  return CAIRN_ECORRUPT;
}

/*
 * Create a segment so that a file under its final name always has a whole
 * header: write the header to `<name>.tmp`, fsync, rename, fsync the
 * directory. The descriptor stays open (it follows the rename) for appends.
 */
int mst_oplog__segment_create(const char *dir, uint64_t first_lsn, int *fd_out) {
  char *path = mst_oplog__segment_path(dir, first_lsn);
  char *tmp = cmn_sprintf("%s.tmp", path);
  unsigned char hdr[MST_OPLOG__HDR_SIZE] = {0};
  int rc = 0, made = 0;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = cmn_errno_to_cairn(errno);
    goto fail;
  }
  made = 1;
  memcpy(hdr, MST_OPLOG__MAGIC, 8);
  mst__put_le32(hdr + 8, MST_OPLOG__VERSION);
  mst__put_le64(hdr + 16, first_lsn);
  mst__put_le32(hdr + 24, cmn_crc32c(0, hdr, 24));
  rc = cmn_write_all(fd, hdr, sizeof hdr);
  if (rc != 0) goto fail;
  if (fsync(fd) != 0) {
    rc = CAIRN_EIO;
    goto fail;
  }
  if (rename(tmp, path) != 0) {
    rc = cmn_errno_to_cairn(errno);
    goto fail;
  }
  made = 0;
  rc = mst__fsync_dir(dir);
  if (rc != 0) {
    unlink(path);
    goto fail;
  }
  *fd_out = fd;
  free(tmp);
  free(path);
  return 0;
fail:
  CMN_ERROR(MOD, "cannot create segment file=%s err=%s errno=\"%s\"", path, cairn_err_name(rc),
            strerror(errno));
  if (fd >= 0) close(fd);
  if (made) unlink(tmp);
  free(tmp);
  free(path);
  return rc;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/*
 * Collect the first LSNs of the segment files in the directory, ascending,
 * and remove leftover `oplog.<lsn>.tmp` files of an interrupted segment
 * creation (they never held a record). Other files are ignored: the log may
 * share its directory with checkpoints.
 */
static int list_segments(const recov *R, uint64_t **out, size_t *count) {
  uint64_t *v = NULL;
  size_t n = 0, cap = 0;
  int rc = 0, removed = 0;
  DIR *d = opendir(R->dir);
  if (!d) {
    rc = cmn_errno_to_cairn(errno);
    CMN_ERROR(MOD, "cannot open log directory dir=%s errno=\"%s\"", R->dir, strerror(errno));
    goto fail;
  }
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    uint64_t lsn;
    if (mst__parse_name(de->d_name, MST_OPLOG__PREFIX, ".tmp", &lsn)) {
      char *p = cmn_sprintf("%s/%s", R->dir, de->d_name);
      if (unlink(p) == 0) removed++;
      CMN_WARN(MOD, "removed leftover segment temp file=%s", p);
      free(p);
    } else if (mst__parse_name(de->d_name, MST_OPLOG__PREFIX, "", &lsn)) {
      if (n == cap) {
        cap = cap ? cap * 2 : 16;
        v = cmn_realloc(v, cap * sizeof *v);
      }
      v[n++] = lsn;
    }
  }
  closedir(d);
  if (removed > 0 && (rc = mst__fsync_dir(R->dir)) != 0) goto fail;
  if (n > 0) qsort(v, n, sizeof *v, cmp_u64);
  if (n > 0 && v[0] == 0) {
    char *p = mst_oplog__segment_path(R->dir, 0);
    rc = corrupt(R, p, 0, "segment named for lsn 0 (lsns start at 1)");
    free(p);
    goto fail;
  }
  *out = v;
  *count = n;
  return 0;
fail:
  free(v);
  return rc;
}

/* Read and check the frame at `off` (not its LSN: the caller decides what a
 * sound frame with an unexpected LSN means). 0 with f->bad set or clear, or
 * CAIRN_EIO. */
static int read_frame(const recov *R, mst__rd *rd, uint64_t off, frame *f) {
  const unsigned char *p;
  memset(f, 0, sizeof *f);
  int r = mst__rd_get(rd, off, MST_OPLOG__FRAME_SIZE, &p);
  if (r < 0) return r;
  if (r > 0) {
    f->bad = "partial record header";
    return 0;
  }
  uint32_t len = mst__get_le32(p), crc = mst__get_le32(p + 4);
  f->lsn = mst__get_le64(p + 8);
  f->len = len;
  if (len > R->max_record) {
    f->bad = "record length above the maximum";
    return 0;
  }
  r = mst__rd_get(rd, off, MST_OPLOG__FRAME_SIZE + (size_t)len, &p);
  if (r < 0) return r;
  if (r > 0) {
    f->bad = "record extends past the end of the file";
    return 0;
  }
  if (mst_oplog__frame_crc(p + 8, len) != crc) {
    f->bad = "record checksum mismatch";
    return 0;
  }
  f->payload = p + MST_OPLOG__FRAME_SIZE;
  return 0;
}

/*
 * After a bad record at `off` (which should have had LSN `expect`), look for
 * any sound frame later in the file, byte by byte. A frame at p can only be
 * record expect + k with k <= (p - off) / 16 (each record takes at least 16
 * bytes), which rejects almost every position without computing a CRC.
 * Returns 1 (found: *at, *lsn set), 0 (none: the damage is a torn tail) or
 * CAIRN_EIO.
 */
static int find_sound_frame_after(const recov *R, mst__rd *rd, uint64_t off, uint64_t expect,
                                  uint64_t *at, uint64_t *lsn) {
  for (uint64_t p = off + 1; p + MST_OPLOG__FRAME_SIZE <= rd->size; p++) {
    const unsigned char *h;
    int r = mst__rd_get(rd, p, MST_OPLOG__FRAME_SIZE, &h);
    if (r != 0) return r < 0 ? r : 0;
    uint32_t len = mst__get_le32(h);
    uint64_t l = mst__get_le64(h + 8);
    if (len > R->max_record || len > rd->size - p - MST_OPLOG__FRAME_SIZE) continue;
    if (l < expect || l - expect > (p - off) / MST_OPLOG__FRAME_SIZE) continue;
    frame f;
    r = read_frame(R, rd, p, &f);
    if (r < 0) return r;
    if (!f.bad) {
      *at = p;
      *lsn = f.lsn;
      return 1;
    }
  }
  return 0;
}

/* Check a segment header: magic, version, CRC, and the LSN its name claims. */
static int check_header(const recov *R, mst__rd *rd, const char *path, uint64_t first) {
  const unsigned char *h;
  int r = mst__rd_get(rd, 0, MST_OPLOG__HDR_SIZE, &h);
  if (r < 0) return r;
  if (r > 0)
    return corrupt(R, path, 0, "segment header truncated (file is %" PRIu64 " bytes)", rd->size);
  if (memcmp(h, MST_OPLOG__MAGIC, 8) != 0) return corrupt(R, path, 0, "bad segment magic");
  if (mst__get_le32(h + 24) != cmn_crc32c(0, h, 24))
    return corrupt(R, path, 24, "segment header checksum mismatch");
  if (mst__get_le32(h + 8) != MST_OPLOG__VERSION)
    return corrupt(R, path, 8, "unsupported segment format version %" PRIu32,
                   mst__get_le32(h + 8));
  if (mst__get_le64(h + 16) != first)
    return corrupt(R, path, 16, "header first lsn %" PRIu64 " does not match the file name",
                   mst__get_le64(h + 16));
  return 0;
}

/*
 * Validate one segment and replay its records. `*expect` is the LSN the first
 * record must carry and becomes the LSN after the last one. Only the last
 * segment may end in damage (a torn tail, cut here); `covered` segments
 * (every record inside the checkpoint) only get their header checked.
 */
static int scan_segment(const recov *R, uint64_t first, int last, int covered,
                        uint64_t *expect) {
  char *path = mst_oplog__segment_path(R->dir, first);
  mst__rd rd = {.fd = -1};
  uint64_t off = MST_OPLOG__HDR_SIZE, e = *expect;
  int rc = 0;
  int fd = open(path, (last ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) {
    rc = cmn_errno_to_cairn(errno);
    CMN_ERROR(MOD, "cannot open segment file=%s errno=\"%s\"", path, strerror(errno));
    goto fail;
  }
  if ((rc = mst__rd_init(&rd, fd)) != 0 || (rc = check_header(R, &rd, path, first)) != 0)
    goto fail;
  while (!covered && off < rd.size) {
    frame f;
    if ((rc = read_frame(R, &rd, off, &f)) != 0) goto fail;
    if (!f.bad && f.lsn != e) {
      rc = corrupt(R, path, off, "lsn %" PRIu64 " where %" PRIu64 " was expected (gap)", f.lsn, e);
      goto fail;
    }
    if (!f.bad) {
      if (e > R->after_lsn && R->replay && (rc = R->replay(R->arg, e, f.payload, f.len)) != 0) {
        CMN_ERROR(MOD, "replay stopped file=%s offset=%" PRIu64 " lsn=%" PRIu64 " err=%s", path,
                  off, e, cairn_err_name(rc));
        goto fail;
      }
      e++;
      off += MST_OPLOG__FRAME_SIZE + (uint64_t)f.len;
      continue;
    }
    if (!last) {
      rc = corrupt(R, path, off, "%s (lsn %" PRIu64 ") in a segment that is not the last", f.bad,
                   e);
      goto fail;
    }
    uint64_t at = 0, lsn = 0;
    int found = find_sound_frame_after(R, &rd, off, e, &at, &lsn);
    if (found < 0) {
      rc = found;
      goto fail;
    }
    if (found) {
      rc = corrupt(R, path, off,
                   "%s (lsn %" PRIu64 ") followed by a valid record (lsn %" PRIu64
                   " at offset %" PRIu64 ")",
                   f.bad, e, lsn, at);
      goto fail;
    }
    CMN_WARN(MOD, "torn tail cut file=%s offset=%" PRIu64 " dropped_bytes=%" PRIu64
             " next_lsn=%" PRIu64 " reason=\"%s\"",
             path, off, rd.size - off, e, f.bad);
    if (ftruncate(fd, (off_t)off) != 0 || fsync(fd) != 0) {
      rc = CAIRN_EIO;
      CMN_ERROR(MOD, "cannot cut torn tail file=%s errno=\"%s\"", path, strerror(errno));
      goto fail;
    }
    break;
  }
  *expect = e;
fail:
  mst__rd_free(&rd);
  if (fd >= 0) close(fd);
  free(path);
  return rc;
}

/*
 * Walk the segments (see the file comment), then open the end of the log for
 * appending: the last segment, or a new one when there is none or when the
 * log ends before the checkpoint (LSNs at or below after_lsn are never handed
 * out again, or replay after the checkpoint would skip them).
 */
int mst_oplog__recover(const char *dir, size_t max_record, uint64_t after_lsn,
                       mst_oplog_replay_fn replay, void *arg, mst_oplog__state *st, char *err,
                       size_t errlen) {
  recov R = {dir, max_record, after_lsn, replay, arg, err, errlen};
  uint64_t *segs = NULL;
  size_t n = 0;
  int rc = 0, fd = -1;
  uint64_t next = after_lsn + 1;
  st->fd = -1;
  st->segs = NULL;
  st->nsegs = 0;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    rc = cmn_errno_to_cairn(errno);
    CMN_ERROR(MOD, "cannot create log directory dir=%s errno=\"%s\"", dir, strerror(errno));
    goto fail;
  }
  if ((rc = list_segments(&R, &segs, &n)) != 0) goto fail;
  if (n > 0 && segs[0] > after_lsn + 1) {
    char *p = mst_oplog__segment_path(dir, segs[0]);
    rc = corrupt(&R, p, 0,
                 "log starts at lsn %" PRIu64 " but the checkpoint covers only lsns up to %" PRIu64
                 ": records are missing",
                 segs[0], after_lsn);
    free(p);
    goto fail;
  }
  int prev_read = 0;
  for (size_t i = 0; i < n; i++) {
    int last = i + 1 == n;
    int covered = !last && segs[i + 1] <= after_lsn + 1;
    if (prev_read && segs[i] != next) {
      char *p = mst_oplog__segment_path(dir, segs[i]);
      rc = corrupt(&R, p, 0,
                   "segment starts at lsn %" PRIu64 " but the previous one ends at lsn %" PRIu64
                   " (gap)",
                   segs[i], next - 1);
      free(p);
      goto fail;
    }
    next = segs[i];
    if ((rc = scan_segment(&R, segs[i], last, covered, &next)) != 0) goto fail;
    prev_read = !covered;
  }
  if (n > 0 && next > after_lsn) {
    char *p = mst_oplog__segment_path(dir, segs[n - 1]);
    fd = open(p, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) {
      rc = cmn_errno_to_cairn(errno);
      CMN_ERROR(MOD, "cannot open segment file=%s errno=\"%s\"", p, strerror(errno));
    }
    free(p);
    if (fd < 0) goto fail;
    st->seg_first = segs[n - 1];
  } else {
    if (n > 0)
      CMN_WARN(MOD, "log ends before the checkpoint dir=%s log_next_lsn=%" PRIu64
               " checkpoint_lsn=%" PRIu64 ": continuing in a new segment",
               dir, next, after_lsn);
    next = after_lsn + 1;
    if ((rc = mst_oplog__segment_create(dir, next, &fd)) != 0) goto fail;
    segs = cmn_realloc(segs, (n + 1) * sizeof *segs);
    segs[n++] = next;
    st->seg_first = next;
  }
  CMN_INFO(MOD, "recovered dir=%s segments=%zu after_lsn=%" PRIu64 " next_lsn=%" PRIu64, dir, n,
           after_lsn, next);
  st->fd = fd;
  st->next_lsn = next;
  st->segs = segs;
  st->nsegs = n;
  return 0;
fail:
  if (fd >= 0) close(fd);
  free(segs);
  return rc;
}
