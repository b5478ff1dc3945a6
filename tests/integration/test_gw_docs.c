/*
 * test_gw_docs.c - documents through a real cairn-gateway (PostgreSQL, a
 * 3-chunkserver cluster, HTTPS on 127.0.0.1): raw and multipart uploads,
 * metadata, downloads with ETag / If-None-Match / Range / disposition,
 * path-style access with overwrite, listing with filters and cursors,
 * presigned links, limits (size, types, extensions, rate), interrupted
 * uploads, the cluster losing its quorum, 20 uploads at once, and a 1 GiB
 * round trip in bounded gateway memory.
 *
 * Each case is one story on a fresh environment; alice owns namespace
 * "docs" (private) and "pub" (public).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_main.h"

#include "cairn_error.h"
#include "gw_harness.h"

typedef struct fx {
  gw_env env;
  char alice[2048], bob[2048];
  char auth[2200]; /* "Authorization: Bearer <alice>" */
} fx;

static int start(void **state, const char *const *flags) {
  fx *f = calloc(1, sizeof *f);
  *state = f;
  if (f == NULL || gw_env_start(&f->env, "gw_docs", flags) != 0 ||
      gw_login(&f->env, "alice", "alice-password", f->alice, sizeof f->alice) != 0 ||
      gw_login(&f->env, "bobby", "bobby-password", f->bob, sizeof f->bob) != 0) {
    return -1;
  }
  gw_auth_header(f->auth, sizeof f->auth, f->alice);
  gw_http_resp r;
  int ok = gw_http_json(&f->env, "POST", "/v1/namespaces", f->alice, "{\"name\":\"docs\"}", &r) ==
               0 &&
           r.status == 201;
  gw_http_resp_free(&r);
  ok = ok && gw_http_json(&f->env, "POST", "/v1/namespaces", f->alice,
                          "{\"name\":\"pub\",\"visibility\":\"public\"}", &r) == 0 &&
       r.status == 201;
  gw_http_resp_free(&r);
  return ok ? 0 : -1;
}

static int setup(void **state) {
  return start(state, NULL);
}

static int setup_limits(void **state) {
  static const char *const flags[] = {"--max-upload", "64K", "--allowed-types",
                                      "text/plain,image/*", "--allowed-extensions",
                                      ".txt,.png", NULL};
  return start(state, flags);
}

static int setup_rate(void **state) {
  static const char *const flags[] = {"--rate-ip", "5", "--rate-burst", "10", NULL};
  return start(state, flags);
}

static int setup_fast_fail(void **state) {
  static const char *const flags[] = {"--cluster-timeout", "3s", NULL};
  return start(state, flags);
}

static int teardown(void **state) {
  fx *f = *state;
  if (f) {
    gw_env_stop(&f->env);
    free(f);
  }
  return 0;
}

/* A request with alice's token (or none when anon) and optional extra
 * header; checks the status; returns the response (caller frees). */
static gw_http_resp req(fx *f, int anon, const char *method, const char *path,
                        const char *extra, const char *ctype, const void *body, size_t len,
                        long status) {
  const char *hdr[4];
  int n = 0;
  char ct[300];
  if (!anon) {
    hdr[n++] = f->auth;
  }
  if (extra) {
    hdr[n++] = extra;
  }
  if (ctype) {
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    hdr[n++] = ct;
  }
  hdr[n] = NULL;
  gw_http_resp r;
  int rc = gw_http_request(&f->env, method, path, hdr, body, len, &r);
  if (rc != 0 || r.status != status) {
    fail_msg("%s %s: rc %d status %ld (want %ld) body %s", method, path, rc, r.status, status,
             r.body ? r.body : "");
  }
  return r;
}

/* The error code of a JSON error reply. */
static void expect_code(gw_http_resp *r, const char *code) {
  json_t *j = gw_json(r);
  const char *got = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
  if (got == NULL || strcmp(got, code) != 0) {
    fail_msg("error code %s, want %s (body %s)", got ? got : "none", code, r->body);
  }
  json_decref(j);
}

