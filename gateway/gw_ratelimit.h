/*
 * gw_ratelimit.h - token-bucket rate limits keyed by a string (a user id,
 * a client address), in bounded memory.
 *
 * Each key has a bucket of at most `burst` tokens that refills at `rate`
 * tokens per second; a request takes one token or is refused with the
 * time until the next one. Buckets live in up to 16 shards (at least 64
 * buckets each), each with its own mutex, so concurrent requests for
 * different keys rarely wait on each other. At most max_keys buckets
 * exist: to make room in a full shard, a bucket that has refilled to full
 * is dropped first (forgetting it changes nothing, a new bucket starts
 * full), otherwise the least recently used.
 *
 * Thread safety: gw_ratelimit_take may be called from any thread
 * concurrently; new and free are not concurrent with anything else on the
 * same limiter.
 */
#ifndef GW_RATELIMIT_H
#define GW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/* Longest key accepted, in bytes. */
#define GW_RATELIMIT_KEY_MAX 255

typedef struct gw_ratelimit gw_ratelimit;

/* A limiter of `rate` tokens per second (finite, > 0), buckets of `burst`
 * tokens (finite, >= 1), and at most max_keys (>= 1) buckets. Returns 0
 * with the limiter in *out (the caller frees it with gw_ratelimit_free), or
 * CAIRN_EINVAL for a bad argument (*out untouched). */
int gw_ratelimit_new(double rate, double burst, size_t max_keys, gw_ratelimit **out);

/* Take one token from key's bucket at now_ms, a monotonic clock in
 * milliseconds (cmn_mono_ms); a time earlier than the bucket last saw adds
 * nothing. Returns 0 when allowed; CAIRN_ERATELIMIT when not, with
 * *retry_after_ms (if retry_after_ms is not NULL) set to the wait, >= 1,
 * until a token is there; CAIRN_EINVAL for a NULL limiter or key or a key
 * over GW_RATELIMIT_KEY_MAX bytes (nothing counted). */
int gw_ratelimit_take(gw_ratelimit *rl, const char *key, int64_t now_ms, int64_t *retry_after_ms);

/* Buckets currently held (at most max_keys); for tests and metrics. */
size_t gw_ratelimit_count(gw_ratelimit *rl);

/* Free the limiter and every bucket. NULL is fine. */
void gw_ratelimit_free(gw_ratelimit *rl);

#endif /* GW_RATELIMIT_H */
