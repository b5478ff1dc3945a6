/*
 * apply.c - the master's state machine: how each operation-log record
 * changes the namespace and the chunk table, and the checkpoint image of
 * that state.
 *
 * mst_apply is the only way metadata changes, live and at replay alike, so
 * a restarted master rebuilds exactly the state it acknowledged. Every
 * record carries the ids and times chosen when it was first applied; nothing
 * here reads a clock or allocates an id. Side effects on chunkservers (the
 * replica deletions queued when a trashed file is purged) only reach servers
 * that are registered, which none are during replay; replicas the master
 * forgot are deleted as orphans when their servers report them.
 */
#include "mst_master.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "cmn_daemon.h"
#include "mst_checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void note_ids(mst_master *m, uint64_t first, int used) {
  if (used > 0 && first + (uint64_t)used > m->next_file_id) m->next_file_id = first + (uint64_t)used;
}

static int apply_mkdir(mst_master *m, const Cairn__V1__OpMkdir *op) {
  int rc = mst_ns_mkdir(m->ns, op->path, strlen(op->path), op->parents, op->first_id, op->now_ms,
                        NULL);
  if (rc < 0) return rc;
  note_ids(m, op->first_id, rc);
  return 0;
}

static int apply_create(mst_master *m, const Cairn__V1__OpCreate *op) {
  unsigned flags = (op->exclusive ? MST_NS_EXCLUSIVE : 0) | (op->parents ? MST_NS_PARENTS : 0);
  uint32_t goal = op->goal ? op->goal : 0;
  int rc = mst_ns_create(m->ns, op->path, strlen(op->path), flags, goal, op->first_id,
                         op->now_ms, NULL);
  if (rc < 0) return rc;
  note_ids(m, op->first_id, rc);
  return 0;
}

static int apply_rename(mst_master *m, const Cairn__V1__OpRename *op) {
  return mst_ns_rename(m->ns, op->from, strlen(op->from), op->to, strlen(op->to), op->overwrite,
                       op->now_ms, NULL);
}

static int apply_delete(mst_master *m, const Cairn__V1__OpDelete *op) {
  mst_ns_info info;
  int rc = mst_ns_delete(m->ns, op->path, strlen(op->path), op->recursive, op->now_ms, &info);
  if (rc < 0) return rc;
  m->last_trash_id = info.id;
  return 0;
}

static int apply_undelete(mst_master *m, const Cairn__V1__OpUndelete *op) {
  mst_ns_info info;
  int rc = mst_ns_undelete(m->ns, op->trash_path, strlen(op->trash_path), op->restore_to,
                           strlen(op->restore_to), op->now_ms, &info);
  if (rc < 0) return rc;
  m->last_restored_id = info.id;
  return 0;
}

/* A trash entry goes for good: its chunks leave the table and every server
 * holding a replica is told to delete it with its next heartbeat. */
static int apply_purge(mst_master *m, const Cairn__V1__OpPurge *op) {
  mst_ns_handles hs = {0};
  int rc = mst_ns_purge(m->ns, op->file_id, op->now_ms, &hs);
  if (rc < 0) goto done;
  for (size_t i = 0; i < hs.n; i++) {
    mst_chunk_info ci;
    if (mst_chunks_get(m->chunks, hs.v[i], &ci) != 0) continue;
    for (unsigned r = 0; r < ci.nrep; r++) {
      mst_instr in = {.kind = MST_INSTR_DELETE, .handle = ci.handle, .version = 0};
      (void)mst_servers_queue(m->servers, ci.replicas[r], &in);
    }
    mst_chunks_remove(m->chunks, hs.v[i]);
  }
  rc = 0;
done:
  mst_ns_handles_free(&hs);
  return rc;
}

/* The goal of a file applies to its chunks; chunks now below it are queued
 * for repair (over-replication is trimmed by the background scan). */
static int apply_set_goal(mst_master *m, const Cairn__V1__OpSetGoal *op) {
  mst_ns_info info;
  int rc = mst_ns_set_goal(m->ns, op->path, strlen(op->path), op->goal, &info);
  if (rc < 0 || info.type != MST_NS_FILE) return rc < 0 ? rc : 0;
  uint64_t handles[256];
  for (uint64_t first = 0; first < info.chunk_count; first += CMN_ARRAY_LEN(handles)) {
    int n = mst_ns_chunks(m->ns, info.id, first, CMN_ARRAY_LEN(handles), handles);
    for (int i = 0; i < n; i++) {
      if (mst_chunks_set_goal(m->chunks, handles[i], op->goal) == 0)
        (void)mst_chunks_repair_enqueue(m->chunks, handles[i], info.trashed);
    }
  }
  return 0;
}

