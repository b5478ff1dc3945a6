/*
 * u64map.c - open-addressing u64 -> u64 hash map (see mst_u64map.h).
 *
 * Linear probing keeps a lookup to one or two cache lines at the loads used
 * here (at most 3/4). Deletion shifts the following entries of the probe run
 * back instead of leaving tombstones, so lookups of absent keys stay short
 * however many deletions the map has seen.
 */
#include "mst_u64map.h"

#include "cmn_util.h"

#include <stdlib.h>

#define MIN_CAP 16u

void mst__u64map_free(mst__u64map *m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = m->n = 0;
}

static size_t home(const mst__u64map *m, uint64_t key) {
  return (size_t)(mst__mix64(key) & (m->cap - 1));
}

/* Index of `key`'s slot, or of the free slot where it would go. */
static size_t find_slot(const mst__u64map *m, uint64_t key) {
  size_t mask = m->cap - 1;
  size_t i = home(m, key);
  while (m->slots[i].key != key && m->slots[i].key != MST__U64MAP_EMPTY) i = (i + 1) & mask;
  return i;
}

/* Moves every pair into a fresh array of `cap` slots. */
static void rehash(mst__u64map *m, size_t cap) {
  mst__u64pair *old = m->slots;
  size_t old_cap = m->cap;
  m->slots = cmn_malloc(cap * sizeof *m->slots);
  m->cap = cap;
  for (size_t i = 0; i < cap; i++) m->slots[i].key = MST__U64MAP_EMPTY;
  for (size_t i = 0; i < old_cap; i++) {
    if (old[i].key == MST__U64MAP_EMPTY) continue;
    m->slots[find_slot(m, old[i].key)] = old[i];
  }
  free(old);
}

bool mst__u64map_get(const mst__u64map *m, uint64_t key, uint64_t *val) {
  if (m->n == 0) return false;
  const mst__u64pair *p = &m->slots[find_slot(m, key)];
  if (p->key != key) return false;
  if (val) *val = p->val;
  return true;
}

uint64_t *mst__u64map_ref(mst__u64map *m, uint64_t key) {
  if (m->n == 0) return NULL;
  mst__u64pair *p = &m->slots[find_slot(m, key)];
  return p->key == key ? &p->val : NULL;
}

bool mst__u64map_put(mst__u64map *m, uint64_t key, uint64_t val) {
  if ((m->n + 1) * 4 > m->cap * 3) rehash(m, m->cap ? m->cap * 2 : MIN_CAP);
  mst__u64pair *p = &m->slots[find_slot(m, key)];
  bool fresh = p->key != key;
  if (fresh) m->n++;
  p->key = key;
  p->val = val;
  return fresh;
}

/*
 * Backward-shift deletion: after emptying slot i, walk the run that follows
 * and move back every entry whose home slot is not cyclically in (i, j], so
 * no entry is left behind a hole its probe would stop at.
 */
bool mst__u64map_del(mst__u64map *m, uint64_t key, uint64_t *val) {
  if (m->n == 0) return false;
  size_t mask = m->cap - 1;
  size_t i = find_slot(m, key);
  if (m->slots[i].key != key) return false;
  if (val) *val = m->slots[i].val;
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (m->slots[j].key == MST__U64MAP_EMPTY) break;
    size_t h = home(m, m->slots[j].key);
    /* Leave slot j where it is if its home lies in (i, j] (cyclically). */
    bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
    if (stays) continue;
    m->slots[i] = m->slots[j];
    i = j;
  }
  m->slots[i].key = MST__U64MAP_EMPTY;
  m->n--;
  if (m->cap > MIN_CAP && m->n * 8 < m->cap) rehash(m, m->cap / 2);
  return true;
}

size_t mst__u64map_bytes(const mst__u64map *m) { return m->cap * sizeof *m->slots; }
