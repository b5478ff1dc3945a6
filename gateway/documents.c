/*
 * documents.c - document metadata: the row as C and JSON, lookups, access
 * checks, GET/DELETE /v1/document/{id}, the listing with filters and
 * cursor paging, presigned links, and path-style GET/DELETE
 * /v1/ns/{namespace}/{name}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_handlers.h"
#include "gw_presign.h"


void gw_doc_from_row(const PGresult *res, int row, gw_doc *d) {
  memset(d, 0, sizeof *d);
  snprintf(d->id, sizeof d->id, "%s", PQgetvalue(res, row, 0));
  snprintf(d->ns, sizeof d->ns, "%s", PQgetvalue(res, row, 1));
  d->name = cmn_strdup(PQgetvalue(res, row, 2));
  d->content_type = cmn_strdup(PQgetvalue(res, row, 3));
  d->size = strtoll(PQgetvalue(res, row, 4), NULL, 10);
  snprintf(d->sha256, sizeof d->sha256, "%s", PQgetvalue(res, row, 5));
  snprintf(d->status, sizeof d->status, "%s", PQgetvalue(res, row, 6));
  d->owner = strtoll(PQgetvalue(res, row, 7), NULL, 10);
  d->cluster_path = cmn_strdup(PQgetvalue(res, row, 10));
}

void gw_doc_clear(gw_doc *d) {
  free(d->name);
  free(d->content_type);
  free(d->cluster_path);
  memset(d, 0, sizeof *d);
}

json_t *gw_doc_json(const PGresult *res, int row) {
  const char *sha = PQgetvalue(res, row, 5);
  const char *err = PQgetvalue(res, row, 11);
  json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:I,s:s,s:s}", "id", PQgetvalue(res, row, 0),
                        "namespace", PQgetvalue(res, row, 1), "name", PQgetvalue(res, row, 2),
                        "content_type", PQgetvalue(res, row, 3), "size",
                        (json_int_t)strtoll(PQgetvalue(res, row, 4), NULL, 10),
                        "upload_status", PQgetvalue(res, row, 6), "owner_id",
                        (json_int_t)strtoll(PQgetvalue(res, row, 7), NULL, 10), "created_at",
                        PQgetvalue(res, row, 8), "updated_at", PQgetvalue(res, row, 9));
  if (o == NULL) {
    return json_object();
  }
  json_object_set_new(o, "sha256", *sha ? json_string(sha) : json_null());
  if (*err) {
    json_object_set_new(o, "error", json_string(err));
  }
  return o;
}

/* Run a one-row document query; 0 with *res, CAIRN_ENOENT, or an error. */
static int doc_query(gw_ctx *gw, PGresult **res, const char *sql, int n, const char *a,
                     const char *b) {
  int rc = gw_db_query(gw->db, res, sql, n, a, b);
  if (rc == 0 && PQntuples(*res) == 0) {
    PQclear(*res);
    *res = NULL;
    rc = CAIRN_ENOENT;
  }
  return rc;
}

int gw_doc_load(gw_ctx *gw, const char *id, gw_doc *out) {
  if (!cmn_uuid_valid(id)) {
    return CAIRN_ENOENT;
  }
  PGresult *res;
  int rc = doc_query(gw, &res, "SELECT " GW_DOC_COLS " FROM " GW_DOC_FROM " WHERE d.id = $1", 1,
                     id, NULL);
  if (rc == 0) {
    gw_doc_from_row(res, 0, out);
    PQclear(res);
  }
  return rc;
}

int gw_doc_find(gw_ctx *gw, const char *ns, const char *name, char id[37]) {
  PGresult *res;
  int rc = doc_query(gw, &res,
                     "SELECT d.id FROM " GW_DOC_FROM
                     " WHERE n.name = $1 AND d.name = $2 AND d.upload_status = 'completed'",
                     2, ns, name);
  if (rc == 0) {
    snprintf(id, 37, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
  }
  return rc;
}

int gw_doc_access(gw_req *r, const char *id, unsigned need) {
  unsigned bits = 0;
  int rc = gw_perm_document(r->gw, r->user.id, id, &bits);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "checking access");
    return 1;
  }
  if ((bits & need) == need) {
    return 0;
  }
  if (bits == 0 && r->user.id == 0) {
    gw_reply_header(r, "WWW-Authenticate", "Bearer");
    gw_reply_error(r, 401, "unauthenticated", "this document needs a token");
  } else if (bits == 0) {
    gw_reply_error(r, 404, "not_found", "no such document");
  } else {
    gw_reply_error(r, 403, "forbidden", "you may not %s this document",
                   (need & GW_PERM_OWNER) ? "manage" : "change");
  }
  return 1;
}

