/*
 * ns_checkpoint.c - walking the whole namespace (for checkpoints and
 * digests), rebuilding it record by record, and checking its invariants.
 *
 * The walk is depth-first, parents before children, children in name
 * order, and needs neither recursion nor memory: the next node after n is
 * n's first child, else the next sibling by name of n or of its nearest
 * ancestor that has one (an O(log n) search in the parent's tree). Being a
 * function of the tree alone, the order is the same for every namespace
 * with the same contents, which is what makes the digest comparable.
 */
#include "ns_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"

#include <inttypes.h>
#include <string.h>

/* The node after n in walk order, NULL at the end. */
static const mst_node *walk_next(const mst_ns *ns, const mst_node *n) {
  if (n->type == MST_NS_DIR && n->u.root) return mst_ns__tree_after(n->u.root, "", 0);
  for (; n != ns->root; n = n->parent) {
    const mst_node *sib = mst_ns__tree_after(n->parent->u.root, n->name, n->name_len);
    if (sib) return sib;
  }
  return NULL;
}

static void make_record(const mst_ns *ns, const mst_node *n, mst_ns_record *r) {
  memset(r, 0, sizeof *r);
  r->id = n->id;
  r->parent_id = n->parent ? n->parent->id : 0;
  r->type = (mst_ns_type)n->type;
  r->name = n->name;
  r->name_len = n->name_len;
  r->size = n->size;
  r->mtime_ms = n->mtime_ms;
  r->goal = n->goal;
  if (n->flags & NS_NF_TRASH_ENTRY) {
    const ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, n->id);
    r->trash_ms = rec->deleted_ms;
    r->trash_origin = rec->origin;
    r->trash_origin_len = rec->origin_len;
  }
  if (n->type == MST_NS_FILE && n->count > 0) {
    r->chunks = mst_ns__chunk_array(n);
    r->chunk_count = n->count;
  }
}

int mst_ns_iterate(const mst_ns *ns, mst_ns_visit_fn cb, void *arg) {
  for (const mst_node *n = ns->root; n; n = walk_next(ns, n)) {
    mst_ns_record r;
    make_record(ns, n, &r);
    int rc = cb(arg, &r);
    if (rc != 0) return rc;
  }
  return 0;
}

/* ---- rebuilding --------------------------------------------------------- */

static int corrupt(const mst_ns_record *r, const char *why) {
  CMN_WARN("namespace", "checkpoint record refused id=%" PRIu64 " parent=%" PRIu64 " reason=\"%s\"",
           r->id, r->parent_id, why);
  return CAIRN_ECORRUPT;
}

/* Checks the fields every record must get right, whatever its place. */
static const char *check_fields(const mst_ns_record *r) {
  if (r->type != MST_NS_FILE && r->type != MST_NS_DIR) return "bad type";
  if (r->goal < MST_NS_GOAL_MIN || r->goal > MST_NS_GOAL_MAX) return "bad goal";
  if (mst_ns__check_ms(r->mtime_ms) < 0) return "bad mtime";
  if (r->name_len > 0 && !r->name) return "missing name";
  if (r->type == MST_NS_DIR && (r->size != 0 || r->chunk_count != 0))
    return "directory with size or chunks";
  if (r->chunk_count > UINT32_MAX) return "too many chunks";
  if (r->chunk_count > 0 && !r->chunks) return "missing chunk list";
  for (uint64_t i = 0; i < r->chunk_count; i++)
    if (r->chunks[i] == 0) return "chunk handle 0";
  return NULL;
}

/* A trash entry's record must carry a valid origin and time, and its name
 * must be exactly the one delete would have given it. */
static const char *check_trash(const mst_ns_record *r) {
  ns_path op;
  char want[MST_NS_NAME_MAX + 1];
  if (r->trash_origin_len == 0 || !r->trash_origin) return "trash entry without origin";
  if (mst_ns__check_ms(r->trash_ms) < 0) return "bad trash time";
  if (mst_ns__path_parse(r->trash_origin, r->trash_origin_len, &op) < 0 || op.ncomp == 0 ||
      op.in_trash || op.slash)
    return "bad trash origin";
  size_t len = mst_ns__trash_name(want, r->trash_ms, r->id, op.last, op.last_len);
  if (mst_ns__name_cmp(want, len, r->name, r->name_len) != 0) return "bad trash entry name";
  return NULL;
}

