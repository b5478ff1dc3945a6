/*
 * doclist.c - GET /v1/document: the documents a user may see, filtered by
 * namespace, name prefix and content type, in (namespace, name, id) order,
 * a page at a time. The cursor is the last row's key, opaque to clients
 * (base64url of "namespace NUL name NUL id").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "gw.h"
#include "gw_docs.h"
#include "gw_handlers.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000
#define CURSOR_MAX 1200

/* Visible: own documents, documents of own namespaces, shared ones (by
 * document or namespace), and those of a public namespace when that
 * namespace is asked for. Pending and failed uploads only to their owner. */
static const char list_sql[] =
    "SELECT " GW_DOC_COLS " FROM " GW_DOC_FROM
    " WHERE ($1::text IS NULL OR n.name = $1)"
    "   AND ($2::text IS NULL OR starts_with(d.name, $2))"
    "   AND ($3::text IS NULL OR d.content_type = $3)"
    "   AND ($4::text IS NULL OR (n.name, d.name, d.id) > ($4, $5, $6::uuid))"
    "   AND (d.upload_status = 'completed' OR d.owner_id = $7::bigint)"
    "   AND (d.owner_id = $7::bigint OR n.owner_id = $7::bigint"
    "        OR (n.public AND $1 IS NOT NULL)"
    "        OR EXISTS (SELECT 1 FROM shares s WHERE s.grantee_id = $7::bigint"
    "                   AND (s.document_id = d.id OR s.namespace_id = n.id)))"
    " ORDER BY n.name, d.name, d.id LIMIT $8";

/* Split a cursor into its three parts (pointers into buf). 0 or EINVAL. */
static int parse_cursor(const char *cursor, char *buf, size_t buflen, const char **ns,
                        const char **name, const char **id) {
  int n = gw_b64url_decode(cursor, strlen(cursor), buf, buflen - 1);
  if (n < 0) {
    return CAIRN_EINVAL;
  }
  buf[n] = '\0';
  char *a = memchr(buf, '\0', (size_t)n);
  if (a == NULL || a == buf + n) {
    return CAIRN_EINVAL;
  }
  char *b = memchr(a + 1, '\0', (size_t)(buf + n - (a + 1)));
  if (b == NULL || !cmn_uuid_valid(b + 1)) {
    return CAIRN_EINVAL;
  }
  *ns = buf;
  *name = a + 1;
  *id = b + 1;
  return 0;
}

static void make_cursor(const PGresult *res, int row, char *out, size_t outlen) {
  char raw[CURSOR_MAX];
  int n = snprintf(raw, sizeof raw, "%s%c%s%c%s", PQgetvalue(res, row, 1), '\0',
                   PQgetvalue(res, row, 2), '\0', PQgetvalue(res, row, 0));
  if (n < 0 || (size_t)n >= sizeof raw || gw_b64url_encode(raw, (size_t)n, out, outlen) < 0) {
    out[0] = '\0';
  }
}

void gw_h_doc_list(gw_req *r) {
  const char *ns = gw_query(r, "namespace");
  const char *prefix = gw_query(r, "prefix");
  const char *type = gw_query(r, "content_type");
  const char *cursor = gw_query(r, "cursor");
  const char *limit_s = gw_query(r, "limit");
  long limit = LIST_DEFAULT;
  if (limit_s) {
    char *end;
    limit = strtol(limit_s, &end, 10);
    if (*limit_s == '\0' || *end != '\0' || limit < 1 || limit > LIST_MAX) {
      gw_reply_error(r, 400, "invalid", "limit must be 1..%d", LIST_MAX);
      return;
    }
  }
  if (ns && *ns == '\0') {
    ns = NULL;
  }
  if (ns) {
    unsigned bits = 0;
    int rc = gw_perm_namespace(r->gw, r->user.id, ns, &bits);
    if (rc < 0) {
      gw_reply_cairn(r, rc, "checking access");
      return;
    }
    if (!(bits & GW_PERM_READ)) {
      gw_reply_error(r, 404, "not_found", "no such namespace");
      return;
    }
  }
  char cbuf[CURSOR_MAX];
  const char *c_ns = NULL, *c_name = NULL, *c_id = NULL;
  if (cursor && *cursor &&
      (strlen(cursor) > CURSOR_MAX || parse_cursor(cursor, cbuf, sizeof cbuf, &c_ns, &c_name,
                                                   &c_id) < 0)) {
    gw_reply_error(r, 400, "invalid", "bad cursor");
    return;
  }
  char user[24], lim[24];
  snprintf(user, sizeof user, "%lld", (long long)r->user.id);
  snprintf(lim, sizeof lim, "%ld", limit + 1);
  const char *params[8] = {ns, prefix && *prefix ? prefix : NULL, type && *type ? type : NULL,
                           c_ns, c_name, c_id, user, lim};
  PGconn *c;
  PGresult *res = NULL;
  int rc = gw_db_acquire(r->gw->db, &c);
  if (rc == 0) {
    rc = gw_qv(c, &res, list_sql, 8, params);
    gw_db_release(r->gw->db, c);
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "listing documents");
    return;
  }
  int rows = PQntuples(res);
  int more = rows > limit;
  if (more) {
    rows = (int)limit;
  }
  json_t *docs = json_array();
  for (int i = 0; i < rows; i++) {
    json_array_append_new(docs, gw_doc_json(res, i));
  }
  json_t *body = json_pack("{s:o}", "documents", docs);
  if (more) {
    char next[CURSOR_MAX * 2];
    make_cursor(res, rows - 1, next, sizeof next);
    json_object_set_new(body, "next_cursor", json_string(next));
  } else {
    json_object_set_new(body, "next_cursor", json_null());
  }
  PQclear(res);
  gw_reply_json(r, 200, body);
}
