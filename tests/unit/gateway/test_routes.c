/*
 * test_routes.c - the gateway's route table and its matcher
 * (gw_route_find): every route is reachable by its method and path, an
 * unknown path is a 404 and a known path with another method a 405, "{}"
 * captures one non-empty segment and "{*}" the non-empty rest, and paths
 * with a trailing slash or an empty segment match nothing.
 */
#include <stdlib.h>

#include "test_main.h"

#include "gw.h"
#include "gw_handlers.h"

/* One request through the matcher; the captures are freed by req_clear. */
static const gw_route *find(gw_req *r, const char *method, const char *path, int *allowed) {
  memset(r, 0, sizeof *r);
  *allowed = -1;
  return gw_route_find(r, method, path, allowed);
}

static void req_clear(gw_req *r) {
  for (int i = 0; i < GW_MAX_PARAMS; i++) {
    free(r->params[i]);
    r->params[i] = NULL;
  }
  r->nparams = 0;
}

typedef struct route_case {
  const char *method;
  const char *path;
  void (*handle)(gw_req *r);
  unsigned flags;
  unsigned scope;
  const char *p0, *p1; /* expected captures, NULL when fewer */
} route_case;

#define RJ (GW_R_AUTH | GW_R_JSON)
#define RS (GW_R_AUTH | GW_R_STREAM)
#define ID "0b7e3c52-8d7f-4a57-9a43-2c1b5f0e9d11"

/* Every row of routes.c, reached by a concrete path. A route added there
 * needs a row here. */
static const route_case cases[] = {
    {"GET", "/healthz", gw_h_health, 0, 0, NULL, NULL},
    {"GET", "/metrics", gw_h_metrics, 0, 0, NULL, NULL},
    {"POST", "/v1/auth/register", gw_h_register, GW_R_JSON, 0, NULL, NULL},
    {"POST", "/v1/auth/token", gw_h_token, GW_R_JSON, 0, NULL, NULL},
    {"POST", "/v1/auth/refresh", gw_h_refresh, GW_R_JSON, 0, NULL, NULL},
    {"POST", "/v1/auth/logout", gw_h_logout, GW_R_JSON | GW_R_AUTH_OPT, 0, NULL, NULL},
    {"GET", "/v1/me", gw_h_me, GW_R_AUTH, 0, NULL, NULL},
    {"GET", "/v1/tokens", gw_h_tokens_list, GW_R_AUTH, GW_SCOPE_TOKENS, NULL, NULL},
    {"POST", "/v1/tokens", gw_h_tokens_create, RJ, GW_SCOPE_TOKENS, NULL, NULL},
    {"DELETE", "/v1/tokens/42", gw_h_tokens_revoke, GW_R_AUTH, GW_SCOPE_TOKENS, "42", NULL},
    {"GET", "/v1/namespaces", gw_h_ns_list, GW_R_AUTH, GW_SCOPE_READ, NULL, NULL},
    {"POST", "/v1/namespaces", gw_h_ns_create, RJ, GW_SCOPE_WRITE, NULL, NULL},
    {"GET", "/v1/namespaces/team-a", gw_h_ns_get, GW_R_AUTH_OPT, GW_SCOPE_READ, "team-a", NULL},
    {"PATCH", "/v1/namespaces/team-a", gw_h_ns_patch, RJ, GW_SCOPE_WRITE, "team-a", NULL},
    {"DELETE", "/v1/namespaces/team-a", gw_h_ns_delete, GW_R_AUTH, GW_SCOPE_WRITE, "team-a",
     NULL},
    {"GET", "/v1/namespaces/team-a/shares", gw_h_ns_share_list, GW_R_AUTH, GW_SCOPE_SHARE,
     "team-a", NULL},
    {"POST", "/v1/namespaces/team-a/shares", gw_h_ns_share_add, RJ, GW_SCOPE_SHARE, "team-a",
     NULL},
    {"DELETE", "/v1/namespaces/team-a/shares/bob", gw_h_ns_share_remove, GW_R_AUTH,
     GW_SCOPE_SHARE, "team-a", "bob"},
    {"POST", "/v1/document", gw_h_upload_end, RS, GW_SCOPE_WRITE, NULL, NULL},
    {"GET", "/v1/document", gw_h_doc_list, GW_R_AUTH, GW_SCOPE_READ, NULL, NULL},
    {"GET", "/v1/document/" ID, gw_h_doc_get, GW_R_AUTH_OPT, GW_SCOPE_READ, ID, NULL},
    {"DELETE", "/v1/document/" ID, gw_h_doc_delete, GW_R_AUTH, GW_SCOPE_WRITE, ID, NULL},
    {"GET", "/v1/document/" ID "/download", gw_h_download, GW_R_AUTH_OPT, GW_SCOPE_READ, ID,
     NULL},
    {"POST", "/v1/document/" ID "/url", gw_h_doc_presign, RJ, GW_SCOPE_SHARE, ID, NULL},
    {"GET", "/v1/document/" ID "/shares", gw_h_doc_share_list, GW_R_AUTH, GW_SCOPE_SHARE, ID,
     NULL},
    {"POST", "/v1/document/" ID "/shares", gw_h_doc_share_add, RJ, GW_SCOPE_SHARE, ID, NULL},
    {"DELETE", "/v1/document/" ID "/shares/carol", gw_h_doc_share_remove, GW_R_AUTH,
     GW_SCOPE_SHARE, ID, "carol"},
    {"PUT", "/v1/ns/team-a/report.pdf", gw_h_upload_end, RS, GW_SCOPE_WRITE, "team-a",
     "report.pdf"},
    {"GET", "/v1/ns/team-a/report.pdf", gw_h_path_get, GW_R_AUTH_OPT, GW_SCOPE_READ, "team-a",
     "report.pdf"},
    {"DELETE", "/v1/ns/team-a/report.pdf", gw_h_path_delete, GW_R_AUTH, GW_SCOPE_WRITE,
     "team-a", "report.pdf"},
};

