/*
 * rpc_server.c - table-driven unary gRPC server on gRPC C core.
 *
 * Each worker thread owns one completion queue and keeps REQUESTS_PER_WORKER
 * generic call requests outstanding on it. A call is one `cmn_rpc_call`
 * that walks a small state machine; the struct itself is the completion tag,
 * and at most one batch is ever outstanding on a call, so no lock is needed
 * per call:
 *
 *   REQUESTED --(new call: auth + method lookup ok)--> RECEIVING
 *       |                                                  |
 *       +--(bad secret / unknown method)--+     (message decoded: handler runs,
 *                                         |      answers now or later from any
 *                                         v      thread with reply/fail)
 *                                      SENDING <-----------+
 *                                         |
 *                                     (freed)
 *
 * Shutdown: stop posting requests, shutdown_and_notify + cancel_all_calls,
 * wait until the notify tag arrived and every live call struct was freed
 * (handlers must answer their calls; answers to cancelled calls complete
 * quickly), then destroy the server, shut the queues down and join.
 */
#include "rpc_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_metrics.h"
#include "cmn_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <openssl/sha.h>

#define REQUESTS_PER_WORKER 16
#define MAX_METHOD_PATH 256

enum call_state { CS_REQUESTED, CS_RECEIVING, CS_SENDING };

struct worker {
  cmn_rpc_server *srv;
  grpc_completion_queue *cq;
  pthread_t thread;
  int started;
};

struct method_row {
  const ProtobufCMethodDescriptor *desc;
  cmn_rpc_handler handler;
  cmn_counter *ok, *failed;   /* NULL without a registry */
  cmn_histogram *duration;
};

struct cmn_rpc_server {
  grpc_server *server;
  int port;
  struct worker *workers;
  int nworkers;
  const ProtobufCServiceDescriptor *service;
  struct method_row *rows; /* indexed like service->methods */
  char prefix[MAX_METHOD_PATH]; /* "/cairn.v1.Master/" */
  size_t prefix_len;
  unsigned char secret_hash[SHA256_DIGEST_LENGTH];
  void *ctx;

  atomic_bool stopping;
  atomic_uint_fast64_t calls;
  atomic_uint_fast64_t auth_failures;

  pthread_mutex_t lock; /* guards live and shutdown_done */
  pthread_cond_t cond;
  long live; /* call structs not yet freed */
  int shutdown_done;
  char shutdown_tag; /* address used as the shutdown notification tag */
};

struct cmn_rpc_call {
  cmn_rpc_server *srv;
  struct worker *w;
  enum call_state state;
  grpc_call *call;
  grpc_call_details details;
  grpc_metadata_array req_md;
  grpc_byte_buffer *recv_bb;
  grpc_byte_buffer *send_bb;
  int client_cancelled;
  const struct method_row *row;
  ProtobufCMessage *req;
  grpc_slice status_details;
  int has_status_details;
  grpc_metadata trailer;
  int has_trailer;
  char code_str[16];
  char *peer;
  int64_t deadline_mono_ms;
  int64_t start_ns;
};

static void call_free(cmn_rpc_call *c) {
  cmn_rpc_server *srv = c->srv;
  if (c->req) protobuf_c_message_free_unpacked(c->req, NULL);
  if (c->recv_bb) grpc_byte_buffer_destroy(c->recv_bb);
  if (c->send_bb) grpc_byte_buffer_destroy(c->send_bb);
  if (c->has_status_details) grpc_slice_unref(c->status_details);
  if (c->has_trailer) grpc_slice_unref(c->trailer.value);
  if (c->peer) gpr_free(c->peer);
  grpc_metadata_array_destroy(&c->req_md);
  grpc_call_details_destroy(&c->details);
  if (c->call) grpc_call_unref(c->call);
  free(c);
  pthread_mutex_lock(&srv->lock);
  srv->live--;
  pthread_cond_broadcast(&srv->cond);
  pthread_mutex_unlock(&srv->lock);
}

