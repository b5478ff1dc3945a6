/*
 * chunks_repair.c - the re-replication queue of the chunk table (see
 * mst_chunks.h for the order it hands chunks out in).
 *
 * 128 FIFO buckets, one per (replicas 1..8, live/trashed, deficit 1..8),
 * numbered so that a lower bucket is more urgent; a 128-bit mask of the
 * non-empty buckets finds the most urgent one in two ctz instructions.
 *
 * Membership is the entry's CK_F_QUEUED flag, not the buckets: an item in a
 * bucket is only a hint, valid while its chunk is queued and still belongs
 * in that bucket. When a queued chunk changes (a replica comes or goes, its
 * goal or trashed mark changes) it is pushed again into its new bucket and
 * the old item goes stale; pop skips stale items. So no operation searches a
 * bucket, and every operation is O(1) amortised. Stale items are bounded:
 * when they outnumber queued chunks (plus a slack), one sweep drops them.
 * A queued chunk with no replica is in no bucket until one comes back.
 */
#include "chunks_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <stdlib.h>
#include <string.h>

#define COMPACT_SLACK 1024u

/* Bucket of a chunk with `nrep` replicas of `goal`, or -1 when it is not in
 * a bucket (missing, or not below its goal). Order: replicas, then live
 * before trashed, then the larger deficit first. */
static int bucket_of(unsigned nrep, unsigned goal, bool trashed) {
  if (nrep == 0 || nrep >= goal) return -1;
  unsigned deficit = goal - nrep; /* 1..8 */
  return (int)((((nrep - 1) * 2 + (trashed ? 1u : 0u)) * 8) + (8 - deficit));
}

static int entry_bucket(const ck_ent *e) {
  return bucket_of(ck_nrep(e), ck_goal(e), (e->flags & CK_F_QTRASHED) != 0);
}

static void fifo_push(ck_fifo *f, uint64_t h) {
  if (f->head + f->n == f->cap) {
    if (f->head >= f->cap / 2 && f->head > 0) {
      memmove(f->v, f->v + f->head, f->n * sizeof *f->v);
      f->head = 0;
    } else {
      f->cap = f->cap ? f->cap * 2 : 16;
      f->v = cmn_realloc(f->v, f->cap * sizeof *f->v);
    }
  }
  f->v[f->head + f->n++] = h;
}

static void push(mst_chunks *t, int b, uint64_t h) {
  fifo_push(&t->rq[b], h);
  t->rq_mask[b / 64] |= 1ULL << (b % 64);
  t->rq_items++;
}

/*
 * Drops every stale item, and all but the first valid item of a chunk (a
 * chunk that left and re-entered a bucket can have two). Keeps FIFO order.
 */
static void compact(mst_chunks *t) {
  mst__u64map seen = {0};
  t->rq_items = 0;
  for (int b = 0; b < CK_BUCKETS; b++) {
    ck_fifo *f = &t->rq[b];
    uint32_t w = 0;
    for (uint32_t i = 0; i < f->n; i++) {
      uint64_t h = f->v[f->head + i];
      const ck_ent *e = mst__ck_find(t, h);
      if (!e || !(e->flags & CK_F_QUEUED) || entry_bucket(e) != b) continue;
      if (!mst__u64map_put(&seen, h, 1)) continue;
      f->v[w++] = h;
    }
    f->head = 0;
    f->n = w;
    t->rq_items += w;
    if (w == 0) {
      free(f->v);
      memset(f, 0, sizeof *f);
      t->rq_mask[b / 64] &= ~(1ULL << (b % 64));
    }
  }
  mst__u64map_free(&seen);
}

static void maybe_compact(mst_chunks *t) {
  if (t->rq_items > 2 * t->rq_queued + COMPACT_SLACK) compact(t);
}

