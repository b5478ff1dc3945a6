/*
 * upload.c - POST /v1/document (raw body or multipart/form-data) and
 * PUT /v1/ns/{namespace}/{name}: a document streamed into the cluster as
 * it arrives.
 *
 * Life of an upload:
 *   1. begin (headers only): namespace, write permission, size, type and
 *      name checks; a refusal here is sent before the body is read, so a
 *      client that asked `Expect: 100-continue` never sends it.
 *   2. start (at begin for raw bodies, at the file part's headers for
 *      multipart): a 'pending' row and an exclusive cluster file
 *      <prefix>/<2 hex>/<uuid>; a writer thread.
 *   3. data: bytes go through sha256 into the ring's buffers; the writer
 *      thread stores each full buffer with cairn_pwrite (durable on a
 *      quorum when it returns). When the writer is behind, the HTTP thread
 *      waits, so TCP pushes back on the client.
 *   4. end: the last buffer, the writer joined, then one transaction makes
 *      the row 'completed' with its size and sha256 (replacing a same-name
 *      document when overwrite was asked). Only then is it visible.
 *   Any failure, including the client going away (state_free without
 *   end), marks the row 'failed' and removes the bytes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_handlers.h"
#include "gw_ring.h"
#include "gw_upload.h"

#define NAME_MAX_BYTES 1024
#define TYPE_MAX_BYTES 255

static void *writer_main(void *arg) {
  gw_upload *u = arg;
  gw_ring_buf *b;
  while ((b = gw_ring_get_full(u->ring)) != NULL) {
    int64_t n = cairn_pwrite(u->file, b->data, b->len, b->off);
    gw_ring_put_empty(u->ring, b);
    if (n < 0) {
      CMN_WARN("gw.upload", "write_failed id=%s off=%llu err=\"%s\"", u->id,
               (unsigned long long)b->off, cairn_strerror((int)n));
      gw_ring_close(u->ring, (int)n);
      break;
    }
  }
  return NULL;
}

/* Stop the writer: after a normal close it drains what is queued first. */
static int writer_join(gw_upload *u, int err) {
  if (!u->writer_running) {
    return err;
  }
  gw_ring_close(u->ring, err);
  pthread_join(u->writer, NULL);
  u->writer_running = 0;
  int rc = gw_ring_error(u->ring);
  return rc ? rc : err;
}

/* Is `type` (parameters ignored) in the configured list? */
static int type_allowed(const char *list, const char *type) {
  if (list == NULL || *list == '\0') {
    return 1;
  }
  size_t tlen = strcspn(type, "; ");
  size_t major = strcspn(type, "/");
  for (const char *p = list; *p;) {
    p += strspn(p, ", ");
    size_t n = strcspn(p, ", ");
    if (n == 0) {
      break;
    }
    if ((n == tlen && strncasecmp(p, type, n) == 0) ||
        (n >= 2 && p[n - 1] == '*' && p[n - 2] == '/' && n - 2 == major &&
         strncasecmp(p, type, major) == 0)) {
      return 1;
    }
    p += n;
  }
  return 0;
}

/* Is the extension of `name` in the configured list (".pdf" or "pdf")? */
static int ext_allowed(const char *list, const char *name) {
  if (list == NULL || *list == '\0') {
    return 1;
  }
  const char *dot = strrchr(name, '.');
  const char *slash = strrchr(name, '/');
  if (dot == NULL || (slash && slash > dot) || dot[1] == '\0') {
    return 0;
  }
  const char *ext = dot + 1;
  size_t elen = strlen(ext);
  for (const char *p = list; *p;) {
    p += strspn(p, ", ");
    size_t n = strcspn(p, ", ");
    if (n == 0) {
      break;
    }
    const char *e = p;
    size_t en = n;
    if (*e == '.') {
      e++;
      en--;
    }
    if (en == elen && strncasecmp(e, ext, en) == 0) {
      return 1;
    }
    p += n;
  }
  return 0;
}

