/*
 * lru.c - the intrusive hash table with an LRU list under the gateway's
 * caches and rate limiter, and the shard sets that split one capacity over
 * several such tables (see gw_lru.h). Every table operation is pointer work
 * on one chain and the list, O(chain length); the caller holds the lock.
 */
#include "gw_lru.h"

#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_util.h"

int gw_lru_init(gw_lru *t, size_t min_buckets) {
  if (t == NULL || min_buckets < 1 || min_buckets > GW_LRU_BUCKETS_MAX) {
    return CAIRN_EINVAL;
  }
  size_t n = 1;
  while (n < min_buckets) {
    n <<= 1;
  }
  memset(t, 0, sizeof *t);
  t->buckets = cmn_calloc(n, sizeof *t->buckets);
  t->mask = n - 1;
  return 0;
}


gw_lru_node *gw_lru_find(const gw_lru *t, uint64_t hash, const char *key, size_t klen) {
  for (gw_lru_node *n = t->buckets[hash & t->mask]; n; n = n->hnext) {
    if (n->hash == hash && n->klen == klen && memcmp(n->key, key, klen) == 0) {
      return n;
    }
  }
  return NULL;
}

/* ---- the LRU list ---- */

static void list_unlink(gw_lru *t, gw_lru_node *n) {
  if (n->prev) {
    n->prev->next = n->next;
  } else {
    t->head = n->next;
  }
  if (n->next) {
    n->next->prev = n->prev;
  } else {
    t->tail = n->prev;
  }
  n->prev = n->next = NULL;
}

static void list_push_front(gw_lru *t, gw_lru_node *n) {
  n->prev = NULL;
  n->next = t->head;
  if (t->head) {
    t->head->prev = n;
  } else {
    t->tail = n;
  }
  t->head = n;
}

/* New nodes go to the front of their chain as well as of the list: the
 * most recently stored keys are the likeliest to be asked for next. */
void gw_lru_insert(gw_lru *t, gw_lru_node *n, uint64_t hash, const char *key, size_t klen) {
  n->hash = hash;
  n->key = key;
  n->klen = klen;
  n->hnext = t->buckets[hash & t->mask];
  t->buckets[hash & t->mask] = n;
  list_push_front(t, n);
  t->count++;
}

void gw_lru_touch(gw_lru *t, gw_lru_node *n) {
  list_unlink(t, n);
  list_push_front(t, n);
}

/* The chain is singly linked, so removal walks it from the bucket to find
 * the link that points at n; chains are short (about one node a bucket).
 * A node missing from its chain (a caller bug) is not written through. */
void gw_lru_remove(gw_lru *t, gw_lru_node *n) {
  gw_lru_node **pp = &t->buckets[n->hash & t->mask];
  while (*pp && *pp != n) {
    pp = &(*pp)->hnext;
  }
  if (*pp) {
    *pp = n->hnext;
  }
  n->hnext = NULL;
  list_unlink(t, n);
  t->count--;
}

gw_lru_node *gw_lru_tail(const gw_lru *t) { return t->tail; }

/* Nodes are handed over from the head, each unlinked first, so free_node
 * may free the node's memory (the next pointer is read before the call). */
void gw_lru_destroy(gw_lru *t, gw_lru_free_fn *free_node) {
  if (t == NULL) {
    return;
  }
  for (gw_lru_node *n = t->head, *next; free_node && n; n = next) {
    next = n->next;
    n->prev = n->next = n->hnext = NULL;
    free_node(n);
  }
  free(t->buckets);
  memset(t, 0, sizeof *t);
}

/* ---- shard sets ---- */

/*
 * A shard holds at least min_per_shard nodes, so a small set has few
 * shards and evicts in nearly global LRU order. The caps are an exact
 * split, so the total never exceeds capacity. Shards are set up one by
 * one; on failure those done so far are torn down again.
 */
int gw_lru_shards_init(gw_lru_shards *ss, size_t capacity, size_t min_per_shard,
                       size_t max_shards) {
  if (ss == NULL || capacity < 1 || min_per_shard < 1 || max_shards < 1) {
    return CAIRN_EINVAL;
  }
  gw_lru_shards tmp = {0};
  size_t n = CMN_MAX((size_t)1, CMN_MIN(capacity / min_per_shard, max_shards));
  tmp.v = cmn_calloc(n, sizeof *tmp.v);
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    gw_lru_shard *s = &tmp.v[i];
    s->cap = capacity / n + (i < capacity % n ? 1 : 0);
    rc = gw_lru_init(&s->lru, s->cap);
    if (rc < 0) {
      goto fail;
    }
    pthread_mutex_init(&s->mu, NULL);
    tmp.n = i + 1; /* what destroy tears down */
  }
  *ss = tmp;
  return 0;
fail:
  gw_lru_shards_destroy(&tmp, NULL);
  return rc;
}

gw_lru_shard *gw_lru_shards_pick(const gw_lru_shards *ss, uint64_t hash) {
  return &ss->v[(hash >> 32) % ss->n];
}

size_t gw_lru_shards_count(gw_lru_shards *ss) {
  size_t total = 0;
  for (size_t i = 0; ss && i < ss->n; i++) {
    pthread_mutex_lock(&ss->v[i].mu);
    total += ss->v[i].lru.count;
    pthread_mutex_unlock(&ss->v[i].mu);
  }
  return total;
}

void gw_lru_shards_destroy(gw_lru_shards *ss, gw_lru_free_fn *free_node) {
  if (ss == NULL) {
    return;
  }
  for (size_t i = 0; i < ss->n; i++) {
    gw_lru_destroy(&ss->v[i].lru, free_node);
    pthread_mutex_destroy(&ss->v[i].mu);
  }
  free(ss->v);
  memset(ss, 0, sizeof *ss);
}
