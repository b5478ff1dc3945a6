/*
 * store_internal.h - what the files of the replica store share: the on-disk
 * formats, the in-memory index, the store struct and small I/O helpers.
 * Not a public interface (cs__ prefix): only chunkserver/store*.c and the
 * store's unit tests include it.
 *
 * ---- Replica file: <dir>/<xx>/<handle:016x>_<version>.chunk ----
 *
 *   [0, R)          header slot A: header (64 B) + CRC table (4 B per block)
 *   [R, 2R)         header slot B: the same
 *   [2R, 2R+4096)   intent page: prepare record at +0, commit record at +512
 *   [2R+4096, ...)  data; the file ends exactly at the committed length when
 *                   no APPEND/PAD is prepared
 * R = 64 + 4 * (chunk_size / 64 KiB), rounded up to 4 KiB (8 KiB for 64 MiB
 * chunks, so data starts at 20 KiB). All integers little-endian.
 *
 * Header (64 B): magic "CAIRNCHK", format u32 (1), block size u32 (65536),
 * handle u64, version u64, committed length u64, chunk size u64, last
 * committed serial u64, slot sequence u32, CRC32C u32 of bytes [0, 60) and of
 * the table. The CRC table holds one CRC32C per block; the entry of the last,
 * partial block covers only the committed bytes; entries past the committed
 * length are 0. The valid slot with the higher sequence (wrap-aware) is the
 * current one; a header update writes the other slot and fsyncs it, so a torn
 * header write leaves the previous header in force: header updates are atomic.
 *
 * Intent record (128 B, at 2R for "prepared", at 2R+512 for "commit
 * decided"): magic "CAIRNINT", format u32, kind u32, handle, version, serial,
 * offset, length, old committed length, new committed length (u64 each),
 * data CRC u32, state u32 (1 prepared, 2 decided), zeros, CRC32C u32 of
 * [0, 124). An all-zero record means none. Both records are zeroed once the
 * mutation is finished, so between mutations the intent page is all zeros
 * and an abort restores the file byte for byte.
 *
 * ---- Side file (OVERWRITE): <handle:016x>_<version>.s<serial> ----
 *   header (128 B): magic "CAIRNSID", format u32, nblocks u32, handle,
 *   version, serial, offset, length, new committed length (u64 each), first
 *   block u32, data CRC u32, zeros, CRC32C u32 of [0, 124) and of the table;
 *   table: one CRC32C per block image; images from roundup(128 + 4n, 4096):
 *   the complete new contents of every block the write touches (old committed
 *   bytes merged with the new ones), each 64 KiB but the last, which ends at
 *   the new committed length. Commit is then a pure, repeatable copy.
 *
 * ---- Crash windows ----
 * prepare APPEND/PAD: data written past the committed length, then the
 *   prepare record, one fdatasync. Crash before the fsync completes: at open
 *   the record is missing, torn (bad CRC) or describes bytes that fail the
 *   data CRC -> dropped, the file truncated to the committed length (old
 *   state; prepare had not answered, so no yes vote was lost).
 * prepare OVERWRITE: side file written and fsynced, prepare record written,
 *   chunk fdatasync, dir fsync (the side file's name). Crash before: record
 *   missing/torn, or side file missing/torn -> dropped, side file removed.
 * commit APPEND/PAD: new header (committed length, CRCs, serial) into the
 *   other slot, fdatasync, records zeroed. Crash before the header is durable:
 *   old header + prepare record -> pending again (commit again after asking
 *   the primary). After: last serial >= the record's serial -> finished,
 *   records zeroed at open.
 * commit OVERWRITE: commit record written and fdatasynced FIRST (the only
 *   step that makes the decision durable), then the images are copied in
 *   place, the new header written to the other slot, fdatasync, records
 *   zeroed, side file removed. Crash after the commit record: open redoes the
 *   copy from the side file (verified image by image) and the header; a
 *   missing or bad side file then makes the replica corrupt (reported).
 * abort: records zeroed, file truncated to the committed length (which also
 *   frees blocks an OVERWRITE reserved past it), fdatasync, side file
 *   removed. Crash anywhere: pending again, or dropped at open.
 * set_version: header with the new version into the other slot, fdatasync,
 *   rename, dir fsync. Crash between: open sees a header version above the
 *   name's and finishes the rename.
 * create / import: everything in <name>.chunk.tmp, fsync, rename, dir fsync;
 *   *.tmp are removed at open. Import of a newer version publishes it before
 *   deleting the old; open keeps the highest version of a handle.
 *
 * ---- Concurrency ----
 * `mu` guards the index, the pending list and dir states, and is held only
 * for memory work, never across disk I/O. Each index entry has a generation
 * `gen`: odd while a commit / version change / delete is rewriting committed
 * state. Readers wait (stable_cv) while it is odd, snapshot the entry, read
 * without the lock, and accept the result only if the generation, version
 * and dir are unchanged afterwards; otherwise they retry. A checksum
 * mismatch therefore marks a replica corrupt only when no writer overlapped.
 */
