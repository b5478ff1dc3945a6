/*
 * gw.h - cairn-gateway: the HTTPS document API. The gateway context, its
 * configuration, the request a handler sees, the route table and the reply
 * helpers every handler uses.
 *
 * Threads: libmicrohttpd runs one thread per connection
 * (MHD_USE_THREAD_PER_CONNECTION), so a handler may block on PostgreSQL or
 * the cluster without holding up other clients; the number of connections,
 * and so of threads, is bounded by max_connections. Everything reachable
 * from gw_ctx is either read-only after start or thread-safe (the pool, the
 * caches, the rate limiters, the cluster client). A gw_req belongs to the
 * connection's thread.
 *
 * A request goes: headers -> route match -> rate limits -> authentication
 * -> the route's `begin` (if any; it may refuse before the body is read,
 * which is what makes `Expect: 100-continue` useful) -> body pieces (JSON
 * bodies are collected up to GW_JSON_MAX and parsed; stream routes get
 * each piece in `data`) -> `handle`, which must reply. A handler replies
 * exactly once, with one of the gw_reply_* functions.
 */
#ifndef GW_H
#define GW_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cairn.h"
#include "cmn_metrics.h"
#include "cmn_util.h"
#include "gw_cache.h"
#include "gw_crypto.h"
#include "gw_db.h"
#include "gw_ratelimit.h"
#include "gw_ring.h"

#define GW_JSON_MAX (64 * 1024) /* largest JSON request body */

/* A timestamptz column as RFC 3339 UTC text with milliseconds, for JSON. */
#define GW_SQL_TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define GW_MAX_PARAMS 4         /* {params} in a route pattern */

/* ---- configuration (config.c) ---- */

typedef struct gw_config {
  char *listen;
  char *tls_cert, *tls_key;
  bool plain_http;
  char *master, *secret_file;
  int64_t cluster_timeout_ms;
  char *db;
  int64_t db_pool;
  int64_t db_wait_ms;
  char *key_file;
  char *ready_file;
  char *data_prefix;
  uint64_t max_upload;
  char *allowed_types;      /* comma-separated media types (image/ prefix + star ok); "" any */
  char *allowed_extensions; /* comma-separated (".pdf,.txt"); "" any */
  int64_t rate_user, rate_ip, rate_burst; /* requests per second; 0 off */
  uint64_t argon2_memory;
  int64_t argon2_time, argon2_lanes;
  int64_t access_ttl_ms, refresh_ttl_ms, link_max_ttl_ms;
  char *cors_origins;       /* comma-separated origins; "" none */
  int64_t max_connections;
  int64_t idle_timeout_ms;
  uint64_t upload_buffer;   /* bytes per cluster write of an upload */
  int64_t upload_depth;     /* upload buffers in flight per request */
  uint64_t transfer_memory;  /* all upload and download buffers together */
  uint64_t small_cache;     /* bytes of small documents cached in memory; 0 off */
  int64_t cache_ttl_ms;     /* permission and token cache */
  int log_level;
} gw_config;

/* Defaults, then the config file and flags. 0, CMN_CONFIG_HELP (help text in
 * *help, caller frees), or CAIRN_ECONFIG with a message in err. On success
 * the caller frees with gw_config_free. */
int gw_config_load(gw_config *cfg, int argc, char **argv, char **help, char *err, size_t errlen);
void gw_config_free(gw_config *cfg);
/* "name = value" lines of the effective settings; the caller frees. */
char *gw_config_dump(const gw_config *cfg);

/* ---- the gateway ---- */

typedef struct gw_small_cache gw_small_cache;

