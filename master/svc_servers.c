/*
 * svc_servers.c - chunkserver RPCs of cairn.v1.Master: RegisterServer,
 * Heartbeat and Drain, and the replica-report rules they share (see
 * mst_servers_svc.h). ReportFailedReplica is in svc_failed.c.
 *
 * Every request is validated whole before the lock is taken, so a bad
 * request changes nothing. The work then runs under the write lock in one
 * stretch, including taking the server's pending instructions, so a reply
 * never misses an instruction queued by its own request (a DELETE for an
 * orphan, a LEASE for an extension). Replies are copies: they are sent
 * after the lock is released.
 */
#include "mst_servers_svc.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_background.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- validation ------------------------------------------------------------ */

static void say(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

/* 1..max bytes of printable ASCII; spaces only when `spaces`. */
static bool text_ok(const char *s, size_t min, size_t max, bool spaces) {
  if (!s) return min == 0;
  size_t n = strnlen(s, max + 1);
  if (n < min || n > max) return false;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c > 0x7e || (c == ' ' && !spaces)) return false;
  }
  return true;
}

static bool id_ok(const char *id) { return text_ok(id, 1, MST_SERVER_ID_MAX, false); }

/* host:port, port 1..65535; the host may be a bracketed IPv6 address. */
static bool hostport_ok(const char *s) {
  if (!text_ok(s, 3, MST_SERVER_ADDR_MAX, false)) return false;
  const char *colon = strrchr(s, ':');
  if (!colon || colon == s || colon[1] == '\0') return false;
  if (s[0] == '[' && colon[-1] != ']') return false;
  if (s[0] != '[' && memchr(s, ':', (size_t)(colon - s))) return false; /* bare IPv6 */
  unsigned long port = 0;
  const char *p = colon + 1;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || p - colon > 5) return false;
    port = port * 10 + (unsigned long)(*p - '0');
  }
  return port >= 1 && port <= 65535;
}

static bool handle_ok(uint64_t h) { return h != 0 && h != UINT64_MAX; }

static int check_reports(const mst_master *m, Cairn__V1__ReplicaReport *const *v, size_t n,
                         char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (!v[i] || !handle_ok(v[i]->handle)) {
      say(err, errlen, "replica report %zu: invalid chunk handle", i);
      return CAIRN_EINVAL;
    }
    if (v[i]->length > m->cfg.chunk_size) {
      say(err, errlen, "replica report %zu (handle %llu): length %llu exceeds the chunk size %llu",
          i, (unsigned long long)v[i]->handle, (unsigned long long)v[i]->length,
          (unsigned long long)m->cfg.chunk_size);
      return CAIRN_EINVAL;
    }
  }
  return 0;
}

static int check_handles(const uint64_t *v, size_t n, const char *what, char *err, size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    if (!handle_ok(v[i])) {
      say(err, errlen, "%s %zu: invalid chunk handle", what, i);
      return CAIRN_EINVAL;
    }
  }
  return 0;
}

static int check_register(const mst_master *m, const Cairn__V1__RegisterRequest *req, char *err,
                          size_t errlen) {
  const Cairn__V1__ServerAddress *a = req->addr;
  if (!a || !id_ok(a->id)) {
    say(err, errlen, "server id must be 1..%d printable characters without spaces",
        MST_SERVER_ID_MAX);
    return CAIRN_EINVAL;
  }
  if (!hostport_ok(a->data_addr)) {
    say(err, errlen, "data_addr must be host:port with a port 1..65535");
    return CAIRN_EINVAL;
  }
  if (!hostport_ok(a->rpc_addr)) {
    say(err, errlen, "rpc_addr must be host:port with a port 1..65535");
    return CAIRN_EINVAL;
  }
  if (!text_ok(a->zone, 0, MST_SERVER_ZONE_MAX, true)) {
    say(err, errlen, "zone must be at most %d printable bytes", MST_SERVER_ZONE_MAX);
    return CAIRN_EINVAL;
  }
  if (req->free_bytes > req->capacity_bytes) {
    say(err, errlen, "free_bytes %llu exceeds capacity_bytes %llu",
        (unsigned long long)req->free_bytes, (unsigned long long)req->capacity_bytes);
    return CAIRN_EINVAL;
  }
  /* A server that has never joined a cluster sends an empty id and learns
   * ours from the reply (it keeps it in its data dirs); one that carries
   * another cluster's data is refused. */
  if (req->cluster_id && req->cluster_id[0] && strcmp(req->cluster_id, m->cluster_id) != 0) {
    say(err, errlen, "server %s belongs to cluster \"%s\", this master serves cluster %s", a->id,
        req->cluster_id ? req->cluster_id : "", m->cluster_id);
    return CAIRN_EAUTH;
  }
  return check_reports(m, req->replicas, req->n_replicas, err, errlen);
}

