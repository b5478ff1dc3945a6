/*
 * cairn-gateway authentication against a real gateway, PostgreSQL and
 * cluster on 127.0.0.1: registration and its refusals, login, /v1/me and
 * bad tokens, refresh-token rotation and reuse detection, logout, the API
 * token lifecycle with scopes, and access-token expiry. Each case is one
 * story on a gateway of its own.
 */
#include "test_main.h"

#include "gw_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
  gw_env env;
} fx;

static int setup_with(void **state, const char *tag, const char *const *flags) {
  fx *x = calloc(1, sizeof *x);
  if (x == NULL) {
    return -1;
  }
  *state = x;
  return gw_env_start(&x->env, tag, flags) == 0 ? 0 : -1;
}

static int setup(void **state) { return setup_with(state, "gw_auth", NULL); }

static int setup_short_ttl(void **state) {
  static const char *const flags[] = {"--access-ttl", "1s", NULL};
  return setup_with(state, "gw_auth_ttl", flags);
}

static int teardown(void **state) {
  fx *x = *state;
  if (x) {
    gw_env_stop(&x->env);
    free(x);
  }
  return 0;
}

/* One JSON request; returns the response (the caller frees it). */
static gw_http_resp req(fx *x, const char *method, const char *path, const char *token,
                        const char *json) {
  gw_http_resp r;
  memset(&r, 0, sizeof r);
  assert_int_equal(gw_http_json(&x->env, method, path, token, json, &r), 0);
  return r;
}

/* Assert `r` has `status` and, when code is not NULL, that error code. */
static void expect(gw_http_resp *r, long status, const char *code) {
  if (r->status != status) {
    fprintf(stderr, "expected %ld, got %ld: %s\n", status, r->status, r->body);
  }
  assert_int_equal(r->status, status);
  if (code) {
    json_t *j = gw_json(r);
    assert_non_null(j);
    const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
    assert_non_null(got);
    assert_string_equal(got, code);
    json_decref(j);
  }
}

/* Send, check status (and error code), free. */
static void call(fx *x, const char *method, const char *path, const char *token,
                 const char *json, long status, const char *code) {
  gw_http_resp r = req(x, method, path, token, json);
  expect(&r, status, code);
  gw_http_resp_free(&r);
}

/* String field `key` of the JSON body of `r`, copied into out. */
static void field(gw_http_resp *r, const char *key, char *out, size_t n) {
  json_t *j = gw_json(r);
  assert_non_null(j);
  const char *s = json_string_value(json_object_get(j, key));
  assert_non_null(s);
  assert_true(strlen(s) < n);
  snprintf(out, n, "%s", s);
  json_decref(j);
}

/* Register `user` and log in: the access and refresh tokens. */
static void session(fx *x, const char *user, char *access, size_t an, char *refresh,
                    size_t rn) {
  char body[256];
  snprintf(body, sizeof body, "{\"username\":\"%s\",\"password\":\"secret-password\"}", user);
  gw_http_resp r = req(x, "POST", "/v1/auth/register", NULL, body);
  assert_true(r.status == 201 || r.status == 409);
  gw_http_resp_free(&r);
  r = req(x, "POST", "/v1/auth/token", NULL, body);
  expect(&r, 200, NULL);
  field(&r, "access_token", access, an);
  field(&r, "refresh_token", refresh, rn);
  gw_http_resp_free(&r);
}

/* A request with a raw body and headers; returns the status. */
static long raw(fx *x, const char *path, const char *ctype, const void *body, size_t len,
                const char *code) {
  char h[128];
  snprintf(h, sizeof h, "Content-Type: %s", ctype);
  const char *const headers[] = {h, NULL};
  gw_http_resp r;
  memset(&r, 0, sizeof r);
  assert_int_equal(gw_http_request(&x->env, "POST", path, headers, body, len, &r), 0);
  long st = r.status;
  if (code) {
    expect(&r, st, code);
  }
  gw_http_resp_free(&r);
  return st;
}

