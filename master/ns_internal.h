/*
 * ns_internal.h - data structures shared by the namespace's source files
 * (namespace.c, ns_path.c, ns_index.c, ns_trash.c, ns_checkpoint.c).
 * Nothing outside them includes this header; the contract is mst_ns.h.
 *
 * Memory layout (the goal is <= 200 bytes per file with 40-byte names, all
 * included):
 *   - one allocation per node: the fixed fields below plus the name inline
 *     (flexible array member, NUL-terminated, capacity rounded up to 8 so a
 *     rename to a name of similar length stays in place). A 40-byte name
 *     gives a 109-byte request, a 128-byte malloc chunk;
 *   - the children of a directory form an AVL tree threaded through the
 *     child nodes themselves (left/right/height), so a directory owns no
 *     extra block, lookups are O(log n) and listing from a name is
 *     O(log n + page) however large the directory;
 *   - a file's chunk list: the first handle inline, a separate power-of-two
 *     array only from the second chunk on;
 *   - one global open-addressing table of node pointers keyed by id
 *     (8 bytes a slot, load kept between 3/16 and 3/4: ~17 bytes a node
 *     at 1M nodes).
 * Trash bookkeeping (deletion time, origin path) lives in a second id table
 * of ns_trash_rec, so live nodes pay nothing for it.
 */
#ifndef MST_NS_INTERNAL_H
#define MST_NS_INTERNAL_H

#include "mst_ns.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NS_NF_TRASH_ENTRY 1u /* node is a child of /.trash; has an ns_trash_rec */
#define NS_TREE_MAX_HEIGHT 64 /* AVL height bound far above 1.44*log2(2^32) */

typedef struct mst_node mst_node;
struct mst_node {
  uint64_t id; /* first member: the id tables read the key here */
  uint64_t size;
  int64_t mtime_ms;
  mst_node *parent; /* NULL for the root */
  mst_node *left;   /* siblings: the parent's AVL tree of children */
  mst_node *right;
  union {
    uint64_t one;    /* file with 1 chunk */
    uint64_t *many;  /* file with >= 2 chunks: capacity ns_chunk_cap(count) */
    mst_node *root;  /* directory: root of the children's AVL tree */
  } u;
  uint32_t count;    /* file: chunks; directory: children */
  uint16_t name_len;
  uint16_t name_cap; /* bytes available in name[] (including the NUL) */
  uint8_t type;      /* mst_ns_type */
  uint8_t goal;
  uint8_t height;    /* AVL height in the parent's tree, 1 for a leaf */
  uint8_t flags;     /* NS_NF_* */
  char name[];
};

typedef struct ns_trash_rec {
  uint64_t id; /* first member, as in mst_node */
  mst_node *node;
  int64_t deleted_ms;
  size_t origin_len;
  char origin[]; /* NUL-terminated path the entry was deleted from */
} ns_trash_rec;

/* Open-addressing hash set of pointers to structs whose first member is
 * their u64 id; linear probing, backward-shift deletion (no tombstones). */
typedef struct ns_idtab {
  void **slots;
  size_t cap; /* power of two */
  size_t count;
} ns_idtab;

struct mst_ns {
  mst_node *root;
  mst_node *trash;
  ns_idtab nodes;      /* every node, by id */
  ns_idtab trash_recs; /* ns_trash_rec, by entry id */
  uint64_t files;
  uint64_t dirs;       /* without the root and /.trash */
};

/* A validated path (see mst_ns__path_parse). */
typedef struct ns_path {
  const char *s;
  size_t len;        /* without the trailing '/', if any (1 for the root) */
  size_t ncomp;      /* number of components; 0 for the root */
  size_t parent_len; /* length of the parent's path ("/" = 1); 0 for the root */
  const char *last;  /* last component */
  size_t last_len;
  bool slash;        /* the path ended with '/' */
  bool in_trash;     /* the first component is MST_NS_TRASH_NAME */
} ns_path;

