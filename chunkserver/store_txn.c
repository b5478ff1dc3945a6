/*
 * store_txn.c - the participant's storage side of two-phase commit:
 * prepare (durable, undoable), commit (redo-able), abort (byte-identical
 * undo), and the list of undecided mutations. Formats and crash windows are
 * described in store_internal.h.
 *
 * One mutation per chunk may be pending. Its description lives in memory
 * (s->pend, under mu) and on disk in the replica's intent page; the data is
 * past the committed length (APPEND, PAD) or in a side file (OVERWRITE).
 */
#include "store_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define B CS_STORE_BLOCK_SIZE

/* ---- helpers shared with the scan ---- */

int cs__clear_intent(cs_store *s, int fd) {
  static const unsigned char zeros[CS__REC_DECIDED_OFF + CS__REC_SIZE];
  return cs__pwrite(fd, zeros, sizeof zeros, s->g.intent_off);
}

int cs__truncate_to(cs_store *s, int fd, uint64_t committed) {
  if (ftruncate(fd, (off_t)(s->g.data_off + committed)) != 0) return cs__io_err(errno);
  return 0;
}

int cs__range_crc(int fd, uint64_t off, uint64_t len, unsigned char *scratch, uint32_t *crc) {
  uint32_t c = 0;
  while (len > 0) {
    size_t n = len < B ? (size_t)len : B;
    int64_t got = cs__pread(fd, scratch, n, off);
    if (got < 0) return (int)got;
    if ((size_t)got < n) return CAIRN_ECHECKSUM;
    c = cmn_crc32c(c, scratch, n);
    off += n;
    len -= n;
  }
  *crc = c;
  return 0;
}

static void rec_from_pending(const cs__pending *p, uint32_t state, cs__intent_rec *r) {
  *r = (cs__intent_rec){.kind = p->kind, .state = state, .handle = p->handle,
                        .version = p->version, .serial = p->serial, .offset = p->offset,
                        .length = p->length, .old_len = p->old_len, .new_len = p->new_len,
                        .crc = p->crc};
}

static int write_rec(cs_store *s, int fd, const cs__pending *p, uint32_t state) {
  unsigned char buf[CS__REC_SIZE];
  cs__intent_rec r;
  rec_from_pending(p, state, &r);
  cs__intent_encode(&r, buf);
  uint64_t off = s->g.intent_off + (state == CS__REC_DECIDED ? CS__REC_DECIDED_OFF : 0);
  return cs__pwrite(fd, buf, sizeof buf, off);
}

int cs__side_walk(cs_store *s, unsigned dir, const cs__pending *p, int chunk_fd,
                  unsigned char *slot, unsigned char *scratch) {
  char path[PATH_MAX];
  cs__side_path(s, dir, p->handle, p->version, p->serial, path);
  unsigned char *hdr = NULL;
  int rc = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? CAIRN_ENOENT : cs__io_err(errno);
  unsigned char fixed[CS__SIDE_HDR_SIZE];
  cs__side_hdr sh;
  int64_t got = cs__pread(fd, fixed, sizeof fixed, 0);
  if (got < 0) {
    rc = (int)got;
    goto fail;
  }
  if (got < (int64_t)sizeof fixed || cs__side_decode(fixed, s->g.nblocks, &sh) != 0) {
    rc = CAIRN_ECORRUPT;
    goto fail;
  }
  if (sh.handle != p->handle || sh.version != p->version || sh.serial != p->serial ||
      sh.offset != p->offset || sh.length != p->length || sh.new_len != p->new_len ||
      sh.crc != p->crc || sh.first_block != p->offset / B) {
    rc = CAIRN_ECORRUPT;
    goto fail;
  }
  size_t hlen = CS__SIDE_HDR_SIZE + 4u * (size_t)sh.nblocks;
  hdr = cmn_malloc(hlen);
  got = cs__pread(fd, hdr, hlen, 0);
  if (got < 0) {
    rc = (int)got;
    goto fail;
  }
  if ((size_t)got < hlen || cs__side_check(hdr, &sh) != 0) {
    rc = CAIRN_ECORRUPT;
    goto fail;
  }
  uint64_t base = cs__side_data_off(sh.nblocks);
  for (uint32_t i = 0; i < sh.nblocks; i++) {
    uint64_t bs = (uint64_t)(sh.first_block + i) * B;
    size_t n = (size_t)(CMN_MIN(bs + B, sh.new_len) - bs);
    got = cs__pread(fd, scratch, n, base + (uint64_t)i * B);
    if (got < 0) {
      rc = (int)got;
      goto fail;
    }
    uint32_t crc = cmn_crc32c(0, scratch, (size_t)got);
    if ((size_t)got < n || crc != cs__get_le32(hdr + CS__SIDE_HDR_SIZE + 4u * i)) {
      rc = CAIRN_ECHECKSUM;
      goto fail;
    }
    if (chunk_fd < 0) continue;
    if ((rc = cs__step(s, "commit.copy")) != 0) goto fail;
    if ((rc = cs__pwrite(chunk_fd, scratch, n, s->g.data_off + bs)) != 0) goto fail;
    cs__table_set(slot, sh.first_block + i, crc);
  }
fail:
  free(hdr);
  close(fd);
  return rc;
}