/* Stream `left` bytes of JSON whitespace, in pieces. */
static size_t spaces(void *arg, char *buf, size_t n) {
  size_t *left = arg;
  n = n < *left ? n : *left;
  memset(buf, ' ', n);
  *left -= n;
  return n;
}

/* A JSON body over 64 KiB is 413 whether its size is announced (refused
 * from the headers; the client waits for that with Expect: 100-continue,
 * as a client sending a large body should) or not (chunked: refused once
 * 64 KiB arrived). `ok` is a body that would otherwise be accepted. */
static void too_large(fx *x, const char *ok) {
  size_t n = 64 * 1024 + 100;
  char *huge = malloc(n);
  assert_non_null(huge);
  memset(huge, ' ', n);
  memcpy(huge, ok, strlen(ok));
  const char *const h1[] = {"Content-Type: application/json", "Expect: 100-continue", NULL};
  gw_http_resp r;
  assert_int_equal(gw_http_request(&x->env, "POST", "/v1/auth/register", h1, huge, n, &r), 0);
  expect(&r, 413, "too_large");
  gw_http_resp_free(&r);
  free(huge);

  size_t left = n;
  const char *const h2[] = {"Content-Type: application/json", NULL};
  gw_stream s = {.read = spaces, .read_arg = &left, .body_len = -1, .timeout_ms = 30000};
  assert_int_equal(gw_http_stream(&x->env, "POST", "/v1/auth/register", h2, &s, &r), 0);
  expect(&r, 413, "too_large");
  gw_http_resp_free(&r);
}

/* The headers every reply carries. */
static void expect_common_headers(gw_http_resp *r) {
  const char *id = gw_http_header(r, "X-Request-Id");
  assert_non_null(id);
  assert_true(strlen(id) > 0);
  const char *v = gw_http_header(r, "X-Content-Type-Options");
  assert_non_null(v);
  assert_string_equal(v, "nosniff");
  assert_non_null(gw_http_header(r, "X-Frame-Options"));
  assert_non_null(gw_http_header(r, "Content-Security-Policy"));
  assert_non_null(gw_http_header(r, "Referrer-Policy"));
  assert_non_null(gw_http_header(r, "Strict-Transport-Security"));
  v = gw_http_header(r, "Cache-Control");
  assert_non_null(v);
  assert_string_equal(v, "no-store");
}

/* Registration: the account comes back; a taken name, bad names and
 * passwords, missing fields, bodies that are not JSON objects, the wrong
 * media type and an oversized body are refused, and none of them creates
 * an account. */
