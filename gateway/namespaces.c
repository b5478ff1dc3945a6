/*
 * namespaces.c - /v1/namespaces: create, list, show, change the visibility
 * of and delete namespaces, the named (globally unique) folders documents
 * live in.
 *
 * A namespace is owned by the user who made it. Its owner may change its
 * visibility and delete it; a user it is shared with (shares.c) reads or
 * writes its documents; a public one is readable by everyone, anonymous
 * requests included. Who may do what is decided by perm.c; these handlers
 * only turn its answer into 404 (no access at all: whether the namespace
 * exists is not revealed) or 403 (some access, not enough).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_handlers.h"

#define NS_NAME_MAX 63

/* The columns ns_json reads, in this order, with the namespace as `n`. */
#define NS_COLS                                                                       \
  "n.name, CASE WHEN n.public THEN 'public' ELSE 'private' END, n.owner_id, u.username, " \
  GW_SQL_TS("n.created_at")
#define NS_COUNT                                                                      \
  "(SELECT count(*) FROM documents d WHERE d.namespace_id = n.id"                      \
  " AND d.upload_status = 'completed')"

/* ^[a-z0-9][a-z0-9._-]{0,62}$, the same rule as the schema's CHECK. */
static int ns_name_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NS_NAME_MAX) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             (i > 0 && (c == '.' || c == '_' || c == '-'));
    if (!ok) {
      return 0;
    }
  }
  return 1;
}

/* "owner", "write" or "read" for permission bits (at least READ). */
static const char *perm_word(unsigned bits) {
  if (bits & GW_PERM_OWNER) {
    return "owner";
  }
  return (bits & GW_PERM_WRITE) ? "write" : "read";
}

/* The "visibility" field: absent -> `def` (-1 when it is required),
 * "private" -> 0, "public" -> 1. Replies 400 and returns -1 when it is
 * missing but required or anything else. */
static int parse_visibility(gw_req *r, int def) {
  json_t *v = json_object_get(r->json, "visibility");
  if (v == NULL && def >= 0) {
    return def;
  }
  const char *s = json_is_string(v) ? json_string_value(v) : NULL;
  if (s && strcmp(s, "private") == 0) {
    return 0;
  }
  if (s && strcmp(s, "public") == 0) {
    return 1;
  }
  gw_reply_error(r, 400, "invalid", "field 'visibility' %s",
                 v == NULL ? "is required" : "must be \"private\" or \"public\"");
  return -1;
}

/* The JSON of row `row` of an NS_COLS result; `count_col` >= 0 adds the
 * "documents" count read from that column. A new reference. */
static json_t *ns_json(const PGresult *res, int row, const char *permission, int count_col) {
  json_t *o = json_pack("{s:s,s:s,s:{s:I,s:s},s:s,s:s}", "name", PQgetvalue(res, row, 0),
                        "visibility", PQgetvalue(res, row, 1), "owner", "id",
                        (json_int_t)strtoll(PQgetvalue(res, row, 2), NULL, 10), "username",
                        PQgetvalue(res, row, 3), "created_at", PQgetvalue(res, row, 4),
                        "permission", permission);
  if (o == NULL) {
    return json_object();
  }
  if (count_col >= 0) {
    json_object_set_new(o, "documents",
                        json_integer(strtoll(PQgetvalue(res, row, count_col), NULL, 10)));
  }
  return o;
}

/* Look up the caller's permission on namespace `name`, replying and
 * returning 1 when it lacks `need`: 404 with no access at all (or
 * anonymous), 403 with some access, 503 when the database failed. */
static int ns_access(gw_req *r, const char *name, unsigned need, unsigned *bits) {
  int rc = gw_perm_namespace(r->gw, r->user.id, name, bits);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "checking access");
    return 1;
  }
  if ((*bits & need) == need) {
    return 0;
  }
  if (*bits == 0) {
    gw_reply_error(r, 404, "not_found", "no such namespace");
  } else {
    gw_reply_error(r, 403, "forbidden", "only the owner may %s namespace %s",
                   need & GW_PERM_OWNER ? "manage" : "change", name);
  }
  return 1;
}

/* POST /v1/namespaces {"name", "visibility"?}: a new namespace owned by
 * the caller. Names are global, so a taken one is 409 whoever owns it. */