/* Each route answers its own method and path with its handler, flags and
 * scope, and hands over exactly the expected captures. */
static void every_route_matches(void **state) {
  (void)state;
  for (size_t i = 0; i < CMN_ARRAY_LEN(cases); i++) {
    const route_case *c = &cases[i];
    gw_req r;
    int allowed;
    const gw_route *rt = find(&r, c->method, c->path, &allowed);
    if (rt == NULL) {
      fail_msg("%s %s matched no route", c->method, c->path);
    }
    assert_string_equal(rt->method, c->method);
    assert_ptr_equal(rt->handle, c->handle);
    assert_int_equal(rt->flags, c->flags);
    assert_int_equal(rt->scope, c->scope);
    int want = c->p0 == NULL ? 0 : c->p1 == NULL ? 1 : 2;
    assert_int_equal(r.nparams, want);
    if (c->p0) {
      assert_string_equal(r.params[0], c->p0);
    }
    if (c->p1) {
      assert_string_equal(r.params[1], c->p1);
    }
    assert_null(r.params[want]);
    req_clear(&r);
  }
}

/* The stream routes carry their begin and data callbacks: the upload
 * routes must refuse before the body and take it piece by piece. */
static void stream_routes_have_callbacks(void **state) {
  (void)state;
  gw_req r;
  int allowed;
  const gw_route *post = find(&r, "POST", "/v1/document", &allowed);
  assert_non_null(post);
  assert_ptr_equal(post->begin, gw_h_upload_begin);
  assert_ptr_equal(post->data, gw_h_upload_data);
  req_clear(&r);
  const gw_route *put = find(&r, "PUT", "/v1/ns/a/b", &allowed);
  assert_non_null(put);
  assert_ptr_equal(put->begin, gw_h_put_begin);
  assert_ptr_equal(put->data, gw_h_upload_data);
  req_clear(&r);
  /* JSON routes never stream. */
  const gw_route *ns = find(&r, "POST", "/v1/namespaces", &allowed);
  assert_non_null(ns);
  assert_null(ns->begin);
  assert_null(ns->data);
  req_clear(&r);
}

/* No route shadows another: trying every method on every path of `cases`
 * reaches exactly as many distinct routes as `cases` has rows, so each row
 * of the table is reachable and none is reached twice. */
