/*
 * ns_trash.c - the namespace's trash: moving nodes in, restoring them,
 * purging them for good, and finding the expired ones.
 *
 * A deleted node keeps its id and moves, with its subtree, under /.trash as
 * "<ms>-<id>-<name>" (ns_path.c). What is needed to restore it (its origin
 * path) and to expire it (the deletion time) is kept in an ns_trash_rec,
 * found by the entry's id. Since entry names start with the zero-padded
 * deletion time, /.trash in name order is /.trash in deletion order, which
 * makes finding the expired entries O(log n + expired).
 */
#include "ns_internal.h"

#include "cairn_error.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

void mst_ns_handles_free(mst_ns_handles *h) {
  if (!h) return;
  free(h->v);
  h->v = NULL;
  h->n = h->cap = 0;
}

static void handles_push(mst_ns_handles *h, const uint64_t *v, size_t n) {
  if (h->n + n > h->cap) {
    size_t cap = h->cap ? h->cap : 16;
    while (cap < h->n + n) cap *= 2;
    h->v = cmn_realloc(h->v, cap * sizeof *h->v);
    h->cap = cap;
  }
  memcpy(h->v + h->n, v, n * sizeof *v);
  h->n += n;
}

ns_trash_rec *mst_ns__trash_rec_new(mst_node *n, int64_t ms, const char *origin, size_t len) {
  ns_trash_rec *rec = cmn_malloc(offsetof(ns_trash_rec, origin) + len + 1);
  rec->id = n->id;
  rec->node = n;
  rec->deleted_ms = ms;
  rec->origin_len = len;
  memcpy(rec->origin, origin, len);
  rec->origin[len] = '\0';
  return rec;
}

mst_node *mst_ns__trash_node(mst_ns *ns, mst_node *n, const char *origin, size_t origin_len,
                             int64_t now_ms) {
  char name[MST_NS_NAME_MAX + 1];
  size_t len = mst_ns__trash_name(name, now_ms, n->id, n->name, n->name_len);
  mst_ns__detach(n, now_ms);
  n = mst_ns__node_set_name(ns, n, name, len);
  mst_ns__attach(ns->trash, n, now_ms);
  mst_ns__idtab_put(&ns->trash_recs, mst_ns__trash_rec_new(n, now_ms, origin, origin_len));
  n->flags |= NS_NF_TRASH_ENTRY;
  return n;
}

/*
 * Frees a subtree without recursion (directories can nest deeper than any
 * stack would like): a work list of nodes, where taking a node adds its
 * siblings-tree links and, for a directory, the root of its children's
 * tree. The top node's own tree links belong to its (former) parent and
 * are not followed.
 */
uint64_t mst_ns__destroy_subtree(mst_ns *ns, mst_node *top, mst_ns_handles *handles,
                                 bool unregister) {
  mst_node **work = NULL;
  size_t depth = 0, cap = 0;
  uint64_t freed = 0;
  mst_node *n = top;
  for (;;) {
    mst_node *next[3] = {NULL, NULL, NULL};
    if (n != top) {
      next[0] = n->left;
      next[1] = n->right;
    }
    if (n->type == MST_NS_DIR) {
      next[2] = n->u.root;
      if (unregister) ns->dirs--;
    } else {
      if (handles && n->count > 0) handles_push(handles, mst_ns__chunk_array(n), n->count);
      if (n->count >= 2) free(n->u.many);
      if (unregister) ns->files--;
    }
    if (unregister) mst_ns__idtab_del(&ns->nodes, n->id);
    free(n);
    freed++;
    for (int i = 0; i < 3; i++) {
      if (!next[i]) continue;
      if (depth == cap) {
        cap = cap ? cap * 2 : 64;
        work = cmn_realloc(work, cap * sizeof *work);
      }
      work[depth++] = next[i];
    }
    if (depth == 0) break;
    n = work[--depth];
  }
  free(work);
  return freed;
}

