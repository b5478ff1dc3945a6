/*
 * service.c - cairn.v1.Chunkserver handlers: decode nothing themselves
 * (the RPC layer did), call the 2PC layer, answer. See cs_service.h for
 * which handlers run on threads of their own and why.
 */
#include "cs_service.h"

#include "cairn_error.h"
#include "chunkserver.pb-c.h"
#include "cmn_util.h"
#include "cs_server.h"
#include "cs_twopc.h"

#include <pthread.h>
#include <stdlib.h>

typedef void (*job_fn)(cs_server *s, cmn_rpc_call *call, const ProtobufCMessage *req);

struct job {
  job_fn run;
  cs_server *s;
  cmn_rpc_call *call;
  const ProtobufCMessage *req; /* owned by the call: valid until it is answered */
};

static void *job_main(void *arg) {
  struct job *j = arg;
  j->run(j->s, j->call, j->req); /* answers; nothing of the server is touched after */
  free(j);
  return NULL;
}

/* Run `run` on a detached thread that answers the call; inline when no
 * thread can be made (slow, but answered rather than dropped). */
static void offload(job_fn run, cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx) {
  struct job *j = cmn_malloc(sizeof *j);
  *j = (struct job){run, ctx, call, req};
  pthread_t th;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int e = pthread_create(&th, &at, job_main, j);
  pthread_attr_destroy(&at);
  if (e != 0) job_main(j);
}

static void answer_empty(cmn_rpc_call *call, int rc, const char *what, const char *err) {
  if (rc != 0) {
    cmn_rpc_fail(call, rc, "%s: %s", what, err && err[0] ? err : cairn_strerror(rc));
    return;
  }
  Cairn__V1__Empty e = CAIRN__V1__EMPTY__INIT;
  cmn_rpc_reply(call, &e.base);
}

/* ---- Write / Append ---- */

static void write_or_append(cs_server *s, cmn_rpc_call *call, const ProtobufCMessage *msg,
                            bool append) {
  char err[256] = "";
  cs_twopc_result res = {0};
  int rc = cs_twopc_write(s, (const Cairn__V1__WriteRequest *)msg, append, &res, err, sizeof err);
  if (rc != 0) {
    cmn_rpc_fail(call, rc, "%s: %s", append ? "append" : "write", err[0] ? err : cairn_strerror(rc));
    return;
  }
  Cairn__V1__WriteReply r = CAIRN__V1__WRITE_REPLY__INIT;
  r.serial = res.serial;
  r.offset = res.offset;
  r.committed = res.committed;
  cmn_rpc_reply(call, &r.base);
}

static void run_write(cs_server *s, cmn_rpc_call *call, const ProtobufCMessage *msg) {
  write_or_append(s, call, msg, false);
}

static void run_append(cs_server *s, cmn_rpc_call *call, const ProtobufCMessage *msg) {
  write_or_append(s, call, msg, true);
}

static void h_write(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  offload(run_write, call, msg, ctx);
}

static void h_append(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  offload(run_append, call, msg, ctx);
}

/* ---- participant ---- */

/* A vote is always an answer, never an RPC error: the reason travels in it. */
static void run_prepare(cs_server *s, cmn_rpc_call *call, const ProtobufCMessage *msg) {
  int rc = cs_twopc_prepare(s, (const Cairn__V1__PrepareRequest *)msg, NULL, 0);
  Cairn__V1__PrepareReply r = CAIRN__V1__PREPARE_REPLY__INIT;
  r.vote_yes = rc == 0;
  r.error = rc;
  cmn_rpc_reply(call, &r.base);
}

static void h_prepare(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  offload(run_prepare, call, msg, ctx);
}

static void h_commit(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  const Cairn__V1__DecideRequest *q = (const Cairn__V1__DecideRequest *)msg;
  answer_empty(call, cs_twopc_commit(ctx, q->handle, q->version, q->serial), "commit", NULL);
}

static void h_abort(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  const Cairn__V1__DecideRequest *q = (const Cairn__V1__DecideRequest *)msg;
  answer_empty(call, cs_twopc_abort(ctx, q->handle, q->version, q->serial), "abort", NULL);
}

static void h_outcome(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  const Cairn__V1__OutcomeRequest *q = (const Cairn__V1__OutcomeRequest *)msg;
  cs_server *s = ctx;
  /* Leave the caller time to hear the answer; never wait longer than a 2PC step. */
  int64_t wait = cmn_rpc_call_remaining_ms(call) / 2;
  int64_t cap = s->cfg.rpc_timeout_ms > 0 ? s->cfg.rpc_timeout_ms : 5000;
  if (wait > cap) wait = cap;
  int o = cs_twopc_outcome(s, q->handle, q->version, q->serial, wait);
  if (o < 0) {
    cmn_rpc_fail(call, o, "outcome: %s", cairn_strerror(o));
    return;
  }
  Cairn__V1__OutcomeReply r = CAIRN__V1__OUTCOME_REPLY__INIT;
  r.outcome = (Cairn__V1__OutcomeReply__Outcome)o;
  cmn_rpc_reply(call, &r.base);
}

/* ---- master and admin ---- */

static void run_set_version(cs_server *s, cmn_rpc_call *call, const ProtobufCMessage *msg) {
  char err[256] = "";
  int rc = cs_twopc_set_version(s, (const Cairn__V1__SetVersionRequest *)msg, err, sizeof err);
  answer_empty(call, rc, "set version", err);
}

static void h_set_version(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  offload(run_set_version, call, msg, ctx);
}

static void h_chunk_info(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  const Cairn__V1__ChunkInfoRequest *q = (const Cairn__V1__ChunkInfoRequest *)msg;
  cs_server *s = ctx;
  cs_store_replica info;
  int rc = q->handle == 0 || q->handle == UINT64_MAX ? CAIRN_EINVAL
                                                     : cs_store_info(s->store, q->handle, &info);
  if (rc != 0) {
    cmn_rpc_fail(call, rc, "chunk info: %s", cairn_strerror(rc));
    return;
  }
  Cairn__V1__ReplicaReport rep = CAIRN__V1__REPLICA_REPORT__INIT;
  rep.handle = info.handle;
  rep.version = info.version;
  rep.length = info.length;
  rep.corrupt = info.corrupt;
  Cairn__V1__ChunkInfoReply r = CAIRN__V1__CHUNK_INFO_REPLY__INIT;
  r.replica = &rep;
  cmn_rpc_reply(call, &r.base);
}

const cmn_rpc_method cs_methods[] = {
    {"Write", h_write},     {"Append", h_append},           {"Prepare", h_prepare},
    {"Commit", h_commit},   {"Abort", h_abort},             {"Outcome", h_outcome},
    {"SetVersion", h_set_version}, {"ChunkInfo", h_chunk_info},
};
const size_t cs_nmethods = sizeof cs_methods / sizeof cs_methods[0];
