/*
 * twopc_test_util.h - a small cluster in one process for the 2PC tests:
 * a stand-in master that only records ReportFailedReplica, and N
 * chunkserver contexts built by hand (temp store with fault injection,
 * push buffer, leases, RPC server on 127.0.0.1, peer pool), which can be
 * "crashed" (store fault) and restarted on the same port.
 */
#ifndef TWOPC_TEST_UTIL_H
#define TWOPC_TEST_UTIL_H

#include "test_main.h"

#include "cairn_error.h"
#include "chunkserver.pb-c.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_metrics.h"
#include "cmn_rpc.h"
#include "cmn_util.h"
#include "test_tmp.h"
#include "cs_leases.h"
#include "cs_pushbuf.h"
#include "cs_server.h"
#include "cs_service.h"
#include "cs_store.h"
#include "cs_twopc.h"
#include "master.pb-c.h"

#include <dirent.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TP_SECRET "twopc-test-secret-0123456789"
#define TP_CHUNK (1u << 20)
#define TP_MAX_NODES 4
#define TP_RPC_TIMEOUT_MS 2000
#define TP_HANDLE 0x1234u

/* ---- temp dirs ---- */

static inline void tp_rm_rf(char *dir) { cairn_test_rm_rf(dir); }
static inline char *tp_tmpdir(void) { return cairn_test_tmpdir("2pc"); }

/* ---- the stand-in master ---- */

typedef struct tp_report {
  uint64_t handle, version;
  char failed[80], reporter[80];
  int error;
} tp_report;

typedef struct tp_master {
  cmn_rpc_server *srv;
  char addr[64];
  void *cluster; /* the tp_cluster, to push versions to the survivors */
  pthread_mutex_t mu;
  int fail_with; /* < 0: refuse every report with this code */
  size_t n;
  tp_report calls[32];
} tp_master;

static inline void tp_master_push(void *cluster, const Cairn__V1__ReportFailedReplicaRequest *q);

/* Like the real master: record, bump the version on the survivors (the
 * reporter first, with its lease), then answer. */
static inline void tp_master_report(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  tp_master *m = ctx;
  const Cairn__V1__ReportFailedReplicaRequest *q =
      (const Cairn__V1__ReportFailedReplicaRequest *)msg;
  pthread_mutex_lock(&m->mu);
  int fail = m->fail_with;
  if (!fail && m->n < 32) {
    tp_report *r = &m->calls[m->n++];
    r->handle = q->handle;
    r->version = q->version;
    snprintf(r->failed, sizeof r->failed, "%s", q->failed_server_id);
    snprintf(r->reporter, sizeof r->reporter, "%s", q->reporter_id);
    r->error = q->error;
  }
  pthread_mutex_unlock(&m->mu);
  if (fail) {
    cmn_rpc_fail(call, fail, "stand-in master refuses");
    return;
  }
  tp_master_push(m->cluster, q);
  Cairn__V1__ReportFailedReplicaReply rep = CAIRN__V1__REPORT_FAILED_REPLICA_REPLY__INIT;
  rep.new_version = q->version + 1;
  cmn_rpc_reply(call, &rep.base);
}

static const cmn_rpc_method tp_master_methods[] = {{"ReportFailedReplica", tp_master_report}};

static inline size_t tp_master_reports(tp_master *m, tp_report *out, size_t cap) {
  pthread_mutex_lock(&m->mu);
  size_t n = m->n;
  for (size_t i = 0; i < n && i < cap; i++) out[i] = m->calls[i];
  pthread_mutex_unlock(&m->mu);
  return n;
}

/* ---- chunkserver nodes ---- */

/* Store fault hook: crash at the first step named crash_step, or fail
 * steps named err_step with err_code, or stall steps named slow_step for
 * slow_ms, while armed. */
typedef struct tp_fault {
  atomic_int armed;
  const char *crash_step;
  const char *err_step;
  int err_code;
  const char *slow_step;
  int slow_ms;
  atomic_int fired;
} tp_fault;

