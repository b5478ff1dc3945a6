/* Unit tests for the HTTP listener (common/http.c): a real server on
 * 127.0.0.1 with a free port, spoken to over plain sockets. */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_http.h"
#include "cmn_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- a tiny HTTP/1.1 client ---- */

struct reply {
  int status;
  char *head; /* status line and headers, NUL-terminated */
  char *body;
  size_t body_len;
};

static void reply_free(struct reply *r) {
  free(r->head);
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* Connect to 127.0.0.1:port with 5 s send/receive timeouts, so no test can
 * hang on a silent server. */
static int connect_port(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  return fd;
}

static void send_all(int fd, const char *data) {
  size_t len = strlen(data);
  while (len > 0) {
    ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
    assert_true(w > 0);
    data += w;
    len -= (size_t)w;
  }
}

/* Value of header `name` in r->head (copied into out), or NULL. */
static const char *reply_header(const struct reply *r, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ') v++;
      const char *end = strstr(v, "\r\n");
      size_t len = end ? (size_t)(end - v) : strlen(v);
      if (len >= n) len = n - 1;
      memcpy(out, v, len);
      out[len] = '\0';
      return out;
    }
  }
  return NULL;
}

/* Read one response from fd: headers, then Content-Length bytes of body
 * (or up to EOF without one). Returns 0, or -1 if the connection closed or
 * timed out before a full response. */
static int read_reply(int fd, int head_request, struct reply *r) {
  cmn_buf in = {0};
  char chunk[4096];
  char *eoh = NULL;
  memset(r, 0, sizeof *r);
  while (!(in.data && (eoh = strstr(in.data, "\r\n\r\n")) != NULL)) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) {
      cmn_buf_free(&in);
      return -1;
    }
    cmn_buf_append(&in, chunk, (size_t)n);
  }
  size_t head_len = (size_t)(eoh - in.data) + 2;
  r->head = cmn_strndup(in.data, head_len);
  r->status = atoi(in.data + 9);
  char cl[32];
  long want = reply_header(r, "Content-Length", cl, sizeof cl) ? atol(cl) : -1;
  if (head_request) want = 0;
  cmn_buf body = {0};
  cmn_buf_append(&body, eoh + 4, in.len - head_len - 2);
  cmn_buf_free(&in);
  while (want < 0 || body.len < (size_t)want) {
    ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    cmn_buf_append(&body, chunk, (size_t)n);
  }
  cmn_buf_append(&body, "", 0);
  if (want >= 0 && body.len != (size_t)want) {
    cmn_buf_free(&body);
    reply_free(r);
    return -1;
  }
  r->body = body.data;
  r->body_len = body.len;
  return 0;
}

/* One request on a fresh connection. */
static void roundtrip(uint16_t port, const char *request, struct reply *r) {
  int fd = connect_port(port);
  send_all(fd, request);
  assert_int_equal(read_reply(fd, strncmp(request, "HEAD ", 5) == 0, r), 0);
  close(fd);
}

static void get(uint16_t port, const char *path, struct reply *r) {
  char req[512];
  snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  roundtrip(port, req, r);
}

/* ---- fixtures ---- */

struct fixture {
  cmn_metrics *reg;
  cmn_http_server *srv;
  uint16_t port;
  atomic_int healthy;
  cmn_http_health health;
  cmn_counter *hits;
};

static int check_health(void *arg, cmn_buf *reason) {
  struct fixture *f = arg;
  if (atomic_load(&f->healthy)) return 0;
  cmn_buf_appendf(reason, "disk \"data1\" full");
  return CAIRN_ENOSPC;
}

/* Echoes what the request view shows, and tries the response setters. */
static void echo_handler(const cmn_http_request *req, cmn_http_response *resp, void *arg) {
  (void)arg;
  const char *q = cmn_http_req_query(req, "name");
  const char *flag = cmn_http_req_query(req, "flag");
  const char *h = cmn_http_req_header(req, "x-test");
  cmn_buf_appendf(cmn_http_resp_body(resp), "method=%s path=%s name=%s flag=%s missing=%s x-test=%s peer=%s\n",
                  cmn_http_req_method(req), cmn_http_req_path(req), q ? q : "(null)",
                  flag ? flag : "(null)", cmn_http_req_query(req, "nope") ? "set" : "(null)",
                  h ? h : "(null)", cmn_http_req_peer(req));
  int bad = cmn_http_resp_header(resp, "Bad Name", "x") == CAIRN_EINVAL &&
            cmn_http_resp_header(resp, "Content-Length", "1") == CAIRN_EINVAL &&
            cmn_http_resp_header(resp, "X-Split", "a\r\nInjected: 1") == CAIRN_EINVAL &&
            cmn_http_resp_content_type(resp, "text/x\n") == CAIRN_EINVAL;
  cmn_http_resp_header(resp, "X-Refused", bad ? "all" : "not-all");
  cmn_http_resp_content_type(resp, "text/x-echo");
  cmn_http_resp_status(resp, 201);
}

