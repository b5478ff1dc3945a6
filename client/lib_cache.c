/*
 * lib_cache.c - chunk locations and the client's cache of them.
 *
 * A location is built once from the master's ChunkLocation (all strings in
 * one allocation) and never changes; readers and writers hold references,
 * so the cache can replace or drop an entry while an operation still uses
 * the old one.
 *
 * The cache maps (file id, chunk index) to a location for ttl_ms (GFS
 * clients cache chunk locations the same way, §2.4): a reader may use a
 * location for at most that long after the master gave it. Callers drop an
 * entry when a replica failed them (a stale version, a missing replica, a
 * lost lease, any error), naming the location that failed so that a newer
 * one another thread has put meanwhile survives. Hash chains behind one
 * mutex: lookups are short and far rarer than the bytes they lead to.
 */
#include "lib_internal.h"

#include "cmn_util.h"

#include <stdlib.h>
#include <string.h>

/* ---- locations -------------------------------------------------------------------- */

cairn__loc *cairn__loc_from_pb(const Cairn__V1__ChunkLocation *pb) {
  size_t n = pb->n_replicas < CAIRN__MAX_REPLICAS ? pb->n_replicas : CAIRN__MAX_REPLICAS;
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    const Cairn__V1__ServerAddress *a = pb->replicas[i];
    bytes += strlen(a->id) + strlen(a->data_addr) + strlen(a->rpc_addr) + strlen(a->zone) + 4;
  }
  cairn__loc *l = cmn_calloc(1, sizeof *l + bytes);
  atomic_init(&l->refs, 1);
  l->handle = pb->handle;
  l->version = pb->version;
  l->index = pb->index;
  l->length = pb->length;
  l->n = n;
  char *p = l->strings;
#define KEEP_(dst, src)                   \
  do {                                    \
    size_t len_ = strlen(src) + 1;        \
    memcpy(p, (src), len_);               \
    (dst) = p;                            \
    p += len_;                            \
  } while (0)
  for (size_t i = 0; i < n; i++) {
    const Cairn__V1__ServerAddress *a = pb->replicas[i];
    KEEP_(l->rep[i].id, a->id);
    KEEP_(l->rep[i].data_addr, a->data_addr);
    KEEP_(l->rep[i].rpc_addr, a->rpc_addr);
    KEEP_(l->rep[i].zone, a->zone);
  }
#undef KEEP_
  /* The master lists the lease holder first when there is one. */
  l->has_primary = n > 0 && pb->primary_id && pb->primary_id[0] &&
                   strcmp(pb->primary_id, l->rep[0].id) == 0;
  l->lease_expiry_ms = l->has_primary ? pb->lease_expiry_ms : 0;
  return l;
}

cairn__loc *cairn__loc_ref(cairn__loc *l) {
  atomic_fetch_add(&l->refs, 1);
  return l;
}

void cairn__loc_unref(cairn__loc *l) {
  if (l && atomic_fetch_sub(&l->refs, 1) == 1) free(l);
}

/* ---- the cache ------------------------------------------------------------------------ */

typedef struct centry {
  struct centry *next;
  uint64_t file, index;
  int64_t expires_ms;
  cairn__loc *loc;
} centry;

struct cairn__cache {
  pthread_mutex_t mu;
  int64_t ttl_ms;
  size_t max, count, nbuckets; /* nbuckets: a power of two */
  centry **buckets;
};

