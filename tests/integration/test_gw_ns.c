/*
 * test_gw_ns.c - namespaces through a real cairn-gateway (PostgreSQL, a
 * 3-chunkserver cluster, HTTPS on 127.0.0.1): creating them with every
 * kind of bad input refused, listing what is owned or shared, reading
 * public and private ones with and without a token, changing visibility
 * (taking effect at once), and deleting them only when empty.
 *
 * Each case is one story on a fresh environment; alice, bobby and carol
 * are registered and logged in by the fixture.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_main.h"

#include "cairn_error.h"
#include "gw_harness.h"
#include "gw_story.h"

typedef gw_trio fx;

static int setup(void **state) {
  return gw_trio_start(state, "gw_ns");
}

static int teardown(void **state) {
  return gw_trio_stop(state);
}


static const char *str(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  if (s == NULL) {
    fail_msg("no string field '%s'", key);
  }
  return s;
}

/* "2026-11-22T05:38:50.887Z" */
static void assert_rfc3339(const char *s) {
  assert_int_equal(strlen(s), 24);
  assert_true(s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
              s[19] == '.' && s[23] == 'Z');
}

/* The names of {"namespaces":[...]} joined with ',' and each followed by
 * '=' and its permission: "a=owner,b=read". */
static void list_as_text(fx *f, const char *token, char *out, size_t n) {
  json_t *body = gw_call(f, "GET", "/v1/namespaces", token, NULL, 200, NULL);
  json_t *list = json_object_get(body, "namespaces");
  assert_true(json_is_array(list));
  out[0] = '\0';
  size_t i;
  json_t *ns;
  json_array_foreach(list, i, ns) {
    size_t len = strlen(out);
    snprintf(out + len, n - len, "%s%s=%s", i ? "," : "", str(ns, "name"),
             str(ns, "permission"));
  }
  json_decref(body);
}

/* Creating namespaces: the reply's fields, names global across users, and
 * every malformed body refused with 400 without creating anything. */
static void create_story(void **state) {
  fx *f = *state;
  json_t *ns = gw_call(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"team-a\"}", 201, NULL);
  assert_string_equal(str(ns, "name"), "team-a");
  assert_string_equal(str(ns, "visibility"), "private");
  assert_string_equal(str(ns, "permission"), "owner");
  assert_rfc3339(str(ns, "created_at"));
  json_t *owner = json_object_get(ns, "owner");
  assert_string_equal(str(owner, "username"), "alice");
  assert_true(json_integer_value(json_object_get(owner, "id")) > 0);
  json_decref(ns);

  ns = gw_call(f, "POST", "/v1/namespaces", f->alice,
            "{\"name\":\"pub.x_1\",\"visibility\":\"public\"}", 201, NULL);
  assert_string_equal(str(ns, "visibility"), "public");
  json_decref(ns);
  /* Shortest and longest names. */
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"7\",\"visibility\":\"private\"}",
         201, NULL);
  char body[256];
  snprintf(body, sizeof body, "{\"name\":\"%s\"}",
           "a23456789012345678901234567890123456789012345678901234567890123");
  gw_expect(f, "POST", "/v1/namespaces", f->alice, body, 201, NULL);

  /* Names are global: taken by alice, refused to alice and to bob. */
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"team-a\"}", 409, "already_exists");
  gw_expect(f, "POST", "/v1/namespaces", f->bob, "{\"name\":\"team-a\",\"visibility\":\"public\"}",
         409, "already_exists");

  static const char *const bad[] = {
      "{}",
      "{\"name\":\"\"}",
      "{\"name\":\"Team\"}",
      "{\"name\":\"-team\"}",
      "{\"name\":\".team\"}",
      "{\"name\":\"te am\"}",
      "{\"name\":\"a/b\"}",
      "{\"name\":\"caf\\u00e9\"}",
      "{\"name\":\"a234567890123456789012345678901234567890123456789012345678901234\"}",
      "{\"name\":42}",
      "{\"name\":null}",
      "{\"name\":[\"x\"]}",
      "{\"name\":\"ok-name\",\"visibility\":\"secret\"}",
      "{\"name\":\"ok-name\",\"visibility\":\"Public\"}",
      "{\"name\":\"ok-name\",\"visibility\":true}",
      "{\"name\":\"ok-name\",\"visibility\":null}",
      "{\"name\":\"ok-name\",\"owner\":\"bobby\"}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    gw_expect(f, "POST", "/v1/namespaces", f->alice, bad[i], 400, "invalid");
  }
  /* Not an object, not JSON, no body. */
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "[\"ok-name\"]", 400, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":", 400, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->alice, NULL, 400, NULL);
  /* No token. */
  gw_expect(f, "POST", "/v1/namespaces", NULL, "{\"name\":\"ok-name\"}", 401, "unauthenticated");
  gw_expect(f, "GET", "/v1/namespaces", NULL, NULL, 401, "unauthenticated");
  gw_expect(f, "POST", "/v1/namespaces", "not-a-token", "{\"name\":\"ok-name\"}", 401,
         "unauthenticated");

  /* Nothing refused was made. */
  char text[1024];
  list_as_text(f, f->alice, text, sizeof text);
  assert_string_equal(text, "7=owner,a23456789012345678901234567890123456789012345678901234567890123"
                            "=owner,pub.x_1=owner,team-a=owner");
  list_as_text(f, f->bob, text, sizeof text);
  assert_string_equal(text, "");
  gw_expect(f, "GET", "/v1/namespaces/ok-name", f->alice, NULL, 404, "not_found");

  /* The namespace reads back as it was created, with its document count. */
  ns = gw_call(f, "GET", "/v1/namespaces/team-a", f->alice, NULL, 200, NULL);
  assert_string_equal(str(ns, "name"), "team-a");
  assert_string_equal(str(ns, "permission"), "owner");
  assert_int_equal(json_integer_value(json_object_get(ns, "documents")), 0);
  json_decref(ns);
}