/* A string field of a JSON reply, copied into out. */
static void field(gw_http_resp *r, const char *key, char *out, size_t n) {
  json_t *j = gw_json(r);
  const char *v = json_string_value(json_object_get(j, key));
  assert_non_null(v);
  snprintf(out, n, "%s", v);
  json_decref(j);
}

static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* Raw upload, metadata, download headers, conditional and range requests,
 * deletion, and the refusals of the upload route. */
static void raw_upload_story(void **state) {
  fx *f = *state;
  gw_http_resp r = req(f, 0, "POST", "/v1/document?namespace=docs&name=dir/a%20b.txt", NULL,
                       "text/plain; charset=utf-8", text, 36, 201);
  char id[64], sha[80], path[256];
  field(&r, "id", id, sizeof id);
  field(&r, "sha256", sha, sizeof sha);
  assert_string_equal(sha, "74e7e5bb9d22d6db26bf76946d40fff3ea9f0346b884fd0694920fccfad15e33");
  gw_http_resp_free(&r);
  /* metadata */
  snprintf(path, sizeof path, "/v1/document/%s", id);
  r = req(f, 0, "GET", path, NULL, NULL, NULL, 0, 200);
  json_t *j = gw_json(&r);
  assert_string_equal(json_string_value(json_object_get(j, "upload_status")), "completed");
  assert_string_equal(json_string_value(json_object_get(j, "content_type")),
                      "text/plain; charset=utf-8");
  assert_int_equal(json_integer_value(json_object_get(j, "size")), 36);
  assert_string_equal(json_string_value(json_object_get(j, "name")), "dir/a b.txt");
  json_decref(j);
  gw_http_resp_free(&r);
  /* download: bytes and headers */
  snprintf(path, sizeof path, "/v1/document/%s/download", id);
  r = req(f, 0, "GET", path, NULL, NULL, NULL, 0, 200);
  assert_int_equal(r.body_len, 36);
  assert_memory_equal(r.body, text, 36);
  assert_string_equal(gw_http_header(&r, "Content-Type"), "text/plain; charset=utf-8");
  assert_string_equal(gw_http_header(&r, "Content-Length"), "36");
  assert_non_null(strstr(gw_http_header(&r, "Content-Disposition"), "attachment; filename=\"a b.txt\""));
  char etag[100];
  snprintf(etag, sizeof etag, "%s", gw_http_header(&r, "ETag"));
  assert_int_equal(strlen(etag), 66); /* "<64 hex>" */
  assert_non_null(gw_http_header(&r, "X-Request-Id"));
  assert_string_equal(gw_http_header(&r, "X-Content-Type-Options"), "nosniff");
  gw_http_resp_free(&r);
  char inl[300];
  snprintf(inl, sizeof inl, "%s?inline=1", path);
  r = req(f, 0, "GET", inl, NULL, NULL, NULL, 0, 200);
  assert_true(strncmp(gw_http_header(&r, "Content-Disposition"), "inline;", 7) == 0);
  gw_http_resp_free(&r);
  /* If-None-Match */
  char inm[200];
  snprintf(inm, sizeof inm, "If-None-Match: \"x\", %s", etag);
  r = req(f, 0, "GET", path, inm, NULL, NULL, 0, 304);
  assert_int_equal(r.body_len, 0);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, "If-None-Match: \"other\"", NULL, NULL, 0, 200);
  gw_http_resp_free(&r);
  /* Range: bounded, open-ended, suffix, clamped, unsatisfiable, ignored */
  r = req(f, 0, "GET", path, "Range: bytes=2-5", NULL, NULL, 0, 206);
  assert_int_equal(r.body_len, 4);
  assert_memory_equal(r.body, "2345", 4);
  assert_string_equal(gw_http_header(&r, "Content-Range"), "bytes 2-5/36");
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, "Range: bytes=30-", NULL, NULL, 0, 206);
  assert_memory_equal(r.body, "uvwxyz", 6);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, "Range: bytes=-3", NULL, NULL, 0, 206);
  assert_memory_equal(r.body, "xyz", 3);
  assert_string_equal(gw_http_header(&r, "Content-Range"), "bytes 33-35/36");
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, "Range: bytes=35-1000", NULL, NULL, 0, 206);
  assert_int_equal(r.body_len, 1);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, "Range: bytes=36-", NULL, NULL, 0, 416);
  assert_string_equal(gw_http_header(&r, "Content-Range"), "bytes */36");
  expect_code(&r, "range_not_satisfiable");
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, "Range: bytes=1-2,4-5", NULL, NULL, 0, 200);
  assert_int_equal(r.body_len, 36);
  gw_http_resp_free(&r);
  /* HEAD: headers only */
  r = req(f, 0, "HEAD", path, NULL, NULL, NULL, 0, 200);
  assert_int_equal(r.body_len, 0);
  gw_http_resp_free(&r);
  /* refusals of the upload route */
  r = req(f, 0, "POST", "/v1/document?name=x", NULL, NULL, "x", 1, 400);
  expect_code(&r, "invalid");
  gw_http_resp_free(&r);
  r = req(f, 0, "POST", "/v1/document?namespace=docs", NULL, NULL, "x", 1, 400);
  gw_http_resp_free(&r);
  r = req(f, 0, "POST", "/v1/document?namespace=nope&name=x", NULL, NULL, "x", 1, 404);
  gw_http_resp_free(&r);
  r = req(f, 1, "POST", "/v1/document?namespace=docs&name=x", NULL, NULL, "x", 1, 401);
  gw_http_resp_free(&r);
  r = req(f, 0, "POST", "/v1/document?namespace=docs&name=dir/a%20b.txt", NULL, NULL, "x", 1,
          409);
  expect_code(&r, "already_exists");
  gw_http_resp_free(&r);
  r = req(f, 0, "POST", "/v1/document?namespace=docs&name=x", NULL, "bad type", "x", 1, 400);
  gw_http_resp_free(&r);
  /* delete: gone for good */
  snprintf(path, sizeof path, "/v1/document/%s", id);
  r = req(f, 0, "DELETE", path, NULL, NULL, NULL, 0, 204);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
  r = req(f, 0, "DELETE", path, NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/document/not-a-uuid", NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
}

