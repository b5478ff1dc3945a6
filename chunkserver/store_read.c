/*
 * store_read.c - verified reads, the scrubber step, and whole-replica import.
 *
 * Readers never hold the store lock during I/O: they snapshot the index
 * entry (waiting while a writer has its generation odd), read and verify
 * without the lock, and keep the result only if the entry did not change
 * meanwhile (see store_internal.h). So a checksum mismatch is a real one,
 * never an artefact of a concurrent commit, before a replica is marked
 * corrupt.
 */
#include "store_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define B CS_STORE_BLOCK_SIZE

int cs__read_slot(const cs__geom *g, int fd, int slot, unsigned char *buf, cs__header *h) {
  size_t n = cs__slot_used(g);
  int64_t got = cs__pread(fd, buf, n, cs__slot_off(g, slot));
  if (got < 0) return (int)got;
  if ((size_t)got < n) return CAIRN_ECORRUPT;
  return cs__header_decode(g, buf, h);
}

int cs__verify_blocks(const cs__geom *g, int fd, const unsigned char *slot, uint64_t len,
                      uint32_t b0, uint32_t b1, unsigned char *scratch, uint32_t *bad) {
  for (uint32_t b = b0; b <= b1; b++) {
    uint64_t bs = (uint64_t)b * B;
    if (bs >= len) break;
    size_t n = (size_t)(CMN_MIN(bs + B, len) - bs);
    int64_t got = cs__pread(fd, scratch, n, g->data_off + bs);
    if (got < 0) return (int)got;
    if ((size_t)got < n || cmn_crc32c(0, scratch, n) != cs__table_get(slot, b)) {
      *bad = b;
      return CAIRN_ECHECKSUM;
    }
  }
  return 0;
}

/* Under mu: wait until the entry of handle is stable (even generation) and
 * copy it. CAIRN_ENOENT when absent or on a failed dir, CAIRN_EIO after a
 * simulated crash. */
static int snapshot(cs_store *s, uint64_t handle, cs__entry *out) {
  for (;;) {
    if (cs__crashed(s)) return CAIRN_EIO;
    cs__entry *e = cs__index_find(&s->index, handle);
    if (!e || s->dirs[e->dir].state == CS_STORE_DIR_FAILED) return CAIRN_ENOENT;
    if (!(e->gen & 1)) {
      *out = *e;
      return 0;
    }
    pthread_cond_wait(&s->stable_cv, &s->mu);
  }
}

static bool unchanged(cs_store *s, const cs__entry *snap) {
  pthread_mutex_lock(&s->mu);
  const cs__entry *e = cs__index_find(&s->index, snap->handle);
  bool same = e && e->gen == snap->gen && e->version == snap->version && e->dir == snap->dir;
  pthread_mutex_unlock(&s->mu);
  return same;
}

/*
 * Read committed bytes [off, off + n) of the replica in `snap` into buf,
 * block by block: a block wholly inside the range is read straight into buf,
 * a partial one through the scratch block; each is checked against its CRC
 * from the current header slot before the next is read.
 */