static inline int tp_fault_fn(void *arg, const char *step) {
  tp_fault *f = arg;
  if (!atomic_load(&f->armed)) return 0;
  if (f->slow_step && strcmp(step, f->slow_step) == 0) {
    atomic_store(&f->fired, 1);
    usleep((useconds_t)f->slow_ms * 1000);
    return 0;
  }
  if (f->crash_step && strcmp(step, f->crash_step) == 0) {
    atomic_store(&f->armed, 0);
    atomic_store(&f->fired, 1);
    return CS_STORE_FAULT_CRASH;
  }
  if (f->err_step && strcmp(step, f->err_step) == 0) {
    atomic_store(&f->fired, 1);
    return f->err_code;
  }
  return 0;
}

typedef struct tp_node {
  cs_server s;
  cmn_metrics *metrics; /* survives restarts, as the process's would not: fine for counting */
  char *dir;
  tp_fault fault;
  int port;
  bool up;
} tp_node;

typedef struct tp_cluster {
  tp_master master;
  tp_node nodes[TP_MAX_NODES];
  size_t n;
  cmn_rpc_channel *client[TP_MAX_NODES]; /* "the client's" channel to each node */
  int64_t undecided_ms;
} tp_cluster;

static inline void tp_node_open_store(tp_node *nd) {
  cs_store_opts o = {.chunk_size = TP_CHUNK, .reserve_bytes = 4096, .fault = tp_fault_fn,
                     .fault_arg = &nd->fault};
  const char *d = nd->dir;
  assert_int_equal(cs_store_open(&d, 1, &o, &nd->s.store), 0);
}

/* Bring a node up on its store (opened already), on `port` (0: any). */
static inline void tp_node_up(tp_cluster *c, tp_node *nd) {
  cs_server *s = &nd->s;
  s->id = cs_store_server_id(s->store);
  s->cfg.rpc_timeout_ms = TP_RPC_TIMEOUT_MS;
  s->metrics = nd->metrics;
  assert_int_equal(cs_pushbuf_new(64u << 20, 60000, &s->push), 0);
  cs_twopc_opts o = {.undecided_ms = c->undecided_ms, .retry_ms = 50};
  assert_int_equal(cs_twopc_init(s, &o), 0);
  cmn_rpc_client_config cc = {.secret = TP_SECRET};
  assert_int_equal(cmn_rpc_pool_create(&cc, &s->peers), 0);
  assert_int_equal(cmn_rpc_channel_open(c->master.addr, &cc, &s->master), 0);
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", nd->port);
  cmn_rpc_server_config sc = {.addr = addr, .secret = TP_SECRET, .workers = 4,
                              .service = &cairn__v1__chunkserver__descriptor,
                              .methods = cs_methods, .n_methods = cs_nmethods, .ctx = s};
  int rc = -1;
  for (int i = 0; i < 50 && rc != 0; i++) { /* the old port may linger a moment */
    rc = cmn_rpc_server_start(&sc, &s->rpc);
    if (rc != 0) usleep(100 * 1000);
  }
  assert_int_equal(rc, 0);
  nd->port = cmn_rpc_server_port(s->rpc);
  snprintf(s->rpc_addr, sizeof s->rpc_addr, "127.0.0.1:%d", nd->port);
  snprintf(s->data_addr, sizeof s->data_addr, "127.0.0.1:1");
  nd->up = true;
}

/* Take a node down as a crash would (in-memory state lost), store closed. */
static inline void tp_node_down(tp_node *nd) {
  if (!nd->up) return;
  cs_server *s = &nd->s;
  cs_twopc_stop(s);
  cmn_rpc_server_stop(s->rpc);
  s->rpc = NULL;
  cs_twopc_fini(s);
  cmn_rpc_pool_destroy(s->peers);
  s->peers = NULL;
  cmn_rpc_channel_close(s->master);
  s->master = NULL;
  cs_pushbuf_free(s->push);
  s->push = NULL;
  cs_store_close(s->store);
  s->store = NULL;
  nd->up = false;
}

/* Crash and come back on the same port, store re-opened without faults. */
static inline void tp_node_restart(tp_cluster *c, tp_node *nd) {
  tp_node_down(nd);
  atomic_store(&nd->fault.armed, 0);
  tp_node_open_store(nd);
  tp_node_up(c, nd);
}

