/*
 * namespace.c - the master's namespace: nodes, path resolution, and the
 * operations on directories and files (mkdir, create, stat, list, rename,
 * delete, goals, sizes, chunk lists).
 *
 * The trash (undelete, purge, expiry) is in ns_trash.c, checkpoints and
 * digests in ns_checkpoint.c, the indexes in ns_index.c, path rules in
 * ns_path.c. Every mutation validates everything it needs before it changes
 * anything, so a failed call leaves the namespace as it was; allocation
 * failure aborts (cmn_malloc), so nothing can fail half-way.
 */
#include "ns_internal.h"

#include "cairn_error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

int mst_ns__check_ms(int64_t ms) { return ms >= 0 && ms <= MST_NS_MAX_MS ? 0 : CAIRN_EINVAL; }

static bool goal_ok(uint32_t goal) { return goal >= MST_NS_GOAL_MIN && goal <= MST_NS_GOAL_MAX; }

/* ---- nodes -------------------------------------------------------------- */

/* Name bytes to reserve: the name, its NUL, rounded up to 8. */
static uint16_t name_cap_for(size_t len) { return (uint16_t)((len + 1 + 7) & ~(size_t)7); }

/* A zeroed node holding a copy of the name; the caller sets the rest. */
mst_node *mst_ns__node_new(mst_ns_type type, const char *name, size_t len) {
  uint16_t cap = name_cap_for(len);
  size_t size = offsetof(mst_node, name) + cap;
  if (size < sizeof(mst_node)) size = sizeof(mst_node);
  mst_node *n = cmn_calloc(1, size);
  n->type = (uint8_t)type;
  n->goal = MST_NS_DEFAULT_GOAL;
  n->height = 1;
  n->name_len = (uint16_t)len;
  n->name_cap = cap;
  memcpy(n->name, name, len);
  n->name[len] = '\0';
  return n;
}

/*
 * Renames a node that is not in any child tree. The name lives inside the
 * node, so a longer name than the node has room for means a new allocation;
 * then every pointer to the node moves with it: the id table slot, the trash
 * record, and the parent pointer of each child (O(children), the one cost of
 * keeping names inline).
 */
mst_node *mst_ns__node_set_name(mst_ns *ns, mst_node *n, const char *name, size_t len) {
  if (len + 1 <= n->name_cap) {
    memmove(n->name, name, len);
    n->name[len] = '\0';
    n->name_len = (uint16_t)len;
    return n;
  }
  mst_node *m = mst_ns__node_new((mst_ns_type)n->type, name, len);
  uint16_t cap = m->name_cap;
  memcpy(m, n, offsetof(mst_node, name));
  m->name_len = (uint16_t)len;
  m->name_cap = cap;
  mst_ns__idtab_replace(&ns->nodes, m);
  if (m->flags & NS_NF_TRASH_ENTRY) {
    ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, m->id);
    rec->node = m;
  }
  if (m->type == MST_NS_DIR) {
    ns_cursor c;
    mst_ns__cursor_seek(&c, m->u.root, "", 0);
    for (mst_node *ch; (ch = mst_ns__cursor_next(&c));) ch->parent = m;
  }
  free(n);
  return m;
}

void mst_ns__attach(mst_node *parent, mst_node *n, int64_t now_ms) {
  mst_ns__tree_insert(&parent->u.root, n);
  n->parent = parent;
  parent->count++;
  parent->mtime_ms = now_ms;
}

void mst_ns__detach(mst_node *n, int64_t now_ms) {
  mst_node *p = n->parent;
  mst_ns__tree_remove(&p->u.root, n);
  p->count--;
  p->mtime_ms = now_ms;
  n->parent = NULL;
}

void mst_ns__register(mst_ns *ns, mst_node *n) {
  mst_ns__idtab_put(&ns->nodes, n);
  if (n->type == MST_NS_DIR)
    ns->dirs++;
  else
    ns->files++;
}

/* Detaches n, renames it and attaches it under dir; returns its address. */
static mst_node *move_node(mst_ns *ns, mst_node *n, mst_node *dir, const char *name, size_t len,
                           int64_t now_ms) {
  mst_ns__detach(n, now_ms);
  n = mst_ns__node_set_name(ns, n, name, len);
  mst_ns__attach(dir, n, now_ms);
  return n;
}

