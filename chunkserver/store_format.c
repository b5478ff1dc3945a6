/*
 * store_format.c - the replica store's on-disk encodings (header slots,
 * intent records, side-file headers), file names and paths, and the small
 * positional I/O helpers every store file uses. The layouts are described
 * in store_internal.h.
 */
#include "store_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char HDR_MAGIC[8] = {'C', 'A', 'I', 'R', 'N', 'C', 'H', 'K'};
static const char REC_MAGIC[8] = {'C', 'A', 'I', 'R', 'N', 'I', 'N', 'T'};
static const char SIDE_MAGIC[8] = {'C', 'A', 'I', 'R', 'N', 'S', 'I', 'D'};

void cs__geom_init(cs__geom *g, uint64_t chunk_size) {
  g->chunk_size = chunk_size;
  g->nblocks = (uint32_t)(chunk_size / CS_STORE_BLOCK_SIZE);
  g->slot_size = cs__round_up(CS__HDR_SIZE + 4ull * g->nblocks, CS__PAGE);
  g->intent_off = 2 * g->slot_size;
  g->data_off = g->intent_off + CS__PAGE;
}

/* ---- header slots ---- */

/* The slot CRC covers the header up to the CRC field and the whole table, so
 * a torn write anywhere in the slot invalidates it. */
static uint32_t slot_crc(const cs__geom *g, const unsigned char *buf) {
  uint32_t crc = cmn_crc32c(0, buf, 60);
  return cmn_crc32c(crc, buf + CS__HDR_SIZE, 4u * g->nblocks);
}

void cs__header_encode(const cs__geom *g, const cs__header *h, unsigned char *buf) {
  memcpy(buf, HDR_MAGIC, 8);
  cs__put_le32(buf + 8, CS__FORMAT);
  cs__put_le32(buf + 12, CS_STORE_BLOCK_SIZE);
  cs__put_le64(buf + 16, h->handle);
  cs__put_le64(buf + 24, h->version);
  cs__put_le64(buf + 32, h->committed);
  cs__put_le64(buf + 40, h->chunk_size);
  cs__put_le64(buf + 48, h->last_serial);
  cs__put_le32(buf + 56, h->seq);
  cs__put_le32(buf + 60, slot_crc(g, buf));
}

int cs__header_decode(const cs__geom *g, const unsigned char *buf, cs__header *h) {
  if (memcmp(buf, HDR_MAGIC, 8) != 0) return CAIRN_ECORRUPT;
  if (cs__get_le32(buf + 8) != CS__FORMAT) return CAIRN_ECORRUPT;
  if (cs__get_le32(buf + 12) != CS_STORE_BLOCK_SIZE) return CAIRN_ECORRUPT;
  h->handle = cs__get_le64(buf + 16);
  h->version = cs__get_le64(buf + 24);
  h->committed = cs__get_le64(buf + 32);
  h->chunk_size = cs__get_le64(buf + 40);
  h->last_serial = cs__get_le64(buf + 48);
  h->seq = cs__get_le32(buf + 56);
  /* A replica of another chunk size cannot be checked with this geometry. */
  if (h->chunk_size != g->chunk_size) return CAIRN_ECORRUPT;
  if (h->committed > h->chunk_size || h->version == 0 || h->handle == CS__NO_HANDLE)
    return CAIRN_ECORRUPT;
  if (cs__get_le32(buf + 60) != slot_crc(g, buf)) return CAIRN_ECORRUPT;
  return 0;
}

/* ---- intent records ---- */

void cs__intent_encode(const cs__intent_rec *r, unsigned char buf[CS__REC_SIZE]) {
  memset(buf, 0, CS__REC_SIZE);
  memcpy(buf, REC_MAGIC, 8);
  cs__put_le32(buf + 8, CS__FORMAT);
  cs__put_le32(buf + 12, r->kind);
  cs__put_le64(buf + 16, r->handle);
  cs__put_le64(buf + 24, r->version);
  cs__put_le64(buf + 32, r->serial);
  cs__put_le64(buf + 40, r->offset);
  cs__put_le64(buf + 48, r->length);
  cs__put_le64(buf + 56, r->old_len);
  cs__put_le64(buf + 64, r->new_len);
  cs__put_le32(buf + 72, r->crc);
  cs__put_le32(buf + 76, r->state);
  cs__put_le32(buf + 124, cmn_crc32c(0, buf, 124));
}

