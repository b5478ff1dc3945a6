/*
 * http.c - the small HTTP listener (libmicrohttpd) with a route table.
 *
 * libmicrohttpd calls on_request several times per request: once when the
 * headers are in (*con_cls still NULL), once per piece of request body, and
 * once more when the request is complete. Routing and the refusals that
 * need no body (404, 405, 413 by Content-Length) happen on the first call,
 * so the body is never read for them; a routed request has its body counted
 * and discarded, and its handler runs on the last call. Per-request state
 * lives in *con_cls and is freed by the completion callback, which
 * libmicrohttpd also calls for requests cut off by a closed connection or by
 * cmn_http_server_stop.
 */
#include "cmn_http.h"

#include "cairn_error.h"
#include "cmn_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_TYPE "text/plain; charset=utf-8"

struct route {
  char *method;
  char *path;
  size_t path_len;
  int prefix;
  cmn_http_handler handler;
  void *arg;
};

struct cmn_http_server {
  struct MHD_Daemon *daemon;
  struct route *routes;
  size_t nroutes;
  cmn_metrics *metrics;
  uint16_t port;
};

struct cmn_http_request {
  struct MHD_Connection *conn;
  const char *method;
  const char *path;
  char peer[INET6_ADDRSTRLEN + 16];
};

struct resp_header {
  char *name;
  char *value;
};

struct cmn_http_response {
  int status;
  char *content_type;
  cmn_buf body;
  struct resp_header *hdrs;
  size_t nhdrs;
};

/* What on_request remembers between its calls for one request. */
struct req_state {
  const struct route *route;
  uint64_t body_len;
};

/* ---- request view ---- */

const char *cmn_http_req_method(const cmn_http_request *req) { return req->method; }

const char *cmn_http_req_path(const cmn_http_request *req) { return req->path; }

const char *cmn_http_req_query(const cmn_http_request *req, const char *key) {
  const char *value = NULL;
  size_t len = 0;
  if (!key) return NULL;
  if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &value,
                                    &len) != MHD_YES)
    return NULL;
  return value ? value : "";
}

const char *cmn_http_req_header(const cmn_http_request *req, const char *name) {
  return name ? MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *cmn_http_req_peer(const cmn_http_request *req) { return req->peer; }

static void format_peer(struct MHD_Connection *c, char *out, size_t n) {
  const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  char host[INET6_ADDRSTRLEN], serv[8];
  snprintf(out, n, "unknown");
  if (!ci || !ci->client_addr) return;
  const struct sockaddr *sa = ci->client_addr;
  socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  snprintf(out, n, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, serv);
}

/* ---- response ---- */

static int has_ctl(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return 1;
  return 0;
}

static int is_token(const char *s) {
  if (!s || !*s) return 0;
  for (const char *p = s; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          strchr("!#$%&'*+-.^_`|~", *p)))
      return 0;
  return 1;
}

void cmn_http_resp_status(cmn_http_response *resp, int status) { resp->status = status; }

int cmn_http_resp_content_type(cmn_http_response *resp, const char *type) {
  if (!type || !*type || has_ctl(type)) return CAIRN_EINVAL;
  free(resp->content_type);
  resp->content_type = cmn_strdup(type);
  return 0;
}

cmn_buf *cmn_http_resp_body(cmn_http_response *resp) { return &resp->body; }

int cmn_http_resp_header(cmn_http_response *resp, const char *name, const char *value) {
  static const char *const managed[] = {"Content-Length", "Content-Type", "Transfer-Encoding",
                                        "Connection"};
  if (!is_token(name) || !value || has_ctl(value)) return CAIRN_EINVAL;
  for (size_t i = 0; i < CMN_ARRAY_LEN(managed); i++)
    if (strcasecmp(name, managed[i]) == 0) return CAIRN_EINVAL;
  resp->hdrs = cmn_realloc(resp->hdrs, (resp->nhdrs + 1) * sizeof *resp->hdrs);
  resp->hdrs[resp->nhdrs].name = cmn_strdup(name);
  resp->hdrs[resp->nhdrs].value = cmn_strdup(value);
  resp->nhdrs++;
  return 0;
}

void cmn_http_resp_error(cmn_http_response *resp, int status, const char *code,
                         const char *message) {
  resp->status = status;
  free(resp->content_type);
  resp->content_type = cmn_strdup("application/json");
  resp->body.len = 0;
  cmn_buf_append(&resp->body, "{\"error\":{\"code\":", 17);
  cmn_buf_append_json_str(&resp->body, code ? code : "error");
  cmn_buf_append(&resp->body, ",\"message\":", 11);
  cmn_buf_append_json_str(&resp->body, message ? message : "");
  cmn_buf_append(&resp->body, "}}\n", 3);
}