const uint64_t *mst_ns__chunk_array(const mst_node *n) {
  return n->count <= 1 ? &n->u.one : n->u.many;
}

/* ---- lifetime ----------------------------------------------------------- */

int mst_ns_new(mst_ns **out) {
  mst_ns *ns = cmn_calloc(1, sizeof *ns);
  mst_ns__idtab_init(&ns->nodes);
  mst_ns__idtab_init(&ns->trash_recs);
  ns->root = mst_ns__node_new(MST_NS_DIR, "", 0);
  ns->root->id = MST_NS_ROOT_ID;
  mst_ns__idtab_put(&ns->nodes, ns->root);
  ns->trash = mst_ns__node_new(MST_NS_DIR, MST_NS_TRASH_NAME, sizeof MST_NS_TRASH_NAME - 1);
  ns->trash->id = MST_NS_TRASH_ID;
  mst_ns__attach(ns->root, ns->trash, 0);
  mst_ns__idtab_put(&ns->nodes, ns->trash);
  *out = ns;
  return 0;
}

void mst_ns_free(mst_ns *ns) {
  if (!ns) return;
  for (size_t i = 0; i < ns->trash_recs.cap; i++) free(ns->trash_recs.slots[i]);
  mst_ns__destroy_subtree(ns, ns->root, NULL, false);
  mst_ns__idtab_free(&ns->nodes);
  mst_ns__idtab_free(&ns->trash_recs);
  free(ns);
}

/* ---- resolution --------------------------------------------------------- */

int mst_ns__resolve(const mst_ns *ns, const ns_path *p, mst_node **out) {
  mst_node *cur = ns->root;
  size_t pos = 1, clen;
  const char *comp;
  while (mst_ns__path_next(p, &pos, &comp, &clen)) {
    if (cur->type != MST_NS_DIR) return CAIRN_ENOTDIR;
    cur = mst_ns__tree_find(cur->u.root, comp, clen);
    if (!cur) return CAIRN_ENOENT;
  }
  if (p->slash && cur->type != MST_NS_DIR) return CAIRN_ENOTDIR;
  *out = cur;
  return 0;
}

int mst_ns__resolve_parent(const mst_ns *ns, const ns_path *p, mst_node **out) {
  if (p->ncomp == 0) return CAIRN_EINVAL;
  mst_node *cur = ns->root;
  size_t pos = 1, clen;
  const char *comp;
  for (size_t i = 0; i + 1 < p->ncomp; i++) {
    mst_ns__path_next(p, &pos, &comp, &clen);
    if (cur->type != MST_NS_DIR) return CAIRN_ENOTDIR;
    cur = mst_ns__tree_find(cur->u.root, comp, clen);
    if (!cur) return CAIRN_ENOENT;
  }
  if (cur->type != MST_NS_DIR) return CAIRN_ENOTDIR;
  *out = cur;
  return 0;
}

/* Walks p as far as it exists: *deepest is the last existing node, *found
 * how many components exist, *pos where the first missing one starts.
 * CAIRN_ENOTDIR when an existing file would have to be descended into. */
static int walk_prefix(const mst_ns *ns, const ns_path *p, mst_node **deepest, size_t *found,
                       size_t *pos) {
  mst_node *cur = ns->root;
  size_t at = 1, clen, n = 0;
  const char *comp;
  for (;;) {
    size_t before = at;
    if (!mst_ns__path_next(p, &at, &comp, &clen)) break;
    if (cur->type != MST_NS_DIR) return CAIRN_ENOTDIR;
    mst_node *child = mst_ns__tree_find(cur->u.root, comp, clen);
    if (!child) {
      at = before;
      break;
    }
    cur = child;
    n++;
  }
  *deepest = cur;
  *found = n;
  *pos = at;
  return 0;
}

/* Ids first..first+n-1 must be allocatable and unused. */
static int check_ids(const mst_ns *ns, uint64_t first, size_t n) {
  if (n == 0) return 0;
  if (first < MST_NS_FIRST_ID || first > UINT64_MAX - (n - 1)) return CAIRN_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (mst_ns__idtab_get(&ns->nodes, first + i)) return CAIRN_EINVAL;
  return 0;
}

