/*
 * test_gw_ops.c - the operational side of cairn-gateway against a real
 * cluster and PostgreSQL: /healthz and /metrics, CORS for configured
 * origins only, security headers, a database schema newer than the binary
 * refused at start (and nothing changed), and bad configuration refused
 * with exit status 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_main.h"

#include "cairn_error.h"
#include "gw_harness.h"

static int setup(void **state) {
  static const char *const flags[] = {"--cors-origins", "https://app.example", NULL};
  gw_env *env = calloc(1, sizeof *env);
  *state = env;
  return env && gw_env_start(env, "gw_ops", flags) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  gw_env *env = *state;
  if (env) {
    gw_env_stop(env);
    free(env);
  }
  return 0;
}

static gw_http_resp get(gw_env *env, const char *method, const char *path, const char *h1,
                        const char *h2, long status) {
  const char *hdr[] = {h1, h2, NULL};
  gw_http_resp r;
  int rc = gw_http_request(env, method, path, hdr, NULL, 0, &r);
  if (rc != 0 || r.status != status) {
    fail_msg("%s %s: rc %d status %ld (want %ld) body %s", method, path, rc, r.status, status,
             r.body ? r.body : "");
  }
  return r;
}

/* /healthz reports both dependencies; /metrics is Prometheus text that
 * counts the requests just made; every reply has the security headers. */
static void health_and_metrics(void **state) {
  gw_env *env = *state;
  gw_http_resp r = get(env, "GET", "/healthz", NULL, NULL, 200);
  json_t *j = gw_json(&r);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
  assert_string_equal(json_string_value(json_object_get(j, "postgres")), "ok");
  assert_string_equal(json_string_value(json_object_get(j, "master")), "ok");
  json_decref(j);
  assert_string_equal(gw_http_header(&r, "X-Frame-Options"), "DENY");
  assert_non_null(strstr(gw_http_header(&r, "Strict-Transport-Security"), "max-age="));
  assert_non_null(gw_http_header(&r, "Content-Security-Policy"));
  gw_http_resp_free(&r);
  r = get(env, "GET", "/no/such/route", NULL, NULL, 404);
  gw_http_resp_free(&r);
  r = get(env, "DELETE", "/healthz", NULL, NULL, 405);
  gw_http_resp_free(&r);
  r = get(env, "GET", "/metrics", NULL, NULL, 200);
  assert_non_null(strstr(r.body, "cairn_gateway_requests_total{code=\"2xx\"}"));
  assert_non_null(strstr(r.body, "cairn_gateway_requests_total{code=\"4xx\"} 2"));
  assert_non_null(strstr(r.body, "cairn_gateway_request_seconds_bucket"));
  gw_http_resp_free(&r);
  /* A client-given request id is echoed; a hostile one is replaced. */
  r = get(env, "GET", "/healthz", "X-Request-Id: abc-123", NULL, 200);
  assert_string_equal(gw_http_header(&r, "X-Request-Id"), "abc-123");
  gw_http_resp_free(&r);
  r = get(env, "GET", "/healthz", "X-Request-Id: <script>", NULL, 200);
  assert_string_not_equal(gw_http_header(&r, "X-Request-Id"), "<script>");
  gw_http_resp_free(&r);
}

/* CORS headers only for the configured origin; preflights answered. */
static void cors_for_configured_origins(void **state) {
  gw_env *env = *state;
  gw_http_resp r = get(env, "GET", "/healthz", "Origin: https://app.example", NULL, 200);
  assert_string_equal(gw_http_header(&r, "Access-Control-Allow-Origin"), "https://app.example");
  assert_string_equal(gw_http_header(&r, "Vary"), "Origin");
  gw_http_resp_free(&r);
  r = get(env, "GET", "/healthz", "Origin: https://evil.example", NULL, 200);
  assert_null(gw_http_header(&r, "Access-Control-Allow-Origin"));
  gw_http_resp_free(&r);
  r = get(env, "OPTIONS", "/v1/document", "Origin: https://app.example",
          "Access-Control-Request-Method: POST", 204);
  assert_non_null(strstr(gw_http_header(&r, "Access-Control-Allow-Methods"), "POST"));
  assert_non_null(strstr(gw_http_header(&r, "Access-Control-Allow-Headers"), "Authorization"));
  gw_http_resp_free(&r);
  r = get(env, "OPTIONS", "/v1/document", "Origin: https://evil.example",
          "Access-Control-Request-Method: POST", 204);
  assert_null(gw_http_header(&r, "Access-Control-Allow-Methods"));
  gw_http_resp_free(&r);
}

/* A database migrated by a newer gateway is refused at start and left as
 * it is; once the newer version is gone the gateway starts again. With
 * PostgreSQL down, /healthz says so with 503. */
static void newer_schema_refused(void **state) {
  gw_env *env = *state;
  char out[64];
  assert_int_equal(gw_pg_query(&env->pg, "SELECT max(version) FROM schema_migrations", out,
                               sizeof out),
                   1);
  int known = atoi(out);
  assert_true(known >= 1);
  assert_int_equal(gw_gateway_stop(env, SIGTERM), 0);
  assert_true(gw_pg_query(&env->pg,
                          "INSERT INTO schema_migrations(version, name) VALUES (9999, 'future')",
                          NULL, 0) >= 0);
  assert_int_not_equal(gw_gateway_start(env), 0);
  assert_int_equal(gw_pg_query(&env->pg, "SELECT count(*) FROM schema_migrations", out,
                               sizeof out),
                   1);
  assert_int_equal(atoi(out), known + 1); /* nothing applied, nothing removed */
  assert_true(gw_pg_query(&env->pg, "DELETE FROM schema_migrations WHERE version = 9999", NULL,
                          0) >= 0);
  assert_int_equal(gw_gateway_start(env), 0);
  gw_http_resp r = get(env, "GET", "/healthz", NULL, NULL, 200);
  gw_http_resp_free(&r);
  gw_pg_kill(&env->pg);
  r = get(env, "GET", "/healthz", NULL, NULL, 503);
  json_t *j = gw_json(&r);
  assert_string_not_equal(json_string_value(json_object_get(j, "postgres")), "ok");
  json_decref(j);
  gw_http_resp_free(&r);
  assert_int_equal(gw_pg_restart(&env->pg), 0);
}

/* Bad settings: exit status 2 and a message, before anything starts. */
static void bad_configuration_refused(void **state) {
  (void)state;
  const char *bin = getenv("CAIRN_BIN_DIR");
  assert_non_null(bin);
  static const char *const cases[] = {
      "--max-upload lots --db x --key-file k --secret-file s --plain-http",
      "--db x --key-file k --secret-file s",                       /* no TLS, no plain_http */
      "--db x --key-file k --secret-file s --tls-cert c.pem --plain-http",
      "--key-file k --secret-file s --plain-http",                 /* no db */
      "--db x --key-file k --secret-file s --plain-http --data-dir-prefix rel",
      "--db x --key-file k --secret-file s --plain-http --no-such-flag 1",
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s/cairn-gateway %s >/dev/null 2>&1", bin, cases[i]);
    int st = system(cmd);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) != 2) {
      fail_msg("'%s' exited %d, want 2", cases[i], WEXITSTATUS(st));
    }
  }
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(health_and_metrics, setup, teardown),
                cmocka_unit_test_setup_teardown(cors_for_configured_origins, setup, teardown),
                cmocka_unit_test_setup_teardown(newer_schema_refused, setup, teardown),
                cmocka_unit_test(bad_configuration_refused))
