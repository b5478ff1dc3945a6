/*
 * ratelimit.c - sharded token buckets keyed by string (see gw_ratelimit.h).
 *
 * A key hashes (SipHash under a random per-limiter key, so clients cannot
 * crowd one chain) to a shard and, within it, to a chain of a fixed-size
 * table. Each shard has its own mutex, its own share of max_keys, and a
 * list of its buckets from most to least recently used for eviction.
 */
#include "gw_ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_util.h"
#include "gw_crypto.h"
#include "gw_lru.h"

#define MAX_SHARDS 16
#define MIN_PER_SHARD 64 /* smaller tables use fewer shards (one under 128) */
#define MAX_KEYS_LIMIT ((size_t)1 << 24)
#define EVICT_SCAN 8           /* buckets looked at from the LRU end for an idle one */
#define TOKEN_EPSILON 1e-9     /* float slack when a bucket holds "exactly" one token */
#define RETRY_MAX_MS 1e15      /* keeps the wait representable for absurdly low rates */

typedef struct bucket {
  gw_lru_node node; /* chain and LRU links, hash, key = the bytes below */
  double tokens;
  int64_t last_ms;
  char key[];
} bucket;

typedef gw_lru_shard shard;

struct gw_ratelimit {
  double rate_per_ms, burst;
  uint8_t seed[16];
  gw_lru_shards shards;
};

/*
 * max_keys is split over the shards exactly (the first max_keys % nshards
 * get one more), so the total never exceeds it. A shard holds at least
 * MIN_PER_SHARD keys, so a small limiter has few shards and evicts in
 * nearly global LRU order.
 */
int gw_ratelimit_new(double rate, double burst, size_t max_keys, gw_ratelimit **out) {
  if (out == NULL || !isfinite(rate) || rate <= 0 || !isfinite(burst) || burst < 1 ||
      max_keys < 1 || max_keys > MAX_KEYS_LIMIT) {
    return CAIRN_EINVAL;
  }
  gw_ratelimit *rl = cmn_calloc(1, sizeof *rl);
  int rc = gw_random_bytes(rl->seed, sizeof rl->seed);
  if (rc < 0) {
    goto fail;
  }
  rl->rate_per_ms = rate / 1000.0;
  rl->burst = burst;
  rc = gw_lru_shards_init(&rl->shards, max_keys, MIN_PER_SHARD, MAX_SHARDS);
  if (rc < 0) {
    goto fail;
  }
  *out = rl;
  return 0;
fail:
  gw_ratelimit_free(rl);
  return rc;
}

static void free_bucket(gw_lru_node *n) { free(GW_LRU_ENTRY(n, bucket, node)); }

/* The bucket for key in s, or NULL (shard mutex held). */
static bucket *find(shard *s, uint64_t h, const char *key, size_t klen) {
  gw_lru_node *n = gw_lru_find(&s->lru, h, key, klen);
  return n ? GW_LRU_ENTRY(n, bucket, node) : NULL;
}

/* Tokens b would hold at now_ms (without changing it). */
static double tokens_at(const gw_ratelimit *rl, const bucket *b, int64_t now_ms) {
  double t = b->tokens;
  if (now_ms > b->last_ms) {
    t += ((double)now_ms - (double)b->last_ms) * rl->rate_per_ms;
  }
  return t < rl->burst ? t : rl->burst;
}

/*
 * Make room for one bucket in a full shard. A bucket that has refilled to
 * the brim carries no information (a new one would start full too), so it
 * goes first; the search looks at a few buckets from the cold end, where
 * idle ones collect. Failing that the least recently used goes, which lets
 * that key start over with a full bucket: the price of bounded memory.
 */
static void evict_one(const gw_ratelimit *rl, shard *s, int64_t now_ms) {
  gw_lru_node *victim = gw_lru_tail(&s->lru);
  int seen = 0;
  for (gw_lru_node *n = victim; n && seen < EVICT_SCAN; n = n->prev, seen++) {
    if (tokens_at(rl, GW_LRU_ENTRY(n, bucket, node), now_ms) >= rl->burst - TOKEN_EPSILON) {
      victim = n;
      break;
    }
  }
  gw_lru_remove(&s->lru, victim);
  free_bucket(victim);
}

/*
 * Refill the bucket for the time since it was last seen, then take a token
 * or compute how long until one is there: (1 - tokens) / rate, rounded up
 * so that a retry after that long succeeds. Both the test and the wait
 * allow for float rounding (0.99 tokens at 10/s is 1 ms short, not 2), the
 * wait with half the slack of the test so the promise always holds.
 */
int gw_ratelimit_take(gw_ratelimit *rl, const char *key, int64_t now_ms, int64_t *retry_after_ms) {
  if (rl == NULL || key == NULL) {
    return CAIRN_EINVAL;
  }
  size_t klen = strnlen(key, GW_RATELIMIT_KEY_MAX + 1);
  if (klen > GW_RATELIMIT_KEY_MAX) {
    return CAIRN_EINVAL;
  }
  uint64_t h = gw_siphash(rl->seed, key, klen);
  shard *s = gw_lru_shards_pick(&rl->shards, h);
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  bucket *b = find(s, h, key, klen);
  if (b == NULL) {
    if (s->lru.count >= s->cap) {
      evict_one(rl, s, now_ms);
    }
    b = cmn_malloc(sizeof *b + klen + 1);
    b->tokens = rl->burst;
    b->last_ms = now_ms;
    memcpy(b->key, key, klen);
    b->key[klen] = '\0';
    gw_lru_insert(&s->lru, &b->node, h, b->key, klen);
  } else {
    gw_lru_touch(&s->lru, &b->node);
  }
  b->tokens = tokens_at(rl, b, now_ms);
  if (now_ms > b->last_ms) {
    b->last_ms = now_ms;
  }
  if (b->tokens >= 1 - TOKEN_EPSILON) {
    b->tokens = b->tokens > 1 ? b->tokens - 1 : 0;
  } else {
    rc = CAIRN_ERATELIMIT;
    if (retry_after_ms) {
      double wait = ceil((1 - TOKEN_EPSILON / 2 - b->tokens) / rl->rate_per_ms);
      wait = wait < 1 ? 1 : wait > RETRY_MAX_MS ? RETRY_MAX_MS : wait;
      *retry_after_ms = (int64_t)wait;
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

size_t gw_ratelimit_count(gw_ratelimit *rl) {
  return rl ? gw_lru_shards_count(&rl->shards) : 0;
}

void gw_ratelimit_free(gw_ratelimit *rl) {
  if (rl == NULL) {
    return;
  }
  gw_lru_shards_destroy(&rl->shards, free_bucket);
  free(rl);
}
