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
#include "gw_lru.h"

#define MAX_SHARDS 16
#define MIN_PER_SHARD 64 /* smaller tables use fewer shards (one under 128) */
#define CAPACITY_LIMIT ((size_t)1 << 24)

typedef struct entry {
  gw_lru_node node; /* chain and LRU links, hash, key = the bytes below */
  int64_t val;
  int64_t born_ms;
  int refreshing; /* one caller was sent to recompute it early */
  char key[];
} entry;

typedef gw_lru_shard shard;

struct gw_cache {
  int64_t ttl_ms;
  _Atomic uint64_t gen;
  uint8_t seed[16];
  gw_lru_shards shards;
};

/* The shard set splits capacity exactly (see gw_lru_shards_init). */
int gw_cache_new(size_t capacity, int64_t ttl_ms, gw_cache **out) {
  if (out == NULL || capacity < 1 || capacity > CAPACITY_LIMIT || ttl_ms < 0) {
    return CAIRN_EINVAL;
  }
  gw_cache *c = cmn_calloc(1, sizeof *c);
  int rc = gw_random_bytes(c->seed, sizeof c->seed);
  if (rc < 0) {
    goto fail;
  }
  c->ttl_ms = ttl_ms;
  atomic_init(&c->gen, 1);
  rc = gw_lru_shards_init(&c->shards, capacity, MIN_PER_SHARD, MAX_SHARDS);
  if (rc < 0) {
    goto fail;
  }
  *out = c;
  return 0;
fail:
  gw_cache_free(c);
  return rc;
}

static void free_entry(gw_lru_node *n) { free(GW_LRU_ENTRY(n, entry, node)); }

/* Take e out of its shard's table and LRU list; the caller frees it. */
static void detach(shard *s, entry *e) { gw_lru_remove(&s->lru, &e->node); }

/* The entry for key in s, or NULL (shard mutex held). */
static entry *find(shard *s, uint64_t h, const char *key, size_t klen) {
  gw_lru_node *n = gw_lru_find(&s->lru, h, key, klen);
  return n ? GW_LRU_ENTRY(n, entry, node) : NULL;
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
  return gw_lru_shards_pick(&c->shards, *h);
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
    gw_lru_touch(&s->lru, &e->node);
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
  fresh->val = val;
  fresh->born_ms = now_ms;
  fresh->refreshing = 0;
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
      gw_lru_touch(&s->lru, &e->node);
      spare = fresh;
    } else {
      if (s->lru.count >= s->cap) {
        spare = GW_LRU_ENTRY(gw_lru_tail(&s->lru), entry, node);
        detach(s, spare);
      }
      gw_lru_insert(&s->lru, &fresh->node, h, fresh->key, klen);
    }
  }
  pthread_mutex_unlock(&s->mu);
  free(spare);
}

/*
 * Bump the generation, then remove from every shard the entries that match
 * (all when prefix is NULL). Removed entries are chained through their
 * now unused list link and freed after the shard's lock is released.
 */
static void invalidate(gw_cache *c, const char *prefix) {
  if (c == NULL) {
    return;
  }
  size_t plen = prefix ? strlen(prefix) : 0;
  atomic_fetch_add(&c->gen, 1);
  for (size_t i = 0; i < c->shards.n; i++) {
    shard *s = &c->shards.v[i];
    gw_lru_node *dead = NULL;
    pthread_mutex_lock(&s->mu);
    for (gw_lru_node *n = s->lru.head, *next; n; n = next) {
      next = n->next;
      if (prefix == NULL || (n->klen >= plen && memcmp(n->key, prefix, plen) == 0)) {
        gw_lru_remove(&s->lru, n);
        n->next = dead;
        dead = n;
      }
    }
    pthread_mutex_unlock(&s->mu);
    while (dead) {
      gw_lru_node *next = dead->next;
      free_entry(dead);
      dead = next;
    }
  }
}

void gw_cache_invalidate_all(gw_cache *c) { invalidate(c, NULL); }

void gw_cache_invalidate_prefix(gw_cache *c, const char *prefix) { invalidate(c, prefix); }

size_t gw_cache_count(gw_cache *c) { return c ? gw_lru_shards_count(&c->shards) : 0; }

void gw_cache_free(gw_cache *c) {
  if (c == NULL) {
    return;
  }
  gw_lru_shards_destroy(&c->shards, free_entry);
  free(c);
}
