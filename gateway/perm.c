/*
 * perm.c - who may do what with a document or a namespace.
 *
 * The rules, in order:
 *   - a document whose upload failed exists for its owner only: everyone
 *     else, the namespace's owner included, gets nothing;
 *   - the owner of a document, and the owner of its namespace, may do
 *     everything (READ | WRITE | OWNER: share it, delete it);
 *   - a share with 'write', of the document or of its whole namespace,
 *     gives READ | WRITE; with 'read', READ (the stronger of the two wins
 *     when both exist);
 *   - a public namespace gives READ on itself and its documents to
 *     everyone, anonymous callers (user 0) included.
 * Something that does not exist, or a name or id that cannot exist, gives
 * 0 bits: callers answer 404 for "no access" and "no such thing" alike, so
 * nobody learns what others own.
 *
 * Every answer is one SQL query (joins, no round trip per rule) and is
 * kept in gw->perm_cache under "d:<doc>:<user>" or "n:<namespace>:<user>"
 * for cache_ttl, so the common case is a cache hit without the database.
 * Any change that can take access away (shares, visibility, deletions)
 * calls gw_perm_changed, which empties the cache at once; the generation
 * read before each query keeps an answer computed before such a change
 * from being stored after it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "gw.h"

#define PERM_ALL (GW_PERM_READ | GW_PERM_WRITE | GW_PERM_OWNER)
#define NS_NAME_MAX 63

/* The facts the rules need, for `$2` the user: is it the document's owner,
 * the namespace's owner, did the upload fail, is the namespace public, and
 * its best share (2 write, 1 read, NULL none) of the document or of the
 * namespace. One row, or none when the document does not exist. */
static const char doc_sql[] =
    "SELECT d.owner_id = $2::bigint, n.owner_id = $2::bigint, d.upload_status = 'failed',"
    " n.public, (SELECT max(CASE s.permission WHEN 'write' THEN 2 ELSE 1 END) FROM shares s"
    "  WHERE s.grantee_id = $2::bigint AND (s.document_id = d.id OR s.namespace_id = n.id))"
    " FROM documents d JOIN namespaces n ON n.id = d.namespace_id WHERE d.id = $1::uuid";

/* The same for a namespace (document columns false). */
static const char ns_sql[] =
    "SELECT false, n.owner_id = $2::bigint, false, n.public,"
    " (SELECT max(CASE s.permission WHEN 'write' THEN 2 ELSE 1 END) FROM shares s"
    "  WHERE s.grantee_id = $2::bigint AND s.namespace_id = n.id)"
    " FROM namespaces n WHERE n.name = $1";

/* Apply the rules (file comment) to one row of doc_sql / ns_sql. */
static unsigned rules(const PGresult *res) {
  if (PQntuples(res) == 0) {
    return 0;
  }
  int doc_owner = PQgetvalue(res, 0, 0)[0] == 't';
  int ns_owner = PQgetvalue(res, 0, 1)[0] == 't';
  int failed = PQgetvalue(res, 0, 2)[0] == 't';
  int pub = PQgetvalue(res, 0, 3)[0] == 't';
  int share = PQgetisnull(res, 0, 4) ? 0 : atoi(PQgetvalue(res, 0, 4));
  if (failed) {
    return doc_owner ? PERM_ALL : 0;
  }
  if (doc_owner || ns_owner) {
    return PERM_ALL;
  }
  unsigned bits = 0;
  if (share >= 2) {
    bits |= GW_PERM_READ | GW_PERM_WRITE;
  } else if (share == 1) {
    bits |= GW_PERM_READ;
  }
  if (pub) {
    bits |= GW_PERM_READ;
  }
  return bits;
}

/* A namespace name that could exist (the schema's CHECK). */
static int ns_name_possible(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > NS_NAME_MAX) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          (i > 0 && (c == '.' || c == '_' || c == '-')))) {
      return 0;
    }
  }
  return 1;
}

/* Answer from the cache, or run `sql` ($1 object, $2 user) and cache the
 * result. `key` identifies the question. 0 with *bits, or a database
 * error (nothing cached then). */
static int check(gw_ctx *gw, const char *key, const char *sql, const char *object,
                 int64_t user, unsigned *bits) {
  gw_cache *cache = gw->perm_cache;
  int64_t now = cmn_mono_ms();
  int64_t cached;
  if (cache && gw_cache_get(cache, key, now, &cached)) {
    *bits = (unsigned)cached;
    return 0;
  }
  /* Before the query: an invalidation that lands while it runs makes the
   * put below a no-op, so a pre-change answer is never kept. */
  uint64_t gen = cache ? gw_cache_generation(cache) : 0;
  char uid[24];
  snprintf(uid, sizeof uid, "%lld", (long long)user);
  PGresult *res = NULL;
  int rc = gw_db_query(gw->db, &res, sql, 2, object, uid);
  if (rc < 0) {
    return rc;
  }
  *bits = rules(res);
  PQclear(res);
  if (cache) {
    gw_cache_put(cache, key, (int64_t)*bits, gen, cmn_mono_ms());
  }
  return 0;
}

int gw_perm_document(gw_ctx *gw, int64_t user, const char *doc_id, unsigned *bits) {
  *bits = 0;
  if (doc_id == NULL || !cmn_uuid_valid(doc_id)) {
    return 0;
  }
  /* Lower-case the id so both spellings of a UUID share one entry. */
  char key[64] = "d:";
  size_t k = 2;
  for (const char *p = doc_id; *p; p++) {
    key[k++] = (char)tolower((unsigned char)*p);
  }
  snprintf(key + k, sizeof key - k, ":%lld", (long long)user);
  return check(gw, key, doc_sql, doc_id, user, bits);
}

int gw_perm_namespace(gw_ctx *gw, int64_t user, const char *ns_name, unsigned *bits) {
  *bits = 0;
  if (ns_name == NULL || !ns_name_possible(ns_name)) {
    return 0;
  }
  char key[96];
  snprintf(key, sizeof key, "n:%s:%lld", ns_name, (long long)user);
  return check(gw, key, ns_sql, ns_name, user, bits);
}

void gw_perm_changed(gw_ctx *gw) {
  if (gw->perm_cache) {
    gw_cache_invalidate_all(gw->perm_cache);
  }
}
