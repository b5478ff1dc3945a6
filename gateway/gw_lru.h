/*
 * gw_lru.h - the intrusive hash table with a least-recently-used list that
 * the gateway's in-memory tables (gw_cache, gw_ratelimit, the small-document
 * cache) are built on. Internal to the gateway.
 *
 * Intrusive: the caller embeds a gw_lru_node in its own entry and owns the
 * entry's memory; the table only links nodes. A node carries its hash and
 * a pointer to its key bytes (which live in the entry, usually right after
 * the node), so the table can find, move and unlink entries without knowing
 * their type. GW_LRU_ENTRY turns a node back into its entry.
 *
 * Each node is in one hash chain (buckets[hash & mask]) and in one list
 * ordered from most (head) to least (tail) recently used. The caller picks
 * the hash function; equal hashes are fine, keys are compared in full.
 *
 * No locking inside the table: a table belongs to one shard or cache, and
 * the caller holds that shard's or cache's mutex around every gw_lru_* table
 * call. The struct fields are public so callers may read count and walk the
 * list (head -> next, tail -> prev) while holding that lock; only these
 * functions change them.
 *
 * Shard sets (gw_lru_shards, at the end) split a capacity over several such
 * tables, each beside the mutex its callers take, for the concurrent tables
 * (gw_cache, gw_ratelimit). The set only creates and destroys the mutexes,
 * and gw_lru_shards_count takes each one briefly; every other lock is taken
 * by the caller.
 */
#ifndef GW_LRU_H
#define GW_LRU_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Most buckets a table may have (the caller's tables are far smaller). */
#define GW_LRU_BUCKETS_MAX ((size_t)1 << 30)

typedef struct gw_lru_node {
  struct gw_lru_node *hnext;       /* hash chain */
  struct gw_lru_node *prev, *next; /* LRU list, most recent first */
  uint64_t hash;
  const char *key; /* klen bytes, owned by the entry; need not end in NUL */
  size_t klen;
} gw_lru_node;

typedef struct gw_lru {
  gw_lru_node **buckets; /* mask + 1 chains */
  size_t mask;
  size_t count;              /* nodes in the table */
  gw_lru_node *head, *tail;  /* most and least recently used */
} gw_lru;

/* The entry of type `type` whose member `member` is the node `node`. */
#define GW_LRU_ENTRY(node, type, member) \
  ((type *)(void *)((char *)(node) - offsetof(type, member)))

/* Make *t an empty table of at least min_buckets chains (rounded up to a
 * power of two). Returns 0, or CAIRN_EINVAL (t untouched) for a NULL t or
 * min_buckets outside 1 .. GW_LRU_BUCKETS_MAX. Free with gw_lru_destroy. */
int gw_lru_init(gw_lru *t, size_t min_buckets);

/* What frees a node's entry (for gw_lru_destroy and gw_lru_shards_destroy). */
typedef void gw_lru_free_fn(gw_lru_node *n);

/* Free the table's chains and leave it empty. With free_node, each node
 * still in the table is first handed to it (most recently used first, each
 * after it has been unlinked); with NULL the nodes are left to the caller.
 * NULL, or a zeroed table, is fine. Not concurrent with anything on t. */
void gw_lru_destroy(gw_lru *t, gw_lru_free_fn *free_node);

/* The node with this hash and these klen key bytes, or NULL. The pointer
 * stays valid until the node is removed; the order is not changed (see
 * gw_lru_touch). */
gw_lru_node *gw_lru_find(const gw_lru *t, uint64_t hash, const char *key, size_t klen);

/* Link node n (not in any table) into t as the most recently used, with
 * this hash and key. The key bytes must stay unchanged where they are until
 * n is removed; the caller makes sure no node with an equal key is in t
 * (gw_lru_find first). */
void gw_lru_insert(gw_lru *t, gw_lru_node *n, uint64_t hash, const char *key, size_t klen);

/* Make node n (in t) the most recently used. */
void gw_lru_touch(gw_lru *t, gw_lru_node *n);

/* Unlink node n (in t) from t's chain and list. Afterwards n's link fields are the
 * caller's again (for instance to chain removed nodes through n->next and
 * free them after releasing the lock); the caller frees n's entry. */
void gw_lru_remove(gw_lru *t, gw_lru_node *n);

/* The least recently used node, or NULL when t is empty. */
gw_lru_node *gw_lru_tail(const gw_lru *t);

/* ---- shard sets ---- */

typedef struct gw_lru_shard {
  pthread_mutex_t mu; /* the caller holds it around every call on lru */
  gw_lru lru;
  size_t cap;   /* the most nodes the caller keeps in lru (>= 1) */
  char pad[64]; /* keeps neighbouring shards' mutexes off one cache line */
} gw_lru_shard;

typedef struct gw_lru_shards {
  size_t n;          /* shards in v */
  gw_lru_shard *v;
} gw_lru_shards;

/* Make *ss a set of capacity / min_per_shard shards (at least 1, at most
 * max_shards) whose caps add up to capacity exactly (the first
 * capacity % n get one more), each with a table of a chain per node it may
 * hold and an initialised mutex. Returns 0, or CAIRN_EINVAL (ss untouched)
 * for a NULL ss or a zero capacity, min_per_shard or max_shards, or a
 * shard too large for one table. Free with gw_lru_shards_destroy. */
int gw_lru_shards_init(gw_lru_shards *ss, size_t capacity, size_t min_per_shard,
                       size_t max_shards);

/* The shard a hash belongs to (from its high half, so that the low bits
 * still spread nodes over that shard's chains). Valid until destroy; any
 * thread. */
gw_lru_shard *gw_lru_shards_pick(const gw_lru_shards *ss, uint64_t hash);

/* Nodes in all shards, taking each shard's mutex in turn (so not a
 * snapshot of one instant). 0 for NULL. Any thread, no lock held. */
size_t gw_lru_shards_count(gw_lru_shards *ss);

/* Destroy every shard's table (handing its nodes to free_node, as
 * gw_lru_destroy) and mutex, and leave *ss empty. NULL or a zeroed set is
 * fine. Not concurrent with anything on ss. */
void gw_lru_shards_destroy(gw_lru_shards *ss, gw_lru_free_fn *free_node);

#endif /* GW_LRU_H */