/* Listing: what one owns and what is shared with one, sorted by name,
 * each with the caller's permission; never others' private namespaces,
 * never public ones that are merely readable. */
static void list_story(void **state) {
  fx *f = *state;
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"b-ns\"}", 201, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"a-ns\"}", 201, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->bob, "{\"name\":\"c-ns\"}", 201, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->bob, "{\"name\":\"0-ns\"}", 201, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->carol,
         "{\"name\":\"open\",\"visibility\":\"public\"}", 201, NULL);
  char text[1024];
  list_as_text(f, f->alice, text, sizeof text);
  assert_string_equal(text, "a-ns=owner,b-ns=owner");

  gw_expect(f, "POST", "/v1/namespaces/c-ns/shares", f->bob,
         "{\"username\":\"alice\",\"permission\":\"read\"}", 201, NULL);
  list_as_text(f, f->alice, text, sizeof text);
  assert_string_equal(text, "a-ns=owner,b-ns=owner,c-ns=read");
  json_t *ns = gw_call(f, "GET", "/v1/namespaces/c-ns", f->alice, NULL, 200, NULL);
  assert_string_equal(str(ns, "permission"), "read");
  assert_string_equal(str(json_object_get(ns, "owner"), "username"), "bobby");
  json_decref(ns);

  gw_expect(f, "POST", "/v1/namespaces/c-ns/shares", f->bob,
         "{\"username\":\"alice\",\"permission\":\"write\"}", 200, NULL);
  list_as_text(f, f->alice, text, sizeof text);
  assert_string_equal(text, "a-ns=owner,b-ns=owner,c-ns=write");
  ns = gw_call(f, "GET", "/v1/namespaces/c-ns", f->alice, NULL, 200, NULL);
  assert_string_equal(str(ns, "permission"), "write");
  json_decref(ns);

  list_as_text(f, f->bob, text, sizeof text);
  assert_string_equal(text, "0-ns=owner,c-ns=owner");
  /* carol's public namespace is readable by all but listed for her only. */
  list_as_text(f, f->carol, text, sizeof text);
  assert_string_equal(text, "open=owner");
  ns = gw_call(f, "GET", "/v1/namespaces/open", f->alice, NULL, 200, NULL);
  assert_string_equal(str(ns, "permission"), "read");
  json_decref(ns);

  /* Taking the share back takes the namespace off alice's list at once. */
  gw_expect(f, "DELETE", "/v1/namespaces/c-ns/shares/alice", f->bob, NULL, 204, NULL);
  list_as_text(f, f->alice, text, sizeof text);
  assert_string_equal(text, "a-ns=owner,b-ns=owner");
  gw_expect(f, "GET", "/v1/namespaces/c-ns", f->alice, NULL, 404, "not_found");
}

/* Reading a namespace: a public one without a token, a private one only
 * by those with access (404 for everyone else, anonymous included), and a
 * visibility change by the owner takes effect on the very next request,
 * for the namespace and for the documents in it. */