static void register_and_refusals(void **state) {
  fx *x = *state;
  gw_http_resp r = req(x, "POST", "/v1/auth/register", NULL,
                       "{\"username\":\"alice.b-1_x\",\"password\":\"correct horse\"}");
  expect(&r, 201, NULL);
  expect_common_headers(&r);
  json_t *j = gw_json(&r);
  assert_non_null(j);
  assert_true(json_integer_value(json_object_get(j, "id")) > 0);
  assert_string_equal(json_string_value(json_object_get(j, "username")), "alice.b-1_x");
  const char *ts = json_string_value(json_object_get(j, "created_at"));
  assert_non_null(ts);
  assert_int_equal(strlen(ts), 24); /* 2026-11-22T05:37:21.239Z */
  assert_int_equal(ts[strlen(ts) - 1], 'Z');
  json_decref(j);
  gw_http_resp_free(&r);

  call(x, "POST", "/v1/auth/register", NULL,
       "{\"username\":\"alice.b-1_x\",\"password\":\"another one\"}", 409, "already_exists");
  static const char *const bad[] = {
      "{\"username\":\"ab\",\"password\":\"password1\"}",             /* too short */
      "{\"username\":\"a b c\",\"password\":\"password1\"}",          /* space */
      "{\"username\":\"al/ice\",\"password\":\"password1\"}",         /* slash */
      "{\"username\":\"\xc3\xa9t\xc3\xa9x\",\"password\":\"password1\"}", /* not ASCII */
      "{\"username\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
      "\"password\":\"password1\"}",                                  /* 65 characters */
      "{\"username\":\"bob\",\"password\":\"short\"}",                /* 5-byte password */
      "{\"username\":\"bob\",\"password\":12345678}",                 /* not a string */
      "{\"username\":\"bob\"}",                                       /* missing password */
      "{\"password\":\"password1\"}",                                 /* missing username */
      "{}",
      "{\"username\":\"bob\",\"password\":\"password1\",\"admin\":true}", /* unknown field */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    call(x, "POST", "/v1/auth/register", NULL, bad[i], 400, "invalid");
  }
  /* A password of 1025 bytes is too long. */
  char big[1200];
  snprintf(big, sizeof big, "{\"username\":\"bob\",\"password\":\"%01025d\"}", 7);
  call(x, "POST", "/v1/auth/register", NULL, big, 400, "invalid");

  const char *nonjson = "username=bob&password=password1";
  assert_int_equal(raw(x, "/v1/auth/register", "application/json", nonjson, strlen(nonjson),
                       "bad_json"), 400);
  assert_int_equal(raw(x, "/v1/auth/register", "application/json", "[1,2]", 5, "bad_json"), 400);
  const char *ok = "{\"username\":\"bob\",\"password\":\"password1\"}";
  assert_int_equal(raw(x, "/v1/auth/register", "text/plain", ok, strlen(ok),
                       "unsupported_media_type"), 415);
  too_large(x, ok);

  /* None of the refusals made an account: bob logs in nowhere. */
  call(x, "POST", "/v1/auth/token", NULL, ok, 401, "unauthenticated");
  char one[8];
  assert_int_equal(gw_pg_query(&x->env.pg, "SELECT count(*) FROM users", one, sizeof one), 1);
  assert_string_equal(one, "1");
}

/* Login and the checks of a bearer token: a good one reaches /v1/me; no
 * token, a garbage one, a bad scheme and a tampered JWT are 401, and the
 * refusal of an unknown user is word for word that of a wrong password. */