#ifndef CS_STORE_INTERNAL_H
#define CS_STORE_INTERNAL_H

#include "cs_store.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CS__MOD "store"
#define CS__FORMAT 1u
#define CS__HDR_SIZE 64u
#define CS__PAGE 4096u
#define CS__REC_SIZE 128u
#define CS__REC_DECIDED_OFF 512u /* offset of the commit record in the intent page */
#define CS__SIDE_HDR_SIZE 128u
#define CS__REC_PREPARED 1u
#define CS__REC_DECIDED 2u
#define CS__NO_HANDLE UINT64_MAX /* free index slot; never a valid handle */
#define CS__READ_ATTEMPTS 16

static inline uint64_t cs__round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
static inline uint64_t cs__round_down(uint64_t x, uint64_t a) { return x / a * a; }

static inline void cs__put_le32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void cs__put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t cs__get_le32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static inline uint64_t cs__get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* ---- geometry of a replica file for one chunk size ---- */

typedef struct cs__geom {
  uint64_t chunk_size;
  uint32_t nblocks;     /* chunk_size / block size */
  uint64_t slot_size;   /* R */
  uint64_t intent_off;  /* 2R */
  uint64_t data_off;    /* 2R + 4096 */
} cs__geom;

void cs__geom_init(cs__geom *g, uint64_t chunk_size);
/* Bytes of a slot that carry meaning: header + table. */
static inline size_t cs__slot_used(const cs__geom *g) { return CS__HDR_SIZE + 4u * g->nblocks; }
static inline uint64_t cs__slot_off(const cs__geom *g, int slot) { return (uint64_t)slot * g->slot_size; }

/* ---- header slot ---- */

typedef struct cs__header {
  uint64_t handle, version, committed, chunk_size, last_serial;
  uint32_t seq;
} cs__header;

/* Encode h into buf[0, 64) and seal the slot: buf must hold cs__slot_used
 * bytes with the CRC table already at buf + 64. */
void cs__header_encode(const cs__geom *g, const cs__header *h, unsigned char *buf);
/* Decode and validate a slot (magic, format, block size, chunk size equal to
 * g's, committed <= chunk size, CRC). 0 or CAIRN_ECORRUPT. */