/* Creates p's components from `pos` on below `dir`: directories, and a node
 * of `last_type` for the last one. Ids are consecutive from `id`; goals are
 * inherited from the parent unless `file_goal` is given for a file. */
static mst_node *create_chain(mst_ns *ns, const ns_path *p, size_t pos, mst_node *dir,
                              mst_ns_type last_type, uint32_t file_goal, uint64_t id,
                              int64_t now_ms) {
  const char *comp;
  size_t clen;
  mst_node *cur = dir;
  while (mst_ns__path_next(p, &pos, &comp, &clen)) {
    mst_ns_type t = pos > p->len ? last_type : MST_NS_DIR;
    mst_node *n = mst_ns__node_new(t, comp, clen);
    n->id = id++;
    n->mtime_ms = now_ms;
    n->goal = (t == MST_NS_FILE && file_goal) ? (uint8_t)file_goal : cur->goal;
    mst_ns__attach(cur, n, now_ms);
    mst_ns__register(ns, n);
    cur = n;
  }
  return cur;
}

/* ---- info --------------------------------------------------------------- */

/* Whether n is a trash entry or below one, and that entry's deletion time. */
static bool trash_state(const mst_ns *ns, const mst_node *n, int64_t *ms) {
  for (const mst_node *m = n; m && m != ns->trash; m = m->parent) {
    if (m->parent == ns->trash) {
      const ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, m->id);
      *ms = rec->deleted_ms;
      return true;
    }
  }
  *ms = 0;
  return false;
}

static void fill(const mst_node *n, bool trashed, int64_t trashed_ms, mst_ns_info *o) {
  memset(o, 0, sizeof *o);
  o->id = n->id;
  o->parent_id = n->parent ? n->parent->id : 0;
  o->type = (mst_ns_type)n->type;
  o->name = n->name;
  o->name_len = n->name_len;
  o->mtime_ms = n->mtime_ms;
  o->goal = n->goal;
  if (n->type == MST_NS_FILE) {
    o->size = n->size;
    o->chunk_count = n->count;
  } else {
    o->entries = n->count;
  }
  o->trashed = trashed;
  o->trashed_ms = trashed_ms;
}

void mst_ns__fill_info(const mst_ns *ns, const mst_node *n, mst_ns_info *out) {
  int64_t ms;
  bool trashed = trash_state(ns, n, &ms);
  fill(n, trashed, ms, out);
}

int mst_ns_path(const mst_ns *ns, uint64_t id, cmn_buf *out) {
  const mst_node *n = mst_ns__idtab_get(&ns->nodes, id);
  if (!n) return CAIRN_ENOENT;
  if (!n->parent) {
    cmn_buf_append(out, "/", 1);
    return 0;
  }
  /* Measure, then fill from the end, so there is one pass and one reserve. */
  size_t total = 0;
  for (const mst_node *m = n; m->parent; m = m->parent) total += 1 + m->name_len;
  cmn_buf_reserve(out, total);
  char *end = out->data + out->len + total;
  for (const mst_node *m = n; m->parent; m = m->parent) {
    end -= m->name_len;
    memcpy(end, m->name, m->name_len);
    *--end = '/';
  }
  out->len += total;
  out->data[out->len] = '\0';
  return 0;
}

/* ---- reads -------------------------------------------------------------- */

int mst_ns_stat(const mst_ns *ns, const char *path, size_t len, mst_ns_info *out) {
  ns_path p;
  mst_node *n = NULL;
  int rc = mst_ns__path_parse(path, len, &p);
  if (rc == 0) rc = mst_ns__resolve(ns, &p, &n);
  if (rc < 0) return rc;
  mst_ns__fill_info(ns, n, out);
  return 0;
}

int mst_ns_stat_id(const mst_ns *ns, uint64_t id, mst_ns_info *out) {
  const mst_node *n = mst_ns__idtab_get(&ns->nodes, id);
  if (!n) return CAIRN_ENOENT;
  mst_ns__fill_info(ns, n, out);
  return 0;
}