/* ---- instructions ------------------------------------------------------------ */

struct instr_mem {
  Cairn__V1__ServerInstruction *ins;
  Cairn__V1__ServerInstruction **ptrs;
  Cairn__V1__ServerAddress *src;
  char **strs;
  size_t nstrs;
};

void mst_instr_out_free(mst_instr_out *o) {
  struct instr_mem *mem = o->mem;
  if (mem) {
    for (size_t i = 0; i < mem->nstrs; i++) free(mem->strs[i]);
    free(mem->strs);
    free(mem->ins);
    free(mem->ptrs);
    free(mem->src);
    free(mem);
  }
  memset(o, 0, sizeof *o);
}

static char *keep(struct instr_mem *mem, const char *s) {
  char *c = cmn_strdup(s ? s : "");
  mem->strs[mem->nstrs++] = c;
  return c;
}

int mst_server_take_instructions(mst_master *m, uint16_t idx, size_t cap, mst_instr_out *out) {
  memset(out, 0, sizeof *out);
  if (cap == 0) return 0;
  mst_instr *tmp = cmn_malloc(cap * sizeof *tmp);
  int n = mst_servers_take(m->servers, idx, tmp, cap);
  if (n <= 0) {
    free(tmp);
    return n;
  }
  struct instr_mem *mem = cmn_calloc(1, sizeof *mem);
  mem->ins = cmn_calloc((size_t)n, sizeof *mem->ins);
  mem->ptrs = cmn_calloc((size_t)n, sizeof *mem->ptrs);
  mem->src = cmn_calloc((size_t)n, sizeof *mem->src);
  mem->strs = cmn_calloc((size_t)n * 4, sizeof *mem->strs);
  for (int i = 0; i < n; i++) {
    Cairn__V1__ServerInstruction *in = &mem->ins[i];
    cairn__v1__server_instruction__init(in);
    in->kind = (Cairn__V1__ServerInstruction__Kind)tmp[i].kind;
    in->handle = tmp[i].handle;
    in->version = tmp[i].version;
    if (tmp[i].kind == MST_INSTR_LEASE) in->lease_expiry_ms = tmp[i].lease_expiry_ms;
    if (tmp[i].kind == MST_INSTR_DELETE) cmn_counter_inc(m->m_deletes_sent);
    const mst_server *s =
        tmp[i].kind == MST_INSTR_CLONE ? mst_servers_get(m->servers, tmp[i].source) : NULL;
    if (s) {
      Cairn__V1__ServerAddress *a = &mem->src[i];
      cairn__v1__server_address__init(a);
      a->id = keep(mem, s->id);
      a->data_addr = keep(mem, s->data_addr);
      a->rpc_addr = keep(mem, s->rpc_addr);
      a->zone = keep(mem, s->zone);
      in->source = a;
    }
    mem->ptrs[i] = in;
  }
  free(tmp);
  out->n = (size_t)n;
  out->v = mem->ptrs;
  out->mem = mem;
  return n;
}

/* ---- replica reports ----------------------------------------------------------- */

