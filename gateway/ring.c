/*
 * ring.c - the producer/consumer buffer ring of gw_ring.h. Buffers move
 * strictly in ring order: the producer fills slot i, the consumer drains
 * slot i, so no queue is needed besides two indexes and a state per slot.
 */
#include "gw_ring.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "cairn_error.h"
#include "cmn_util.h"

#define RING_MAX 8

enum { SLOT_EMPTY, SLOT_FILLING, SLOT_FULL, SLOT_DRAINING };

struct gw_ring {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  size_t size;
  int depth;
  int head; /* next slot the producer fills */
  int tail; /* next slot the consumer drains */
  int state[RING_MAX];
  gw_ring_buf buf[RING_MAX];
  int closed;
  int err;
  gw_ring_budget *budget;
  int64_t reserved;
};

#define RING_MIN_BUF (64 * 1024)

void gw_ring_budget_init(gw_ring_budget *b, int64_t bytes) {
  pthread_mutex_init(&b->mu, NULL);
  pthread_cond_init(&b->cv, NULL);
  b->left = bytes;
}

void gw_ring_budget_destroy(gw_ring_budget *b) {
  pthread_cond_destroy(&b->cv);
  pthread_mutex_destroy(&b->mu);
}

int64_t gw_ring_budget_left(gw_ring_budget *b) {
  pthread_mutex_lock(&b->mu);
  int64_t v = b->left;
  pthread_mutex_unlock(&b->mu);
  return v;
}

/* Wait (budget lock held) until `want` fits or the deadline passes. */
static int wait_for(gw_ring_budget *b, int64_t want, int64_t ms) {
  struct timespec deadline;
  cmn_deadline_in(&deadline, ms);
  while (b->left < want) {
    if (pthread_cond_timedwait(&b->cv, &b->mu, &deadline) != 0) {
      return b->left >= want;
    }
  }
  return 1;
}

/* Take depth * size from the budget: wait a little for the whole, then
 * shrink depth, then size, then wait longer for the least. */
static int reserve(gw_ring_budget *b, int *depth, size_t *size, int64_t wait_ms, int64_t *got) {
  *got = 0;
  if (b == NULL) {
    return 0;
  }
  pthread_mutex_lock(&b->mu);
  int ok = wait_for(b, (int64_t)*depth * (int64_t)*size, 1000);
  while (!ok && (*depth > 1 || *size > RING_MIN_BUF)) {
    if (*depth > 1) {
      (*depth)--;
    } else {
      *size = *size / 2 > RING_MIN_BUF ? *size / 2 : RING_MIN_BUF;
    }
    ok = b->left >= (int64_t)*depth * (int64_t)*size;
  }
  if (!ok) {
    ok = wait_for(b, (int64_t)*size, wait_ms);
  }
  if (ok) {
    *got = (int64_t)*depth * (int64_t)*size;
    b->left -= *got;
  }
  pthread_mutex_unlock(&b->mu);
  return ok ? 0 : -1;
}

gw_ring *gw_ring_new(int depth, size_t size, gw_ring_budget *budget, int64_t wait_ms) {
  if (depth < 1) {
    depth = 1;
  }
  if (depth > RING_MAX) {
    depth = RING_MAX;
  }
  int64_t got;
  if (reserve(budget, &depth, &size, wait_ms, &got) < 0) {
    return NULL;
  }
  gw_ring *r = cmn_calloc(1, sizeof *r);
  r->budget = budget;
  r->reserved = got;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  r->size = size;
  r->depth = depth;
  return r;
}

void gw_ring_free(gw_ring *r) {
  if (r == NULL) {
    return;
  }
  for (int i = 0; i < r->depth; i++) {
    if (r->buf[i].data) {
      munmap(r->buf[i].data, r->size);
    }
  }
  if (r->budget) {
    pthread_mutex_lock(&r->budget->mu);
    r->budget->left += r->reserved;
    pthread_cond_broadcast(&r->budget->cv);
    pthread_mutex_unlock(&r->budget->mu);
  }
  pthread_cond_destroy(&r->cv);
  pthread_mutex_destroy(&r->mu);
  free(r);
}

size_t gw_ring_size(const gw_ring *r) {
  return r->size;
}

gw_ring_buf *gw_ring_get_empty(gw_ring *r) {
  pthread_mutex_lock(&r->mu);
  while (!r->closed && r->state[r->head] != SLOT_EMPTY) {
    pthread_cond_wait(&r->cv, &r->mu);
  }
  if (r->closed) {
    pthread_mutex_unlock(&r->mu);
    return NULL;
  }
  int i = r->head;
  r->state[i] = SLOT_FILLING;
  r->head = (r->head + 1) % r->depth;
  pthread_mutex_unlock(&r->mu);
  gw_ring_buf *b = &r->buf[i];
  if (b->data == NULL) {
    void *p = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      gw_ring_close(r, CAIRN_ENOMEM);
      return NULL;
    }
    b->data = p;
  }
  b->len = 0;
  b->off = 0;
  b->last = 0;
  return b;
}

void gw_ring_put_full(gw_ring *r, gw_ring_buf *b) {
  pthread_mutex_lock(&r->mu);
  r->state[b - r->buf] = SLOT_FULL;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

gw_ring_buf *gw_ring_get_full(gw_ring *r) {
  pthread_mutex_lock(&r->mu);
  while (!r->closed && r->state[r->tail] != SLOT_FULL) {
    pthread_cond_wait(&r->cv, &r->mu);
  }
  /* A normal close still lets the consumer drain what was produced. */
  if (r->state[r->tail] != SLOT_FULL || (r->closed && r->err != 0)) {
    pthread_mutex_unlock(&r->mu);
    return NULL;
  }
  int i = r->tail;
  r->state[i] = SLOT_DRAINING;
  r->tail = (r->tail + 1) % r->depth;
  pthread_mutex_unlock(&r->mu);
  return &r->buf[i];
}

void gw_ring_put_empty(gw_ring *r, gw_ring_buf *b) {
  pthread_mutex_lock(&r->mu);
  r->state[b - r->buf] = SLOT_EMPTY;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

void gw_ring_close(gw_ring *r, int err) {
  pthread_mutex_lock(&r->mu);
  r->closed = 1;
  if (r->err == 0) {
    r->err = err;
  }
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

int gw_ring_error(gw_ring *r) {
  pthread_mutex_lock(&r->mu);
  int err = r->err;
  pthread_mutex_unlock(&r->mu);
  return err;
}