/* The entry node and record for "/.trash/<entry>". */
static int find_entry(const mst_ns *ns, const ns_path *tp, mst_node **node, ns_trash_rec **rec) {
  if (!tp->in_trash || tp->ncomp != 2) return CAIRN_EINVAL;
  mst_node *n = mst_ns__tree_find(ns->trash->u.root, tp->last, tp->last_len);
  if (!n) return CAIRN_ENOENT;
  if (tp->slash && n->type != MST_NS_DIR) return CAIRN_ENOTDIR;
  *node = n;
  *rec = mst_ns__idtab_get(&ns->trash_recs, n->id);
  return 0;
}

/*
 * Restores an entry to its origin or to `restore_to`. The target path is
 * parsed and checked completely before the entry moves; the record goes
 * last, because the default target path lives inside it.
 */
int mst_ns_undelete(mst_ns *ns, const char *trash_path, size_t trash_len, const char *restore_to,
                    size_t restore_len, int64_t now_ms, mst_ns_info *out) {
  ns_path tp, dp;
  mst_node *n = NULL, *dir = NULL;
  ns_trash_rec *rec = NULL;
  int rc = mst_ns__check_ms(now_ms);
  if (rc == 0) rc = mst_ns__path_parse(trash_path, trash_len, &tp);
  if (rc == 0) rc = find_entry(ns, &tp, &n, &rec);
  if (rc < 0) return rc;
  if (restore_len == 0) {
    restore_to = rec->origin;
    restore_len = rec->origin_len;
  }
  rc = mst_ns__path_parse(restore_to, restore_len, &dp);
  if (rc < 0) return rc;
  if (dp.in_trash) return CAIRN_EPERM;
  if (dp.ncomp == 0) return CAIRN_EEXIST;
  rc = mst_ns__resolve_parent(ns, &dp, &dir);
  if (rc < 0) return rc;
  if (dp.slash && n->type != MST_NS_DIR) return CAIRN_ENOTDIR;
  if (mst_ns__tree_find(dir->u.root, dp.last, dp.last_len)) return CAIRN_EEXIST;
  mst_ns__detach(n, now_ms);
  n = mst_ns__node_set_name(ns, n, dp.last, dp.last_len);
  mst_ns__attach(dir, n, now_ms);
  n->flags &= (uint8_t)~NS_NF_TRASH_ENTRY;
  mst_ns__idtab_del(&ns->trash_recs, n->id);
  free(rec);
  if (out) mst_ns__fill_info(ns, n, out);
  return 0;
}

int mst_ns_purge(mst_ns *ns, uint64_t id, int64_t now_ms, mst_ns_handles *handles) {
  mst_node *n = mst_ns__idtab_get(&ns->nodes, id);
  if (!n) return CAIRN_ENOENT;
  if (!(n->flags & NS_NF_TRASH_ENTRY)) return CAIRN_EINVAL;
  int rc = mst_ns__check_ms(now_ms);
  if (rc < 0) return rc;
  ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, id);
  mst_ns__idtab_del(&ns->trash_recs, id);
  free(rec);
  mst_ns__detach(n, now_ms);
  uint64_t freed = mst_ns__destroy_subtree(ns, n, handles, true);
  return freed > INT_MAX ? INT_MAX : (int)freed;
}

int mst_ns_trash_expired(const mst_ns *ns, int64_t before_ms, uint64_t *ids, size_t cap) {
  ns_cursor c;
  size_t n = 0;
  if (cap > INT_MAX) cap = INT_MAX;
  mst_ns__cursor_seek(&c, ns->trash->u.root, "", 0);
  for (mst_node *e; n < cap && (e = mst_ns__cursor_next(&c));) {
    const ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, e->id);
    if (rec->deleted_ms >= before_ms) break;
    ids[n++] = e->id;
  }
  return (int)n;
}

int mst_ns_trash_origin(const mst_ns *ns, uint64_t id, const char **origin, size_t *origin_len,
                        int64_t *deleted_ms) {
  const mst_node *n = mst_ns__idtab_get(&ns->nodes, id);
  if (!n) return CAIRN_ENOENT;
  if (!(n->flags & NS_NF_TRASH_ENTRY)) return CAIRN_EINVAL;
  const ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, id);
  if (origin) *origin = rec->origin;
  if (origin_len) *origin_len = rec->origin_len;
  if (deleted_ms) *deleted_ms = rec->deleted_ms;
  return 0;
}
