/*
 * lease.c - per-chunk state of the 2PC layer (see cs_leases.h): a chained
 * hash table of records keyed by chunk handle, each with its mutation
 * mutex, lease and prepared-mutation note, and one ring of decisions.
 *
 * Locking: `l->mu` guards the table, every record field but `mu`, and the
 * ring; it is held only for memory work. A record's own `mu` is the chunk
 * mutex that callers hold across disk and network work. A record stays
 * allocated while `refs` (holders and waiters of its mutex) is nonzero, so
 * a waiter never sleeps on freed memory.
 */
#include "cs_leases.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rec {
  struct rec *next;
  uint64_t handle;
  uint64_t version;      /* of the lease */
  int64_t expiry_ms;     /* 0: no lease */
  int64_t term_ms;       /* when the current expiry was granted or extended */
  uint64_t next_serial;
  int64_t last_write_ms;
  char *reps;            /* nrep x "id\0rpc\0data\0", one allocation */
  size_t reps_len;
  unsigned nrep;
  bool prepared;
  uint64_t prep_version, prep_serial;
  uint8_t prep_id[16];
  unsigned refs;
  pthread_mutex_t mu;
} rec;

typedef struct decision {
  uint64_t handle, version, serial;
  bool committed;
} decision;

struct cs_leases {
  cs_leases_opts o;
  pthread_mutex_t mu;
  rec **buckets;
  size_t nb, n;
  decision *ring;
  size_t ring_n, ring_next;
  void *ext;
  void (*ext_free)(void *);
};

static size_t bucket_of(const cs_leases *l, uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return (size_t)(h & (l->nb - 1));
}

static rec *find(const cs_leases *l, uint64_t handle) {
  for (rec *r = l->buckets[bucket_of(l, handle)]; r; r = r->next)
    if (r->handle == handle) return r;
  return NULL;
}

/* Double the bucket array when the table is twice as full as it is wide. */
static void grow(cs_leases *l) {
  size_t nb = l->nb * 2;
  rec **nbk = cmn_calloc(nb, sizeof *nbk);
  rec **old = l->buckets;
  size_t onb = l->nb;
  l->buckets = nbk;
  l->nb = nb;
  for (size_t i = 0; i < onb; i++) {
    rec *r = old[i];
    while (r) {
      rec *nx = r->next;
      size_t b = bucket_of(l, r->handle);
      r->next = nbk[b];
      nbk[b] = r;
      r = nx;
    }
  }
  free(old);
}

static rec *get_or_add(cs_leases *l, uint64_t handle) {
  rec *r = find(l, handle);
  if (r) return r;
  if (l->n >= 2 * l->nb) grow(l);
  r = cmn_calloc(1, sizeof *r);
  r->handle = handle;
  pthread_mutex_init(&r->mu, NULL);
  size_t b = bucket_of(l, handle);
  r->next = l->buckets[b];
  l->buckets[b] = r;
  l->n++;
  return r;
}

static void rec_free(rec *r) {
  pthread_mutex_destroy(&r->mu);
  free(r->reps);
  free(r);
}

/* A record nobody uses and that carries nothing worth keeping: no mutex
 * holder or waiter, no prepared note, no lease valid in the last period. */
static bool idle(const cs_leases *l, const rec *r, int64_t now) {
  if (r->refs || r->prepared) return false;
  return r->expiry_ms == 0 || r->expiry_ms + l->o.lease_ms < now;
}

/* Unlink and free `r` if it is idle. Caller holds l->mu. */
static void maybe_free(cs_leases *l, rec *r, int64_t now) {
  if (!idle(l, r, now)) return;
  rec **pp = &l->buckets[bucket_of(l, r->handle)];
  while (*pp != r) pp = &(*pp)->next;
  *pp = r->next;
  l->n--;
  rec_free(r);
}

int cs_leases_new(const cs_leases_opts *o, cs_leases **out) {
  if (!out) return CAIRN_EINVAL;
  cs_leases_opts d = o ? *o : (cs_leases_opts){0};
  if (d.lease_ms < 0) return CAIRN_EINVAL;
  if (d.lease_ms == 0) d.lease_ms = CS_LEASES_DEFAULT_LEASE_MS;
  if (d.margin_ms == 0) d.margin_ms = CS_LEASES_DEFAULT_MARGIN_MS;
  if (d.margin_ms < 0) d.margin_ms = 0;
  if (d.decisions == 0) d.decisions = CS_LEASES_DEFAULT_DECISIONS;
  cs_leases *l = cmn_calloc(1, sizeof *l);
  l->o = d;
  pthread_mutex_init(&l->mu, NULL);
  l->nb = 64;
  l->buckets = cmn_calloc(l->nb, sizeof *l->buckets);
  l->ring = cmn_calloc(d.decisions, sizeof *l->ring);
  *out = l;
  return 0;
}

