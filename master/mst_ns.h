/*
 * mst_ns.h - the master's in-memory namespace: directories and files by full
 * path, with per-file size, mtime, replication goal and chunk list, a trash
 * for deleted entries, and lookup by file id.
 *
 * Paths. A path is absolute and '/'-separated; "/" is the root. Every
 * function takes a path as (pointer, length) so that a path taken from a
 * protobuf string with an embedded NUL is seen and refused, not cut short.
 * A valid path:
 *   - is not empty and starts with '/'                    (else CAIRN_EBADPATH)
 *   - has no NUL byte, no empty component ("//"), no "." or ".." component
 *                                                           (else CAIRN_EBADPATH)
 *   - is at most MST_NS_PATH_MAX bytes, and every component at most
 *     MST_NS_NAME_MAX bytes                                 (else CAIRN_ENAMETOOLONG)
 *   - may end with one '/': it then names a directory. Resolving it to a file
 *     gives CAIRN_ENOTDIR, creating a file by it CAIRN_EISDIR.
 * Names are byte strings compared with memcmp (so listings are sorted by
 * bytes, as `LC_ALL=C ls`). Paths built from the tree (mst_ns_path) may be
 * longer than MST_NS_PATH_MAX after a directory above them was renamed to a
 * longer name, as on POSIX; such a file stays reachable by id.
 *
 * Trash. Delete moves the node (with its subtree) to the reserved directory
 * "/.trash" under the name "<deleted_ms, 13 digits>-<file id>-<name>"
 * (the name part cut to keep the entry within MST_NS_NAME_MAX bytes), so
 * trash entries sort by deletion time. "/.trash" never appears in a listing
 * of "/"; it and everything below it can be read (stat, list) by path, but
 * every mutation by path that touches it (mkdir, create, rename from or to,
 * delete, set goal, undelete's target) gives CAIRN_EPERM. Trash entries leave
 * only through mst_ns_undelete or mst_ns_purge.
 *
 * Goals. A file's goal is its replication goal (MST_NS_GOAL_MIN..MAX). A
 * directory's goal is the default goal of files and directories created in it
 * later (create with goal 0 inherits it); setting a directory's goal does not
 * change what is already below it. The root starts with MST_NS_DEFAULT_GOAL.
 *
 * Determinism. The module never reads a clock and never invents an id: every
 * mutation takes `now_ms` (0..MST_NS_MAX_MS, else CAIRN_EINVAL) and every
 * mutation that creates nodes takes the first new file id; calling the same
 * mutations in the same order on equal namespaces gives equal namespaces, so
 * the operation log can replay them. Ids below MST_NS_FIRST_ID are reserved
 * (root, trash). A directory's mtime is set to now_ms whenever an entry is
 * added to or removed from it.
 *
 * Thread safety: none inside. The caller (the master's service layer)
 * serialises access: mutations under an exclusive lock; the const functions
 * may run concurrently with each other only while no mutation runs (e.g. an
 * rwlock held for reading). Every `const char *name` handed out (in
 * mst_ns_info, mst_ns_record) points into the namespace and stays valid until
 * the next mutation.
 *
 * Errors: every function returns 0 or a positive count on success and a
 * negative CAIRN_* code on failure; a failed call changes nothing.
 */
#ifndef MST_NS_H
#define MST_NS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmn_util.h"

#define MST_NS_NAME_MAX 255
#define MST_NS_PATH_MAX 4096
#define MST_NS_GOAL_MIN 1
#define MST_NS_GOAL_MAX 9
#define MST_NS_DEFAULT_GOAL 3
#define MST_NS_ROOT_ID 1u
#define MST_NS_TRASH_ID 2u
#define MST_NS_FIRST_ID 16u               /* lowest id a caller may allocate */
#define MST_NS_MAX_MS 9999999999999LL     /* times are 0..this (13 digits, year 2286) */
#define MST_NS_TRASH_NAME ".trash"

/* mst_ns_create flags. */
#define MST_NS_EXCLUSIVE 1u /* fail with CAIRN_EEXIST if the file exists */
#define MST_NS_PARENTS 2u   /* create missing parent directories */

typedef struct mst_ns mst_ns;

typedef enum mst_ns_type {
  MST_NS_FILE = 1,
  MST_NS_DIR = 2,
} mst_ns_type;

