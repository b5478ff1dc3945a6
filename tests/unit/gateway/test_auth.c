/*
 * test_auth.c - gw_auth_resolve (gateway/auth.c) without a database: the
 * Authorization header's syntax, the JWT checks that need no lookup, and
 * answers served from the auth cache. The context has no database at all
 * (db is NULL), so a lookup that reached for it instead of the cache
 * would crash the test: these cases also prove that a cached session or
 * API token costs no database round trip.
 */
#include "test_main.h"

#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_util.h"
#include "gw.h"
#include "gw_jwt.h"

#define SID "0b8f7c1e-2d3a-4b5c-9d6e-7f8091a2b3c4"

static int setup(void **state) {
  gw_ctx *gw = cmn_calloc(1, sizeof *gw);
  for (size_t i = 0; i < sizeof gw->jwt_key; i++) {
    gw->jwt_key[i] = (uint8_t)(i * 7 + 1);
  }
  gw->cfg.cache_ttl_ms = 60000;
  if (gw_cache_new(64, gw->cfg.cache_ttl_ms, &gw->auth_cache) != 0) {
    free(gw);
    return -1;
  }
  *state = gw;
  return 0;
}

static int teardown(void **state) {
  gw_ctx *gw = *state;
  gw_cache_free(gw->auth_cache);
  free(gw);
  return 0;
}

/* "Bearer <a JWT for user `sub`, session `sid`, kind `typ`>" under `key`,
 * expiring `ttl` seconds from now (negative: already expired). */
static void bearer(const uint8_t key[32], int64_t sub, const char *sid, const char *typ,
                   int64_t ttl, char *out, size_t n) {
  gw_jwt_claims c;
  memset(&c, 0, sizeof c);
  c.sub = sub;
  strcpy(c.sid, sid);
  strcpy(c.typ, typ);
  c.iat = cmn_wall_ms() / 1000;
  c.exp = c.iat + ttl;
  char tok[GW_JWT_MAX + 1];
  assert_true(gw_jwt_sign(key, &c, tok, sizeof tok) > 0);
  assert_true(strlen(tok) + 8 <= n);
  strcpy(out, "Bearer ");
  strcat(out, tok);
}

/* Headers that are not exactly "Bearer <visible ASCII>" are refused, and
 * the output is left alone. */
static void header_syntax(void **state) {
  gw_ctx *gw = *state;
  char longtok[GW_JWT_MAX + 16];
  strcpy(longtok, "Bearer ");
  memset(longtok + 7, 'a', GW_JWT_MAX + 1);
  longtok[7 + GW_JWT_MAX + 1] = '\0';
  const char *bad[] = {"",          "Bearer",          "Bearer ",        "Bearer  cat_x",
                       "Basic abc", "Bearerx cat_x",   "Bearer cat_x y", "Bearer cat_\x01",
                       " Bearer x", "Bearer\tcat_x",   "Bearer caf\xc3\xa9", longtok};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    gw_user u;
    memset(&u, 0x5a, sizeof u);
    assert_int_equal(gw_auth_resolve(gw, bad[i], &u), CAIRN_EAUTH);
    for (size_t k = 0; k < sizeof u; k++) {
      assert_int_equal(((unsigned char *)&u)[k], 0x5a);
    }
  }
  gw_user u;
  assert_int_equal(gw_auth_resolve(gw, NULL, &u), CAIRN_EAUTH);
  assert_int_equal(gw_auth_resolve(NULL, "Bearer x", &u), CAIRN_EAUTH);
}

/* A JWT is checked in memory first: another key, expiry and a kind other
 * than "access" fail before any session lookup. */
static void jwt_refused_in_memory(void **state) {
  gw_ctx *gw = *state;
  uint8_t other[32];
  memset(other, 0x42, sizeof other);
  char h[GW_JWT_MAX + 16];
  gw_user u;
  /* The session is cached as valid, so only the token itself can fail. */
  gw_cache_put(gw->auth_cache, "s:" SID, 42, gw_cache_generation(gw->auth_cache),
               cmn_mono_ms());
  bearer(other, 42, SID, "access", 600, h, sizeof h);
  assert_int_equal(gw_auth_resolve(gw, h, &u), CAIRN_EAUTH);
  bearer(gw->jwt_key, 42, SID, "access", -5, h, sizeof h);
  assert_int_equal(gw_auth_resolve(gw, h, &u), CAIRN_EAUTH);
  bearer(gw->jwt_key, 42, SID, "refresh", 600, h, sizeof h);
  assert_int_equal(gw_auth_resolve(gw, h, &u), CAIRN_EAUTH);
  bearer(gw->jwt_key, 42, "", "access", 600, h, sizeof h);
  assert_int_equal(gw_auth_resolve(gw, h, &u), CAIRN_EAUTH);
  /* A JWT whose session belongs to someone else. */
  bearer(gw->jwt_key, 43, SID, "access", 600, h, sizeof h);
  assert_int_equal(gw_auth_resolve(gw, h, &u), CAIRN_EAUTH);
}

/* A valid JWT of a cached session resolves to its user with every scope,
 * whatever the case of the scheme. */
static void jwt_cached_session(void **state) {
  gw_ctx *gw = *state;
  gw_cache_put(gw->auth_cache, "s:" SID, 42, gw_cache_generation(gw->auth_cache),
               cmn_mono_ms());
  char h[GW_JWT_MAX + 16];
  bearer(gw->jwt_key, 42, SID, "access", 600, h, sizeof h);
  memcpy(h, "bEARER", 6);
  gw_user u;
  memset(&u, 0, sizeof u);
  assert_int_equal(gw_auth_resolve(gw, h, &u), 0);
  assert_int_equal(u.id, 42);
  assert_int_equal(u.scopes, GW_SCOPE_ALL);
  assert_string_equal(u.sid, SID);
  assert_int_equal(u.token_id, 0);
}

/* A cached API token resolves to its user, its id and its scopes, never
 * GW_SCOPE_TOKENS even if the cached bits said so. */
static void api_token_cached(void **state) {
  gw_ctx *gw = *state;
  const char *tok = "cat_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
  uint8_t d[32];
  char hex[65], key[80], h[128];
  gw_sha256(tok, strlen(tok), d);
  cmn_hex_encode(d, sizeof d, hex);
  uint64_t gen = gw_cache_generation(gw->auth_cache);
  snprintf(key, sizeof key, "t:%s", hex);
  gw_cache_put(gw->auth_cache, key, (7 << 4) | GW_SCOPE_READ | GW_SCOPE_TOKENS, gen,
               cmn_mono_ms());
  snprintf(key, sizeof key, "t:%s#", hex);
  gw_cache_put(gw->auth_cache, key, 5, gen, cmn_mono_ms());
  snprintf(h, sizeof h, "Bearer %s", tok);
  gw_user u;
  memset(&u, 0, sizeof u);
  assert_int_equal(gw_auth_resolve(gw, h, &u), 0);
  assert_int_equal(u.id, 7);
  assert_int_equal(u.scopes, GW_SCOPE_READ);
  assert_int_equal(u.token_id, 5);
  assert_string_equal(u.sid, "");
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(header_syntax, setup, teardown),
                cmocka_unit_test_setup_teardown(jwt_refused_in_memory, setup, teardown),
                cmocka_unit_test_setup_teardown(jwt_cached_session, setup, teardown),
                cmocka_unit_test_setup_teardown(api_token_cached, setup, teardown))
