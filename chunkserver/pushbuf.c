/*
 * pushbuf.c - the chunkserver's push buffer (see cs_pushbuf.h).
 *
 * One mutex per buffer guards the hash map, the budget and the per-push
 * state (refs, dropped, touched time). The bytes of a push in progress are
 * written without the lock: the push belongs to its filler (the connection)
 * until finish or cancel, it is not visible to get, and expiry skips it, so
 * nothing else reads them.
 *
 * States of a push:
 *   RECEIVING  begun, filled by its owner; in the map (its id is taken) but
 *              invisible to get and ignored by expiry and drop
 *   VISIBLE    finished with length and CRC checked; get/put/drop/expire
 *   dropped    a VISIBLE push whose bytes are no longer wanted but which
 *              still has references: invisible to get, freed at the last put
 * A push is unlinked from the map and its reservation returned when it is
 * freed, so the budget counts every byte that may still be read.
 *
 * The map is a chained hash table keyed by the 16-byte id, hashed with a
 * per-buffer random seed (ids are chosen by clients), doubled when the load
 * passes 1.
 */
#include "cs_pushbuf.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Largest push: one chunk of the largest size the store allows (1 GiB). */
#define PUSH_MAX (1ull << 30)

enum { PUSH_RECEIVING = 0, PUSH_VISIBLE = 1, PUSH_GONE = 2 /* cancelled or failed, still held */ };

struct cs_push {
  cs_pushbuf *pb;
  cs_push *next; /* hash chain */
  uint8_t id[CS_DATA_ID_LEN];
  uint64_t total;    /* announced length */
  uint64_t have;     /* bytes appended */
  uint32_t want_crc; /* announced crc32c */
  uint32_t crc;      /* running crc32c of the bytes appended */
  int state;
  bool dropped;
  int refs;
  int64_t touched_ms; /* cmn_mono_ms() of the last begin/append/finish/get/put */
  uint8_t *data;      /* total bytes */
  uint64_t cap;       /* bytes allocated at data (>= total when reused) */
};

/* Freed push memory kept for the next pushes: a fresh 64 MiB allocation
 * costs a page fault and a page clear per 4 KiB, which measured as the
 * largest cost of a push. Cached bytes count against the budget like
 * reserved ones, and are given back first when a push needs room. */
#define CACHE_SLOTS 8
#define CACHE_MIN (1u << 20)

struct cs_pushbuf {
  pthread_mutex_t mu;
  uint64_t budget;
  int64_t ttl_ms;
  uint64_t seed;
  cs_push **buckets;
  size_t nbuckets; /* a power of two */
  size_t count;
  uint64_t reserved;
  uint64_t refused;
  uint64_t expired;
  uint8_t *cache[CACHE_SLOTS];
  uint64_t cache_cap[CACHE_SLOTS];
  uint64_t cached; /* bytes held in the cache */
};

/* Take the smallest cached block of at least `total` bytes (NULL if none),
 * then give back cached blocks until reserved + cached fits the budget.
 * Lock held. */
static uint8_t *cache_take(cs_pushbuf *pb, uint64_t total, uint64_t *cap) {
  int best = -1;
  for (int i = 0; i < CACHE_SLOTS; i++)
    if (pb->cache[i] && pb->cache_cap[i] >= total && (best < 0 || pb->cache_cap[i] < pb->cache_cap[best]))
      best = i;
  uint8_t *data = NULL;
  if (best >= 0) {
    data = pb->cache[best];
    *cap = pb->cache_cap[best];
    pb->cache[best] = NULL;
    pb->cached -= *cap;
  }
  for (int i = 0; i < CACHE_SLOTS && pb->reserved + pb->cached > pb->budget; i++) {
    if (!pb->cache[i]) continue;
    free(pb->cache[i]);
    pb->cached -= pb->cache_cap[i];
    pb->cache[i] = NULL;
  }
  return data;
}

/* Keep a freed block for reuse when it is worth it and fits; else free it.
 * Lock held. */
static void cache_put(cs_pushbuf *pb, uint8_t *data, uint64_t cap) {
  if (data && cap >= CACHE_MIN && pb->reserved + pb->cached + cap <= pb->budget) {
    for (int i = 0; i < CACHE_SLOTS; i++) {
      if (!pb->cache[i]) {
        pb->cache[i] = data;
        pb->cache_cap[i] = cap;
        pb->cached += cap;
        return;
      }
    }
  }
  free(data);
}

/* FNV-1a over the id, started from the buffer's random seed, then mixed so
 * that the low bits used as the bucket index depend on every byte. */
static size_t id_hash(const cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN]) {
  uint64_t h = 0xcbf29ce484222325ULL ^ pb->seed;
  for (size_t i = 0; i < CS_DATA_ID_LEN; i++) {
    h ^= id[i];
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return (size_t)h;
}

static cs_push **slot_of(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN]) {
  cs_push **pp = &pb->buckets[id_hash(pb, id) & (pb->nbuckets - 1)];
  while (*pp && memcmp((*pp)->id, id, CS_DATA_ID_LEN) != 0) pp = &(*pp)->next;
  return pp;
}