static bool holds(const mst_chunk_info *ci, uint16_t idx) {
  for (unsigned i = 0; i < ci->nrep; i++)
    if (ci->replicas[i] == idx) return true;
  return false;
}

/* The chunk's version moves up to `version`: applied and logged, so a
 * restart keeps it. The other holders were at the old version: stale. */
static int adopt_version(mst_master *m, const mst_chunk_info *ci, uint16_t idx, uint64_t version) {
  Cairn__V1__OpSetVersion op = CAIRN__V1__OP_SET_VERSION__INIT;
  op.handle = ci->handle;
  op.version = version;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_VERSION;
  rec.set_version = &op;
  int rc = mst_apply(m, &rec);
  if (rc != 0) return rc;
  mst_log_record(m, &rec, NULL, NULL);
  CMN_WARN("report", "newer replica version adopted handle=%llu version=%llu was=%llu server=%s",
           (unsigned long long)ci->handle, (unsigned long long)version,
           (unsigned long long)ci->version, mst_servers_get(m->servers, idx)->id);
  for (unsigned i = 0; i < ci->nrep; i++) {
    if (ci->replicas[i] == idx) continue;
    (void)mst_chunks_remove_replica(m->chunks, ci->handle, ci->replicas[i]);
    (void)mst_bg_queue_delete(m, ci->replicas[i], ci->handle, ci->version);
  }
  (void)mst_chunks_clear_lease(m->chunks, ci->handle); /* its holder is at the old version */
  return 0;
}

int mst_server_report(mst_master *m, uint16_t idx, const Cairn__V1__ReplicaReport *r,
                      int64_t now_ms) {
  if (!r || !handle_ok(r->handle) || r->length > m->cfg.chunk_size) return CAIRN_EINVAL;
  if (!mst_servers_get(m->servers, idx)) return CAIRN_ENOENT;
  uint64_t h = r->handle;
  mst_chunk_info ci;
  if (mst_chunks_get(m->chunks, h, &ci) != 0) {
    (void)mst_bg_queue_delete(m, idx, h, r->version);
    return MST_REPORT_ORPHAN;
  }
  bool in_set = holds(&ci, idx);
  uint16_t move_from = MST_SERVER_NONE;
  int cl = mst_bg_clone_reported(m, idx, h, r->version, !r->corrupt && r->version == ci.version,
                                 &move_from);
  if (cl == 2) {
    if (in_set) (void)mst_chunks_remove_replica(m->chunks, h, idx);
    (void)mst_bg_queue_delete(m, idx, h, r->version);
    mst_bg_check(m, h);
    return MST_REPORT_CLONE_FAILED;
  }
  if (r->corrupt) {
    if (in_set) (void)mst_chunks_remove_replica(m->chunks, h, idx);
    (void)mst_chunks_set_flags(m->chunks, h, MST_CHUNK_F_CORRUPT, true);
    (void)mst_bg_queue_delete(m, idx, h, r->version);
    mst_bg_check(m, h);
    return MST_REPORT_CORRUPT;
  }
  if (r->version < ci.version) {
    if (in_set) (void)mst_chunks_remove_replica(m->chunks, h, idx);
    int outcome = MST_REPORT_STALE;
    if (ci.nrep - (in_set ? 1u : 0u) == 0) {
      /* No current copy is known: keep this one on disk for an operator. */
      (void)mst_chunks_set_flags(m->chunks, h, MST_CHUNK_F_STALE, true);
      CMN_WARN("report", "stale replica kept: no current copy known handle=%llu version=%llu "
               "current=%llu server=%s",
               (unsigned long long)h, (unsigned long long)r->version,
               (unsigned long long)ci.version, mst_servers_get(m->servers, idx)->id);
      outcome = MST_REPORT_KEPT_STALE;
    } else {
      (void)mst_bg_queue_delete(m, idx, h, r->version);
    }
    mst_bg_check(m, h);
    return outcome;
  }
  int outcome = MST_REPORT_ADDED;
  if (r->version > ci.version) {
    int rc = adopt_version(m, &ci, idx, r->version);
    if (rc != 0) return rc;
    outcome = MST_REPORT_ADOPTED;
  }
  int rc = mst_chunks_add_replica(m->chunks, h, idx);
  if (rc < 0) {
    (void)mst_bg_queue_delete(m, idx, h, r->version); /* no room in the set: an extra copy */
    return rc;
  }
  if (r->length > ci.length) (void)mst_chunks_set_length(m->chunks, h, r->length);
  if (ci.flags & MST_CHUNK_F_STALE)
    (void)mst_chunks_set_flags(m->chunks, h, MST_CHUNK_F_STALE, false);
  if (cl == 1) mst_bg_clone_finish(m, h, move_from, now_ms);
  else mst_bg_check(m, h);
  return outcome;
}