/* What stat and list return about one node. `name` is the node's own name
 * (not NUL-terminated in general; use name_len), "" for the root. */
typedef struct mst_ns_info {
  uint64_t id;
  uint64_t parent_id;     /* 0 for the root */
  mst_ns_type type;
  const char *name;
  size_t name_len;
  uint64_t size;          /* files; 0 for directories */
  int64_t mtime_ms;
  uint32_t goal;
  uint64_t chunk_count;   /* files */
  uint64_t entries;       /* directories: number of children */
  bool trashed;           /* the node is in the trash or below a trash entry */
  int64_t trashed_ms;     /* when its trash entry was deleted; 0 if live */
} mst_ns_info;

/* One node as the checkpoint stores it (see mst_ns_iterate, mst_ns_insert).
 * Trash fields are set only for trash entries (children of /.trash). */
typedef struct mst_ns_record {
  uint64_t id;
  uint64_t parent_id;     /* 0 for the root */
  mst_ns_type type;
  const char *name;
  size_t name_len;
  uint64_t size;
  int64_t mtime_ms;
  uint32_t goal;
  int64_t trash_ms;       /* trash entry: deletion time */
  const char *trash_origin; /* trash entry: path it was deleted from */
  size_t trash_origin_len;  /* 0 for every other node */
  const uint64_t *chunks; /* files: chunk handles by index */
  uint64_t chunk_count;
} mst_ns_record;

typedef struct mst_ns_counts {
  uint64_t files;         /* every file node, trashed ones included */
  uint64_t dirs;          /* every directory but the root and /.trash */
  uint64_t total;         /* files + dirs */
  uint64_t trash_entries; /* entries directly in /.trash */
} mst_ns_counts;

/* A growable list of chunk handles (mst_ns_purge). Zero-initialise it;
 * release it with mst_ns_handles_free. */
typedef struct mst_ns_handles {
  uint64_t *v;
  size_t n;
  size_t cap;
} mst_ns_handles;

void mst_ns_handles_free(mst_ns_handles *h);

/* ---- lifetime ---------------------------------------------------------- */

/* A new namespace holding the root (id MST_NS_ROOT_ID) and /.trash
 * (MST_NS_TRASH_ID), both with mtime 0 and the default goal. The caller owns
 * *out and frees it with mst_ns_free. Always 0. */
int mst_ns_new(mst_ns **out);
/* Frees the namespace and everything in it. NULL is fine. */
void mst_ns_free(mst_ns *ns);

/* ---- paths -------------------------------------------------------------- */

/* Validates a path by the rules above. 0, CAIRN_EBADPATH or
 * CAIRN_ENAMETOOLONG. Pure; any thread. */
int mst_ns_path_check(const char *path, size_t len);

/* Appends the full current path of node `id` to `out` (which the caller
 * owns and frees; cmn_buf keeps it NUL-terminated). Trash entries and what is
 * below them have paths under "/.trash/". 0 or CAIRN_ENOENT. */
int mst_ns_path(const mst_ns *ns, uint64_t id, cmn_buf *out);

/* ---- reads ------------------------------------------------------------- */

/* Stat by path or by id. 0, a path error, CAIRN_ENOENT, CAIRN_ENOTDIR. */
int mst_ns_stat(const mst_ns *ns, const char *path, size_t len, mst_ns_info *out);
int mst_ns_stat_id(const mst_ns *ns, uint64_t id, mst_ns_info *out);

/* Lists directory `path` in name order, starting after the name
 * `start_after` (any bytes; length 0 = from the start), at most `limit`
 * (1..INT_MAX) entries into `entries`. *more says whether entries remain
 * after the last one returned. Listing "/" leaves out /.trash.
 * Costs O(log n + limit). Returns the number of entries, or a path error,
 * CAIRN_ENOENT, CAIRN_ENOTDIR (a file), CAIRN_EINVAL (limit). */
int mst_ns_list(const mst_ns *ns, const char *path, size_t len, const char *start_after,
                size_t start_after_len, mst_ns_info *entries, size_t limit, bool *more);

/* Counts of nodes (for status). */
void mst_ns_get_counts(const mst_ns *ns, mst_ns_counts *out);

/* ---- namespace mutations ----------------------------------------------- */

