/*
 * ns_index.c - the namespace's two indexes: each directory's AVL tree of
 * children (by name) and the global id tables.
 *
 * The AVL tree is intrusive: its links live in the child nodes, so a
 * directory with a million entries costs nothing beyond its entries, inserts
 * and removals are O(log n) (a sorted array would make filling a large
 * directory quadratic), and an in-order cursor lists from any name in
 * O(log n + page). Recursion depth is the tree height, below 64.
 *
 * The id tables hash pointers to structs whose first member is the u64 id
 * (mst_node, ns_trash_rec), so a slot is one pointer: 8 bytes, at a load
 * kept between 3/16 and 3/4.
 */
#include "ns_internal.h"

#include <stdlib.h>
#include <string.h>

/* Byte-wise order, a proper prefix first (like strcmp, for names that may in
 * principle hold any byte but NUL and '/'). */
int mst_ns__name_cmp(const char *a, size_t alen, const char *b, size_t blen) {
  int c = memcmp(a, b, alen < blen ? alen : blen);
  if (c != 0) return c;
  return alen < blen ? -1 : alen > blen;
}

static int node_cmp(const char *name, size_t len, const mst_node *n) {
  return mst_ns__name_cmp(name, len, n->name, n->name_len);
}

mst_node *mst_ns__tree_find(mst_node *root, const char *name, size_t len) {
  mst_node *t = root;
  while (t) {
    int c = node_cmp(name, len, t);
    if (c == 0) return t;
    t = c < 0 ? t->left : t->right;
  }
  return NULL;
}

static int height(const mst_node *n) { return n ? n->height : 0; }

static void fix_height(mst_node *n) {
  int l = height(n->left), r = height(n->right);
  n->height = (uint8_t)(1 + (l > r ? l : r));
}

static mst_node *rotate_right(mst_node *y) {
  mst_node *x = y->left;
  y->left = x->right;
  x->right = y;
  fix_height(y);
  fix_height(x);
  return x;
}

static mst_node *rotate_left(mst_node *x) {
  mst_node *y = x->right;
  x->right = y->left;
  y->left = x;
  fix_height(x);
  fix_height(y);
  return y;
}

/* Restores the AVL property at n after one of its subtrees changed height by
 * at most one; returns the subtree's new root. */
static mst_node *rebalance(mst_node *n) {
  fix_height(n);
  int bf = height(n->left) - height(n->right);
  if (bf > 1) {
    if (height(n->left->left) < height(n->left->right)) n->left = rotate_left(n->left);
    return rotate_right(n);
  }
  if (bf < -1) {
    if (height(n->right->right) < height(n->right->left)) n->right = rotate_right(n->right);
    return rotate_left(n);
  }
  return n;
}

static mst_node *insert_at(mst_node *t, mst_node *n) {
  if (!t) return n;
  if (node_cmp(n->name, n->name_len, t) < 0)
    t->left = insert_at(t->left, n);
  else
    t->right = insert_at(t->right, n);
  return rebalance(t);
}

void mst_ns__tree_insert(mst_node **root, mst_node *n) {
  n->left = n->right = NULL;
  n->height = 1;
  *root = insert_at(*root, n);
}

/* Unlinks the smallest node of t into *min; returns t's new root. */
static mst_node *remove_min(mst_node *t, mst_node **min) {
  if (!t->left) {
    *min = t;
    return t->right;
  }
  t->left = remove_min(t->left, min);
  return rebalance(t);
}

static mst_node *remove_at(mst_node *t, const mst_node *n) {
  if (!t) return NULL;
  if (t != n) {
    if (node_cmp(n->name, n->name_len, t) < 0)
      t->left = remove_at(t->left, n);
    else
      t->right = remove_at(t->right, n);
    return rebalance(t);
  }
  if (!t->left) return t->right;
  if (!t->right) return t->left;
  mst_node *m;
  mst_node *right = remove_min(t->right, &m);
  m->left = t->left;
  m->right = right;
  return rebalance(m);
}

void mst_ns__tree_remove(mst_node **root, mst_node *n) {
  *root = remove_at(*root, n);
  n->left = n->right = NULL;
  n->height = 1;
}

