/*
 * smallcache.c - the contents of small documents, in memory. A document's
 * bytes never change under its id (an overwrite makes a new document), so
 * an entry is never stale while its document exists; deletion removes it,
 * and every entry also expires after cache_ttl (which bounds staleness
 * when another gateway deleted it). Bounded by a byte budget; the least
 * recently used entries go first. One mutex: entries are copied out.
 */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "cmn_util.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_internal.h"
#include "gw_lru.h"

#define NBUCKETS 4096

typedef struct entry {
  gw_lru_node node; /* chain and LRU links, hash, key = id */
  char id[37];
  gw_small_doc doc;
  int64_t born_ms;
  int refreshing; /* one reader was sent to read it again early */
  size_t cost;
} entry;

struct gw_small_cache {
  pthread_mutex_t mu;
  uint64_t budget, used;
  gw_lru lru;
};

/* FNV-1a of an id; the table picks the chain from its low bits. */
static uint64_t hash_id(const char *id) {
  unsigned h = 2166136261u;
  for (; *id; id++) {
    h = (h ^ (unsigned char)*id) * 16777619u;
  }
  return h;
}

int gw_small_cache_new(uint64_t budget, gw_small_cache **out) {
  gw_small_cache *c = cmn_calloc(1, sizeof *c);
  int rc = gw_lru_init(&c->lru, NBUCKETS);
  if (rc < 0) {
    goto fail;
  }
  pthread_mutex_init(&c->mu, NULL);
  c->budget = budget;
  *out = c;
  return 0;
fail:
  free(c);
  return rc;
}

void gw_small_doc_clear(gw_small_doc *d) {
  free(d->data);
  free(d->name);
  free(d->content_type);
  memset(d, 0, sizeof *d);
}

static void copy_doc(gw_small_doc *dst, const gw_small_doc *src) {
  dst->data = cmn_malloc(src->len ? src->len : 1);
  memcpy(dst->data, src->data, src->len);
  dst->len = src->len;
  dst->name = cmn_strdup(src->name);
  dst->content_type = cmn_strdup(src->content_type);
  memcpy(dst->sha256, src->sha256, sizeof dst->sha256);
}

static void free_entry(gw_lru_node *n) {
  entry *e = GW_LRU_ENTRY(n, entry, node);
  gw_small_doc_clear(&e->doc);
  free(e);
}

/* Unlink `e` from its bucket and the LRU list and free it. */
static void drop(gw_small_cache *c, entry *e) {
  gw_lru_remove(&c->lru, &e->node);
  c->used -= e->cost;
  free_entry(&e->node);
}

static entry *find(gw_small_cache *c, const char *id) {
  gw_lru_node *n = gw_lru_find(&c->lru, hash_id(id), id, strlen(id));
  return n ? GW_LRU_ENTRY(n, entry, node) : NULL;
}

int gw_small_get(gw_small_cache *c, const char *id, int64_t ttl_ms, gw_small_doc *out) {
  int hit = 0;
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, id);
  int64_t age = e ? cmn_mono_ms() - e->born_ms : 0;
  if (e && ttl_ms > 0 && age > ttl_ms) {
    drop(c, e);
    e = NULL;
  } else if (e && ttl_ms > 0 && !e->refreshing && age >= ttl_ms - ttl_ms / 4) {
    e->refreshing = 1; /* this reader refreshes it; the others keep hitting */
    e = NULL;
  }
  if (e) {
    gw_lru_touch(&c->lru, &e->node);
    copy_doc(out, &e->doc);
    hit = 1;
  }
  pthread_mutex_unlock(&c->mu);
  return hit;
}

void gw_small_put(gw_small_cache *c, const char *id, const gw_small_doc *doc) {
  size_t cost = doc->len + sizeof(entry) + strlen(doc->name) + strlen(doc->content_type) + 2;
  if (doc->len > GW_SMALL_MAX || cost > c->budget || strlen(id) >= sizeof(((entry *)0)->id)) {
    return;
  }
  entry *e = cmn_calloc(1, sizeof *e);
  memcpy(e->id, id, strlen(id) + 1);
  copy_doc(&e->doc, doc);
  e->cost = cost;
  e->born_ms = cmn_mono_ms();
  pthread_mutex_lock(&c->mu);
  entry *old = find(c, id);
  if (old) {
    drop(c, old);
  }
  while (c->used + cost > c->budget && gw_lru_tail(&c->lru)) {
    drop(c, GW_LRU_ENTRY(gw_lru_tail(&c->lru), entry, node));
  }
  gw_lru_insert(&c->lru, &e->node, hash_id(e->id), e->id, strlen(e->id));
  c->used += cost;
  pthread_mutex_unlock(&c->mu);
}

void gw_small_remove(gw_small_cache *c, const char *id) {
  pthread_mutex_lock(&c->mu);
  entry *e = find(c, id);
  if (e) {
    drop(c, e);
  }
  pthread_mutex_unlock(&c->mu);
}

void gw_small_cache_free(gw_small_cache *c) {
  if (c == NULL) {
    return;
  }
  gw_lru_destroy(&c->lru, free_entry);
  pthread_mutex_destroy(&c->mu);
  free(c);
}
