/*
 * svc_ns.c - namespace RPCs of cairn.v1.Master: mkdir, create, stat, list,
 * rename, delete, undelete, set goal.
 *
 * A mutation runs as: validate the request, build the operation-log record
 * with the ids and time the master chooses, apply it under the write lock,
 * append it to the log (still under the lock, so log order is apply order),
 * and answer from the log's flusher thread once the record is durable. A
 * request that fails validation or does not apply changes nothing and is
 * answered at once.
 */
#include "mst_master.h"
#include "svc_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <stdlib.h>
#include <string.h>

/* ---- deferred replies ---------------------------------------------------- */

mst_deferred *mst_deferred_new(cmn_rpc_call *call) {
  mst_deferred *d = cmn_calloc(1, sizeof *d);
  d->call = call;
  return d;
}

static void deferred_free(mst_deferred *d) {
  cmn_buf_free(&d->path);
  cmn_buf_free(&d->path2);
  free(d);
}

/* Runs on the log's flusher thread once the record is durable. */
void mst_deferred_send(void *arg, int status) {
  mst_deferred *d = arg;
  if (status != 0) cmn_rpc_fail(d->call, status, "metadata log failed");
  else cmn_rpc_reply(d->call, d->msg);
  deferred_free(d);
}

void mst_deferred_fail(mst_deferred *d, int code, const char *what) {
  cmn_rpc_fail(d->call, code, "%s: %s", what, cairn_strerror(code));
  deferred_free(d);
}

/* ---- helpers ------------------------------------------------------------- */

/* Fill a FileInfo from a namespace node; `path` (NUL-terminated) must stay
 * valid as long as `fi` is used. */
void mst_fill_info(Cairn__V1__FileInfo *fi, const mst_ns_info *in, const char *path) {
  cairn__v1__file_info__init(fi);
  fi->path = (char *)path;
  fi->file_id = in->id;
  fi->type = in->type == MST_NS_DIR ? CAIRN__V1__FILE_TYPE__FILE_TYPE_DIR
                                    : CAIRN__V1__FILE_TYPE__FILE_TYPE_FILE;
  fi->size = in->size;
  fi->mtime_ms = in->mtime_ms;
  fi->goal = in->goal;
  fi->chunk_count = in->chunk_count;
  fi->trashed_ms = in->trashed ? in->trashed_ms : 0;
}

/* Copy a request path into a NUL-terminated buffer after validating it: a
 * path with a NUL inside, "..", empty components or too long is refused
 * here, before anything is logged. */
static int take_path(const ProtobufCBinaryData *p, cmn_buf *out) {
  int rc = mst_ns_path_check((const char *)p->data, p->len);
  if (rc != 0) return rc;
  cmn_buf_append(out, p->data, p->len);
  return 0;
}

/* Answer a FileInfoReply for node `id` after the record is durable. Caller
 * holds the lock (any mode). */
static void defer_info(mst_master *m, mst_deferred *d, uint64_t id) {
  mst_ns_info info;
  d->path.len = 0;
  if (mst_ns_stat_id(m->ns, id, &info) != 0 || mst_ns_path(m->ns, id, &d->path) != 0) {
    memset(&info, 0, sizeof info);
  }
  if (!d->path.data) cmn_buf_append(&d->path, "", 0);
  mst_fill_info(&d->info, &info, d->path.data);
  cairn__v1__file_info_reply__init(&d->u.info);
  d->u.info.info = &d->info;
  d->msg = &d->u.info.base;
}

/* Apply `rec` and log it under the write lock; on success `then(m, d)`
 * (still under the lock) prepares the reply, which is sent once durable. */
static void mutate(mst_master *m, mst_deferred *d, Cairn__V1__OplogRecord *rec,
                   void (*then)(mst_master *, mst_deferred *, const Cairn__V1__OplogRecord *),
                   const char *what) {
  mst_mutate_with_ids(m, d, rec, NULL, then, what);
}

/* ---- mkdir / create ------------------------------------------------------ */

static void after_mkdir(mst_master *m, mst_deferred *d, const Cairn__V1__OplogRecord *rec) {
  mst_ns_info info;
  if (mst_ns_stat(m->ns, rec->mkdir->path, strlen(rec->mkdir->path), &info) == 0)
    defer_info(m, d, info.id);
}

void mst_svc_mkdir(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__MkdirRequest *req = (const Cairn__V1__MkdirRequest *)msg;
  mst_deferred *d = mst_deferred_new(call);
  int rc = take_path(&req->path, &d->path2);
  if (rc != 0) {
    mst_deferred_fail(d, rc, "mkdir");
    return;
  }
  Cairn__V1__OpMkdir op = CAIRN__V1__OP_MKDIR__INIT;
  op.path = d->path2.data;
  op.parents = req->parents;
  op.now_ms = mst_now_ms();
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_MKDIR;
  rec.mkdir = &op;
  mst_mutate_with_ids(m, d, &rec, &op.first_id, after_mkdir, "mkdir");
}

