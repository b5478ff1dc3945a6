/*
 * test_gw_share.c - shares and permission checks through a real
 * cairn-gateway (PostgreSQL, a 3-chunkserver cluster, HTTPS on 127.0.0.1).
 *
 * alice owns a namespace and its documents. She shares the namespace, or
 * one document, with bobby for read, then write, then takes it back: each
 * step must take effect on the very next request (the permission cache is
 * dropped on every change). carol never gets anything, and must not be
 * able to tell alice's documents from ones that do not exist on any
 * route. Each case is one story on a fresh environment.
 */
#include <stdlib.h>
#include <string.h>

#include "test_main.h"

#include "cairn_error.h"
#include "gw_harness.h"
#include "gw_story.h"

typedef gw_trio fx;

static int setup(void **state) {
  return gw_trio_start(state, "gw_share");
}

static int teardown(void **state) {
  return gw_trio_stop(state);
}

/* GET `path` and check the body is exactly `want`. */
static void expect_body(fx *f, const char *path, const char *token, const char *want) {
  gw_http_resp r;
  gw_req(f, "GET", path, token, NULL, 200, NULL, &r);
  if (r.body_len != strlen(want) || memcmp(r.body, want, r.body_len) != 0) {
    fail_msg("GET %s: body '%s', want '%s'", path, r.body, want);
  }
  gw_http_resp_free(&r);
}


#define MISSING_ID "00000000-0000-4000-8000-000000000000"

/* 1 when GET /v1/namespaces of `token` lists `ns`. */
static int lists_ns(fx *f, const char *token, const char *ns) {
  json_t *body = gw_call(f, "GET", "/v1/namespaces", token, NULL, 200, NULL);
  size_t i;
  json_t *o;
  int found = 0;
  json_array_foreach(json_object_get(body, "namespaces"), i, o) {
    found |= strcmp(json_string_value(json_object_get(o, "name")), ns) == 0;
  }
  json_decref(body);
  return found;
}

/* Number of documents GET /v1/document (optionally ?namespace=ns) shows. */
static size_t listed_docs(fx *f, const char *token, const char *ns) {
  char path[128];
  snprintf(path, sizeof path, "/v1/document%s%s", ns ? "?namespace=" : "", ns ? ns : "");
  json_t *body = gw_call(f, "GET", path, token, NULL, 200, NULL);
  size_t n = json_array_size(json_object_get(body, "documents"));
  json_decref(body);
  return n;
}

/* "/v1/document/<id><suffix>" into out. */
static void doc_path(char *out, size_t n, const char *id, const char *suffix) {
  snprintf(out, n, "/v1/document/%s%s", id, suffix);
}

