/*
 * gw_cache.h - a small concurrent cache from string keys to int64 values
 * with a time to live and invalidation: the gateway's memory of permission
 * answers, sessions and API-token lookups, so a request does not cost a
 * database round trip for each.
 *
 * Staleness rules. An entry is fresh for ttl_ms after it was stored.
 * Invalidation removes entries at once (all of them, or those under a key
 * prefix) and bumps a generation counter. A value is computed from the
 * database outside the cache, so it may have been read before a change
 * whose invalidation lands while it is being computed; to keep such a
 * value out, read the generation first and pass it to put, which stores
 * nothing if any invalidation happened since:
 *
 *   uint64_t gen = gw_cache_generation(c);
 *   if (!gw_cache_get(c, key, now, &v)) {
 *     v = query_database(...);
 *     gw_cache_put(c, key, v, gen, now);
 *   }
 *
 * Bounded by `capacity` entries, split over up to 16 shards (each with
 * its own mutex and at least 64 entries); a full shard drops its least
 * recently used entry. A cache of under 128 entries is one shard, so its
 * order of eviction is exactly LRU.
 *
 * Thread safety: every function but new and free may be called from any
 * thread concurrently; free is not concurrent with anything on the same
 * cache.
 */
#ifndef GW_CACHE_H
#define GW_CACHE_H

#include <stddef.h>
#include <stdint.h>

/* Longest key, in bytes: longer keys never hit and are never stored. */
#define GW_CACHE_KEY_MAX 127

typedef struct gw_cache gw_cache;

/* A cache of at most `capacity` entries (1 .. 2^24) living ttl_ms each
 * (>= 0; 0 turns the cache off: nothing is stored, every get misses).
 * Returns 0 with the cache in *out (the caller frees it with
 * gw_cache_free), CAIRN_EINVAL for a bad argument, CAIRN_EIO when no
 * randomness is available for the table's hash key. */
int gw_cache_new(size_t capacity, int64_t ttl_ms, gw_cache **out);

/* Look key up at now_ms (a monotonic clock, cmn_mono_ms). Returns 1 with
 * the value in *val (if val is not NULL) on a fresh hit; 0 on a miss: key
 * absent, NULL or over GW_CACHE_KEY_MAX bytes, expired (and then dropped),
 * or removed by an invalidation. Refresh ahead: in the last quarter of an
 * entry's TTL the first caller gets a miss (and recomputes and puts it)
 * while every other caller keeps hitting until the TTL ends, so a hot
 * entry is refreshed by one caller instead of by all of them at once. */
int gw_cache_get(gw_cache *c, const char *key, int64_t now_ms, int64_t *val);

/* The current generation: read it before computing a value to put. */
uint64_t gw_cache_generation(gw_cache *c);

/* Store key -> val, fresh from now_ms, unless an invalidation happened
 * since `gen` was read (then nothing is stored). Replaces an existing
 * entry for key; evicts the shard's least recently used entry when full.
 * A NULL or overlong key is ignored. The key is copied. */
void gw_cache_put(gw_cache *c, const char *key, int64_t val, uint64_t gen, int64_t now_ms);

/* Drop every entry and bump the generation. */
void gw_cache_invalidate_all(gw_cache *c);

/* Drop the entries whose key starts with prefix and bump the generation
 * (so concurrent puts of any key computed before are refused too). A NULL
 * prefix drops everything. Walks the whole cache: meant for changes, not
 * for every request. */
void gw_cache_invalidate_prefix(gw_cache *c, const char *prefix);

/* Entries currently held (expired ones not yet dropped included); for
 * tests and metrics. */
size_t gw_cache_count(gw_cache *c);

/* Free the cache and its entries. NULL is fine. */
void gw_cache_free(gw_cache *c);

#endif /* GW_CACHE_H */
