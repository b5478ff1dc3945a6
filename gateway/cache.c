/*
 * cache.c - the sharded TTL cache with generation-checked puts (see
 * gw_cache.h).
 *
 * A key hashes (SipHash under a random per-cache key) to a shard and to a
 * chain of that shard's fixed-size table. Each shard has a mutex, its share
 * of the capacity and an LRU list. A hit costs one hash, one uncontended
 * lock and a key compare, well under a microsecond.
 *
 * Why invalidation is race-free: an invalidation first bumps the
 * generation, then takes each shard's lock to remove entries. A put checks
 * the generation and inserts while holding its shard's lock. Either the
 * put's check comes after the bump (it sees a newer generation and stores
 * nothing), or it comes before, and then the put's insert is complete
 * before the invalidation can lock that shard, which removes it.
 */
#include "gw_cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_util.h"
#include "gw_crypto.h"

#define MAX_SHARDS 16
#define MIN_PER_SHARD 64 /* smaller tables use fewer shards (one under 128) */
#define CAPACITY_LIMIT ((size_t)1 << 24)

typedef struct entry {
  struct entry *hnext;       /* hash chain */
  struct entry *prev, *next; /* LRU list, most recent first */
  uint64_t hash;
  int64_t val;
  int64_t born_ms;
  int refreshing; /* one caller was sent to recompute it early */
  size_t klen;
  char key[];
} entry;

typedef struct shard {
  pthread_mutex_t mu;
  entry **table; /* mask + 1 chains */
  size_t mask;
  size_t count, cap;
  entry *head, *tail;
  char pad[64]; /* keeps neighbouring shards' mutexes off one cache line */
} shard;

struct gw_cache {
  int64_t ttl_ms;
  _Atomic uint64_t gen;
  size_t nshards;
  uint8_t seed[16];
  shard shards[];
};

static size_t pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n) {
    p <<= 1;
  }
  return p;
}

int gw_cache_new(size_t capacity, int64_t ttl_ms, gw_cache **out) {
  if (out == NULL || capacity < 1 || capacity > CAPACITY_LIMIT || ttl_ms < 0) {
    return CAIRN_EINVAL;
  }
  size_t nshards = CMN_MAX((size_t)1, CMN_MIN(capacity / MIN_PER_SHARD, (size_t)MAX_SHARDS));
  gw_cache *c = cmn_calloc(1, sizeof *c + nshards * sizeof(shard));
  int rc = gw_random_bytes(c->seed, sizeof c->seed);
  if (rc < 0) {
    free(c);
    return rc;
  }
  c->ttl_ms = ttl_ms;
  atomic_init(&c->gen, 1);
  c->nshards = nshards;
  for (size_t i = 0; i < nshards; i++) {
    shard *s = &c->shards[i];
    pthread_mutex_init(&s->mu, NULL);
    s->cap = capacity / nshards + (i < capacity % nshards ? 1 : 0);
    s->mask = pow2_at_least(s->cap) - 1;
    s->table = cmn_calloc(s->mask + 1, sizeof *s->table);
  }
  *out = c;
  return 0;
}

/* ---- the per-shard table and LRU list (shard mutex held) ---- */

static void lru_unlink(shard *s, entry *e) {
  if (e->prev) {
    e->prev->next = e->next;
  } else {
    s->head = e->next;
  }
  if (e->next) {
    e->next->prev = e->prev;
  } else {
    s->tail = e->prev;
  }
  e->prev = e->next = NULL;
}

static void lru_push_front(shard *s, entry *e) {
  e->prev = NULL;
  e->next = s->head;
  if (s->head) {
    s->head->prev = e;
  } else {
    s->tail = e;
  }
  s->head = e;
}

static entry *find(shard *s, uint64_t h, const char *key, size_t klen) {
  for (entry *e = s->table[h & s->mask]; e; e = e->hnext) {
    if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
      return e;
    }
  }
  return NULL;
}

/* Take e out of its chain and the LRU list; the caller frees it. */
static void detach(shard *s, entry *e) {
  entry **pp = &s->table[e->hash & s->mask];
  while (*pp != e) {
    pp = &(*pp)->hnext;
  }
  *pp = e->hnext;
  lru_unlink(s, e);
  s->count--;
}

/* The shard and hash of a key, or NULL when the key can never be cached. */
static shard *locate(gw_cache *c, const char *key, size_t *klen, uint64_t *h) {
  if (c == NULL || key == NULL || c->ttl_ms == 0) {
    return NULL;
  }
  *klen = strnlen(key, GW_CACHE_KEY_MAX + 1);
  if (*klen > GW_CACHE_KEY_MAX) {
    return NULL;
  }
  *h = gw_siphash(c->seed, key, *klen);
  return &c->shards[(*h >> 32) % c->nshards];
}