static int read_verified(cs_store *s, const cs__entry *snap, uint64_t off, unsigned char *buf,
                         size_t n, unsigned char **scratch) {
  char path[PATH_MAX];
  cs__chunk_path(s, snap->dir, snap->handle, snap->version, path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? CAIRN_ECORRUPT : cs__io_err(errno);
  uint64_t L = snap->length, end = off + n;
  uint32_t b0 = (uint32_t)(off / B), b1 = (uint32_t)((end - 1) / B), nb = b1 - b0 + 1;
  unsigned char tbl_small[64];
  unsigned char *tbl = nb * 4u <= sizeof tbl_small ? tbl_small : cmn_malloc(nb * 4u);
  int slot = (snap->flags & CS__F_SLOTB) ? 1 : 0;
  int rc = 0;
  int64_t got = cs__pread(fd, tbl, nb * 4u, cs__slot_off(&s->g, slot) + CS__HDR_SIZE + 4u * b0);
  if (got < 0 || (size_t)got < nb * 4u) {
    rc = got < 0 ? (int)got : CAIRN_ECORRUPT;
    goto fail;
  }
  for (uint32_t b = b0; b <= b1; b++) {
    uint64_t bs = (uint64_t)b * B, be = CMN_MIN(bs + B, L);
    uint64_t ws = CMN_MAX(bs, off), we = CMN_MIN(be, end);
    bool whole = ws == bs && we == be;
    unsigned char *dst;
    if (whole) {
      dst = buf + (bs - off);
    } else {
      if (!*scratch) *scratch = cmn_malloc(B);
      dst = *scratch;
    }
    got = cs__pread(fd, dst, (size_t)(be - bs), s->g.data_off + bs);
    if (got < 0) {
      rc = (int)got;
      goto fail;
    }
    if ((uint64_t)got < be - bs ||
        cmn_crc32c(0, dst, (size_t)(be - bs)) != cs__get_le32(tbl + 4u * (b - b0))) {
      rc = CAIRN_ECHECKSUM;
      goto fail;
    }
    if (!whole) memcpy(buf + (ws - off), dst + (ws - bs), (size_t)(we - ws));
  }
fail:
  if (tbl != tbl_small) free(tbl);
  close(fd);
  return rc;
}

int64_t cs_store_read(cs_store *s, uint64_t handle, uint64_t version, uint64_t offset,
                      void *buf, size_t len) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (handle == CS__NO_HANDLE || version == 0 || (len > 0 && !buf)) return CAIRN_EINVAL;
  if (offset > s->g.chunk_size || len > s->g.chunk_size - offset) return CAIRN_ERANGE;
  unsigned char *scratch = NULL;
  int64_t result = CAIRN_EBUSY;
  for (int attempt = 0; attempt < CS__READ_ATTEMPTS; attempt++) {
    cs__entry snap;
    pthread_mutex_lock(&s->mu);
    int rc = snapshot(s, handle, &snap);
    pthread_mutex_unlock(&s->mu);
    if (rc == 0 && snap.version != version) rc = CAIRN_ESTALE;
    if (rc == 0 && (snap.flags & CS__F_BADHDR)) rc = CAIRN_ECORRUPT;
    if (rc != 0) {
      result = rc;
      break;
    }
    uint64_t L = snap.length;
    size_t n = offset >= L ? 0 : (size_t)CMN_MIN((uint64_t)len, L - offset);
    if (n == 0) {
      result = 0;
      break;
    }
    rc = read_verified(s, &snap, offset, buf, n, &scratch);
    if (!unchanged(s, &snap)) continue; /* a writer overlapped: read again */
    if (rc == CAIRN_ECHECKSUM || rc == CAIRN_ECORRUPT) {
      memset(buf, 0, len);
      cs__mark_corrupt(s, handle, version, snap.gen,
                       rc == CAIRN_ECHECKSUM ? "block checksum mismatch on read"
                                             : "replica file missing or truncated");
    } else if (rc != 0) {
      memset(buf, 0, len);
      cs__dir_error(s, snap.dir, rc, "read", handle);
    }
    result = rc != 0 ? rc : (int64_t)n;
    break;
  }
  if (result == CAIRN_EBUSY && len > 0) memset(buf, 0, len); /* unverified attempts */
  free(scratch);
  return result;
}

/* ---- scrubber ---- */

int cs_store_scrub_one(cs_store *s, uint64_t *cursor, uint64_t *handle) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (!cursor) return CAIRN_EINVAL;
  cs__entry snap;
  bool found = false;
  pthread_mutex_lock(&s->mu);
  for (uint64_t i = *cursor; i < s->index.cap; i++) {
    const cs__entry *e = &s->index.slots[i];
    if (e->handle == CS__NO_HANDLE || s->dirs[e->dir].state == CS_STORE_DIR_FAILED) continue;
    if ((e->flags & (CS__F_CORRUPT | CS__F_BADHDR)) || (e->gen & 1)) continue;
    snap = *e;
    *cursor = i + 1;
    found = true;
    break;
  }
  if (!found) *cursor = 0;
  pthread_mutex_unlock(&s->mu);
  if (!found) return 0;
  if (handle) *handle = snap.handle;

  char path[PATH_MAX];
  cs__chunk_path(s, snap.dir, snap.handle, snap.version, path);
  unsigned char *slot = cmn_malloc(cs__slot_used(&s->g));
  unsigned char *scratch = cmn_malloc(B);
  const char *why = "block checksum mismatch found by the scrubber";
  int rc = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    rc = errno == ENOENT ? CAIRN_ECORRUPT : cs__io_err(errno);
    why = "replica file missing";
  } else {
    cs__header h;
    rc = cs__read_slot(&s->g, fd, (snap.flags & CS__F_SLOTB) ? 1 : 0, slot, &h);
    if (rc == 0 && (h.handle != snap.handle || h.version != snap.version ||
                    h.committed != snap.length))
      rc = CAIRN_ECORRUPT;
    if (rc == CAIRN_ECORRUPT) why = "current header slot invalid";
    uint32_t bad = 0;
    if (rc == 0 && snap.length > 0)
      rc = cs__verify_blocks(&s->g, fd, slot, snap.length, 0,
                             (uint32_t)((snap.length - 1) / B), scratch, &bad);
    close(fd);
  }
  free(slot);
  free(scratch);
  if (!unchanged(s, &snap)) return 1; /* changed meanwhile: next pass checks it */
  if (rc == CAIRN_ECHECKSUM || rc == CAIRN_ECORRUPT) {
    cs__mark_corrupt(s, snap.handle, snap.version, snap.gen, why);
    return rc;
  }
  if (rc != 0) {
    cs__dir_error(s, snap.dir, rc, "scrub", snap.handle);
    return rc;
  }
  return 1;
}