/* The root and /.trash exist in every namespace; their records only carry
 * attributes. */
static int update_builtin(mst_ns *ns, const mst_ns_record *r) {
  bool is_root = r->id == MST_NS_ROOT_ID;
  mst_node *n = is_root ? ns->root : ns->trash;
  if (r->type != MST_NS_DIR || r->parent_id != (is_root ? 0 : MST_NS_ROOT_ID) ||
      mst_ns__name_cmp(r->name ? r->name : "", r->name_len, n->name, n->name_len) != 0)
    return corrupt(r, "built-in directory does not match");
  if (r->trash_origin_len != 0 || r->trash_ms != 0) return corrupt(r, "trash fields on built-in");
  n->mtime_ms = r->mtime_ms;
  n->goal = (uint8_t)r->goal;
  return 0;
}

/*
 * Checks a record against the namespace as built so far, then adds it. The
 * parent's mtime is kept: it was restored from the parent's own record and
 * adding a child must not move it.
 */
int mst_ns_insert(mst_ns *ns, const mst_ns_record *r) {
  const char *why = check_fields(r);
  if (why) return corrupt(r, why);
  if (r->id == MST_NS_ROOT_ID || r->id == MST_NS_TRASH_ID) return update_builtin(ns, r);
  if (r->id < MST_NS_FIRST_ID) return corrupt(r, "reserved id");
  if (mst_ns__idtab_get(&ns->nodes, r->id)) return corrupt(r, "duplicate id");
  mst_node *parent = mst_ns__idtab_get(&ns->nodes, r->parent_id);
  if (!parent) return corrupt(r, "unknown parent");
  if (parent->type != MST_NS_DIR) return corrupt(r, "parent is a file");
  if (!r->name || mst_ns__name_check(r->name, r->name_len) < 0) return corrupt(r, "bad name");
  if (mst_ns__tree_find(parent->u.root, r->name, r->name_len)) return corrupt(r, "duplicate name");
  if (parent == ns->trash) {
    why = check_trash(r);
    if (why) return corrupt(r, why);
  } else if (r->trash_origin_len != 0 || r->trash_ms != 0) {
    return corrupt(r, "trash fields outside the trash");
  }

  mst_node *n = mst_ns__node_new(r->type, r->name, r->name_len);
  n->id = r->id;
  n->size = r->size;
  n->mtime_ms = r->mtime_ms;
  n->goal = (uint8_t)r->goal;
  if (r->chunk_count == 1) {
    n->u.one = r->chunks[0];
  } else if (r->chunk_count > 1) {
    size_t cap = 2;
    while (cap < r->chunk_count) cap *= 2;
    n->u.many = cmn_malloc(cap * sizeof *n->u.many);
    memcpy(n->u.many, r->chunks, (size_t)r->chunk_count * sizeof *n->u.many);
  }
  n->count = (uint32_t)r->chunk_count;
  mst_ns__attach(parent, n, parent->mtime_ms);
  mst_ns__register(ns, n);
  if (parent == ns->trash) {
    ns_trash_rec *rec = mst_ns__trash_rec_new(n, r->trash_ms, r->trash_origin, r->trash_origin_len);
    mst_ns__idtab_put(&ns->trash_recs, rec);
    n->flags |= NS_NF_TRASH_ENTRY;
  }
  return 0;
}

/* ---- digest ------------------------------------------------------------- */

/* FNV-1a, 64 bits, over a fixed little-endian encoding of every field. */
#define FNV_PRIME 0x100000001b3ULL

static void mix_bytes(uint64_t *h, const void *p, size_t n) {
  const unsigned char *b = p;
  uint64_t x = *h;
  for (size_t i = 0; i < n; i++) x = (x ^ b[i]) * FNV_PRIME;
  *h = x;
}

