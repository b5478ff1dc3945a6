/*
 * auth.c - who is asking: accounts (POST /v1/auth/register, GET /v1/me)
 * and the resolution of an Authorization header into a user, which runs
 * before every authenticated request.
 *
 * Two kinds of bearer token are accepted:
 *   - a JWT access token (auth_session.c issues them): its signature and
 *     expiry are checked in memory, then its session must exist and not be
 *     revoked, so logging out or a detected refresh-token reuse ends it at
 *     once; it carries every scope.
 *   - an API token "cat_..." (tokens.c issues them): looked up by its
 *     SHA-256; it carries the scopes it was made with, never "tokens".
 * Both database lookups are cached in gw->auth_cache ("s:<sid>" -> user
 * id; "t:<sha256 hex>" -> user id << 4 | scopes, "t:<sha256 hex>#" -> token
 * id), so a request with a known token costs no database round trip.
 * Revocations invalidate the cache (by prefix) after they commit; a lookup
 * reads the cache generation before its query, so an answer computed
 * before a revocation is never stored after it. Refusals are not cached.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_handlers.h"
#include "gw_jwt.h"

#define USERNAME_MIN 3
#define USERNAME_MAX 64
#define PASSWORD_MIN 8

/*
 * POST /v1/auth/register {"username","password"}: create an account.
 * The password is hashed (argon2id, configured cost) before a database
 * connection is taken, so the slow part holds no pooled resource; a
 * username already taken is 409 from the unique constraint, which also
 * settles two concurrent registrations of one name.
 */
void gw_h_register(gw_req *r) {
  static const char *const known[] = {"username", "password", NULL};
  gw_ctx *gw = r->gw;
  if (gw_json_only_fields(r, known)) {
    return;
  }
  json_t *u = json_object_get(r->json, "username");
  json_t *p = json_object_get(r->json, "password");
  if (!json_is_string(u) || !gw_username_valid(json_string_value(u))) {
    gw_reply_error(r, 400, "invalid",
                   "field 'username' must be 3 to 64 characters of A-Z a-z 0-9 . _ -");
    return;
  }
  if (!json_is_string(p) || json_string_length(p) < PASSWORD_MIN ||
      json_string_length(p) > GW_PASSWORD_MAX) {
    gw_reply_error(r, 400, "invalid", "field 'password' must be a string of %d to %d bytes",
                   PASSWORD_MIN, GW_PASSWORD_MAX);
    return;
  }
  const char *name = json_string_value(u);
  char hash[GW_PASSWORD_HASH_MAX];
  int rc = gw_password_hash(&gw->argon2, json_string_value(p), json_string_length(p), hash,
                            sizeof hash);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "hashing the password");
    return;
  }
  PGconn *c;
  PGresult *res = NULL;
  rc = gw_db_acquire(gw->db, &c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "registering");
    return;
  }
  rc = gw_q(c, &res,
            "INSERT INTO users (username, password_hash) VALUES ($1, $2) "
            "RETURNING id, " GW_SQL_TS("created_at"),
            2, name, hash);
  gw_db_release(gw->db, c);
  if (rc == CAIRN_EEXIST) {
    gw_reply_error(r, 409, "already_exists", "the username '%s' is taken", name);
    return;
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "registering");
    return;
  }
  int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  json_t *body = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "username", name,
                           "created_at", PQgetvalue(res, 0, 1));
  PQclear(res);
  r->user.id = id; /* for the access log */
  CMN_INFO("gw.auth", "register id=%s user=%lld", r->id, (long long)id);
  gw_reply_json(r, 201, body);
}

/* The scope words of `bits`, as a JSON array (read write share tokens). */
static json_t *scopes_json(unsigned bits) {
  static const struct {
    unsigned bit;
    const char *word;
  } names[] = {{GW_SCOPE_READ, "read"},
               {GW_SCOPE_WRITE, "write"},
               {GW_SCOPE_SHARE, "share"},
               {GW_SCOPE_TOKENS, "tokens"}};
  json_t *a = json_array();
  for (size_t i = 0; i < CMN_ARRAY_LEN(names); i++) {
    if (bits & names[i].bit) {
      json_array_append_new(a, json_string(names[i].word));
    }
  }
  return a;
}

/*
 * GET /v1/me: the caller's account, how it authenticated (a session's
 * access token or an API token) and the scopes that grants.
 */
void gw_h_me(gw_req *r) {
  gw_ctx *gw = r->gw;
  char uid[24];
  snprintf(uid, sizeof uid, "%lld", (long long)r->user.id);
  PGresult *res = NULL;
  int rc = gw_db_query(gw->db, &res,
                       "SELECT username, " GW_SQL_TS("created_at") " FROM users WHERE id = $1",
                       1, uid);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "reading the account");
    return;
  }
  if (PQntuples(res) == 0) { /* deleted while its token lived */
    PQclear(res);
    gw_reply_header(r, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
    gw_reply_error(r, 401, "unauthenticated", "the account no longer exists");
    return;
  }
  json_t *body = json_pack("{s:I,s:s,s:s,s:s,s:o}", "id", (json_int_t)r->user.id, "username",
                           PQgetvalue(res, 0, 0), "created_at", PQgetvalue(res, 0, 1), "auth",
                           r->user.sid[0] ? "session" : "api_token", "scopes",
                           scopes_json(r->user.scopes));
  PQclear(res);
  if (body == NULL) {
    gw_reply_error(r, 500, "internal", "cannot encode the account");
    return;
  }
  gw_reply_json(r, 200, body);
}

/* ---- resolving a bearer token ---- */

/* Scope bits of a stored API token's space-separated words. Unknown words
 * grant nothing; "tokens" is never granted to an API token. */