void cs_leases_free(cs_leases *l) {
  if (!l) return;
  if (l->ext_free) l->ext_free(l->ext);
  for (size_t i = 0; i < l->nb; i++) {
    rec *r = l->buckets[i];
    while (r) {
      rec *nx = r->next;
      rec_free(r);
      r = nx;
    }
  }
  free(l->buckets);
  free(l->ring);
  pthread_mutex_destroy(&l->mu);
  free(l);
}

const cs_leases_opts *cs_leases_options(const cs_leases *l) { return &l->o; }

/* ---- chunk mutex ---- */

static rec *ref(cs_leases *l, uint64_t handle) {
  pthread_mutex_lock(&l->mu);
  rec *r = get_or_add(l, handle);
  r->refs++;
  pthread_mutex_unlock(&l->mu);
  return r;
}

static void unref(cs_leases *l, rec *r) {
  pthread_mutex_lock(&l->mu);
  r->refs--;
  maybe_free(l, r, cmn_wall_ms());
  pthread_mutex_unlock(&l->mu);
}

void cs_leases_lock(cs_leases *l, uint64_t handle) {
  rec *r = ref(l, handle);
  pthread_mutex_lock(&r->mu);
}

int cs_leases_lock_timed(cs_leases *l, uint64_t handle, int64_t timeout_ms) {
  rec *r = ref(l, handle);
  int e;
  if (timeout_ms <= 0) {
    e = pthread_mutex_trylock(&r->mu);
  } else {
    struct timespec ts;
    cmn_deadline_in(&ts, timeout_ms);
    e = pthread_mutex_timedlock(&r->mu, &ts);
  }
  if (e == 0) return 0;
  unref(l, r);
  return CAIRN_EBUSY;
}

void cs_leases_unlock(cs_leases *l, uint64_t handle) {
  pthread_mutex_lock(&l->mu);
  rec *r = find(l, handle); /* held, so present */
  pthread_mutex_unlock(&l->mu);
  if (!r) return;
  pthread_mutex_unlock(&r->mu);
  unref(l, r);
}

/* ---- leases ---- */

int cs_leases_set(cs_leases *l, uint64_t handle, uint64_t version, int64_t expiry_ms,
                  const cs_replica_addr *reps, size_t n, uint64_t next_serial) {
  if (expiry_ms <= 0 || !reps || n == 0 || n > CS_LEASES_MAX_REPLICAS || next_serial == 0 ||
      version == 0)
    return CAIRN_EINVAL;
  cmn_buf b = {0};
  for (size_t i = 0; i < n; i++) {
    cmn_buf_append(&b, reps[i].id, strnlen(reps[i].id, CS_LEASES_ID_MAX) + 1);
    cmn_buf_append(&b, reps[i].rpc_addr, strnlen(reps[i].rpc_addr, CS_LEASES_ADDR_MAX) + 1);
    cmn_buf_append(&b, reps[i].data_addr, strnlen(reps[i].data_addr, CS_LEASES_ADDR_MAX) + 1);
  }
  pthread_mutex_lock(&l->mu);
  rec *r = get_or_add(l, handle);
  free(r->reps);
  r->reps = b.data;
  r->reps_len = b.len;
  r->nrep = (unsigned)n;
  r->version = version;
  r->expiry_ms = expiry_ms;
  r->term_ms = cmn_wall_ms();
  r->next_serial = next_serial;
  pthread_mutex_unlock(&l->mu);
  return 0;
}