static void routes_are_distinct(void **state) {
  (void)state;
  static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  const gw_route *seen[64];
  size_t nseen = 0;
  for (size_t i = 0; i < CMN_ARRAY_LEN(cases); i++) {
    for (size_t m = 0; m < CMN_ARRAY_LEN(methods); m++) {
      gw_req r;
      int allowed;
      const gw_route *rt = find(&r, methods[m], cases[i].path, &allowed);
      req_clear(&r);
      if (rt == NULL) {
        continue;
      }
      size_t k = 0;
      while (k < nseen && seen[k] != rt) {
        k++;
      }
      if (k == nseen) {
        assert_true(nseen < CMN_ARRAY_LEN(seen));
        seen[nseen++] = rt;
      }
    }
  }
  assert_int_equal(nseen, CMN_ARRAY_LEN(cases));
}

/* A path no route has is a 404: *allowed stays 0 and no capture is kept. */
static void unknown_path_is_404(void **state) {
  (void)state;
  static const char *const paths[] = {
      "",
      "/",
      "/v1",
      "/v1/",
      "/healthzz",
      "/healthz/x",
      "/v1/namespace",
      "/v1/namespaces/a/b",
      "/v1/namespaces/a/shares/b/c",
      "/v1/document/x/y",
      "/v1/document/x/download/more",
      "/v1/ns",
      "/v1/ns/a",
      "/V1/namespaces",
      "/v2/namespaces",
      "v1/namespaces",
  };
  for (size_t i = 0; i < CMN_ARRAY_LEN(paths); i++) {
    gw_req r;
    int allowed;
    const gw_route *rt = find(&r, "GET", paths[i], &allowed);
    if (rt != NULL || allowed != 0) {
      fail_msg("GET '%s': route %p allowed %d, want none (404)", paths[i], (const void *)rt,
               allowed);
    }
    assert_int_equal(r.nparams, 0);
    assert_null(r.params[0]);
  }
}

/* A known path asked with a method it does not have is a 405 (*allowed
 * set), whichever route of that path comes first in the table. */
static void wrong_method_is_405(void **state) {
  (void)state;
  static const struct {
    const char *method, *path;
  } reqs[] = {
      {"POST", "/healthz"},
      {"DELETE", "/metrics"},
      {"GET", "/v1/auth/token"},
      {"PUT", "/v1/namespaces"},
      {"DELETE", "/v1/namespaces"},
      {"POST", "/v1/namespaces/a"},
      {"PUT", "/v1/namespaces/a/shares"},
      {"GET", "/v1/namespaces/a/shares/b"},
      {"PATCH", "/v1/document/" ID},
      {"POST", "/v1/document/" ID "/download"},
      {"GET", "/v1/document/" ID "/url"},
      {"POST", "/v1/ns/a/b"},
      {"PATCH", "/v1/ns/a/b/c"},
      {"OPTIONS", "/v1/me"},
      {"get", "/v1/me"}, /* methods are case-sensitive (RFC 9110) */
  };
  for (size_t i = 0; i < CMN_ARRAY_LEN(reqs); i++) {
    gw_req r;
    int allowed;
    const gw_route *rt = find(&r, reqs[i].method, reqs[i].path, &allowed);
    if (rt != NULL || allowed != 1) {
      fail_msg("%s '%s': route %p allowed %d, want 405", reqs[i].method, reqs[i].path,
               (const void *)rt, allowed);
    }
    assert_int_equal(r.nparams, 0);
    assert_null(r.params[0]);
  }
}

/* HEAD is answered by the GET route (libmicrohttpd drops the body), and a
 * HEAD on a path without GET is a 405. */
static void head_uses_get(void **state) {
  (void)state;
  gw_req r;
  int allowed;
  const gw_route *rt = find(&r, "HEAD", "/v1/ns/docs/a.txt", &allowed);
  assert_non_null(rt);
  assert_ptr_equal(rt->handle, gw_h_path_get);
  assert_int_equal(r.nparams, 2);
  req_clear(&r);
  rt = find(&r, "HEAD", "/v1/auth/register", &allowed);
  assert_null(rt);
  assert_int_equal(allowed, 1);
}

/* "{}" captures exactly one segment, copied and NUL-terminated, with any
 * byte but '/' in it; several captures keep their order. */