int cs__intent_decode(const unsigned char buf[CS__REC_SIZE], cs__intent_rec *r) {
  size_t i = 0;
  while (i < CS__REC_SIZE && buf[i] == 0) i++;
  if (i == CS__REC_SIZE) return CAIRN_ENOENT;
  if (memcmp(buf, REC_MAGIC, 8) != 0 || cs__get_le32(buf + 8) != CS__FORMAT)
    return CAIRN_ECORRUPT;
  if (cs__get_le32(buf + 124) != cmn_crc32c(0, buf, 124)) return CAIRN_ECORRUPT;
  r->kind = cs__get_le32(buf + 12);
  r->handle = cs__get_le64(buf + 16);
  r->version = cs__get_le64(buf + 24);
  r->serial = cs__get_le64(buf + 32);
  r->offset = cs__get_le64(buf + 40);
  r->length = cs__get_le64(buf + 48);
  r->old_len = cs__get_le64(buf + 56);
  r->new_len = cs__get_le64(buf + 64);
  r->crc = cs__get_le32(buf + 72);
  r->state = cs__get_le32(buf + 76);
  if (r->kind < CS_STORE_KIND_APPEND || r->kind > CS_STORE_KIND_PAD) return CAIRN_ECORRUPT;
  if (r->state != CS__REC_PREPARED && r->state != CS__REC_DECIDED) return CAIRN_ECORRUPT;
  if (r->offset + r->length < r->offset || r->new_len < r->old_len) return CAIRN_ECORRUPT;
  return 0;
}

/* ---- side files ---- */

void cs__side_encode(const cs__side_hdr *h, unsigned char *buf) {
  memset(buf, 0, CS__SIDE_HDR_SIZE);
  memcpy(buf, SIDE_MAGIC, 8);
  cs__put_le32(buf + 8, CS__FORMAT);
  cs__put_le32(buf + 12, h->nblocks);
  cs__put_le64(buf + 16, h->handle);
  cs__put_le64(buf + 24, h->version);
  cs__put_le64(buf + 32, h->serial);
  cs__put_le64(buf + 40, h->offset);
  cs__put_le64(buf + 48, h->length);
  cs__put_le64(buf + 56, h->new_len);
  cs__put_le32(buf + 64, h->first_block);
  cs__put_le32(buf + 68, h->crc);
  uint32_t crc = cmn_crc32c(0, buf, 124);
  crc = cmn_crc32c(crc, buf + CS__SIDE_HDR_SIZE, 4u * h->nblocks);
  cs__put_le32(buf + 124, crc);
}

int cs__side_decode(const unsigned char buf[CS__SIDE_HDR_SIZE], uint32_t max_blocks,
                    cs__side_hdr *h) {
  if (memcmp(buf, SIDE_MAGIC, 8) != 0 || cs__get_le32(buf + 8) != CS__FORMAT)
    return CAIRN_ECORRUPT;
  h->nblocks = cs__get_le32(buf + 12);
  h->handle = cs__get_le64(buf + 16);
  h->version = cs__get_le64(buf + 24);
  h->serial = cs__get_le64(buf + 32);
  h->offset = cs__get_le64(buf + 40);
  h->length = cs__get_le64(buf + 48);
  h->new_len = cs__get_le64(buf + 56);
  h->first_block = cs__get_le32(buf + 64);
  h->crc = cs__get_le32(buf + 68);
  if (h->nblocks == 0 || h->nblocks > max_blocks || h->first_block >= max_blocks ||
      h->nblocks > max_blocks - h->first_block)
    return CAIRN_ECORRUPT;
  /* The images cover exactly the blocks of [offset, offset + length), which
   * lies inside the new committed length. */
  uint64_t end = h->offset + h->length;
  if (h->length == 0 || end < h->offset || end > h->new_len ||
      h->offset / CS_STORE_BLOCK_SIZE != h->first_block ||
      (end - 1) / CS_STORE_BLOCK_SIZE != (uint64_t)h->first_block + h->nblocks - 1)
    return CAIRN_ECORRUPT;
  return 0;
}

int cs__side_check(const unsigned char *buf, const cs__side_hdr *h) {
  uint32_t crc = cmn_crc32c(0, buf, 124);
  crc = cmn_crc32c(crc, buf + CS__SIDE_HDR_SIZE, 4u * h->nblocks);
  return crc == cs__get_le32(buf + 124) ? 0 : CAIRN_ECORRUPT;
}

/* ---- names and paths ---- */

/* Parse exactly 16 lower-case hex digits. */
static int parse_hex16(const char *p, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < 16; i++) {
    char c = p[i];
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else return -1;
    x = x << 4 | (uint64_t)d;
  }
  *v = x;
  return 0;
}

/* Parse a decimal without leading zeros (so each value has one name) that
 * fits in u64; *end gets the first character after it. */
static int parse_dec(const char *p, uint64_t *v, const char **end) {
  if (*p < '0' || *p > '9' || (*p == '0' && p[1] >= '0' && p[1] <= '9')) return -1;
  uint64_t x = 0;
  while (*p >= '0' && *p <= '9') {
    uint64_t d = (uint64_t)(*p - '0');
    if (x > (UINT64_MAX - d) / 10) return -1;
    x = x * 10 + d;
    p++;
  }
  *v = x;
  *end = p;
  return 0;
}

