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

#define MAX_SHARDS 16
#define MIN_PER_SHARD 64 /* smaller tables use fewer shards (one under 128) */
#define MAX_KEYS_LIMIT ((size_t)1 << 24)
#define EVICT_SCAN 8           /* buckets looked at from the LRU end for an idle one */
#define TOKEN_EPSILON 1e-9     /* float slack when a bucket holds "exactly" one token */
#define RETRY_MAX_MS 1e15      /* keeps the wait representable for absurdly low rates */

typedef struct bucket {
  struct bucket *hnext;       /* hash chain */
  struct bucket *prev, *next; /* LRU list, most recent first */
  uint64_t hash;
  double tokens;
  int64_t last_ms;
  size_t klen;
  char key[];
} bucket;

typedef struct shard {
  pthread_mutex_t mu;
  bucket **table; /* mask + 1 chains */
  size_t mask;
  size_t count, cap;
  bucket *head, *tail;
  char pad[64]; /* keeps neighbouring shards' mutexes off one cache line */
} shard;

struct gw_ratelimit {
  double rate_per_ms, burst;
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
  size_t nshards = CMN_MAX((size_t)1, CMN_MIN(max_keys / MIN_PER_SHARD, (size_t)MAX_SHARDS));
  gw_ratelimit *rl = cmn_calloc(1, sizeof *rl + nshards * sizeof(shard));
  int rc = gw_random_bytes(rl->seed, sizeof rl->seed);
  if (rc < 0) {
    free(rl);
    return rc;
  }
  rl->rate_per_ms = rate / 1000.0;
  rl->burst = burst;
  rl->nshards = nshards;
  for (size_t i = 0; i < nshards; i++) {
    shard *s = &rl->shards[i];
    pthread_mutex_init(&s->mu, NULL);
    s->cap = max_keys / nshards + (i < max_keys % nshards ? 1 : 0);
    s->mask = pow2_at_least(s->cap) - 1;
    s->table = cmn_calloc(s->mask + 1, sizeof *s->table);
  }
  *out = rl;
  return 0;
}

/* ---- the per-shard table and LRU list (shard mutex held) ---- */

static void lru_unlink(shard *s, bucket *b) {
  if (b->prev) {
    b->prev->next = b->next;
  } else {
    s->head = b->next;
  }
  if (b->next) {
    b->next->prev = b->prev;
  } else {
    s->tail = b->prev;
  }
  b->prev = b->next = NULL;
}

static void lru_push_front(shard *s, bucket *b) {
  b->prev = NULL;
  b->next = s->head;
  if (s->head) {
    s->head->prev = b;
  } else {
    s->tail = b;
  }
  s->head = b;
}

static bucket *find(shard *s, uint64_t h, const char *key, size_t klen) {
  for (bucket *b = s->table[h & s->mask]; b; b = b->hnext) {
    if (b->hash == h && b->klen == klen && memcmp(b->key, key, klen) == 0) {
      return b;
    }
  }
  return NULL;
}

static void remove_bucket(shard *s, bucket *b) {
  bucket **pp = &s->table[b->hash & s->mask];
  while (*pp != b) {
    pp = &(*pp)->hnext;
  }
  *pp = b->hnext;
  lru_unlink(s, b);
  s->count--;
  free(b);
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
  bucket *victim = s->tail;
  int n = 0;
  for (bucket *b = s->tail; b && n < EVICT_SCAN; b = b->prev, n++) {
    if (tokens_at(rl, b, now_ms) >= rl->burst - TOKEN_EPSILON) {
      victim = b;
      break;
    }
  }
  remove_bucket(s, victim);
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
  shard *s = &rl->shards[(h >> 32) % rl->nshards];
  int rc = 0;
  pthread_mutex_lock(&s->mu);
  bucket *b = find(s, h, key, klen);
  if (b == NULL) {
    if (s->count >= s->cap) {
      evict_one(rl, s, now_ms);
    }
    b = cmn_malloc(sizeof *b + klen + 1);
    b->hash = h;
    b->tokens = rl->burst;
    b->last_ms = now_ms;
    b->klen = klen;
    memcpy(b->key, key, klen);
    b->key[klen] = '\0';
    b->hnext = s->table[h & s->mask];
    s->table[h & s->mask] = b;
    s->count++;
  } else {
    lru_unlink(s, b);
  }
  lru_push_front(s, b);
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
  size_t n = 0;
  for (size_t i = 0; rl && i < rl->nshards; i++) {
    pthread_mutex_lock(&rl->shards[i].mu);
    n += rl->shards[i].count;
    pthread_mutex_unlock(&rl->shards[i].mu);
  }
  return n;
}

void gw_ratelimit_free(gw_ratelimit *rl) {
  if (rl == NULL) {
    return;
  }
  for (size_t i = 0; i < rl->nshards; i++) {
    shard *s = &rl->shards[i];
    for (bucket *b = s->head, *next; b; b = next) {
      next = b->next;
      free(b);
    }
    free(s->table);
    pthread_mutex_destroy(&s->mu);
  }
  free(rl);
}
