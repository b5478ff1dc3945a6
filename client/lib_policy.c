/*
 * lib_policy.c - the pure rules of libcairn: options and environment,
 * argument checks, the retry and backoff policy, the order in which
 * replicas are read, and temporary names. Nothing here does I/O or keeps
 * state, so the unit tests exercise it directly.
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- options ---------------------------------------------------------------------- */

void cairn_options_init(cairn_options *o) {
  if (!o) return;
  memset(o, 0, sizeof *o);
  o->rpc_timeout_ms = CAIRN__DEFAULT_RPC_TIMEOUT_MS;
  o->op_timeout_ms = CAIRN__DEFAULT_OP_TIMEOUT_MS;
  o->max_retries = CAIRN__DEFAULT_MAX_RETRIES;
  o->cache_ttl_ms = CAIRN__DEFAULT_CACHE_TTL_MS;
  o->io_threads = CAIRN__DEFAULT_IO_THREADS;
}

static const char *nonempty(const char *s) { return s && *s ? s : NULL; }

static char *dup_or_null(const char *s) { return nonempty(s) ? cmn_strdup(s) : NULL; }

/* 0 takes the default, negative is refused. */
static int pick(int64_t v, int64_t def, int64_t max, int64_t *out) {
  if (v < 0 || v > max) return CAIRN_EINVAL;
  *out = v == 0 ? def : v;
  return 0;
}

int cairn__opts_resolve(const cairn_options *o, const char *env_master,
                        const char *env_secret_file, cairn__opts *out) {
  if (!o || !out) return CAIRN_EINVAL;
  const char *master = nonempty(o->master);
  if (!master) master = nonempty(env_master);
  if (!master) master = CAIRN__DEFAULT_MASTER;
  const char *secret = nonempty(o->secret_file);
  if (!secret) secret = nonempty(env_secret_file);
  if (!secret || cairn__addr_check(master) != 0) return CAIRN_EINVAL;
  const int64_t day = 86400000;
  int64_t rpc, op, retries, ttl, threads;
  if (pick(o->rpc_timeout_ms, CAIRN__DEFAULT_RPC_TIMEOUT_MS, day, &rpc) != 0 ||
      pick(o->op_timeout_ms, CAIRN__DEFAULT_OP_TIMEOUT_MS, day, &op) != 0 ||
      pick(o->max_retries, CAIRN__DEFAULT_MAX_RETRIES, CAIRN__MAX_RETRIES_LIMIT, &retries) != 0 ||
      pick(o->io_threads, CAIRN__DEFAULT_IO_THREADS, CAIRN__MAX_IO_THREADS, &threads) != 0)
    return CAIRN_EINVAL;
  if (o->cache_ttl_ms < 0 || o->cache_ttl_ms > day) return CAIRN_EINVAL;
  ttl = o->cache_ttl_ms;
  memset(out, 0, sizeof *out);
  out->master = cmn_strdup(master);
  out->secret_file = cmn_strdup(secret);
  out->rpc_timeout_ms = rpc;
  out->op_timeout_ms = op;
  out->max_retries = (int)retries;
  out->cache_ttl_ms = ttl;
  out->io_threads = (int)threads;
  out->local_host = dup_or_null(o->local_host);
  out->zone = dup_or_null(o->zone);
  return 0;
}

void cairn__opts_free(cairn__opts *o) {
  if (!o) return;
  free(o->master);
  free(o->secret_file);
  free(o->local_host);
  free(o->zone);
  memset(o, 0, sizeof *o);
}

/* ---- addresses -------------------------------------------------------------------- */

/* Split "host:port" / "[v6]:port": the host's start and length, the port text. */
static int split_addr(const char *addr, const char **host, size_t *hlen, const char **port) {
  if (!addr || !*addr) return CAIRN_EINVAL;
  if (addr[0] == '[') {
    const char *close = strchr(addr, ']');
    if (!close || close == addr + 1 || close[1] != ':') return CAIRN_EINVAL;
    *host = addr + 1;
    *hlen = (size_t)(close - addr - 1);
    *port = close + 2;
  } else {
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || memchr(addr, ':', (size_t)(colon - addr))) return CAIRN_EINVAL;
    *host = addr;
    *hlen = (size_t)(colon - addr);
    *port = colon + 1;
  }
  return 0;
}