static unsigned parse_scopes(const char *s) {
  unsigned bits = 0;
  while (*s) {
    size_t n = strcspn(s, " ");
    if (n == 4 && strncmp(s, "read", 4) == 0) {
      bits |= GW_SCOPE_READ;
    } else if (n == 5 && strncmp(s, "write", 5) == 0) {
      bits |= GW_SCOPE_WRITE;
    } else if (n == 5 && strncmp(s, "share", 5) == 0) {
      bits |= GW_SCOPE_SHARE;
    }
    s += n;
    s += strspn(s, " ");
  }
  return bits;
}

/*
 * An API token: valid when its hash is in api_tokens, not revoked, not
 * expired. A token that expires within the cache TTL is not cached, so the
 * cache never stretches its life.
 */
static int resolve_api_token(gw_ctx *gw, const char *tok, gw_user *out) {
  uint8_t d[32];
  char hex[65], key[72], idkey[72];
  gw_sha256(tok, strlen(tok), d);
  cmn_hex_encode(d, sizeof d, hex);
  snprintf(key, sizeof key, "t:%s", hex);
  snprintf(idkey, sizeof idkey, "t:%s#", hex);
  int64_t now = cmn_mono_ms(), v = 0, tid = 0;
  uint64_t gen = gw_cache_generation(gw->auth_cache);
  if (gw_cache_get(gw->auth_cache, key, now, &v) &&
      gw_cache_get(gw->auth_cache, idkey, now, &tid)) {
    out->id = v >> 4;
    out->scopes = (unsigned)(v & 0xf) & (GW_SCOPE_READ | GW_SCOPE_WRITE | GW_SCOPE_SHARE);
    out->token_id = tid;
    return 0;
  }
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%lld", (long long)gw->cfg.cache_ttl_ms);
  PGresult *res;
  int rc = gw_db_query(gw->db, &res,
                       "SELECT id, user_id, scopes, expires_at IS NOT NULL AND "
                       "expires_at <= now() + $2::bigint * interval '1 millisecond' "
                       "FROM api_tokens WHERE token_hash = decode($1, 'hex') "
                       "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())",
                       2, hex, ttl);
  if (rc < 0) {
    return rc;
  }
  if (PQntuples(res) == 0) {
    PQclear(res);
    return CAIRN_EAUTH;
  }
  out->token_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  out->id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
  out->scopes = parse_scopes(PQgetvalue(res, 0, 2));
  int short_lived = PQgetvalue(res, 0, 3)[0] == 't';
  PQclear(res);
  if (!short_lived) {
    gw_cache_put(gw->auth_cache, key, (out->id << 4) | (int64_t)out->scopes, gen, now);
    gw_cache_put(gw->auth_cache, idkey, out->token_id, gen, now);
  }
  return 0;
}

/*
 * A JWT access token: signature, expiry and kind are checked in memory;
 * then its session must exist, belong to the token's user and not be
 * revoked (cached under "s:<sid>").
 */
static int resolve_jwt(gw_ctx *gw, const char *tok, gw_user *out) {
  gw_jwt_claims cl;
  if (gw_jwt_verify(gw->jwt_key, tok, cmn_wall_ms() / 1000, &cl) < 0 ||
      strcmp(cl.typ, "access") != 0 || cl.sid[0] == '\0' || cl.sub <= 0) {
    return CAIRN_EAUTH;
  }
  char key[48];
  snprintf(key, sizeof key, "s:%s", cl.sid);
  int64_t now = cmn_mono_ms(), v = 0;
  uint64_t gen = gw_cache_generation(gw->auth_cache);
  if (!gw_cache_get(gw->auth_cache, key, now, &v)) {
    PGresult *res;
    int rc = gw_db_query(gw->db, &res,
                         "SELECT user_id FROM sessions WHERE id = $1 AND NOT revoked", 1, cl.sid);
    if (rc < 0) {
      return rc;
    }
    if (PQntuples(res) == 0) {
      PQclear(res);
      return CAIRN_EAUTH;
    }
    v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    gw_cache_put(gw->auth_cache, key, v, gen, now);
  }
  if (v != cl.sub) {
    return CAIRN_EAUTH;
  }
  out->id = cl.sub;
  out->scopes = GW_SCOPE_ALL;
  snprintf(out->sid, sizeof out->sid, "%s", cl.sid);
  out->token_id = 0;
  return 0;
}

/*
 * "Bearer <token>": the scheme in any case, exactly one space, then a
 * token of visible ASCII. Returns 0 with *out filled, CAIRN_EAUTH for a
 * header or token that is not valid (out untouched), or the database's
 * error (CAIRN_EUNAVAIL, CAIRN_EBUSY...) when validity could not be
 * decided.
 */
int gw_auth_resolve(gw_ctx *gw, const char *authorization, gw_user *out) {
  if (gw == NULL || authorization == NULL || out == NULL ||
      strncasecmp(authorization, "Bearer ", 7) != 0) {
    return CAIRN_EAUTH;
  }
  const char *tok = authorization + 7;
  size_t n = strlen(tok);
  if (n == 0 || n > GW_JWT_MAX) {
    return CAIRN_EAUTH;
  }
  for (size_t i = 0; i < n; i++) {
    if (tok[i] <= ' ' || tok[i] > '~') {
      return CAIRN_EAUTH;
    }
  }
  gw_user u;
  memset(&u, 0, sizeof u);
  int rc = strncmp(tok, "cat_", 4) == 0 ? resolve_api_token(gw, tok, &u)
                                        : resolve_jwt(gw, tok, &u);
  if (rc < 0) {
    if (rc != CAIRN_EAUTH) {
      CMN_WARN("gw.auth", "token check failed err=%s", cairn_err_name(rc));
    }
    return rc;
  }
  *out = u;
  return 0;
}