static void bad_status_handler(const cmn_http_request *req, cmn_http_response *resp, void *arg) {
  (void)req;
  (void)arg;
  cmn_http_resp_status(resp, 42);
}

static int setup(void **state) {
  struct fixture *f = cmn_calloc(1, sizeof *f);
  atomic_init(&f->healthy, 1);
  f->health = (cmn_http_health){check_health, f};
  assert_int_equal(cmn_metrics_create(&f->reg), 0);
  assert_int_equal(cmn_counter_register(f->reg, "cairn_test_hits_total", "Test hits.", NULL, 0,
                                        &f->hits), 0);
  cmn_http_route routes[] = {
      cmn_http_metrics_route(f->reg),
      cmn_http_health_route(&f->health),
      {"POST", "/echo/", 1, echo_handler, NULL},
      {"GET", "/echo/", 1, echo_handler, NULL},
      {"GET", "/bad", 0, bad_status_handler, NULL},
  };
  cmn_http_config cfg = {.bind = "127.0.0.1:0", .routes = routes,
                         .nroutes = CMN_ARRAY_LEN(routes), .metrics = f->reg};
  assert_int_equal(cmn_http_server_start(&f->srv, &cfg), 0);
  f->port = cmn_http_server_port(f->srv);
  assert_true(f->port != 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  cmn_http_server_stop(f->srv);
  cmn_metrics_destroy(f->reg);
  free(f);
  return 0;
}

/* ---- cases ---- */

static void healthz_ok_then_unavailable(void **state) {
  struct fixture *f = *state;
  struct reply r;
  char v[128];
  get(f->port, "/healthz", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "ok\n");
  assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v), "text/plain; charset=utf-8");
  assert_string_equal(reply_header(&r, "Cache-Control", v, sizeof v), "no-store");
  reply_free(&r);

  atomic_store(&f->healthy, 0);
  get(f->port, "/healthz", &r);
  assert_int_equal(r.status, 503);
  assert_string_equal(r.body,
                      "{\"error\":{\"code\":\"unavailable\",\"message\":\"disk \\\"data1\\\" full\"}}\n");
  assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v), "application/json");
  reply_free(&r);

  /* HEAD gets the headers of GET without the body. */
  atomic_store(&f->healthy, 1);
  roundtrip(f->port, "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(r.body_len, 0);
  reply_free(&r);
}

static void metrics_shows_counters(void **state) {
  struct fixture *f = *state;
  struct reply r;
  char v[128];
  for (int i = 0; i < 5; i++) cmn_counter_inc(f->hits);
  get(f->port, "/metrics", &r);
  assert_int_equal(r.status, 200);
  assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v),
                      "text/plain; version=0.0.4; charset=utf-8");
  assert_non_null(strstr(r.body, "# TYPE cairn_test_hits_total counter\ncairn_test_hits_total 5\n"));
  reply_free(&r);
  /* The first scrape was counted by the server itself. */
  get(f->port, "/healthz", &r);
  reply_free(&r);
  get(f->port, "/nowhere", &r);
  reply_free(&r);
  get(f->port, "/metrics", &r);
  assert_non_null(strstr(r.body, "# TYPE cairn_http_requests_total counter\n"
                                 "cairn_http_requests_total{path=\"/metrics\",code=\"200\"} 1\n"
                                 "cairn_http_requests_total{path=\"/healthz\",code=\"200\"} 1\n"
                                 "cairn_http_requests_total{path=\"unmatched\",code=\"404\"} 1\n"));
  reply_free(&r);
}

static void unknown_path_is_404_json(void **state) {
  struct fixture *f = *state;
  struct reply r;
  char v[128];
  get(f->port, "/metricsx", &r);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.body,
                      "{\"error\":{\"code\":\"not_found\",\"message\":\"no resource at /metricsx\"}}\n");
  assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v), "application/json");
  reply_free(&r);
}