/* ---- ns_path.c ---- */
int mst_ns__path_parse(const char *s, size_t len, ns_path *out);
/* Next component of `p` from *pos (start at 1); false at the end. */
bool mst_ns__path_next(const ns_path *p, size_t *pos, const char **comp, size_t *comp_len);
/* 0 if name is a valid component, else the path error. */
int mst_ns__name_check(const char *name, size_t len);
/* Writes the trash entry name for (ms, id, name) into buf (at least
 * MST_NS_NAME_MAX + 1 bytes, NUL-terminated); returns its length. */
size_t mst_ns__trash_name(char *buf, int64_t ms, uint64_t id, const char *name, size_t len);

/* ---- ns_index.c: children trees ---- */
int mst_ns__name_cmp(const char *a, size_t alen, const char *b, size_t blen);
mst_node *mst_ns__tree_find(mst_node *root, const char *name, size_t len);
/* Inserts n (not in the tree; no equal name) / removes n (in the tree). */
void mst_ns__tree_insert(mst_node **root, mst_node *n);
void mst_ns__tree_remove(mst_node **root, mst_node *n);
/* Smallest node with a name greater than (name, len); NULL if none. */
mst_node *mst_ns__tree_after(mst_node *root, const char *name, size_t len);

/* In-order cursor: O(log n) to seek, amortised O(1) per step. */
typedef struct ns_cursor {
  mst_node *stack[NS_TREE_MAX_HEIGHT];
  int depth;
} ns_cursor;
void mst_ns__cursor_seek(ns_cursor *c, mst_node *root, const char *after, size_t after_len);
mst_node *mst_ns__cursor_next(ns_cursor *c);

/* ---- ns_index.c: id tables ---- */
void mst_ns__idtab_init(ns_idtab *t);
void mst_ns__idtab_free(ns_idtab *t);
void *mst_ns__idtab_get(const ns_idtab *t, uint64_t id);
void mst_ns__idtab_put(ns_idtab *t, void *item);     /* id not present */
void mst_ns__idtab_replace(ns_idtab *t, void *item); /* id present: swap pointer */
void mst_ns__idtab_del(ns_idtab *t, uint64_t id);    /* id present */

/* ---- namespace.c: helpers used by the other files ---- */
mst_node *mst_ns__node_new(mst_ns_type type, const char *name, size_t len);
/* Gives detached node n a new name, reallocating it (and fixing every pointer
 * to it) when the name does not fit; returns the node's address. */
mst_node *mst_ns__node_set_name(mst_ns *ns, mst_node *n, const char *name, size_t len);
void mst_ns__attach(mst_node *parent, mst_node *n, int64_t now_ms);
void mst_ns__detach(mst_node *n, int64_t now_ms);
/* Registers a freshly attached node in the id table and counts. */
void mst_ns__register(mst_ns *ns, mst_node *n);
/* The node for a validated path; CAIRN_ENOENT / CAIRN_ENOTDIR. */
int mst_ns__resolve(const mst_ns *ns, const ns_path *p, mst_node **out);
/* The directory that is to hold p's last component. */
int mst_ns__resolve_parent(const mst_ns *ns, const ns_path *p, mst_node **out);
void mst_ns__fill_info(const mst_ns *ns, const mst_node *n, mst_ns_info *out);
int mst_ns__check_ms(int64_t ms);
const uint64_t *mst_ns__chunk_array(const mst_node *n);

/* ---- ns_trash.c ---- */
/* Moves n (attached, live) into /.trash as an entry deleted at now_ms from
 * origin; returns the node's (possibly new) address. */
mst_node *mst_ns__trash_node(mst_ns *ns, mst_node *n, const char *origin, size_t origin_len,
                             int64_t now_ms);
ns_trash_rec *mst_ns__trash_rec_new(mst_node *n, int64_t ms, const char *origin, size_t len);
/* Frees n (detached, or the root) and everything below it, appending the
 * files' chunk handles to `handles` (may be NULL). With `unregister` the
 * nodes also leave the id table and the counts (a purge); without, the
 * whole namespace is going away. Returns the number of nodes freed. */
uint64_t mst_ns__destroy_subtree(mst_ns *ns, mst_node *n, mst_ns_handles *handles,
                                 bool unregister);

#endif /* MST_NS_INTERNAL_H */