/*
 * One page of a directory from the first name after `start_after`. The
 * cursor makes it O(log n + limit) whatever the directory's size; /.trash is
 * skipped when listing the root. *more is found by looking one entry ahead.
 */
int mst_ns_list(const mst_ns *ns, const char *path, size_t len, const char *start_after,
                size_t start_after_len, mst_ns_info *entries, size_t limit, bool *more) {
  ns_path p;
  mst_node *dir = NULL;
  if (limit == 0 || limit > INT_MAX || !entries) return CAIRN_EINVAL;
  if (!start_after) start_after_len = 0;
  int rc = mst_ns__path_parse(path, len, &p);
  if (rc == 0) rc = mst_ns__resolve(ns, &p, &dir);
  if (rc < 0) return rc;
  if (dir->type != MST_NS_DIR) return CAIRN_ENOTDIR;
  int64_t dir_ms;
  bool dir_trashed = trash_state(ns, dir, &dir_ms);
  ns_cursor c;
  mst_ns__cursor_seek(&c, dir->u.root, start_after_len ? start_after : "", start_after_len);
  size_t n = 0;
  mst_node *ch;
  while ((ch = mst_ns__cursor_next(&c))) {
    if (ch == ns->trash) continue;
    if (n == limit) break;
    if (dir == ns->trash) {
      const ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, ch->id);
      fill(ch, true, rec->deleted_ms, &entries[n++]);
    } else {
      fill(ch, dir_trashed, dir_ms, &entries[n++]);
    }
  }
  if (more) *more = ch != NULL;
  return (int)n;
}

void mst_ns_get_counts(const mst_ns *ns, mst_ns_counts *out) {
  out->files = ns->files;
  out->dirs = ns->dirs;
  out->total = ns->files + ns->dirs;
  out->trash_entries = ns->trash->count;
}

/* ---- namespace mutations ------------------------------------------------ */

int mst_ns_mkdir(mst_ns *ns, const char *path, size_t len, bool parents, uint64_t first_id,
                 int64_t now_ms, mst_ns_info *out) {
  ns_path p;
  mst_node *deep = NULL;
  size_t found, pos;
  int rc = mst_ns__check_ms(now_ms);
  if (rc == 0) rc = mst_ns__path_parse(path, len, &p);
  if (rc < 0) return rc;
  if (p.in_trash) return CAIRN_EPERM;
  rc = walk_prefix(ns, &p, &deep, &found, &pos);
  if (rc < 0) return rc;
  if (found == p.ncomp) {
    if (!parents || deep->type != MST_NS_DIR) return CAIRN_EEXIST;
    if (out) mst_ns__fill_info(ns, deep, out);
    return 0;
  }
  size_t missing = p.ncomp - found;
  if (!parents && missing > 1) return CAIRN_ENOENT;
  rc = check_ids(ns, first_id, missing);
  if (rc < 0) return rc;
  mst_node *n = create_chain(ns, &p, pos, deep, MST_NS_DIR, 0, first_id, now_ms);
  if (out) mst_ns__fill_info(ns, n, out);
  return (int)missing;
}

int mst_ns_create(mst_ns *ns, const char *path, size_t len, unsigned flags, uint32_t goal,
                  uint64_t first_id, int64_t now_ms, mst_ns_info *out) {
  ns_path p;
  mst_node *deep = NULL;
  size_t found, pos;
  if ((flags & ~(MST_NS_EXCLUSIVE | MST_NS_PARENTS)) || (goal != 0 && !goal_ok(goal)))
    return CAIRN_EINVAL;
  int rc = mst_ns__check_ms(now_ms);
  if (rc == 0) rc = mst_ns__path_parse(path, len, &p);
  if (rc < 0) return rc;
  if (p.in_trash) return CAIRN_EPERM;
  if (p.ncomp == 0 || p.slash) return CAIRN_EISDIR;
  rc = walk_prefix(ns, &p, &deep, &found, &pos);
  if (rc < 0) return rc;
  if (found == p.ncomp) {
    if (deep->type == MST_NS_DIR) return CAIRN_EISDIR;
    if (flags & MST_NS_EXCLUSIVE) return CAIRN_EEXIST;
    if (out) mst_ns__fill_info(ns, deep, out);
    return 0;
  }
  size_t missing = p.ncomp - found;
  if (!(flags & MST_NS_PARENTS) && missing > 1) return CAIRN_ENOENT;
  rc = check_ids(ns, first_id, missing);
  if (rc < 0) return rc;
  mst_node *n = create_chain(ns, &p, pos, deep, MST_NS_FILE, goal, first_id, now_ms);
  if (out) mst_ns__fill_info(ns, n, out);
  return (int)missing;
}