/* multipart/form-data: the file part's name and type are kept; a "name"
 * field overrides; no file, or two files, are refused. */
static void multipart_story(void **state) {
  fx *f = *state;
  static const char body1[] =
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.png\"\r\n"
      "Content-Type: image/png\r\n\r\nPNGDATA\r\n--XyZ--\r\n";
  gw_http_resp r = req(f, 0, "POST", "/v1/document?namespace=docs", NULL,
                       "multipart/form-data; boundary=XyZ", body1, sizeof body1 - 1, 201);
  json_t *j = gw_json(&r);
  assert_string_equal(json_string_value(json_object_get(j, "name")), "photo.png");
  assert_string_equal(json_string_value(json_object_get(j, "content_type")), "image/png");
  assert_int_equal(json_integer_value(json_object_get(j, "size")), 7);
  char path[256];
  snprintf(path, sizeof path, "/v1/document/%s/download",
           json_string_value(json_object_get(j, "id")));
  json_decref(j);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", path, NULL, NULL, NULL, 0, 200);
  assert_int_equal(r.body_len, 7);
  assert_memory_equal(r.body, "PNGDATA", 7);
  gw_http_resp_free(&r);
  static const char body2[] =
      "--bnd\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nrenamed.bin\r\n"
      "--bnd\r\nContent-Disposition: form-data; name=\"file\"; filename=\"orig.bin\"\r\n\r\n"
      "abc\r\n--bnd--\r\n";
  r = req(f, 0, "POST", "/v1/document?namespace=docs", NULL, "multipart/form-data; boundary=bnd",
          body2, sizeof body2 - 1, 201);
  j = gw_json(&r);
  assert_string_equal(json_string_value(json_object_get(j, "name")), "renamed.bin");
  json_decref(j);
  gw_http_resp_free(&r);
  static const char nofile[] =
      "--bnd\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n1\r\n--bnd--\r\n";
  r = req(f, 0, "POST", "/v1/document?namespace=docs", NULL, "multipart/form-data; boundary=bnd",
          nofile, sizeof nofile - 1, 400);
  gw_http_resp_free(&r);
  static const char two[] =
      "--bnd\r\nContent-Disposition: form-data; name=\"f\"; filename=\"1.txt\"\r\n\r\n1\r\n"
      "--bnd\r\nContent-Disposition: form-data; name=\"g\"; filename=\"2.txt\"\r\n\r\n2\r\n--bnd--\r\n";
  r = req(f, 0, "POST", "/v1/document?namespace=docs", NULL, "multipart/form-data; boundary=bnd",
          two, sizeof two - 1, 400);
  gw_http_resp_free(&r);
  /* the refused ones left nothing completed behind */
  r = req(f, 0, "GET", "/v1/document?namespace=docs&prefix=1.txt", NULL, NULL, NULL, 0, 200);
  j = gw_json(&r);
  json_t *docs = json_object_get(j, "documents");
  for (size_t i = 0; i < json_array_size(docs); i++) {
    assert_string_not_equal(
        json_string_value(json_object_get(json_array_get(docs, i), "upload_status")),
        "completed");
  }
  json_decref(j);
  gw_http_resp_free(&r);
}