static void resp_init(cmn_http_response *resp) {
  memset(resp, 0, sizeof *resp);
  resp->status = 200;
}

static void resp_free(cmn_http_response *resp) {
  for (size_t i = 0; i < resp->nhdrs; i++) {
    free(resp->hdrs[i].name);
    free(resp->hdrs[i].value);
  }
  free(resp->hdrs);
  free(resp->content_type);
  cmn_buf_free(&resp->body);
}

/* Count one answered request as cairn_http_requests_total{path,code}. The
 * series is looked up (or created) by registration, which returns the
 * existing handle for a known label pair; these endpoints are scraped a few
 * times a minute, so the registry lock this takes is no concern. */
static void count_request(cmn_http_server *srv, const char *path_label, int status) {
  if (!srv->metrics) return;
  char code[16];
  snprintf(code, sizeof code, "%d", status);
  const cmn_label labels[] = {{"path", path_label}, {"code", code}};
  cmn_counter *c;
  if (cmn_counter_register(srv->metrics, "cairn_http_requests_total",
                           "HTTP requests answered, by route and status.", labels, 2, &c) == 0)
    cmn_counter_inc(c);
}

/* Hand `resp` to libmicrohttpd (the body buffer moves into the MHD response
 * without a copy) and free what is left of it. MHD_NO closes the connection. */
static enum MHD_Result send_response(cmn_http_server *srv, struct MHD_Connection *c,
                                     const char *path_label, cmn_http_response *resp) {
  if (resp->status < 100 || resp->status > 599) {
    CMN_ERROR("http", "handler set invalid status=%d path=%s", resp->status, path_label);
    cmn_http_resp_error(resp, 500, "internal", "handler produced an invalid status");
  }
  enum MHD_Result ret = MHD_NO;
  struct MHD_Response *r;
  if (resp->body.len > 0) {
    r = MHD_create_response_from_buffer(resp->body.len, resp->body.data, MHD_RESPMEM_MUST_FREE);
    if (r) resp->body = (cmn_buf){0};
  } else {
    r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  }
  if (!r) goto out;
  int ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                   resp->content_type ? resp->content_type : DEFAULT_TYPE) == MHD_YES;
  for (size_t i = 0; ok && i < resp->nhdrs; i++)
    ok = MHD_add_response_header(r, resp->hdrs[i].name, resp->hdrs[i].value) == MHD_YES;
  if (ok) {
    /* Counted before queueing: the client may see the answer (and scrape
     * again) before this thread gets past MHD_queue_response. */
    count_request(srv, path_label, resp->status);
    ret = MHD_queue_response(c, (unsigned)resp->status, r);
  }
  MHD_destroy_response(r);
out:
  resp_free(resp);
  return ret;
}

/* Answer a refusal (404, 405, 413, ...) with a JSON error. */
static enum MHD_Result send_error(cmn_http_server *srv, struct MHD_Connection *c,
                                  const char *path_label, int status, const char *code,
                                  const char *message, const char *allow) {
  cmn_http_response resp;
  resp_init(&resp);
  cmn_http_resp_error(&resp, status, code, message);
  if (allow) cmn_http_resp_header(&resp, "Allow", allow);
  return send_response(srv, c, path_label, &resp);
}

/* ---- routing ---- */

static int path_matches(const struct route *r, const char *path) {
  return r->prefix ? strncmp(path, r->path, r->path_len) == 0 : strcmp(path, r->path) == 0;
}

static int method_matches(const struct route *r, const char *method) {
  return strcmp(r->method, method) == 0 ||
         (strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The first route serving (path, method); NULL if none. *path_known says
 * whether some route serves the path with another method (405 vs 404). */
static const struct route *find_route(const cmn_http_server *srv, const char *path,
                                      const char *method, int *path_known) {
  *path_known = 0;
  for (size_t i = 0; i < srv->nroutes; i++) {
    if (!path_matches(&srv->routes[i], path)) continue;
    *path_known = 1;
    if (method_matches(&srv->routes[i], method)) return &srv->routes[i];
  }
  return NULL;
}

/* Whether `m` is already one of the ", "-separated methods in `list`. */
static int list_has(const cmn_buf *list, const char *m) {
  size_t n = strlen(m);
  for (const char *p = list->data; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, m, n) == 0) return 1;
    p = end ? end + 2 : p + len;
  }
  return 0;
}