/* ---- registration --------------------------------------------------------------- */

struct handle_vec {
  uint64_t *v;
  size_t n, cap;
};

static void collect_lost(void *arg, uint64_t handle, unsigned nrep, unsigned goal) {
  (void)nrep;
  (void)goal;
  struct handle_vec *x = arg;
  if (x->n == x->cap) {
    x->cap = x->cap ? x->cap * 2 : 256;
    x->v = cmn_realloc(x->v, x->cap * sizeof *x->v);
  }
  x->v[x->n++] = handle;
}

int mst_server_register(mst_master *m, const Cairn__V1__RegisterRequest *req, int64_t now_ms,
                        mst_instr_out *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  if (!req) return CAIRN_EINVAL;
  int rc = check_register(m, req, err, errlen);
  if (rc != 0) return rc;
  const Cairn__V1__ServerAddress *a = req->addr;
  mst_server_reg reg = {.id = a->id, .data_addr = a->data_addr, .rpc_addr = a->rpc_addr,
                        .zone = a->zone, .capacity_bytes = req->capacity_bytes,
                        .free_bytes = req->free_bytes};
  struct handle_vec lost = {0};
  pthread_rwlock_wrlock(&m->lock);
  /* A known server restarted: its clones died with it. Release them while
   * its throttle counters still count them. */
  int prev = mst_servers_find(m->servers, a->id);
  if (prev >= 0) (void)mst_bg_server_reset(m, (uint16_t)prev);
  int idx = mst_servers_register(m->servers, &reg, now_ms);
  if (idx < 0) {
    pthread_rwlock_unlock(&m->lock);
    say(err, errlen, "cannot register server %s: %s", a->id, cairn_strerror(idx));
    return idx;
  }
  /* The full report replaces whatever the master believed this server holds. */
  (void)mst_chunks_remove_server(m->chunks, (uint16_t)idx, collect_lost, &lost);
  int counts[MST_REPORT_CLONE_FAILED + 1] = {0};
  for (size_t i = 0; i < req->n_replicas; i++) {
    int o = mst_server_report(m, (uint16_t)idx, req->replicas[i], now_ms);
    if (o >= 0 && o <= MST_REPORT_CLONE_FAILED) counts[o]++;
  }
  for (size_t i = 0; i < lost.n; i++) mst_bg_check(m, lost.v[i]);
  mst_bg_kick(m);
  if (out) (void)mst_server_take_instructions(m, (uint16_t)idx, MST_SVC_MAX_INSTRUCTIONS, out);
  pthread_rwlock_unlock(&m->lock);
  CMN_INFO("register", "replica report id=%s replicas=%zu added=%d adopted=%d orphans=%d "
           "stale=%d kept_stale=%d corrupt=%d",
           a->id, req->n_replicas, counts[MST_REPORT_ADDED], counts[MST_REPORT_ADOPTED],
           counts[MST_REPORT_ORPHAN], counts[MST_REPORT_STALE], counts[MST_REPORT_KEPT_STALE],
           counts[MST_REPORT_CORRUPT]);
  free(lost.v);
  return idx;
}

/* ---- drain --------------------------------------------------------------------- */