/* PUT/GET/DELETE /v1/ns/{ns}/{name}: 409 without overwrite, replacement
 * with it, public namespaces readable anonymously, private ones not. */
static void path_style_story(void **state) {
  fx *f = *state;
  gw_http_resp r = req(f, 0, "PUT", "/v1/ns/docs/a/b/c.txt", NULL, NULL, "one", 3, 201);
  char old_id[64];
  field(&r, "id", old_id, sizeof old_id);
  gw_http_resp_free(&r);
  r = req(f, 0, "PUT", "/v1/ns/docs/a/b/c.txt", NULL, NULL, "two", 3, 409);
  gw_http_resp_free(&r);
  r = req(f, 0, "PUT", "/v1/ns/docs/a/b/c.txt?overwrite=true", NULL, NULL, "three", 5, 201);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/ns/docs/a/b/c.txt", NULL, NULL, NULL, 0, 200);
  assert_int_equal(r.body_len, 5);
  assert_memory_equal(r.body, "three", 5);
  gw_http_resp_free(&r);
  char path[256];
  snprintf(path, sizeof path, "/v1/document/%s", old_id);
  r = req(f, 0, "GET", path, NULL, NULL, NULL, 0, 404); /* the replaced one is gone */
  gw_http_resp_free(&r);
  r = req(f, 1, "GET", "/v1/ns/docs/a/b/c.txt", NULL, NULL, NULL, 0, 401);
  gw_http_resp_free(&r);
  r = req(f, 0, "PUT", "/v1/ns/pub/hello.txt", NULL, "text/plain", "hello", 5, 201);
  gw_http_resp_free(&r);
  r = req(f, 1, "GET", "/v1/ns/pub/hello.txt", NULL, NULL, NULL, 0, 200);
  assert_memory_equal(r.body, "hello", 5);
  gw_http_resp_free(&r);
  r = req(f, 1, "DELETE", "/v1/ns/pub/hello.txt", NULL, NULL, NULL, 0, 401);
  gw_http_resp_free(&r);
  r = req(f, 1, "PUT", "/v1/ns/pub/evil.txt", NULL, NULL, "x", 1, 401);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/ns/pub/missing.txt", NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
  r = req(f, 0, "DELETE", "/v1/ns/docs/a/b/c.txt", NULL, NULL, NULL, 0, 204);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/ns/docs/a/b/c.txt", NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
  /* an empty document */
  r = req(f, 0, "PUT", "/v1/ns/docs/empty", NULL, NULL, NULL, 0, 201);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/ns/docs/empty", NULL, NULL, NULL, 0, 200);
  assert_int_equal(r.body_len, 0);
  gw_http_resp_free(&r);
}

