/*
 * routes.c - the gateway's route table and the matcher. Patterns are
 * literal segments, "{}" for one segment and "{*}" for the rest of the
 * path (at least one segment); captures are handed to handlers in
 * r->params, percent-decoded by libmicrohttpd already.
 */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_handlers.h"

#define R_JSON (GW_R_AUTH | GW_R_JSON)

static const gw_route routes[] = {
    {"GET", "/healthz", 0, 0, NULL, NULL, gw_h_health},
    {"GET", "/metrics", 0, 0, NULL, NULL, gw_h_metrics},

    {"POST", "/v1/auth/register", GW_R_JSON, 0, NULL, NULL, gw_h_register},
    {"POST", "/v1/auth/token", GW_R_JSON, 0, NULL, NULL, gw_h_token},
    {"POST", "/v1/auth/refresh", GW_R_JSON, 0, NULL, NULL, gw_h_refresh},
    {"POST", "/v1/auth/logout", GW_R_JSON | GW_R_AUTH_OPT, 0, NULL, NULL, gw_h_logout},
    {"GET", "/v1/me", GW_R_AUTH, 0, NULL, NULL, gw_h_me},

    {"GET", "/v1/tokens", GW_R_AUTH, GW_SCOPE_TOKENS, NULL, NULL, gw_h_tokens_list},
    {"POST", "/v1/tokens", R_JSON, GW_SCOPE_TOKENS, NULL, NULL, gw_h_tokens_create},
    {"DELETE", "/v1/tokens/{}", GW_R_AUTH, GW_SCOPE_TOKENS, NULL, NULL, gw_h_tokens_revoke},

    {"GET", "/v1/namespaces", GW_R_AUTH, GW_SCOPE_READ, NULL, NULL, gw_h_ns_list},
    {"POST", "/v1/namespaces", R_JSON, GW_SCOPE_WRITE, NULL, NULL, gw_h_ns_create},
    {"GET", "/v1/namespaces/{}", GW_R_AUTH_OPT, GW_SCOPE_READ, NULL, NULL, gw_h_ns_get},
    {"PATCH", "/v1/namespaces/{}", R_JSON, GW_SCOPE_WRITE, NULL, NULL, gw_h_ns_patch},
    {"DELETE", "/v1/namespaces/{}", GW_R_AUTH, GW_SCOPE_WRITE, NULL, NULL, gw_h_ns_delete},
    {"GET", "/v1/namespaces/{}/shares", GW_R_AUTH, GW_SCOPE_SHARE, NULL, NULL,
     gw_h_ns_share_list},
    {"POST", "/v1/namespaces/{}/shares", R_JSON, GW_SCOPE_SHARE, NULL, NULL, gw_h_ns_share_add},
    {"DELETE", "/v1/namespaces/{}/shares/{}", GW_R_AUTH, GW_SCOPE_SHARE, NULL, NULL,
     gw_h_ns_share_remove},

    {"POST", "/v1/document", GW_R_AUTH | GW_R_STREAM, GW_SCOPE_WRITE, gw_h_upload_begin,
     gw_h_upload_data, gw_h_upload_end},
    {"GET", "/v1/document", GW_R_AUTH, GW_SCOPE_READ, NULL, NULL, gw_h_doc_list},
    {"GET", "/v1/document/{}", GW_R_AUTH_OPT, GW_SCOPE_READ, NULL, NULL, gw_h_doc_get},
    {"DELETE", "/v1/document/{}", GW_R_AUTH, GW_SCOPE_WRITE, NULL, NULL, gw_h_doc_delete},
    {"GET", "/v1/document/{}/download", GW_R_AUTH_OPT, GW_SCOPE_READ, NULL, NULL,
     gw_h_download},
    {"POST", "/v1/document/{}/url", R_JSON, GW_SCOPE_SHARE, NULL, NULL, gw_h_doc_presign},
    {"GET", "/v1/document/{}/shares", GW_R_AUTH, GW_SCOPE_SHARE, NULL, NULL,
     gw_h_doc_share_list},
    {"POST", "/v1/document/{}/shares", R_JSON, GW_SCOPE_SHARE, NULL, NULL, gw_h_doc_share_add},
    {"DELETE", "/v1/document/{}/shares/{}", GW_R_AUTH, GW_SCOPE_SHARE, NULL, NULL,
     gw_h_doc_share_remove},

    {"PUT", "/v1/ns/{}/{*}", GW_R_AUTH | GW_R_STREAM, GW_SCOPE_WRITE, gw_h_put_begin,
     gw_h_upload_data, gw_h_upload_end},
    {"GET", "/v1/ns/{}/{*}", GW_R_AUTH_OPT, GW_SCOPE_READ, NULL, NULL, gw_h_path_get},
    {"DELETE", "/v1/ns/{}/{*}", GW_R_AUTH, GW_SCOPE_WRITE, NULL, NULL, gw_h_path_delete},
};

/* Match `path` against `pattern`; on a match with `r`, keep the captures. */
static int match(const char *pattern, const char *path, gw_req *r) {
  const char *p = pattern, *s = path;
  int n = 0;
  const char *cap[GW_MAX_PARAMS];
  size_t caplen[GW_MAX_PARAMS];
  while (*p) {
    if (p[0] == '{' && p[1] == '*' && p[2] == '}') {
      if (*s == '\0' || n == GW_MAX_PARAMS) {
        return 0;
      }
      cap[n] = s;
      caplen[n++] = strlen(s);
      s += strlen(s);
      p += 3;
      continue;
    }
    if (p[0] == '{' && p[1] == '}') {
      const char *e = strchr(s, '/');
      size_t len = e ? (size_t)(e - s) : strlen(s);
      if (len == 0 || n == GW_MAX_PARAMS) {
        return 0;
      }
      cap[n] = s;
      caplen[n++] = len;
      s += len;
      p += 2;
      continue;
    }
    if (*p != *s) {
      return 0;
    }
    p++;
    s++;
  }
  if (*s != '\0') {
    return 0;
  }
  if (r) {
    for (int i = 0; i < n; i++) {
      r->params[i] = cmn_malloc(caplen[i] + 1);
      memcpy(r->params[i], cap[i], caplen[i]);
      r->params[i][caplen[i]] = '\0';
    }
    r->nparams = n;
  }
  return 1;
}

const gw_route *gw_route_find(gw_req *r, const char *method, const char *path, int *allowed) {
  *allowed = 0;
  if (strcmp(method, "HEAD") == 0) {
    method = "GET"; /* libmicrohttpd leaves the body out */
  }
  for (size_t i = 0; i < CMN_ARRAY_LEN(routes); i++) {
    if (!match(routes[i].pattern, path, NULL)) {
      continue;
    }
    if (strcmp(routes[i].method, method) != 0) {
      *allowed = 1;
      continue;
    }
    match(routes[i].pattern, path, r);
    return &routes[i];
  }
  return NULL;
}