mst_node *mst_ns__tree_after(mst_node *root, const char *name, size_t len) {
  mst_node *best = NULL;
  for (mst_node *t = root; t;) {
    if (node_cmp(name, len, t) < 0) {
      best = t;
      t = t->left;
    } else {
      t = t->right;
    }
  }
  return best;
}

/* The stack holds the nodes still to be visited whose left side is done:
 * seeking pushes every node greater than `after` on the way down. */
void mst_ns__cursor_seek(ns_cursor *c, mst_node *root, const char *after, size_t after_len) {
  c->depth = 0;
  for (mst_node *t = root; t;) {
    if (node_cmp(after, after_len, t) < 0) {
      c->stack[c->depth++] = t;
      t = t->left;
    } else {
      t = t->right;
    }
  }
}

mst_node *mst_ns__cursor_next(ns_cursor *c) {
  if (c->depth == 0) return NULL;
  mst_node *n = c->stack[--c->depth];
  for (mst_node *t = n->right; t; t = t->left) c->stack[c->depth++] = t;
  return n;
}

/* ---- id tables ---------------------------------------------------------- */

#define IDTAB_MIN_CAP 16

static uint64_t key_of(const void *item) { return *(const uint64_t *)item; }

/* splitmix64's finaliser: ids are sequential, the slots must not be. */
static size_t slot_of(uint64_t id, size_t cap) {
  id ^= id >> 30;
  id *= 0xbf58476d1ce4e5b9ULL;
  id ^= id >> 27;
  id *= 0x94d049bb133111ebULL;
  id ^= id >> 31;
  return (size_t)id & (cap - 1);
}

void mst_ns__idtab_init(ns_idtab *t) {
  t->cap = IDTAB_MIN_CAP;
  t->count = 0;
  t->slots = cmn_calloc(t->cap, sizeof *t->slots);
}

void mst_ns__idtab_free(ns_idtab *t) {
  free(t->slots);
  t->slots = NULL;
  t->cap = t->count = 0;
}

static void resize(ns_idtab *t, size_t cap) {
  void **old = t->slots;
  size_t old_cap = t->cap;
  t->slots = cmn_calloc(cap, sizeof *t->slots);
  t->cap = cap;
  for (size_t i = 0; i < old_cap; i++) {
    if (!old[i]) continue;
    size_t j = slot_of(key_of(old[i]), cap);
    while (t->slots[j]) j = (j + 1) & (cap - 1);
    t->slots[j] = old[i];
  }
  free(old);
}

static size_t find_slot(const ns_idtab *t, uint64_t id) {
  size_t i = slot_of(id, t->cap);
  while (t->slots[i] && key_of(t->slots[i]) != id) i = (i + 1) & (t->cap - 1);
  return i;
}

void *mst_ns__idtab_get(const ns_idtab *t, uint64_t id) { return t->slots[find_slot(t, id)]; }

void mst_ns__idtab_put(ns_idtab *t, void *item) {
  if ((t->count + 1) * 4 > t->cap * 3) resize(t, t->cap * 2);
  t->slots[find_slot(t, key_of(item))] = item;
  t->count++;
}

void mst_ns__idtab_replace(ns_idtab *t, void *item) {
  t->slots[find_slot(t, key_of(item))] = item;
}

/*
 * Backward-shift deletion: after emptying slot i, later entries of the same
 * probe run move back into the hole when their home slot does not lie
 * (cyclically) in (i, j], so every lookup still finds them without
 * tombstones. The table halves when it falls below 3/16 full.
 */
void mst_ns__idtab_del(ns_idtab *t, uint64_t id) {
  size_t mask = t->cap - 1;
  size_t i = find_slot(t, id);
  if (!t->slots[i]) return;
  for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
    size_t home = slot_of(key_of(t->slots[j]), t->cap);
    bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    t->slots[i] = t->slots[j];
    i = j;
  }
  t->slots[i] = NULL;
  t->count--;
  if (t->cap > IDTAB_MIN_CAP && t->count * 16 < t->cap * 3) resize(t, t->cap / 2);
}