struct holder_scan {
  uint16_t idx;
  struct handle_vec hv;
};

static int holder_visit(void *arg, const mst_chunk_info *ci) {
  struct holder_scan *x = arg;
  if (holds(ci, x->idx)) collect_lost(&x->hv, ci->handle, 0, 0);
  return 0;
}

/* Sets the flag and looks at every chunk on the server (caller holds the
 * write lock): with the flag set they fall short by the counting rule. */
static void drain_locked(mst_master *m, uint16_t idx, bool on) {
  (void)mst_servers_set_drain(m->servers, idx, on);
  struct holder_scan x = {.idx = idx};
  (void)mst_chunks_iterate(m->chunks, holder_visit, &x);
  for (size_t i = 0; i < x.hv.n; i++) mst_bg_check(m, x.hv.v[i]);
  free(x.hv.v);
  mst_bg_kick(m);
}

int mst_server_drain(mst_master *m, const char *server_id, bool cancel, char *err,
                     size_t errlen) {
  if (!id_ok(server_id)) {
    say(err, errlen, "server id must be 1..%d printable characters without spaces",
        MST_SERVER_ID_MAX);
    return CAIRN_EINVAL;
  }
  pthread_rwlock_wrlock(&m->lock);
  int idx = mst_servers_find(m->servers, server_id);
  if (idx < 0) {
    pthread_rwlock_unlock(&m->lock);
    say(err, errlen, "no chunkserver with id %s", server_id);
    return CAIRN_ENOENT;
  }
  drain_locked(m, (uint16_t)idx, !cancel);
  pthread_rwlock_unlock(&m->lock);
  return 0;
}

/* ---- heartbeat ------------------------------------------------------------------ */

/* Extends the lease on `handle` when server idx holds it and it is still
 * valid, queuing a LEASE instruction with the new expiry. */
static void extend_lease(mst_master *m, uint16_t idx, uint64_t handle, int64_t now) {
  uint16_t holder;
  mst_chunk_info ci;
  if (mst_chunks_lease_valid(m->chunks, handle, now, &holder) != 1 || holder != idx ||
      mst_chunks_get(m->chunks, handle, &ci) != 0)
    return;
  int64_t expiry = now + m->cfg.lease_ms;
  if (mst_chunks_set_lease(m->chunks, handle, idx, expiry) != 0) return;
  mst_instr in = {.kind = MST_INSTR_LEASE, .handle = handle, .version = ci.version,
                  .lease_expiry_ms = expiry};
  (void)mst_servers_queue(m->servers, idx, &in);
}