int cairn__addr_check(const char *addr) {
  const char *host, *port;
  size_t hlen;
  if (split_addr(addr, &host, &hlen, &port) != 0) return CAIRN_EINVAL;
  for (size_t i = 0; i < hlen; i++)
    if (isspace((unsigned char)host[i]) || host[i] == '/') return CAIRN_EINVAL;
  if (!*port || strlen(port) > 5) return CAIRN_EINVAL;
  long v = 0;
  for (const char *p = port; *p; p++) {
    if (!isdigit((unsigned char)*p)) return CAIRN_EINVAL;
    v = v * 10 + (*p - '0');
  }
  return v >= 1 && v <= 65535 ? 0 : CAIRN_EINVAL;
}

int cairn__addr_host(const char *addr, char *out, size_t n) {
  const char *host, *port;
  size_t hlen;
  if (!out || n == 0 || split_addr(addr, &host, &hlen, &port) != 0 || hlen >= n)
    return CAIRN_EINVAL;
  memcpy(out, host, hlen);
  out[hlen] = '\0';
  return 0;
}

/* ---- paths and flags ---------------------------------------------------------------- */

int cairn__path_check(const char *path) {
  if (!path) return CAIRN_EINVAL;
  size_t len = strlen(path);
  if (len == 0 || path[0] != '/') return CAIRN_EBADPATH;
  if (len > CAIRN__PATH_MAX) return CAIRN_ENAMETOOLONG;
  size_t end = len;
  if (len > 1 && path[len - 1] == '/') {
    end = len - 1;
    if (end == 1) return CAIRN_EBADPATH; /* "//" */
  }
  if (end == 1) return 0; /* "/" */
  for (size_t pos = 1;;) {
    const char *slash = memchr(path + pos, '/', end - pos);
    size_t stop = slash ? (size_t)(slash - path) : end;
    size_t n = stop - pos;
    if (n == 0) return CAIRN_EBADPATH;
    if ((n == 1 && path[pos] == '.') || (n == 2 && path[pos] == '.' && path[pos + 1] == '.'))
      return CAIRN_EBADPATH;
    if (n > CAIRN__NAME_MAX) return CAIRN_ENAMETOOLONG;
    if (stop >= end) break;
    pos = stop + 1;
  }
  return 0;
}

int cairn__open_flags_check(unsigned flags) {
  const unsigned known = CAIRN_O_READ | CAIRN_O_WRITE | CAIRN_O_CREATE | CAIRN_O_EXCL |
                         CAIRN_O_PARENTS | CAIRN_O_FRESH;
  if (flags & ~known) return CAIRN_EINVAL;
  if (!(flags & (CAIRN_O_READ | CAIRN_O_WRITE))) return CAIRN_EINVAL;
  if ((flags & (CAIRN_O_EXCL | CAIRN_O_PARENTS)) && !(flags & CAIRN_O_CREATE)) return CAIRN_EINVAL;
  return 0;
}

int cairn__temp_path(const char *path, uint64_t rnd, char *out, size_t n) {
  int rc = cairn__path_check(path);
  if (rc != 0) return rc;
  size_t len = strlen(path);
  if (path[len - 1] == '/') return CAIRN_EISDIR; /* also "/" */
  const char *slash = strrchr(path, '/');
  size_t dir_len = (size_t)(slash - path) + 1; /* with the '/' */
  const char *name = slash + 1;
  size_t name_len = strlen(name);
  /* "." + name + ".put-" + 16 hex must stay a valid component */
  const size_t extra = 1 + 5 + 16;
  if (name_len > CAIRN__NAME_MAX - extra) name_len = CAIRN__NAME_MAX - extra;
  if (dir_len + extra + name_len + 1 > n || dir_len + extra + name_len > CAIRN__PATH_MAX)
    return CAIRN_ENAMETOOLONG;
  char hex[17];
  cmn_hex_encode(&rnd, sizeof rnd, hex);
  memcpy(out, path, dir_len);
  size_t k = dir_len;
  out[k++] = '.';
  memcpy(out + k, name, name_len);
  k += name_len;
  memcpy(out + k, ".put-", 5);
  k += 5;
  memcpy(out + k, hex, 16);
  k += 16;
  out[k] = '\0';
  return 0;
}