void gw_h_ns_create(gw_req *r) {
  static const char *const known[] = {"name", "visibility", NULL};
  if (gw_json_only_fields(r, known)) {
    return;
  }
  const char *name = gw_json_str(r, "name");
  if (name == NULL || !ns_name_valid(name)) {
    gw_reply_error(r, 400, "invalid",
                   "field 'name' must be 1-%d characters of a-z, 0-9, '.', '_', '-' "
                   "starting with a letter or digit",
                   NS_NAME_MAX);
    return;
  }
  int pub = parse_visibility(r, 0);
  if (pub < 0) {
    return;
  }
  char user[24];
  snprintf(user, sizeof user, "%lld", (long long)r->user.id);
  PGresult *res;
  int rc = gw_db_query(r->gw->db, &res,
                       "WITH n AS (INSERT INTO namespaces (name, owner_id, public)"
                       " VALUES ($1, $2::bigint, $3::boolean) RETURNING *)"
                       " SELECT " NS_COLS " FROM n JOIN users u ON u.id = n.owner_id",
                       3, name, user, pub ? "true" : "false");
  if (rc == 0 && PQntuples(res) != 1) {
    rc = CAIRN_EINTERNAL;
  }
  if (rc == CAIRN_EEXIST) {
    gw_reply_error(r, 409, "already_exists", "namespace %s already exists", name);
  } else if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 401, "unauthenticated", "your account no longer exists");
  } else if (rc < 0) {
    gw_reply_cairn(r, rc, "creating the namespace");
  } else {
    /* A "no such namespace" answer may be cached for this name. */
    gw_perm_changed(r->gw);
    CMN_INFO("gw.ns", "created name=%s owner=%lld public=%d", name, (long long)r->user.id, pub);
    gw_reply_json(r, 201, ns_json(res, 0, "owner", -1));
  }
  PQclear(res);
}

/* GET /v1/namespaces: the namespaces the caller owns or that are shared
 * with it (a namespace share; a share of one document does not list its
 * namespace), by name. */
void gw_h_ns_list(gw_req *r) {
  char user[24];
  snprintf(user, sizeof user, "%lld", (long long)r->user.id);
  PGresult *res;
  int rc = gw_db_query(r->gw->db, &res,
                       "SELECT " NS_COLS ", CASE WHEN n.owner_id = $1::bigint THEN 'owner'"
                       " ELSE s.permission END"
                       " FROM namespaces n JOIN users u ON u.id = n.owner_id"
                       " LEFT JOIN shares s ON s.namespace_id = n.id AND s.grantee_id = $1::bigint"
                       " WHERE n.owner_id = $1::bigint OR s.id IS NOT NULL ORDER BY n.name",
                       1, user, NULL, NULL);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "listing namespaces");
    return;
  }
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(res); i++) {
    json_array_append_new(list, ns_json(res, i, PQgetvalue(res, i, 5), -1));
  }
  PQclear(res);
  gw_reply_json(r, 200, json_pack("{s:o}", "namespaces", list));
}

/* GET /v1/namespaces/{name}: the namespace and its number of completed
 * documents, for anyone who may read it (anonymous callers included when
 * it is public); 404 for everyone else. */
void gw_h_ns_get(gw_req *r) {
  const char *name = r->params[0];
  unsigned bits = 0;
  if (ns_access(r, name, GW_PERM_READ, &bits)) {
    return;
  }
  PGresult *res;
  int rc = gw_db_query(r->gw->db, &res,
                       "SELECT " NS_COLS ", " NS_COUNT
                       " FROM namespaces n JOIN users u ON u.id = n.owner_id WHERE n.name = $1",
                       1, name, NULL, NULL);
  if (rc == 0 && PQntuples(res) == 0) {
    rc = CAIRN_ENOENT; /* deleted since the check */
  }
  if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "no such namespace");
  } else if (rc < 0) {
    gw_reply_cairn(r, rc, "reading the namespace");
  } else {
    gw_reply_json(r, 200, ns_json(res, 0, perm_word(bits), 5));
  }
  PQclear(res);
}

/* PATCH /v1/namespaces/{name} {"visibility"}: the owner makes it public
 * or private. Cached permission answers go at once, so anonymous readers
 * lose access on the next request. */
