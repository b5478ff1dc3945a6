/*
 * tokens.c - /v1/tokens: scoped API tokens for machines. A token
 * ("cat_" + 43 base64url characters of 32 random bytes) is shown once, in
 * the reply that creates it; only its SHA-256 is stored, and
 * gw_auth_resolve (auth.c) finds it by that hash. Its scopes are a
 * non-empty subset of read, write and share: an API token can never
 * manage tokens, which is why only a session (JWT) reaches these routes
 * (they need GW_SCOPE_TOKENS; the router refuses anyone else with 403).
 *
 * A revocation invalidates every cached API-token answer ("t:" prefix in
 * the auth cache), so the token stops working at the next request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_handlers.h"

#define NAME_MAX_CHARS 128
#define EXPIRES_MIN 60
#define EXPIRES_MAX 31536000 /* one year, in seconds */
#define TOKEN_BUF 96

/* The scope words an API token may carry, in the order they are stored. */
static const char *const scope_words[] = {"read", "write", "share"};

/* A token name: 1 to 128 characters (the string is UTF-8 already, jansson
 * checked), none of them a control character. */
static int name_valid(const char *s) {
  size_t chars = 0;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) {
      return 0;
    }
    if ((*p & 0xc0) != 0x80) { /* not a continuation byte: a new character */
      chars++;
    }
  }
  return chars >= 1 && chars <= NAME_MAX_CHARS;
}

/* The "scopes" field: a non-empty array of distinct words from
 * scope_words. Writes them space-separated in canonical order to `out`.
 * Replies 400 and returns 1 when it is anything else. */
static int parse_scopes_field(gw_req *r, char *out, size_t outlen) {
  json_t *a = json_object_get(r->json, "scopes");
  unsigned seen = 0;
  size_t i;
  json_t *v;
  if (!json_is_array(a) || json_array_size(a) == 0) {
    goto bad;
  }
  json_array_foreach(a, i, v) {
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    size_t k = 0;
    while (k < CMN_ARRAY_LEN(scope_words) && strcmp(scope_words[k], s) != 0) {
      k++;
    }
    if (k == CMN_ARRAY_LEN(scope_words) || (seen & (1u << k))) {
      goto bad;
    }
    seen |= 1u << k;
  }
  out[0] = '\0';
  for (size_t k = 0; k < CMN_ARRAY_LEN(scope_words); k++) {
    if (seen & (1u << k)) {
      snprintf(out + strlen(out), outlen - strlen(out), "%s%s", out[0] ? " " : "",
               scope_words[k]);
    }
  }
  return 0;
bad:
  gw_reply_error(r, 400, "invalid",
                 "field 'scopes' must be a non-empty array of distinct \"read\", \"write\", "
                 "\"share\"");
  return 1;
}

/* The "expires_in" field: absent or null -> 0 (never expires), else an
 * integer number of seconds in [EXPIRES_MIN, EXPIRES_MAX]. Replies 400 and
 * returns -1 for anything else. */
static int64_t parse_expires(gw_req *r) {
  json_t *v = json_object_get(r->json, "expires_in");
  if (v == NULL || json_is_null(v)) {
    return 0;
  }
  if (json_is_integer(v) && json_integer_value(v) >= EXPIRES_MIN &&
      json_integer_value(v) <= EXPIRES_MAX) {
    return json_integer_value(v);
  }
  gw_reply_error(r, 400, "invalid", "field 'expires_in' must be an integer from %d to %d seconds",
                 EXPIRES_MIN, EXPIRES_MAX);
  return -1;
}

/* Space-separated stored scopes as a JSON array. */
static json_t *scopes_array(const char *s) {
  json_t *a = json_array();
  while (*s) {
    size_t n = strcspn(s, " ");
    json_array_append_new(a, json_stringn(s, n));
    s += n;
    s += strspn(s, " ");
  }
  return a;
}

/* Column `col` of row 0 as a JSON string, or null when SQL NULL. */
static json_t *text_or_null(const PGresult *res, int row, int col) {
  return PQgetisnull(res, row, col) ? json_null() : json_string(PQgetvalue(res, row, col));
}

/*
 * POST /v1/tokens {"name","scopes","expires_in"?}: make an API token for
 * the caller. The reply is the only time the token itself is shown.
 */