static void mix_u64(uint64_t *h, uint64_t v) {
  unsigned char b[8];
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  mix_bytes(h, b, sizeof b);
}

static int digest_one(void *arg, const mst_ns_record *r) {
  uint64_t *h = arg;
  mix_u64(h, r->id);
  mix_u64(h, r->parent_id);
  mix_u64(h, (uint64_t)r->type);
  mix_u64(h, r->name_len);
  mix_bytes(h, r->name, r->name_len);
  mix_u64(h, r->size);
  mix_u64(h, (uint64_t)r->mtime_ms);
  mix_u64(h, r->goal);
  mix_u64(h, (uint64_t)r->trash_ms);
  mix_u64(h, r->trash_origin_len);
  if (r->trash_origin_len) mix_bytes(h, r->trash_origin, r->trash_origin_len);
  mix_u64(h, r->chunk_count);
  for (uint64_t i = 0; i < r->chunk_count; i++) mix_u64(h, r->chunks[i]);
  return 0;
}

uint64_t mst_ns_digest(const mst_ns *ns) {
  uint64_t h = 0xcbf29ce484222325ULL;
  mst_ns_iterate(ns, digest_one, &h);
  return h;
}

/* ---- invariants --------------------------------------------------------- */

/* Checks the AVL subtree t of directory dir: parent links, strict name order
 * within (lo, hi), stored heights, balance. Adds its size to *count and
 * returns its height, or -1 when broken. */
static int verify_tree(const mst_node *dir, const mst_node *t, const mst_node *lo,
                       const mst_node *hi, uint64_t *count) {
  if (!t) return 0;
  if (t->parent != dir) return -1;
  if (lo && mst_ns__name_cmp(lo->name, lo->name_len, t->name, t->name_len) >= 0) return -1;
  if (hi && mst_ns__name_cmp(t->name, t->name_len, hi->name, hi->name_len) >= 0) return -1;
  int l = verify_tree(dir, t->left, lo, t, count);
  int r = verify_tree(dir, t->right, t, hi, count);
  if (l < 0 || r < 0 || l - r > 1 || r - l > 1) return -1;
  int h = 1 + (l > r ? l : r);
  if (t->height != h) return -1;
  (*count)++;
  return h;
}

int mst_ns_verify(const mst_ns *ns) {
  uint64_t files = 0, dirs = 0, nodes = 0;
  if (ns->root->parent || ns->trash->parent != ns->root) return CAIRN_ECORRUPT;
  for (const mst_node *n = ns->root; n; n = walk_next(ns, n)) {
    nodes++;
    if (mst_ns__idtab_get(&ns->nodes, n->id) != n) return CAIRN_ECORRUPT;
    if (n->name_len + 1u > n->name_cap || n->name[n->name_len] != '\0') return CAIRN_ECORRUPT;
    bool entry = n->parent == ns->trash;
    if (entry != ((n->flags & NS_NF_TRASH_ENTRY) != 0)) return CAIRN_ECORRUPT;
    if (entry) {
      const ns_trash_rec *rec = mst_ns__idtab_get(&ns->trash_recs, n->id);
      if (!rec || rec->node != n) return CAIRN_ECORRUPT;
    }
    if (n->type == MST_NS_DIR) {
      uint64_t count = 0;
      if (verify_tree(n, n->u.root, NULL, NULL, &count) < 0 || count != n->count)
        return CAIRN_ECORRUPT;
      if (n != ns->root && n != ns->trash) dirs++;
    } else if (n->type == MST_NS_FILE) {
      const uint64_t *v = mst_ns__chunk_array(n);
      for (uint32_t i = 0; i < n->count; i++)
        if (v[i] == 0) return CAIRN_ECORRUPT;
      files++;
    } else {
      return CAIRN_ECORRUPT;
    }
  }
  if (files != ns->files || dirs != ns->dirs || nodes != ns->nodes.count ||
      ns->trash_recs.count != ns->trash->count)
    return CAIRN_ECORRUPT;
  return 0;
}