/* The Allow header for a path: each method of the routes serving it, once,
 * with HEAD wherever GET is. */
static void allow_list(const cmn_http_server *srv, const char *path, cmn_buf *out) {
  for (size_t i = 0; i < srv->nroutes; i++) {
    const struct route *r = &srv->routes[i];
    if (!path_matches(r, path)) continue;
    if (!list_has(out, r->method)) cmn_buf_appendf(out, "%s%s", out->len ? ", " : "", r->method);
    if (strcmp(r->method, "GET") == 0 && !list_has(out, "HEAD")) cmn_buf_appendf(out, ", HEAD");
  }
}

/* First call for a request: route it, or refuse it before reading a body. */
static enum MHD_Result begin_request(cmn_http_server *srv, struct MHD_Connection *c,
                                     const char *url, const char *method, struct req_state *st) {
  int known;
  const struct route *r = find_route(srv, url, method, &known);
  if (!r) {
    char msg[320];
    if (!known) {
      snprintf(msg, sizeof msg, "no resource at %.256s", url);
      return send_error(srv, c, "unmatched", 404, "not_found", msg, NULL);
    }
    cmn_buf allow = {0};
    allow_list(srv, url, &allow);
    snprintf(msg, sizeof msg, "method %.32s not allowed here", method);
    enum MHD_Result ret =
        send_error(srv, c, "unmatched", 405, "method_not_allowed", msg, allow.data);
    cmn_buf_free(&allow);
    return ret;
  }
  const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
  if (cl && strtoull(cl, NULL, 10) > CMN_HTTP_MAX_BODY)
    return send_error(srv, c, r->path, 413, "too_large", "request body too large", NULL);
  st->route = r;
  return MHD_YES;
}

/* Last call for a routed request: run the handler and send its answer. */
static enum MHD_Result run_handler(cmn_http_server *srv, struct MHD_Connection *c, const char *url,
                                   const char *method, const struct route *r) {
  cmn_http_request req = {.conn = c, .method = method, .path = url};
  format_peer(c, req.peer, sizeof req.peer);
  cmn_http_response resp;
  resp_init(&resp);
  r->handler(&req, &resp, r->arg);
  return send_response(srv, c, r->path, &resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
  (void)version;
  (void)upload_data;
  cmn_http_server *srv = cls;
  struct req_state *st = *con_cls;
  if (!st) {
    st = cmn_calloc(1, sizeof *st);
    *con_cls = st;
    return begin_request(srv, c, url, method, st);
  }
  if (*upload_data_size > 0) {
    st->body_len += *upload_data_size;
    *upload_data_size = 0;
    /* A response cannot be queued mid-body; an oversized (chunked) body
     * therefore ends the connection. */
    if (st->body_len > CMN_HTTP_MAX_BODY) {
      CMN_WARN("http", "request body too large, closing path=%.256s", url);
      return MHD_NO;
    }
    return MHD_YES;
  }
  return run_handler(srv, c, url, method, st->route);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)c;
  (void)toe;
  free(*con_cls);
  *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                              va_list ap) {
  (void)cls;
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
  CMN_WARN("http", "libmicrohttpd msg=\"%s\"", msg);
}

/* ---- start and stop ---- */

/* Parse "host:port" / "[v6]:port" into a socket address. */
static int parse_bind(const char *bind, struct sockaddr_storage *ss, socklen_t *len) {
  char host[256];
  const char *colon = strrchr(bind, ':');
  if (!colon || colon == bind || (size_t)(colon - bind) >= sizeof host) return CAIRN_EINVAL;
  const char *h = bind;
  size_t hlen = (size_t)(colon - bind);
  if (h[0] == '[') {
    if (hlen < 3 || h[hlen - 1] != ']') return CAIRN_EINVAL;
    h++;
    hlen -= 2;
  }
  memcpy(host, h, hlen);
  host[hlen] = '\0';
  const char *port = colon + 1;
  if (!*port || strlen(port) > 5 || strspn(port, "0123456789") != strlen(port) ||
      atoi(port) > 65535)
    return CAIRN_EINVAL;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
  struct addrinfo *res = NULL;
  if (getaddrinfo(host, port, &hints, &res) != 0 || !res) return CAIRN_EINVAL;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

/* libmicrohttpd does not say why it failed to start; binding the address
 * ourselves tells the caller the usual reason (address in use). */
static int diagnose_bind(const struct sockaddr_storage *ss, socklen_t len) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return CAIRN_EIO;
  int one = 1, rc = CAIRN_EIO;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)ss, len) != 0) {
    if (errno == EADDRINUSE) rc = CAIRN_EBUSY;
    else if (errno == EACCES || errno == EPERM) rc = CAIRN_EPERM;
    else if (errno == EADDRNOTAVAIL) rc = CAIRN_EINVAL;
  }
  close(fd);
  return rc;
}