static void login_and_me(void **state) {
  fx *x = *state;
  call(x, "POST", "/v1/auth/register", NULL, "{\"username\":\"carol\",\"password\":\"password1\"}",
       201, NULL);
  gw_http_resp r = req(x, "POST", "/v1/auth/token", NULL,
                       "{\"username\":\"carol\",\"password\":\"password1\"}");
  expect(&r, 200, NULL);
  json_t *j = gw_json(&r);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
  assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 15 * 60);
  assert_int_equal(json_integer_value(json_object_get(j, "refresh_expires_in")), 30 * 86400);
  const char *rt = json_string_value(json_object_get(j, "refresh_token"));
  assert_non_null(rt);
  assert_memory_equal(rt, "crt_", 4);
  json_t *user = json_object_get(j, "user");
  assert_string_equal(json_string_value(json_object_get(user, "username")), "carol");
  int64_t uid = json_integer_value(json_object_get(user, "id"));
  assert_true(uid > 0);
  char access[2048];
  snprintf(access, sizeof access, "%s", json_string_value(json_object_get(j, "access_token")));
  json_decref(j);
  gw_http_resp_free(&r);

  r = req(x, "GET", "/v1/me", access, NULL);
  expect(&r, 200, NULL);
  j = gw_json(&r);
  assert_int_equal(json_integer_value(json_object_get(j, "id")), uid);
  assert_string_equal(json_string_value(json_object_get(j, "username")), "carol");
  assert_string_equal(json_string_value(json_object_get(j, "auth")), "session");
  assert_non_null(json_string_value(json_object_get(j, "created_at")));
  json_t *sc = json_object_get(j, "scopes");
  assert_int_equal(json_array_size(sc), 4);
  assert_string_equal(json_string_value(json_array_get(sc, 3)), "tokens");
  json_decref(j);
  gw_http_resp_free(&r);

  gw_http_resp wrong = req(x, "POST", "/v1/auth/token", NULL,
                           "{\"username\":\"carol\",\"password\":\"password2\"}");
  gw_http_resp unknown = req(x, "POST", "/v1/auth/token", NULL,
                             "{\"username\":\"nobody\",\"password\":\"password1\"}");
  expect(&wrong, 401, "unauthenticated");
  expect(&unknown, 401, "unauthenticated");
  json_t *a = gw_json(&wrong), *b = gw_json(&unknown);
  assert_string_equal(json_string_value(json_object_get(json_object_get(a, "error"), "message")),
                      json_string_value(json_object_get(json_object_get(b, "error"), "message")));
  json_decref(a);
  json_decref(b);
  gw_http_resp_free(&wrong);
  gw_http_resp_free(&unknown);
  call(x, "POST", "/v1/auth/token", NULL, "{\"username\":\"carol\"}", 400, "invalid");

  r = req(x, "GET", "/v1/me", NULL, NULL);
  expect(&r, 401, "unauthenticated");
  expect_common_headers(&r);
  const char *www = gw_http_header(&r, "WWW-Authenticate");
  assert_non_null(www);
  assert_memory_equal(www, "Bearer", 6);
  gw_http_resp_free(&r);
  call(x, "GET", "/v1/me", "garbage", NULL, 401, "unauthenticated");
  call(x, "GET", "/v1/me", "cat_notarealtoken", NULL, 401, "unauthenticated");

  /* Flip one character of the payload, then of the signature. */
  char bad[2048];
  char *dot = strchr(access, '.');
  assert_non_null(dot);
  snprintf(bad, sizeof bad, "%s", access);
  bad[dot - access + 3] = bad[dot - access + 3] == 'A' ? 'B' : 'A';
  call(x, "GET", "/v1/me", bad, NULL, 401, "unauthenticated");
  snprintf(bad, sizeof bad, "%s", access);
  bad[strlen(bad) - 2] = bad[strlen(bad) - 2] == 'A' ? 'B' : 'A';
  call(x, "GET", "/v1/me", bad, NULL, 401, "unauthenticated");

  /* The scheme is case-insensitive; exactly one space; not Basic. */
  char h[2200];
  const char *const hs[] = {h, NULL};
  snprintf(h, sizeof h, "Authorization: bEaReR %s", access);
  assert_int_equal(gw_http_request(&x->env, "GET", "/v1/me", hs, NULL, 0, &r), 0);
  expect(&r, 200, NULL);
  gw_http_resp_free(&r);
  snprintf(h, sizeof h, "Authorization: Bearer  %s", access);
  assert_int_equal(gw_http_request(&x->env, "GET", "/v1/me", hs, NULL, 0, &r), 0);
  expect(&r, 401, "unauthenticated");
  gw_http_resp_free(&r);
  snprintf(h, sizeof h, "Authorization: Basic Y2Fyb2w6cGFzc3dvcmQx");
  assert_int_equal(gw_http_request(&x->env, "GET", "/v1/me", hs, NULL, 0, &r), 0);
  expect(&r, 401, "unauthenticated");
  gw_http_resp_free(&r);
}

/* Refresh rotates: the new pair works. Presenting the spent token again
 * is reuse: 401 token_reused, and the session is gone, so the newer
 * refresh token and every access token of the session stop working. */