typedef struct gw_ctx {
  gw_config cfg;
  gw_db *db;
  cairn_client *cluster;
  cairn_client *probe;           /* the same cluster with short deadlines, for /healthz */
  uint8_t jwt_key[32], link_key[32];
  gw_argon2_params argon2;
  gw_ratelimit *rl_user, *rl_ip; /* NULL when off */
  gw_cache *perm_cache;          /* "<kind>:<object>:<user>" -> permission bits */
  gw_cache *auth_cache;          /* session / API token -> validity, user, scopes */
  gw_small_cache *small;         /* contents of small documents, NULL when off */
  gw_ring_budget ring_budget;    /* transfer buffers left (cfg.transfer_memory) */
  _Atomic int reapers;           /* clean-ups running in the background (gw_reap) */
  uint64_t req_seq;              /* last generated request id number (atomic) */
  cmn_metrics *metrics;
  struct gw_stats *stats;        /* the gateway's series in `metrics` (reply.c) */
  struct MHD_Daemon *mhd;
  uint16_t port;
  int64_t started_ms;
} gw_ctx;

/* ---- who is asking ---- */

#define GW_SCOPE_READ 0x1u   /* read and list documents and namespaces */
#define GW_SCOPE_WRITE 0x2u  /* upload, change, delete */
#define GW_SCOPE_SHARE 0x4u  /* share, presign links */
#define GW_SCOPE_TOKENS 0x8u /* manage API tokens (sessions only) */
#define GW_SCOPE_ALL 0xfu

typedef struct gw_user {
  int64_t id;          /* 0: anonymous */
  unsigned scopes;     /* GW_SCOPE_* */
  char sid[40];        /* session id of a JWT, "" for API tokens */
  int64_t token_id;    /* API token id, 0 for sessions */
} gw_user;

/* Permission bits a user has on a document or namespace (perm.c). */
#define GW_PERM_READ 0x1u
#define GW_PERM_WRITE 0x2u
#define GW_PERM_OWNER 0x4u /* may share, change visibility, delete the namespace */

/* ---- requests and routes ---- */

typedef struct gw_req gw_req;

#define GW_R_AUTH 0x1u     /* needs a valid token (else 401) */
#define GW_R_AUTH_OPT 0x2u /* a token is used when given; anonymous otherwise */
#define GW_R_JSON 0x4u     /* collect and parse a JSON body (object) */
#define GW_R_STREAM 0x8u   /* hand body pieces to `data` */

typedef struct gw_route {
  const char *method;
  const char *pattern; /* "/v1/document/{}/download"; "{}" one segment, "{*}" the rest */
  unsigned flags;
  unsigned scope;      /* GW_SCOPE_* an authenticated user needs */
  /* Stream routes only: after headers and authentication. Return 0 to read
   * the body, or reply (a refusal) and return nonzero. */
  int (*begin)(gw_req *r);
  /* Stream routes only: one piece of the body. Return 0, or a negative cairn
   * code to stop (the rest of the body is discarded; `handle` still runs and
   * sees r->body_error). May block (backpressure). */
  int (*data)(gw_req *r, const char *buf, size_t n);
  /* The body is complete (or there is none): reply. */
  void (*handle)(gw_req *r);
} gw_route;

struct gw_req {
  gw_ctx *gw;
  struct MHD_Connection *conn;
  const gw_route *route;
  const char *method;
  const char *url;             /* path without the query string, percent-decoded */
  char *params[GW_MAX_PARAMS]; /* {} captures, decoded, owned by the request */
  int nparams;
  char id[24];                 /* request id (X-Request-Id) */
  char peer[64];               /* client address */
  gw_user user;
  int64_t start_ns;
  int64_t content_length;      /* -1 when not given (chunked), -2 when malformed */
  json_t *json;                /* GW_R_JSON: the parsed body (an object) */
  cmn_buf body;                /* GW_R_JSON: the raw body while it arrives */
  int body_error;              /* first error from `data` or body collection */
  uint64_t body_bytes;
  uint64_t discarded;
  void *state;                 /* the handler's; freed by state_free at the end */
  void (*state_free)(void *state);
  int status;                  /* the status replied, 0 before */
  uint64_t bytes_out;          /* body bytes of the reply (as declared) */
  struct MHD_Response *pending;
  char *method_copy, *url_copy; /* what method and url point to */
  char *extra_headers;         /* "Name\0value\0Name\0value\0\0" added to the reply */
  size_t extra_len;
};

