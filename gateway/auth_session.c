/*
 * auth_session.c - sessions: log in with a password, refresh, log out.
 *
 * A login starts a session (a row in `sessions`, id a UUID) and hands out
 * two tokens: a short-lived JWT access token naming the session (sid) and
 * a long-lived opaque refresh token ("crt_..."), of which only the SHA-256
 * is stored. Each refresh spends its token and issues the next one in the
 * same session (rotation). Presenting a spent refresh token again means it
 * leaked: the whole session is revoked, which also ends every access token
 * of it at once, because gw_auth_resolve (auth.c) checks the session of
 * every JWT (through the auth cache, which revocation invalidates).
 *
 * Every handler runs on its connection's thread and holds a database
 * connection only for its queries, never across password hashing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_handlers.h"
#include "gw_jwt.h"

#define USERNAME_MAX 64
#define TOKEN_BUF 96 /* "crt_" + base64url of 32 bytes, with room to spare */

/* The same answer for an unknown user and a wrong password. */
#define BAD_LOGIN "wrong username or password"

/* Lower-case hex of the SHA-256 of `s`: how tokens are looked up. */
static void token_hash_hex(const char *s, char hex[65]) {
  uint8_t d[32];
  gw_sha256(s, strlen(s), d);
  cmn_hex_encode(d, sizeof d, hex);
}

/*
 * A PHC string that takes exactly as long to check as a real hash made
 * with the configured parameters, and that no password matches (its tag
 * is a constant, not the output of argon2). Logging in as an unknown user
 * is checked against it, so the time of a refusal does not tell whether
 * the user exists. Built from the parameters each time, so it needs no
 * state and follows a configuration change.
 */
static void dummy_hash(const gw_argon2_params *p, char *out, size_t n) {
  snprintf(out, n,
           "$argon2id$v=19$m=%u,t=%u,p=%u$Y2Fpcm4tZHVtbXktc2FsdA"
           "$ZHVtbXl0YWdkdW1teXRhZ2R1bW15dGFnZHVtbXl0YWdkdW0",
           (unsigned)p->m_kib, (unsigned)p->t_cost, (unsigned)p->lanes);
}

/* The token pair of a session, issued by a login or a refresh. */
typedef struct issued {
  char refresh[TOKEN_BUF];
  char refresh_hex[65];
  char access[GW_JWT_MAX + 1];
} issued;

/* A new refresh token (and its hash) for `t`. 0 or CAIRN_EIO. */
static int new_refresh(issued *t) {
  int rc = gw_random_token("crt_", t->refresh, sizeof t->refresh);
  if (rc < 0) {
    return rc;
  }
  token_hash_hex(t->refresh, t->refresh_hex);
  return 0;
}

/* Sign the access token of session `sid` for `user`. Claims are whole
 * seconds, so the expiry is rounded up: the token lives at least the
 * configured access TTL (at most a second more), never less, however
 * close to the end of a second it was issued. 0 or an error from
 * gw_jwt_sign. */
static int sign_access(gw_ctx *gw, int64_t user, const char *sid, issued *t) {
  gw_jwt_claims c;
  memset(&c, 0, sizeof c);
  int64_t now_ms = cmn_wall_ms();
  c.sub = user;
  snprintf(c.sid, sizeof c.sid, "%s", sid);
  snprintf(c.typ, sizeof c.typ, "access");
  c.iat = now_ms / 1000;
  c.exp = (now_ms + gw->cfg.access_ttl_ms + 999) / 1000;
  int rc = gw_jwt_sign(gw->jwt_key, &c, t->access, sizeof t->access);
  return rc < 0 ? rc : 0;
}

/* The 200 reply of a login or refresh: both tokens, their lifetimes and
 * who they belong to. */
static void reply_tokens(gw_req *r, const issued *t, int64_t user, const char *username) {
  const gw_config *cfg = &r->gw->cfg;
  json_t *body = json_pack("{s:s,s:s,s:I,s:s,s:I,s:{s:I,s:s}}", "access_token", t->access,
                           "token_type", "Bearer", "expires_in",
                           (json_int_t)((cfg->access_ttl_ms + 999) / 1000), "refresh_token",
                           t->refresh, "refresh_expires_in",
                           (json_int_t)(cfg->refresh_ttl_ms / 1000), "user", "id",
                           (json_int_t)user, "username", username);
  if (body == NULL) {
    gw_reply_error(r, 500, "internal", "cannot encode the tokens");
    return;
  }
  gw_reply_json(r, 200, body);
}