/* Post one generic call request on a worker's queue. */
static void request_one(struct worker *w) {
  cmn_rpc_server *srv = w->srv;
  if (atomic_load(&srv->stopping)) return;
  cmn_rpc_call *c = cmn_calloc(1, sizeof *c);
  c->srv = srv;
  c->w = w;
  c->state = CS_REQUESTED;
  grpc_call_details_init(&c->details);
  grpc_metadata_array_init(&c->req_md);
  pthread_mutex_lock(&srv->lock);
  srv->live++;
  pthread_mutex_unlock(&srv->lock);
  grpc_call_error e =
      grpc_server_request_call(srv->server, &c->call, &c->details, &c->req_md, w->cq, w->cq, c);
  if (e != GRPC_CALL_OK) {
    CMN_ERROR("rpc", "request_call failed error=%d", (int)e);
    call_free(c);
  }
}

/* Constant-time check of the bearer token: both sides are hashed first so
 * neither the content nor the length of the secret leaks through timing. */
static int auth_ok(const cmn_rpc_server *srv, const grpc_metadata_array *md) {
  for (size_t i = 0; i < md->count; i++) {
    if (!xx_rpc_slice_eq(md->metadata[i].key, XX_RPC_AUTH_KEY)) continue;
    grpc_slice v = md->metadata[i].value;
    size_t n = GRPC_SLICE_LENGTH(v), blen = strlen(XX_RPC_BEARER);
    const unsigned char *p = GRPC_SLICE_START_PTR(v);
    if (n < blen || memcmp(p, XX_RPC_BEARER, blen) != 0) return 0;
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256(p + blen, n - blen, h);
    return cmn_ct_equal(h, srv->secret_hash, sizeof h);
  }
  return 0;
}

/* Find the table row for "/<service>/<Method>"; NULL when unknown or when
 * the service has the method but no handler is registered for it. */
static const struct method_row *lookup(const cmn_rpc_server *srv, grpc_slice method) {
  size_t n = GRPC_SLICE_LENGTH(method);
  const char *p = (const char *)GRPC_SLICE_START_PTR(method);
  if (n <= srv->prefix_len || n >= MAX_METHOD_PATH) return NULL;
  if (memcmp(p, srv->prefix, srv->prefix_len) != 0) return NULL;
  char name[MAX_METHOD_PATH];
  memcpy(name, p + srv->prefix_len, n - srv->prefix_len);
  name[n - srv->prefix_len] = '\0';
  const ProtobufCMethodDescriptor *m =
      protobuf_c_service_descriptor_get_method_by_name(srv->service, name);
  if (!m) return NULL;
  const struct method_row *row = &srv->rows[m - srv->service->methods];
  return row->handler ? row : NULL;
}

/*
 * Send the final batch: optional message, status, and (for errors) the exact
 * cairn code in trailing metadata. The completion frees the call.
 */
static void send_final(cmn_rpc_call *c, grpc_byte_buffer *bb, int code, const char *msg) {
  grpc_op ops[4];
  memset(ops, 0, sizeof ops);
  size_t n = 0;
  if (c->state == CS_REQUESTED) { /* refused before any batch was sent */
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[n].data.send_initial_metadata.count = 0;
    n++;
  }
  ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  ops[n].data.recv_close_on_server.cancelled = &c->client_cancelled;
  n++;
  if (bb) {
    c->send_bb = bb;
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    n++;
  }
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = (grpc_status_code)cairn_err_to_grpc(code);
  if (code != 0) {
    snprintf(c->code_str, sizeof c->code_str, "%d", code);
    c->trailer.key = grpc_slice_from_static_string(XX_RPC_ERROR_KEY);
    c->trailer.value = grpc_slice_from_copied_string(c->code_str);
    c->has_trailer = 1;
    ops[n].data.send_status_from_server.trailing_metadata_count = 1;
    ops[n].data.send_status_from_server.trailing_metadata = &c->trailer;
    c->status_details = grpc_slice_from_copied_string(msg ? msg : cairn_strerror(code));
    c->has_status_details = 1;
    ops[n].data.send_status_from_server.status_details = &c->status_details;
  }
  n++;
  c->state = CS_SENDING;
  atomic_fetch_add(&c->srv->calls, 1);
  if (c->row && c->row->ok) {
    cmn_counter_inc(code == 0 ? c->row->ok : c->row->failed);
    cmn_histogram_observe(c->row->duration, (double)(cmn_mono_ns() - c->start_ns) / 1e9);
  }
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, c, NULL);
  if (e != GRPC_CALL_OK) {
    CMN_ERROR("rpc", "start_batch(final) failed error=%d", (int)e);
    call_free(c);
  }
}

