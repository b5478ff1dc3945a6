/*
 * download.c - GET /v1/document/{id}/download (with a token, or a
 * presigned link) and the serving of a document's bytes for it and for
 * GET /v1/ns/{namespace}/{name}: ETag / If-None-Match, Range (one range;
 * 206 / 416), Content-Disposition.
 *
 * Small documents (GW_SMALL_MAX) are read whole, kept in the small cache
 * and answered from memory. Larger ones stream: a reader thread fills a
 * two-buffer ring from the cluster while libmicrohttpd drains it into the
 * socket, so memory per download is bounded and the cluster read of the
 * next buffer overlaps the sending of this one.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_handlers.h"
#include "gw_presign.h"
#include "gw_ring.h"

#define STREAM_BUF (4u << 20)
#define STREAM_DEPTH 2
#define MHD_BLOCK (256 * 1024)

typedef struct stream {
  gw_ctx *gw;
  cairn_file *file;
  char id[37];
  uint64_t start, len; /* the byte range sent */
  gw_ring *ring;
  gw_ring_buf *cur;
  size_t cur_pos;
  pthread_t reader;
  int reader_running;
  int reader_done; /* the reader returned (atomic): joining it costs nothing */
} stream;

static void read_all(stream *s) {
  uint64_t done = 0;
  while (done < s->len) {
    gw_ring_buf *b = gw_ring_get_empty(s->ring);
    if (b == NULL) {
      return; /* the client went away */
    }
    size_t want = gw_ring_size(s->ring);
    if (want > s->len - done) {
      want = (size_t)(s->len - done);
    }
    int64_t n = cairn_pread(s->file, b->data, want, s->start + done);
    if (n <= 0) {
      int rc = n < 0 ? (int)n : CAIRN_EIO; /* 0: the file is shorter than its row says */
      CMN_WARN("gw.download", "read_failed id=%s off=%llu err=\"%s\"", s->id,
               (unsigned long long)(s->start + done), cairn_strerror(rc));
      gw_ring_close(s->ring, rc);
      return;
    }
    b->len = (size_t)n;
    b->off = done;
    done += (uint64_t)n;
    gw_ring_put_full(s->ring, b);
  }
}

static void *reader_main(void *arg) {
  stream *s = arg;
  read_all(s);
  __atomic_store_n(&s->reader_done, 1, __ATOMIC_RELEASE);
  return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  stream *s = cls;
  (void)pos;
  if (!s->reader_running) {
    if (pthread_create(&s->reader, NULL, reader_main, s) != 0) {
      return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    s->reader_running = 1;
  }
  if (s->cur == NULL) {
    s->cur = gw_ring_get_full(s->ring);
    s->cur_pos = 0;
    if (s->cur == NULL) {
      return MHD_CONTENT_READER_END_WITH_ERROR; /* the connection is cut: never short data */
    }
  }
  size_t k = s->cur->len - s->cur_pos;
  if (k > max) {
    k = max;
  }
  memcpy(buf, s->cur->data + s->cur_pos, k);
  s->cur_pos += k;
  if (s->cur_pos == s->cur->len) {
    gw_ring_put_empty(s->ring, s->cur);
    s->cur = NULL;
  }
  return (ssize_t)k;
}

static void stream_cleanup(void *cls) {
  stream *s = cls;
  if (s->reader_running) {
    pthread_join(s->reader, NULL);
  }
  gw_ring_free(s->ring);
  cairn_close(s->file);
  free(s);
}

/* The response is done (sent or abandoned): a reader still in a cluster
 * call is joined in the background, not on the connection's thread. */
static void stream_free(void *cls) {
  stream *s = cls;
  if (s->reader_running && !__atomic_load_n(&s->reader_done, __ATOMIC_ACQUIRE)) {
    gw_ring_close(s->ring, CAIRN_ECANCELED);
    gw_reap(s->gw, stream_cleanup, s);
  } else {
    stream_cleanup(s);
  }
}

int gw_range_parse(const char *h, uint64_t size, uint64_t *start, uint64_t *len) {
  if (h == NULL || strncmp(h, "bytes=", 6) != 0) {
    return 0;
  }
  const char *p = h + 6;
  if (strchr(p, ',')) {
    return 0; /* several ranges: the whole document instead */
  }
  char *end;
  if (*p == '-') { /* suffix: the last N bytes */
    if (p[1] < '0' || p[1] > '9') {
      return 0;
    }
    unsigned long long n = strtoull(p + 1, &end, 10);
    if (*end != '\0') {
      return 0;
    }
    if (n == 0 || size == 0) {
      return CAIRN_ERANGE;
    }
    if (n > size) {
      n = size;
    }
    *start = size - n;
    *len = n;
    return 1;
  }
  if (*p < '0' || *p > '9') {
    return 0;
  }
  unsigned long long a = strtoull(p, &end, 10);
  if (*end != '-') {
    return 0;
  }
  p = end + 1;
  unsigned long long b = size ? size - 1 : 0;
  if (*p != '\0') {
    if (*p < '0' || *p > '9') {
      return 0;
    }
    b = strtoull(p, &end, 10);
    if (*end != '\0' || b < a) {
      return 0;
    }
    if (b >= size) {
      b = size - 1;
    }
  }
  if (a >= size) {
    return CAIRN_ERANGE;
  }
  *start = a;
  *len = b - a + 1;
  return 1;
}

/* Does If-None-Match name this ETag (or "*")? */
static int etag_matches(const char *inm, const char *etag) {
  size_t n = strlen(etag);
  for (const char *p = inm; *p;) {
    p += strspn(p, " ,\t");
    if (strncmp(p, "W/", 2) == 0) {
      p += 2;
    }
    size_t k = strcspn(p, ",");
    while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t')) {
      k--;
    }
    if ((k == 1 && *p == '*') || (k == n && memcmp(p, etag, n) == 0)) {
      return 1;
    }
    p += strcspn(p, ",");
  }
  return 0;
}