/* Fetch the username and password fields of a login. Replies 400 and
 * returns 1 when either is missing, not a string or out of bounds. */
static int login_fields(gw_req *r, const char **user, const char **pw, size_t *pwlen) {
  static const char *const known[] = {"username", "password", NULL};
  if (gw_json_only_fields(r, known)) {
    return 1;
  }
  json_t *u = json_object_get(r->json, "username");
  json_t *p = json_object_get(r->json, "password");
  if (!json_is_string(u) || json_string_length(u) == 0) {
    gw_reply_error(r, 400, "invalid", "field 'username' must be a non-empty string");
    return 1;
  }
  if (!json_is_string(p) || json_string_length(p) == 0 ||
      json_string_length(p) > GW_PASSWORD_MAX) {
    gw_reply_error(r, 400, "invalid", "field 'password' must be a string of 1 to %d bytes",
                   GW_PASSWORD_MAX);
    return 1;
  }
  *user = json_string_value(u);
  *pw = json_string_value(p);
  *pwlen = json_string_length(p);
  return 0;
}

/* The user's id and password hash: 0, CAIRN_ENOENT or a database error.
 * A name that cannot be a username is simply not found. */
static int load_user(gw_ctx *gw, const char *name, int64_t *id, char *hash, size_t hashlen) {
  if (strlen(name) > USERNAME_MAX) {
    return CAIRN_ENOENT;
  }
  PGresult *res = NULL;
  int rc = gw_db_query(gw->db, &res, "SELECT id, password_hash FROM users WHERE username = $1",
                       1, name);
  if (rc == 0 && PQntuples(res) == 0) {
    rc = CAIRN_ENOENT;
  }
  if (rc == 0) {
    *id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    snprintf(hash, hashlen, "%s", PQgetvalue(res, 0, 1));
  }
  PQclear(res);
  return rc;
}

/* Start a session for `user`: the session row and its first refresh
 * token, in one statement (so both or neither exist). */
static int start_session(gw_ctx *gw, int64_t user, const char *sid, const issued *t) {
  char uid[24], ttl[24];
  snprintf(uid, sizeof uid, "%lld", (long long)user);
  snprintf(ttl, sizeof ttl, "%lld", (long long)gw->cfg.refresh_ttl_ms);
  return gw_db_query(gw->db, NULL,
                     "WITH s AS (INSERT INTO sessions (id, user_id) VALUES ($1, $2)"
                     " RETURNING id) "
                     "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) "
                     "SELECT decode($3, 'hex'), s.id,"
                     " now() + $4::bigint * interval '1 millisecond' FROM s",
                     4, sid, uid, t->refresh_hex, ttl);
}

/*
 * POST /v1/auth/token {"username","password"}: check the password (an
 * unknown user is checked against a dummy hash, and refused with the same
 * words as a wrong password), then start a session and reply with its
 * tokens. The database connection is not held while argon2 runs.
 */
void gw_h_token(gw_req *r) {
  gw_ctx *gw = r->gw;
  const char *name, *pw;
  size_t pwlen;
  if (login_fields(r, &name, &pw, &pwlen)) {
    return;
  }
  int64_t user = 0;
  char hash[GW_PASSWORD_HASH_MAX + 64];
  int rc = load_user(gw, name, &user, hash, sizeof hash);
  if (rc < 0 && rc != CAIRN_ENOENT) {
    gw_reply_cairn(r, rc, "looking up the user");
    return;
  }
  int known = rc == 0;
  if (!known) {
    dummy_hash(&gw->argon2, hash, sizeof hash);
  }
  rc = gw_password_verify(hash, pw, pwlen);
  if (rc == CAIRN_ENOMEM) {
    gw_reply_cairn(r, rc, "checking the password");
    return;
  }
  if (rc != 0 || !known) {
    if (rc != CAIRN_EAUTH) {
      CMN_WARN("gw.auth", "password check failed id=%s user=%lld err=%s", r->id,
               (long long)user, cairn_err_name(rc));
    }
    gw_reply_error(r, 401, "unauthenticated", BAD_LOGIN);
    return;
  }
  issued t;
  char sid[37];
  rc = cmn_uuid_v4(sid);
  if (rc == 0) {
    rc = new_refresh(&t);
  }
  if (rc == 0) {
    rc = start_session(gw, user, sid, &t);
  }
  if (rc == 0) {
    rc = sign_access(gw, user, sid, &t);
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "starting the session");
    return;
  }
  r->user.id = user; /* for the access log */
  CMN_INFO("gw.auth", "login id=%s user=%lld sid=%s", r->id, (long long)user, sid);
  reply_tokens(r, &t, user, name);
}