int cs__apply_side(cs_store *s, unsigned dir, int fd, const cs__pending *p, int cur,
                   cs__header *h, unsigned char *slot, unsigned char *scratch) {
  int rc = cs__side_walk(s, dir, p, fd, slot, scratch);
  if (rc != 0) return rc;
  h->committed = p->new_len;
  h->last_serial = p->serial;
  h->seq++;
  cs__header_encode(&s->g, h, slot);
  if ((rc = cs__step(s, "commit.header")) != 0) return rc;
  if ((rc = cs__pwrite(fd, slot, cs__slot_used(&s->g), cs__slot_off(&s->g, 1 - cur))) != 0)
    return rc;
  if ((rc = cs__step(s, "commit.sync")) != 0) return rc;
  return cs__fdatasync(fd);
}

/* ---- prepare ---- */

/*
 * Write the side file of an OVERWRITE: for every block the write touches,
 * the old committed bytes (verified against the table in `slot`: a mismatch
 * is CAIRN_ECHECKSUM, the replica is corrupt) merged with the new ones, then
 * the header with the image CRCs; fdatasync. The chunk file is only read.
 */
static int write_side(cs_store *s, unsigned dir, const cs__pending *p, const void *data,
                      int chunk_fd, const unsigned char *slot, unsigned char *scratch) {
  uint64_t end = p->offset + p->length;
  uint32_t b0 = (uint32_t)(p->offset / B), nb = (uint32_t)((end - 1) / B) - b0 + 1;
  uint64_t base = cs__side_data_off(nb);
  unsigned char *hdr = cmn_calloc(1, base);
  char path[PATH_MAX];
  cs__side_path(s, dir, p->handle, p->version, p->serial, path);
  int rc = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  for (uint32_t i = 0; i < nb; i++) {
    uint64_t bs = (uint64_t)(b0 + i) * B, be = CMN_MIN(bs + B, p->new_len);
    if (bs < p->old_len) {
      size_t old = (size_t)(CMN_MIN(bs + B, p->old_len) - bs);
      int64_t got = cs__pread(chunk_fd, scratch, old, s->g.data_off + bs);
      if (got < 0) {
        rc = (int)got;
        goto fail;
      }
      if ((size_t)got < old || cmn_crc32c(0, scratch, old) != cs__table_get(slot, b0 + i)) {
        rc = CAIRN_ECHECKSUM;
        goto fail;
      }
    }
    /* Every byte of [old_len, be) lies inside the new data (no holes). */
    uint64_t ws = CMN_MAX(bs, p->offset), we = CMN_MIN(be, end);
    memcpy(scratch + (ws - bs), (const char *)data + (ws - p->offset), (size_t)(we - ws));
    cs__put_le32(hdr + CS__SIDE_HDR_SIZE + 4u * i, cmn_crc32c(0, scratch, (size_t)(be - bs)));
    if ((rc = cs__step(s, "prepare.side")) != 0) goto fail;
    if ((rc = cs__pwrite(fd, scratch, (size_t)(be - bs), base + (uint64_t)i * B)) != 0) goto fail;
  }
  cs__side_hdr sh = {.handle = p->handle, .version = p->version, .serial = p->serial,
                     .offset = p->offset, .length = p->length, .new_len = p->new_len,
                     .first_block = b0, .nblocks = nb, .crc = p->crc};
  cs__side_encode(&sh, hdr);
  if ((rc = cs__pwrite(fd, hdr, base, 0)) != 0) goto fail;
  if ((rc = cs__step(s, "prepare.side_sync")) != 0) goto fail;
  rc = cs__fdatasync(fd);
fail:
  if (fd >= 0) close(fd);
  free(hdr);
  return rc;
}