/* A namespace share for read, upgraded to write, then removed. */
static void namespace_share_story(void **state) {
  fx *f = *state;
  char id[37], path[160];
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"team\"}", 201, NULL);
  gw_put_doc(f, f->alice, "team", "plan.txt", "the plan", 201, id);
  gw_expect(f, "GET", "/v1/ns/team/plan.txt", f->bob, NULL, 404, "not_found");
  assert_false(lists_ns(f, f->bob, "team"));

  /* Read. */
  json_t *s = gw_call(f, "POST", "/v1/namespaces/team/shares", f->alice,
                   "{\"username\":\"bobby\",\"permission\":\"read\"}", 201, NULL);
  assert_string_equal(json_string_value(json_object_get(s, "username")), "bobby");
  assert_string_equal(json_string_value(json_object_get(s, "permission")), "read");
  assert_true(json_integer_value(json_object_get(s, "id")) > 0);
  assert_non_null(json_string_value(json_object_get(s, "created_at")));
  json_int_t share_id = json_integer_value(json_object_get(s, "id"));
  json_decref(s);
  /* The same share again is an update of that share, not a second one. */
  s = gw_call(f, "POST", "/v1/namespaces/team/shares", f->alice,
           "{\"username\":\"bobby\",\"permission\":\"read\"}", 200, NULL);
  assert_int_equal(json_integer_value(json_object_get(s, "id")), share_id);
  json_decref(s);

  assert_true(lists_ns(f, f->bob, "team"));
  expect_body(f, "/v1/ns/team/plan.txt", f->bob, "the plan");
  doc_path(path, sizeof path, id, "/download");
  expect_body(f, path, f->bob, "the plan");
  doc_path(path, sizeof path, id, "");
  gw_expect(f, "GET", path, f->bob, NULL, 200, NULL);
  assert_int_equal(listed_docs(f, f->bob, "team"), 1);
  gw_expect(f, "GET", "/v1/namespaces/team", f->bob, NULL, 200, NULL);
  /* ...but nothing more. */
  gw_put_doc(f, f->bob, "team", "mine.txt", "bob's", 403, NULL);
  gw_put_doc(f, f->bob, "team", "plan.txt", "overwritten", 403, NULL);
  gw_expect(f, "DELETE", "/v1/ns/team/plan.txt", f->bob, NULL, 403, "forbidden");
  gw_expect(f, "DELETE", path, f->bob, NULL, 403, "forbidden");
  gw_expect(f, "GET", "/v1/namespaces/team/shares", f->bob, NULL, 403, "forbidden");
  gw_expect(f, "POST", "/v1/namespaces/team/shares", f->bob,
         "{\"username\":\"carol\",\"permission\":\"read\"}", 403, "forbidden");
  gw_expect(f, "DELETE", "/v1/namespaces/team/shares/bobby", f->bob, NULL, 403, "forbidden");
  gw_expect(f, "PATCH", "/v1/namespaces/team", f->bob, "{\"visibility\":\"public\"}", 403,
         "forbidden");
  gw_expect(f, "DELETE", "/v1/namespaces/team", f->bob, NULL, 403, "forbidden");
  expect_body(f, "/v1/ns/team/plan.txt", f->alice, "the plan");

  /* Write. */
  s = gw_call(f, "POST", "/v1/namespaces/team/shares", f->alice,
           "{\"username\":\"bobby\",\"permission\":\"write\"}", 200, NULL);
  assert_string_equal(json_string_value(json_object_get(s, "permission")), "write");
  json_decref(s);
  gw_put_doc(f, f->bob, "team", "mine.txt", "bob's", 201, NULL);
  expect_body(f, "/v1/ns/team/mine.txt", f->alice, "bob's");
  assert_int_equal(listed_docs(f, f->alice, "team"), 2);
  /* Sharing stays the owner's. */
  gw_expect(f, "GET", "/v1/namespaces/team/shares", f->bob, NULL, 403, "forbidden");

  s = gw_call(f, "GET", "/v1/namespaces/team/shares", f->alice, NULL, 200, NULL);
  json_t *list = json_object_get(s, "shares");
  assert_int_equal(json_array_size(list), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "username")),
                      "bobby");
  assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "permission")),
                      "write");
  json_decref(s);

  /* Removed: bob is a stranger again on the very next request. */
  gw_expect(f, "DELETE", "/v1/namespaces/team/shares/bobby", f->alice, NULL, 204, NULL);
  gw_expect(f, "GET", "/v1/ns/team/plan.txt", f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", path, f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/team", f->bob, NULL, 404, "not_found");
  gw_put_doc(f, f->bob, "team", "more.txt", "more", 404, NULL);
  assert_false(lists_ns(f, f->bob, "team"));
  gw_expect(f, "DELETE", "/v1/namespaces/team/shares/bobby", f->alice, NULL, 404, "not_found");
  s = gw_call(f, "GET", "/v1/namespaces/team/shares", f->alice, NULL, 200, NULL);
  assert_int_equal(json_array_size(json_object_get(s, "shares")), 0);
  json_decref(s);
  /* What bob uploaded while he could is still his. */
  expect_body(f, "/v1/ns/team/mine.txt", f->bob, "bob's");
}