/* ---- chunk spans ------------------------------------------------------------------ */

void cairn__span_init(cairn__span *s, uint64_t offset, uint64_t len, uint64_t chunk_size) {
  s->offset = offset;
  s->len = len;
  s->cs = chunk_size;
  s->first = offset / chunk_size;
  s->count = len ? (size_t)((offset + len - 1) / chunk_size - s->first + 1) : 0;
}

void cairn__span_part(const cairn__span *s, size_t i, uint64_t *start, uint64_t *end) {
  uint64_t cstart = (s->first + i) * s->cs;
  *start = s->offset > cstart ? s->offset : cstart;
  *end = CMN_MIN(s->offset + s->len, cstart + s->cs);
}

/* ---- retries ---------------------------------------------------------------------- */

void cairn__retry_init(cairn__retry *r, int max_attempts, int64_t op_timeout_ms, int64_t now_ms) {
  r->deadline_ms = now_ms + op_timeout_ms;
  r->attempts = 0;
  r->max_attempts = max_attempts > 0 ? max_attempts : 1;
}

int64_t cairn__backoff_ms(int attempt, uint64_t rnd) {
  int64_t d = CAIRN__BACKOFF_BASE_MS;
  for (int i = 0; i < attempt && d < CAIRN__BACKOFF_CAP_MS; i++) d *= 2;
  if (d > CAIRN__BACKOFF_CAP_MS) d = CAIRN__BACKOFF_CAP_MS;
  /* full range [d/2, d]: retries of many clients spread out */
  int64_t half = d / 2;
  return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}

int64_t cairn__retry_next(cairn__retry *r, int rc, int64_t now_ms, uint64_t rnd) {
  if (!cairn_err_retryable(rc)) return -1;
  int attempt = r->attempts++;
  if (r->attempts >= r->max_attempts) return -1;
  int64_t left = r->deadline_ms - now_ms;
  if (left <= 0) return -1;
  int64_t d = cairn__backoff_ms(attempt, rnd);
  return d < left ? d : -1;
}

int64_t cairn__retry_timeout(const cairn__retry *r, int64_t rpc_timeout_ms, int64_t now_ms) {
  int64_t left = r->deadline_ms - now_ms;
  if (left < rpc_timeout_ms) return left > 1 ? left : 1;
  return rpc_timeout_ms;
}

/* ---- replica order ------------------------------------------------------------------ */

static int closeness(const cairn__replica *r, const char *local_host, const char *zone) {
  char host[256];
  if (local_host && cairn__addr_host(r->data_addr, host, sizeof host) == 0 &&
      strcasecmp(host, local_host) == 0)
    return 0;
  if (zone && r->zone && strcmp(r->zone, zone) == 0) return 1;
  return 2;
}

void cairn__order_replicas(const cairn__loc *l, const char *local_host, const char *zone,
                           size_t *order) {
  size_t n = l->n, k = 0;
  if (n == 0) return;
  int cls[CAIRN__MAX_REPLICAS];
  for (size_t i = 0; i < n; i++) cls[i] = closeness(&l->rep[i], local_host, zone);
  size_t start = (size_t)(l->handle % n);
  for (int want = 0; want <= 2; want++)
    for (size_t j = 0; j < n; j++) {
      size_t i = (start + j) % n;
      if (cls[i] == want) order[k++] = i;
    }
}