static inline tp_cluster *tp_cluster_new(size_t n, int64_t undecided_ms) {
  tp_cluster *c = cmn_calloc(1, sizeof *c);
  c->n = n;
  c->undecided_ms = undecided_ms;
  c->master.cluster = c;
  pthread_mutex_init(&c->master.mu, NULL);
  cmn_rpc_server_config mc = {.addr = "127.0.0.1:0", .secret = TP_SECRET, .workers = 2,
                              .service = &cairn__v1__master__descriptor,
                              .methods = tp_master_methods, .n_methods = 1, .ctx = &c->master};
  assert_int_equal(cmn_rpc_server_start(&mc, &c->master.srv), 0);
  snprintf(c->master.addr, sizeof c->master.addr, "127.0.0.1:%d",
           cmn_rpc_server_port(c->master.srv));
  cmn_rpc_client_config cc = {.secret = TP_SECRET};
  for (size_t i = 0; i < n; i++) {
    tp_node *nd = &c->nodes[i];
    nd->dir = tp_tmpdir();
    assert_int_equal(cmn_metrics_create(&nd->metrics), 0);
    tp_node_open_store(nd);
    tp_node_up(c, nd);
    assert_int_equal(cmn_rpc_channel_open(nd->s.rpc_addr, &cc, &c->client[i]), 0);
  }
  return c;
}

static inline void tp_cluster_free(tp_cluster *c) {
  for (size_t i = 0; i < c->n; i++) {
    cmn_rpc_channel_close(c->client[i]);
    tp_node_down(&c->nodes[i]);
    cmn_metrics_destroy(c->nodes[i].metrics);
    tp_rm_rf(c->nodes[i].dir);
  }
  cmn_rpc_server_stop(c->master.srv);
  pthread_mutex_destroy(&c->master.mu);
  free(c);
}

static inline cs_server *tp_s(tp_cluster *c, size_t i) { return &c->nodes[i].s; }

/* ---- helpers ---- */

/* The master's side of a lease grant: SetVersion old -> new on every node
 * of `idx` (primary first; it alone gets the expiry), over RPC. */
static inline void tp_set_versions(tp_cluster *c, uint64_t handle, uint64_t old_v,
                                   uint64_t new_v, const size_t *idx, size_t k,
                                   int64_t expiry_ms, bool must) {
  Cairn__V1__ServerAddress a[TP_MAX_NODES], *p[TP_MAX_NODES];
  for (size_t i = 0; i < k; i++) {
    cairn__v1__server_address__init(&a[i]);
    a[i].id = (char *)tp_s(c, idx[i])->id;
    a[i].rpc_addr = tp_s(c, idx[i])->rpc_addr;
    a[i].data_addr = tp_s(c, idx[i])->data_addr;
    p[i] = &a[i];
  }
  for (size_t i = 0; i < k; i++) {
    Cairn__V1__SetVersionRequest q = CAIRN__V1__SET_VERSION_REQUEST__INIT;
    q.handle = handle;
    q.old_version = old_v;
    q.new_version = new_v;
    q.lease_expiry_ms = i == 0 ? expiry_ms : 0;
    q.n_replicas = k;
    q.replicas = p;
    ProtobufCMessage *rep = NULL;
    cmn_rpc_status st;
    int rc = cmn_rpc_call_unary(c->client[idx[i]], &cairn__v1__chunkserver__descriptor,
                                "SetVersion", &q.base, &rep, 5000, &st);
    if (rc != 0) fprintf(stderr, "SetVersion: %s %s\n", cairn_err_name(rc), st.message);
    if (must) assert_int_equal(rc, 0);
    if (rep) protobuf_c_message_free_unpacked(rep, NULL);
  }
}

static inline void tp_grant(tp_cluster *c, uint64_t handle, uint64_t old_v, uint64_t new_v,
                            const size_t *idx, size_t k, int64_t expiry_ms) {
  tp_set_versions(c, handle, old_v, new_v, idx, k, expiry_ms, true);
}

/* The survivors of a report: every node that is up but the failed one,
 * the reporter first. Errors are the survivors' business (logged). */
static inline void tp_master_push(void *cluster, const Cairn__V1__ReportFailedReplicaRequest *q) {
  tp_cluster *c = cluster;
  size_t idx[TP_MAX_NODES], k = 0;
  for (size_t i = 0; i < c->n; i++)
    if (c->nodes[i].up && strcmp(c->nodes[i].s.id, q->reporter_id) == 0) idx[k++] = i;
  if (k == 0) return;
  for (size_t i = 0; i < c->n; i++)
    if (c->nodes[i].up && strcmp(c->nodes[i].s.id, q->reporter_id) != 0 &&
        strcmp(c->nodes[i].s.id, q->failed_server_id) != 0)
      idx[k++] = i;
  tp_set_versions(c, q->handle, q->version, q->version + 1, idx, k, cmn_wall_ms() + 60000, false);
}

