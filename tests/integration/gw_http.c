/*
 * gw_http.c - the client side of gateway tests: HTTP/1.1 requests on
 * libcurl (in memory or streamed), JSON helpers, login, deterministic
 * large bodies with their SHA-256, and a process's peak RSS.
 */
#include "gw_harness.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define STREAM_TIMEOUT_MS 600000
#define CONNECT_TIMEOUT_MS 10000

/* What one transfer collects; the callbacks' shared state. */
typedef struct xfer {
  cmn_buf body;
  cmn_buf headers;
  size_t body_len;
  const gw_stream *stream;
  bool too_big;
  bool aborted;
} xfer;

/* Header lines of every response arrive here; a status line starts a new
 * block, so 100 Continue and redirects leave only the final headers. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *arg) {
  xfer *x = arg;
  size_t n = size * nmemb;
  if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) x->headers.len = 0;
  cmn_buf_append(&x->headers, data, n);
  return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg) {
  xfer *x = arg;
  size_t n = size * nmemb;
  x->body_len += n;
  if (x->stream && x->stream->write) {
    if (x->stream->write(x->stream->write_arg, data, n) != 0) {
      x->aborted = true;
      return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
    }
    return n;
  }
  if (x->body.len + n > GW_HTTP_MAX_BODY) {
    x->too_big = true;
    return 0;
  }
  cmn_buf_append(&x->body, data, n);
  return n;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg) {
  xfer *x = arg;
  size_t got = x->stream->read(x->stream->read_arg, buf, size * nitems);
  if (got == GW_READ_ABORT) {
    x->aborted = true;
    return CURL_READFUNC_ABORT;
  }
  return got;
}

static bool has_header(const char *const *headers, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; headers && headers[i]; i++)
    if (strncasecmp(headers[i], name, len) == 0 && headers[i][len] == ':') return true;
  return false;
}

/* cairn code of a failed transfer. */
static int curl_to_cairn(CURLcode c, const xfer *x) {
  if (x->too_big) return CAIRN_ETOOBIG;
  if (x->aborted) return CAIRN_ECANCELED;
  if (c == CURLE_OPERATION_TIMEDOUT) return CAIRN_ETIMEDOUT;
  return CAIRN_EIO;
}

/*
 * One request: an in-memory body (mem, has_mem) or a streamed one (s), the
 * response kept in memory or handed to s->write. A fresh easy handle per
 * request keeps concurrent callers apart. When the server answered before
 * it read the whole body (e.g. 413 after the first bytes) curl may report a
 * send error; the answer is what the test wants, so a received final
 * status counts as a response.
 */
static int perform(const gw_env *env, const char *method, const char *path,
                   const char *const *headers, const void *mem, size_t mem_len, bool has_mem,
                   const gw_stream *s, gw_http_resp *out) {
  memset(out, 0, sizeof *out);
  xfer x = {.stream = s};
  struct curl_slist *hl = NULL;
  int rc = CAIRN_EIO;
  char *url = (strncmp(path, "http://", 7) == 0 || strncmp(path, "https://", 8) == 0)
                  ? cmn_strdup(path)
                  : cmn_sprintf("%s%s", env->url, path);
  CURL *h = curl_easy_init();
  if (!h) goto fail;
  for (size_t i = 0; headers && headers[i]; i++) hl = curl_slist_append(hl, headers[i]);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   (long)(s ? (s->timeout_ms > 0 ? s->timeout_ms : STREAM_TIMEOUT_MS)
                            : GW_HTTP_TIMEOUT_MS));
  if (s) {
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 30L);
  }
  /* The certificate the env made is the CA: verification stays on. */
  if (env->cert[0]) curl_easy_setopt(h, CURLOPT_CAINFO, env->cert);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  bool sends = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
               strcmp(method, "PATCH") == 0;
  if (s && s->read) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &x);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->body_len);
  } else if (has_mem || sends) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)mem_len);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, mem ? mem : "");
    /* Not curl's default form type: a body goes as the test labelled it. */
    if (!has_header(headers, "Content-Type")) hl = curl_slist_append(hl, "Content-Type:");
  }
  if (strcmp(method, "HEAD") == 0) curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  else curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
  CURLcode c = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
  if (c == CURLE_OK || (c == CURLE_SEND_ERROR && out->status >= 200)) {
    rc = 0;
  } else {
    rc = curl_to_cairn(c, &x);
    fprintf(stderr, "gw_http %s %s: %s (%s)\n", method, url, curl_easy_strerror(c),
            cairn_err_name(rc));
  }