/* Reserve the blocks an OVERWRITE that grows the chunk will need at commit,
 * without changing the file size (so an abort stays byte-identical), so the
 * commit does not run out of space. Filesystems without it are skipped. */
static int reserve_growth(cs_store *s, int fd, uint64_t old_len, uint64_t new_len) {
  if (new_len <= old_len) return 0;
  if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)(s->g.data_off + old_len),
                (off_t)(new_len - old_len)) == 0)
    return 0;
  return errno == ENOSPC || errno == EDQUOT ? CAIRN_ENOSPC : 0;
}

/* Zero-fill [committed, chunk end) for PAD: allocated blocks where the
 * filesystem can (ENOSPC shows now, not later), else a sparse extension. */
static int write_pad(cs_store *s, int fd, uint64_t old_len) {
  uint64_t n = s->g.chunk_size - old_len;
  if (n == 0) return 0;
  if (fallocate(fd, 0, (off_t)(s->g.data_off + old_len), (off_t)n) == 0) return 0;
  if (errno == ENOSPC || errno == EDQUOT) return CAIRN_ENOSPC;
  return cs__truncate_to(s, fd, s->g.chunk_size);
}

/* The new CRCs of the blocks an APPEND of `len` bytes at committed length
 * L fills, from the bytes themselves; a partial first block extends its
 * committed CRC (verified by the caller), as CRC32C chains. */
static uint32_t *append_crcs(const unsigned char *slot, uint64_t L, const unsigned char *data,
                             size_t len) {
  uint64_t first = L / B, nl = L + len;
  size_t n = (size_t)((nl - 1) / B - first + 1);
  uint32_t *blk = cmn_malloc(n * sizeof *blk);
  size_t pos = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t bs = (first + i) * B;
    size_t old = bs < L ? (size_t)(L - bs) : 0;
    size_t k = (size_t)(CMN_MIN(bs + B, nl) - bs) - old;
    blk[i] = cmn_crc32c(old ? cs__table_get(slot, (uint32_t)first) : 0, data + pos, k);
    pos += k;
  }
  return blk;
}

static bool same_mutation(const cs__pending *a, const cs__pending *b) {
  return a->serial == b->serial && a->offset == b->offset && a->length == b->length &&
         a->crc == b->crc && a->kind == b->kind;
}