/* Revoke session `sid` in the auth cache too: its access tokens stop
 * working at the next request. Call after the revocation committed. */
static void forget_session(gw_ctx *gw, const char *sid) {
  char key[48];
  snprintf(key, sizeof key, "s:%s", sid);
  gw_cache_invalidate_prefix(gw->auth_cache, key);
}

/* What a refresh found and decided (see gw_h_refresh). */
enum refresh_outcome { RF_OK, RF_UNKNOWN, RF_REVOKED, RF_REUSED, RF_EXPIRED };

/* What the locked row says about a refresh token (see gw_h_refresh). */
static enum refresh_outcome judge(const PGresult *res) {
  if (PQntuples(res) == 0) {
    return RF_UNKNOWN;
  }
  if (PQgetvalue(res, 0, 2)[0] == 't') {
    return RF_REVOKED;
  }
  if (PQgetvalue(res, 0, 3)[0] == 't') {
    return RF_REUSED; /* checked before expiry: a leaked old token still counts */
  }
  return PQgetvalue(res, 0, 4)[0] == 't' ? RF_EXPIRED : RF_OK;
}

/* The refresh inside one transaction: lock the token row and its session,
 * judge them, and either rotate (spend this token, add the next one, t) or,
 * on reuse, revoke the session; any other outcome changes nothing and
 * rolls back. 0 with *out and the session's id, user and username, or a
 * database error (the transaction is then rolled back by gw_db_release). */
static int refresh_tx(PGconn *c, gw_ctx *gw, const char *hex, const issued *t,
                      enum refresh_outcome *out, char sid[40], int64_t *user, char *username,
                      size_t ulen) {
  PGresult *res = NULL;
  char ttl[24];
  snprintf(ttl, sizeof ttl, "%lld", (long long)gw->cfg.refresh_ttl_ms);
  int rc = gw_db_begin(c);
  if (rc < 0) {
    goto fail;
  }
  rc = gw_q(c, &res,
            "SELECT s.id, s.user_id, s.revoked, t.spent, t.expires_at <= now(), u.username "
            "FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id "
            "JOIN users u ON u.id = s.user_id "
            "WHERE t.token_hash = decode($1, 'hex') FOR UPDATE OF t, s",
            1, hex);
  if (rc < 0) {
    goto fail;
  }
  *out = judge(res);
  if (*out != RF_UNKNOWN) {
    snprintf(sid, 40, "%s", PQgetvalue(res, 0, 0));
    *user = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    snprintf(username, ulen, "%s", PQgetvalue(res, 0, 5));
  }
  if (*out == RF_REUSED) {
    rc = gw_q(c, NULL, "UPDATE sessions SET revoked = true WHERE id = $1", 1, sid);
  } else if (*out == RF_OK) {
    rc = gw_q(c, NULL,
              "UPDATE refresh_tokens SET spent = true WHERE token_hash = decode($1, 'hex')", 1,
              hex);
    if (rc == 0) {
      rc = gw_q(c, NULL,
                "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) "
                "VALUES (decode($1, 'hex'), $2, now() + $3::bigint * interval '1 millisecond')",
                3, t->refresh_hex, sid, ttl);
    }
  } else {
    gw_db_rollback(c);
    goto fail;
  }
  if (rc == 0) {
    rc = gw_db_commit(c);
  }
fail:
  PQclear(res);
  return rc;
}

/*
 * POST /v1/auth/refresh {"refresh_token"}: rotate the refresh token and
 * issue a new access token in the same session. Unknown, expired and
 * revoked tokens are refused alike (401); a token that was already spent
 * revokes the whole session (its family: every later token and every
 * access token) and is refused with "token_reused".
 */