int cs__header_decode(const cs__geom *g, const unsigned char *buf, cs__header *h);
static inline uint32_t cs__table_get(const unsigned char *slot, uint32_t block) {
  return cs__get_le32(slot + CS__HDR_SIZE + 4u * block);
}
static inline void cs__table_set(unsigned char *slot, uint32_t block, uint32_t crc) {
  cs__put_le32(slot + CS__HDR_SIZE + 4u * block, crc);
}
/* 1 when sequence a is newer than b (serial-number arithmetic). */
static inline int cs__seq_newer(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

/* ---- intent records ---- */

typedef struct cs__intent_rec {
  uint32_t kind, state;
  uint64_t handle, version, serial, offset, length, old_len, new_len;
  uint32_t crc;
} cs__intent_rec;

void cs__intent_encode(const cs__intent_rec *r, unsigned char buf[CS__REC_SIZE]);
/* 0, CAIRN_ENOENT (all zero: no record) or CAIRN_ECORRUPT (torn / garbage). */
int cs__intent_decode(const unsigned char buf[CS__REC_SIZE], cs__intent_rec *r);

/* ---- side files ---- */

typedef struct cs__side_hdr {
  uint64_t handle, version, serial, offset, length, new_len;
  uint32_t first_block, nblocks, crc;
} cs__side_hdr;

static inline uint64_t cs__side_data_off(uint32_t nblocks) {
  return cs__round_up(CS__SIDE_HDR_SIZE + 4u * (uint64_t)nblocks, CS__PAGE);
}
/* buf holds 128 + 4 * nblocks bytes, the table at buf + 128 already filled. */
void cs__side_encode(const cs__side_hdr *h, unsigned char *buf);
/* Validate the fixed part (magic, format, nblocks <= max_blocks); the CRC
 * needs the table: cs__side_check. 0 or CAIRN_ECORRUPT. */
int cs__side_decode(const unsigned char buf[CS__SIDE_HDR_SIZE], uint32_t max_blocks,
                    cs__side_hdr *h);
int cs__side_check(const unsigned char *buf, const cs__side_hdr *h);

/* ---- names ---- */

typedef enum cs__file_type {
  CS__FILE_OTHER = 0,
  CS__FILE_CHUNK,
  CS__FILE_SIDE,
  CS__FILE_TMP,
} cs__file_type;

/* Classify a file name of a subfolder; fills handle, version (CHUNK, SIDE)
 * and serial (SIDE). */
cs__file_type cs__parse_name(const char *name, uint64_t *handle, uint64_t *version,
                             uint64_t *serial);

/* ---- in-memory index: open addressing, linear probing ---- */

#define CS__F_CORRUPT 0x01u /* failed verification: reported, no new writes */
#define CS__F_BADHDR 0x02u  /* no valid header: nothing can be served */
#define CS__F_SLOTB 0x04u   /* the current header is slot B */
#define CS__F_PENDING 0x08u /* a prepared mutation is in the pending list */
#define CS__F_PREPARING 0x10u /* a prepare is writing: no stage may begin */

typedef struct cs__entry {
  uint64_t handle;   /* CS__NO_HANDLE in a free slot */
  uint64_t version;
  uint32_t length;   /* committed bytes (chunk size <= 1 GiB) */
  uint16_t gen;      /* odd while committed state is being rewritten */
  uint8_t dir;
  uint8_t flags;
} cs__entry;         /* 24 bytes */

typedef struct cs__index {
  cs__entry *slots;  /* cap entries, NULL when cap is 0 */
  size_t cap, n;     /* cap: 0 or a power of two */
} cs__index;

void cs__index_free(cs__index *ix);
/* The entry of handle, NULL if absent. Valid until the next put or del. */
cs__entry *cs__index_find(const cs__index *ix, uint64_t handle);
/* Insert or replace by e->handle; returns the stored entry (valid as above). */
cs__entry *cs__index_put(cs__index *ix, const cs__entry *e);
/* Remove; true when it was present. */
bool cs__index_del(cs__index *ix, uint64_t handle);

/* ---- the store ---- */

typedef struct cs__pending {
  uint64_t handle, version, serial, offset, length, old_len, new_len;
  uint32_t crc;
  uint8_t kind;       /* cs_store_kind */
  bool decided;       /* the commit record is durable: only commit may follow */
  uint32_t *blk;      /* APPEND prepared here: the new CRC of every block from
                       * offset / B on, computed from the bytes in memory, so
                       * the commit need not read them back; NULL when the
                       * pending record was rebuilt from disk. Owned by the
                       * pending list (freed by cs__pending_del). */
} cs__pending;

typedef struct cs__dir {
  char *path;
  cs_store_dir_state state;
  int64_t readonly_since_ms;
  dev_t dev;
} cs__dir;

struct cs_store {
  cs_store_opts opts;       /* defaults resolved */
  cs__geom g;
  char id[37];
  cs__dir *dirs;
  size_t ndirs;
  atomic_int dead;          /* a simulated crash happened: refuse everything */

  pthread_mutex_t mu;
  pthread_cond_t stable_cv; /* an entry's gen became even again, or a crash */
  /* --- under mu --- */
  cs__index index;
  cs__pending *pend;
  size_t npend, cap_pend;
  cs_stage *stages;         /* store_stage.c: at most one per chunk */
};

/* Paths (buffers of PATH_MAX; open() checked dir lengths so they fit). */
void cs__chunk_path(const cs_store *s, unsigned dir, uint64_t handle, uint64_t version,
                    char *buf);
void cs__side_path(const cs_store *s, unsigned dir, uint64_t handle, uint64_t version,
                   uint64_t serial, char *buf);

/* Full positional I/O. pread returns the bytes read (short at end of file)
 * or a negative code; pwrite returns 0 or a negative code. */
int64_t cs__pread(int fd, void *buf, size_t n, uint64_t off);
int cs__pwrite(int fd, const void *buf, size_t n, uint64_t off);
/* pwrite of a large range in CS__BULK_PIECE pieces, starting the
 * writeback of each piece as soon as it is in the page cache, so the copy of
 * the next piece overlaps the disk writing the previous one and the
 * fdatasync that follows has little left to wait for.
 *
 * Drop-behind: the bytes CS__DROP_LAG behind the piece just written (but
 * not before `floor`, where the caller's range began) are waited for on
 * the disk and dropped from the page cache. Freshly written replica bytes
 * are read by remote clients, if at all, long after; kept cached they only
 * grow the page cache and push out what readers use (on a small board, all
 * of it), and filling ever new page-cache memory measured as the largest
 * CPU cost of a write (3-4x the cost of reusing dropped pages). Writes of
 * one range in consecutive calls (a stage) drop all of it but the last
 * CS__DROP_LAG; the caller drops that after its fdatasync
 * (cs__drop_cache). Only a cache hint: no byte's durability or content
 * depends on it. */
#define CS__BULK_PIECE (2u << 20)
#define CS__DROP_LAG (4u << 20)
int cs__pwrite_bulk(int fd, const void *buf, size_t n, uint64_t off, uint64_t floor);
/* Drop [from, to) of fd from the page cache; `wait` first waits for its
 * writeback (else dirty pages simply stay). */
void cs__drop_cache(int fd, uint64_t from, uint64_t to, bool wait);
int cs__fdatasync(int fd);
int cs__fsync_dir_of(const char *path);
/* errno -> cairn code for I/O: ENOSPC/EDQUOT, EROFS -> EREADONLY, else EIO. */
int cs__io_err(int err);

/* ---- store_stage.c ---- */

/* A prepare of `p` (not yet written; `fd` is the replica file) takes the
 * chunk's stage, if any: 1 when the stage holds exactly p's bytes in place
 * (an APPEND, same offset, length and CRC, same file), which then need not
 * be written again; 0 when there is none or the staged bytes were cut off;
 * a negative code when cutting them off failed (the prepare must fail). */
int cs__stage_take(cs_store *s, const cs__pending *p, int fd);
/* cs_store_close: drop the list (no writer may be left). */
void cs__stage_free_all(cs_store *s);

/* Fault injection point: 0 to go on; a negative code to fail the step; on
 * a simulated crash marks the store dead and returns CAIRN_EIO. */
int cs__step(cs_store *s, const char *name);
static inline bool cs__crashed(cs_store *s) { return atomic_load(&s->dead) != 0; }

/* Account an error of an operation on `dir`: ENOSPC/EREADONLY mark it
 * read-only, EIO failed (each once, logged and notified). Other codes and
 * errors after a simulated crash are ignored. Takes mu. */
void cs__dir_error(cs_store *s, unsigned dir, int rc, const char *what, uint64_t handle);

/* Pick the ok dir with the most free space above the reserve; CAIRN_ENOSPC
 * when none (CAIRN_EIO when every dir failed). Takes no lock during statvfs. */
int cs__pick_dir(cs_store *s, unsigned *dir);

/* Under mu: pending record of handle, or NULL. */
cs__pending *cs__pending_find(cs_store *s, uint64_t handle);
void cs__pending_add(cs_store *s, const cs__pending *p);
void cs__pending_del(cs_store *s, uint64_t handle);

/* Under mu: start / end a rewrite of the committed state of handle (gen odd
 * / even again, waking readers). */
void cs__change_begin(cs_store *s, cs__entry *e);
void cs__change_end(cs_store *s, uint64_t handle);

/* Mark a replica corrupt (once: logged and notified) if it is still the same
 * (version, generation) as the caller saw. Takes mu. */
void cs__mark_corrupt(cs_store *s, uint64_t handle, uint64_t version, uint16_t gen,
                      const char *why);

/* Verify blocks [b0, b1] of a replica file against the CRC table `slot`
 * (committed length `len`): each block's committed bytes must match. Uses
 * `scratch` (one block). 0, CAIRN_ECHECKSUM (the first bad block in *bad),
 * or a read error. */
int cs__verify_blocks(const cs__geom *g, int fd, const unsigned char *slot, uint64_t len,
                      uint32_t b0, uint32_t b1, unsigned char *scratch, uint32_t *bad);

/* Read the current header slot of an open replica file into buf
 * (cs__slot_used bytes) and decode it. 0, CAIRN_ECORRUPT, or a read error. */
int cs__read_slot(const cs__geom *g, int fd, int slot, unsigned char *buf, cs__header *h);

/* CRC32C of `n` zero bytes. */
uint32_t cs__crc_zeros(uint32_t crc, uint64_t n);

/* Start-up scan (store_scan.c): fills the index and pending list. */
int cs__scan(cs_store *s);

/* Walk the block images of the side file of OVERWRITE `p` (on `dir`),
 * verifying the file's header against p and every image against its CRC.
 * With chunk_fd >= 0 also copy each image into place and set its CRC in the
 * table of `slot` (store_txn.c). 0, CAIRN_ENOENT (no side file),
 * CAIRN_ECORRUPT (bad header), CAIRN_ECHECKSUM (bad image), or an I/O error. */
int cs__side_walk(cs_store *s, unsigned dir, const cs__pending *p, int chunk_fd,
                  unsigned char *slot, unsigned char *scratch);
/* Commit redo for OVERWRITE shared by cs_store_commit and the scan: copy the
 * images into place, then write header `h` updated (length, serial, seq)
 * with the new CRCs into slot 1 - cur and fdatasync. `slot` holds the
 * current slot on entry. */
int cs__apply_side(cs_store *s, unsigned dir, int fd, const cs__pending *p, int cur,
                   cs__header *h, unsigned char *slot, unsigned char *scratch);
/* Zero the two intent records of an open replica (no fsync). */
int cs__clear_intent(cs_store *s, int fd);
/* Cut an open replica back to `committed` data bytes (no fsync). */
int cs__truncate_to(cs_store *s, int fd, uint64_t committed);
/* CRC32C of `len` bytes of fd at `off`, read through scratch (one block).
 * 0, CAIRN_ECHECKSUM when the file ends first, or a read error. */
int cs__range_crc(int fd, uint64_t off, uint64_t len, unsigned char *scratch, uint32_t *crc);

#endif /* CS_STORE_INTERNAL_H */