int cs_store_prepare(cs_store *s, uint64_t handle, uint64_t version, uint64_t serial,
                     uint64_t offset, const void *data, size_t len, uint32_t crc,
                     unsigned flags) {
  if (cs__crashed(s)) return CAIRN_EIO;
  bool pad = (flags & CS_STORE_PAD) != 0;
  if (handle == CS__NO_HANDLE || version == 0 || serial == 0 || (flags & ~CS_STORE_PAD))
    return CAIRN_EINVAL;
  if (pad ? (data != NULL || len != 0) : (data == NULL || len == 0)) return CAIRN_EINVAL;
  if (offset > s->g.chunk_size || len > s->g.chunk_size - offset) return CAIRN_ERANGE;
  if (!pad && cmn_crc32c(0, data, len) != crc) return CAIRN_ECHECKSUM;

  pthread_mutex_lock(&s->mu);
  cs__entry *e = cs__index_find(&s->index, handle);
  /* Mutations of a chunk are serialised by the caller: the mark can only be
   * the stage reaper's, cutting staged bytes for a moment. */
  while (e && (e->flags & CS__F_PREPARING)) {
    pthread_cond_wait(&s->stable_cv, &s->mu);
    e = cs__index_find(&s->index, handle);
  }
  int rc = 0;
  if (!e || s->dirs[e->dir].state == CS_STORE_DIR_FAILED) rc = CAIRN_ENOENT;
  else if (e->version != version) rc = CAIRN_ESTALE;
  else if (e->flags & (CS__F_CORRUPT | CS__F_BADHDR)) rc = CAIRN_ECORRUPT;
  if (rc != 0) {
    pthread_mutex_unlock(&s->mu);
    return rc;
  }
  uint64_t L = e->length;
  cs__pending p = {.handle = handle, .version = version, .serial = serial, .offset = offset,
                   .old_len = L};
  if (pad) {
    p.kind = CS_STORE_KIND_PAD;
    p.length = s->g.chunk_size - L;
    p.new_len = s->g.chunk_size;
  } else {
    p.kind = offset == L ? CS_STORE_KIND_APPEND : CS_STORE_KIND_OVERWRITE;
    p.length = len;
    p.new_len = CMN_MAX(L, offset + len);
    p.crc = crc;
  }
  cs__pending *old = cs__pending_find(s, handle);
  if (old) {
    cs__pending cmp = p;
    if (pad) cmp.crc = old->crc;
    rc = old->serial != serial ? CAIRN_EBUSY : same_mutation(old, &cmp) ? 0 : CAIRN_ECONFLICT;
    pthread_mutex_unlock(&s->mu);
    return rc;
  }
  if (pad ? offset != L : offset > L) { /* chunks have no holes */
    pthread_mutex_unlock(&s->mu);
    return CAIRN_EINVAL;
  }
  unsigned dir = e->dir;
  uint16_t gen = e->gen;
  int cur = (e->flags & CS__F_SLOTB) ? 1 : 0;
  e->flags |= CS__F_PREPARING; /* from here, no stage may claim the tail */
  pthread_mutex_unlock(&s->mu);
  if (pad) p.crc = cs__crc_zeros(0, p.length);

  char path[PATH_MAX];
  cs__chunk_path(s, dir, handle, version, path);
  unsigned char *slot = cmn_malloc(cs__slot_used(&s->g));
  unsigned char *scratch = cmn_malloc(B);
  uint32_t *blk = NULL;
  bool wrote_data = false, wrote_side = false, wrote_rec = false, reserved = false;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  cs__header h;
  if ((rc = cs__read_slot(&s->g, fd, cur, slot, &h)) != 0) goto fail;
  if (h.handle != handle || h.version != version || h.committed != L) {
    rc = CAIRN_ECORRUPT;
    goto fail;
  }
  if (serial <= h.last_serial) {
    rc = CAIRN_ECONFLICT;
    goto fail;
  }
  if (p.kind == CS_STORE_KIND_APPEND && L % B != 0) {
    /* The commit will merge the old bytes of the partial block into a new
     * CRC: they must be good now, or the vote is no. */
    uint32_t bad;
    rc = cs__verify_blocks(&s->g, fd, slot, L, (uint32_t)(L / B), (uint32_t)(L / B), scratch, &bad);
    if (rc != 0) goto fail;
  }
  /* The new block CRCs come from the bytes in memory: made while a stage
   * of them may still be writing, not after the sync. */
  if (p.kind == CS_STORE_KIND_APPEND) blk = append_crcs(slot, L, data, len);
  /* Bytes staged past the committed length are this APPEND's, or go. */
  int staged = cs__stage_take(s, &p, fd);
  if (staged < 0) {
    rc = staged;
    goto fail;
  }
  if ((rc = cs__step(s, "prepare.data")) != 0) goto fail;
  if (p.kind == CS_STORE_KIND_APPEND) {
    wrote_data = true;
    if (!staged) rc = cs__pwrite_bulk(fd, data, len, s->g.data_off + L, s->g.data_off + L);
  } else if (p.kind == CS_STORE_KIND_PAD) {
    wrote_data = true;
    rc = write_pad(s, fd, L);
  } else {
    reserved = true;
    rc = reserve_growth(s, fd, L, p.new_len);
    if (rc == 0) {
      wrote_side = true;
      rc = write_side(s, dir, &p, data, fd, slot, scratch);
    }
  }
  if (rc != 0) goto fail;
  if ((rc = cs__step(s, "prepare.intent")) != 0) goto fail;
  wrote_rec = true;
  if ((rc = write_rec(s, fd, &p, CS__REC_PREPARED)) != 0) goto fail;
  if ((rc = cs__step(s, "prepare.sync")) != 0) goto fail;
  if ((rc = cs__fdatasync(fd)) != 0) goto fail;
  /* A bulk append's bytes are on disk: their pages go (cs__pwrite_bulk). */
  if (p.kind == CS_STORE_KIND_APPEND && len >= CS__BULK_PIECE)
    cs__drop_cache(fd, s->g.data_off + L, s->g.data_off + L + len, false);
  if (p.kind == CS_STORE_KIND_OVERWRITE) {
    if ((rc = cs__step(s, "prepare.dirsync")) != 0) goto fail;
    if ((rc = cs__fsync_dir_of(path)) != 0) goto fail;
  }
  p.blk = blk;
  close(fd);
  free(slot);
  free(scratch);
  pthread_mutex_lock(&s->mu);
  cs__pending_add(s, &p);
  e = cs__index_find(&s->index, handle);
  if (e) e->flags = (uint8_t)((e->flags | CS__F_PENDING) & ~CS__F_PREPARING);
  pthread_mutex_unlock(&s->mu);
  return 0;
fail:
  if (!cs__crashed(s) && fd >= 0) {
    /* Undo whatever part of the attempt reached the disk. */
    if (wrote_rec) cs__clear_intent(s, fd);
    if (wrote_data || reserved) cs__truncate_to(s, fd, L);
    if (wrote_data || wrote_rec || reserved) cs__fdatasync(fd);
  }
  if (!cs__crashed(s) && wrote_side) {
    cs__side_path(s, dir, handle, version, serial, path);
    unlink(path);
  }
  if (fd >= 0) close(fd);
  free(blk);
  free(slot);
  free(scratch);
  pthread_mutex_lock(&s->mu);
  e = cs__index_find(&s->index, handle);
  if (e) e->flags &= (uint8_t)~CS__F_PREPARING;
  pthread_mutex_unlock(&s->mu);
  if (cs__crashed(s)) return rc;
  if (rc == CAIRN_ECHECKSUM || rc == CAIRN_ECORRUPT) {
    cs__mark_corrupt(s, handle, version, gen,
                     rc == CAIRN_ECHECKSUM ? "committed bytes failed their CRC during prepare"
                                           : "bad header during prepare");
    return rc;
  }
  cs__dir_error(s, dir, rc, "prepare", handle);
  return rc;
}