void mst__rq_changed(mst_chunks *t, uint64_t handle, ck_ent *e, unsigned old_nrep,
                     unsigned old_goal) {
  unsigned nrep = ck_nrep(e);
  bool trashed = (e->flags & CK_F_QTRASHED) != 0;
  if (old_nrep == 0 && nrep > 0) t->rq_missing--;
  if (old_nrep > 0 && nrep == 0) t->rq_missing++;
  if (nrep >= ck_goal(e)) {
    /* Repaired (or the goal was lowered): out of the queue. Any bucket item
     * left behind is stale now. */
    e->flags &= (uint8_t)~(CK_F_QUEUED | CK_F_QTRASHED);
    t->rq_queued--;
    return;
  }
  int b = entry_bucket(e);
  if (b >= 0 && b != bucket_of(old_nrep, old_goal, trashed)) {
    push(t, b, handle);
    maybe_compact(t);
  }
}

void mst__rq_forget(mst_chunks *t, ck_ent *e) {
  if (!(e->flags & CK_F_QUEUED)) return;
  t->rq_queued--;
  if (ck_nrep(e) == 0) t->rq_missing--;
  e->flags &= (uint8_t)~(CK_F_QUEUED | CK_F_QTRASHED);
}

void mst__rq_free(mst_chunks *t) {
  for (int b = 0; b < CK_BUCKETS; b++) free(t->rq[b].v);
}

uint64_t mst__rq_bytes(const mst_chunks *t) {
  uint64_t n = 0;
  for (int b = 0; b < CK_BUCKETS; b++) n += (uint64_t)t->rq[b].cap * sizeof(uint64_t);
  return n;
}

int mst_chunks_repair_enqueue(mst_chunks *t, uint64_t handle, bool trashed) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (ck_nrep(e) >= ck_goal(e)) return 0;
  if (e->flags & CK_F_QUEUED) {
    int old = entry_bucket(e);
    if (trashed)
      e->flags |= CK_F_QTRASHED;
    else
      e->flags &= (uint8_t)~CK_F_QTRASHED;
    int b = entry_bucket(e);
    if (b >= 0 && b != old) {
      push(t, b, handle);
      maybe_compact(t);
    }
    return 0;
  }
  e->flags |= CK_F_QUEUED;
  if (trashed) e->flags |= CK_F_QTRASHED;
  t->rq_queued++;
  if (ck_nrep(e) == 0) {
    t->rq_missing++;
    return 1;
  }
  push(t, entry_bucket(e), handle);
  maybe_compact(t);
  return 1;
}

/* Index of the most urgent non-empty bucket, or -1. */
static int first_bucket(const mst_chunks *t) {
  for (int w = 0; w < CK_BUCKETS / 64; w++)
    if (t->rq_mask[w]) return w * 64 + __builtin_ctzll(t->rq_mask[w]);
  return -1;
}

int mst_chunks_repair_pop(mst_chunks *t, mst_repair_item *out) {
  int b;
  while ((b = first_bucket(t)) >= 0) {
    ck_fifo *f = &t->rq[b];
    uint64_t h = f->v[f->head++];
    f->n--;
    t->rq_items--;
    if (f->n == 0) {
      /* An emptied bucket gives back what a repair wave made it grow to. */
      if (f->cap > 256) {
        free(f->v);
        f->v = NULL;
        f->cap = 0;
      }
      f->head = 0;
      t->rq_mask[b / 64] &= ~(1ULL << (b % 64));
    }
    ck_ent *e = mst__ck_find(t, h);
    if (!e || !(e->flags & CK_F_QUEUED) || entry_bucket(e) != b) continue; /* stale */
    out->handle = h;
    out->nrep = ck_nrep(e);
    out->goal = ck_goal(e);
    out->trashed = (e->flags & CK_F_QTRASHED) != 0;
    e->flags &= (uint8_t)~(CK_F_QUEUED | CK_F_QTRASHED);
    t->rq_queued--;
    return 1;
  }
  return 0;
}

int mst_chunks_repair_cancel(mst_chunks *t, uint64_t handle) {
  ck_ent *e = mst__ck_find(t, handle);
  if (!e) return CAIRN_ENOENT;
  if (!(e->flags & CK_F_QUEUED)) return 0;
  mst__rq_forget(t, e);
  return 1;
}

uint64_t mst_chunks_repair_size(const mst_chunks *t) { return t->rq_queued - t->rq_missing; }