static void on_new_call(cmn_rpc_call *c) {
  cmn_rpc_server *srv = c->srv;
  c->start_ns = cmn_mono_ns();
  c->peer = grpc_call_get_peer(c->call);
  gpr_timespec dl = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_MONOTONIC);
  gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
  if (gpr_time_cmp(dl, gpr_inf_future(GPR_CLOCK_MONOTONIC)) == 0) {
    c->deadline_mono_ms = INT64_MAX;
  } else {
    int64_t left = (int64_t)gpr_time_to_millis(gpr_time_sub(dl, now));
    c->deadline_mono_ms = cmn_mono_ms() + left;
  }
  if (!auth_ok(srv, &c->req_md)) {
    atomic_fetch_add(&srv->auth_failures, 1);
    CMN_WARN("rpc", "refused call without valid secret peer=%s", c->peer);
    send_final(c, NULL, CAIRN_EAUTH, "missing or wrong cluster secret");
    return;
  }
  c->row = lookup(srv, c->details.method);
  if (!c->row) {
    char m[MAX_METHOD_PATH];
    xx_rpc_slice_to_str(c->details.method, m, sizeof m);
    char msg[MAX_METHOD_PATH + 32];
    snprintf(msg, sizeof msg, "unknown method %s", m);
    send_final(c, NULL, CAIRN_EUNIMPL, msg);
    return;
  }
  grpc_op ops[2];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[1].op = GRPC_OP_RECV_MESSAGE;
  ops[1].data.recv_message.recv_message = &c->recv_bb;
  c->state = CS_RECEIVING;
  grpc_call_error e = grpc_call_start_batch(c->call, ops, 2, c, NULL);
  if (e != GRPC_CALL_OK) {
    CMN_ERROR("rpc", "start_batch(recv) failed error=%d", (int)e);
    call_free(c);
  }
}

static void on_received(cmn_rpc_call *c, int success) {
  if (!success) { /* cancelled, or the peer went away */
    call_free(c);
    return;
  }
  if (!c->recv_bb) {
    send_final(c, NULL, CAIRN_EPROTO, "request carried no message");
    return;
  }
  c->req = xx_rpc_unpack(c->recv_bb, c->row->desc->input);
  grpc_byte_buffer_destroy(c->recv_bb);
  c->recv_bb = NULL;
  if (!c->req) {
    send_final(c, NULL, CAIRN_EPROTO, "request is not a valid protobuf message");
    return;
  }
  c->row->handler(c, c->req, c->srv->ctx);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  cmn_rpc_server *srv = w->srv;
  for (int i = 0; i < REQUESTS_PER_WORKER; i++) request_one(w);
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    if (ev.tag == &srv->shutdown_tag) {
      pthread_mutex_lock(&srv->lock);
      srv->shutdown_done = 1;
      pthread_cond_broadcast(&srv->cond);
      pthread_mutex_unlock(&srv->lock);
      continue;
    }
    cmn_rpc_call *c = ev.tag;
    switch (c->state) {
    case CS_REQUESTED:
      if (!ev.success) { /* server shutting down */
        call_free(c);
        break;
      }
      request_one(w);
      on_new_call(c);
      break;
    case CS_RECEIVING:
      on_received(c, ev.success);
      break;
    case CS_SENDING:
      call_free(c);
      break;
    }
  }
  return NULL;
}