/* A share of one document: that document only, never its namespace or
 * its siblings; read, then write, then gone. */
static void document_share_story(void **state) {
  fx *f = *state;
  char x[37], y[37], path[160], ypath[160];
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"docs\"}", 201, NULL);
  gw_put_doc(f, f->alice, "docs", "x.txt", "ex", 201, x);
  gw_put_doc(f, f->alice, "docs", "y.txt", "why", 201, y);
  doc_path(path, sizeof path, x, "");
  doc_path(ypath, sizeof ypath, y, "");
  char sharepath[200];
  snprintf(sharepath, sizeof sharepath, "%s/shares", path);
  gw_expect(f, "GET", path, f->bob, NULL, 404, "not_found");

  json_t *s = gw_call(f, "POST", sharepath, f->alice, "{\"username\":\"bobby\",\"permission\":\"read\"}",
                   201, NULL);
  assert_string_equal(json_string_value(json_object_get(s, "permission")), "read");
  json_decref(s);
  gw_expect(f, "GET", path, f->bob, NULL, 200, NULL);
  expect_body(f, "/v1/ns/docs/x.txt", f->bob, "ex");
  char dl[200];
  snprintf(dl, sizeof dl, "%s/download", path);
  expect_body(f, dl, f->bob, "ex");
  /* Not the sibling, not the namespace. */
  gw_expect(f, "GET", ypath, f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/ns/docs/y.txt", f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/docs", f->bob, NULL, 404, "not_found");
  assert_false(lists_ns(f, f->bob, "docs"));
  gw_put_doc(f, f->bob, "docs", "z.txt", "zed", 404, NULL);
  /* Read is not write, and sharing is the owner's. */
  gw_expect(f, "DELETE", path, f->bob, NULL, 403, "forbidden");
  gw_expect(f, "DELETE", "/v1/ns/docs/x.txt", f->bob, NULL, 403, "forbidden");
  gw_expect(f, "GET", sharepath, f->bob, NULL, 403, "forbidden");
  gw_expect(f, "POST", sharepath, f->bob, "{\"username\":\"carol\",\"permission\":\"read\"}", 403,
         "forbidden");

  s = gw_call(f, "GET", sharepath, f->alice, NULL, 200, NULL);
  assert_int_equal(json_array_size(json_object_get(s, "shares")), 1);
  json_decref(s);

  /* Removed, then given back for write: bob may delete it. */
  gw_expect(f, "DELETE", "/v1/document/00000000-0000-4000-8000-000000000000/shares/bobby",
         f->alice, NULL, 404, "not_found");
  char rm[240];
  snprintf(rm, sizeof rm, "%s/bobby", sharepath);
  gw_expect(f, "DELETE", rm, f->alice, NULL, 204, NULL);
  gw_expect(f, "GET", path, f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/ns/docs/x.txt", f->bob, NULL, 404, "not_found");
  gw_expect(f, "DELETE", rm, f->alice, NULL, 404, "not_found");

  gw_expect(f, "POST", sharepath, f->alice, "{\"username\":\"bobby\",\"permission\":\"write\"}", 201,
         NULL);
  expect_body(f, dl, f->bob, "ex");
  gw_expect(f, "DELETE", path, f->bob, NULL, 204, NULL);
  gw_expect(f, "GET", path, f->alice, NULL, 404, "not_found");
  gw_expect(f, "GET", path, f->bob, NULL, 404, "not_found");
  expect_body(f, "/v1/ns/docs/y.txt", f->alice, "why");
}

/* Every malformed share request is refused with a clear error and
 * changes nothing. */