static void visibility_story(void **state) {
  fx *f = *state;
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"shelf\",\"visibility\":\"public\"}",
         201, NULL);
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"vault\"}", 201, NULL);
  gw_put_doc(f, f->alice, "shelf", "note.txt", "on the shelf", 201, NULL);

  json_t *ns = gw_call(f, "GET", "/v1/namespaces/shelf", NULL, NULL, 200, NULL);
  assert_string_equal(str(ns, "visibility"), "public");
  assert_string_equal(str(ns, "permission"), "read");
  assert_int_equal(json_integer_value(json_object_get(ns, "documents")), 1);
  json_decref(ns);
  gw_http_resp r;
  assert_int_equal(gw_http_request(&f->env, "GET", "/v1/ns/shelf/note.txt", NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "on the shelf");
  gw_http_resp_free(&r);

  gw_expect(f, "GET", "/v1/namespaces/vault", NULL, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/vault", f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/nowhere", NULL, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/nowhere", f->alice, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/NOT..valid", f->alice, NULL, 404, "not_found");

  /* Only the owner changes visibility: 404 without access, 403 with read
   * access (a public namespace gives it), 401 without a token. */
  const char *priv = "{\"visibility\":\"private\"}";
  gw_expect(f, "PATCH", "/v1/namespaces/vault", f->bob, priv, 404, "not_found");
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", f->bob, priv, 403, "forbidden");
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", NULL, priv, 401, "unauthenticated");
  gw_expect(f, "PATCH", "/v1/namespaces/nowhere", f->alice, priv, 404, "not_found");
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", f->alice, "{}", 400, "invalid");
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", f->alice, "{\"visibility\":\"hidden\"}", 400,
         "invalid");
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", f->alice, "{\"visibility\":0}", 400, "invalid");
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", f->alice,
         "{\"visibility\":\"private\",\"name\":\"other\"}", 400, "invalid");
  /* None of that changed anything. */
  ns = gw_call(f, "GET", "/v1/namespaces/shelf", NULL, NULL, 200, NULL);
  assert_string_equal(str(ns, "visibility"), "public");
  json_decref(ns);

  /* Private now: anonymous readers and bob lose it at once. */
  ns = gw_call(f, "PATCH", "/v1/namespaces/shelf", f->alice, priv, 200, NULL);
  assert_string_equal(str(ns, "visibility"), "private");
  assert_string_equal(str(ns, "name"), "shelf");
  assert_string_equal(str(ns, "permission"), "owner");
  json_decref(ns);
  gw_expect(f, "GET", "/v1/namespaces/shelf", NULL, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/shelf", f->bob, NULL, 404, "not_found");
  assert_int_equal(gw_http_request(&f->env, "GET", "/v1/ns/shelf/note.txt", NULL, NULL, 0, &r), 0);
  assert_true(r.status == 401 || r.status == 404);
  gw_http_resp_free(&r);
  char auth[2100];
  gw_auth_header(auth, sizeof auth, f->bob);
  const char *bob_h[] = {auth, NULL};
  assert_int_equal(gw_http_request(&f->env, "GET", "/v1/ns/shelf/note.txt", bob_h, NULL, 0, &r),
                   0);
  assert_int_equal(r.status, 404);
  gw_http_resp_free(&r);

  /* Public again: readable again at once; setting the same value is fine. */
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", f->alice, "{\"visibility\":\"public\"}", 200, NULL);
  gw_expect(f, "PATCH", "/v1/namespaces/shelf", f->alice, "{\"visibility\":\"public\"}", 200, NULL);
  gw_expect(f, "GET", "/v1/namespaces/shelf", NULL, NULL, 200, NULL);
  assert_int_equal(gw_http_request(&f->env, "GET", "/v1/ns/shelf/note.txt", bob_h, NULL, 0, &r),
                   0);
  assert_int_equal(r.status, 200);
  gw_http_resp_free(&r);
  /* Read access through visibility is not write access. */
  gw_put_doc(f, f->bob, "shelf", "mine.txt", "no", 403, NULL);
}

/* Feeds 64 KiB of an upload, then aborts it. */
static size_t abort_after_some(void *arg, char *buf, size_t n) {
  size_t *left = arg;
  if (*left == 0) {
    return GW_READ_ABORT;
  }
  size_t k = n < *left ? n : *left;
  memset(buf, 'x', k);
  *left -= k;
  return k;
}

