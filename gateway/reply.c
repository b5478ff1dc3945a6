/*
 * reply.c - how the gateway answers: JSON bodies and errors, the headers
 * every reply carries (request id, security headers, CORS), CORS
 * preflights, 429s, the access log and the request metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_internal.h"

struct gw_stats {
  cmn_counter *by_class[6]; /* 1xx..5xx, [0] unused */
  cmn_counter *aborted;
  cmn_counter *bytes_in, *bytes_out;
  cmn_histogram *latency;
};

int gw_metrics_init(gw_ctx *gw) {
  struct gw_stats *st = cmn_calloc(1, sizeof *st);
  static const char *const classes[] = {NULL, "1xx", "2xx", "3xx", "4xx", "5xx"};
  int rc = 0;
  for (int i = 1; i <= 5 && rc == 0; i++) {
    cmn_label l = {"code", classes[i]};
    rc = cmn_counter_register(gw->metrics, "cairn_gateway_requests_total",
                              "HTTP requests answered, by status class", &l, 1,
                              &st->by_class[i]);
  }
  if (rc == 0) {
    rc = cmn_counter_register(gw->metrics, "cairn_gateway_requests_aborted_total",
                              "requests cut off before their reply was sent", NULL, 0,
                              &st->aborted);
  }
  if (rc == 0) {
    rc = cmn_counter_register(gw->metrics, "cairn_gateway_body_in_bytes_total",
                              "request body bytes received", NULL, 0, &st->bytes_in);
  }
  if (rc == 0) {
    rc = cmn_counter_register(gw->metrics, "cairn_gateway_body_out_bytes_total",
                              "reply body bytes announced", NULL, 0, &st->bytes_out);
  }
  if (rc == 0) {
    rc = cmn_histogram_register(gw->metrics, "cairn_gateway_request_seconds",
                                "time from request headers to the end of the reply", NULL, 0,
                                cmn_metrics_latency_buckets, CMN_METRICS_LATENCY_NBUCKETS,
                                &st->latency);
  }
  if (rc < 0) {
    free(st);
    return rc;
  }
  gw->stats = st;
  return 0;
}

void gw_metrics_free(gw_ctx *gw) {
  free(gw->stats);
  gw->stats = NULL;
}

const char *gw_error_code(int rc) {
  switch (rc) {
  case CAIRN_EINVAL: case CAIRN_EBADPATH: case CAIRN_EPROTO: return "invalid";
  case CAIRN_ENAMETOOLONG: return "name_too_long";
  case CAIRN_ENOENT: return "not_found";
  case CAIRN_EEXIST: return "already_exists";
  case CAIRN_ECONFLICT: case CAIRN_EPRECOND: return "conflict";
  case CAIRN_EAUTH: return "unauthenticated";
  case CAIRN_EPERM: return "forbidden";
  case CAIRN_ETOOBIG: return "too_large";
  case CAIRN_EMEDIATYPE: return "unsupported_media_type";
  case CAIRN_ERANGE: return "range_not_satisfiable";
  case CAIRN_ERATELIMIT: return "rate_limited";
  case CAIRN_ENOSPC: return "insufficient_storage";
  case CAIRN_ETIMEDOUT: return "timeout";
  case CAIRN_EUNAVAIL: case CAIRN_ENOQUORUM: case CAIRN_ENOSERVERS: case CAIRN_EBUSY:
  case CAIRN_ECLOSED: case CAIRN_EREADONLY: case CAIRN_ENOMEM:
    return "unavailable";
  default: return "internal";
  }
}

/* Is `origin` one of the configured CORS origins? */
static int origin_allowed(gw_ctx *gw, const char *origin) {
  const char *list = gw->cfg.cors_origins;
  size_t n = strlen(origin);
  if (list == NULL || n == 0) {
    return 0;
  }
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',') {
      p++;
    }
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') {
      e++;
    }
    if ((size_t)(e - p) == n && memcmp(p, origin, n) == 0) {
      return 1;
    }
    if (e - p == 1 && *p == '*') {
      return 1;
    }
    p = e;
  }
  return 0;
}