static void refresh_rotation_and_reuse(void **state) {
  fx *x = *state;
  char a1[2048], r1[128], a2[2048], r2[128], a3[2048], r3[128], body[256];
  session(x, "dave", a1, sizeof a1, r1, sizeof r1);

  snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r1);
  gw_http_resp r = req(x, "POST", "/v1/auth/refresh", NULL, body);
  expect(&r, 200, NULL);
  field(&r, "access_token", a2, sizeof a2);
  field(&r, "refresh_token", r2, sizeof r2);
  gw_http_resp_free(&r);
  assert_string_not_equal(r1, r2);
  call(x, "GET", "/v1/me", a2, NULL, 200, NULL);
  call(x, "GET", "/v1/me", a1, NULL, 200, NULL); /* the first still lives until it expires */

  snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r2);
  r = req(x, "POST", "/v1/auth/refresh", NULL, body);
  expect(&r, 200, NULL);
  field(&r, "access_token", a3, sizeof a3);
  field(&r, "refresh_token", r3, sizeof r3);
  gw_http_resp_free(&r);

  /* r1 again: reuse. */
  snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r1);
  call(x, "POST", "/v1/auth/refresh", NULL, body, 401, "token_reused");
  snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r3);
  call(x, "POST", "/v1/auth/refresh", NULL, body, 401, "unauthenticated");
  call(x, "GET", "/v1/me", a1, NULL, 401, "unauthenticated");
  call(x, "GET", "/v1/me", a2, NULL, 401, "unauthenticated");
  call(x, "GET", "/v1/me", a3, NULL, 401, "unauthenticated");

  /* Another session of the same user is not touched. */
  char b1[2048], s1[128];
  session(x, "dave", b1, sizeof b1, s1, sizeof s1);
  call(x, "GET", "/v1/me", b1, NULL, 200, NULL);

  call(x, "POST", "/v1/auth/refresh", NULL, "{\"refresh_token\":\"crt_nosuchtoken\"}", 401,
       "unauthenticated");
  call(x, "POST", "/v1/auth/refresh", NULL, "{}", 400, "invalid");
  call(x, "POST", "/v1/auth/refresh", NULL, "{\"refresh_token\":42}", 400, "invalid");
  char n[8];
  assert_int_equal(gw_pg_query(&x->env.pg,
                               "SELECT count(*) FROM sessions WHERE revoked", n, sizeof n), 1);
  assert_string_equal(n, "1");
}

/* Logout by access token and by refresh token: either way the session's
 * access tokens fail at once and its refresh token is dead. Unknown tokens
 * are fine (204); bodies of the wrong shape are not (400). */
static void logout(void **state) {
  fx *x = *state;
  char a1[2048], r1[128], a2[2048], r2[128], body[256];
  session(x, "erin", a1, sizeof a1, r1, sizeof r1);
  session(x, "erin", a2, sizeof a2, r2, sizeof r2);
  call(x, "GET", "/v1/me", a1, NULL, 200, NULL); /* cached now */
  call(x, "GET", "/v1/me", a2, NULL, 200, NULL);

  call(x, "POST", "/v1/auth/logout", a1, NULL, 204, NULL);
  call(x, "GET", "/v1/me", a1, NULL, 401, "unauthenticated");
  snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r1);
  call(x, "POST", "/v1/auth/refresh", NULL, body, 401, "unauthenticated");
  call(x, "GET", "/v1/me", a2, NULL, 200, NULL);

  snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", r2);
  call(x, "POST", "/v1/auth/logout", NULL, body, 204, NULL);
  call(x, "GET", "/v1/me", a2, NULL, 401, "unauthenticated");
  call(x, "POST", "/v1/auth/refresh", NULL, body, 401, "unauthenticated");
  call(x, "POST", "/v1/auth/logout", NULL, body, 204, NULL); /* again: fine */

  call(x, "POST", "/v1/auth/logout", NULL, "{\"refresh_token\":\"crt_unknown\"}", 204, NULL);
  call(x, "POST", "/v1/auth/logout", NULL, "{\"refresh_token\":7}", 400, "invalid");
  call(x, "POST", "/v1/auth/logout", NULL, "{\"token\":\"x\"}", 400, "invalid");
  call(x, "POST", "/v1/auth/logout", NULL, "{}", 400, "invalid");
  assert_int_equal(raw(x, "/v1/auth/logout", "application/json", "{nope", 5, "bad_json"), 400);
  call(x, "POST", "/v1/auth/logout", "garbage", NULL, 401, "unauthenticated");
}

/* Create an API token with the session token of its user; returns its id
 * and writes the secret. */
static int64_t make_token(fx *x, const char *session_token, const char *json, char *secret,
                          size_t n) {
  gw_http_resp r = req(x, "POST", "/v1/tokens", session_token, json);
  expect(&r, 201, NULL);
  json_t *j = gw_json(&r);
  assert_non_null(j);
  int64_t id = json_integer_value(json_object_get(j, "id"));
  assert_true(id > 0);
  const char *t = json_string_value(json_object_get(j, "token"));
  assert_non_null(t);
  assert_memory_equal(t, "cat_", 4);
  snprintf(secret, n, "%s", t);
  json_decref(j);
  gw_http_resp_free(&r);
  return id;
}