/* A document name: 1..1024 bytes, no control characters, not "." or ".."
 * segments. UTF-8 validity is left to PostgreSQL (refused as invalid). */
static int name_valid(const char *name) {
  size_t n = strlen(name);
  if (n == 0 || n > NAME_MAX_BYTES) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
      return 0;
    }
  }
  return 1;
}

static int type_valid(const char *t) {
  size_t n = strlen(t);
  if (n == 0 || n > TYPE_MAX_BYTES || strchr(t, '/') == NULL) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if ((unsigned char)t[i] < 0x20 || (unsigned char)t[i] >= 0x7f) {
      return 0;
    }
  }
  return 1;
}

/* Fail the upload with `rc` and a reason for its row: stop the writer,
 * remove the bytes, mark the row failed. Idempotent. */
void gw_upload_fail(gw_upload *u, int rc, const char *why) {
  if (u->finished) {
    return;
  }
  u->finished = 1;
  u->error = rc;
  writer_join(u, rc ? rc : CAIRN_ECANCELED);
  if (u->file) {
    cairn_close(u->file);
    u->file = NULL;
  }
  if (!u->started) {
    return;
  }
  int r2 = cairn_remove(u->gw->cluster, u->path, 0, NULL, 0);
  if (r2 < 0 && r2 != CAIRN_ENOENT) {
    CMN_WARN("gw.upload", "remove_failed id=%s err=\"%s\"", u->id, cairn_strerror(r2));
  }
  (void)gw_db_query(u->gw->db, NULL,
                    "UPDATE documents SET upload_status = 'failed', error = $2,"
                    " updated_at = now() WHERE id = $1 AND upload_status = 'pending'",
                    2, u->id, why);
  gw_perm_changed(u->gw); /* a failed document is readable by its owner only */
  CMN_INFO("gw.upload", "failed id=%s bytes=%llu why=\"%s\"", u->id,
           (unsigned long long)u->size, why);
}

/* The end of an upload's request: free it, after failing it when it never
 * completed (the client went away or the request was refused). */
static void upload_cleanup(void *arg) {
  gw_upload *u = arg;
  if (u->started && !u->finished) {
    gw_upload_fail(u, CAIRN_ECANCELED, "the upload was interrupted");
  }
  writer_join(u, CAIRN_ECANCELED);
  if (u->file) {
    cairn_close(u->file);
  }
  gw_ring_free(u->ring);
  gw_sha256_free(u->sha);
  free(u->name);
  free(u->ctype);
  free(u->form_name);
  free(u);
}

static void upload_free(void *arg) {
  gw_upload *u = arg;
  if (u->pp) {
    u->closing = 1; /* the post processor may flush a last piece: ignored */
    MHD_destroy_post_processor(u->pp);
    u->pp = NULL;
  }
  if ((u->started && !u->finished) || u->writer_running) {
    if (u->ring) {
      gw_ring_close(u->ring, CAIRN_ECANCELED); /* stop the writer soon */
    }
    gw_reap(u->gw, upload_cleanup, u);
  } else {
    upload_cleanup(u);
  }
}