/* A fresh chunk on nodes 0..k-1 at version 2 with node `primary` as primary. */
static inline void tp_chunk(tp_cluster *c, uint64_t handle, size_t primary, size_t k) {
  size_t idx[TP_MAX_NODES];
  idx[0] = primary;
  for (size_t i = 0, j = 1; i < k; i++)
    if (i != primary) idx[j++] = i;
  tp_grant(c, handle, 1, 2, idx, k, cmn_wall_ms() + 60000);
}

static inline void tp_id(uint8_t id[CS_DATA_ID_LEN], uint64_t a, uint64_t b) {
  memcpy(id, &a, 8);
  memcpy(id + 8, &b, 8);
}

/* Push `data` under `id` into the push buffers of the nodes in mask.
 * Returns the first error (no assertion: usable from worker threads). */
static inline int tp_push_rc(tp_cluster *c, unsigned mask, const uint8_t id[CS_DATA_ID_LEN],
                             const void *data, size_t len) {
  uint32_t crc = cmn_crc32c(0, data, len);
  for (size_t i = 0; i < c->n; i++) {
    if (!(mask & (1u << i))) continue;
    cs_push *p;
    int rc = cs_pushbuf_begin(tp_s(c, i)->push, id, len, crc, &p);
    if (rc != 0) return rc;
    rc = cs_pushbuf_append(p, data, len);
    if (rc != 0) {
      cs_pushbuf_cancel(p);
      return rc;
    }
    rc = cs_pushbuf_finish(p); /* drops the push itself on failure */
    if (rc != 0) return rc;
  }
  return 0;
}

static inline void tp_push(tp_cluster *c, unsigned mask, const uint8_t id[CS_DATA_ID_LEN],
                           const void *data, size_t len) {
  assert_int_equal(tp_push_rc(c, mask, id, data, len), 0);
}

/* Write or Append through the client's channel to node `to`. Returns the
 * call's code; *out (may be NULL) gets the reply on success. */
static inline int tp_call_write(tp_cluster *c, size_t to, bool append, uint64_t handle,
                                uint64_t version, uint64_t offset,
                                const uint8_t id[CS_DATA_ID_LEN], const void *data, size_t len,
                                Cairn__V1__WriteReply *out) {
  Cairn__V1__WriteRequest q = CAIRN__V1__WRITE_REQUEST__INIT;
  q.handle = handle;
  q.version = version;
  q.offset = offset;
  q.data_id.data = (uint8_t *)id;
  q.data_id.len = CS_DATA_ID_LEN;
  q.length = (uint32_t)len;
  q.crc32c = cmn_crc32c(0, data, len);
  ProtobufCMessage *rep = NULL;
  int rc = cmn_rpc_call_unary(c->client[to], &cairn__v1__chunkserver__descriptor,
                              append ? "Append" : "Write", &q.base, &rep, 20000, NULL);
  if (rc == 0 && out) *out = *(Cairn__V1__WriteReply *)rep;
  if (rep) protobuf_c_message_free_unpacked(rep, NULL);
  return rc;
}

/* Push to the nodes in mask, then write through node `to`. */
static inline int tp_write(tp_cluster *c, size_t to, unsigned mask, uint64_t handle,
                           uint64_t version, uint64_t offset, const void *data, size_t len,
                           uint64_t id_seed, Cairn__V1__WriteReply *out) {
  uint8_t id[CS_DATA_ID_LEN];
  tp_id(id, id_seed, handle);
  int rc = tp_push_rc(c, mask, id, data, len);
  if (rc != 0) return rc;
  return tp_call_write(c, to, false, handle, version, offset, id, data, len, out);
}

static inline void tp_fill(unsigned char *buf, size_t n, uint32_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (unsigned char)x;
  }
}

static inline char *tp_chunk_path(tp_cluster *c, size_t i, uint64_t h, uint64_t v) {
  return cmn_sprintf("%s/%02x/%016" PRIx64 "_%" PRIu64 ".chunk", c->nodes[i].dir,
                     (unsigned)(h & 0xff), h, v);
}

