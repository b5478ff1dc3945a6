/*
 * server.c - the libmicrohttpd side of the gateway: one access callback
 * that walks a request through route match, limits, authentication, body
 * collection or streaming and the handler; the completion callback that
 * writes the access log and frees the request; start and stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_internal.h"

/* A body still arriving after its request was refused is read and thrown
 * away up to this much (so the client sees the refusal), then the
 * connection is closed. */
#define GW_DISCARD_MAX (16ull << 20)
#define GW_LENGTH_BAD (-2) /* r->content_length of an unparsable header */

static void req_free(gw_req *r) {
  if (r->state_free && r->state) {
    r->state_free(r->state);
  }
  for (int i = 0; i < r->nparams; i++) {
    free(r->params[i]);
  }
  if (r->json) {
    json_decref(r->json);
  }
  if (r->pending) {
    MHD_destroy_response(r->pending);
  }
  cmn_buf_free(&r->body);
  free(r->extra_headers);
  free(r->method_copy);
  free(r->url_copy);
  free(r);
}

const char *gw_query(gw_req *r, const char *key) {
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *gw_header(gw_req *r, const char *name) {
  return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* A client-given X-Request-Id is kept when short and plain; else one is
 * made from a process-wide counter and the start time. */
static void set_request_id(gw_req *r) {
  const char *given = gw_header(r, "X-Request-Id");
  if (given) {
    size_t n = strlen(given);
    int ok = n > 0 && n < sizeof r->id;
    for (size_t i = 0; ok && i < n; i++) {
      char ch = given[i];
      ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
    }
    if (ok) {
      memcpy(r->id, given, n + 1);
      return;
    }
  }
  uint64_t s = __atomic_add_fetch(&r->gw->req_seq, 1, __ATOMIC_RELAXED);
  snprintf(r->id, sizeof r->id, "%08x%08x", (unsigned)(r->gw->started_ms & 0xffffffff),
           (unsigned)(s & 0xffffffff));
}

static void set_peer(gw_req *r) {
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  snprintf(r->peer, sizeof r->peer, "unknown");
  if (ci == NULL || ci->client_addr == NULL) {
    return;
  }
  const struct sockaddr *sa = ci->client_addr;
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, r->peer,
              sizeof r->peer);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, r->peer,
              sizeof r->peer);
  }
}

/* Is the request's Content-Type JSON (or absent)? */
static int json_content_type(gw_req *r) {
  const char *ct = gw_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (ct == NULL || *ct == '\0') {
    return 1;
  }
  return strncasecmp(ct, "application/json", 16) == 0 && (ct[16] == '\0' || ct[16] == ';' ||
                                                          ct[16] == ' ');
}

/* Everything decided from the headers alone. Returns 1 when the request was
 * refused (a reply is queued), 0 to go on to the body. */