int gw_upload_start(gw_upload *u, const char *name, const char *ctype) {
  gw_ctx *gw = u->gw;
  if (!name_valid(name)) {
    return CAIRN_EINVAL;
  }
  if (!type_valid(ctype)) {
    return CAIRN_EINVAL;
  }
  if (!type_allowed(gw->cfg.allowed_types, ctype) ||
      !ext_allowed(gw->cfg.allowed_extensions, name)) {
    return CAIRN_EMEDIATYPE;
  }
  char *n2 = cmn_strdup(name), *t2 = cmn_strdup(ctype); /* name may be u->name */
  free(u->name);
  free(u->ctype);
  u->name = n2;
  u->ctype = t2;
  int rc = cmn_uuid_v4(u->id);
  if (rc < 0) {
    return rc;
  }
  snprintf(u->path, sizeof u->path, "%s/%.2s/%s", gw->cfg.data_prefix, u->id, u->id);
  char owner[24];
  snprintf(owner, sizeof owner, "%lld", (long long)u->owner);
  PGconn *c;
  rc = gw_db_acquire(gw->db, &c);
  if (rc < 0) {
    return rc;
  }
  if (!u->overwrite) {
    PGresult *res;
    rc = gw_q(c, &res,
              "SELECT 1 FROM documents WHERE namespace_id = $1 AND name = $2"
              " AND upload_status = 'completed'",
              2, u->ns_id, name);
    if (rc == 0) {
      rc = PQntuples(res) > 0 ? CAIRN_EEXIST : 0;
      PQclear(res);
    }
  }
  if (rc == 0) {
    rc = gw_q(c, NULL,
              "INSERT INTO documents (id, namespace_id, owner_id, name, content_type,"
              " cluster_path) VALUES ($1, $2, $3, $4, $5, $6)",
              6, u->id, u->ns_id, owner, name, ctype, u->path);
  }
  gw_db_release(gw->db, c);
  if (rc < 0) {
    return rc;
  }
  u->started = 1;
  rc = cairn_open(gw->cluster, u->path,
                  CAIRN_O_CREATE | CAIRN_O_EXCL | CAIRN_O_WRITE | CAIRN_O_PARENTS, &u->file);
  if (rc < 0) {
    gw_upload_fail(u, rc, "the cluster cannot take the document");
    return rc;
  }
  size_t bufsize = (size_t)gw->cfg.upload_buffer;
  if (u->expected >= 0 && (uint64_t)u->expected < bufsize) {
    bufsize = u->expected > 0 ? (size_t)u->expected : 1;
  }
  u->ring = gw_ring_new((int)gw->cfg.upload_depth, bufsize, &gw->ring_budget, 30000);
  if (u->ring == NULL) {
    gw_upload_fail(u, CAIRN_EBUSY, "the gateway is out of transfer memory");
    return CAIRN_EBUSY;
  }
  u->sha = gw_sha256_new();
  if (pthread_create(&u->writer, NULL, writer_main, u) != 0) {
    gw_upload_fail(u, CAIRN_ENOMEM, "no thread for the writer");
    return CAIRN_ENOMEM;
  }
  u->writer_running = 1;
  return 0;
}

int gw_upload_feed(gw_upload *u, const char *data, size_t n) {
  if (u->size + n > u->gw->cfg.max_upload) {
    return CAIRN_ETOOBIG;
  }
  gw_sha256_update(u->sha, data, n);
  while (n > 0) {
    if (u->cur == NULL) {
      u->cur = gw_ring_get_empty(u->ring);
      if (u->cur == NULL) {
        int rc = gw_ring_error(u->ring);
        return rc ? rc : CAIRN_EIO;
      }
      u->cur->off = u->size;
    }
    size_t room = gw_ring_size(u->ring) - u->cur->len;
    size_t k = n < room ? n : room;
    memcpy(u->cur->data + u->cur->len, data, k);
    u->cur->len += k;
    u->size += k;
    data += k;
    n -= k;
    if (u->cur->len == gw_ring_size(u->ring)) {
      gw_ring_put_full(u->ring, u->cur);
      u->cur = NULL;
    }
  }
  return 0;
}

/* Look up the namespace and check the uploader may write into it.
 * Replies and returns 1 on refusal. */
