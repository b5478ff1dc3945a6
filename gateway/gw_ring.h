/*
 * gw_ring.h - a ring of a few fixed-size buffers between one producer
 * thread and one consumer thread: the gateway's streaming backbone. An
 * upload's HTTP thread fills buffers that a writer thread stores in the
 * cluster; a download's reader thread fills buffers from the cluster that
 * the HTTP thread sends. Each side blocks when the other is behind, which
 * is the backpressure in both directions, and memory stays at
 * depth * size whatever the document's size.
 *
 * Buffers are allocated on first use, so a small transfer costs only what
 * it moves. Thread rules: one producer thread calls get_empty/put_full,
 * one consumer thread calls get_full/put_empty; close may be called by
 * either (or a third) thread.
 */
#ifndef GW_RING_H
#define GW_RING_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef struct gw_ring gw_ring;

typedef struct gw_ring_buf {
  char *data;    /* `size` bytes, owned by the ring */
  size_t len;    /* bytes filled */
  uint64_t off;  /* where they belong in the document */
  int last;      /* the producer's final buffer */
} gw_ring_buf;

/* Memory all rings of a process may hold at once: a ring takes its
 * depth * size from it when created and gives it back when freed. */
typedef struct gw_ring_budget {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int64_t left; /* bytes */
} gw_ring_budget;

void gw_ring_budget_init(gw_ring_budget *b, int64_t bytes);
void gw_ring_budget_destroy(gw_ring_budget *b);
int64_t gw_ring_budget_left(gw_ring_budget *b);

/* depth 1..8 buffers of `size` bytes, taken from `budget` (may be NULL:
 * unlimited). When the budget is short, the ring waits up to a second for
 * memory to be given back, then makes do with fewer buffers, then smaller
 * ones (not under 64 KiB); when even that does not fit it waits up to
 * `wait_ms` more, then returns NULL (the caller answers 503). So many
 * transfers at once slow down instead of growing memory. Buffers are
 * mapped pages, returned to the system when the ring is freed. */
gw_ring *gw_ring_new(int depth, size_t size, gw_ring_budget *budget, int64_t wait_ms);
void gw_ring_free(gw_ring *r);
size_t gw_ring_size(const gw_ring *r);

/* Producer: the next empty buffer (len 0), waiting while all are full.
 * NULL when the ring was closed. */
gw_ring_buf *gw_ring_get_empty(gw_ring *r);
/* Producer: hand a filled buffer to the consumer. */
void gw_ring_put_full(gw_ring *r, gw_ring_buf *b);

/* Consumer: the next full buffer, in order, waiting while none is. NULL
 * when the ring was closed (and nothing full is left to drain). */
gw_ring_buf *gw_ring_get_full(gw_ring *r);
/* Consumer: give the buffer back for reuse. */
void gw_ring_put_empty(gw_ring *r, gw_ring_buf *b);

/* Stop: both sides' waits return NULL from now on. `err` (a negative cairn
 * code, or 0 for a normal end) is kept: the first nonzero one wins. */
void gw_ring_close(gw_ring *r, int err);
int gw_ring_error(gw_ring *r);

#endif /* GW_RING_H */