/* ---- commit ---- */

/*
 * The decision for a serial that is not pending: at or below the header's
 * last committed serial it was committed (decided = 1), else unknown (0).
 */
static int decided_serial(cs_store *s, unsigned dir, uint64_t handle, uint64_t version, int cur,
                          uint64_t serial, int *committed) {
  char path[PATH_MAX];
  cs__chunk_path(s, dir, handle, version, path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cs__io_err(errno);
  unsigned char *slot = cmn_malloc(cs__slot_used(&s->g));
  cs__header h;
  int rc = cs__read_slot(&s->g, fd, cur, slot, &h);
  if (rc == 0) {
    *committed = serial <= h.last_serial ? 1 : 0;
    if (serial == h.last_serial) *committed = 2;
  }
  free(slot);
  close(fd);
  return rc;
}

/*
 * New CRCs of the blocks an APPEND/PAD fills, from the bytes on disk: the
 * old bytes of a partial first block are checked against its old CRC
 * (*which = 1 on mismatch: the replica is corrupt), the new bytes against
 * the intent's CRC (*which = 2: the prepared data was damaged).
 */
static int inplace_crcs(cs_store *s, int fd, const cs__pending *p, unsigned char *slot,
                        unsigned char *scratch, int *which) {
  uint64_t L = p->old_len, nl = p->new_len;
  uint32_t dcrc = 0;
  for (uint64_t bs = L / B * B; bs < nl; bs += B) {
    size_t n = (size_t)(CMN_MIN(bs + B, nl) - bs);
    int64_t got = cs__pread(fd, scratch, n, s->g.data_off + bs);
    if (got < 0) return (int)got;
    if ((size_t)got < n) {
      *which = 2;
      return CAIRN_ECHECKSUM;
    }
    size_t old = bs < L ? (size_t)(L - bs) : 0;
    if (old && cmn_crc32c(0, scratch, old) != cs__table_get(slot, (uint32_t)(bs / B))) {
      *which = 1;
      return CAIRN_ECHECKSUM;
    }
    dcrc = cmn_crc32c(dcrc, scratch + old, n - old);
    cs__table_set(slot, (uint32_t)(bs / B), cmn_crc32c(0, scratch, n));
  }
  if (dcrc != p->crc) {
    *which = 2;
    return CAIRN_ECHECKSUM;
  }
  return 0;
}

/*
 * The start shared by commit and abort: check the replica (*ep), then find
 * the mutation `serial`. Returns 1 with s->mu held, *pp its pending record, when
 * it is pending here; 0 with the lock released and *committed from the
 * journal (decided_serial) when it was already decided; a negative code
 * (lock released) otherwise.
 */
static int txn_begin(cs_store *s, uint64_t handle, uint64_t version, uint64_t serial,
                     const char *what, cs__entry **ep, unsigned *dir, int *cur,
                     cs__pending **pp, int *committed) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (handle == CS__NO_HANDLE || version == 0 || serial == 0) return CAIRN_EINVAL;
  pthread_mutex_lock(&s->mu);
  cs__entry *e = cs__index_find(&s->index, handle);
  int rc = 0;
  if (!e || s->dirs[e->dir].state == CS_STORE_DIR_FAILED) rc = CAIRN_ENOENT;
  else if (e->version != version) rc = CAIRN_ESTALE;
  if (rc != 0) {
    pthread_mutex_unlock(&s->mu);
    return rc;
  }
  *ep = e;
  *dir = e->dir;
  *cur = (e->flags & CS__F_SLOTB) ? 1 : 0;
  *pp = cs__pending_find(s, handle);
  if (*pp && (*pp)->serial == serial) return 1;
  pthread_mutex_unlock(&s->mu);
  *committed = 0;
  rc = decided_serial(s, *dir, handle, version, *cur, serial, committed);
  if (rc != 0) {
    cs__dir_error(s, *dir, rc, what, handle);
    return rc;
  }
  return 0;
}