static int check_namespace(gw_req *r, gw_upload *u, const char *ns) {
  unsigned bits = 0;
  int rc = gw_perm_namespace(r->gw, r->user.id, ns, &bits);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "checking access");
    return 1;
  }
  if (bits == 0) {
    gw_reply_error(r, 404, "not_found", "no such namespace");
    return 1;
  }
  if (!(bits & GW_PERM_WRITE)) {
    gw_reply_error(r, 403, "forbidden", "you may not write into namespace %s", ns);
    return 1;
  }
  PGresult *res = NULL;
  rc = gw_db_query(r->gw->db, &res, "SELECT id FROM namespaces WHERE name = $1", 1, ns);
  if (rc == 0 && PQntuples(res) == 0) {
    rc = CAIRN_ENOENT;
  }
  if (rc < 0) {
    PQclear(res);
    gw_reply_cairn(r, rc, "finding the namespace");
    return 1;
  }
  snprintf(u->ns_id, sizeof u->ns_id, "%s", PQgetvalue(res, 0, 0));
  snprintf(u->ns, sizeof u->ns, "%s", ns);
  PQclear(res);
  return 0;
}

/* Reply for a failed start or feed. */
void gw_upload_reply_error(gw_req *r, int rc) {
  switch (rc) {
  case CAIRN_EINVAL:
    gw_reply_error(r, 400, "invalid", "bad document name or content type");
    break;
  case CAIRN_EMEDIATYPE:
    gw_reply_error(r, 415, "unsupported_media_type",
                   "this content type or file extension is not accepted");
    break;
  case CAIRN_ETOOBIG:
    gw_reply_error(r, 413, "too_large", "a document is at most %llu bytes",
                   (unsigned long long)r->gw->cfg.max_upload);
    break;
  case CAIRN_EEXIST:
    gw_reply_error(r, 409, "already_exists",
                   "a document of that name exists; use overwrite=true to replace it");
    break;
  default: gw_reply_cairn(r, rc, "storing the document"); break;
  }
}

/* The common part of both begin functions. */
static int begin(gw_req *r, const char *ns, const char *name) {
  gw_upload *u = cmn_calloc(1, sizeof *u);
  u->gw = r->gw;
  u->owner = r->user.id;
  u->expected = r->content_length;
  const char *ow = gw_query(r, "overwrite");
  u->overwrite = ow && (strcmp(ow, "true") == 0 || strcmp(ow, "1") == 0);
  r->state = u;
  r->state_free = upload_free;
  if (ns == NULL || *ns == '\0') {
    gw_reply_error(r, 400, "invalid", "the namespace query parameter is required");
    return 1;
  }
  if (r->content_length > 0 && (uint64_t)r->content_length > r->gw->cfg.max_upload +
                                   (gw_upload_is_multipart(r) ? GW_MULTIPART_SLACK : 0)) {
    gw_upload_reply_error(r, CAIRN_ETOOBIG);
    return 1;
  }
  if (check_namespace(r, u, ns)) {
    return 1;
  }
  if (gw_upload_is_multipart(r)) {
    return gw_upload_multipart_begin(r, u, name);
  }
  if (name == NULL || *name == '\0') {
    gw_reply_error(r, 400, "invalid", "the name query parameter is required");
    return 1;
  }
  const char *ctype = gw_header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
  if (ctype == NULL || *ctype == '\0') {
    ctype = "application/octet-stream";
  }
  int rc = gw_upload_start(u, name, ctype);
  if (rc < 0) {
    gw_upload_reply_error(r, rc);
    return 1;
  }
  return 0;
}

int gw_h_upload_begin(gw_req *r) {
  return begin(r, gw_query(r, "namespace"), gw_query(r, "name"));
}

int gw_h_put_begin(gw_req *r) {
  return begin(r, r->params[0], r->params[1]);
}

int gw_h_upload_data(gw_req *r, const char *buf, size_t n) {
  gw_upload *u = r->state;
  if (u->pp) {
    return gw_upload_multipart_data(r, u, buf, n);
  }
  return gw_upload_feed(u, buf, n);
}

/* Make the document visible: completed, with size and sha256, replacing
 * a same-name document if asked. Returns 0 or an error (row still
 * pending); *old_path gets the replaced document's bytes to remove. */
