/*
 * store_index.c - the replica index: handle -> 24-byte entry in one
 * open-addressing table (linear probing, power-of-two capacity kept between
 * 1/8 and 3/4 full, deletion by backward shift so there are no tombstones).
 * About 32-48 bytes per replica. No locks: the store guards it with its mutex.
 */
#include "store_internal.h"

#include "cmn_util.h"

#include <stdlib.h>

#define MIN_CAP 16u

_Static_assert(sizeof(cs__entry) == 24, "index entries stay compact");

/* splitmix64 finaliser: sequential handles spread over the table. */
static size_t slot_of(uint64_t key, size_t cap) {
  uint64_t x = key;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return (size_t)(x & (cap - 1));
}

void cs__index_free(cs__index *ix) {
  free(ix->slots);
  ix->slots = NULL;
  ix->cap = ix->n = 0;
}

cs__entry *cs__index_find(const cs__index *ix, uint64_t handle) {
  if (ix->cap == 0 || handle == CS__NO_HANDLE) return NULL;
  for (size_t i = slot_of(handle, ix->cap);; i = (i + 1) & (ix->cap - 1)) {
    cs__entry *e = &ix->slots[i];
    if (e->handle == handle) return e;
    if (e->handle == CS__NO_HANDLE) return NULL;
  }
}

/* Place e in a table known to have room and not to contain e->handle. */
static cs__entry *place(cs__entry *slots, size_t cap, const cs__entry *e) {
  size_t i = slot_of(e->handle, cap);
  while (slots[i].handle != CS__NO_HANDLE) i = (i + 1) & (cap - 1);
  slots[i] = *e;
  return &slots[i];
}

static void resize(cs__index *ix, size_t cap) {
  cs__entry *slots = cmn_malloc(cap * sizeof *slots);
  for (size_t i = 0; i < cap; i++) slots[i].handle = CS__NO_HANDLE;
  for (size_t i = 0; i < ix->cap; i++)
    if (ix->slots[i].handle != CS__NO_HANDLE) place(slots, cap, &ix->slots[i]);
  free(ix->slots);
  ix->slots = slots;
  ix->cap = cap;
}

cs__entry *cs__index_put(cs__index *ix, const cs__entry *e) {
  cs__entry *old = cs__index_find(ix, e->handle);
  if (old) {
    *old = *e;
    return old;
  }
  if ((ix->n + 1) * 4 > ix->cap * 3) resize(ix, ix->cap ? ix->cap * 2 : MIN_CAP);
  ix->n++;
  return place(ix->slots, ix->cap, e);
}

bool cs__index_del(cs__index *ix, uint64_t handle) {
  cs__entry *e = cs__index_find(ix, handle);
  if (!e) return false;
  size_t mask = ix->cap - 1, hole = (size_t)(e - ix->slots);
  /* Backward shift: move later members of the probe run into the hole when
   * their home slot does not lie cyclically in (hole, j]. */
  for (size_t j = (hole + 1) & mask; ix->slots[j].handle != CS__NO_HANDLE; j = (j + 1) & mask) {
    size_t home = slot_of(ix->slots[j].handle, ix->cap);
    int between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!between) {
      ix->slots[hole] = ix->slots[j];
      hole = j;
    }
  }
  ix->slots[hole].handle = CS__NO_HANDLE;
  ix->n--;
  if (ix->cap > MIN_CAP && ix->n * 8 < ix->cap) resize(ix, ix->cap / 2);
  return true;
}