static int route_valid(const cmn_http_route *r) {
  return is_token(r->method) && r->path && r->path[0] == '/' && !has_ctl(r->path) &&
         !strchr(r->path, ' ') && r->handler;
}

static void free_routes(struct route *routes, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(routes[i].method);
    free(routes[i].path);
  }
  free(routes);
}

int cmn_http_server_start(cmn_http_server **out, const cmn_http_config *cfg) {
  struct sockaddr_storage ss;
  socklen_t sslen = 0;
  if (!out || !cfg || !cfg->bind || (cfg->nroutes > 0 && !cfg->routes)) return CAIRN_EINVAL;
  for (size_t i = 0; i < cfg->nroutes; i++)
    if (!route_valid(&cfg->routes[i])) return CAIRN_EINVAL;
  int rc = parse_bind(cfg->bind, &ss, &sslen);
  if (rc != 0) return rc;

  cmn_http_server *srv = cmn_calloc(1, sizeof *srv);
  srv->metrics = cfg->metrics;
  srv->nroutes = cfg->nroutes;
  srv->routes = cmn_calloc(cfg->nroutes, sizeof *srv->routes);
  for (size_t i = 0; i < cfg->nroutes; i++) {
    const cmn_http_route *r = &cfg->routes[i];
    srv->routes[i] = (struct route){cmn_strdup(r->method), cmn_strdup(r->path), strlen(r->path),
                                    r->prefix, r->handler, r->arg};
  }
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
  if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
  uint16_t want = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
  srv->daemon = MHD_start_daemon(
      flags, want, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
      MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
      MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)(cfg->threads ? cfg->threads : 2),
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)(cfg->idle_timeout_s ? cfg->idle_timeout_s : 30),
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(cfg->max_connections ? cfg->max_connections : 64),
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
  if (!srv->daemon) {
    rc = diagnose_bind(&ss, sslen);
    CMN_ERROR("http", "cannot start listener addr=%s err=%s", cfg->bind, cairn_err_name(rc));
    goto fail;
  }
  const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = di ? di->port : want;
  CMN_INFO("http", "listening addr=%s port=%u routes=%zu", cfg->bind, (unsigned)srv->port,
           srv->nroutes);
  *out = srv;
  return 0;
fail:
  free_routes(srv->routes, srv->nroutes);
  free(srv);
  return rc;
}

uint16_t cmn_http_server_port(const cmn_http_server *srv) { return srv->port; }

void cmn_http_server_stop(cmn_http_server *srv) {
  if (!srv) return;
  MHD_stop_daemon(srv->daemon);
  CMN_INFO("http", "stopped port=%u", (unsigned)srv->port);
  free_routes(srv->routes, srv->nroutes);
  free(srv);
}

/* ---- built-in routes ---- */

static void metrics_handler(const cmn_http_request *req, cmn_http_response *resp, void *arg) {
  (void)req;
  cmn_metrics_render(arg, &resp->body);
  cmn_http_resp_content_type(resp, "text/plain; version=0.0.4; charset=utf-8");
  cmn_http_resp_header(resp, "Cache-Control", "no-store");
}

cmn_http_route cmn_http_metrics_route(cmn_metrics *reg) {
  return (cmn_http_route){"GET", "/metrics", 0, metrics_handler, reg};
}

static void health_handler(const cmn_http_request *req, cmn_http_response *resp, void *arg) {
  (void)req;
  const cmn_http_health *h = arg;
  cmn_buf reason = {0};
  int rc = h && h->fn ? h->fn(h->arg, &reason) : CAIRN_EINTERNAL;
  if (rc == 0) {
    cmn_buf_append(&resp->body, "ok\n", 3);
  } else {
    cmn_http_resp_error(resp, 503, "unavailable", reason.len ? reason.data : cairn_strerror(rc));
  }
  cmn_http_resp_header(resp, "Cache-Control", "no-store");
  cmn_buf_free(&reason);
}

cmn_http_route cmn_http_health_route(const cmn_http_health *health) {
  return (cmn_http_route){"GET", "/healthz", 0, health_handler, (void *)health};
}