static void share_errors(void **state) {
  fx *f = *state;
  char id[37], sp[200];
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"errs\"}", 201, NULL);
  gw_put_doc(f, f->alice, "errs", "e.txt", "e", 201, id);
  snprintf(sp, sizeof sp, "/v1/document/%s/shares", id);
  const char *paths[] = {"/v1/namespaces/errs/shares", sp};
  for (int k = 0; k < 2; k++) {
    const char *p = paths[k];
    gw_expect(f, "POST", p, f->alice, "{\"username\":\"alice\",\"permission\":\"read\"}", 400,
           "invalid");
    gw_http_resp r;
    gw_req(f, "POST", p, f->alice, "{\"username\":\"nobody\",\"permission\":\"read\"}", 404,
        "not_found", &r);
    assert_non_null(strstr(r.body, "user not found"));
    gw_http_resp_free(&r);
    static const char *const bad[] = {
        "{}",
        "{\"username\":\"bobby\"}",
        "{\"permission\":\"read\"}",
        "{\"username\":\"bobby\",\"permission\":\"owner\"}",
        "{\"username\":\"bobby\",\"permission\":\"READ\"}",
        "{\"username\":\"bobby\",\"permission\":1}",
        "{\"username\":\"bo\",\"permission\":\"read\"}",
        "{\"username\":\"bob by\",\"permission\":\"read\"}",
        "{\"username\":\"bob/by\",\"permission\":\"read\"}",
        "{\"username\":7,\"permission\":\"read\"}",
        "{\"username\":\"bobby\",\"permission\":\"read\",\"expires\":1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
      gw_expect(f, "POST", p, f->alice, bad[i], 400, "invalid");
    }
    gw_expect(f, "POST", p, f->alice, "[]", 400, NULL);
    gw_expect(f, "POST", p, f->alice, "{\"username\":", 400, NULL);
    char rm[260];
    snprintf(rm, sizeof rm, "%s/bobby", p);
    gw_expect(f, "DELETE", rm, f->alice, NULL, 404, "not_found");
    snprintf(rm, sizeof rm, "%s/b%%20b", p);
    gw_expect(f, "DELETE", rm, f->alice, NULL, 400, "invalid");
    /* No token at all. */
    gw_expect(f, "GET", p, NULL, NULL, 401, "unauthenticated");
    gw_expect(f, "POST", p, NULL, "{\"username\":\"bobby\",\"permission\":\"read\"}", 401,
           "unauthenticated");
    /* Nothing was shared by any of it. */
    json_t *s = gw_call(f, "GET", p, f->alice, NULL, 200, NULL);
    assert_int_equal(json_array_size(json_object_get(s, "shares")), 0);
    json_decref(s);
  }
  gw_expect(f, "GET", "/v1/ns/errs/e.txt", f->bob, NULL, 404, "not_found");

  /* Objects that do not exist, or cannot. */
  gw_expect(f, "POST", "/v1/namespaces/nowhere/shares", f->alice,
         "{\"username\":\"bobby\",\"permission\":\"read\"}", 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/nowhere/shares", f->alice, NULL, 404, "not_found");
  gw_expect(f, "POST", "/v1/document/" MISSING_ID "/shares", f->alice,
         "{\"username\":\"bobby\",\"permission\":\"read\"}", 404, "not_found");
  gw_expect(f, "GET", "/v1/document/not-a-uuid/shares", f->alice, NULL, 404, "not_found");
  gw_expect(f, "DELETE", "/v1/document/not-a-uuid/shares/bobby", f->alice, NULL, 404, "not_found");

  /* A document bob put into alice's namespace has two owners: neither can
   * be given a share of it. */
  gw_expect(f, "POST", "/v1/namespaces/errs/shares", f->alice,
         "{\"username\":\"bobby\",\"permission\":\"write\"}", 201, NULL);
  char bid[37], bsp[200];
  gw_put_doc(f, f->bob, "errs", "b.txt", "b", 201, bid);
  snprintf(bsp, sizeof bsp, "/v1/document/%s/shares", bid);
  gw_expect(f, "POST", bsp, f->alice, "{\"username\":\"bobby\",\"permission\":\"read\"}", 400,
         "invalid");
  gw_expect(f, "POST", bsp, f->bob, "{\"username\":\"alice\",\"permission\":\"read\"}", 400,
         "invalid");
  /* Both manage its shares. */
  gw_expect(f, "POST", bsp, f->bob, "{\"username\":\"carol\",\"permission\":\"read\"}", 201, NULL);
  gw_expect(f, "DELETE", "/v1/namespaces/errs/shares/bobby", f->alice, NULL, 204, NULL);
  expect_body(f, "/v1/ns/errs/b.txt", f->carol, "b");
  gw_expect(f, "DELETE", "/v1/document/x/shares/carol", f->bob, NULL, 404, "not_found");
  char rm[240];
  snprintf(rm, sizeof rm, "%s/carol", bsp);
  gw_expect(f, "DELETE", rm, f->alice, NULL, 204, NULL);
  gw_expect(f, "GET", "/v1/ns/errs/b.txt", f->carol, NULL, 404, "not_found");
}