void gw_h_doc_get(gw_req *r) {
  const char *id = r->params[0];
  if (gw_doc_access(r, id, GW_PERM_READ)) {
    return;
  }
  PGresult *res;
  int rc = doc_query(r->gw, &res, "SELECT " GW_DOC_COLS " FROM " GW_DOC_FROM " WHERE d.id = $1",
                     1, id, NULL);
  if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "no such document");
    return;
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "reading the document");
    return;
  }
  json_t *doc = gw_doc_json(res, 0);
  PQclear(res);
  gw_reply_json(r, 200, doc);
}

void gw_doc_delete(gw_req *r, const char *id) {
  gw_ctx *gw = r->gw;
  PGresult *res;
  int rc = doc_query(gw, &res, "DELETE FROM documents WHERE id = $1 RETURNING cluster_path", 1,
                     id, NULL);
  if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "no such document");
    return;
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "deleting the document");
    return;
  }
  char *path = cmn_strdup(PQgetvalue(res, 0, 0));
  PQclear(res);
  gw_perm_changed(gw);
  if (gw->small) {
    gw_small_remove(gw->small, id);
  }
  /* The row is gone, so the document is gone for every reader; the bytes
   * go to the cluster's trash, which the master purges. A failure here
   * leaves garbage, not a visible document: log it. */
  rc = cairn_remove(gw->cluster, path, 0, NULL, 0);
  if (rc < 0 && rc != CAIRN_ENOENT) {
    CMN_WARN("gw.docs", "remove_bytes_failed id=%s path=%s err=\"%s\"", id, path,
             cairn_strerror(rc));
  }
  free(path);
  gw_reply_empty(r, 204);
}

void gw_h_doc_delete(gw_req *r) {
  if (gw_doc_access(r, r->params[0], GW_PERM_WRITE)) {
    return;
  }
  gw_doc_delete(r, r->params[0]);
}

/* Resolve /v1/ns/{ns}/{name} to a document id, replying when it cannot be
 * (404 for a name nobody may see, 401 anonymous). Returns 0 with id. */
static int path_doc(gw_req *r, char id[37]) {
  int rc = gw_doc_find(r->gw, r->params[0], r->params[1], id);
  if (rc == CAIRN_ENOENT) {
    unsigned bits = 0;
    rc = gw_perm_namespace(r->gw, r->user.id, r->params[0], &bits);
    if (rc == 0 && bits == 0 && r->user.id == 0) {
      gw_reply_header(r, "WWW-Authenticate", "Bearer");
      gw_reply_error(r, 401, "unauthenticated", "this namespace needs a token");
    } else if (rc == 0) {
      gw_reply_error(r, 404, "not_found", "no such document");
    } else {
      gw_reply_cairn(r, rc, "checking access");
    }
    return 1;
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "finding the document");
    return 1;
  }
  return 0;
}

void gw_h_path_get(gw_req *r) {
  char id[37];
  if (path_doc(r, id) || gw_doc_access(r, id, GW_PERM_READ)) {
    return;
  }
  gw_doc_serve(r, id);
}

void gw_h_path_delete(gw_req *r) {
  char id[37];
  if (path_doc(r, id) || gw_doc_access(r, id, GW_PERM_WRITE)) {
    return;
  }
  gw_doc_delete(r, id);
}

/* POST /v1/document/{id}/url {"expires_in": seconds} -> a presigned GET
 * link that works without a token until it expires. */
void gw_h_doc_presign(gw_req *r) {
  const char *id = r->params[0];
  if (gw_doc_access(r, id, GW_PERM_READ)) {
    return;
  }
  int64_t max_s = r->gw->cfg.link_max_ttl_ms / 1000;
  int64_t ttl = 3600 < max_s ? 3600 : max_s;
  json_t *v = json_object_get(r->json, "expires_in");
  if (v) {
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > max_s) {
      gw_reply_error(r, 400, "invalid", "expires_in must be an integer 1..%lld seconds",
                     (long long)max_s);
      return;
    }
    ttl = json_integer_value(v);
  }
  int64_t expires = cmn_wall_ms() / 1000 + ttl;
  char sig[128];
  int rc = gw_presign_make(r->gw->link_key, "GET", id, expires, sig, sizeof sig);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "signing");
    return;
  }
  char path[256];
  snprintf(path, sizeof path, "/v1/document/%s/download?expires=%lld&signature=%s", id,
           (long long)expires, sig);
  /* The absolute URL uses the Host the client reached us by, if sane. */
  const char *host = gw_header(r, "Host");
  int host_ok = host && *host && strlen(host) < 200;
  for (const char *p = host; host_ok && *p; p++) {
    host_ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']';
  }
  char url[512];
  if (host_ok) {
    snprintf(url, sizeof url, "%s://%s%s", r->gw->cfg.plain_http ? "http" : "https", host, path);
  } else {
    snprintf(url, sizeof url, "%s://127.0.0.1:%u%s", r->gw->cfg.plain_http ? "http" : "https",
             r->gw->port, path);
  }
  gw_reply_json(r, 200, json_pack("{s:s,s:s,s:s,s:I}", "url", url, "path", path, "method", "GET",
                                  "expires_at", (json_int_t)expires));
}