/* Content-Disposition with an ASCII fallback and the UTF-8 name. */
static void disposition(gw_req *r, const char *name) {
  const char *base = strrchr(name, '/');
  base = base && base[1] ? base + 1 : name;
  const char *inl = gw_query(r, "inline");
  int is_inline = inl && (strcmp(inl, "1") == 0 || strcmp(inl, "true") == 0);
  cmn_buf b = {0};
  cmn_buf_appendf(&b, "%s; filename=\"", is_inline ? "inline" : "attachment");
  for (const char *p = base; *p; p++) {
    char c = *p;
    int plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '-' || c == '_' || c == ' ';
    cmn_buf_append(&b, plain ? &c : "_", 1);
  }
  cmn_buf_appendf(&b, "\"; filename*=UTF-8''");
  for (const unsigned char *p = (const unsigned char *)base; *p; p++) {
    int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '_';
    if (plain) {
      cmn_buf_append(&b, p, 1);
    } else {
      cmn_buf_appendf(&b, "%%%02X", *p);
    }
  }
  cmn_buf_append(&b, "", 1);
  gw_reply_header(r, "Content-Disposition", b.data);
  cmn_buf_free(&b);
}

/* Headers shared by 200, 206 and 304; returns 1 when 304 was sent. */
static int common_headers(gw_req *r, const char *name, const char *sha) {
  char etag[80];
  snprintf(etag, sizeof etag, "\"%s\"", sha);
  gw_reply_header(r, "ETag", etag);
  gw_reply_header(r, "Cache-Control", "private, no-cache");
  const char *inm = gw_header(r, "If-None-Match");
  if (inm && etag_matches(inm, etag)) {
    gw_reply_empty(r, 304);
    return 1;
  }
  gw_reply_header(r, "Accept-Ranges", "bytes");
  disposition(r, name);
  return 0;
}

/* Decide the range; returns 1 after replying 416, else 0 with start/len
 * and the status to send. */
static int pick_range(gw_req *r, uint64_t size, uint64_t *start, uint64_t *len, int *status) {
  *start = 0;
  *len = size;
  *status = 200;
  int rc = gw_range_parse(gw_header(r, "Range"), size, start, len);
  if (rc == CAIRN_ERANGE) {
    char cr[48];
    snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
    gw_reply_header(r, "Content-Range", cr);
    gw_reply_error(r, 416, "range_not_satisfiable", "the document has %llu bytes",
                   (unsigned long long)size);
    return 1;
  }
  if (rc == 1) {
    char cr[80];
    snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)*start,
             (unsigned long long)(*start + *len - 1), (unsigned long long)size);
    gw_reply_header(r, "Content-Range", cr);
    *status = 206;
  }
  return 0;
}

/* Answer from a document held in memory. The reply takes d->data over
 * when it sends the whole document (d->data is then NULL); a range is
 * copied out. */
static void serve_memory(gw_req *r, gw_small_doc *d) {
  if (common_headers(r, d->name, d->sha256)) {
    return;
  }
  uint64_t start, len;
  int status;
  if (pick_range(r, d->len, &start, &len, &status)) {
    return;
  }
  char *body = d->data;
  if (status == 200) {
    d->data = NULL;
  } else {
    body = cmn_malloc(len ? (size_t)len : 1);
    memcpy(body, d->data + start, (size_t)len);
  }
  struct MHD_Response *resp =
      MHD_create_response_from_buffer((size_t)len, body, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(body);
    gw_reply_error(r, 500, "internal", "cannot build the reply");
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, d->content_type);
  gw_reply_mhd(r, status, resp, len);
}