/* The whole replica file of node i (caller frees); *len its size. */
static inline unsigned char *tp_file(tp_cluster *c, size_t i, uint64_t h, uint64_t v, size_t *len) {
  char *p = tp_chunk_path(c, i, h, v);
  char *buf = NULL;
  int rc = cmn_read_file(p, 64u << 20, &buf, len);
  if (rc != 0) fprintf(stderr, "read %s: %s\n", p, cairn_err_name(rc));
  assert_int_equal(rc, 0);
  free(p);
  return (unsigned char *)buf;
}

static inline void tp_assert_files_equal(tp_cluster *c, size_t a, size_t b, uint64_t h, uint64_t v) {
  size_t la, lb;
  unsigned char *fa = tp_file(c, a, h, v, &la), *fb = tp_file(c, b, h, v, &lb);
  assert_int_equal(la, lb);
  assert_memory_equal(fa, fb, la);
  free(fa);
  free(fb);
}

/* Committed content of node i into a new buffer (caller frees). */
static inline unsigned char *tp_content(tp_cluster *c, size_t i, uint64_t h, uint64_t v,
                                        uint64_t *len) {
  cs_store_replica r;
  assert_int_equal(cs_store_info(tp_s(c, i)->store, h, &r), 0);
  assert_int_equal(r.version, v);
  unsigned char *buf = cmn_malloc(TP_CHUNK);
  assert_int_equal(cs_store_read(tp_s(c, i)->store, h, v, 0, buf, TP_CHUNK), (int64_t)r.length);
  *len = r.length;
  return buf;
}

static inline void tp_assert_content(tp_cluster *c, size_t i, uint64_t h, uint64_t v,
                                     const unsigned char *want, uint64_t n) {
  uint64_t len;
  unsigned char *got = tp_content(c, i, h, v, &len);
  assert_int_equal(len, n);
  if (n) assert_memory_equal(got, want, n);
  free(got);
}

/* Outcome over RPC from the client channel. */
static inline int tp_outcome(tp_cluster *c, size_t i, uint64_t h, uint64_t v, uint64_t serial) {
  Cairn__V1__OutcomeRequest q = CAIRN__V1__OUTCOME_REQUEST__INIT;
  q.handle = h;
  q.version = v;
  q.serial = serial;
  ProtobufCMessage *rep = NULL;
  int rc = cmn_rpc_call_unary(c->client[i], &cairn__v1__chunkserver__descriptor, "Outcome",
                              &q.base, &rep, 5000, NULL);
  if (rc != 0) return rc;
  int o = ((Cairn__V1__OutcomeReply *)rep)->outcome;
  protobuf_c_message_free_unpacked(rep, NULL);
  return o;
}

static inline size_t tp_pending_count(cs_server *s) {
  cs_store_usage *u = cmn_malloc(sizeof *u);
  assert_int_equal(cs_store_stats(s->store, u), 0);
  size_t n = u->pending;
  free(u);
  return n;
}

/* Files in <dir>/2pc. */
static inline size_t tp_journal_count(tp_node *nd) {
  char *p = cmn_sprintf("%s/2pc", nd->dir);
  DIR *d = opendir(p);
  free(p);
  if (!d) return 0;
  size_t n = 0;
  struct dirent *de;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

/* 1 when node i's /metrics text has the line `line` exactly. */
static inline int tp_metric_line(tp_cluster *c, size_t i, const char *line) {
  cmn_buf b = {0};
  assert_int_equal(cmn_metrics_render(c->nodes[i].metrics, &b), 0);
  size_t n = strlen(line);
  int found = 0;
  for (const char *p = b.data; p && *p && !found; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    found = strncmp(p, line, n) == 0 && (p[n] == '\n' || p[n] == '\0');
  if (!found) fprintf(stderr, "metrics of node %zu lack \"%s\":\n%s", i, line, b.data);
  cmn_buf_free(&b);
  return found;
}

#define TP_OUT_UNKNOWN CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_UNKNOWN
#define TP_OUT_COMMITTED CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_COMMITTED
#define TP_OUT_ABORTED CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_ABORTED
#define TP_OUT_PENDING CAIRN__V1__OUTCOME_REPLY__OUTCOME__OUTCOME_PENDING

#endif /* TWOPC_TEST_UTIL_H */