/* Query argument (percent-decoded), NULL when absent. */
const char *gw_query(gw_req *r, const char *key);
/* Request header, NULL when absent. */
const char *gw_header(gw_req *r, const char *name);

/* ---- replies (reply.c) ---- */

/* Add a header to the reply about to be made. Copied. */
void gw_reply_header(gw_req *r, const char *name, const char *value);
/* JSON reply; `body` is stolen (decref'd). */
void gw_reply_json(gw_req *r, int status, json_t *body);
/* An empty reply (204, 304...). */
void gw_reply_empty(gw_req *r, int status);
/* {"error":{"code":code,"message":...}} with `status`. */
void gw_reply_error(gw_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The refusal for a cairn error code (status and code from the error list);
 * `what` starts the message. */
void gw_reply_cairn(gw_req *r, int rc, const char *what);
/* Queue a prepared libmicrohttpd response (owned by this call from now on). */
void gw_reply_mhd(gw_req *r, int status, struct MHD_Response *resp, uint64_t bytes);

/* The stable error code string for a cairn error ("not_found", ...). */
const char *gw_error_code(int rc);

/* ---- JSON helpers (reply.c) ---- */

/* Field `key` of r->json as a string / integer / bool. Absent or of another
 * type: NULL / `def`. */
const char *gw_json_str(gw_req *r, const char *key);
int gw_json_bool(gw_req *r, const char *key, int def);
/* ^[A-Za-z0-9._-]{3,64}$, the users table's rule for a username. */
int gw_username_valid(const char *s);
/* Refuse (400, and return 1) a JSON body with a field not in `known`
 * (NULL-terminated), so a misspelt field is not silently ignored. */
int gw_json_only_fields(gw_req *r, const char *const *known);

/* Run fn(arg) on a detached thread (inline if none can be made): for the
 * slow clean-up of a transfer its client abandoned (joining a thread that
 * may sit in a cluster call, marking a row failed), which must not hold up
 * the thread that noticed it. gw_stop waits for these to finish. */
void gw_reap(gw_ctx *gw, void (*fn)(void *), void *arg);

/* ---- server (server.c) ---- */

/* Open the database, migrate, connect the cluster and start listening.
 * 0 or an error with a message in err. */
int gw_start(gw_ctx *gw, char *err, size_t errlen);
/* Stop listening, wait for requests to end, free everything gw_start made. */
void gw_stop(gw_ctx *gw);

/* The route table (routes.c) and the lookup. Returns the route for method
 * and path, filling r->params; NULL with *allowed set when the path exists
 * with other methods (405), NULL and *allowed 0 when it does not (404). */
const gw_route *gw_route_find(gw_req *r, const char *method, const char *path, int *allowed);

/* ---- authentication (auth.c) ---- */

/* Resolve an Authorization header value into r->user. 0; CAIRN_EAUTH for a
 * bad, expired or revoked token (401); CAIRN_EUNAVAIL / CAIRN_EBUSY when
 * the database could not be asked (503). */
int gw_auth_resolve(gw_ctx *gw, const char *authorization, gw_user *out);

/* ---- permissions (perm.c) ---- */

/* Permission bits of r->user on document `doc_id` / namespace `ns_name`
 * (0 when none or it does not exist; a negative cairn code when the
 * database failed). Cached; see gw_perm_changed. */
int gw_perm_document(gw_ctx *gw, int64_t user, const char *doc_id, unsigned *bits);
int gw_perm_namespace(gw_ctx *gw, int64_t user, const char *ns_name, unsigned *bits);
/* Call after any change to shares, namespace visibility, ownership or
 * deletion: drops cached permission answers. */
void gw_perm_changed(gw_ctx *gw);

#endif /* GW_H */