int cs_store_commit(cs_store *s, uint64_t handle, uint64_t version, uint64_t serial) {
  cs__entry *e;
  unsigned dir;
  int cur, committed;
  cs__pending *pp;
  int rc = txn_begin(s, handle, version, serial, "commit", &e, &dir, &cur, &pp, &committed);
  if (rc < 0) return rc;
  if (rc == 0) return committed ? 0 : CAIRN_ENOENT;
  cs__pending p = *pp;
  cs__change_begin(s, e);
  uint16_t gen = e->gen;
  pthread_mutex_unlock(&s->mu);

  char path[PATH_MAX];
  cs__chunk_path(s, dir, handle, version, path);
  unsigned char *slot = cmn_malloc(cs__slot_used(&s->g));
  unsigned char *scratch = cmn_malloc(B);
  bool drop = false, corrupt = false, started = false;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  cs__header h;
  if ((rc = cs__read_slot(&s->g, fd, cur, slot, &h)) != 0) {
    corrupt = rc == CAIRN_ECORRUPT;
    goto fail;
  }
  if (p.kind != CS_STORE_KIND_OVERWRITE) {
    int which = 0;
    if (p.blk) {
      /* Prepared by this process: the CRCs were taken from the bytes it
       * wrote, so the append is not read back. */
      for (uint64_t b = p.old_len / B, i = 0; b * B < p.new_len; b++, i++)
        cs__table_set(slot, (uint32_t)b, p.blk[i]);
      rc = 0;
    } else {
      rc = inplace_crcs(s, fd, &p, slot, scratch, &which);
    }
    if (rc == CAIRN_ECHECKSUM) {
      drop = true;
      corrupt = which == 1;
    }
    if (rc != 0) goto fail;
    h.committed = p.new_len;
    h.last_serial = serial;
    h.seq++;
    cs__header_encode(&s->g, &h, slot);
    started = true;
    if ((rc = cs__step(s, "commit.header")) != 0) goto fail;
    if ((rc = cs__pwrite(fd, slot, cs__slot_used(&s->g), cs__slot_off(&s->g, 1 - cur))) != 0)
      goto fail;
    if ((rc = cs__step(s, "commit.sync")) != 0) goto fail;
    if ((rc = cs__fdatasync(fd)) != 0) goto fail;
  } else {
    if (!p.decided) {
      /* Check the side file before the point of no return. */
      rc = cs__side_walk(s, dir, &p, -1, NULL, scratch);
      if (rc == CAIRN_ECHECKSUM || rc == CAIRN_ECORRUPT || rc == CAIRN_ENOENT) {
        drop = true;
        rc = CAIRN_ECHECKSUM;
      }
      if (rc != 0) goto fail;
      started = true;
      if ((rc = cs__step(s, "commit.decide")) != 0) goto fail;
      if ((rc = write_rec(s, fd, &p, CS__REC_DECIDED)) != 0) goto fail;
      if ((rc = cs__step(s, "commit.decide_sync")) != 0) goto fail;
      if ((rc = cs__fdatasync(fd)) != 0) goto fail;
    }
    started = true;
    rc = cs__apply_side(s, dir, fd, &p, cur, &h, slot, scratch);
    if (rc == CAIRN_ECHECKSUM || rc == CAIRN_ECORRUPT || rc == CAIRN_ENOENT) {
      /* Decided but not applicable: the replica is now inconsistent. */
      corrupt = true;
      rc = CAIRN_ECHECKSUM;
    }
    if (rc != 0) goto fail;
  }
  /* The new header is durable: the mutation is committed. What follows only
   * tidies up; the scan would do it after a crash. */
  if ((rc = cs__step(s, "commit.clear")) != 0) goto fail;
  cs__clear_intent(s, fd);
  if (p.kind == CS_STORE_KIND_OVERWRITE) {
    if ((rc = cs__step(s, "commit.side")) != 0) goto fail;
    cs__side_path(s, dir, handle, version, serial, path);
    unlink(path);
  }
  close(fd);
  free(slot);
  free(scratch);
  pthread_mutex_lock(&s->mu);
  e = cs__index_find(&s->index, handle);
  e->length = (uint32_t)p.new_len;
  e->flags = (uint8_t)((e->flags ^ CS__F_SLOTB) & ~CS__F_PENDING);
  cs__pending_del(s, handle);
  cs__change_end(s, handle);
  pthread_mutex_unlock(&s->mu);
  return 0;
fail:
  if (cs__crashed(s)) {
    if (fd >= 0) close(fd);
    free(slot);
    free(scratch);
    return rc;
  }
  if (drop && fd >= 0) {
    /* The prepared bytes cannot be committed: undo the mutation, so this
     * replica stays in its old state (the 2PC layer reports the failure). */
    CMN_WARN(CS__MOD, "prepared mutation failed verification at commit handle=%016" PRIx64
             " serial=%" PRIu64, handle, serial);
    cs__clear_intent(s, fd);
    cs__truncate_to(s, fd, p.old_len);
    cs__fdatasync(fd);
    cs__side_path(s, dir, handle, version, serial, path);
    unlink(path);
  }
  if (fd >= 0) close(fd);
  free(slot);
  free(scratch);
  pthread_mutex_lock(&s->mu);
  e = cs__index_find(&s->index, handle);
  pp = cs__pending_find(s, handle);
  if (drop) {
    cs__pending_del(s, handle);
    if (e) e->flags &= (uint8_t)~CS__F_PENDING;
  } else if (started && pp) {
    pp->decided = true; /* only a commit may follow now */
  }
  cs__change_end(s, handle);
  pthread_mutex_unlock(&s->mu);
  if (corrupt) cs__mark_corrupt(s, handle, version, (uint16_t)(gen + 1), "commit verification");
  cs__dir_error(s, dir, rc, "commit", handle);
  return rc;
}