static void after_create(mst_master *m, mst_deferred *d, const Cairn__V1__OplogRecord *rec) {
  mst_ns_info info;
  if (mst_ns_stat(m->ns, rec->create->path, strlen(rec->create->path), &info) == 0)
    defer_info(m, d, info.id);
  cmn_counter_inc(m->m_creates);
}

void mst_svc_create(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__CreateRequest *req = (const Cairn__V1__CreateRequest *)msg;
  mst_deferred *d = mst_deferred_new(call);
  int rc = take_path(&req->path, &d->path2);
  if (rc == 0 && req->goal > MST_NS_GOAL_MAX) rc = CAIRN_EINVAL;
  if (rc != 0) {
    mst_deferred_fail(d, rc, "create");
    return;
  }
  Cairn__V1__OpCreate op = CAIRN__V1__OP_CREATE__INIT;
  op.path = d->path2.data;
  op.goal = req->goal;
  op.parents = req->parents;
  op.exclusive = req->exclusive;
  op.now_ms = mst_now_ms();
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_CREATE;
  rec.create = &op;
  mst_mutate_with_ids(m, d, &rec, &op.first_id, after_create, "create");
}

/* Apply and log `rec` under the write lock, answering once durable. For
 * records that create nodes (`first_id` given) the first new id is taken
 * from the master's counter inside the same critical section, and a create
 * of an existing file (non-exclusive) that used no id is answered without a
 * log record: nothing changed. */
void mst_mutate_with_ids(mst_master *m, mst_deferred *d, Cairn__V1__OplogRecord *rec,
                         uint64_t *first_id,
                         void (*then)(mst_master *, mst_deferred *, const Cairn__V1__OplogRecord *),
                         const char *what) {
  pthread_rwlock_wrlock(&m->lock);
  if (first_id) *first_id = m->next_file_id;
  uint64_t before = m->next_file_id;
  int rc = mst_apply(m, rec);
  if (rc != 0) {
    pthread_rwlock_unlock(&m->lock);
    mst_deferred_fail(d, rc, what);
    return;
  }
  then(m, d, rec);
  if (first_id && m->next_file_id == before) { /* nothing new: no record needed */
    pthread_rwlock_unlock(&m->lock);
    mst_deferred_send(d, 0);
    return;
  }
  mst_log_record(m, rec, mst_deferred_send, d);
  pthread_rwlock_unlock(&m->lock);
}

/* ---- reads ---------------------------------------------------------------- */

void mst_svc_stat(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__PathRequest *req = (const Cairn__V1__PathRequest *)msg;
  mst_ns_info info;
  cmn_buf path = {0};
  pthread_rwlock_rdlock(&m->lock);
  int rc = mst_ns_stat(m->ns, (const char *)req->path.data, req->path.len, &info);
  if (rc == 0) rc = mst_ns_path(m->ns, info.id, &path);
  pthread_rwlock_unlock(&m->lock);
  if (rc != 0) {
    cmn_rpc_fail(call, rc, "stat: %s", cairn_strerror(rc));
    cmn_buf_free(&path);
    return;
  }
  if (!path.data) cmn_buf_append(&path, "", 0);
  Cairn__V1__FileInfo fi;
  mst_fill_info(&fi, &info, path.data);
  Cairn__V1__FileInfoReply r = CAIRN__V1__FILE_INFO_REPLY__INIT;
  r.info = &fi;
  cmn_rpc_reply(call, &r.base);
  cmn_buf_free(&path);
}

void mst_svc_list(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__ListRequest *req = (const Cairn__V1__ListRequest *)msg;
  size_t limit = req->limit ? req->limit : (size_t)m->cfg.list_limit;
  if (limit > (size_t)m->cfg.list_limit) limit = (size_t)m->cfg.list_limit;
  mst_ns_info *entries = cmn_malloc(limit * sizeof *entries);
  bool more = false;
  /* Names point into the namespace: copy them while the lock is held. */
  cmn_buf names = {0};
  size_t *offs = NULL;
  pthread_rwlock_rdlock(&m->lock);
  int n = mst_ns_list(m->ns, (const char *)req->path.data, req->path.len,
                      (const char *)req->start_after.data, req->start_after.len, entries, limit,
                      &more);
  if (n > 0) {
    offs = cmn_malloc((size_t)n * sizeof *offs);
    for (int i = 0; i < n; i++) {
      offs[i] = names.len;
      cmn_buf_append(&names, entries[i].name, entries[i].name_len);
      cmn_buf_append(&names, "", 1);
    }
  }
  pthread_rwlock_unlock(&m->lock);
  if (n < 0) {
    cmn_rpc_fail(call, n, "list: %s", cairn_strerror(n));
    goto done;
  }
  Cairn__V1__FileInfo *fis = cmn_calloc((size_t)n + 1, sizeof *fis);
  Cairn__V1__FileInfo **ptrs = cmn_calloc((size_t)n + 1, sizeof *ptrs);
  for (int i = 0; i < n; i++) {
    mst_fill_info(&fis[i], &entries[i], names.data + offs[i]);
    ptrs[i] = &fis[i];
  }
  Cairn__V1__ListReply r = CAIRN__V1__LIST_REPLY__INIT;
  r.n_entries = (size_t)n;
  r.entries = ptrs;
  r.more = more;
  cmn_rpc_reply(call, &r.base);
  free(fis);
  free(ptrs);
done:
  free(offs);
  free(entries);
  cmn_buf_free(&names);
}