static int apply_add_chunk(mst_master *m, const Cairn__V1__OpAddChunk *op) {
  mst_ns_info info;
  int rc = mst_ns_stat_id(m->ns, op->file_id, &info);
  if (rc < 0) return rc;
  if (info.type != MST_NS_FILE) return CAIRN_EISDIR;
  if (op->index != info.chunk_count) return CAIRN_EINVAL;
  rc = mst_chunks_insert(m->chunks, op->handle, op->version, op->file_id, op->index, 0, info.goal);
  if (rc < 0) return rc;
  rc = mst_ns_chunk_append(m->ns, op->file_id, op->index, op->handle);
  if (rc < 0) {
    mst_chunks_remove(m->chunks, op->handle);
    return rc;
  }
  if (op->handle >= m->next_handle) m->next_handle = op->handle + 1;
  return 0;
}

static int apply_set_version(mst_master *m, const Cairn__V1__OpSetVersion *op) {
  return mst_chunks_set_version(m->chunks, op->handle, op->version);
}

static int apply_set_size(mst_master *m, const Cairn__V1__OpSetSize *op) {
  return mst_ns_set_size(m->ns, op->file_id, op->size, op->mtime_ms);
}

int mst_apply(mst_master *m, const Cairn__V1__OplogRecord *rec) {
  switch (rec->op_case) {
  case CAIRN__V1__OPLOG_RECORD__OP_MKDIR: return apply_mkdir(m, rec->mkdir);
  case CAIRN__V1__OPLOG_RECORD__OP_CREATE: return apply_create(m, rec->create);
  case CAIRN__V1__OPLOG_RECORD__OP_RENAME: return apply_rename(m, rec->rename);
  case CAIRN__V1__OPLOG_RECORD__OP_DELETE: return apply_delete(m, rec->delete_);
  case CAIRN__V1__OPLOG_RECORD__OP_UNDELETE: return apply_undelete(m, rec->undelete);
  case CAIRN__V1__OPLOG_RECORD__OP_PURGE: return apply_purge(m, rec->purge);
  case CAIRN__V1__OPLOG_RECORD__OP_SET_GOAL: return apply_set_goal(m, rec->set_goal);
  case CAIRN__V1__OPLOG_RECORD__OP_ADD_CHUNK: return apply_add_chunk(m, rec->add_chunk);
  case CAIRN__V1__OPLOG_RECORD__OP_SET_VERSION: return apply_set_version(m, rec->set_version);
  case CAIRN__V1__OPLOG_RECORD__OP_SET_SIZE: return apply_set_size(m, rec->set_size);
  default: return CAIRN_EINVAL;
  }
}

/* ---- checkpoint image ------------------------------------------------------ */

struct ckpt_out {
  mst_ckpt_writer *w;
  uint8_t *buf;
  size_t cap;
};

static int put(struct ckpt_out *o, const Cairn__V1__CheckpointRecord *r) {
  size_t n = cairn__v1__checkpoint_record__get_packed_size(r);
  if (n > o->cap) {
    o->cap = n * 2;
    o->buf = cmn_realloc(o->buf, o->cap);
  }
  cairn__v1__checkpoint_record__pack(r, o->buf);
  return mst_ckpt_write(o->w, o->buf, n);
}

static int put_node(void *arg, const mst_ns_record *rec) {
  struct ckpt_out *o = arg;
  char *name = cmn_strndup(rec->name, rec->name_len);
  char *origin = rec->trash_origin_len ? cmn_strndup(rec->trash_origin, rec->trash_origin_len) : NULL;
  Cairn__V1__CheckpointNode n = CAIRN__V1__CHECKPOINT_NODE__INIT;
  n.file_id = rec->id;
  n.parent_id = rec->parent_id;
  n.name = name;
  n.is_dir = rec->type == MST_NS_DIR;
  n.size = rec->size;
  n.mtime_ms = rec->mtime_ms;
  n.goal = rec->goal;
  n.trashed_ms = rec->trash_ms;
  n.trash_origin = origin ? origin : (char *)"";
  n.n_chunks = rec->chunk_count;
  n.chunks = (uint64_t *)rec->chunks;
  Cairn__V1__CheckpointRecord r = CAIRN__V1__CHECKPOINT_RECORD__INIT;
  r.item_case = CAIRN__V1__CHECKPOINT_RECORD__ITEM_NODE;
  r.node = &n;
  int rc = put(o, &r);
  free(name);
  free(origin);
  return rc;
}