/* Creates directory `path`. Without `parents`, the parent must exist
 * (CAIRN_ENOENT) and the path must not (CAIRN_EEXIST); with `parents`,
 * missing directories above are created too and an existing directory is
 * success. New directories take ids first_id, first_id+1, ... from the top
 * down. Returns the number of ids used (0 if nothing was created), *out (may
 * be NULL) describes the directory. Errors: path errors, CAIRN_EEXIST,
 * CAIRN_ENOENT, CAIRN_ENOTDIR (a component is a file), CAIRN_EPERM (in
 * /.trash), CAIRN_EINVAL (id reserved or already used, now_ms). */
int mst_ns_mkdir(mst_ns *ns, const char *path, size_t len, bool parents, uint64_t first_id,
                 int64_t now_ms, mst_ns_info *out);

/* Creates an empty file with `goal` (0 = the parent directory's goal).
 * MST_NS_EXCLUSIVE: an existing file gives CAIRN_EEXIST; without it the
 * existing file is returned unchanged. MST_NS_PARENTS: missing directories
 * are created with ids first_id..., the file takes the last id used.
 * Returns the number of ids used (0 when an existing file is returned).
 * Errors: path errors, CAIRN_EEXIST, CAIRN_EISDIR (a directory is there, or
 * the path ends with '/'), CAIRN_ENOENT (parent missing), CAIRN_ENOTDIR,
 * CAIRN_EPERM, CAIRN_EINVAL (goal, id, now_ms). */
int mst_ns_create(mst_ns *ns, const char *path, size_t len, unsigned flags, uint32_t goal,
                  uint64_t first_id, int64_t now_ms, mst_ns_info *out);

/* Atomically moves `from` to `to`. The parent of `to` must exist. If `to`
 * exists: a file replaced by a file with `overwrite` goes to the trash (its id
 * in *replaced_id, else 0; may be NULL); otherwise CAIRN_EEXIST (CAIRN_EISDIR
 * when a file would replace a directory). Renaming a node to itself is
 * success. Errors: path errors, CAIRN_ENOENT, CAIRN_ENOTDIR, CAIRN_EEXIST,
 * CAIRN_EISDIR, CAIRN_EINVAL (from is the root, or to lies inside from),
 * CAIRN_EPERM (/.trash on either side). Costs O(depth + log n), plus the
 * number of children of a directory whose new name needs a larger node. */
int mst_ns_rename(mst_ns *ns, const char *from, size_t from_len, const char *to, size_t to_len,
                  bool overwrite, int64_t now_ms, uint64_t *replaced_id);

/* Moves `path` (with its subtree when `recursive`) to the trash and
 * describes the trash entry in *out (may be NULL; its path via mst_ns_path).
 * Errors: path errors, CAIRN_ENOENT, CAIRN_ENOTDIR, CAIRN_ENOTEMPTY (a
 * non-empty directory without `recursive`), CAIRN_EPERM (the root, /.trash
 * or below), CAIRN_EINVAL (now_ms). */
int mst_ns_delete(mst_ns *ns, const char *path, size_t len, bool recursive, int64_t now_ms,
                  mst_ns_info *out);

/* Restores trash entry `trash_path` ("/.trash/<entry>") to `restore_to`, or
 * to the path it was deleted from when restore_len is 0. The target's parent
 * must exist. Errors: path errors, CAIRN_ENOENT (no such entry, or target
 * parent missing), CAIRN_EINVAL (trash_path is not a trash entry, now_ms),
 * CAIRN_EEXIST (target occupied), CAIRN_ENOTDIR, CAIRN_EPERM (target in
 * /.trash). */
int mst_ns_undelete(mst_ns *ns, const char *trash_path, size_t trash_len, const char *restore_to,
                    size_t restore_len, int64_t now_ms, mst_ns_info *out);

/* Removes trash entry `id` and its subtree for good, appending every chunk
 * handle the removed files owned to `handles` (may be NULL) so the caller can
 * delete the chunks. Returns the number of nodes removed. Errors:
 * CAIRN_ENOENT (unknown id), CAIRN_EINVAL (not a trash entry, now_ms). */
int mst_ns_purge(mst_ns *ns, uint64_t id, int64_t now_ms, mst_ns_handles *handles);