/* Status and error code of one request. */
static long status_of(fx *f, const char *method, const char *path, const char *token,
                      const char *json, char *code, size_t n) {
  gw_http_resp r;
  int rc = gw_http_json(&f->env, method, path, token, json, &r);
  assert_int_equal(rc, 0);
  json_t *body = gw_json(&r);
  const char *c = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
  snprintf(code, n, "%s", c ? c : "");
  long st = r.status;
  json_decref(body);
  gw_http_resp_free(&r);
  return st;
}

/* carol, who was given nothing, gets on every route exactly what she gets
 * for a document or namespace that does not exist (404), and alice's
 * document is untouched afterwards. */
static void stranger_sees_nothing(void **state) {
  fx *f = *state;
  char id[37];
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"secret\"}", 201, NULL);
  gw_put_doc(f, f->alice, "secret", "a.txt", "classified", 201, id);
  gw_expect(f, "POST", "/v1/namespaces/secret/shares", f->alice,
         "{\"username\":\"bobby\",\"permission\":\"read\"}", 201, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->carol, "{\"name\":\"carols\"}", 201, NULL);

  static const struct {
    const char *method, *suffix, *json;
  } routes[] = {
      {"GET", "", NULL},
      {"DELETE", "", NULL},
      {"GET", "/download", NULL},
      {"POST", "/url", "{}"},
      {"GET", "/shares", NULL},
      {"POST", "/shares", "{\"username\":\"carol\",\"permission\":\"write\"}"},
      {"DELETE", "/shares/bobby", NULL},
  };
  static const struct {
    const char *method, *secret, *missing, *json;
  } ns_routes[] = {
      {"GET", "/v1/ns/secret/a.txt", "/v1/ns/nowhere/a.txt", NULL},
      {"DELETE", "/v1/ns/secret/a.txt", "/v1/ns/nowhere/a.txt", NULL},
      {"GET", "/v1/document?namespace=secret", "/v1/document?namespace=nowhere", NULL},
      {"GET", "/v1/namespaces/secret", "/v1/namespaces/nowhere", NULL},
      {"PATCH", "/v1/namespaces/secret", "/v1/namespaces/nowhere", "{\"visibility\":\"public\"}"},
      {"DELETE", "/v1/namespaces/secret", "/v1/namespaces/nowhere", NULL},
      {"GET", "/v1/namespaces/secret/shares", "/v1/namespaces/nowhere/shares", NULL},
      {"POST", "/v1/namespaces/secret/shares", "/v1/namespaces/nowhere/shares",
       "{\"username\":\"carol\",\"permission\":\"write\"}"},
      {"DELETE", "/v1/namespaces/secret/shares/bobby", "/v1/namespaces/nowhere/shares/bobby",
       NULL},
  };
  char a[160], b[160], ca[64], cb[64];
  for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    doc_path(a, sizeof a, id, routes[i].suffix);
    doc_path(b, sizeof b, MISSING_ID, routes[i].suffix);
    long sa = status_of(f, routes[i].method, a, f->carol, routes[i].json, ca, sizeof ca);
    long sb = status_of(f, routes[i].method, b, f->carol, routes[i].json, cb, sizeof cb);
    if (sa != 404 || sb != 404 || strcmp(ca, "not_found") != 0 || strcmp(cb, ca) != 0) {
      fail_msg("%s %s: %ld %s; missing one: %ld %s", routes[i].method, a, sa, ca, sb, cb);
    }
  }
  for (size_t i = 0; i < sizeof ns_routes / sizeof ns_routes[0]; i++) {
    long sa = status_of(f, ns_routes[i].method, ns_routes[i].secret, f->carol, ns_routes[i].json,
                        ca, sizeof ca);
    long sb = status_of(f, ns_routes[i].method, ns_routes[i].missing, f->carol,
                        ns_routes[i].json, cb, sizeof cb);
    if (sa != 404 || sb != 404 || strcmp(ca, "not_found") != 0 || strcmp(cb, ca) != 0) {
      fail_msg("%s %s: %ld %s; missing one: %ld %s", ns_routes[i].method, ns_routes[i].secret,
               sa, ca, sb, cb);
    }
  }
  /* Uploading into it, and the listings. */
  gw_put_doc(f, f->carol, "secret", "b.txt", "mine now", 404, NULL);
  gw_put_doc(f, f->carol, "secret", "a.txt", "overwrite", 404, NULL);
  assert_int_equal(listed_docs(f, f->carol, NULL), 0);
  assert_false(lists_ns(f, f->carol, "secret"));
  /* Her own namespace cannot reach alice's document either. */
  gw_put_doc(f, f->carol, "carols", "c.txt", "c", 201, NULL);
  assert_int_equal(listed_docs(f, f->carol, NULL), 1);

  /* Untouched: still there, still alice's, still shared with bob only. */
  expect_body(f, "/v1/ns/secret/a.txt", f->alice, "classified");
  expect_body(f, "/v1/ns/secret/a.txt", f->bob, "classified");
  json_t *s = gw_call(f, "GET", "/v1/namespaces/secret/shares", f->alice, NULL, 200, NULL);
  assert_int_equal(json_array_size(json_object_get(s, "shares")), 1);
  json_decref(s);
  json_t *ns = gw_call(f, "GET", "/v1/namespaces/secret", f->alice, NULL, 200, NULL);
  assert_string_equal(json_string_value(json_object_get(ns, "visibility")), "private");
  json_decref(ns);
}

