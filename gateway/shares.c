/*
 * shares.c - /v1/namespaces/{ns}/shares and /v1/document/{id}/shares: the
 * owner of a namespace or document gives another user read or write
 * access to it, lists who has it, and takes it back.
 *
 * Both kinds work the same way and differ only in their SQL, so each is
 * one row of a small table (share_kind) and the handlers are written once.
 * Only an owner (GW_PERM_OWNER from perm.c) manages shares: a caller with
 * no access at all gets 404 (whether the object exists stays hidden), one
 * with some access 403. Every change drops the cached permission answers
 * (gw_perm_changed), so a revoked share stops working on the next request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_handlers.h"

#define USERNAME_MIN 3
#define USERNAME_MAX 64

/* What differs between namespace and document shares. In every query $1
 * is the object (namespace name / document id). */
typedef struct share_kind {
  const char *what; /* "namespace", "document" */
  int (*perm)(gw_ctx *gw, int64_t user, const char *object, unsigned *bits);
  /* $2 username -> one row (0 when the object is gone): the user's id and
   * canonical name (NULL when no such user), and whether the user already
   * owns the object. */
  const char *grantee_sql;
  /* $2 grantee id, $3 permission -> id, permission, created_at, inserted. */
  const char *upsert_sql;
  /* -> id, permission, created_at, username; by username. */
  const char *list_sql;
  /* $2 username -> the removed share's id (no row when there was none). */
  const char *remove_sql;
} share_kind;

#define SHARE_RET "RETURNING id, permission, " GW_SQL_TS("created_at")
#define LIST_COLS "SELECT s.id, s.permission, " GW_SQL_TS("s.created_at") ", u.username"

/* The upserts tell an insert from an update by the new row's xmax: 0 for a
 * freshly inserted row, the updating transaction's id after ON CONFLICT DO
 * UPDATE. That keeps "201 created / 200 updated" to one statement, free of
 * the race a SELECT-then-INSERT would have. */
static const share_kind ns_kind = {
    "namespace",
    gw_perm_namespace,
    "SELECT u.id, u.username, u.id = n.owner_id FROM namespaces n"
    " LEFT JOIN users u ON u.username = $2 WHERE n.name = $1",
    "INSERT INTO shares (namespace_id, grantee_id, permission)"
    " SELECT n.id, $2::bigint, $3 FROM namespaces n WHERE n.name = $1"
    " ON CONFLICT (namespace_id, grantee_id) WHERE namespace_id IS NOT NULL"
    " DO UPDATE SET permission = EXCLUDED.permission " SHARE_RET ", xmax = 0",
    LIST_COLS " FROM shares s JOIN users u ON u.id = s.grantee_id"
    " JOIN namespaces n ON n.id = s.namespace_id WHERE n.name = $1 ORDER BY u.username",
    "DELETE FROM shares s USING users u, namespaces n WHERE s.grantee_id = u.id"
    " AND u.username = $2 AND s.namespace_id = n.id AND n.name = $1 RETURNING s.id",
};

static const share_kind doc_kind = {
    "document",
    gw_perm_document,
    "SELECT u.id, u.username, u.id = d.owner_id OR u.id = n.owner_id FROM documents d"
    " JOIN namespaces n ON n.id = d.namespace_id"
    " LEFT JOIN users u ON u.username = $2 WHERE d.id = $1::uuid",
    "INSERT INTO shares (document_id, grantee_id, permission)"
    " SELECT d.id, $2::bigint, $3 FROM documents d WHERE d.id = $1::uuid"
    " ON CONFLICT (document_id, grantee_id) WHERE document_id IS NOT NULL"
    " DO UPDATE SET permission = EXCLUDED.permission " SHARE_RET ", xmax = 0",
    LIST_COLS " FROM shares s JOIN users u ON u.id = s.grantee_id"
    " WHERE s.document_id = $1::uuid ORDER BY u.username",
    "DELETE FROM shares s USING users u WHERE s.grantee_id = u.id"
    " AND u.username = $2 AND s.document_id = $1::uuid RETURNING s.id",
};

/* Only owners manage shares. Replies and returns 1 when the caller is not
 * one of `object`: 404 without any access, 403 with some, 503 when the
 * database failed. */
static int owner_only(gw_req *r, const share_kind *k, const char *object) {
  unsigned bits = 0;
  int rc = k->perm(r->gw, r->user.id, object, &bits);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "checking access");
    return 1;
  }
  if (bits & GW_PERM_OWNER) {
    return 0;
  }
  if (bits == 0) {
    gw_reply_error(r, 404, "not_found", "no such %s", k->what);
  } else {
    gw_reply_error(r, 403, "forbidden", "only the owner may manage the shares of this %s",
                   k->what);
  }
  return 1;
}

/* {"id","username","permission","created_at"} from row `row` of a result
 * whose first columns are the share's id, permission and created_at. */
static json_t *share_json(const PGresult *res, int row, const char *username) {
  json_t *o = json_pack("{s:I,s:s,s:s,s:s}", "id",
                        (json_int_t)strtoll(PQgetvalue(res, row, 0), NULL, 10), "username",
                        username, "permission", PQgetvalue(res, row, 1), "created_at",
                        PQgetvalue(res, row, 2));
  return o ? o : json_object();
}

/* Validate the body of an add: {"username", "permission"} and nothing
 * else. Replies 400 and returns 1 on anything wrong. */