static void params_captured(void **state) {
  (void)state;
  gw_req r;
  int allowed;
  const gw_route *rt = find(&r, "DELETE", "/v1/namespaces/x.y_z-1/shares/Some.User", &allowed);
  assert_non_null(rt);
  assert_ptr_equal(rt->handle, gw_h_ns_share_remove);
  assert_int_equal(r.nparams, 2);
  assert_string_equal(r.params[0], "x.y_z-1");
  assert_string_equal(r.params[1], "Some.User");
  req_clear(&r);

  /* Already percent-decoded by the HTTP layer: spaces, '%' and UTF-8 are
   * plain bytes of the segment. */
  rt = find(&r, "GET", "/v1/namespaces/a b%c\xc3\xa9", &allowed);
  assert_non_null(rt);
  assert_ptr_equal(rt->handle, gw_h_ns_get);
  assert_int_equal(r.nparams, 1);
  assert_string_equal(r.params[0], "a b%c\xc3\xa9");
  req_clear(&r);

  /* A one-byte segment is enough. */
  rt = find(&r, "GET", "/v1/document/x/download", &allowed);
  assert_non_null(rt);
  assert_ptr_equal(rt->handle, gw_h_download);
  assert_string_equal(r.params[0], "x");
  req_clear(&r);
}

/* "{*}" takes the whole non-empty rest of the path, slashes included, so
 * a document name may look like a path. */
static void rest_capture(void **state) {
  (void)state;
  gw_req r;
  int allowed;
  const gw_route *rt = find(&r, "GET", "/v1/ns/docs/2026/q1/report.final.pdf", &allowed);
  assert_non_null(rt);
  assert_ptr_equal(rt->handle, gw_h_path_get);
  assert_int_equal(r.nparams, 2);
  assert_string_equal(r.params[0], "docs");
  assert_string_equal(r.params[1], "2026/q1/report.final.pdf");
  req_clear(&r);

  rt = find(&r, "DELETE", "/v1/ns/docs/shares", &allowed);
  assert_non_null(rt); /* a name that is a literal elsewhere is still a name */
  assert_ptr_equal(rt->handle, gw_h_path_delete);
  assert_string_equal(r.params[1], "shares");
  req_clear(&r);

  /* An empty rest, or none at all, is no document. */
  static const char *const empty[] = {"/v1/ns/docs/", "/v1/ns/docs", "/v1/ns//a"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(empty); i++) {
    rt = find(&r, "PUT", empty[i], &allowed);
    if (rt != NULL || allowed != 0) {
      fail_msg("PUT '%s' matched (allowed %d)", empty[i], allowed);
    }
    assert_null(r.params[0]);
  }
}

/* A trailing slash or an empty segment never matches a route: "/v1/me/"
 * is not "/v1/me", and "{}" refuses an empty segment. */
static void trailing_slash_and_empty_segments_refused(void **state) {
  (void)state;
  static const char *const paths[] = {
      "/healthz/",
      "/v1/me/",
      "/v1/namespaces/",
      "/v1/namespaces/a/",
      "/v1/namespaces//shares",
      "/v1/namespaces/a/shares/",
      "/v1/namespaces/a//shares",
      "/v1/namespaces//shares/b",
      "/v1/document/",
      "/v1/document//download",
      "/v1/document/" ID "/",
      "/v1/document/" ID "/shares/",
      "//v1/me",
      "/v1//me",
      "/v1/tokens//",
  };
  static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(paths); i++) {
    for (size_t m = 0; m < CMN_ARRAY_LEN(methods); m++) {
      gw_req r;
      int allowed;
      const gw_route *rt = find(&r, methods[m], paths[i], &allowed);
      if (rt != NULL || allowed != 0) {
        fail_msg("%s '%s': route %p allowed %d, want none", methods[m], paths[i],
                 (const void *)rt, allowed);
      }
      assert_int_equal(r.nparams, 0);
      assert_null(r.params[0]);
    }
  }
}

CAIRN_TEST_MAIN(cmocka_unit_test(every_route_matches), cmocka_unit_test(stream_routes_have_callbacks),
                cmocka_unit_test(routes_are_distinct), cmocka_unit_test(unknown_path_is_404),
                cmocka_unit_test(wrong_method_is_405), cmocka_unit_test(head_uses_get),
                cmocka_unit_test(params_captured), cmocka_unit_test(rest_capture),
                cmocka_unit_test(trailing_slash_and_empty_segments_refused))