static size_t bucket_of(const cairn__cache *c, uint64_t file, uint64_t index) {
  uint64_t h = file * 0x9E3779B97F4A7C15ull;
  h ^= (index + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull;
  h ^= h >> 31;
  return (size_t)(h & (c->nbuckets - 1));
}

cairn__cache *cairn__cache_new(int64_t ttl_ms, size_t max_entries) {
  cairn__cache *c = cmn_calloc(1, sizeof *c);
  pthread_mutex_init(&c->mu, NULL);
  c->ttl_ms = ttl_ms;
  c->max = max_entries ? max_entries : 1;
  c->nbuckets = 64;
  c->buckets = cmn_calloc(c->nbuckets, sizeof *c->buckets);
  return c;
}

static void entry_free(cairn__cache *c, centry *e) {
  cairn__loc_unref(e->loc);
  free(e);
  c->count--;
}

/* Remove every entry for which keep() is false (caller holds the lock). */
static void sweep(cairn__cache *c, bool (*keep)(const centry *, int64_t), int64_t now) {
  for (size_t b = 0; b < c->nbuckets; b++) {
    centry **pp = &c->buckets[b];
    while (*pp) {
      centry *e = *pp;
      if (keep(e, now)) {
        pp = &e->next;
      } else {
        *pp = e->next;
        entry_free(c, e);
      }
    }
  }
}

static bool keep_fresh(const centry *e, int64_t now) { return e->expires_ms > now; }
static bool keep_none(const centry *e, int64_t now) {
  (void)e;
  (void)now;
  return false;
}

void cairn__cache_free(cairn__cache *c) {
  if (!c) return;
  sweep(c, keep_none, 0);
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* The slot pointing at the entry of (file, index), or at the chain's end. */
static centry **find(cairn__cache *c, uint64_t file, uint64_t index) {
  centry **pp = &c->buckets[bucket_of(c, file, index)];
  while (*pp && !((*pp)->file == file && (*pp)->index == index)) pp = &(*pp)->next;
  return pp;
}

cairn__loc *cairn__cache_get(cairn__cache *c, uint64_t file, uint64_t index, int64_t now_ms) {
  cairn__loc *l = NULL;
  pthread_mutex_lock(&c->mu);
  centry **pp = find(c, file, index);
  centry *e = *pp;
  if (e && e->expires_ms <= now_ms) {
    *pp = e->next;
    entry_free(c, e);
  } else if (e) {
    l = cairn__loc_ref(e->loc);
  }
  pthread_mutex_unlock(&c->mu);
  return l;
}

/* Double the table (caller holds the lock). */
static void grow(cairn__cache *c) {
  size_t old_n = c->nbuckets;
  centry **old = c->buckets;
  c->nbuckets = old_n * 2;
  c->buckets = cmn_calloc(c->nbuckets, sizeof *c->buckets);
  for (size_t b = 0; b < old_n; b++) {
    centry *e = old[b];
    while (e) {
      centry *next = e->next;
      size_t nb = bucket_of(c, e->file, e->index);
      e->next = c->buckets[nb];
      c->buckets[nb] = e;
      e = next;
    }
  }
  free(old);
}

void cairn__cache_put(cairn__cache *c, uint64_t file, cairn__loc *l, int64_t now_ms) {
  if (c->ttl_ms <= 0) return;
  pthread_mutex_lock(&c->mu);
  centry **pp = find(c, file, l->index);
  if (*pp) {
    cairn__loc_unref((*pp)->loc);
    (*pp)->loc = cairn__loc_ref(l);
    (*pp)->expires_ms = now_ms + c->ttl_ms;
    pthread_mutex_unlock(&c->mu);
    return;
  }
  if (c->count >= c->max) {
    sweep(c, keep_fresh, now_ms);
    if (c->count >= c->max) sweep(c, keep_none, now_ms); /* crude, but bounded */
  }
  if (c->count >= c->nbuckets && c->nbuckets < (size_t)1 << 24) grow(c);
  centry *e = cmn_calloc(1, sizeof *e);
  e->file = file;
  e->index = l->index;
  e->expires_ms = now_ms + c->ttl_ms;
  e->loc = cairn__loc_ref(l);
  size_t b = bucket_of(c, file, l->index);
  e->next = c->buckets[b];
  c->buckets[b] = e;
  c->count++;
  pthread_mutex_unlock(&c->mu);
}

void cairn__cache_drop(cairn__cache *c, uint64_t file, uint64_t index, const cairn__loc *failed) {
  pthread_mutex_lock(&c->mu);
  centry **pp = find(c, file, index);
  centry *e = *pp;
  if (e && (!failed || (e->loc->handle == failed->handle && e->loc->version == failed->version))) {
    *pp = e->next;
    entry_free(c, e);
  }
  pthread_mutex_unlock(&c->mu);
}

size_t cairn__cache_count(cairn__cache *c) {
  pthread_mutex_lock(&c->mu);
  size_t n = c->count;
  pthread_mutex_unlock(&c->mu);
  return n;
}