/* API tokens: created with read scope only, the token reads (/v1/me) but
 * cannot write or manage tokens; the list shows it without the secret;
 * another user cannot revoke it; revoked, it stops working at once. */
static void api_token_lifecycle(void **state) {
  fx *x = *state;
  char a[2048], ra[128], b[2048], rb[128], tok[128], tok2[128], path[64];
  session(x, "frank", a, sizeof a, ra, sizeof ra);
  session(x, "grace", b, sizeof b, rb, sizeof rb);

  gw_http_resp r =
      req(x, "POST", "/v1/tokens", a, "{\"name\":\"ci reader\",\"scopes\":[\"read\"]}");
  expect(&r, 201, NULL);
  json_t *j = gw_json(&r);
  int64_t id = json_integer_value(json_object_get(j, "id"));
  snprintf(tok, sizeof tok, "%s", json_string_value(json_object_get(j, "token")));
  assert_memory_equal(tok, "cat_", 4);
  assert_string_equal(json_string_value(json_object_get(j, "name")), "ci reader");
  assert_true(json_is_null(json_object_get(j, "expires_at")));
  assert_int_equal(json_array_size(json_object_get(j, "scopes")), 1);
  json_decref(j);
  gw_http_resp_free(&r);

  r = req(x, "POST", "/v1/tokens", a,
          "{\"name\":\"deploy\",\"scopes\":[\"share\",\"write\"],\"expires_in\":3600}");
  expect(&r, 201, NULL);
  j = gw_json(&r);
  assert_true(json_is_string(json_object_get(j, "expires_at")));
  json_t *sc = json_object_get(j, "scopes"); /* canonical order */
  assert_string_equal(json_string_value(json_array_get(sc, 0)), "write");
  assert_string_equal(json_string_value(json_array_get(sc, 1)), "share");
  json_decref(j);
  gw_http_resp_free(&r);

  static const char *const bad[] = {
      "{\"name\":\"\",\"scopes\":[\"read\"]}",
      "{\"scopes\":[\"read\"]}",
      "{\"name\":\"x\"}",
      "{\"name\":\"x\",\"scopes\":[]}",
      "{\"name\":\"x\",\"scopes\":\"read\"}",
      "{\"name\":\"x\",\"scopes\":[\"read\",\"read\"]}",
      "{\"name\":\"x\",\"scopes\":[\"tokens\"]}",
      "{\"name\":\"x\",\"scopes\":[\"admin\"]}",
      "{\"name\":\"x\",\"scopes\":[\"read\"],\"expires_in\":59}",
      "{\"name\":\"x\",\"scopes\":[\"read\"],\"expires_in\":31536001}",
      "{\"name\":\"x\",\"scopes\":[\"read\"],\"expires_in\":\"3600\"}",
      "{\"name\":\"x\",\"scopes\":[\"read\"],\"extra\":1}",
      "{\"name\":\"line\\nbreak\",\"scopes\":[\"read\"]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    call(x, "POST", "/v1/tokens", a, bad[i], 400, "invalid");
  }

  r = req(x, "GET", "/v1/me", tok, NULL);
  expect(&r, 200, NULL);
  j = gw_json(&r);
  assert_string_equal(json_string_value(json_object_get(j, "username")), "frank");
  assert_string_equal(json_string_value(json_object_get(j, "auth")), "api_token");
  assert_int_equal(json_array_size(json_object_get(j, "scopes")), 1);
  assert_string_equal(json_string_value(json_array_get(json_object_get(j, "scopes"), 0)), "read");
  json_decref(j);
  gw_http_resp_free(&r);
  call(x, "GET", "/v1/me", tok, NULL, 200, NULL); /* from the cache */
  call(x, "POST", "/v1/namespaces", tok, "{\"name\":\"frank-docs\"}", 403, "insufficient_scope");
  call(x, "GET", "/v1/tokens", tok, NULL, 403, "insufficient_scope");
  call(x, "POST", "/v1/tokens", tok, "{\"name\":\"x\",\"scopes\":[\"read\"]}", 403,
       "insufficient_scope");

  r = req(x, "GET", "/v1/tokens", a, NULL);
  expect(&r, 200, NULL);
  assert_null(strstr(r.body, "cat_"));
  j = gw_json(&r);
  json_t *list = json_object_get(j, "tokens");
  assert_int_equal(json_array_size(list), 2);
  json_t *first = json_array_get(list, 0);
  assert_int_equal(json_integer_value(json_object_get(first, "id")), id);
  assert_string_equal(json_string_value(json_object_get(first, "name")), "ci reader");
  assert_true(json_is_false(json_object_get(first, "revoked")));
  assert_null(json_object_get(first, "token"));
  json_decref(j);
  gw_http_resp_free(&r);
  r = req(x, "GET", "/v1/tokens", b, NULL); /* grace has none */
  expect(&r, 200, NULL);
  j = gw_json(&r);
  assert_int_equal(json_array_size(json_object_get(j, "tokens")), 0);
  json_decref(j);
  gw_http_resp_free(&r);

  snprintf(path, sizeof path, "/v1/tokens/%lld", (long long)id);
  call(x, "DELETE", path, b, NULL, 404, "not_found");
  call(x, "DELETE", "/v1/tokens/abc", a, NULL, 404, "not_found");
  call(x, "DELETE", "/v1/tokens/99999999", a, NULL, 404, "not_found");
  call(x, "GET", "/v1/me", tok, NULL, 200, NULL); /* grace's attempt changed nothing */
  call(x, "DELETE", path, a, NULL, 204, NULL);
  call(x, "GET", "/v1/me", tok, NULL, 401, "unauthenticated");
  call(x, "DELETE", path, a, NULL, 204, NULL); /* again: fine */
  r = req(x, "GET", "/v1/tokens", a, NULL);
  j = gw_json(&r);
  assert_true(json_is_true(json_object_get(json_array_get(json_object_get(j, "tokens"), 0),
                                           "revoked")));
  json_decref(j);
  gw_http_resp_free(&r);

  /* A token past its expiry (set in the database) is refused. */
  int64_t id2 = make_token(x, a, "{\"name\":\"old\",\"scopes\":[\"read\"],\"expires_in\":60}",
                           tok2, sizeof tok2);
  char sql[128];
  snprintf(sql, sizeof sql,
           "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = %lld",
           (long long)id2);
  assert_true(gw_pg_query(&x->env.pg, sql, NULL, 0) >= 0);
  call(x, "GET", "/v1/me", tok2, NULL, 401, "unauthenticated");
}