/*
 * A hit moves the entry to the front of its shard's LRU list. An expired
 * entry is dropped on the spot, which keeps a shard from filling up with
 * the dead between evictions. A clock that reads earlier than the entry's
 * birth (another thread's now_ms taken a moment before) counts as fresh.
 */
int gw_cache_get(gw_cache *c, const char *key, int64_t now_ms, int64_t *val) {
  size_t klen;
  uint64_t h;
  shard *s = locate(c, key, &klen, &h);
  if (s == NULL) {
    return 0;
  }
  entry *dead = NULL;
  int hit = 0;
  pthread_mutex_lock(&s->mu);
  entry *e = find(s, h, key, klen);
  if (e && now_ms > e->born_ms && now_ms - e->born_ms >= c->ttl_ms) {
    detach(s, e);
    dead = e;
  } else if (e && !e->refreshing && now_ms > e->born_ms &&
             now_ms - e->born_ms >= c->ttl_ms - c->ttl_ms / 4) {
    /* Refresh ahead: in the last quarter of its life an entry sends one
     * caller to recompute it (a miss) while every other still hits, so a
     * hot entry never expires under all its readers at once. */
    e->refreshing = 1;
  } else if (e) {
    lru_unlink(s, e);
    lru_push_front(s, e);
    if (val) {
      *val = e->val;
    }
    hit = 1;
  }
  pthread_mutex_unlock(&s->mu);
  free(dead);
  return hit;
}

uint64_t gw_cache_generation(gw_cache *c) { return c ? atomic_load(&c->gen) : 0; }

/*
 * The new entry is allocated before taking the lock (and freed if it turns
 * out not to be needed), so the lock is held only for pointer work.
 */
void gw_cache_put(gw_cache *c, const char *key, int64_t val, uint64_t gen, int64_t now_ms) {
  size_t klen;
  uint64_t h;
  shard *s = locate(c, key, &klen, &h);
  if (s == NULL || atomic_load(&c->gen) != gen) {
    return;
  }
  entry *fresh = cmn_malloc(sizeof *fresh + klen + 1);
  fresh->hash = h;
  fresh->val = val;
  fresh->born_ms = now_ms;
  fresh->refreshing = 0;
  fresh->klen = klen;
  memcpy(fresh->key, key, klen);
  fresh->key[klen] = '\0';
  entry *spare = NULL;
  pthread_mutex_lock(&s->mu);
  if (atomic_load(&c->gen) != gen) {
    spare = fresh;
  } else {
    entry *e = find(s, h, key, klen);
    if (e) {
      e->val = val;
      e->born_ms = now_ms;
      e->refreshing = 0;
      lru_unlink(s, e);
      lru_push_front(s, e);
      spare = fresh;
    } else {
      if (s->count >= s->cap) {
        spare = s->tail;
        detach(s, spare);
      }
      fresh->hnext = s->table[h & s->mask];
      s->table[h & s->mask] = fresh;
      lru_push_front(s, fresh);
      s->count++;
    }
  }
  pthread_mutex_unlock(&s->mu);
  free(spare);
}

/*
 * Bump the generation, then remove from every shard the entries that match
 * (all when prefix is NULL). Removed entries are chained through hnext and
 * freed after the shard's lock is released.
 */
static void invalidate(gw_cache *c, const char *prefix) {
  if (c == NULL) {
    return;
  }
  size_t plen = prefix ? strlen(prefix) : 0;
  atomic_fetch_add(&c->gen, 1);
  for (size_t i = 0; i < c->nshards; i++) {
    shard *s = &c->shards[i];
    entry *dead = NULL;
    pthread_mutex_lock(&s->mu);
    for (entry *e = s->head, *next; e; e = next) {
      next = e->next;
      if (prefix == NULL || (e->klen >= plen && memcmp(e->key, prefix, plen) == 0)) {
        detach(s, e);
        e->hnext = dead;
        dead = e;
      }
    }
    pthread_mutex_unlock(&s->mu);
    while (dead) {
      entry *next = dead->hnext;
      free(dead);
      dead = next;
    }
  }
}

void gw_cache_invalidate_all(gw_cache *c) { invalidate(c, NULL); }

void gw_cache_invalidate_prefix(gw_cache *c, const char *prefix) { invalidate(c, prefix); }

size_t gw_cache_count(gw_cache *c) {
  size_t n = 0;
  for (size_t i = 0; c && i < c->nshards; i++) {
    pthread_mutex_lock(&c->shards[i].mu);
    n += c->shards[i].count;
    pthread_mutex_unlock(&c->shards[i].mu);
  }
  return n;
}

void gw_cache_free(gw_cache *c) {
  if (c == NULL) {
    return;
  }
  for (size_t i = 0; i < c->nshards; i++) {
    shard *s = &c->shards[i];
    for (entry *e = s->head, *next; e; e = next) {
      next = e->next;
      free(e);
    }
    free(s->table);
    pthread_mutex_destroy(&s->mu);
  }
  free(c);
}
