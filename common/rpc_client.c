/*
 * rpc_client.c - unary gRPC calls with protobuf-c messages, and a pool of
 * channels (one per peer).
 *
 * A call is one batch of six ops waited for on a pluck queue private to the
 * call, so any number of threads can call through one channel at once.
 */
#include "rpc_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

struct cmn_rpc_channel {
  grpc_channel *ch;
  char *target;
  char *auth; /* "Bearer <secret>" */
};

static void set_status(cmn_rpc_status *st, int code, const char *msg) {
  if (!st) return;
  st->code = code;
  snprintf(st->message, sizeof st->message, "%s", msg);
}

int cmn_rpc_channel_open(const char *target, const cmn_rpc_client_config *cfg,
                         cmn_rpc_channel **out) {
  if (!target || !*target || !strchr(target, ':') || !cfg || !cfg->secret || !*cfg->secret)
    return CAIRN_EINVAL;
  grpc_init();
  cmn_rpc_channel *c = cmn_calloc(1, sizeof *c);
  c->target = cmn_strdup(target);
  c->auth = cmn_sprintf("%s%s", XX_RPC_BEARER, cfg->secret);
  grpc_arg args[2];
  grpc_channel_args cargs;
  xx_rpc_limit_args(args, cfg->max_message ? cfg->max_message : CMN_RPC_DEFAULT_MAX_MESSAGE, &cargs);
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  c->ch = grpc_channel_create(target, creds, &cargs);
  grpc_channel_credentials_release(creds);
  *out = c;
  return 0;
}

void cmn_rpc_channel_close(cmn_rpc_channel *c) {
  if (!c) return;
  grpc_channel_destroy(c->ch);
  free(c->target);
  free(c->auth);
  free(c);
  grpc_shutdown();
}

const char *cmn_rpc_channel_target(const cmn_rpc_channel *c) { return c->target; }

/* The cairn code of a failed call: the server's exact code from trailing
 * metadata when present, else the generic mapping of the gRPC status. */
static int status_code(grpc_status_code status, const grpc_metadata_array *trailer) {
  for (size_t i = 0; i < trailer->count; i++) {
    if (!xx_rpc_slice_eq(trailer->metadata[i].key, XX_RPC_ERROR_KEY)) continue;
    char buf[16];
    xx_rpc_slice_to_str(trailer->metadata[i].value, buf, sizeof buf);
    char *end;
    long v = strtol(buf, &end, 10);
    if (*end == '\0' && v < 0 && cairn_err_known((int)v)) return (int)v;
  }
  return cairn_err_from_grpc((int)status);
}