/* A public namespace gives everyone read and nothing else: outsiders get
 * 403 (not 404) for what needs more, since they can see it exists. */
static void public_namespace_is_read_only(void **state) {
  fx *f = *state;
  char id[37], path[160];
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"board\",\"visibility\":\"public\"}",
         201, NULL);
  gw_put_doc(f, f->alice, "board", "notice.txt", "hello all", 201, id);
  expect_body(f, "/v1/ns/board/notice.txt", f->carol, "hello all");
  expect_body(f, "/v1/ns/board/notice.txt", NULL, "hello all");
  doc_path(path, sizeof path, id, "/download");
  expect_body(f, path, NULL, "hello all");
  assert_int_equal(listed_docs(f, f->carol, "board"), 1);

  gw_put_doc(f, f->carol, "board", "graffiti.txt", "x", 403, NULL);
  gw_expect(f, "DELETE", "/v1/ns/board/notice.txt", f->carol, NULL, 403, "forbidden");
  doc_path(path, sizeof path, id, "");
  gw_expect(f, "DELETE", path, f->carol, NULL, 403, "forbidden");
  doc_path(path, sizeof path, id, "/shares");
  gw_expect(f, "GET", path, f->carol, NULL, 403, "forbidden");
  gw_expect(f, "GET", "/v1/namespaces/board/shares", f->carol, NULL, 403, "forbidden");
  gw_expect(f, "DELETE", "/v1/namespaces/board", f->carol, NULL, 403, "forbidden");
  /* A read share on top changes nothing; a write share does. */
  gw_expect(f, "POST", "/v1/namespaces/board/shares", f->alice,
         "{\"username\":\"carol\",\"permission\":\"read\"}", 201, NULL);
  gw_put_doc(f, f->carol, "board", "graffiti.txt", "x", 403, NULL);
  gw_expect(f, "POST", "/v1/namespaces/board/shares", f->alice,
         "{\"username\":\"carol\",\"permission\":\"write\"}", 200, NULL);
  gw_put_doc(f, f->carol, "board", "reply.txt", "hi alice", 201, NULL);
  /* Private again and unshared: carol is a stranger at once. */
  gw_expect(f, "PATCH", "/v1/namespaces/board", f->alice, "{\"visibility\":\"private\"}", 200, NULL);
  gw_expect(f, "DELETE", "/v1/namespaces/board/shares/carol", f->alice, NULL, 204, NULL);
  gw_expect(f, "GET", "/v1/ns/board/notice.txt", f->carol, NULL, 404, "not_found");
  doc_path(path, sizeof path, id, "");
  gw_expect(f, "GET", path, f->carol, NULL, 404, "not_found");
  /* Her own upload stays hers. */
  expect_body(f, "/v1/ns/board/reply.txt", f->carol, "hi alice");
}

