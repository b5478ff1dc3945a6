/*
 * cmn_rpc.h - unary RPC over gRPC C core with protobuf-c messages.
 *
 * No C stub generator exists for gRPC + protobuf-c, so this layer is the
 * glue: a server dispatches `/<package>.<Service>/<Method>` through a table
 * built from the protoc-c service descriptor, and a client performs unary
 * calls by method name. Only unary calls exist: bulk bytes travel on the
 * chunkserver data plane, never through gRPC.
 *
 * Security: every call carries the cluster secret as `authorization: Bearer
 * <secret>` metadata; a server refuses a missing or wrong one (compared in
 * constant time) with UNAUTHENTICATED / CAIRN_EAUTH before the handler runs.
 *
 * Errors: a handler fails a call with a cairn code and a message. The client
 * gets the same code back (it travels in the `cairn-error` trailing metadata
 * next to the gRPC status, so codes sharing a gRPC status stay distinct) and
 * the message. Failures raised by the gRPC stack itself (deadline, peer
 * unreachable, message too large) map through cairn_err_from_grpc.
 *
 * Limits: the receive and send limit (max_message) is applied to both the
 * server and the channel so the two sides agree; a larger message fails with
 * CAIRN_ETOOBIG and the connection keeps working.
 */
#ifndef CMN_RPC_H
#define CMN_RPC_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#define CMN_RPC_DEFAULT_MAX_MESSAGE (64u << 20) /* 64 MiB */
#define CMN_RPC_MAX_SECRET 256

/* ---------------------------------------------------------------- server */

typedef struct cmn_rpc_server cmn_rpc_server;
typedef struct cmn_rpc_call cmn_rpc_call;

/*
 * A method handler. `req` is the decoded request (owned by the call: valid
 * until the call is answered). The handler, or whoever it hands `call` to,
 * must answer exactly once with cmn_rpc_reply or cmn_rpc_fail, from any
 * thread and at any later time; the call and `req` are freed after that.
 * Handlers run on the server's worker threads and should not block long:
 * slow work (an fsync, a fan-out to other servers) answers later instead.
 */
typedef void (*cmn_rpc_handler)(cmn_rpc_call *call, const ProtobufCMessage *req, void *ctx);

/* One row of a service's dispatch table: the method's name as written in the
 * .proto file, and its handler. Methods of the service without a row answer
 * UNIMPLEMENTED, as do method names the service does not have. */
typedef struct cmn_rpc_method {
  const char *name;
  cmn_rpc_handler handler;
} cmn_rpc_method;

typedef struct cmn_rpc_server_config {
  const char *addr;               /* "127.0.0.1:9000"; port 0 picks a free port */
  const char *secret;             /* cluster secret every call must carry */
  int workers;                    /* threads, each with its own completion queue; >= 1 */
  size_t max_message;             /* 0 = CMN_RPC_DEFAULT_MAX_MESSAGE */
  const ProtobufCServiceDescriptor *service;
  const cmn_rpc_method *methods;  /* table, copied at start */
  size_t n_methods;
  void *ctx;                      /* passed to every handler */
  /* Optional registry (must outlive the server): per method
   * cairn_rpc_calls_total{service,method,code} and
   * cairn_rpc_duration_seconds{service,method}. */
  struct cmn_metrics *metrics;
} cmn_rpc_server_config;

/*
 * Build the dispatch table, bind, and start the worker threads.
 * A method row naming a method the service does not have is CAIRN_EINVAL
 * (a programming error caught at start). Binding failure is CAIRN_EUNAVAIL.
 * On success *out is owned by the caller until cmn_rpc_server_stop.
 */
int cmn_rpc_server_start(const cmn_rpc_server_config *cfg, cmn_rpc_server **out);

/* The bound TCP port (useful after asking for port 0). */
int cmn_rpc_server_port(const cmn_rpc_server *srv);

/* Calls answered so far, and calls refused for a missing or wrong secret
 * (for metrics and tests). Any thread. */
uint64_t cmn_rpc_server_calls(const cmn_rpc_server *srv);
uint64_t cmn_rpc_server_auth_failures(const cmn_rpc_server *srv);

