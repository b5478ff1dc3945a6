/*
 * gw_story.h - what the gateway's story tests share: a fresh environment
 * with three users logged in (alice, bobby and carol), and requests that
 * fail the running cmocka test unless they get the expected status (and
 * error code). Header-only; include after test_main.h and gw_harness.h.
 * Main thread only.
 */
#ifndef CAIRN_IT_GW_STORY_H
#define CAIRN_IT_GW_STORY_H

#include <stdlib.h>
#include <string.h>

#include "gw_harness.h"

typedef struct gw_trio {
  gw_env env;
  char alice[2048], bob[2048], carol[2048]; /* access tokens */
} gw_trio;

/* cmocka setup: *state gets a gw_trio with the gateway started (tag names
 * its directory) and the three users registered and logged in. */
static inline int gw_trio_start(void **state, const char *tag) {
  gw_trio *f = calloc(1, sizeof *f);
  *state = f;
  if (f == NULL || gw_env_start(&f->env, tag, NULL) != 0) {
    return -1;
  }
  if (gw_login(&f->env, "alice", "alice-password", f->alice, sizeof f->alice) != 0 ||
      gw_login(&f->env, "bobby", "bobby-password", f->bob, sizeof f->bob) != 0 ||
      gw_login(&f->env, "carol", "carol-password", f->carol, sizeof f->carol) != 0) {
    return -1;
  }
  return 0;
}

/* cmocka teardown: everything stopped and freed, also after a failure. */
static inline int gw_trio_stop(void **state) {
  gw_trio *f = *state;
  if (f) {
    gw_env_stop(&f->env);
    free(f);
  }
  return 0;
}

/* One request with an optional JSON body (token NULL: anonymous). Fails
 * the test unless the reply has `status` and, when `code` is given, the
 * error code `code`. The reply is left in *r (the caller frees it). */
static inline void gw_req(gw_trio *f, const char *method, const char *path, const char *token,
                          const char *json, long status, const char *code, gw_http_resp *r) {
  int rc = gw_http_json(&f->env, method, path, token, json, r);
  if (rc != 0 || r->status != status) {
    fail_msg("%s %s %s: rc %d status %ld (want %ld) body %s", method, path, json ? json : "",
             rc, r->status, status, r->body ? r->body : "");
  }
  if (code) {
    json_t *body = gw_json(r);
    const char *got = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
    if (got == NULL || strcmp(got, code) != 0) {
      fail_msg("%s %s: error code %s, want %s (body %s)", method, path, got ? got : "none", code,
               r->body);
    }
    json_decref(body);
  }
}

/* gw_req returning the parsed body (the caller decrefs; NULL when empty). */
static inline json_t *gw_call(gw_trio *f, const char *method, const char *path, const char *token,
                              const char *json, long status, const char *code) {
  gw_http_resp r;
  gw_req(f, method, path, token, json, status, code, &r);
  json_t *body = r.body_len ? gw_json(&r) : NULL;
  gw_http_resp_free(&r);
  return body;
}

/* gw_req for requests whose body is not looked at. */
static inline void gw_expect(gw_trio *f, const char *method, const char *path, const char *token,
                             const char *json, long status, const char *code) {
  gw_http_resp r;
  gw_req(f, method, path, token, json, status, code, &r);
  gw_http_resp_free(&r);
}

/* PUT /v1/ns/{ns}/{name} with `data` as a text/plain body; on 201 the new
 * document's id goes to id_out (may be NULL). */
static inline void gw_put_doc(gw_trio *f, const char *token, const char *ns, const char *name,
                              const char *data, long status, char id_out[37]) {
  char path[256], auth[2100];
  snprintf(path, sizeof path, "/v1/ns/%s/%s", ns, name);
  gw_auth_header(auth, sizeof auth, token);
  const char *headers[] = {auth, "Content-Type: text/plain", NULL};
  gw_http_resp r;
  int rc = gw_http_request(&f->env, "PUT", path, headers, data, strlen(data), &r);
  if (rc != 0 || r.status != status) {
    fail_msg("PUT %s: rc %d status %ld (want %ld) body %s", path, rc, r.status, status,
             r.body ? r.body : "");
  }
  if (id_out && status == 201) {
    json_t *body = gw_json(&r);
    const char *id = json_string_value(json_object_get(body, "id"));
    assert_non_null(id);
    snprintf(id_out, 37, "%s", id);
    json_decref(body);
  }
  gw_http_resp_free(&r);
}

#endif /* CAIRN_IT_GW_STORY_H */