cs__file_type cs__parse_name(const char *name, uint64_t *handle, uint64_t *version,
                             uint64_t *serial) {
  size_t n = strlen(name);
  if (n > 4 && strcmp(name + n - 4, ".tmp") == 0) return CS__FILE_TMP;
  if (n < 18 || name[16] != '_' || parse_hex16(name, handle) != 0) return CS__FILE_OTHER;
  if (*handle == CS__NO_HANDLE) return CS__FILE_OTHER;
  const char *p;
  if (parse_dec(name + 17, version, &p) != 0 || *version == 0) return CS__FILE_OTHER;
  if (strcmp(p, ".chunk") == 0) return CS__FILE_CHUNK;
  if (p[0] == '.' && p[1] == 's' && parse_dec(p + 2, serial, &p) == 0 && *p == '\0' &&
      *serial != 0)
    return CS__FILE_SIDE;
  return CS__FILE_OTHER;
}

void cs__chunk_path(const cs_store *s, unsigned dir, uint64_t handle, uint64_t version,
                    char *buf) {
  snprintf(buf, PATH_MAX, "%s/%02x/%016" PRIx64 "_%" PRIu64 ".chunk", s->dirs[dir].path,
           (unsigned)(handle & 0xff), handle, version);
}

void cs__side_path(const cs_store *s, unsigned dir, uint64_t handle, uint64_t version,
                   uint64_t serial, char *buf) {
  snprintf(buf, PATH_MAX, "%s/%02x/%016" PRIx64 "_%" PRIu64 ".s%" PRIu64, s->dirs[dir].path,
           (unsigned)(handle & 0xff), handle, version, serial);
}

/* ---- I/O helpers ---- */

int cs__io_err(int err) {
  switch (err) {
  case ENOSPC:
  case EDQUOT: return CAIRN_ENOSPC;
  case EROFS: return CAIRN_EREADONLY;
  default: return CAIRN_EIO;
  }
}

int64_t cs__pread(int fd, void *buf, size_t n, uint64_t off) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return CAIRN_EIO;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (int64_t)got;
}

int cs__pwrite(int fd, const void *buf, size_t n, uint64_t off) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return cs__io_err(errno);
    }
    done += (size_t)w;
  }
  return 0;
}

void cs__drop_cache(int fd, uint64_t from, uint64_t to, bool wait) {
  if (to <= from) return;
#ifdef SYNC_FILE_RANGE_WRITE
  if (wait)
    (void)sync_file_range(fd, (off_t)from, (off_t)(to - from),
                          SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                              SYNC_FILE_RANGE_WAIT_AFTER);
#else
  (void)wait;
#endif
  (void)posix_fadvise(fd, (off_t)from, (off_t)(to - from), POSIX_FADV_DONTNEED);
}

int cs__pwrite_bulk(int fd, const void *buf, size_t n, uint64_t off, uint64_t floor) {
  const char *p = buf;
  while (n > 0) {
    size_t k = n < CS__BULK_PIECE ? n : CS__BULK_PIECE;
    int rc = cs__pwrite(fd, p, k, off);
    if (rc != 0) return rc;
#ifdef SYNC_FILE_RANGE_WRITE
    /* Start writeback of this piece now; only a hint, so errors are left
     * to the fdatasync that follows. */
    (void)sync_file_range(fd, (off_t)off, (off_t)k, SYNC_FILE_RANGE_WRITE);
#endif
    /* The piece CS__DROP_LAG behind this one: on disk by now, so its
     * pages go. The window's ends are rounded down to CS__BULK_PIECE of
     * the file, so a large folio of the page cache never straddles two
     * windows (a partly covered folio is not dropped); consecutive calls
     * tile the range without gaps. */
    uint64_t to = off + k > CS__DROP_LAG ? cs__round_down(off + k - CS__DROP_LAG, CS__BULK_PIECE) : 0;
    uint64_t from = off > CS__DROP_LAG ? cs__round_down(off - CS__DROP_LAG, CS__BULK_PIECE) : 0;
    if (from < floor) from = floor;
    cs__drop_cache(fd, from, to, true);
    p += k;
    off += k;
    n -= k;
  }
  return 0;
}

int cs__fdatasync(int fd) {
  while (fdatasync(fd) != 0) {
    if (errno != EINTR) return cs__io_err(errno);
  }
  return 0;
}

int cs__fsync_dir_of(const char *path) { return cmn_fsync_parent_dir(path); }

uint32_t cs__crc_zeros(uint32_t crc, uint64_t n) {
  static const unsigned char zeros[CS__PAGE];
  while (n > 0) {
    size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
    crc = cmn_crc32c(crc, zeros, k);
    n -= k;
  }
  return crc;
}