/*
 * Orderly shutdown: stop accepting calls, cancel those in flight, wait until
 * every handler that got a call has answered it (answers to cancelled calls
 * are dropped), join the workers and free everything. Must not be called from
 * a handler. NULL is a no-op.
 */
void cmn_rpc_server_stop(cmn_rpc_server *srv);

/* Answer a call with a reply message (not freed: the caller keeps ownership
 * and may free it as soon as this returns). Any thread, once per call. */
void cmn_rpc_reply(cmn_rpc_call *call, const ProtobufCMessage *reply);

/* Answer a call with a cairn error code (< 0) and a printf-style message. */
void cmn_rpc_fail(cmn_rpc_call *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The peer ("ipv4:127.0.0.1:53122"), valid until the call is answered. */
const char *cmn_rpc_call_peer(const cmn_rpc_call *call);

/* Milliseconds left before the caller's deadline (INT64_MAX when none). */
int64_t cmn_rpc_call_remaining_ms(const cmn_rpc_call *call);

/* The method name ("Create"), static. */
const char *cmn_rpc_call_method(const cmn_rpc_call *call);

/* ---------------------------------------------------------------- client */

typedef struct cmn_rpc_channel cmn_rpc_channel;

typedef struct cmn_rpc_client_config {
  const char *secret;        /* sent with every call */
  size_t max_message;        /* 0 = CMN_RPC_DEFAULT_MAX_MESSAGE */
} cmn_rpc_client_config;

/* What a failed call said: its cairn code and the server's (or gRPC's) text. */
typedef struct cmn_rpc_status {
  int code;
  char message[256];
} cmn_rpc_status;

/*
 * Open a channel to `target` ("127.0.0.1:9000"). Connection happens lazily
 * and reconnects transparently; a channel is safe to use from many threads
 * at once and should be reused for every call to that peer.
 * CAIRN_EINVAL for a bad config. *out is the caller's until cmn_rpc_channel_close.
 */
int cmn_rpc_channel_open(const char *target, const cmn_rpc_client_config *cfg,
                         cmn_rpc_channel **out);

/* Close a channel; calls in flight on it fail with CAIRN_ECANCELED. NULL is a no-op. */
void cmn_rpc_channel_close(cmn_rpc_channel *ch);

/* The target the channel was opened with. */
const char *cmn_rpc_channel_target(const cmn_rpc_channel *ch);

/*
 * Unary call of `method` of `service` with `req`, waiting at most
 * `timeout_ms` (<= 0: no deadline). On success returns 0 and *reply is a
 * message of the method's output type, owned by the caller (free it with
 * protobuf_c_message_free_unpacked(*reply, NULL)). On failure returns the
 * cairn code (CAIRN_ETIMEDOUT, CAIRN_EAUTH, CAIRN_EUNAVAIL, CAIRN_ETOOBIG,
 * CAIRN_EUNIMPL, the server handler's own code, ...), *reply is NULL, and
 * `st`, when given, gets the code and the message. Any thread.
 */
int cmn_rpc_call_unary(cmn_rpc_channel *ch, const ProtobufCServiceDescriptor *service,
                       const char *method, const ProtobufCMessage *req, ProtobufCMessage **reply,
                       int64_t timeout_ms, cmn_rpc_status *st);

/*
 * A set of channels, one per peer, created on first use and reused
 * (a chunkserver talks to many peers; each gets one channel).
 * Thread-safe. Channels stay valid until the pool is destroyed.
 */
typedef struct cmn_rpc_pool cmn_rpc_pool;

int cmn_rpc_pool_create(const cmn_rpc_client_config *cfg, cmn_rpc_pool **out);
/* The channel for `target`, opened on first use. The pool owns it. */
int cmn_rpc_pool_get(cmn_rpc_pool *pool, const char *target, cmn_rpc_channel **out);
void cmn_rpc_pool_destroy(cmn_rpc_pool *pool);

/* Load the cluster secret from a file: the first line, surrounding white
 * space trimmed; it must be 16..CMN_RPC_MAX_SECRET printable characters.
 * *out is a new string the caller frees. CAIRN_ENOENT, CAIRN_ECONFIG, CAIRN_EIO. */
int cmn_rpc_load_secret(const char *path, char **out);

#endif /* CMN_RPC_H */