static int put_chunk(void *arg, const mst_chunk_info *ci) {
  Cairn__V1__CheckpointChunk c = CAIRN__V1__CHECKPOINT_CHUNK__INIT;
  c.handle = ci->handle;
  c.version = ci->version;
  c.file_id = ci->file_id;
  c.index = ci->index;
  Cairn__V1__CheckpointRecord r = CAIRN__V1__CHECKPOINT_RECORD__INIT;
  r.item_case = CAIRN__V1__CHECKPOINT_RECORD__ITEM_CHUNK;
  r.chunk = &c;
  return put(arg, &r);
}

/* Runs in the forked child: plain reads of the frozen state, plain file
 * writes; no locks, no threads. */
int mst_checkpoint_write_state(mst_master *m, uint64_t lsn, const char *meta_dir) {
  struct ckpt_out o = {0};
  int rc = mst_ckpt_writer_open(meta_dir, lsn, &o.w);
  if (rc != 0) return rc;
  Cairn__V1__CheckpointHeader h = CAIRN__V1__CHECKPOINT_HEADER__INIT;
  h.cluster_id = m->cluster_id;
  h.next_file_id = m->next_file_id;
  h.next_handle = m->next_handle;
  h.chunk_size = m->cfg.chunk_size;
  h.lsn = lsn;
  h.created_ms = mst_now_ms();
  Cairn__V1__CheckpointRecord r = CAIRN__V1__CHECKPOINT_RECORD__INIT;
  r.item_case = CAIRN__V1__CHECKPOINT_RECORD__ITEM_HEADER;
  r.header = &h;
  rc = put(&o, &r);
  if (rc == 0) rc = mst_ns_iterate(m->ns, put_node, &o);
  if (rc == 0) rc = mst_chunks_iterate(m->chunks, put_chunk, &o);
  if (rc == 0) rc = mst_ckpt_commit(o.w);
  else mst_ckpt_abort(o.w);
  free(o.buf);
  return rc;
}

int mst_checkpoint_load_record(mst_master *m, const void *data, size_t len) {
  Cairn__V1__CheckpointRecord *r = cairn__v1__checkpoint_record__unpack(NULL, len, data);
  if (!r) return CAIRN_ECORRUPT;
  int rc = CAIRN_ECORRUPT;
  switch (r->item_case) {
  case CAIRN__V1__CHECKPOINT_RECORD__ITEM_HEADER: {
    const Cairn__V1__CheckpointHeader *h = r->header;
    if (!cmn_uuid_valid(h->cluster_id) || h->next_file_id < MST_NS_FIRST_ID ||
        h->next_handle < 1 || h->chunk_size < (64u << 10))
      break;
    snprintf(m->cluster_id, sizeof m->cluster_id, "%s", h->cluster_id);
    m->next_file_id = h->next_file_id;
    m->next_handle = h->next_handle;
    m->cfg.chunk_size = h->chunk_size;
    rc = 0;
    break;
  }
  case CAIRN__V1__CHECKPOINT_RECORD__ITEM_NODE: {
    const Cairn__V1__CheckpointNode *n = r->node;
    mst_ns_record rec = {
        .id = n->file_id,
        .parent_id = n->parent_id,
        .type = n->is_dir ? MST_NS_DIR : MST_NS_FILE,
        .name = n->name,
        .name_len = strlen(n->name),
        .size = n->size,
        .mtime_ms = n->mtime_ms,
        .goal = n->goal,
        .trash_ms = n->trashed_ms,
        .trash_origin = n->trash_origin,
        .trash_origin_len = strlen(n->trash_origin),
        .chunks = n->chunks,
        .chunk_count = n->n_chunks,
    };
    rc = mst_ns_insert(m->ns, &rec);
    break;
  }
  case CAIRN__V1__CHECKPOINT_RECORD__ITEM_CHUNK: {
    const Cairn__V1__CheckpointChunk *c = r->chunk;
    mst_ns_info info;
    uint64_t h;
    /* The chunk must be the one its file lists at that index. */
    if (mst_ns_stat_id(m->ns, c->file_id, &info) != 0 || info.type != MST_NS_FILE ||
        mst_ns_chunk_get(m->ns, c->file_id, c->index, &h) != 0 || h != c->handle)
      break;
    rc = mst_chunks_insert(m->chunks, c->handle, c->version, c->file_id, c->index, 0, info.goal);
    if (rc < 0) rc = CAIRN_ECORRUPT;
    break;
  }
  default:
    break;
  }
  cairn__v1__checkpoint_record__free_unpacked(r, NULL);
  return rc;
}