/* With --access-ttl 1s an access token dies within two seconds, while the
 * refresh token of its session still gets a new one. */
static void access_token_expiry(void **state) {
  fx *x = *state;
  char a[2048], rt[128], body[256];
  session(x, "heidi", a, sizeof a, rt, sizeof rt);
  call(x, "GET", "/v1/me", a, NULL, 200, NULL);
  struct timespec ts = {2, 300 * 1000 * 1000};
  nanosleep(&ts, NULL);
  call(x, "GET", "/v1/me", a, NULL, 401, "unauthenticated");
  snprintf(body, sizeof body, "{\"refresh_token\":\"%s\"}", rt);
  gw_http_resp r = req(x, "POST", "/v1/auth/refresh", NULL, body);
  expect(&r, 200, NULL);
  json_t *j = gw_json(&r);
  assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 1);
  json_decref(j);
  field(&r, "access_token", a, sizeof a);
  gw_http_resp_free(&r);
  call(x, "GET", "/v1/me", a, NULL, 200, NULL);
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(register_and_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(login_and_me, setup, teardown),
                cmocka_unit_test_setup_teardown(refresh_rotation_and_reuse, setup, teardown),
                cmocka_unit_test_setup_teardown(logout, setup, teardown),
                cmocka_unit_test_setup_teardown(api_token_lifecycle, setup, teardown),
                cmocka_unit_test_setup_teardown(access_token_expiry, setup_short_ttl, teardown))