void cmn_rpc_reply(cmn_rpc_call *c, const ProtobufCMessage *reply) {
  if (reply->descriptor != c->row->desc->output) {
    CMN_ERROR("rpc", "handler replied with wrong type method=%s type=%s", c->row->desc->name,
              reply->descriptor->name);
    send_final(c, NULL, CAIRN_EINTERNAL, "server replied with the wrong message type");
    return;
  }
  send_final(c, xx_rpc_pack(reply), 0, NULL);
}

void cmn_rpc_fail(cmn_rpc_call *c, int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (code >= 0 || !cairn_err_known(code)) code = CAIRN_EINTERNAL;
  send_final(c, NULL, code, msg);
}

const char *cmn_rpc_call_peer(const cmn_rpc_call *c) { return c->peer ? c->peer : "?"; }

int64_t cmn_rpc_call_remaining_ms(const cmn_rpc_call *c) {
  if (c->deadline_mono_ms == INT64_MAX) return INT64_MAX;
  return c->deadline_mono_ms - cmn_mono_ms();
}

const char *cmn_rpc_call_method(const cmn_rpc_call *c) { return c->row ? c->row->desc->name : "?"; }

int cmn_rpc_server_port(const cmn_rpc_server *srv) { return srv->port; }
uint64_t cmn_rpc_server_calls(const cmn_rpc_server *srv) { return atomic_load(&srv->calls); }
uint64_t cmn_rpc_server_auth_failures(const cmn_rpc_server *srv) {
  return atomic_load(&srv->auth_failures);
}

/* Fill the dispatch table from the config; every row must name a method of
 * the service (a typo is a start-up error, not a silent UNIMPLEMENTED). */
static int build_table(cmn_rpc_server *srv, const cmn_rpc_server_config *cfg) {
  srv->rows = cmn_calloc(cfg->service->n_methods, sizeof *srv->rows);
  for (unsigned i = 0; i < cfg->service->n_methods; i++) srv->rows[i].desc = &cfg->service->methods[i];
  for (size_t i = 0; i < cfg->n_methods; i++) {
    const ProtobufCMethodDescriptor *m =
        protobuf_c_service_descriptor_get_method_by_name(cfg->service, cfg->methods[i].name);
    if (!m || !cfg->methods[i].handler) {
      CMN_ERROR("rpc", "dispatch table names unknown method service=%s method=%s",
                cfg->service->name, cfg->methods[i].name);
      return CAIRN_EINVAL;
    }
    srv->rows[m - cfg->service->methods].handler = cfg->methods[i].handler;
  }
  for (unsigned i = 0; cfg->metrics && i < cfg->service->n_methods; i++) {
    struct method_row *r = &srv->rows[i];
    if (!r->handler) continue;
    cmn_label l[3] = {{"service", cfg->service->name}, {"method", r->desc->name}, {"code", "ok"}};
    int rc = cmn_counter_register(cfg->metrics, "cairn_rpc_calls_total", "RPC calls answered", l,
                                  3, &r->ok);
    l[2].value = "error";
    if (rc == 0)
      rc = cmn_counter_register(cfg->metrics, "cairn_rpc_calls_total", "RPC calls answered", l, 3,
                                &r->failed);
    if (rc == 0)
      rc = cmn_histogram_register(cfg->metrics, "cairn_rpc_duration_seconds",
                                  "RPC time from arrival to answer", l, 2,
                                  cmn_metrics_latency_buckets, CMN_METRICS_LATENCY_NBUCKETS, &r->duration);
    if (rc != 0) return rc;
  }
  int n = snprintf(srv->prefix, sizeof srv->prefix, "/%s/", cfg->service->name);
  if (n < 0 || (size_t)n >= sizeof srv->prefix) return CAIRN_EINVAL;
  srv->prefix_len = (size_t)n;
  return 0;
}