int mst_server_heartbeat(mst_master *m, const Cairn__V1__HeartbeatRequest *req, int64_t now_ms,
                         bool *reregister, mst_instr_out *out, char *err, size_t errlen) {
  if (out) memset(out, 0, sizeof *out);
  *reregister = false;
  if (!req || !id_ok(req->server_id)) {
    say(err, errlen, "server id must be 1..%d printable characters without spaces",
        MST_SERVER_ID_MAX);
    return CAIRN_EINVAL;
  }
  if (req->free_bytes > req->capacity_bytes) {
    say(err, errlen, "free_bytes %llu exceeds capacity_bytes %llu",
        (unsigned long long)req->free_bytes, (unsigned long long)req->capacity_bytes);
    return CAIRN_EINVAL;
  }
  int rc = check_reports(m, req->added, req->n_added, err, errlen);
  if (rc == 0) rc = check_handles(req->removed, req->n_removed, "removed handle", err, errlen);
  if (rc == 0)
    rc = check_handles(req->lease_extensions, req->n_lease_extensions, "lease extension", err,
                       errlen);
  if (rc != 0) return rc;

  pthread_rwlock_wrlock(&m->lock);
  int idx = mst_servers_find(m->servers, req->server_id);
  mst_server_hb hb = {.capacity_bytes = req->capacity_bytes, .free_bytes = req->free_bytes,
                      .chunk_count = req->chunk_count, .load = req->load,
                      .read_only = req->read_only};
  rc = idx < 0 ? CAIRN_ENOENT : mst_servers_heartbeat(m->servers, (uint16_t)idx, &hb, now_ms);
  if (rc == CAIRN_ENOENT || rc == CAIRN_ESTALE) {
    /* Unknown, or declared dead: its replicas left the sets; only a full
     * report can bring them back. */
    pthread_rwlock_unlock(&m->lock);
    *reregister = true;
    return 0;
  }
  if (rc != 0) {
    pthread_rwlock_unlock(&m->lock);
    say(err, errlen, "heartbeat refused: %s", cairn_strerror(rc));
    return rc;
  }
  uint16_t i16 = (uint16_t)idx;
  if (req->draining && !mst_servers_get(m->servers, i16)->draining) {
    CMN_INFO("heartbeat", "server asks to be drained id=%s", req->server_id);
    drain_locked(m, i16, true);
  }
  for (size_t i = 0; i < req->n_added; i++) (void)mst_server_report(m, i16, req->added[i], now_ms);
  for (size_t i = 0; i < req->n_removed; i++) {
    if (mst_chunks_remove_replica(m->chunks, req->removed[i], i16) == 1)
      mst_bg_check(m, req->removed[i]);
  }
  for (size_t i = 0; i < req->n_lease_extensions; i++)
    extend_lease(m, i16, req->lease_extensions[i], now_ms);
  if (out) (void)mst_server_take_instructions(m, i16, MST_SVC_MAX_INSTRUCTIONS, out);
  pthread_rwlock_unlock(&m->lock);
  return 0;
}

/* ---- RPC glue ------------------------------------------------------------------- */

void mst_svc_register(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  char err[256] = "";
  mst_instr_out out;
  int rc = mst_server_register(m, (const Cairn__V1__RegisterRequest *)msg, mst_now_ms(), &out,
                               err, sizeof err);
  if (rc < 0) {
    cmn_rpc_fail(call, rc, "register: %s", err[0] ? err : cairn_strerror(rc));
    return;
  }
  Cairn__V1__RegisterReply r = CAIRN__V1__REGISTER_REPLY__INIT;
  r.heartbeat_interval_ms = (uint32_t)m->cfg.heartbeat_interval_ms;
  r.chunk_size = m->cfg.chunk_size;
  r.cluster_id = m->cluster_id;
  r.n_instructions = out.n;
  r.instructions = out.v;
  cmn_rpc_reply(call, &r.base);
  mst_instr_out_free(&out);
}

void mst_svc_heartbeat(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  char err[256] = "";
  mst_instr_out out;
  bool rereg = false;
  int rc = mst_server_heartbeat(m, (const Cairn__V1__HeartbeatRequest *)msg, mst_now_ms(), &rereg,
                                &out, err, sizeof err);
  if (rc < 0) {
    cmn_rpc_fail(call, rc, "heartbeat: %s", err[0] ? err : cairn_strerror(rc));
    return;
  }
  Cairn__V1__HeartbeatReply r = CAIRN__V1__HEARTBEAT_REPLY__INIT;
  r.reregister = rereg;
  r.n_instructions = out.n;
  r.instructions = out.v;
  cmn_rpc_reply(call, &r.base);
  mst_instr_out_free(&out);
}

void mst_svc_drain(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  mst_master *m = ctx;
  const Cairn__V1__DrainRequest *req = (const Cairn__V1__DrainRequest *)msg;
  char err[256] = "";
  int rc = mst_server_drain(m, req->server_id, req->cancel, err, sizeof err);
  if (rc < 0) {
    cmn_rpc_fail(call, rc, "drain: %s", err[0] ? err : cairn_strerror(rc));
    return;
  }
  CMN_INFO("drain", "%s id=%s", req->cancel ? "cancelled" : "requested", req->server_id);
  Cairn__V1__Empty r = CAIRN__V1__EMPTY__INIT;
  cmn_rpc_reply(call, &r.base);
}