/* Fills `ids` with up to `cap` trash entries deleted before `before_ms`,
 * oldest first (for garbage collection; purge them afterwards). Returns the
 * number filled. O(log n + returned). */
int mst_ns_trash_expired(const mst_ns *ns, int64_t before_ms, uint64_t *ids, size_t cap);

/* Where trash entry `id` was deleted from and when. *origin stays valid until
 * the next mutation. 0, CAIRN_ENOENT, CAIRN_EINVAL (not a trash entry). */
int mst_ns_trash_origin(const mst_ns *ns, uint64_t id, const char **origin, size_t *origin_len,
                        int64_t *deleted_ms);

/* Sets the goal of a file, or the default goal of a directory (see above).
 * Errors: path errors, CAIRN_ENOENT, CAIRN_ENOTDIR, CAIRN_EPERM,
 * CAIRN_EINVAL (goal outside MST_NS_GOAL_MIN..MAX). */
int mst_ns_set_goal(mst_ns *ns, const char *path, size_t len, uint32_t goal, mst_ns_info *out);

/* ---- file attributes and chunks, by file id ---------------------------- */
/* These work on trashed files too (the service layer decides whether to
 * allow it). Errors: CAIRN_ENOENT (unknown id), CAIRN_EISDIR (a directory),
 * CAIRN_EINVAL (a time outside 0..MST_NS_MAX_MS), plus those listed. */

/* size = `size`, mtime = now_ms. */
int mst_ns_set_size(mst_ns *ns, uint64_t id, uint64_t size, int64_t now_ms);
/* size = max(size, end_offset), mtime = now_ms (a completed write). */
int mst_ns_grow_size(mst_ns *ns, uint64_t id, uint64_t end_offset, int64_t now_ms);
/* mtime = mtime_ms; works on directories as well. */
int mst_ns_set_mtime(mst_ns *ns, uint64_t id, int64_t mtime_ms);

/* Appends chunk `handle` (non-zero) at `index`, which must equal the current
 * chunk count (CAIRN_EINVAL otherwise). */
int mst_ns_chunk_append(mst_ns *ns, uint64_t id, uint64_t index, uint64_t handle);
/* Replaces the handle at `index` (copy-on-write). CAIRN_ENOENT past the end,
 * CAIRN_EINVAL for handle 0. */
int mst_ns_chunk_replace(mst_ns *ns, uint64_t id, uint64_t index, uint64_t handle);
/* The handle at `index`: 0 and *handle, or CAIRN_ENOENT past the end. */
int mst_ns_chunk_get(const mst_ns *ns, uint64_t id, uint64_t index, uint64_t *handle);
/* Copies the handles of chunks [first, first+n) that exist into `out`;
 * returns how many (0 past the end; n is capped at INT_MAX). */
int mst_ns_chunks(const mst_ns *ns, uint64_t id, uint64_t first, size_t n, uint64_t *out);

/* ---- checkpoints and comparison ---------------------------------------- */

/* Calls `cb` for every node, parents before children, each directory's
 * children in name order (the root first, /.trash among the root's
 * children). The record's pointers stay valid during the call only; `cb`
 * must not change the namespace. A non-zero return from `cb` stops the walk
 * and is returned; otherwise 0. */
typedef int (*mst_ns_visit_fn)(void *arg, const mst_ns_record *rec);
int mst_ns_iterate(const mst_ns *ns, mst_ns_visit_fn cb, void *arg);

/* Inserts one node as recorded (rebuilding from a checkpoint, in iterate
 * order) into a namespace made by mst_ns_new. The root and /.trash records
 * update the built-in nodes' mtime and goal. Every inconsistency gives
 * CAIRN_ECORRUPT: unknown parent or a parent that is a file, duplicate id or
 * name, bad name, type, goal or time, chunks or size on a directory, handle
 * 0, trash fields on a node outside /.trash or missing on one inside. */
int mst_ns_insert(mst_ns *ns, const mst_ns_record *rec);

/* A 64-bit digest of the whole namespace (every field of every node, in
 * iterate order). Equal namespaces have equal digests. */
uint64_t mst_ns_digest(const mst_ns *ns);

/* Checks every internal invariant (tree order and balance, parent links,
 * counts, the id index). 0 or CAIRN_ECORRUPT. For tests and debugging. */
int mst_ns_verify(const mst_ns *ns);

#endif /* MST_NS_H */