/*
 * Checks, in order: paths valid; neither side in /.trash; the source exists
 * and is not the root; the target's parent exists; the target is not inside
 * the source; what is at the target may be replaced. Only then does anything
 * move, so the rename is all or nothing.
 */
int mst_ns_rename(mst_ns *ns, const char *from, size_t from_len, const char *to, size_t to_len,
                  bool overwrite, int64_t now_ms, uint64_t *replaced_id) {
  ns_path pf, pt;
  mst_node *src = NULL, *dir = NULL;
  if (replaced_id) *replaced_id = 0;
  int rc = mst_ns__check_ms(now_ms);
  if (rc == 0) rc = mst_ns__path_parse(from, from_len, &pf);
  if (rc == 0) rc = mst_ns__path_parse(to, to_len, &pt);
  if (rc < 0) return rc;
  if (pf.in_trash || pt.in_trash) return CAIRN_EPERM;
  rc = mst_ns__resolve(ns, &pf, &src);
  if (rc < 0) return rc;
  if (pf.ncomp == 0) return CAIRN_EINVAL;
  if (pt.ncomp == 0) return src->type == MST_NS_DIR ? CAIRN_EEXIST : CAIRN_EISDIR;
  rc = mst_ns__resolve_parent(ns, &pt, &dir);
  if (rc < 0) return rc;
  if (pt.slash && src->type != MST_NS_DIR) return CAIRN_ENOTDIR;
  for (const mst_node *m = dir; m; m = m->parent)
    if (m == src) return CAIRN_EINVAL;
  mst_node *old = mst_ns__tree_find(dir->u.root, pt.last, pt.last_len);
  if (old == src) return 0;
  if (old) {
    if (old->type == MST_NS_DIR) return src->type == MST_NS_DIR ? CAIRN_EEXIST : CAIRN_EISDIR;
    if (src->type == MST_NS_DIR || !overwrite) return CAIRN_EEXIST;
    if (replaced_id) *replaced_id = old->id;
    mst_ns__trash_node(ns, old, pt.s, pt.len, now_ms);
  }
  move_node(ns, src, dir, pt.last, pt.last_len, now_ms);
  return 0;
}

int mst_ns_delete(mst_ns *ns, const char *path, size_t len, bool recursive, int64_t now_ms,
                  mst_ns_info *out) {
  ns_path p;
  mst_node *n = NULL;
  int rc = mst_ns__check_ms(now_ms);
  if (rc == 0) rc = mst_ns__path_parse(path, len, &p);
  if (rc < 0) return rc;
  if (p.ncomp == 0 || p.in_trash) return CAIRN_EPERM;
  rc = mst_ns__resolve(ns, &p, &n);
  if (rc < 0) return rc;
  if (n->type == MST_NS_DIR && n->count > 0 && !recursive) return CAIRN_ENOTEMPTY;
  n = mst_ns__trash_node(ns, n, p.s, p.len, now_ms);
  if (out) mst_ns__fill_info(ns, n, out);
  return 0;
}

int mst_ns_set_goal(mst_ns *ns, const char *path, size_t len, uint32_t goal, mst_ns_info *out) {
  ns_path p;
  mst_node *n = NULL;
  if (!goal_ok(goal)) return CAIRN_EINVAL;
  int rc = mst_ns__path_parse(path, len, &p);
  if (rc < 0) return rc;
  if (p.in_trash) return CAIRN_EPERM;
  rc = mst_ns__resolve(ns, &p, &n);
  if (rc < 0) return rc;
  n->goal = (uint8_t)goal;
  if (out) mst_ns__fill_info(ns, n, out);
  return 0;
}

