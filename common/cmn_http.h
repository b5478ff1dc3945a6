/*
 * cmn_http.h - the small HTTP listener every daemon runs for /healthz,
 * /metrics and /status.
 *
 * Built on libmicrohttpd with its own internal threads (a small pool), so a
 * daemon starts it and forgets it: no integration with the daemon's event
 * loop. Handlers are synchronous and meant for tiny, quick answers; they may
 * run concurrently on the pool's threads.
 *
 *   static const cmn_http_health health = {check_fn, state};
 *   cmn_http_route routes[] = {
 *     cmn_http_metrics_route(reg),
 *     cmn_http_health_route(&health),
 *     {"GET", "/status", 0, status_handler, state},
 *   };
 *   cmn_http_config cfg = {.bind = "0.0.0.0:9100", .routes = routes,
 *                          .nroutes = 3, .metrics = reg};
 *   cmn_http_server *srv;
 *   int rc = cmn_http_server_start(&srv, &cfg);
 *   ...
 *   cmn_http_server_stop(srv);
 *
 * What the server answers by itself: 404 with a JSON error for a path no
 * route serves, 405 with an Allow header for a known path with another
 * method, 413 for a request body over CMN_HTTP_MAX_BODY (the connection is
 * closed when a chunked body overflows). Malformed requests are answered by
 * libmicrohttpd itself (400 or 505 with a short HTML body, or, for a request
 * line without any space, by closing the connection); the server keeps
 * serving others. Request bodies are read and discarded; handlers do not
 * see them.
 * JSON errors look like {"error":{"code":"not_found","message":"..."}}.
 */
#ifndef CMN_HTTP_H
#define CMN_HTTP_H

#include "cmn_metrics.h"
#include "cmn_util.h"

#include <stddef.h>
#include <stdint.h>

#define CMN_HTTP_MAX_BODY (64 * 1024)

typedef struct cmn_http_server cmn_http_server;
typedef struct cmn_http_request cmn_http_request;
typedef struct cmn_http_response cmn_http_response;

/* Fills `resp` for `req`. Runs on one of the server's threads, possibly
 * concurrently with other requests (and other routes). `req` and `resp` are
 * valid only during the call. The default response is 200, an empty body
 * and `text/plain; charset=utf-8`. */
typedef void (*cmn_http_handler)(const cmn_http_request *req, cmn_http_response *resp, void *arg);

/* One route. `method` is an HTTP method ("GET"; a GET route also answers
 * HEAD, without the body). `path` starts with '/'; with `prefix` set, the
 * route serves every path that starts with it. The first matching route in
 * table order wins. Strings are copied at start; `arg` must outlive the
 * server. */
typedef struct cmn_http_route {
  const char *method;
  const char *path;
  int prefix;
  cmn_http_handler handler;
  void *arg;
} cmn_http_route;

typedef struct cmn_http_config {
  /* "host:port" or "[v6addr]:port"; host may be a name or an address
   * (0.0.0.0 for all IPv4 interfaces); port 0 picks a free port, see
   * cmn_http_server_port. */
  const char *bind;
  const cmn_http_route *routes; /* copied */
  size_t nroutes;
  /* Optional: counts every answered request as
   * cairn_http_requests_total{path="<route path>",code="<status>"}
   * (path="unmatched" for 404s). Must outlive the server. */
  cmn_metrics *metrics;
  unsigned threads;         /* worker threads; 0 means 2 */
  unsigned idle_timeout_s;  /* idle connections are closed after this; 0 means 30 */
  unsigned max_connections; /* further connections are refused; 0 means 64 */
} cmn_http_config;

/*
 * Validate `cfg`, bind and start serving on the server's own threads.
 * *out owns the server until cmn_http_server_stop. Returns 0,
 * CAIRN_EINVAL (bad bind string or route), CAIRN_EBUSY (address in use),
 * CAIRN_EPERM (port not allowed) or CAIRN_EIO (any other failure to start).
 * On error nothing is left running and *out is untouched.
 * Call from any thread.
 */
int cmn_http_server_start(cmn_http_server **out, const cmn_http_config *cfg);

/* The port actually bound (useful after binding port 0). */
uint16_t cmn_http_server_port(const cmn_http_server *srv);

/* Stop accepting, close every connection (clients in the middle of a request
 * are cut off), wait for running handlers to return, and free the server.
 * Must not be called from a handler. NULL is ignored. */
void cmn_http_server_stop(cmn_http_server *srv);

/* ---- request view: strings valid only during the handler call ---- */

const char *cmn_http_req_method(const cmn_http_request *req);
/* The path without the query string, percent-decoded. */
const char *cmn_http_req_path(const cmn_http_request *req);
/* Percent-decoded value of query argument `key`: NULL when absent, "" when
 * given without a value (`?verbose`). */
const char *cmn_http_req_query(const cmn_http_request *req, const char *key);
/* Value of request header `name` (case-insensitive), or NULL. */
const char *cmn_http_req_header(const cmn_http_request *req, const char *name);
/* The peer as "addr:port" ("[v6addr]:port" for IPv6). */
const char *cmn_http_req_peer(const cmn_http_request *req);

/* ---- response: filled by the handler ---- */

/* Status code 100..599; anything else makes the server answer 500. */
void cmn_http_resp_status(cmn_http_response *resp, int status);
/* Content-Type (copied). CAIRN_EINVAL if it contains control characters. */
int cmn_http_resp_content_type(cmn_http_response *resp, const char *type);
/* The body buffer; append to it. Owned by the response. */
cmn_buf *cmn_http_resp_body(cmn_http_response *resp);
/* Add a response header (both copied). CAIRN_EINVAL for a name that is not
 * an HTTP token, a value with control characters, or a header the server
 * manages itself (Content-Length, Content-Type, Transfer-Encoding,
 * Connection). */
int cmn_http_resp_header(cmn_http_response *resp, const char *name, const char *value);
/* Replace the response with a JSON error:
 * {"error":{"code":"<code>","message":"<message>"}} and the given status. */
void cmn_http_resp_error(cmn_http_response *resp, int status, const char *code,
                         const char *message);

/* ---- built-in routes ---- */

/* GET /metrics: the registry rendered with content type
 * `text/plain; version=0.0.4; charset=utf-8`. `reg` must outlive the server. */
cmn_http_route cmn_http_metrics_route(cmn_metrics *reg);

/* Health check for GET /healthz: return 0 when healthy, or a negative cairn
 * code after appending a short reason to `reason`. Runs on a server thread. */
typedef int (*cmn_http_health_fn)(void *arg, cmn_buf *reason);
typedef struct cmn_http_health {
  cmn_http_health_fn fn;
  void *arg;
} cmn_http_health;

/* GET /healthz: 200 "ok\n" when fn returns 0, else 503 with
 * {"error":{"code":"unavailable","message":"<reason>"}}. `health` must
 * outlive the server. */
cmn_http_route cmn_http_health_route(const cmn_http_health *health);

#endif /* CMN_HTTP_H */