/* Read a small document whole into `out` (cached afterwards). */
static int read_small(gw_ctx *gw, const gw_doc *doc, gw_small_doc *out) {
  cairn_file *f;
  int rc = cairn_open(gw->cluster, doc->cluster_path, CAIRN_O_READ, &f);
  if (rc < 0) {
    return rc;
  }
  memset(out, 0, sizeof *out);
  out->data = cmn_malloc(doc->size ? (size_t)doc->size : 1);
  int64_t n = doc->size ? cairn_pread(f, out->data, (size_t)doc->size, 0) : 0;
  cairn_close(f);
  if (n != doc->size) {
    free(out->data);
    out->data = NULL;
    return n < 0 ? (int)n : CAIRN_EIO;
  }
  out->len = (size_t)doc->size;
  out->name = cmn_strdup(doc->name);
  out->content_type = cmn_strdup(doc->content_type);
  snprintf(out->sha256, sizeof out->sha256, "%s", doc->sha256);
  return 0;
}

void gw_doc_serve(gw_req *r, const char *id) {
  gw_ctx *gw = r->gw;
  gw_small_doc sd;
  if (gw->small && gw_small_get(gw->small, id, gw->cfg.cache_ttl_ms, &sd)) {
    serve_memory(r, &sd);
    gw_small_doc_clear(&sd);
    return;
  }
  gw_doc doc;
  int rc = gw_doc_load(gw, id, &doc);
  if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "no such document");
    return;
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "reading the document");
    return;
  }
  if (strcmp(doc.status, "completed") != 0) {
    gw_reply_error(r, 409, "conflict", "the upload is %s", doc.status);
    gw_doc_clear(&doc);
    return;
  }
  if (doc.size <= GW_SMALL_MAX) {
    rc = read_small(gw, &doc, &sd);
    gw_doc_clear(&doc);
    if (rc < 0) {
      gw_reply_cairn(r, rc, "reading from the cluster");
      return;
    }
    if (gw->small) {
      gw_small_put(gw->small, id, &sd);
    }
    serve_memory(r, &sd);
    gw_small_doc_clear(&sd);
    return;
  }
  uint64_t start, len;
  int status;
  if (common_headers(r, doc.name, doc.sha256) ||
      pick_range(r, (uint64_t)doc.size, &start, &len, &status)) {
    gw_doc_clear(&doc);
    return;
  }
  stream *s = cmn_calloc(1, sizeof *s);
  s->gw = gw;
  s->start = start;
  s->len = len;
  snprintf(s->id, sizeof s->id, "%s", id);
  s->ring = gw_ring_new(STREAM_DEPTH, len < STREAM_BUF ? (size_t)len : STREAM_BUF,
                        &gw->ring_budget, 30000);
  rc = s->ring ? cairn_open(gw->cluster, doc.cluster_path, CAIRN_O_READ, &s->file) : CAIRN_EBUSY;
  if (rc < 0) {
    gw_ring_free(s->ring);
    free(s);
    gw_doc_clear(&doc);
    gw_reply_cairn(r, rc, "opening the document in the cluster");
    return;
  }
  struct MHD_Response *resp =
      MHD_create_response_from_callback(len, MHD_BLOCK, stream_read, s, stream_free);
  if (resp == NULL) {
    stream_free(s);
    gw_doc_clear(&doc);
    gw_reply_error(r, 500, "internal", "cannot build the reply");
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, doc.content_type);
  gw_doc_clear(&doc);
  gw_reply_mhd(r, status, resp, len);
}

/* A presigned link: ?expires=<unix s>&signature=<sig>. Returns 1 when
 * present and valid, 0 when absent; replies 403 and returns -1 when bad. */
static int presigned(gw_req *r, const char *id) {
  const char *sig = gw_query(r, "signature");
  const char *exp = gw_query(r, "expires");
  if (sig == NULL && exp == NULL) {
    return 0;
  }
  char *end = NULL;
  long long e = exp ? strtoll(exp, &end, 10) : 0;
  int expired = 0;
  if (sig == NULL || exp == NULL || *exp == '\0' || *end != '\0' ||
      gw_presign_check(r->gw->link_key, "GET", id, e, sig, cmn_wall_ms() / 1000, &expired) < 0) {
    if (expired) {
      gw_reply_error(r, 403, "link_expired", "this link has expired");
    } else {
      gw_reply_error(r, 403, "forbidden", "this link is not valid");
    }
    return -1;
  }
  return 1;
}

void gw_h_download(gw_req *r) {
  const char *id = r->params[0];
  int p = presigned(r, id);
  if (p < 0 || (p == 0 && gw_doc_access(r, id, GW_PERM_READ))) {
    return;
  }
  gw_doc_serve(r, id);
}