static void server_free(cmn_rpc_server *srv) {
  if (srv->server) grpc_server_destroy(srv->server);
  for (int i = 0; i < srv->nworkers; i++) {
    if (!srv->workers[i].cq) continue;
    grpc_completion_queue_shutdown(srv->workers[i].cq);
    if (srv->workers[i].started) {
      pthread_join(srv->workers[i].thread, NULL);
    } else {
      while (grpc_completion_queue_next(srv->workers[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)
                 .type != GRPC_QUEUE_SHUTDOWN) {
      }
    }
    grpc_completion_queue_destroy(srv->workers[i].cq);
  }
  free(srv->workers);
  free(srv->rows);
  pthread_mutex_destroy(&srv->lock);
  pthread_cond_destroy(&srv->cond);
  free(srv);
  grpc_shutdown();
}

int cmn_rpc_server_start(const cmn_rpc_server_config *cfg, cmn_rpc_server **out) {
  if (!cfg || !cfg->addr || !cfg->secret || !cfg->service || cfg->workers < 1 ||
      cfg->workers > 256 || (cfg->n_methods && !cfg->methods))
    return CAIRN_EINVAL;
  grpc_init();
  cmn_rpc_server *srv = cmn_calloc(1, sizeof *srv);
  pthread_mutex_init(&srv->lock, NULL);
  pthread_cond_init(&srv->cond, NULL);
  srv->service = cfg->service;
  srv->ctx = cfg->ctx;
  SHA256((const unsigned char *)cfg->secret, strlen(cfg->secret), srv->secret_hash);
  srv->nworkers = cfg->workers;
  srv->workers = cmn_calloc((size_t)cfg->workers, sizeof *srv->workers);
  int rc = build_table(srv, cfg);
  if (rc != 0) goto fail;

  grpc_arg args[2];
  grpc_channel_args cargs;
  xx_rpc_limit_args(args, cfg->max_message ? cfg->max_message : CMN_RPC_DEFAULT_MAX_MESSAGE, &cargs);
  srv->server = grpc_server_create(&cargs, NULL);
  for (int i = 0; i < srv->nworkers; i++) {
    srv->workers[i].srv = srv;
    srv->workers[i].cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->workers[i].cq, NULL);
  }
  grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
  srv->port = grpc_server_add_http2_port(srv->server, cfg->addr, creds);
  grpc_server_credentials_release(creds);
  if (srv->port <= 0) {
    CMN_ERROR("rpc", "cannot listen addr=%s", cfg->addr);
    rc = CAIRN_EUNAVAIL;
    goto fail;
  }
  grpc_server_start(srv->server);
  for (int i = 0; i < srv->nworkers; i++) {
    if (pthread_create(&srv->workers[i].thread, NULL, worker_main, &srv->workers[i]) != 0) {
      rc = CAIRN_ENOMEM;
      cmn_rpc_server_stop(srv);
      return rc;
    }
    srv->workers[i].started = 1;
  }
  CMN_INFO("rpc", "serving service=%s addr=%s port=%d workers=%d", cfg->service->name, cfg->addr,
           srv->port, srv->nworkers);
  *out = srv;
  return 0;
fail:
  if (srv->server) {
    /* Never started: nothing to drain but the queues. */
    grpc_server_destroy(srv->server);
    srv->server = NULL;
  }
  server_free(srv);
  return rc;
}

void cmn_rpc_server_stop(cmn_rpc_server *srv) {
  if (!srv) return;
  atomic_store(&srv->stopping, 1);
  grpc_server_shutdown_and_notify(srv->server, srv->workers[0].cq, &srv->shutdown_tag);
  grpc_server_cancel_all_calls(srv->server);
  pthread_mutex_lock(&srv->lock);
  while (!srv->shutdown_done || srv->live > 0) pthread_cond_wait(&srv->cond, &srv->lock);
  pthread_mutex_unlock(&srv->lock);
  server_free(srv);
}