void gw_h_refresh(gw_req *r) {
  static const char *const known[] = {"refresh_token", NULL};
  gw_ctx *gw = r->gw;
  if (gw_json_only_fields(r, known)) {
    return;
  }
  const char *tok = gw_json_str(r, "refresh_token");
  if (tok == NULL || *tok == '\0') {
    gw_reply_error(r, 400, "invalid", "field 'refresh_token' must be a non-empty string");
    return;
  }
  char hex[65], sid[40] = "", username[USERNAME_MAX + 1] = "";
  int64_t user = 0;
  enum refresh_outcome out = RF_UNKNOWN;
  issued t;
  token_hash_hex(tok, hex);
  int rc = new_refresh(&t);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "making a token");
    return;
  }
  PGconn *c;
  rc = gw_db_acquire(gw->db, &c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "refreshing the session");
    return;
  }
  rc = refresh_tx(c, gw, hex, &t, &out, sid, &user, username, sizeof username);
  gw_db_release(gw->db, c);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "refreshing the session");
    return;
  }
  switch (out) {
  case RF_OK:
    break;
  case RF_REUSED:
    forget_session(gw, sid);
    CMN_WARN("gw.auth", "refresh token reused, session revoked id=%s user=%lld sid=%s", r->id,
             (long long)user, sid);
    gw_reply_error(r, 401, "token_reused",
                   "this refresh token was already used; the session is revoked");
    return;
  default:
    gw_reply_error(r, 401, "unauthenticated", "the refresh token is invalid, expired or revoked");
    return;
  }
  rc = sign_access(gw, user, sid, &t);
  if (rc < 0) {
    gw_reply_cairn(r, rc, "signing the access token");
    return;
  }
  r->user.id = user;
  reply_tokens(r, &t, user, username);
}

/* Revoke the session that owns refresh token `hex` (if any, and if not
 * already), writing its id to sid ("" when none). 0 or a database error. */
static int revoke_by_refresh(gw_ctx *gw, const char *hex, char sid[40]) {
  PGresult *res = NULL;
  sid[0] = '\0';
  int rc = gw_db_query(gw->db, &res,
                       "UPDATE sessions SET revoked = true WHERE id = "
                       "(SELECT session_id FROM refresh_tokens"
                       " WHERE token_hash = decode($1, 'hex')) "
                       "RETURNING id",
                       1, hex);
  if (rc == 0 && PQntuples(res) == 1) {
    snprintf(sid, 40, "%s", PQgetvalue(res, 0, 0));
  }
  PQclear(res);
  return rc;
}

/* Revoke session `sid` (the caller's own, from its access token). */
static int revoke_by_id(gw_ctx *gw, const char *sid) {
  return gw_db_query(gw->db, NULL, "UPDATE sessions SET revoked = true WHERE id = $1", 1, sid);
}

/*
 * POST /v1/auth/logout with {"refresh_token"} and/or a bearer access
 * token: revoke the session(s) they name, and forget them in the auth
 * cache so their access tokens stop working at once. Unknown tokens are
 * not an error (logging out twice is fine: 204); a body that is not what
 * this endpoint takes is (400). An API token names no session: nothing to
 * do. Without either token there is nothing to log out of (400).
 */
void gw_h_logout(gw_req *r) {
  static const char *const known[] = {"refresh_token", NULL};
  gw_ctx *gw = r->gw;
  if (gw_json_only_fields(r, known)) {
    return;
  }
  json_t *v = json_object_get(r->json, "refresh_token");
  if (v != NULL && (!json_is_string(v) || json_string_length(v) == 0)) {
    gw_reply_error(r, 400, "invalid", "field 'refresh_token' must be a non-empty string");
    return;
  }
  if (v == NULL && r->user.id == 0) {
    gw_reply_error(r, 400, "invalid",
                   "give field 'refresh_token' or an Authorization: Bearer access token");
    return;
  }
  int rc = 0;
  if (v != NULL) {
    char hex[65], sid[40];
    token_hash_hex(json_string_value(v), hex);
    rc = revoke_by_refresh(gw, hex, sid);
    if (rc == 0 && sid[0]) {
      forget_session(gw, sid);
      CMN_INFO("gw.auth", "logout id=%s sid=%s", r->id, sid);
    }
  }
  if (rc == 0 && r->user.sid[0]) {
    rc = revoke_by_id(gw, r->user.sid);
    if (rc == 0) {
      forget_session(gw, r->user.sid);
      CMN_INFO("gw.auth", "logout id=%s user=%lld sid=%s", r->id, (long long)r->user.id,
               r->user.sid);
    }
  }
  if (rc < 0) {
    gw_reply_cairn(r, rc, "logging out");
    return;
  }
  gw_reply_empty(r, 204);
}
