/*
 * lib_xfer.c - several chunk pieces in flight at once.
 *
 * Two shapes. cairn__run_parallel hands independent tasks (the chunk pieces
 * of one pread or pwrite, whose bytes are already in the caller's buffer)
 * to a few threads. cairn__ring_run is a pipeline for streams, whose bytes
 * come from or go to a file descriptor in order: the calling thread fills
 * a ring of buffers (reading the descriptor, or just naming the next
 * range), worker threads move the pieces to or from the cluster, and the
 * calling thread drains them in order (writing the descriptor, reporting
 * progress). Memory stays at the ring's slots whatever the size.
 *
 * Threads live for one call. A transfer stops at its first failure: no new
 * piece starts, the pieces under way finish, and that failure is returned.
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* ---- independent tasks ------------------------------------------------------------------ */

typedef struct par {
  pthread_mutex_t mu;
  size_t next, n;
  int rc;
  cairn__task_fn fn;
  void *arg;
} par;

static void *par_main(void *arg) {
  par *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    if (p->rc != 0 || p->next >= p->n) {
      pthread_mutex_unlock(&p->mu);
      return NULL;
    }
    size_t i = p->next++;
    pthread_mutex_unlock(&p->mu);
    int rc = p->fn(p->arg, i);
    if (rc != 0) {
      pthread_mutex_lock(&p->mu);
      if (p->rc == 0) p->rc = rc;
      pthread_mutex_unlock(&p->mu);
    }
  }
}

int cairn__run_parallel(int threads, size_t n, cairn__task_fn fn, void *arg) {
  if (threads <= 1 || n <= 1) {
    for (size_t i = 0; i < n; i++) {
      int rc = fn(arg, i);
      if (rc != 0) return rc;
    }
    return 0;
  }
  par p = {.n = n, .fn = fn, .arg = arg};
  pthread_mutex_init(&p.mu, NULL);
  size_t want = (size_t)threads < n ? (size_t)threads : n;
  pthread_t *th = cmn_calloc(want, sizeof *th);
  size_t started = 0;
  for (size_t i = 1; i < want; i++)
    if (pthread_create(&th[started], NULL, par_main, &p) == 0) started++; /* fewer is fine */
  par_main(&p);
  for (size_t i = 0; i < started; i++) pthread_join(th[i], NULL);
  free(th);
  pthread_mutex_destroy(&p.mu);
  return p.rc;
}

/* ---- ordered ring -------------------------------------------------------------------------- */

enum { SLOT_FREE = 0, SLOT_READY, SLOT_BUSY, SLOT_DONE };

typedef struct ring {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  cairn__slot *slots;
  int *state;
  uint64_t n;
  uint64_t filled;    /* pieces filled so far */
  uint64_t next_work; /* next piece a worker takes */
  bool end;           /* no piece after `filled` */
  int rc;             /* first failure */
  const cairn__ring_ops *ops;
  void *arg;
} ring;

static void *ring_worker(void *arg) {
  ring *g = arg;
  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (g->rc == 0 && g->next_work >= g->filled && !g->end) pthread_cond_wait(&g->cv, &g->mu);
    if (g->rc != 0 || g->next_work >= g->filled) break;
    uint64_t k = g->next_work++;
    size_t s = (size_t)(k % g->n);
    g->state[s] = SLOT_BUSY;
    pthread_mutex_unlock(&g->mu);
    int rc = g->ops->work(g->arg, &g->slots[s]);
    pthread_mutex_lock(&g->mu);
    g->state[s] = SLOT_DONE;
    if (rc != 0 && g->rc == 0) g->rc = rc;
    pthread_cond_broadcast(&g->cv);
  }
  pthread_mutex_unlock(&g->mu);
  return NULL;
}

/* The calling thread: fill free slots, drain done ones in order (lock held
 * except around the callbacks). */
static void ring_drive(ring *g) {
  uint64_t drained = 0;
  pthread_mutex_lock(&g->mu);
  for (;;) {
    while (g->rc == 0 && !g->end && g->filled - drained < g->n) {
      cairn__slot *s = &g->slots[g->filled % g->n];
      s->index = g->filled;
      pthread_mutex_unlock(&g->mu);
      int f = g->ops->fill(g->arg, s);
      pthread_mutex_lock(&g->mu);
      if (f < 0 && g->rc == 0) g->rc = f;
      if (f <= 0) {
        g->end = true;
        break;
      }
      g->state[g->filled % g->n] = SLOT_READY;
      g->filled++;
      pthread_cond_broadcast(&g->cv);
    }
    if (g->rc != 0 || (g->end && drained == g->filled)) break;
    size_t s = (size_t)(drained % g->n);
    while (g->rc == 0 && g->state[s] != SLOT_DONE) {
      if (!g->ops->tick) {
        pthread_cond_wait(&g->cv, &g->mu);
        continue;
      }
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until);
      until.tv_nsec += CAIRN__TICK_MS * 1000000L;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      if (pthread_cond_timedwait(&g->cv, &g->mu, &until) == ETIMEDOUT) {
        pthread_mutex_unlock(&g->mu);
        g->ops->tick(g->arg);
        pthread_mutex_lock(&g->mu);
      }
    }
    if (g->rc != 0) break;
    pthread_mutex_unlock(&g->mu);
    int d = g->ops->drain(g->arg, &g->slots[s]);
    pthread_mutex_lock(&g->mu);
    if (d != 0 && g->rc == 0) g->rc = d;
    g->state[s] = SLOT_FREE;
    drained++;
  }
  g->end = true;
  pthread_cond_broadcast(&g->cv);
  pthread_mutex_unlock(&g->mu);
}

int cairn__ring_run(int nslots, size_t slot_size, const cairn__ring_ops *ops, void *arg) {
  if (nslots < 1) nslots = 1;
  ring g = {.n = (uint64_t)nslots, .ops = ops, .arg = arg};
  pthread_mutex_init(&g.mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* timed waits immune to clock steps */
  pthread_cond_init(&g.cv, &ca);
  pthread_condattr_destroy(&ca);
  g.slots = cmn_calloc((size_t)nslots, sizeof *g.slots);
  g.state = cmn_calloc((size_t)nslots, sizeof *g.state);
  pthread_t *th = cmn_calloc((size_t)nslots, sizeof *th);
  int started = 0;
  int rc = 0;
  for (int i = 0; i < nslots; i++) {
    /* buffers sized by the chunk size: a failure is an error, not an abort */
    g.slots[i].buf = slot_size ? malloc(slot_size) : NULL;
    g.slots[i].cap = slot_size;
    if (slot_size && !g.slots[i].buf) rc = CAIRN_ENOMEM;
  }
  for (int i = 0; i < nslots && rc == 0; i++)
    if (pthread_create(&th[started], NULL, ring_worker, &g) == 0) started++;
  if (rc == 0 && started == 0) rc = CAIRN_ENOMEM;
  if (rc == 0) {
    ring_drive(&g);
    rc = g.rc;
  }
  for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
  for (int i = 0; i < nslots; i++) free(g.slots[i].buf);
  free(th);
  free(g.state);
  free(g.slots);
  pthread_cond_destroy(&g.cv);
  pthread_mutex_destroy(&g.mu);
  return rc;
}