/* Deleting a shared document or namespace ends the share with it. */
static void shares_go_with_their_object(void **state) {
  fx *f = *state;
  char id[37], path[160], sp[200];
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"tmp\"}", 201, NULL);
  gw_put_doc(f, f->alice, "tmp", "t.txt", "temporary", 201, id);
  snprintf(sp, sizeof sp, "/v1/document/%s/shares", id);
  gw_expect(f, "POST", sp, f->alice, "{\"username\":\"bobby\",\"permission\":\"read\"}", 201, NULL);
  doc_path(path, sizeof path, id, "");
  gw_expect(f, "GET", path, f->bob, NULL, 200, NULL);
  gw_expect(f, "DELETE", path, f->alice, NULL, 204, NULL);
  gw_expect(f, "GET", path, f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", sp, f->alice, NULL, 404, "not_found");
  /* A new document of the same name is not shared. */
  gw_put_doc(f, f->alice, "tmp", "t.txt", "again", 201, id);
  gw_expect(f, "GET", "/v1/ns/tmp/t.txt", f->bob, NULL, 404, "not_found");

  gw_expect(f, "POST", "/v1/namespaces/tmp/shares", f->alice,
         "{\"username\":\"bobby\",\"permission\":\"write\"}", 201, NULL);
  expect_body(f, "/v1/ns/tmp/t.txt", f->bob, "again");
  gw_expect(f, "DELETE", "/v1/ns/tmp/t.txt", f->bob, NULL, 204, NULL);
  gw_expect(f, "DELETE", "/v1/namespaces/tmp", f->alice, NULL, 204, NULL);
  assert_false(lists_ns(f, f->bob, "tmp"));
  /* Re-created by alice: the old share is gone with the old namespace. */
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"tmp\"}", 201, NULL);
  gw_expect(f, "GET", "/v1/namespaces/tmp", f->bob, NULL, 404, "not_found");
  assert_false(lists_ns(f, f->bob, "tmp"));
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(namespace_share_story, setup, teardown),
                cmocka_unit_test_setup_teardown(document_share_story, setup, teardown),
                cmocka_unit_test_setup_teardown(share_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(stranger_sees_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(public_namespace_is_read_only, setup, teardown),
                cmocka_unit_test_setup_teardown(shares_go_with_their_object, setup, teardown))