static int complete(gw_upload *u, const char *sha_hex, char **old_path, char *old_id) {
  char size[24];
  snprintf(size, sizeof size, "%llu", (unsigned long long)u->size);
  PGconn *c;
  int rc = gw_db_acquire(u->gw->db, &c);
  if (rc < 0) {
    return rc;
  }
  rc = gw_db_begin(c);
  if (rc == 0 && u->overwrite) {
    PGresult *res;
    rc = gw_q(c, &res,
              "DELETE FROM documents WHERE namespace_id = $1 AND name = $2"
              " AND upload_status = 'completed' RETURNING id, cluster_path",
              2, u->ns_id, u->name);
    if (rc == 0) {
      if (PQntuples(res) > 0) {
        snprintf(old_id, 37, "%s", PQgetvalue(res, 0, 0));
        *old_path = cmn_strdup(PQgetvalue(res, 0, 1));
      }
      PQclear(res);
    }
  }
  if (rc == 0) {
    PGresult *res;
    rc = gw_q(c, &res,
              "UPDATE documents SET upload_status = 'completed', size = $2, sha256 = $3,"
              " updated_at = now() WHERE id = $1 AND upload_status = 'pending' RETURNING id",
              3, u->id, size, sha_hex);
    if (rc == 0) {
      rc = PQntuples(res) == 1 ? 0 : CAIRN_ENOENT;
      PQclear(res);
    }
  }
  if (rc == 0) {
    rc = gw_db_commit(c);
  }
  if (rc < 0) {
    gw_db_rollback(c);
    free(*old_path);
    *old_path = NULL;
  }
  gw_db_release(u->gw->db, c);
  return rc;
}

void gw_h_upload_end(gw_req *r) {
  gw_upload *u = r->state;
  gw_ctx *gw = r->gw;
  int rc = r->body_error;
  if (rc == 0 && u->pp) {
    rc = gw_upload_multipart_end(r, u);
  }
  if (rc == 0 && u->cur) {
    gw_ring_put_full(u->ring, u->cur);
    u->cur = NULL;
  }
  if (rc == 0) {
    rc = writer_join(u, 0);
  }
  if (rc < 0) {
    gw_upload_fail(u, rc, rc == CAIRN_ETOOBIG ? "too large" : cairn_strerror(rc));
    gw_upload_reply_error(r, rc);
    return;
  }
  cairn_close(u->file);
  u->file = NULL;
  uint8_t digest[32];
  char sha_hex[65];
  gw_sha256_final(u->sha, digest);
  cmn_hex_encode(digest, 32, sha_hex);
  char *old_path = NULL;
  char old_id[37] = "";
  rc = complete(u, sha_hex, &old_path, old_id);
  if (rc < 0) {
    gw_upload_fail(u, rc, rc == CAIRN_EEXIST ? "the name was taken meanwhile"
                                             : "cannot record the document");
    gw_upload_reply_error(r, rc);
    return;
  }
  u->finished = 1;
  if (old_path) {
    gw_perm_changed(gw);
    if (gw->small) {
      gw_small_remove(gw->small, old_id);
    }
    int r2 = cairn_remove(gw->cluster, old_path, 0, NULL, 0);
    if (r2 < 0 && r2 != CAIRN_ENOENT) {
      CMN_WARN("gw.upload", "remove_old_failed id=%s err=\"%s\"", old_id, cairn_strerror(r2));
    }
    free(old_path);
  }
  CMN_INFO("gw.upload", "completed id=%s bytes=%llu", u->id, (unsigned long long)u->size);
  PGresult *res = NULL;
  rc = gw_db_query(gw->db, &res, "SELECT " GW_DOC_COLS " FROM " GW_DOC_FROM " WHERE d.id = $1",
                   1, u->id);
  char loc[80];
  snprintf(loc, sizeof loc, "/v1/document/%s", u->id);
  gw_reply_header(r, "Location", loc);
  if (rc == 0 && PQntuples(res) == 1) {
    gw_reply_json(r, 201, gw_doc_json(res, 0));
  } else {
    gw_reply_json(r, 201, json_pack("{s:s,s:s}", "id", u->id, "upload_status", "completed"));
  }
  PQclear(res);
}