void gw_reply_header(gw_req *r, const char *name, const char *value) {
  size_t a = strlen(name) + 1, b = strlen(value) + 1;
  r->extra_headers = cmn_realloc(r->extra_headers, r->extra_len + a + b + 1);
  memcpy(r->extra_headers + r->extra_len, name, a);
  memcpy(r->extra_headers + r->extra_len + a, value, b);
  r->extra_len += a + b;
  r->extra_headers[r->extra_len] = '\0';
}

/* Headers every reply carries, then the handler's own. */
static void add_headers(gw_req *r, struct MHD_Response *resp) {
  gw_ctx *gw = r->gw;
  MHD_add_response_header(resp, "X-Request-Id", r->id);
  MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(resp, "X-Frame-Options", "DENY");
  MHD_add_response_header(resp, "Content-Security-Policy",
                          "default-src 'none'; frame-ancestors 'none'; sandbox");
  MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
  if (!gw->cfg.plain_http) {
    MHD_add_response_header(resp, "Strict-Transport-Security",
                            "max-age=31536000; includeSubDomains");
  }
  const char *origin = gw_header(r, "Origin");
  if (origin && origin_allowed(gw, origin)) {
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    MHD_add_response_header(resp, "Vary", "Origin");
    MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                            "ETag, Content-Disposition, Content-Range, Retry-After, "
                            "X-Request-Id, Location");
  }
  int has_cache = 0;
  for (size_t off = 0; r->extra_headers && off < r->extra_len;) {
    const char *name = r->extra_headers + off;
    const char *value = name + strlen(name) + 1;
    off = (size_t)(value - r->extra_headers) + strlen(value) + 1;
    if (strcasecmp(name, "Cache-Control") == 0) {
      has_cache = 1;
    }
    MHD_add_response_header(resp, name, value);
  }
  if (!has_cache) {
    MHD_add_response_header(resp, "Cache-Control", "no-store");
  }
}

void gw_reply_mhd(gw_req *r, int status, struct MHD_Response *resp, uint64_t bytes) {
  if (r->status != 0) {
    CMN_ERROR("gw.http", "double_reply id=%s status=%d again=%d", r->id, r->status, status);
    MHD_destroy_response(resp);
    return;
  }
  add_headers(r, resp);
  r->status = status;
  r->bytes_out = bytes;
  r->pending = resp;
}

static void reply_buffer(gw_req *r, int status, const char *type, char *data, size_t n) {
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(n, data, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(data);
    CMN_ERROR("gw.http", "no_response id=%s", r->id);
    return;
  }
  if (type) {
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  }
  gw_reply_mhd(r, status, resp, n);
}

void gw_reply_json(gw_req *r, int status, json_t *body) {
  char *s = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (s == NULL) {
    s = cmn_strdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode\"}}");
    status = 500;
  }
  size_t n = strlen(s);
  char *copy = cmn_malloc(n + 1); /* MHD frees with free(); jansson may use another allocator */
  memcpy(copy, s, n + 1);
  free(s);
  copy[n] = '\n';
  reply_buffer(r, status, "application/json", copy, n + 1);
}

void gw_reply_empty(gw_req *r, int status) {
  struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
  if (resp) {
    gw_reply_mhd(r, status, resp, 0);
  }
}

void gw_reply_error(gw_req *r, int status, const char *code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *body = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message", msg,
                           "request_id", r->id);
  if (body == NULL) { /* message not UTF-8 (echoed client input) */
    body = json_pack("{s:{s:s,s:s,s:s}}", "error", "code", code, "message",
                     "invalid request", "request_id", r->id);
  }
  gw_reply_json(r, status, body);
}

