/*
 * chunks_internal.h - what chunks.c (records, replicas, leases) and
 * chunks_repair.c (the repair queue) share about the chunk table's layout.
 * Not a public interface: see mst_chunks.h.
 */
#ifndef CHUNKS_INTERNAL_H
#define CHUNKS_INTERNAL_H

#include "mst_chunks.h"
#include "mst_u64map.h"

#include <stdbool.h>
#include <stdint.h>

/*
 * One chunk: 32 bytes, without its handle (the page and slot give it).
 * `rep` holds up to 3 replica indices inline; with more (CK_F_SPILLED) its
 * first 4 bytes hold the index of a block in the spill pool instead.
 * `gn` packs the goal (high nibble) and the replica count (low nibble).
 */
typedef struct ck_ent {
  uint64_t version;
  uint64_t file_id;
  uint32_t index;
  uint32_t length;
  uint16_t rep[3];
  uint8_t gn;
  uint8_t flags; /* MST_CHUNK_F_* in the low bits, CK_F_* above */
} ck_ent;

_Static_assert(sizeof(ck_ent) == 32, "a chunk entry must stay 32 bytes");

/* Internal flag bits (above MST_CHUNK_F_USER_MASK). */
#define CK_F_QTRASHED 0x08u /* queued as belonging to a trashed file */
#define CK_F_QUEUED 0x10u   /* in the repair queue */
#define CK_F_SPILLED 0x20u  /* replicas live in the spill pool */
#define CK_F_LEASED 0x40u   /* a record exists in the lease map */
#define CK_F_SHARED 0x80u   /* refcount > 1, kept in the refs map */

#define CK_PAGE_SHIFT 6
#define CK_PAGE_SLOTS 64u
#define CK_NOSPILL UINT32_MAX

/* The present entries of handles [key*64, key*64+64), in slot order. */
typedef struct ck_page {
  uint64_t bits; /* bit s set: handle key*64+s is present */
  uint32_t cap;  /* entries allocated, 1..64 */
  ck_ent e[];
} ck_page;

/* A FIFO of handles: items v[head .. head+n). */
typedef struct ck_fifo {
  uint64_t *v;
  uint32_t head, n, cap;
} ck_fifo;

#define CK_BUCKETS 128

struct mst_chunks {
  mst__u64map dir;    /* handle >> 6 -> ck_page pointer */
  uint64_t count;     /* chunks */
  uint64_t missing;   /* chunks with nrep == 0 */
  uint64_t under;     /* chunks with nrep < goal */
  uint64_t pages;
  uint64_t page_bytes;
  uint64_t spilled;   /* chunks with CK_F_SPILLED */
  uint64_t shared;    /* chunks with CK_F_SHARED */
  uint16_t (*spill)[MST_CHUNK_REPLICAS_MAX]; /* spill pool blocks */
  uint32_t spill_n, spill_cap;
  uint32_t spill_free; /* free-list head (next link in a block's first 4 bytes) */
  mst__u64map leases; /* handle -> expiry_ms << 16 | primary */
  mst__u64map refs;   /* handle -> refcount (>= 2) */
  /* Repair queue (chunks_repair.c). */
  ck_fifo rq[CK_BUCKETS];
  uint64_t rq_mask[CK_BUCKETS / 64]; /* bit b: bucket b holds items */
  uint64_t rq_queued;  /* chunks with CK_F_QUEUED */
  uint64_t rq_missing; /* ... of which nrep == 0 */
  uint64_t rq_items;   /* items in the buckets, stale ones included */
};

static inline unsigned ck_goal(const ck_ent *e) { return e->gn >> 4; }
static inline unsigned ck_nrep(const ck_ent *e) { return e->gn & 0x0fu; }

/* The entry of `handle`, or NULL. The pointer is valid until the next
 * insertion or removal of a chunk. */
ck_ent *mst__ck_find(const mst_chunks *t, uint64_t handle);

/* Repair-queue hooks, chunks_repair.c. After the replica count or the goal of
 * a queued entry changed (from old_nrep / old_goal): move it to its new
 * bucket, or out of the queue when it reached its goal. */
void mst__rq_changed(mst_chunks *t, uint64_t handle, ck_ent *e, unsigned old_nrep,
                     unsigned old_goal);
/* Takes entry e out of the queue accounting (before it is removed). */
void mst__rq_forget(mst_chunks *t, ck_ent *e);
void mst__rq_free(mst_chunks *t);
uint64_t mst__rq_bytes(const mst_chunks *t);

#endif /* CHUNKS_INTERNAL_H */