void gw_h_ns_patch(gw_req *r) {
  static const char *const known[] = {"visibility", NULL};
  const char *name = r->params[0];
  if (gw_json_only_fields(r, known)) {
    return;
  }
  int pub = parse_visibility(r, -1);
  if (pub < 0) {
    return;
  }
  unsigned bits = 0;
  if (ns_access(r, name, GW_PERM_OWNER, &bits)) {
    return;
  }
  char user[24];
  snprintf(user, sizeof user, "%lld", (long long)r->user.id);
  PGresult *res;
  int rc = gw_db_query(r->gw->db, &res,
                       "WITH n AS (UPDATE namespaces SET public = $3::boolean"
                       " WHERE name = $1 AND owner_id = $2::bigint RETURNING *)"
                       " SELECT " NS_COLS ", " NS_COUNT " FROM n JOIN users u ON u.id = n.owner_id",
                       3, name, user, pub ? "true" : "false");
  if (rc == 0 && PQntuples(res) == 0) {
    rc = CAIRN_ENOENT;
  }
  if (rc == 0) {
    gw_perm_changed(r->gw);
    CMN_INFO("gw.ns", "visibility name=%s public=%d", name, pub);
    gw_reply_json(r, 200, ns_json(res, 0, "owner", 5));
  } else if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "no such namespace");
  } else {
    gw_reply_cairn(r, rc, "changing the namespace");
  }
  PQclear(res);
}

/* Delete namespace `name` of owner `user` unless it holds completed or
 * pending documents. The namespace row is locked first (FOR UPDATE), which
 * makes uploads that are just adding a document row wait (their foreign
 * key check needs a share lock on it); the count that follows therefore
 * sees every document, and none can slip in before the delete.
 * 0, CAIRN_ENOENT, CAIRN_ENOTEMPTY (*completed / *pending set) or an error. */
static int ns_delete_tx(gw_ctx *gw, const char *name, const char *user, long long *completed,
                        long long *pending) {
  PGconn *c;
  PGresult *res = NULL;
  char id[24] = "";
  int rc = gw_db_acquire(gw->db, &c);
  if (rc < 0) {
    return rc;
  }
  rc = gw_db_begin(c);
  if (rc < 0) {
    goto fail;
  }
  rc = gw_q(c, &res, "SELECT id FROM namespaces WHERE name = $1 AND owner_id = $2::bigint"
                     " FOR UPDATE", 2, name, user);
  if (rc < 0) {
    goto fail;
  }
  if (PQntuples(res) == 0) {
    rc = CAIRN_ENOENT;
    goto fail;
  }
  snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
  PQclear(res);
  rc = gw_q(c, &res,
            "SELECT count(*) FILTER (WHERE upload_status = 'completed'),"
            " count(*) FILTER (WHERE upload_status = 'pending')"
            " FROM documents WHERE namespace_id = $1::bigint", 1, id);
  if (rc < 0) {
    goto fail;
  }
  *completed = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  *pending = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
  PQclear(res);
  res = NULL;
  if (*completed > 0 || *pending > 0) {
    rc = CAIRN_ENOTEMPTY;
    goto fail;
  }
  /* Failed uploads' rows and every share go with it (ON DELETE CASCADE). */
  rc = gw_q(c, NULL, "DELETE FROM namespaces WHERE id = $1::bigint", 1, id);
  if (rc == 0) {
    rc = gw_db_commit(c);
  }
fail:
  PQclear(res);
  gw_db_release(gw->db, c); /* rolls back what was not committed */
  return rc;
}

/* DELETE /v1/namespaces/{name}: the owner removes an empty namespace
 * (409 not_empty while it holds completed documents or uploads in
 * progress), together with its shares and failed uploads' rows. */
void gw_h_ns_delete(gw_req *r) {
  const char *name = r->params[0];
  unsigned bits = 0;
  if (ns_access(r, name, GW_PERM_OWNER, &bits)) {
    return;
  }
  char user[24];
  snprintf(user, sizeof user, "%lld", (long long)r->user.id);
  long long completed = 0, pending = 0;
  int rc = ns_delete_tx(r->gw, name, user, &completed, &pending);
  if (rc == 0) {
    gw_perm_changed(r->gw);
    CMN_INFO("gw.ns", "deleted name=%s owner=%s", name, user);
    gw_reply_empty(r, 204);
  } else if (rc == CAIRN_ENOENT) {
    gw_reply_error(r, 404, "not_found", "no such namespace");
  } else if (rc == CAIRN_ENOTEMPTY) {
    gw_reply_error(r, 409, "not_empty",
                   "namespace %s still holds %lld documents and %lld uploads in progress; "
                   "delete them first",
                   name, completed, pending);
  } else {
    gw_reply_cairn(r, rc, "deleting the namespace");
  }
}