static int parse_add(gw_req *r, const char **username, const char **permission) {
  const char *key;
  json_t *v;
  json_object_foreach(r->json, key, v) {
    if (strcmp(key, "username") != 0 && strcmp(key, "permission") != 0) {
      gw_reply_error(r, 400, "invalid", "field '%s' is not known here", key);
      return 1;
    }
  }
  *username = gw_json_str(r, "username");
  if (*username == NULL || !gw_username_valid(*username)) {
    gw_reply_error(r, 400, "invalid",
                   "field 'username' must be %d-%d characters of A-Z, a-z, 0-9, '.', '_', '-'",
                   USERNAME_MIN, USERNAME_MAX);
    return 1;
  }
  *permission = gw_json_str(r, "permission");
  if (*permission == NULL ||
      (strcmp(*permission, "read") != 0 && strcmp(*permission, "write") != 0)) {
    gw_reply_error(r, 400, "invalid", "field 'permission' must be \"read\" or \"write\"");
    return 1;
  }
  return 0;
}

/* Grant `username` `permission` on `object`, or change the permission of
 * an existing share: resolve the user (refusing unknown users, the caller
 * and other owners of the object), then upsert on the same connection.
 * Replies 201 (new share), 200 (changed) or an error. */
static void share_add(gw_req *r, const share_kind *k, const char *object) {
  const char *username, *permission;
  if (parse_add(r, &username, &permission) || owner_only(r, k, object)) {
    return;
  }
  PGconn *c;
  PGresult *res = NULL;
  char grantee[24] = "", name[USERNAME_MAX + 1] = "";
  int status = 0, rc = gw_db_acquire(r->gw->db, &c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "adding the share");
    return;
  }
  rc = gw_q(c, &res, k->grantee_sql, 2, object, username);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "adding the share");
    goto fail;
  }
  if (PQntuples(res) == 0) {
    gw_reply_error(r, 404, "not_found", "no such %s", k->what); /* deleted meanwhile */
    goto fail;
  }
  if (PQgetisnull(res, 0, 0)) {
    gw_reply_error(r, 404, "not_found", "user not found: %s", username);
    goto fail;
  }
  snprintf(grantee, sizeof grantee, "%s", PQgetvalue(res, 0, 0));
  snprintf(name, sizeof name, "%s", PQgetvalue(res, 0, 1));
  if (strtoll(grantee, NULL, 10) == r->user.id) {
    gw_reply_error(r, 400, "invalid", "you cannot share with yourself");
    goto fail;
  }
  if (PQgetvalue(res, 0, 2)[0] == 't') {
    gw_reply_error(r, 400, "invalid", "%s already owns this %s", name, k->what);
    goto fail;
  }
  PQclear(res);
  rc = gw_q(c, &res, k->upsert_sql, 3, object, grantee, permission);
  if (rc == 0 && PQntuples(res) == 0) {
    rc = CAIRN_ENOENT;
  }
  if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "no such %s", k->what);
    goto fail;
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "adding the share");
    goto fail;
  }
  status = PQgetvalue(res, 0, 3)[0] == 't' ? 201 : 200;
  gw_perm_changed(r->gw);
  CMN_INFO("gw.share", "%s kind=%s object=%s grantee=%s permission=%s",
           status == 201 ? "added" : "changed", k->what, object, name, permission);
  gw_reply_json(r, status, share_json(res, 0, name));
fail:
  PQclear(res);
  gw_db_release(r->gw->db, c);
}

/* The shares of `object`, by username; owners only. */
static void share_list(gw_req *r, const share_kind *k, const char *object) {
  if (owner_only(r, k, object)) {
    return;
  }
  PGconn *c;
  PGresult *res = NULL;
  int rc = gw_db_acquire(r->gw->db, &c);
  if (rc == 0) {
    rc = gw_q(c, &res, k->list_sql, 1, object);
    gw_db_release(r->gw->db, c);
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "listing shares");
    return;
  }
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(res); i++) {
    json_array_append_new(list, share_json(res, i, PQgetvalue(res, i, 3)));
  }
  PQclear(res);
  gw_reply_json(r, 200, json_pack("{s:o}", "shares", list));
}

/* Take back the share of `username` on `object`; owners only. 204, or 404
 * when that user has no share of it. */
static void share_remove(gw_req *r, const share_kind *k, const char *object,
                         const char *username) {
  if (!gw_username_valid(username)) {
    gw_reply_error(r, 400, "invalid", "'%s' is not a valid username", username);
    return;
  }
  if (owner_only(r, k, object)) {
    return;
  }
  PGconn *c;
  PGresult *res = NULL;
  int rc = gw_db_acquire(r->gw->db, &c);
  if (rc == 0) {
    rc = gw_q(c, &res, k->remove_sql, 2, object, username);
    gw_db_release(r->gw->db, c);
  }
  if (rc == 0 && PQntuples(res) == 0) {
    rc = CAIRN_ENOENT;
  }
  PQclear(res);
  if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "%s has no share of this %s", username, k->what);
    return;
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "removing the share");
    return;
  }
  gw_perm_changed(r->gw);
  CMN_INFO("gw.share", "removed kind=%s object=%s grantee=%s", k->what, object, username);
  gw_reply_empty(r, 204);
}

void gw_h_ns_share_list(gw_req *r) {
  share_list(r, &ns_kind, r->params[0]);
}

void gw_h_ns_share_add(gw_req *r) {
  share_add(r, &ns_kind, r->params[0]);
}

void gw_h_ns_share_remove(gw_req *r) {
  share_remove(r, &ns_kind, r->params[0], r->params[1]);
}

void gw_h_doc_share_list(gw_req *r) {
  share_list(r, &doc_kind, r->params[0]);
}

void gw_h_doc_share_add(gw_req *r) {
  share_add(r, &doc_kind, r->params[0]);
}

void gw_h_doc_share_remove(gw_req *r) {
  share_remove(r, &doc_kind, r->params[0], r->params[1]);
}