/* Listing: filters, cursor paging over several pages, bad parameters. */
static void list_story(void **state) {
  fx *f = *state;
  char path[256];
  for (int i = 0; i < 25; i++) {
    snprintf(path, sizeof path, "/v1/ns/docs/%s%02d", i % 5 == 0 ? "img-" : "doc-", i);
    gw_http_resp r = req(f, 0, "PUT", path, NULL, i % 5 == 0 ? "image/png" : "text/plain", "x",
                         1, 201);
    gw_http_resp_free(&r);
  }
  char cursor[2048] = "";
  int total = 0, pages = 0;
  char last[64] = "";
  while (pages < 10) {
    snprintf(path, sizeof path, "/v1/document?namespace=docs&limit=10%s%s",
             *cursor ? "&cursor=" : "", cursor);
    gw_http_resp r = req(f, 0, "GET", path, NULL, NULL, NULL, 0, 200);
    json_t *j = gw_json(&r);
    json_t *docs = json_object_get(j, "documents");
    for (size_t i = 0; i < json_array_size(docs); i++) {
      const char *name = json_string_value(json_object_get(json_array_get(docs, i), "name"));
      assert_true(strcmp(name, last) > 0); /* ordered, no repeats */
      snprintf(last, sizeof last, "%s", name);
    }
    total += (int)json_array_size(docs);
    pages++;
    json_t *next = json_object_get(j, "next_cursor");
    if (!json_is_string(next)) {
      json_decref(j);
      gw_http_resp_free(&r);
      break;
    }
    snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
    json_decref(j);
    gw_http_resp_free(&r);
  }
  assert_int_equal(total, 25);
  assert_int_equal(pages, 3);
  gw_http_resp r = req(f, 0, "GET", "/v1/document?namespace=docs&prefix=img-", NULL, NULL, NULL,
                       0, 200);
  json_t *j = gw_json(&r);
  assert_int_equal(json_array_size(json_object_get(j, "documents")), 5);
  json_decref(j);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/document?content_type=image/png", NULL, NULL, NULL, 0, 200);
  j = gw_json(&r);
  assert_int_equal(json_array_size(json_object_get(j, "documents")), 5);
  json_decref(j);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/document?cursor=%21%21", NULL, NULL, NULL, 0, 400);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/document?limit=0", NULL, NULL, NULL, 0, 400);
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/document?namespace=nope", NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
  /* bob sees none of them */
  char bob[2200];
  gw_auth_header(bob, sizeof bob, f->bob);
  const char *hdr[] = {bob, NULL};
  gw_http_request(&f->env, "GET", "/v1/document", hdr, NULL, 0, &r);
  assert_int_equal(r.status, 200);
  j = gw_json(&r);
  assert_int_equal(json_array_size(json_object_get(j, "documents")), 0);
  json_decref(j);
  gw_http_resp_free(&r);
}

/* Presigned links: work without a token until they expire; a changed
 * signature, expiry or document is refused. */