void gw_h_tokens_create(gw_req *r) {
  static const char *const known[] = {"name", "scopes", "expires_in", NULL};
  gw_ctx *gw = r->gw;
  if (gw_json_only_fields(r, known)) {
    return;
  }
  const char *name = gw_json_str(r, "name");
  if (name == NULL || !name_valid(name)) {
    gw_reply_error(r, 400, "invalid",
                   "field 'name' must be a string of 1 to %d characters, no control characters",
                   NAME_MAX_CHARS);
    return;
  }
  char scopes[32];
  if (parse_scopes_field(r, scopes, sizeof scopes)) {
    return;
  }
  int64_t expires = parse_expires(r);
  if (expires < 0) {
    return;
  }
  char tok[TOKEN_BUF], hex[65], uid[24], exp[24];
  uint8_t d[32];
  int rc = gw_random_token("cat_", tok, sizeof tok);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "making the token");
    return;
  }
  gw_sha256(tok, strlen(tok), d);
  cmn_hex_encode(d, sizeof d, hex);
  snprintf(uid, sizeof uid, "%lld", (long long)r->user.id);
  snprintf(exp, sizeof exp, "%lld", (long long)expires);
  PGconn *c;
  PGresult *res = NULL;
  rc = gw_db_acquire(gw->db, &c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "making the token");
    return;
  }
  const char *params[] = {uid, name, hex, scopes, expires > 0 ? exp : NULL};
  rc = gw_qv(c, &res,
             "INSERT INTO api_tokens (user_id, name, token_hash, scopes, expires_at) "
             "VALUES ($1, $2, decode($3, 'hex'), $4, now() + $5::bigint * interval '1 second') "
             "RETURNING id, " GW_SQL_TS("created_at") ", " GW_SQL_TS("expires_at"),
             5, params);
  gw_db_release(gw->db, c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "making the token");
    return;
  }
  int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  json_t *body = json_pack("{s:I,s:s,s:o,s:s,s:s,s:o}", "id", (json_int_t)id, "name", name,
                           "scopes", scopes_array(scopes), "token", tok, "created_at",
                           PQgetvalue(res, 0, 1), "expires_at", text_or_null(res, 0, 2));
  PQclear(res);
  memset(tok, 0, sizeof tok);
  if (body == NULL) {
    gw_reply_error(r, 500, "internal", "cannot encode the token");
    return;
  }
  CMN_INFO("gw.auth", "api token created id=%s user=%lld token=%lld scopes=\"%s\"", r->id,
           (long long)r->user.id, (long long)id, scopes);
  gw_reply_json(r, 201, body);
}

/*
 * GET /v1/tokens: the caller's API tokens, revoked ones included (with
 * "revoked": true), oldest first; never the token itself.
 */
void gw_h_tokens_list(gw_req *r) {
  gw_ctx *gw = r->gw;
  char uid[24];
  snprintf(uid, sizeof uid, "%lld", (long long)r->user.id);
  PGresult *res = NULL;
  int rc = gw_db_query(gw->db, &res,
                       "SELECT id, name, scopes, " GW_SQL_TS("created_at") ", "
                       GW_SQL_TS("expires_at") ", revoked_at IS NOT NULL FROM api_tokens"
                       " WHERE user_id = $1 ORDER BY id",
                       1, uid);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "listing tokens");
    return;
  }
  json_t *list = json_array();
  for (int i = 0; i < PQntuples(res); i++) {
    json_t *o = json_pack("{s:I,s:s,s:o,s:s,s:o,s:b}", "id",
                          (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10), "name",
                          PQgetvalue(res, i, 1), "scopes", scopes_array(PQgetvalue(res, i, 2)),
                          "created_at", PQgetvalue(res, i, 3), "expires_at",
                          text_or_null(res, i, 4), "revoked", PQgetvalue(res, i, 5)[0] == 't');
    if (o) {
      json_array_append_new(list, o);
    }
  }
  PQclear(res);
  gw_reply_json(r, 200, json_pack("{s:o}", "tokens", list));
}

/* A token id in a path: 1 to 18 decimal digits (so it fits a bigint). */
static int id_valid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 18) {
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') {
      return 0;
    }
  }
  return 1;
}

/*
 * DELETE /v1/tokens/{id}: revoke one of the caller's tokens (again is
 * fine: 204). Someone else's token, or an id that is not a number, is 404,
 * which does not tell whether it exists.
 */
void gw_h_tokens_revoke(gw_req *r) {
  gw_ctx *gw = r->gw;
  const char *id = r->params[0];
  if (!id_valid(id)) {
    gw_reply_error(r, 404, "not_found", "no such token");
    return;
  }
  char uid[24];
  snprintf(uid, sizeof uid, "%lld", (long long)r->user.id);
  PGconn *c;
  PGresult *res = NULL;
  int rc = gw_db_acquire(gw->db, &c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "revoking the token");
    return;
  }
  rc = gw_q(c, &res,
            "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) "
            "WHERE id = $1 AND user_id = $2 RETURNING id",
            2, id, uid);
  gw_db_release(gw->db, c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "revoking the token");
    return;
  }
  int found = PQntuples(res) == 1;
  PQclear(res);
  if (!found) {
    gw_reply_error(r, 404, "not_found", "no such token");
    return;
  }
  gw_cache_invalidate_prefix(gw->auth_cache, "t:");
  CMN_INFO("gw.auth", "api token revoked id=%s user=%lld token=%s", r->id,
           (long long)r->user.id, id);
  gw_reply_empty(r, 204);
}