static cs_push *find(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN]) {
  return *slot_of(pb, id);
}

/* Double the table when it holds more pushes than buckets. Lock held. */
static void maybe_grow(cs_pushbuf *pb) {
  if (pb->count < pb->nbuckets) return;
  size_t n = pb->nbuckets * 2;
  cs_push **b = cmn_calloc(n, sizeof *b);
  for (size_t i = 0; i < pb->nbuckets; i++) {
    cs_push *p = pb->buckets[i];
    while (p) {
      cs_push *next = p->next;
      size_t at = id_hash(pb, p->id) & (n - 1);
      p->next = b[at];
      b[at] = p;
      p = next;
    }
  }
  free(pb->buckets);
  pb->buckets = b;
  pb->nbuckets = n;
}

/* Unlink `p`, return its reservation and free it. Lock held. */
static void release(cs_pushbuf *pb, cs_push *p) {
  cs_push **pp = slot_of(pb, p->id);
  if (*pp == p) *pp = p->next;
  pb->count--;
  pb->reserved -= p->total;
  cache_put(pb, p->data, p->cap);
  free(p);
}

/* `p` is finished with (cancelled, failed, dropped): release it now, or
 * once the last reference is put when some are held. Lock held. */
static void release_or_defer(cs_pushbuf *pb, cs_push *p) {
  if (p->refs > 0) {
    p->dropped = true;
    if (p->state == PUSH_RECEIVING) p->state = PUSH_GONE;
    return;
  }
  release(pb, p);
}

int cs_pushbuf_new(uint64_t budget, int64_t ttl_ms, cs_pushbuf **out) {
  if (!out || budget == 0 || ttl_ms <= 0) return CAIRN_EINVAL;
  cs_pushbuf *pb = cmn_calloc(1, sizeof *pb);
  if (cmn_random_bytes(&pb->seed, sizeof pb->seed) < 0) pb->seed = (uint64_t)cmn_mono_ns();
  pthread_mutex_init(&pb->mu, NULL);
  pb->budget = budget;
  pb->ttl_ms = ttl_ms;
  pb->nbuckets = 64;
  pb->buckets = cmn_calloc(pb->nbuckets, sizeof *pb->buckets);
  *out = pb;
  return 0;
}

void cs_pushbuf_free(cs_pushbuf *pb) {
  if (!pb) return;
  for (size_t i = 0; i < pb->nbuckets; i++) {
    cs_push *p = pb->buckets[i];
    while (p) {
      cs_push *next = p->next;
      free(p->data);
      free(p);
      p = next;
    }
  }
  for (int i = 0; i < CACHE_SLOTS; i++) free(pb->cache[i]);
  free(pb->buckets);
  pthread_mutex_destroy(&pb->mu);
  free(pb);
}

/*
 * Reserve `total` bytes for a new push under the lock (budget and id checks
 * are one atomic decision, so concurrent begins never overshoot the
 * budget), then allocate the bytes outside it. The memory is allocated
 * whole up front so that appends never reallocate; pages the kernel has not
 * touched yet cost nothing until bytes arrive. A refused begin allocates
 * nothing.
 */
int cs_pushbuf_begin(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN], uint64_t total,
                     uint32_t crc, cs_push **out) {
  if (!pb || !id || !out || total == 0 || total > PUSH_MAX) return CAIRN_EINVAL;
  cs_push *p = cmn_calloc(1, sizeof *p);
  p->pb = pb;
  memcpy(p->id, id, CS_DATA_ID_LEN);
  p->total = total;
  p->want_crc = crc;
  p->state = PUSH_RECEIVING;
  p->touched_ms = cmn_mono_ms();
  int rc = 0;
  pthread_mutex_lock(&pb->mu);
  if (find(pb, id)) {
    rc = CAIRN_EEXIST;
  } else if (total > pb->budget - pb->reserved) {
    pb->refused++;
    rc = CAIRN_EBUSY;
  } else {
    size_t at = id_hash(pb, id) & (pb->nbuckets - 1);
    p->next = pb->buckets[at];
    pb->buckets[at] = p;
    pb->count++;
    pb->reserved += total;
    maybe_grow(pb);
    p->data = cache_take(pb, total, &p->cap);
  }
  pthread_mutex_unlock(&pb->mu);
  if (rc < 0) goto fail;
  if (!p->data) {
    p->data = malloc((size_t)total);
    p->cap = total;
  }
  if (!p->data) {
    pthread_mutex_lock(&pb->mu);
    release(pb, p); /* frees p */
    pthread_mutex_unlock(&pb->mu);
    return CAIRN_ENOMEM;
  }
  *out = p;
  return 0;
fail:
  free(p);
  return rc;
}

/* Copy the next bytes in and extend the running CRC, so that finish is
 * O(1) and the event loop never stalls on a whole-chunk checksum. */