static void presign_story(void **state) {
  fx *f = *state;
  gw_http_resp r = req(f, 0, "PUT", "/v1/ns/docs/secret.txt", NULL, NULL, "secret", 6, 201);
  char id[64], path[256], url[1024];
  field(&r, "id", id, sizeof id);
  gw_http_resp_free(&r);
  snprintf(path, sizeof path, "/v1/document/%s/url", id);
  r = req(f, 0, "POST", path, NULL, "application/json", "{\"expires_in\":1}", 16, 200);
  field(&r, "url", url, sizeof url);
  gw_http_resp_free(&r);
  r = req(f, 1, "GET", url, NULL, NULL, NULL, 0, 200);
  assert_memory_equal(r.body, "secret", 6);
  gw_http_resp_free(&r);
  /* tampered: last signature character, the expiry, the document */
  char bad[1100];
  snprintf(bad, sizeof bad, "%s", url);
  char *last = bad + strlen(bad) - 1;
  *last = *last == 'A' ? 'B' : 'A';
  r = req(f, 1, "GET", bad, NULL, NULL, NULL, 0, 403);
  gw_http_resp_free(&r);
  snprintf(bad, sizeof bad, "%s", url);
  char *e = strstr(bad, "expires=") + 8;
  *e = *e == '9' ? '8' : (char)(*e + 1);
  r = req(f, 1, "GET", bad, NULL, NULL, NULL, 0, 403);
  gw_http_resp_free(&r);
  r = req(f, 0, "PUT", "/v1/ns/docs/other.txt", NULL, NULL, "other", 5, 201);
  char other[64];
  field(&r, "id", other, sizeof other);
  gw_http_resp_free(&r);
  snprintf(bad, sizeof bad, "%s", url);
  memcpy(strstr(bad, id), other, strlen(other));
  r = req(f, 1, "GET", bad, NULL, NULL, NULL, 0, 403);
  gw_http_resp_free(&r);
  /* bad bodies */
  r = req(f, 0, "POST", path, NULL, "application/json", "{\"expires_in\":0}", 16, 400);
  gw_http_resp_free(&r);
  r = req(f, 0, "POST", path, NULL, "application/json", "{\"expires_in\":\"1\"}", 18, 400);
  gw_http_resp_free(&r);
  /* expired */
  sleep(2);
  r = req(f, 1, "GET", url, NULL, NULL, NULL, 0, 403);
  expect_code(&r, "link_expired");
  gw_http_resp_free(&r);
}

/* Size, type and extension limits, enforced before the body when the
 * headers tell, and while it streams otherwise (leaving nothing behind). */
