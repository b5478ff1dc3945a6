/*
 * mst_u64map.h - internal helper: an open-addressing hash map from u64 keys
 * to u64 values, used by the chunk table (page directory, leases, reference
 * counts, the repair queue's compaction set).
 *
 * Not a public interface (the mst__ prefix): only master sources include it.
 *
 * Layout: one array of {key, value} pairs, linear probing, a power-of-two
 * capacity kept between 1/8 and 3/4 full, deletion by backward shift (no
 * tombstones, so a map that churns never degrades). Keys are mixed with the
 * splitmix64 finaliser, so dense or sequential keys spread evenly.
 * The key MST__U64MAP_EMPTY (UINT64_MAX) marks a free slot and cannot be
 * stored; callers keep it out of their key space.
 *
 * A zero-initialised struct is an empty map; mst__u64map_free releases it.
 * Allocation aborts on out of memory (cmn_malloc). No locks: the owner
 * serialises access.
 */
#ifndef MST_U64MAP_H
#define MST_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MST__U64MAP_EMPTY UINT64_MAX

typedef struct mst__u64pair {
  uint64_t key;
  uint64_t val;
} mst__u64pair;

typedef struct mst__u64map {
  mst__u64pair *slots; /* cap entries, NULL when cap is 0 */
  size_t cap;          /* 0 or a power of two */
  size_t n;            /* stored pairs */
} mst__u64map;

void mst__u64map_free(mst__u64map *m);

/* The value of `key` in *val (may be NULL). true when present. */
bool mst__u64map_get(const mst__u64map *m, uint64_t key, uint64_t *val);

/* A pointer to the value of `key`, NULL when absent. Valid until the next
 * put or del on the map. */
uint64_t *mst__u64map_ref(mst__u64map *m, uint64_t key);

/* Inserts or replaces. Returns true when the key was new. `key` must not be
 * MST__U64MAP_EMPTY (the caller guarantees it). */
bool mst__u64map_put(mst__u64map *m, uint64_t key, uint64_t val);

/* Removes `key`; its value in *val (may be NULL). true when it was present. */
bool mst__u64map_del(mst__u64map *m, uint64_t key, uint64_t *val);

/* Bytes held by the slot array (for memory accounting). */
size_t mst__u64map_bytes(const mst__u64map *m);

/* The 64-bit mixer used for keys (splitmix64 finaliser); exported so other
 * tables of the master hash the same way. */
static inline uint64_t mst__mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

#endif /* MST_U64MAP_H */