int cs_pushbuf_append(cs_push *p, const void *data, size_t len) {
  if (!p || (!data && len)) return CAIRN_EINVAL;
  if (p->state != PUSH_RECEIVING) return CAIRN_EINVAL;
  if (len > p->total - p->have) return CAIRN_ERANGE;
  if (len == 0) return 0;
  memcpy(p->data + p->have, data, len);
  p->crc = cmn_crc32c(p->crc, data, len);
  p->have += len;
  /* the timestamp is read by expiry only once the push is visible; a
   * relaxed store is enough and keeps the lock off the hot path */
  __atomic_store_n(&p->touched_ms, cmn_mono_ms(), __ATOMIC_RELAXED);
  return 0;
}

int cs_pushbuf_finish(cs_push *p) {
  if (!p || p->state != PUSH_RECEIVING) return CAIRN_EINVAL;
  cs_pushbuf *pb = p->pb;
  int rc = 0;
  if (p->have != p->total)
    rc = CAIRN_EPROTO;
  else if (p->crc != p->want_crc)
    rc = CAIRN_ECHECKSUM;
  pthread_mutex_lock(&pb->mu);
  if (rc < 0) {
    release_or_defer(pb, p);
  } else {
    p->state = PUSH_VISIBLE;
    p->touched_ms = cmn_mono_ms();
  }
  pthread_mutex_unlock(&pb->mu);
  return rc;
}

void cs_pushbuf_cancel(cs_push *p) {
  if (!p || p->state != PUSH_RECEIVING) return;
  cs_pushbuf *pb = p->pb;
  pthread_mutex_lock(&pb->mu);
  release_or_defer(pb, p);
  pthread_mutex_unlock(&pb->mu);
}

void cs_pushbuf_hold(cs_push *p) {
  pthread_mutex_lock(&p->pb->mu);
  p->refs++;
  pthread_mutex_unlock(&p->pb->mu);
}

void cs_pushbuf_unhold(cs_push *p) {
  cs_pushbuf *pb = p->pb;
  pthread_mutex_lock(&pb->mu);
  p->touched_ms = cmn_mono_ms();
  if (--p->refs == 0 && p->dropped) release(pb, p);
  pthread_mutex_unlock(&pb->mu);
}

int64_t cs_pushbuf_ttl_ms(const cs_pushbuf *pb) { return pb->ttl_ms; }

const uint8_t *cs_pushbuf_bytes(const cs_push *p) { return p->data; }

int cs_pushbuf_get(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN], const void **data,
                   uint64_t *len, uint32_t *crc) {
  if (!pb || !id || !data || !len || !crc) return CAIRN_EINVAL;
  int rc = CAIRN_ENOENT;
  pthread_mutex_lock(&pb->mu);
  cs_push *p = find(pb, id);
  if (p && p->state == PUSH_VISIBLE && !p->dropped) {
    p->refs++;
    p->touched_ms = cmn_mono_ms();
    *data = p->data;
    *len = p->total;
    *crc = p->want_crc;
    rc = 0;
  }
  pthread_mutex_unlock(&pb->mu);
  return rc;
}

void cs_pushbuf_put(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN]) {
  if (!pb || !id) return;
  pthread_mutex_lock(&pb->mu);
  cs_push *p = find(pb, id);
  if (p && p->state == PUSH_VISIBLE && p->refs > 0) {
    p->refs--;
    p->touched_ms = cmn_mono_ms();
    if (p->refs == 0 && p->dropped) release(pb, p);
  }
  pthread_mutex_unlock(&pb->mu);
}

/* A push still arriving belongs to its connection (which cancels it if it
 * goes away), so drop only acts on visible pushes. */
void cs_pushbuf_drop(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN]) {
  if (!pb || !id) return;
  pthread_mutex_lock(&pb->mu);
  cs_push *p = find(pb, id);
  if (p && p->state == PUSH_VISIBLE) release_or_defer(pb, p);
  pthread_mutex_unlock(&pb->mu);
}

/*
 * Free visible, unreferenced pushes untouched for longer than the TTL.
 * Pushes still arriving are skipped: their connection owns them, and its
 * idle timeout cancels them if the sender goes quiet.
 */
int cs_pushbuf_expire(cs_pushbuf *pb, int64_t now_ms) {
  if (!pb) return 0;
  int n = 0;
  pthread_mutex_lock(&pb->mu);
  for (size_t i = 0; i < pb->nbuckets; i++) {
    cs_push **pp = &pb->buckets[i];
    while (*pp) {
      cs_push *p = *pp;
      if (p->state == PUSH_VISIBLE && p->refs == 0 && now_ms - p->touched_ms > pb->ttl_ms) {
        *pp = p->next;
        pb->count--;
        pb->reserved -= p->total;
        pb->expired++;
        cache_put(pb, p->data, p->cap);
        free(p);
        n++;
      } else {
        pp = &p->next;
      }
    }
  }
  pthread_mutex_unlock(&pb->mu);
  return n;
}

void cs_pushbuf_get_stats(cs_pushbuf *pb, cs_pushbuf_stats *out) {
  if (!pb || !out) return;
  pthread_mutex_lock(&pb->mu);
  out->budget = pb->budget;
  out->reserved = pb->reserved;
  out->pushes = pb->count;
  out->refused = pb->refused;
  out->expired = pb->expired;
  pthread_mutex_unlock(&pb->mu);
}