/* ---- abort ---- */

int cs_store_abort(cs_store *s, uint64_t handle, uint64_t version, uint64_t serial) {
  cs__entry *e;
  unsigned dir;
  int cur, committed;
  cs__pending *pp;
  int rc = txn_begin(s, handle, version, serial, "abort", &e, &dir, &cur, &pp, &committed);
  if (rc < 0) return rc;
  if (rc == 0) return committed == 2 ? CAIRN_ECONFLICT : 0;
  if (pp->decided) {
    pthread_mutex_unlock(&s->mu);
    return CAIRN_ECONFLICT;
  }
  cs__pending p = *pp;
  pthread_mutex_unlock(&s->mu);

  char path[PATH_MAX];
  cs__chunk_path(s, dir, handle, version, path);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  if ((rc = cs__step(s, "abort.clear")) != 0) goto fail;
  if ((rc = cs__clear_intent(s, fd)) != 0) goto fail;
  /* Also releases blocks an OVERWRITE reserved past the end. */
  if ((rc = cs__step(s, "abort.truncate")) != 0) goto fail;
  if ((rc = cs__truncate_to(s, fd, p.old_len)) != 0) goto fail;
  if ((rc = cs__step(s, "abort.sync")) != 0) goto fail;
  if ((rc = cs__fdatasync(fd)) != 0) goto fail;
  if (p.kind == CS_STORE_KIND_OVERWRITE) {
    if ((rc = cs__step(s, "abort.side")) != 0) goto fail;
    cs__side_path(s, dir, handle, version, serial, path);
    unlink(path); /* a leftover is removed at open: no intent refers to it */
  }
  close(fd);
  pthread_mutex_lock(&s->mu);
  cs__pending_del(s, handle);
  e = cs__index_find(&s->index, handle);
  if (e) e->flags &= (uint8_t)~CS__F_PENDING;
  pthread_mutex_unlock(&s->mu);
  return 0;
fail:
  if (fd >= 0) close(fd);
  if (!cs__crashed(s)) cs__dir_error(s, dir, rc, "abort", handle);
  return rc;
}

/* ---- pending list ---- */

int cs_store_pending(cs_store *s, cs_store_intent_fn cb, void *arg) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (!cb) return CAIRN_EINVAL;
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  cs_store_intent *snap = cmn_malloc((s->npend ? s->npend : 1) * sizeof *snap);
  for (size_t i = 0; i < s->npend; i++) {
    const cs__pending *p = &s->pend[i];
    const cs__entry *e = cs__index_find(&s->index, p->handle);
    if (e && s->dirs[e->dir].state == CS_STORE_DIR_FAILED) continue;
    snap[n++] = (cs_store_intent){.handle = p->handle, .version = p->version,
                                  .serial = p->serial, .offset = p->offset,
                                  .length = p->length, .crc = p->crc,
                                  .kind = (cs_store_kind)p->kind};
  }
  pthread_mutex_unlock(&s->mu);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = cb(arg, &snap[i]);
  free(snap);
  return rc;
}