int cmn_rpc_call_unary(cmn_rpc_channel *c, const ProtobufCServiceDescriptor *service,
                       const char *method, const ProtobufCMessage *req, ProtobufCMessage **reply,
                       int64_t timeout_ms, cmn_rpc_status *st) {
  *reply = NULL;
  const ProtobufCMethodDescriptor *m = protobuf_c_service_descriptor_get_method_by_name(service, method);
  if (!m) {
    set_status(st, CAIRN_EINVAL, "no such method in service");
    return CAIRN_EINVAL;
  }
  if (req->descriptor != m->input) {
    set_status(st, CAIRN_EINVAL, "request has the wrong message type");
    return CAIRN_EINVAL;
  }
  char *path = cmn_sprintf("/%s/%s", service->name, method);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  gpr_timespec deadline =
      timeout_ms > 0 ? gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                    gpr_time_from_millis(timeout_ms, GPR_TIMESPAN))
                     : gpr_inf_future(GPR_CLOCK_MONOTONIC);
  /* Slices handed to gRPC are refcounted copies: the transport's header
   * compression table may keep them after this call returns. */
  grpc_slice path_slice = grpc_slice_from_copied_string(path);
  grpc_call *call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path_slice,
                                             NULL, deadline, NULL);
  grpc_metadata auth;
  memset(&auth, 0, sizeof auth);
  auth.key = grpc_slice_from_static_string(XX_RPC_AUTH_KEY);
  auth.value = grpc_slice_from_copied_string(c->auth);

  grpc_byte_buffer *send_bb = xx_rpc_pack(req), *recv_bb = NULL;
  grpc_metadata_array initial, trailer;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailer);
  grpc_status_code status = GRPC_STATUS_UNKNOWN;
  grpc_slice details = grpc_empty_slice();
  const char *error_string = NULL;

  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = 1;
  ops[0].data.send_initial_metadata.metadata = &auth;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send_bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv_bb;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailer;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  ops[5].data.recv_status_on_client.error_string = &error_string;

  int rc;
  grpc_call_error e = grpc_call_start_batch(call, ops, 6, call, NULL);
  if (e != GRPC_CALL_OK) {
    rc = CAIRN_EINTERNAL;
    set_status(st, rc, "cannot start call");
    goto done;
  }
  grpc_event ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  if (ev.type != GRPC_OP_COMPLETE) {
    rc = CAIRN_EINTERNAL;
    set_status(st, rc, "completion queue failed");
    goto done;
  }
  if (status != GRPC_STATUS_OK) {
    rc = status_code(status, &trailer);
    char msg[256];
    xx_rpc_slice_to_str(details, msg, sizeof msg);
    if (!*msg) snprintf(msg, sizeof msg, "%s", cairn_strerror(rc));
    set_status(st, rc, msg);
    goto done;
  }
  if (!recv_bb || !(*reply = xx_rpc_unpack(recv_bb, m->output))) {
    rc = CAIRN_EPROTO;
    set_status(st, rc, "reply is not a valid protobuf message");
    goto done;
  }
  rc = 0;
  if (st) set_status(st, 0, "");
done:
  grpc_byte_buffer_destroy(send_bb);
  if (recv_bb) grpc_byte_buffer_destroy(recv_bb);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailer);
  grpc_slice_unref(details);
  if (error_string) gpr_free((void *)error_string);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
  grpc_slice_unref(auth.value);
  grpc_slice_unref(path_slice);
  free(path);
  return rc;
}

/* ------------------------------------------------------------------ pool */

struct cmn_rpc_pool {
  pthread_mutex_t lock;
  cmn_rpc_client_config cfg; /* secret copied */
  char *secret;
  cmn_rpc_channel **chans;
  size_t n, cap;
};

int cmn_rpc_pool_create(const cmn_rpc_client_config *cfg, cmn_rpc_pool **out) {
  if (!cfg || !cfg->secret || !*cfg->secret) return CAIRN_EINVAL;
  cmn_rpc_pool *p = cmn_calloc(1, sizeof *p);
  pthread_mutex_init(&p->lock, NULL);
  p->secret = cmn_strdup(cfg->secret);
  p->cfg = *cfg;
  p->cfg.secret = p->secret;
  *out = p;
  return 0;
}

/* A linear scan: a process talks to tens of peers, not thousands. */
int cmn_rpc_pool_get(cmn_rpc_pool *p, const char *target, cmn_rpc_channel **out) {
  int rc = 0;
  pthread_mutex_lock(&p->lock);
  for (size_t i = 0; i < p->n; i++) {
    if (strcmp(p->chans[i]->target, target) == 0) {
      *out = p->chans[i];
      goto done;
    }
  }
  cmn_rpc_channel *c;
  rc = cmn_rpc_channel_open(target, &p->cfg, &c);
  if (rc != 0) goto done;
  if (p->n == p->cap) {
    p->cap = p->cap ? 2 * p->cap : 8;
    p->chans = cmn_realloc(p->chans, p->cap * sizeof *p->chans);
  }
  p->chans[p->n++] = c;
  *out = c;
done:
  pthread_mutex_unlock(&p->lock);
  return rc;
}

void cmn_rpc_pool_destroy(cmn_rpc_pool *p) {
  if (!p) return;
  for (size_t i = 0; i < p->n; i++) cmn_rpc_channel_close(p->chans[i]);
  free(p->chans);
  free(p->secret);
  pthread_mutex_destroy(&p->lock);
  free(p);
}