static void wrong_method_is_405_with_allow(void **state) {
  struct fixture *f = *state;
  struct reply r;
  char v[128];
  roundtrip(f->port, "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", &r);
  assert_int_equal(r.status, 405);
  assert_string_equal(reply_header(&r, "Allow", v, sizeof v), "GET, HEAD");
  assert_non_null(strstr(r.body, "\"code\":\"method_not_allowed\""));
  reply_free(&r);
  roundtrip(f->port, "DELETE /echo/x HTTP/1.1\r\nHost: x\r\n\r\n", &r);
  assert_int_equal(r.status, 405);
  assert_string_equal(reply_header(&r, "Allow", v, sizeof v), "POST, GET, HEAD");
  reply_free(&r);
}

static void garbage_is_400_and_server_keeps_serving(void **state) {
  struct fixture *f = *state;
  struct reply r;
  roundtrip(f->port, "NOT AN HTTP REQUEST\r\n\r\n", &r);
  assert_int_equal(r.status, 400);
  reply_free(&r);
  roundtrip(f->port, "GET /healthz HTTP/9.9\r\n\r\n", &r);
  assert_int_equal(r.status, 505);
  reply_free(&r);
  /* A request line without a single space is dropped by libmicrohttpd
   * without an answer: the connection closes (it does not hang). */
  int fd = connect_port(f->port);
  send_all(fd, "GARBAGE\r\n\r\n");
  assert_int_equal(read_reply(fd, 0, &r), -1);
  close(fd);
  roundtrip(f->port, "GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n", &r);
  assert_int_equal(r.status, 400);
  reply_free(&r);
  get(f->port, "/healthz", &r);
  assert_int_equal(r.status, 200);
  reply_free(&r);
}