static void limits_story(void **state) {
  fx *f = *state;
  gw_http_resp r = req(f, 0, "PUT", "/v1/ns/docs/ok.txt", NULL, "text/plain", "fine", 4, 201);
  gw_http_resp_free(&r);
  r = req(f, 0, "PUT", "/v1/ns/docs/a.png", NULL, "image/png", "png", 3, 201);
  gw_http_resp_free(&r);
  r = req(f, 0, "PUT", "/v1/ns/docs/a.pdf", NULL, "text/plain", "x", 1, 415);
  expect_code(&r, "unsupported_media_type");
  gw_http_resp_free(&r);
  r = req(f, 0, "PUT", "/v1/ns/docs/b.txt", NULL, "application/pdf", "x", 1, 415);
  gw_http_resp_free(&r);
  size_t big = 65 * 1024;
  char *data = calloc(1, big);
  r = req(f, 0, "PUT", "/v1/ns/docs/big.txt", NULL, "text/plain", data, big, 413);
  expect_code(&r, "too_large");
  gw_http_resp_free(&r);
  /* chunked (no Content-Length): refused while streaming */
  const char *hdr[] = {f->auth, "Content-Type: text/plain", "Transfer-Encoding: chunked", NULL};
  r.status = 0;
  gw_http_request(&f->env, "PUT", "/v1/ns/docs/big2.txt", hdr, data, big, &r);
  assert_int_equal(r.status, 413);
  gw_http_resp_free(&r);
  free(data);
  r = req(f, 0, "GET", "/v1/ns/docs/big2.txt", NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
}

/* Per-client rate limit: a burst passes, then 429 with Retry-After. */
static void rate_limit_story(void **state) {
  fx *f = *state;
  int limited = 0;
  for (int i = 0; i < 40 && !limited; i++) {
    gw_http_resp r;
    const char *hdr[] = {f->auth, NULL};
    assert_int_equal(gw_http_request(&f->env, "GET", "/v1/me", hdr, NULL, 0, &r), 0);
    if (r.status == 429) {
      limited = 1;
      assert_non_null(gw_http_header(&r, "Retry-After"));
      assert_true(atoi(gw_http_header(&r, "Retry-After")) >= 1);
      expect_code(&r, "rate_limited");
    } else {
      assert_int_equal(r.status, 200);
    }
    gw_http_resp_free(&r);
  }
  assert_true(limited);
}

/* Abort the request body after `limit` bytes. */
typedef struct cut_reader {
  gw_gen gen;
  uint64_t limit;
} cut_reader;

static size_t cut_read(void *arg, char *buf, size_t n) {
  cut_reader *c = arg;
  if (c->gen.pos >= c->limit) {
    return GW_READ_ABORT;
  }
  return gw_gen_read(&c->gen, buf, n);
}

/* An upload cut off mid-way ends 'failed' and is never readable. */
static void interrupted_upload_story(void **state) {
  fx *f = *state;
  cut_reader c;
  gw_gen_init(&c.gen, 7, 64u << 20);
  c.limit = 20u << 20;
  gw_stream s = {cut_read, &c, (int64_t)(64u << 20), NULL, NULL, 60000};
  const char *hdr[] = {f->auth, NULL};
  gw_http_resp r;
  int rc = gw_http_stream(&f->env, "PUT", "/v1/ns/docs/cut.bin", hdr, &s, &r);
  assert_int_not_equal(rc, 0);
  gw_http_resp_free(&r);
  gw_gen_free(&c.gen);
  /* the gateway notices the connection is gone: bounded wait for 'failed' */
  int failed = 0;
  for (int i = 0; i < 100 && !failed; i++) {
    r = req(f, 0, "GET", "/v1/document?namespace=docs&prefix=cut", NULL, NULL, NULL, 0, 200);
    json_t *j = gw_json(&r);
    json_t *d = json_array_get(json_object_get(j, "documents"), 0);
    failed = d && strcmp(json_string_value(json_object_get(d, "upload_status")), "failed") == 0;
    json_decref(j);
    gw_http_resp_free(&r);
    if (!failed) {
      usleep(100 * 1000);
    }
  }
  assert_true(failed);
  r = req(f, 0, "GET", "/v1/ns/docs/cut.bin", NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
}

/* With two of three chunkservers gone the cluster cannot take a write:
 * 503 with Retry-After, and the document is not visible. */
static void cluster_unavailable_story(void **state) {
  fx *f = *state;
  it_cs_kill(&f->env.cluster, 0);
  it_cs_kill(&f->env.cluster, 1);
  char *data = calloc(1, 100000);
  gw_http_resp r = req(f, 0, "PUT", "/v1/ns/docs/nowhere.bin", NULL, NULL, data, 100000, 503);
  free(data);
  assert_non_null(gw_http_header(&r, "Retry-After"));
  expect_code(&r, "unavailable");
  gw_http_resp_free(&r);
  r = req(f, 0, "GET", "/v1/ns/docs/nowhere.bin", NULL, NULL, NULL, 0, 404);
  gw_http_resp_free(&r);
}

typedef struct up_arg {
  fx *f;
  int i;
  int ok;
} up_arg;

static void *upload_one(void *p) {
  up_arg *a = p;
  gw_gen g;
  gw_gen_init(&g, (uint64_t)a->i + 100, 3u << 20);
  gw_stream s = {gw_gen_read, &g, (int64_t)(3u << 20), NULL, NULL, 120000};
  char path[64];
  snprintf(path, sizeof path, "/v1/ns/docs/par-%02d", a->i);
  const char *hdr[] = {a->f->auth, NULL};
  gw_http_resp r;
  int rc = gw_http_stream(&a->f->env, "PUT", path, hdr, &s, &r);
  char sha[65];
  gw_gen_sha256(&g, sha);
  json_t *j = rc == 0 && r.status == 201 ? gw_json(&r) : NULL;
  const char *got = json_string_value(json_object_get(j, "sha256"));
  a->ok = got && strcmp(got, sha) == 0;
  if (!a->ok) {
    fprintf(stderr, "upload %d: rc %d status %ld body %s\n", a->i, rc, r.status,
            r.body ? r.body : "");
  }
  json_decref(j);
  gw_http_resp_free(&r);
  gw_gen_free(&g);
  return NULL;
}

/* 20 uploads at once all complete with the right digest, and read back. */
static void concurrent_uploads_story(void **state) {
  fx *f = *state;
  pthread_t t[20];
  up_arg a[20];
  for (int i = 0; i < 20; i++) {
    a[i] = (up_arg){f, i, 0};
    assert_int_equal(pthread_create(&t[i], NULL, upload_one, &a[i]), 0);
  }
  for (int i = 0; i < 20; i++) {
    pthread_join(t[i], NULL);
  }
  for (int i = 0; i < 20; i++) {
    assert_true(a[i].ok);
  }
  gw_gen g;
  gw_gen_init(&g, 117, 3u << 20);
  gw_stream s = {NULL, NULL, 0, gw_gen_check, &g, 60000};
  const char *hdr[] = {f->auth, NULL};
  gw_http_resp r;
  assert_int_equal(gw_http_stream(&f->env, "GET", "/v1/ns/docs/par-17", hdr, &s, &r), 0);
  assert_int_equal(r.status, 200);
  assert_true(gw_gen_complete(&g));
  gw_http_resp_free(&r);
  gw_gen_free(&g);
}

/* 1 GiB up and down, streamed: equal sha256, and the gateway's peak RSS
 * stays under 64 MB throughout. */
static void gigabyte_story(void **state) {
  fx *f = *state;
  const uint64_t size = 1ull << 30;
  assert_int_equal(gw_reset_peak_rss(f->env.gw.pid), 0);
  gw_gen up;
  gw_gen_init(&up, 42, size);
  gw_stream s = {gw_gen_read, &up, (int64_t)size, NULL, NULL, 600000};
  const char *hdr[] = {f->auth, NULL};
  gw_http_resp r;
  assert_int_equal(gw_http_stream(&f->env, "PUT", "/v1/ns/docs/gig.bin", hdr, &s, &r), 0);
  assert_int_equal(r.status, 201);
  char sha[65], got[80];
  gw_gen_sha256(&up, sha);
  field(&r, "sha256", got, sizeof got);
  assert_string_equal(got, sha);
  gw_http_resp_free(&r);
  gw_gen_free(&up);
  gw_gen down;
  gw_gen_init(&down, 42, size);
  gw_stream d = {NULL, NULL, 0, gw_gen_check, &down, 600000};
  assert_int_equal(gw_http_stream(&f->env, "GET", "/v1/ns/docs/gig.bin", hdr, &d, &r), 0);
  assert_int_equal(r.status, 200);
  assert_true(gw_gen_complete(&down));
  gw_gen_sha256(&down, got);
  assert_string_equal(got, sha);
  gw_http_resp_free(&r);
  gw_gen_free(&down);
  int64_t kib = 0;
  assert_int_equal(gw_peak_rss_kib(f->env.gw.pid, &kib), 0);
  fprintf(stderr, "gateway peak RSS during 1 GiB up + down: %lld KiB\n", (long long)kib);
  if (!GW_SANITIZED) { /* the sanitizers' shadow memory and quarantine inflate RSS */
    assert_true(kib < 64 * 1000);
  }
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(raw_upload_story, setup, teardown),
                cmocka_unit_test_setup_teardown(multipart_story, setup, teardown),
                cmocka_unit_test_setup_teardown(path_style_story, setup, teardown),
                cmocka_unit_test_setup_teardown(list_story, setup, teardown),
                cmocka_unit_test_setup_teardown(presign_story, setup, teardown),
                cmocka_unit_test_setup_teardown(limits_story, setup_limits, teardown),
                cmocka_unit_test_setup_teardown(rate_limit_story, setup_rate, teardown),
                cmocka_unit_test_setup_teardown(interrupted_upload_story, setup, teardown),
                cmocka_unit_test_setup_teardown(cluster_unavailable_story, setup_fast_fail,
                                                teardown),
                cmocka_unit_test_setup_teardown(concurrent_uploads_story, setup, teardown),
                cmocka_unit_test_setup_teardown(gigabyte_story, setup, teardown))