fail:
  cmn_buf_append(&x.body, "", 1); /* NUL-terminate (also when empty) */
  cmn_buf_append(&x.headers, "", 1);
  out->body = x.body.data;
  out->body_len = x.body_len;
  out->headers = x.headers.data;
  curl_slist_free_all(hl);
  if (h) curl_easy_cleanup(h);
  free(url);
  return rc;
}

int gw_http_request(const gw_env *env, const char *method, const char *path,
                    const char *const *headers, const void *body, size_t len,
                    gw_http_resp *out) {
  return perform(env, method, path, headers, body, len, body != NULL, NULL, out);
}

int gw_http_stream(const gw_env *env, const char *method, const char *path,
                   const char *const *headers, const gw_stream *s, gw_http_resp *out) {
  return perform(env, method, path, headers, NULL, 0, false, s, out);
}

int gw_http_json(const gw_env *env, const char *method, const char *path, const char *token,
                 const char *json, gw_http_resp *out) {
  char auth[2048];
  const char *headers[3] = {NULL, NULL, NULL};
  size_t n = 0;
  if (json) headers[n++] = "Content-Type: application/json";
  if (token) {
    gw_auth_header(auth, sizeof auth, token);
    headers[n++] = auth;
  }
  return gw_http_request(env, method, path, headers, json, json ? strlen(json) : 0, out);
}

const char *gw_http_header(gw_http_resp *r, const char *name) {
  size_t len = strlen(name);
  for (const char *line = r->headers; line && *line;) {
    const char *eol = strchr(line, '\n');
    size_t ll = eol ? (size_t)(eol - line) : strlen(line);
    if (ll > len && strncasecmp(line, name, len) == 0 && line[len] == ':') {
      const char *v = line + len + 1, *end = line + ll;
      while (v < end && (*v == ' ' || *v == '\t')) v++;
      while (end > v && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
      snprintf(r->hval, sizeof r->hval, "%.*s", (int)(end - v), v);
      return r->hval;
    }
    line += ll + (eol ? 1 : 0);
  }
  return NULL;
}

void gw_http_resp_free(gw_http_resp *r) {
  if (!r) return;
  free(r->body);
  free(r->headers);
  memset(r, 0, sizeof *r);
}

json_t *gw_json(const gw_http_resp *r) {
  if (!r->body) return NULL;
  json_error_t err;
  return json_loadb(r->body, r->body_len, 0, &err);
}

void gw_auth_header(char *out, size_t n, const char *token) {
  snprintf(out, n, "Authorization: Bearer %s", token);
}

/* POST a {"username","password"} body to `path`. */
static int post_credentials(const gw_env *env, const char *path, const char *user,
                            const char *pass, gw_http_resp *out) {
  json_t *j = json_pack("{s:s, s:s}", "username", user, "password", pass);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  int rc = text ? gw_http_json(env, "POST", path, NULL, text, out) : CAIRN_EINVAL;
  free(text);
  json_decref(j);
  return rc;
}

int gw_login(const gw_env *env, const char *user, const char *pass, char *token, size_t n) {
  gw_http_resp r;
  json_t *j = NULL;
  int rc = post_credentials(env, "/v1/auth/register", user, pass, &r);
  if (rc != 0) goto fail;
  if (r.status != 201 && r.status != 409) {
    fprintf(stderr, "gw_login: register %s: %ld %s\n", user, r.status, r.body);
    rc = CAIRN_EPROTO;
    goto fail;
  }
  gw_http_resp_free(&r);
  rc = post_credentials(env, "/v1/auth/token", user, pass, &r);
  if (rc != 0) goto fail;
  if (r.status == 401) {
    rc = CAIRN_EAUTH;
    goto fail;
  }
  j = gw_json(&r);
  const char *t = json_string_value(json_object_get(j, "access_token"));
  if (r.status != 200 || !t) {
    fprintf(stderr, "gw_login: token %s: %ld %s\n", user, r.status, r.body);
    rc = CAIRN_EPROTO;
    goto fail;
  }
  rc = strlen(t) < n ? 0 : CAIRN_EINVAL;
  if (rc == 0) snprintf(token, n, "%s", t);
fail:
  json_decref(j);
  gw_http_resp_free(&r);
  return rc;
}

/* ---- deterministic bodies ---------------------------------------------------- */

/* splitmix64: every 8-byte word of a body is a function of (seed, index). */
static uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void gw_gen_init(gw_gen *g, uint64_t seed, uint64_t len) {
  memset(g, 0, sizeof *g);
  g->seed = seed;
  g->len = len;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) abort();
  g->sha = ctx;
}