static void keep_alive_serves_two_requests(void **state) {
  struct fixture *f = *state;
  struct reply r;
  int fd = connect_port(f->port);
  send_all(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(read_reply(fd, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "ok\n");
  reply_free(&r);
  send_all(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(read_reply(fd, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "cairn_test_hits_total 0\n"));
  reply_free(&r);
  close(fd);
}

static void request_view_and_response_setters(void **state) {
  struct fixture *f = *state;
  struct reply r;
  char v[128];
  roundtrip(f->port,
            "GET /echo/a%20b?name=x%26y&flag HTTP/1.1\r\nHost: x\r\nX-Test: hello\r\n"
            "Connection: close\r\n\r\n",
            &r);
  assert_int_equal(r.status, 201);
  assert_string_equal(reply_header(&r, "Content-Type", v, sizeof v), "text/x-echo");
  assert_string_equal(reply_header(&r, "X-Refused", v, sizeof v), "all");
  assert_non_null(strstr(r.body, "method=GET path=/echo/a b name=x&y flag= missing=(null) "
                                 "x-test=hello peer=127.0.0.1:"));
  assert_null(reply_header(&r, "Injected", v, sizeof v));
  reply_free(&r);
  /* A small body on a POST route is read, discarded, and the handler runs. */
  roundtrip(f->port, "POST /echo/p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", &r);
  assert_int_equal(r.status, 201);
  assert_non_null(strstr(r.body, "method=POST path=/echo/p "));
  reply_free(&r);
  /* An invalid status from a handler becomes a 500. */
  get(f->port, "/bad", &r);
  assert_int_equal(r.status, 500);
  assert_non_null(strstr(r.body, "\"code\":\"internal\""));
  reply_free(&r);
}

static void oversized_body_is_refused(void **state) {
  struct fixture *f = *state;
  struct reply r;
  roundtrip(f->port, "POST /echo/p HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", &r);
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "\"code\":\"too_large\""));
  reply_free(&r);
  /* A chunked body that grows past the limit ends the connection. */
  int fd = connect_port(f->port);
  send_all(fd, "POST /echo/p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
  char *chunk = cmn_malloc(16 * 1024 + 16);
  snprintf(chunk, 16, "4000\r\n");
  size_t n = strlen(chunk);
  memset(chunk + n, 'a', 16 * 1024);
  memcpy(chunk + n + 16 * 1024, "\r\n", 3);
  int sent = 0;
  for (; sent < 8; sent++) {
    size_t len = strlen(chunk), off = 0;
    while (off < len) {
      ssize_t w = send(fd, chunk + off, len - off, MSG_NOSIGNAL);
      if (w <= 0) break;
      off += (size_t)w;
    }
    if (off < len) break;
  }
  free(chunk);
  assert_int_equal(read_reply(fd, 0, &r), -1);
  close(fd);
  get(f->port, "/healthz", &r);
  assert_int_equal(r.status, 200);
  reply_free(&r);
}

static void stop_with_connected_clients_is_prompt(void **state) {
  struct fixture *f = *state;
  int idle = connect_port(f->port);
  int partial = connect_port(f->port);
  int kept = connect_port(f->port);
  struct reply r;
  send_all(partial, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
  send_all(kept, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  assert_int_equal(read_reply(kept, 0, &r), 0);
  reply_free(&r);
  int64_t t0 = cmn_mono_ms();
  cmn_http_server_stop(f->srv);
  f->srv = NULL;
  assert_true(cmn_mono_ms() - t0 < 3000);
  char c;
  assert_true(recv(partial, &c, 1, 0) <= 0);
  assert_true(recv(kept, &c, 1, 0) <= 0);
  close(idle);
  close(partial);
  close(kept);
}

static void bad_config_is_refused(void **state) {
  (void)state;
  cmn_http_server *srv = NULL;
  cmn_http_route ok = {"GET", "/x", 0, bad_status_handler, NULL};
  static const char *const binds[] = {"", "nocolon", "127.0.0.1:", "127.0.0.1:99999",
                                      "127.0.0.1:12a", ":80", "[::1:80", "[]:80"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(binds); i++) {
    cmn_http_config cfg = {.bind = binds[i], .routes = &ok, .nroutes = 1};
    assert_int_equal(cmn_http_server_start(&srv, &cfg), CAIRN_EINVAL);
  }
  cmn_http_route bad[] = {{"GET", "x", 0, bad_status_handler, NULL},
                          {"G T", "/x", 0, bad_status_handler, NULL},
                          {"GET", "/x", 0, NULL, NULL},
                          {NULL, "/x", 0, bad_status_handler, NULL},
                          {"GET", NULL, 0, bad_status_handler, NULL}};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    cmn_http_config cfg = {.bind = "127.0.0.1:0", .routes = &bad[i], .nroutes = 1};
    assert_int_equal(cmn_http_server_start(&srv, &cfg), CAIRN_EINVAL);
  }
  assert_null(srv);
  cmn_http_config none = {.bind = "127.0.0.1:0", .routes = NULL, .nroutes = 1};
  assert_int_equal(cmn_http_server_start(&srv, &none), CAIRN_EINVAL);
  assert_int_equal(cmn_http_server_start(&srv, NULL), CAIRN_EINVAL);
  cmn_http_server_stop(NULL);
}

static void port_in_use_is_ebusy(void **state) {
  struct fixture *f = *state;
  char bind[64];
  snprintf(bind, sizeof bind, "127.0.0.1:%u", (unsigned)f->port);
  cmn_http_route ok = {"GET", "/x", 0, bad_status_handler, NULL};
  cmn_http_config cfg = {.bind = bind, .routes = &ok, .nroutes = 1};
  cmn_http_server *srv = NULL;
  assert_int_equal(cmn_http_server_start(&srv, &cfg), CAIRN_EBUSY);
  assert_null(srv);
  /* IPv6 loopback works where available; skip quietly where it is not. */
  cmn_http_config v6 = {.bind = "[::1]:0", .routes = &ok, .nroutes = 1};
  if (cmn_http_server_start(&srv, &v6) == 0) {
    assert_true(cmn_http_server_port(srv) != 0);
    cmn_http_server_stop(srv);
  }
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(healthz_ok_then_unavailable, setup, teardown),
                cmocka_unit_test_setup_teardown(metrics_shows_counters, setup, teardown),
                cmocka_unit_test_setup_teardown(unknown_path_is_404_json, setup, teardown),
                cmocka_unit_test_setup_teardown(wrong_method_is_405_with_allow, setup, teardown),
                cmocka_unit_test_setup_teardown(garbage_is_400_and_server_keeps_serving, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(keep_alive_serves_two_requests, setup, teardown),
                cmocka_unit_test_setup_teardown(request_view_and_response_setters, setup, teardown),
                cmocka_unit_test_setup_teardown(oversized_body_is_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(stop_with_connected_clients_is_prompt, setup,
                                                teardown),
                cmocka_unit_test(bad_config_is_refused),
                cmocka_unit_test_setup_teardown(port_in_use_is_ebusy, setup, teardown))