int cs_leases_extend(cs_leases *l, uint64_t handle, uint64_t version, int64_t expiry_ms) {
  if (expiry_ms <= 0 || version == 0) return CAIRN_EINVAL;
  int rc = CAIRN_ENOENT;
  pthread_mutex_lock(&l->mu);
  rec *r = find(l, handle);
  if (r && r->expiry_ms != 0 && r->version == version) {
    if (expiry_ms > r->expiry_ms) {
      r->expiry_ms = expiry_ms;
      r->term_ms = cmn_wall_ms();
    }
    rc = 0;
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

void cs_leases_drop(cs_leases *l, uint64_t handle) {
  pthread_mutex_lock(&l->mu);
  rec *r = find(l, handle);
  if (r) {
    r->expiry_ms = 0;
    r->version = 0;
    r->next_serial = 0;
    free(r->reps);
    r->reps = NULL;
    r->nrep = 0;
    maybe_free(l, r, cmn_wall_ms());
  }
  pthread_mutex_unlock(&l->mu);
}

static bool valid(const cs_leases *l, const rec *r, int64_t now) {
  return r && r->expiry_ms != 0 && r->expiry_ms - l->o.margin_ms > now;
}

/* Unpack the packed replica strings of r into out. */
static void view_of(const rec *r, cs_lease_view *out) {
  out->version = r->version;
  out->expiry_ms = r->expiry_ms;
  out->n = r->nrep;
  const char *p = r->reps;
  for (unsigned i = 0; i < r->nrep; i++) {
    cs_replica_addr *a = &out->replicas[i];
    size_t k = strlen(p);
    memcpy(a->id, p, k + 1);
    p += k + 1;
    k = strlen(p);
    memcpy(a->rpc_addr, p, k + 1);
    p += k + 1;
    k = strlen(p);
    memcpy(a->data_addr, p, k + 1);
    p += k + 1;
  }
}

int cs_leases_primary(cs_leases *l, uint64_t handle, int64_t now_ms, cs_lease_view *out) {
  int rc = CAIRN_ENOTPRIMARY;
  pthread_mutex_lock(&l->mu);
  rec *r = find(l, handle);
  if (valid(l, r, now_ms)) {
    view_of(r, out);
    rc = 0;
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

int cs_leases_next_serial(cs_leases *l, uint64_t handle, uint64_t version, int64_t now_ms,
                          uint64_t *serial) {
  int rc = CAIRN_ENOTPRIMARY;
  pthread_mutex_lock(&l->mu);
  rec *r = find(l, handle);
  if (r && r->expiry_ms != 0 && r->version == version && r->next_serial != 0) {
    *serial = r->next_serial++;
    r->last_write_ms = now_ms;
    rc = 0;
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

uint64_t cs_leases_peek_serial(cs_leases *l, uint64_t handle, uint64_t version) {
  uint64_t v = 0;
  pthread_mutex_lock(&l->mu);
  rec *r = find(l, handle);
  if (r && r->expiry_ms != 0 && r->version == version) v = r->next_serial;
  pthread_mutex_unlock(&l->mu);
  return v;
}

size_t cs_leases_wanted(cs_leases *l, int64_t now_ms, uint64_t *out, size_t cap) {
  size_t k = 0;
  pthread_mutex_lock(&l->mu);
  for (size_t i = 0; i < l->nb; i++) {
    rec *r = l->buckets[i];
    while (r) {
      rec *nx = r->next;
      /* Worth extending: written during the current term (so still in use)
       * and past the middle of it. A lease nobody writes under runs out, so
       * the master can re-replicate or move the chunk. */
      int64_t half = (r->expiry_ms - r->term_ms) / 2;
      if (valid(l, r, now_ms) && r->last_write_ms != 0 && r->last_write_ms >= r->term_ms &&
          r->expiry_ms - now_ms <= half) {
        if (k < cap) out[k++] = r->handle;
      } else {
        maybe_free(l, r, now_ms);
      }
      r = nx;
    }
  }
  pthread_mutex_unlock(&l->mu);
  return k;
}

/* ---- prepared notes ---- */

void cs_leases_note_prepared(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial,
                             const uint8_t id[16]) {
  pthread_mutex_lock(&l->mu);
  rec *r = get_or_add(l, handle);
  r->prepared = true;
  r->prep_version = version;
  r->prep_serial = serial;
  memcpy(r->prep_id, id, 16);
  pthread_mutex_unlock(&l->mu);
}

bool cs_leases_take_prepared(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial,
                             uint8_t id[16]) {
  bool got = false;
  pthread_mutex_lock(&l->mu);
  rec *r = find(l, handle);
  if (r && r->prepared && r->prep_version == version && r->prep_serial == serial) {
    memcpy(id, r->prep_id, 16);
    r->prepared = false;
    got = true;
    maybe_free(l, r, cmn_wall_ms());
  }
  pthread_mutex_unlock(&l->mu);
  return got;
}

/* ---- decisions ---- */

void cs_leases_decided(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial,
                       bool committed) {
  pthread_mutex_lock(&l->mu);
  l->ring[l->ring_next] = (decision){handle, version, serial, committed};
  l->ring_next = (l->ring_next + 1) % l->o.decisions;
  if (l->ring_n < l->o.decisions) l->ring_n++;
  pthread_mutex_unlock(&l->mu);
}

int cs_leases_decision(cs_leases *l, uint64_t handle, uint64_t version, uint64_t serial) {
  int rc = CAIRN_ENOENT;
  pthread_mutex_lock(&l->mu);
  /* Newest first: a later entry for the same key wins. */
  for (size_t k = 0; k < l->ring_n; k++) {
    size_t i = (l->ring_next + l->o.decisions - 1 - k) % l->o.decisions;
    const decision *d = &l->ring[i];
    if (d->handle == handle && d->version == version && d->serial == serial) {
      rc = d->committed ? 1 : 0;
      break;
    }
  }
  pthread_mutex_unlock(&l->mu);
  return rc;
}

/* ---- attachment ---- */

void cs_leases_attach(cs_leases *l, void *ext, void (*free_fn)(void *)) {
  l->ext = ext;
  l->ext_free = free_fn;
}

void *cs_leases_attached(const cs_leases *l) { return l->ext; }