static int on_headers(gw_req *r, const char *method, const char *url) {
  gw_ctx *gw = r->gw;
  int allowed = 0;
  if (strcmp(method, "OPTIONS") == 0) {
    gw_cors_preflight(r);
    return 1;
  }
  r->route = gw_route_find(r, method, url, &allowed);
  if (r->route == NULL) {
    if (allowed) {
      gw_reply_error(r, 405, "method_not_allowed", "%s is not allowed on %s", method, url);
    } else {
      gw_reply_error(r, 404, "not_found", "no such endpoint: %s", url);
    }
    return 1;
  }
  int64_t retry = 0;
  if (gw->rl_ip && gw_ratelimit_take(gw->rl_ip, r->peer, cmn_mono_ms(), &retry) < 0) {
    gw_reply_rate_limited(r, retry);
    return 1;
  }
  const char *authz = gw_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
  if (authz && (r->route->flags & (GW_R_AUTH | GW_R_AUTH_OPT))) {
    int rc = gw_auth_resolve(gw, authz, &r->user);
    if (rc == CAIRN_EAUTH) {
      gw_reply_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
      gw_reply_error(r, 401, "unauthenticated", "the token is invalid, expired or revoked");
      return 1;
    }
    if (rc < 0) {
      gw_reply_cairn(r, rc, "checking the token");
      return 1;
    }
  } else if (r->route->flags & GW_R_AUTH) {
    gw_reply_header(r, "WWW-Authenticate", "Bearer");
    gw_reply_error(r, 401, "unauthenticated", "an Authorization: Bearer token is required");
    return 1;
  }
  if (r->user.id != 0) {
    char key[32];
    snprintf(key, sizeof key, "u%lld", (long long)r->user.id);
    if (gw->rl_user && gw_ratelimit_take(gw->rl_user, key, cmn_mono_ms(), &retry) < 0) {
      gw_reply_rate_limited(r, retry);
      return 1;
    }
    if ((r->user.scopes & r->route->scope) != r->route->scope) {
      gw_reply_error(r, 403, "insufficient_scope", "the token's scopes do not allow this");
      return 1;
    }
  }
  if (r->content_length == GW_LENGTH_BAD) {
    gw_reply_error(r, 400, "bad_request", "bad Content-Length");
    return 1;
  }
  if (r->route->flags & GW_R_JSON) {
    if (r->content_length > GW_JSON_MAX) {
      gw_reply_error(r, 413, "too_large", "a JSON body is at most %d bytes", GW_JSON_MAX);
      return 1;
    }
    if (!json_content_type(r)) {
      gw_reply_error(r, 415, "unsupported_media_type", "the body must be application/json");
      return 1;
    }
  }
  if ((r->route->flags & GW_R_STREAM) && r->route->begin) {
    if (r->route->begin(r) != 0) {
      if (r->status == 0) {
        gw_reply_error(r, 500, "internal", "the request was refused without a reason");
      }
      return 1;
    }
  }
  return 0;
}

/* One piece of the body. */
static void on_body(gw_req *r, const char *data, size_t n) {
  r->body_bytes += n;
  if (r->status != 0 || r->body_error != 0) {
    r->discarded += n;
    return;
  }
  if (r->route->flags & GW_R_JSON) {
    if (r->body.len + n > GW_JSON_MAX) {
      r->body_error = CAIRN_ETOOBIG;
      cmn_buf_free(&r->body);
      return;
    }
    cmn_buf_append(&r->body, data, n);
  } else if ((r->route->flags & GW_R_STREAM) && r->route->data) {
    int rc = r->route->data(r, data, n);
    if (rc < 0) {
      r->body_error = rc;
    }
  } else {
    r->discarded += n; /* a body where none is expected is ignored */
  }
}

/* The body is complete: parse JSON if needed and run the handler. */
static void on_complete(gw_req *r) {
  if (r->route->flags & GW_R_JSON) {
    if (r->body_error == CAIRN_ETOOBIG) {
      gw_reply_error(r, 413, "too_large", "a JSON body is at most %d bytes", GW_JSON_MAX);
      return;
    }
    json_error_t jerr;
    r->json = r->body.len ? json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr)
                          : json_object();
    if (r->json == NULL || !json_is_object(r->json)) {
      gw_reply_error(r, 400, "bad_json", "the body is not a JSON object%s%s",
                     r->json ? "" : ": ", r->json ? "" : jerr.text);
      return;
    }
  }
  r->route->handle(r);
  if (r->status == 0) {
    CMN_ERROR("gw.http", "no_reply id=%s path=%s", r->id, r->url);
    gw_reply_error(r, 500, "internal", "the handler did not answer");
  }
}

/* Hand a reply made by a handler to libmicrohttpd (which only takes one
 * after the headers or after the whole body, never in between). */
static enum MHD_Result queue_pending(gw_req *r) {
  if (r->pending == NULL) {
    return MHD_YES;
  }
  struct MHD_Response *resp = r->pending;
  r->pending = NULL;
  enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ok;
}

/* A refusal made from the headers is sent at once when no body follows or
 * the client waits for `100 Continue` (it then never sends the body). A
 * client that sends its body unasked would see the connection closed in
 * the middle of sending, not the refusal: its body (up to GW_DISCARD_MAX)
 * is read and thrown away first. */