/* Poll `sql` (bounded) until its one value is `want`. */
static void wait_value(fx *f, const char *sql, const char *want) {
  char got[64] = "";
  for (int i = 0; i < 150; i++) {
    if (gw_pg_query(&f->env.pg, sql, got, sizeof got) >= 0 && strcmp(got, want) == 0) {
      return;
    }
    struct timespec ts = {0, 100 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  fail_msg("%s: '%s' after 15 s, want '%s'", sql, got, want);
}

/* Deleting: owner only (404 / 403 / 401 otherwise), 409 not_empty while a
 * completed document is in it, and once only failed uploads are left it
 * goes with them and its shares, freeing the name. */
static void delete_story(void **state) {
  fx *f = *state;
  gw_expect(f, "POST", "/v1/namespaces", f->alice, "{\"name\":\"keep\"}", 201, NULL);
  gw_expect(f, "POST", "/v1/namespaces/keep/shares", f->alice,
         "{\"username\":\"bobby\",\"permission\":\"write\"}", 201, NULL);
  gw_put_doc(f, f->alice, "keep", "a.txt", "alpha", 201, NULL);
  json_t *ns = gw_call(f, "GET", "/v1/namespaces/keep", f->alice, NULL, 200, NULL);
  assert_int_equal(json_integer_value(json_object_get(ns, "documents")), 1);
  json_decref(ns);

  gw_expect(f, "DELETE", "/v1/namespaces/keep", f->carol, NULL, 404, "not_found");
  gw_expect(f, "DELETE", "/v1/namespaces/keep", f->bob, NULL, 403, "forbidden");
  gw_expect(f, "DELETE", "/v1/namespaces/keep", NULL, NULL, 401, "unauthenticated");
  gw_expect(f, "DELETE", "/v1/namespaces/nowhere", f->alice, NULL, 404, "not_found");
  gw_expect(f, "DELETE", "/v1/namespaces/keep", f->alice, NULL, 409, "not_empty");
  /* A document bob (a writer) put there blocks it just as well. */
  gw_expect(f, "DELETE", "/v1/ns/keep/a.txt", f->alice, NULL, 204, NULL);
  gw_put_doc(f, f->bob, "keep", "b.txt", "bravo", 201, NULL);
  gw_expect(f, "DELETE", "/v1/namespaces/keep", f->alice, NULL, 409, "not_empty");
  gw_expect(f, "DELETE", "/v1/ns/keep/b.txt", f->bob, NULL, 204, NULL);

  /* An upload cut off half-way leaves a failed row behind, which neither
   * counts as a document nor keeps the namespace. */
  char auth[2100];
  gw_auth_header(auth, sizeof auth, f->alice);
  const char *headers[] = {auth, "Content-Type: application/octet-stream", NULL};
  size_t left = 64 * 1024;
  gw_stream s = {abort_after_some, &left, 4 << 20, NULL, NULL, 10000};
  gw_http_resp r;
  int rc = gw_http_stream(&f->env, "PUT", "/v1/ns/keep/cut.bin", headers, &s, &r);
  gw_http_resp_free(&r);
  assert_int_not_equal(rc, 0); /* the client gave up: no reply */
  wait_value(f,
             "SELECT count(*) FROM documents d JOIN namespaces n ON n.id = d.namespace_id"
             " WHERE n.name = 'keep' AND d.upload_status = 'failed'",
             "1");
  ns = gw_call(f, "GET", "/v1/namespaces/keep", f->alice, NULL, 200, NULL);
  assert_int_equal(json_integer_value(json_object_get(ns, "documents")), 0);
  json_decref(ns);

  gw_expect(f, "DELETE", "/v1/namespaces/keep", f->alice, NULL, 204, NULL);
  wait_value(f, "SELECT count(*) FROM documents", "0");
  wait_value(f, "SELECT count(*) FROM shares", "0");
  gw_expect(f, "GET", "/v1/namespaces/keep", f->alice, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/keep", f->bob, NULL, 404, "not_found");
  gw_expect(f, "DELETE", "/v1/namespaces/keep", f->alice, NULL, 404, "not_found");
  char text[256];
  list_as_text(f, f->bob, text, sizeof text);
  assert_string_equal(text, "");

  /* The name is free again; bob's old share does not come back with it. */
  gw_expect(f, "POST", "/v1/namespaces", f->carol, "{\"name\":\"keep\"}", 201, NULL);
  gw_expect(f, "GET", "/v1/namespaces/keep", f->bob, NULL, 404, "not_found");
  gw_expect(f, "GET", "/v1/namespaces/keep", f->alice, NULL, 404, "not_found");
  gw_put_doc(f, f->bob, "keep", "c.txt", "charlie", 404, NULL);
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(create_story, setup, teardown),
                cmocka_unit_test_setup_teardown(list_story, setup, teardown),
                cmocka_unit_test_setup_teardown(visibility_story, setup, teardown),
                cmocka_unit_test_setup_teardown(delete_story, setup, teardown))