/* ---- rename / delete / undelete / set goal ------------------------------ */

static void after_empty(mst_master *m, mst_deferred *d, const Cairn__V1__OplogRecord *rec) {
  (void)m;
  (void)rec;
  cairn__v1__empty__init(&d->u.empty);
  d->msg = &d->u.empty.base;
}

void mst_svc_rename(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__RenameRequest *req = (const Cairn__V1__RenameRequest *)msg;
  mst_deferred *d = mst_deferred_new(call);
  int rc = take_path(&req->from, &d->path);
  if (rc == 0) rc = take_path(&req->to, &d->path2);
  if (rc != 0) {
    mst_deferred_fail(d, rc, "rename");
    return;
  }
  Cairn__V1__OpRename op = CAIRN__V1__OP_RENAME__INIT;
  op.from = d->path.data;
  op.to = d->path2.data;
  op.overwrite = req->overwrite;
  op.now_ms = mst_now_ms();
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_RENAME;
  rec.rename = &op;
  mutate(m, d, &rec, after_empty, "rename");
}

static void after_delete(mst_master *m, mst_deferred *d, const Cairn__V1__OplogRecord *rec) {
  (void)rec;
  /* mst_apply leaves the new trash entry's id in m->last_trash_id. */
  d->path2.len = 0;
  if (mst_ns_path(m->ns, m->last_trash_id, &d->path2) != 0 || !d->path2.data)
    cmn_buf_append(&d->path2, "", 0);
  cairn__v1__delete_reply__init(&d->u.del);
  d->u.del.trash_path = d->path2.data;
  d->msg = &d->u.del.base;
}

void mst_svc_delete(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__DeleteRequest *req = (const Cairn__V1__DeleteRequest *)msg;
  mst_deferred *d = mst_deferred_new(call);
  int rc = take_path(&req->path, &d->path);
  if (rc != 0) {
    mst_deferred_fail(d, rc, "delete");
    return;
  }
  Cairn__V1__OpDelete op = CAIRN__V1__OP_DELETE__INIT;
  op.path = d->path.data;
  op.recursive = req->recursive;
  op.now_ms = mst_now_ms();
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_DELETE;
  rec.delete_ = &op;
  mutate(m, d, &rec, after_delete, "delete");
}

static void after_undelete(mst_master *m, mst_deferred *d, const Cairn__V1__OplogRecord *rec) {
  (void)rec;
  defer_info(m, d, m->last_restored_id);
}

void mst_svc_undelete(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__UndeleteRequest *req = (const Cairn__V1__UndeleteRequest *)msg;
  mst_deferred *d = mst_deferred_new(call);
  int rc = take_path(&req->trash_path, &d->path);
  if (rc == 0 && req->restore_to.len > 0) rc = take_path(&req->restore_to, &d->path2);
  if (rc != 0) {
    mst_deferred_fail(d, rc, "undelete");
    return;
  }
  Cairn__V1__OpUndelete op = CAIRN__V1__OP_UNDELETE__INIT;
  op.trash_path = d->path.data;
  op.restore_to = d->path2.data ? d->path2.data : "";
  op.now_ms = mst_now_ms();
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_UNDELETE;
  rec.undelete = &op;
  /* The reply's path buffers are reused by defer_info: keep copies in op. */
  char *tp = cmn_strdup(op.trash_path), *rt = cmn_strdup(op.restore_to);
  op.trash_path = tp;
  op.restore_to = rt;
  mutate(m, d, &rec, after_undelete, "undelete");
  free(tp);
  free(rt);
}

static void after_set_goal(mst_master *m, mst_deferred *d, const Cairn__V1__OplogRecord *rec) {
  mst_ns_info info;
  if (mst_ns_stat(m->ns, rec->set_goal->path, strlen(rec->set_goal->path), &info) == 0)
    defer_info(m, d, info.id);
}

void mst_svc_set_goal(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__SetGoalRequest *req = (const Cairn__V1__SetGoalRequest *)msg;
  mst_deferred *d = mst_deferred_new(call);
  int rc = take_path(&req->path, &d->path2);
  if (rc == 0 && (req->goal < MST_NS_GOAL_MIN || req->goal > MST_NS_GOAL_MAX)) rc = CAIRN_EINVAL;
  if (rc != 0) {
    mst_deferred_fail(d, rc, "set goal");
    return;
  }
  Cairn__V1__OpSetGoal op = CAIRN__V1__OP_SET_GOAL__INIT;
  op.path = d->path2.data;
  op.goal = req->goal;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_GOAL;
  rec.set_goal = &op;
  mutate(m, d, &rec, after_set_goal, "set goal");
}