static int body_follows(gw_req *r) {
  const char *expect = gw_header(r, MHD_HTTP_HEADER_EXPECT);
  if (expect && strcasecmp(expect, "100-continue") == 0) {
    return 0;
  }
  const char *te = gw_header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING);
  return (te && strcasecmp(te, "chunked") == 0) ||
         (r->content_length > 0 && (uint64_t)r->content_length <= GW_DISCARD_MAX);
}

/* Content-Length as a number: -1 when absent, GW_LENGTH_BAD when not a
 * non-negative decimal. */
static int64_t content_length(gw_req *r) {
  const char *cl = gw_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl == NULL) {
    return -1;
  }
  char *end;
  errno = 0;
  long long v = strtoll(cl, &end, 10);
  return errno || end == cl || *end != '\0' || v < 0 ? GW_LENGTH_BAD : v;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  gw_ctx *gw = cls;
  gw_req *r = *con_cls;
  if (r == NULL) {
    r = cmn_calloc(1, sizeof *r);
    r->gw = gw;
    r->conn = conn;
    r->method = r->method_copy = cmn_strdup(method);
    r->url = r->url_copy = cmn_strdup(url);
    r->start_ns = cmn_mono_ns();
    set_request_id(r);
    set_peer(r);
    r->content_length = content_length(r);
    *con_cls = r;
    (void)on_headers(r, method, url);
    if (r->pending && body_follows(r)) {
      return MHD_YES; /* refused: read the body away, answer at its end */
    }
    return queue_pending(r);
  }
  if (*upload_data_size > 0) {
    on_body(r, upload_data, *upload_data_size);
    *upload_data_size = 0;
    /* Refused mid-body: read a little more so the client can see the
     * refusal, then give up on the connection. */
    if (r->discarded > GW_DISCARD_MAX) {
      return MHD_NO;
    }
    return MHD_YES;
  }
  if (r->status == 0) {
    on_complete(r);
  }
  return queue_pending(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)conn;
  gw_ctx *gw = cls;
  gw_req *r = *con_cls;
  if (r == NULL) {
    return;
  }
  *con_cls = NULL;
  gw_access_log(gw, r, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
  req_free(r);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
  (void)cls;
  char msg[256];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) {
    msg[--n] = '\0';
  }
  for (char *p = msg; *p; p++) {
    if (*p == '"') {
      *p = '\'';
    }
  }
  CMN_DEBUG("gw.http", "mhd msg=\"%s\"", msg);
}

/* Start listening on cfg.listen with the loaded PEM files (or plain). */
int gw_http_start(gw_ctx *gw, const char *cert, const char *key, char *err, size_t errlen) {
  char host[256];
  uint16_t port;
  if (gw_split_hostport(gw->cfg.listen, host, sizeof host, &port) < 0) {
    snprintf(err, errlen, "bad listen address '%s'", gw->cfg.listen);
    return CAIRN_ECONFIG;
  }
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
    snprintf(err, errlen, "listen address must be an IPv4 address, got '%s'", host);
    return CAIRN_ECONFIG;
  }
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_ERROR_LOG;
  if (cert) {
    flags |= MHD_USE_TLS;
  }
  struct MHD_OptionItem opts[16];
  int n = 0;
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &sin};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, gw};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                      (intptr_t)gw->cfg.max_connections, NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
                                      (intptr_t)(gw->cfg.idle_timeout_ms / 1000), NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, 128 * 1024, NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_STACK_SIZE, 512 * 1024, NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL};
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
  if (cert) {
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cert};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)key};
  }
  opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
  gw->mhd = MHD_start_daemon(flags, port, NULL, NULL, on_request, gw, MHD_OPTION_ARRAY, opts,
                             MHD_OPTION_END);
  if (gw->mhd == NULL) {
    snprintf(err, errlen, "cannot listen on %s (address in use, or a bad certificate or key)",
             gw->cfg.listen);
    return CAIRN_EBUSY;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(gw->mhd, MHD_DAEMON_INFO_BIND_PORT);
  gw->port = di ? di->port : port;
  return 0;
}

void gw_http_stop(gw_ctx *gw) {
  if (gw->mhd) {
    MHD_stop_daemon(gw->mhd);
    gw->mhd = NULL;
  }
}