/* ---- file attributes and chunks ----------------------------------------- */

/* The file with `id`: CAIRN_ENOENT if none, CAIRN_EISDIR for a directory. */
static int get_file(const mst_ns *ns, uint64_t id, mst_node **out) {
  mst_node *n = mst_ns__idtab_get(&ns->nodes, id);
  if (!n) return CAIRN_ENOENT;
  if (n->type != MST_NS_FILE) return CAIRN_EISDIR;
  *out = n;
  return 0;
}

int mst_ns_set_size(mst_ns *ns, uint64_t id, uint64_t size, int64_t now_ms) {
  mst_node *n = NULL;
  int rc = mst_ns__check_ms(now_ms);
  if (rc == 0) rc = get_file(ns, id, &n);
  if (rc < 0) return rc;
  n->size = size;
  n->mtime_ms = now_ms;
  return 0;
}

int mst_ns_grow_size(mst_ns *ns, uint64_t id, uint64_t end_offset, int64_t now_ms) {
  mst_node *n = NULL;
  int rc = mst_ns__check_ms(now_ms);
  if (rc == 0) rc = get_file(ns, id, &n);
  if (rc < 0) return rc;
  if (end_offset > n->size) n->size = end_offset;
  n->mtime_ms = now_ms;
  return 0;
}

int mst_ns_set_mtime(mst_ns *ns, uint64_t id, int64_t mtime_ms) {
  mst_node *n = mst_ns__idtab_get(&ns->nodes, id);
  if (!n) return CAIRN_ENOENT;
  int rc = mst_ns__check_ms(mtime_ms);
  if (rc < 0) return rc;
  n->mtime_ms = mtime_ms;
  return 0;
}

/* One handle inline; from the second on, an array whose capacity is the
 * next power of two >= count (so it grows when count is a power of two). */
int mst_ns_chunk_append(mst_ns *ns, uint64_t id, uint64_t index, uint64_t handle) {
  mst_node *n = NULL;
  int rc = get_file(ns, id, &n);
  if (rc < 0) return rc;
  if (handle == 0 || index != n->count) return CAIRN_EINVAL;
  if (n->count == UINT32_MAX) return CAIRN_ETOOBIG;
  if (n->count == 0) {
    n->u.one = handle;
  } else if (n->count == 1) {
    uint64_t *v = cmn_malloc(2 * sizeof *v);
    v[0] = n->u.one;
    v[1] = handle;
    n->u.many = v;
  } else {
    if ((n->count & (n->count - 1)) == 0)
      n->u.many = cmn_realloc(n->u.many, 2 * (size_t)n->count * sizeof *n->u.many);
    n->u.many[n->count] = handle;
  }
  n->count++;
  return 0;
}

int mst_ns_chunk_replace(mst_ns *ns, uint64_t id, uint64_t index, uint64_t handle) {
  mst_node *n = NULL;
  int rc = get_file(ns, id, &n);
  if (rc < 0) return rc;
  if (handle == 0) return CAIRN_EINVAL;
  if (index >= n->count) return CAIRN_ENOENT;
  if (n->count == 1)
    n->u.one = handle;
  else
    n->u.many[index] = handle;
  return 0;
}

int mst_ns_chunk_get(const mst_ns *ns, uint64_t id, uint64_t index, uint64_t *handle) {
  mst_node *n = NULL;
  int rc = get_file(ns, id, &n);
  if (rc < 0) return rc;
  if (index >= n->count) return CAIRN_ENOENT;
  *handle = mst_ns__chunk_array(n)[index];
  return 0;
}

int mst_ns_chunks(const mst_ns *ns, uint64_t id, uint64_t first, size_t n, uint64_t *out) {
  mst_node *f = NULL;
  int rc = get_file(ns, id, &f);
  if (rc < 0) return rc;
  if (first >= f->count) return 0;
  uint64_t avail = f->count - first;
  if (n > INT_MAX) n = INT_MAX;
  if (n > avail) n = (size_t)avail;
  memcpy(out, mst_ns__chunk_array(f) + first, n * sizeof *out);
  return (int)n;
}