void gw_reply_cairn(gw_req *r, int rc, const char *what) {
  int status = cairn_err_http_status(rc);
  if (status < 400) {
    status = 500;
  }
  if (status == 503 || rc == CAIRN_ERATELIMIT) {
    gw_reply_header(r, "Retry-After", "1");
  }
  gw_reply_error(r, status, gw_error_code(rc), "%s: %s", what, cairn_strerror(rc));
}

void gw_reply_rate_limited(gw_req *r, int64_t retry_after_ms) {
  char v[24];
  snprintf(v, sizeof v, "%lld", (long long)((retry_after_ms + 999) / 1000));
  gw_reply_header(r, "Retry-After", v);
  gw_reply_error(r, 429, "rate_limited", "too many requests; retry after %s s", v);
}

void gw_cors_preflight(gw_req *r) {
  const char *origin = gw_header(r, "Origin");
  if (origin && origin_allowed(r->gw, origin)) {
    gw_reply_header(r, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
    gw_reply_header(r, "Access-Control-Allow-Headers",
                    "Authorization, Content-Type, If-None-Match, Range, X-Request-Id");
    gw_reply_header(r, "Access-Control-Max-Age", "600");
  }
  gw_reply_empty(r, 204);
}

void gw_access_log(gw_ctx *gw, gw_req *r, int aborted) {
  double secs = (double)(cmn_mono_ns() - r->start_ns) / 1e9;
  struct gw_stats *st = gw->stats;
  if (st) {
    int cls = r->status / 100;
    if (cls >= 1 && cls <= 5) {
      cmn_counter_inc(st->by_class[cls]);
    }
    if (aborted) {
      cmn_counter_inc(st->aborted);
    }
    cmn_counter_add(st->bytes_in, r->body_bytes);
    cmn_counter_add(st->bytes_out, r->bytes_out);
    cmn_histogram_observe(st->latency, secs);
  }
  if (cmn_log_get_level() > CMN_LOG_INFO) {
    return;
  }
  char path[160];
  snprintf(path, sizeof path, "%s", r->url ? r->url : "");
  for (char *p = path; *p; p++) {
    if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20) {
      *p = '?';
    }
  }
  CMN_INFO("gw.access",
           "id=%s ip=%s user=%lld method=%s path=\"%s\" status=%d in=%llu out=%llu ms=%.2f%s",
           r->id, r->peer, (long long)r->user.id, r->method ? r->method : "-", path, r->status,
           (unsigned long long)r->body_bytes, (unsigned long long)r->bytes_out, secs * 1e3,
           aborted ? " aborted=1" : "");
}

const char *gw_json_str(gw_req *r, const char *key) {
  json_t *v = r->json ? json_object_get(r->json, key) : NULL;
  return json_is_string(v) ? json_string_value(v) : NULL;
}

int gw_username_valid(const char *s) {
  size_t n = strlen(s);
  if (n < 3 || n > 64) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-')) {
      return 0;
    }
  }
  return 1;
}

int gw_json_only_fields(gw_req *r, const char *const *known) {
  const char *key;
  json_t *v;
  json_object_foreach(r->json, key, v) {
    size_t i = 0;
    while (known[i] && strcmp(known[i], key) != 0) {
      i++;
    }
    if (known[i] == NULL) {
      gw_reply_error(r, 400, "invalid", "field '%s' is not known here", key);
      return 1;
    }
  }
  return 0;
}

int gw_json_bool(gw_req *r, const char *key, int def) {
  json_t *v = r->json ? json_object_get(r->json, key) : NULL;
  return json_is_boolean(v) ? json_is_true(v) : def;
}

int gw_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port) {
  const char *colon = strrchr(s, ':');
  if (colon == NULL || colon == s || (size_t)(colon - s) >= hostlen) {
    return CAIRN_EINVAL;
  }
  char *end;
  long p = strtol(colon + 1, &end, 10);
  if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535) {
    return CAIRN_EINVAL;
  }
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = '\0';
  *port = (uint16_t)p;
  return 0;
}