static uint64_t gen_word(const gw_gen *g, uint64_t index) {
  return mix(g->seed ^ (index * 0xd1b54a32d192ed03ull));
}

/* Byte `o` of the body: byte o%8 (little-endian) of word o/8. */
static uint8_t gen_byte(const gw_gen *g, uint64_t o) {
  return (uint8_t)(gen_word(g, o >> 3) >> (8 * (o & 7)));
}

void gw_gen_fill(const gw_gen *g, uint64_t off, void *buf, size_t n) {
  uint8_t *p = buf;
  size_t i = 0;
  for (; i < n && ((off + i) & 7) != 0; i++) p[i] = gen_byte(g, off + i);
  for (; i + 8 <= n; i += 8) {
    uint64_t w = gen_word(g, (off + i) >> 3);
    for (int b = 0; b < 8; b++) p[i + (size_t)b] = (uint8_t)(w >> (8 * b));
  }
  for (; i < n; i++) p[i] = gen_byte(g, off + i);
}

size_t gw_gen_read(void *arg, char *buf, size_t n) {
  gw_gen *g = arg;
  uint64_t left = g->len - g->pos;
  if (n > left) n = (size_t)left;
  gw_gen_fill(g, g->pos, buf, n);
  EVP_DigestUpdate(g->sha, buf, n);
  g->pos += n;
  return n;
}

int gw_gen_check(void *arg, const char *buf, size_t n) {
  gw_gen *g = arg;
  uint8_t want[65536];
  EVP_DigestUpdate(g->sha, buf, n);
  for (size_t done = 0; done < n;) {
    size_t k = CMN_MIN(n - done, sizeof want);
    if (g->pos + k > g->len) {
      if (!g->mismatch) g->bad_at = g->len;
      g->mismatch = true;
      g->pos += n - done;
      return 0;
    }
    gw_gen_fill(g, g->pos, want, k);
    if (!g->mismatch && memcmp(want, buf + done, k) != 0) {
      size_t i = 0;
      while ((uint8_t)buf[done + i] == want[i]) i++;
      g->bad_at = g->pos + i;
      g->mismatch = true;
    }
    g->pos += k;
    done += k;
  }
  return 0;
}

void gw_gen_sha256(const gw_gen *g, char out[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *copy = EVP_MD_CTX_new();
  if (!copy || EVP_MD_CTX_copy_ex(copy, g->sha) != 1 || EVP_DigestFinal_ex(copy, md, &len) != 1)
    abort();
  EVP_MD_CTX_free(copy);
  cmn_hex_encode(md, len, out);
}

int gw_gen_complete(const gw_gen *g) { return !g->mismatch && g->pos == g->len; }

void gw_gen_free(gw_gen *g) {
  EVP_MD_CTX_free(g->sha);
  g->sha = NULL;
}

/* ---- memory --------------------------------------------------------------------- */

int gw_peak_rss_kib(pid_t pid, int64_t *kib) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f) return CAIRN_ENOENT;
  int rc = CAIRN_ENOENT; /* a zombie has no VmHWM line */
  while (fgets(line, sizeof line, f)) {
    long long v;
    if (sscanf(line, "VmHWM: %lld kB", &v) == 1) {
      *kib = v;
      rc = 0;
      break;
    }
  }
  fclose(f);
  return rc;
}

int gw_reset_peak_rss(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/clear_refs", (long)pid);
  FILE *f = fopen(path, "w");
  if (!f) return CAIRN_EIO;
  int ok = fputs("5", f) >= 0;
  ok &= fclose(f) == 0;
  return ok ? 0 : CAIRN_EIO;
}