/* ---- import ---- */

struct cs_store_import_ctx {
  cs_store *s;
  uint64_t handle, version, length, received;
  unsigned dir;
  int fd;
  int err;               /* a write failed: only cancel remains */
  uint32_t blk_crc;      /* running CRC of the block being received */
  unsigned char *slot;   /* header + table being built */
  char path[PATH_MAX];
  char tmp[PATH_MAX + 8];
};

void cs_store_import_cancel(cs_store_import_ctx *imp) {
  if (!imp) return;
  if (imp->fd >= 0) close(imp->fd);
  if (!cs__crashed(imp->s)) unlink(imp->tmp);
  free(imp->slot);
  free(imp);
}

int cs_store_import_begin(cs_store *s, uint64_t handle, uint64_t version, uint64_t length,
                          cs_store_import_ctx **out) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (handle == CS__NO_HANDLE || version == 0 || !out) return CAIRN_EINVAL;
  if (length > s->g.chunk_size) return CAIRN_ERANGE;
  pthread_mutex_lock(&s->mu);
  const cs__entry *e = cs__index_find(&s->index, handle);
  bool newer = e && s->dirs[e->dir].state != CS_STORE_DIR_FAILED && e->version >= version;
  pthread_mutex_unlock(&s->mu);
  if (newer) return CAIRN_EEXIST;
  unsigned dir = 0;
  int rc = cs__pick_dir(s, &dir);
  if (rc != 0) return rc;
  cs_store_import_ctx *imp = cmn_calloc(1, sizeof *imp);
  imp->s = s;
  imp->handle = handle;
  imp->version = version;
  imp->length = length;
  imp->dir = dir;
  imp->slot = cmn_calloc(1, cs__slot_used(&s->g));
  cs__chunk_path(s, dir, handle, version, imp->path);
  snprintf(imp->tmp, sizeof imp->tmp, "%s.tmp", imp->path);
  imp->fd = open(imp->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (imp->fd < 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  /* Header area written now (zeros), so ENOSPC shows early and the final
   * header write never needs new blocks. */
  unsigned char *zeros = cmn_calloc(1, s->g.data_off);
  rc = cs__pwrite(imp->fd, zeros, s->g.data_off, 0);
  free(zeros);
  if (rc != 0) goto fail;
  *out = imp;
  return 0;
fail:
  cs__dir_error(s, dir, rc, "import", handle);
  cs_store_import_cancel(imp);
  return rc;
}

int cs_store_import_write(cs_store_import_ctx *imp, const void *data, size_t len, uint32_t crc) {
  if (!imp || (len > 0 && !data)) return CAIRN_EINVAL;
  cs_store *s = imp->s;
  if (cs__crashed(s)) return CAIRN_EIO;
  if (imp->err) return imp->err;
  if (cmn_crc32c(0, data, len) != crc) return imp->err = CAIRN_ECHECKSUM;
  if (len > imp->length - imp->received) return imp->err = CAIRN_ERANGE;
  int rc = cs__step(s, "import.write");
  if (rc == 0) rc = cs__pwrite_bulk(imp->fd, data, len, s->g.data_off + imp->received, s->g.data_off);
  if (rc != 0) {
    cs__dir_error(s, imp->dir, rc, "import", imp->handle);
    return imp->err = rc;
  }
  const unsigned char *p = data;
  while (len > 0) {
    size_t k = (size_t)CMN_MIN((uint64_t)len, B - imp->received % B);
    imp->blk_crc = cmn_crc32c(imp->blk_crc, p, k);
    imp->received += k;
    p += k;
    len -= k;
    if (imp->received % B == 0) {
      cs__table_set(imp->slot, (uint32_t)((imp->received - 1) / B), imp->blk_crc);
      imp->blk_crc = 0;
    }
  }
  return 0;
}

/*
 * Seal the temp file (header with the CRCs computed on the way in, fsync),
 * rename it into place, fsync the dir, then index it and drop any lower
 * version this store held (the scan would keep the highest anyway).
 */
int cs_store_import_finish(cs_store_import_ctx *imp) {
  if (!imp) return CAIRN_EINVAL;
  cs_store *s = imp->s;
  int rc = 0;
  if (cs__crashed(s)) {
    rc = CAIRN_EIO;
    goto fail;
  }
  if (imp->err || imp->received != imp->length) {
    rc = CAIRN_EPROTO;
    goto fail;
  }
  if (imp->received % B) cs__table_set(imp->slot, (uint32_t)(imp->received / B), imp->blk_crc);
  cs__header h = {.handle = imp->handle, .version = imp->version, .committed = imp->length,
                  .chunk_size = s->g.chunk_size, .seq = 1};
  cs__header_encode(&s->g, &h, imp->slot);
  if ((rc = cs__step(s, "import.header")) != 0) goto fail;
  if ((rc = cs__pwrite(imp->fd, imp->slot, cs__slot_used(&s->g), 0)) != 0) goto fail;
  if ((rc = cs__step(s, "import.sync")) != 0) goto fail;
  if ((rc = cs__fdatasync(imp->fd)) != 0) goto fail;
  cs__drop_cache(imp->fd, s->g.data_off, s->g.data_off + imp->length, false);
  pthread_mutex_lock(&s->mu);
  const cs__entry *e = cs__index_find(&s->index, imp->handle);
  bool newer = e && s->dirs[e->dir].state != CS_STORE_DIR_FAILED && e->version >= imp->version;
  pthread_mutex_unlock(&s->mu);
  if (newer) {
    rc = CAIRN_EEXIST;
    goto fail;
  }
  if ((rc = cs__step(s, "import.rename")) != 0) goto fail;
  if (rename(imp->tmp, imp->path) != 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  if ((rc = cs__step(s, "import.dirsync")) != 0) goto fail;
  if ((rc = cs__fsync_dir_of(imp->path)) != 0) goto fail;

  cs__entry ne = {.handle = imp->handle, .version = imp->version,
                  .length = (uint32_t)imp->length, .dir = (uint8_t)imp->dir};
  cs__entry old = {.handle = CS__NO_HANDLE};
  uint64_t old_side = 0;
  pthread_mutex_lock(&s->mu);
  cs__entry *oe = cs__index_find(&s->index, imp->handle);
  if (oe) {
    old = *oe;
    ne.gen = (uint16_t)((oe->gen | 1) + 1); /* in-flight readers of the old one retry */
    const cs__pending *p = cs__pending_find(s, imp->handle);
    if (p && p->kind == CS_STORE_KIND_OVERWRITE) old_side = p->serial;
  }
  cs__index_put(&s->index, &ne);
  cs__pending_del(s, imp->handle);
  pthread_cond_broadcast(&s->stable_cv);
  bool old_usable = old.handle != CS__NO_HANDLE && s->dirs[old.dir].state != CS_STORE_DIR_FAILED;
  pthread_mutex_unlock(&s->mu);
  if (old_usable) {
    char path[PATH_MAX];
    if (old_side) {
      cs__side_path(s, old.dir, old.handle, old.version, old_side, path);
      unlink(path);
    }
    cs__chunk_path(s, old.dir, old.handle, old.version, path);
    if (unlink(path) == 0) cs__fsync_dir_of(path);
    CMN_INFO(CS__MOD, "import replaced handle=%016" PRIx64 " old_version=%" PRIu64
             " version=%" PRIu64, imp->handle, old.version, imp->version);
  }
  close(imp->fd);
  imp->fd = -1;
  free(imp->slot);
  free(imp);
  return 0;
fail:
  if (!cs__crashed(s)) cs__dir_error(s, imp->dir, rc, "import", imp->handle);
  cs_store_import_cancel(imp);
  return rc;
}

int cs_store_import(cs_store *s, uint64_t handle, uint64_t version, const void *data,
                    size_t len, uint32_t crc) {
  cs_store_import_ctx *imp;
  int rc = cs_store_import_begin(s, handle, version, len, &imp);
  if (rc != 0) return rc;
  if (len > 0 && (rc = cs_store_import_write(imp, data, len, crc)) != 0) {
    cs_store_import_cancel(imp);
    return rc;
  }
  return cs_store_import_finish(imp);
}
