/*
 * test_jwt.c - HS256 access tokens (gateway/jwt.c): tokens computed
 * independently of this code, round trips, and every way a token can be
 * wrong: tampering, other algorithms, wrong key, expiry, malformed parts,
 * length, and claims of the wrong type. Forged tokens are signed with the
 * right key, so each is refused for the reason under test and not for its
 * signature.
 */
#include "test_main.h"

#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_util.h"
#include "gw_crypto.h"
#include "gw_jwt.h"

#define NOW 1700000100

static uint8_t key[32];

static int setup_key(void **state) {
  (void)state;
  for (int i = 0; i < 32; i++) {
    key[i] = (uint8_t)i;
  }
  return 0;
}

/* Computed independently (Python hmac/base64/json) with key bytes 0..31:
 * {"sub":42,"sid":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0","typ":"access",
 *  "scope":"read write","iat":1700000000,"exp":1700000900} */
static const char known_token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOjQyLCJzaWQiOiIwZjFlMmQzYy00YjVhLTY5NzgtODc5Ni1hNWI0YzNkMmUxZjAiLCJ0eXAiOiJhY2Nlc3Mi"
    "LCJzY29wZSI6InJlYWQgd3JpdGUiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDkwMH0."
    "spg8_UeypzmvfCX6CBi0Qws3EMzFmWlv6803mLnaTBI";

/* The same without a scope: {"sub":7,"sid":"s","typ":"refresh","iat":1,"exp":2} */
static const char known_token_noscope[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOjcsInNpZCI6InMiLCJ0eXAiOiJyZWZyZXNoIiwiaWF0IjoxLCJleHAiOjJ9."
    "4dYhU4Qfexbu9LSevsK6qRe2kbRjDH3rqCJrXWu1swg";

static gw_jwt_claims sample(void) {
  gw_jwt_claims c;
  memset(&c, 0, sizeof c);
  c.sub = 42;
  strcpy(c.sid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  strcpy(c.typ, "access");
  strcpy(c.scope, "read write");
  c.iat = 1700000000;
  c.exp = 1700000900;
  return c;
}

/* A token from raw header and payload text, signed with `k`; caller frees. */
static char *forge(const uint8_t k[32], const char *header, const char *payload) {
  size_t hl = strlen(header), pl = strlen(payload);
  size_t cap = GW_B64URL_LEN(hl) + GW_B64URL_LEN(pl) + 64;
  char *t = cmn_malloc(cap);
  int a = gw_b64url_encode(header, hl, t, cap);
  assert_true(a >= 0);
  t[a] = '.';
  int b = gw_b64url_encode(payload, pl, t + a + 1, cap - (size_t)a - 1);
  assert_true(b >= 0);
  size_t signed_len = (size_t)a + 1 + (size_t)b;
  uint8_t mac[32];
  gw_hmac_sha256(k, 32, t, signed_len, mac);
  t[signed_len] = '.';
  assert_int_equal(gw_b64url_encode(mac, 32, t + signed_len + 1, cap - signed_len - 1), 43);
  return t;
}

static const char good_header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
static const char good_payload[] =
    "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1700000000,\"exp\":1700000900}";

static void expect_refused(const char *token) {
  gw_jwt_claims out;
  memset(&out, 0x5a, sizeof out);
  int rc = gw_jwt_verify(key, token, NOW, &out);
  if (rc != CAIRN_EAUTH) {
    fail_msg("token accepted (%d): %.200s", rc, token ? token : "(null)");
  }
  const unsigned char *p = (const unsigned char *)&out;
  for (size_t i = 0; i < sizeof out; i++) {
    assert_int_equal(p[i], 0x5a); /* untouched */
  }
}

static void expect_forged_refused(const char *header, const char *payload) {
  char *t = forge(key, header, payload);
  expect_refused(t);
  free(t);
}

/* ---- known answers and round trips ---- */

static void sign_matches_independent_token(void **state) {
  (void)state;
  gw_jwt_claims c = sample();
  char out[GW_JWT_MAX + 1];
  assert_int_equal(gw_jwt_sign(key, &c, out, sizeof out), (int)strlen(known_token));
  assert_string_equal(out, known_token);

  gw_jwt_claims d;
  memset(&d, 0, sizeof d);
  d.sub = 7;
  strcpy(d.sid, "s");
  strcpy(d.typ, "refresh");
  d.iat = 1;
  d.exp = 2;
  assert_int_equal(gw_jwt_sign(key, &d, out, sizeof out), (int)strlen(known_token_noscope));
  assert_string_equal(out, known_token_noscope);
}

static void verify_accepts_independent_token(void **state) {
  (void)state;
  gw_jwt_claims out;
  assert_int_equal(gw_jwt_verify(key, known_token, NOW, &out), 0);
  assert_int_equal(out.sub, 42);
  assert_string_equal(out.sid, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
  assert_string_equal(out.typ, "access");
  assert_string_equal(out.scope, "read write");
  assert_int_equal(out.iat, 1700000000);
  assert_int_equal(out.exp, 1700000900);
  assert_int_equal(gw_jwt_verify(key, known_token_noscope, 1, &out), 0);
  assert_int_equal(out.sub, 7);
  assert_string_equal(out.scope, "");
}

static void rfc7515_a1_signature(void **state) {
  (void)state;
  /* RFC 7515 appendix A.1: the HS256 example and its 64-byte JWK key. The
   * MAC over "<header>.<payload>" must be the example's signature; the
   * token itself is not one of ours (wrong key size, other claims). */
  const char *k64 = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwj"
                    "AzZr1Z9CAow";
  const char *tok = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9p"
                    "c19yb290Ijp0cnVlfQ."
                    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  uint8_t k[64], mac[32];
  char sig[64];
  assert_int_equal(gw_b64url_decode(k64, strlen(k64), k, sizeof k), 64);
  const char *dot = strrchr(tok, '.');
  gw_hmac_sha256(k, sizeof k, tok, (size_t)(dot - tok), mac);
  assert_int_equal(gw_b64url_encode(mac, 32, sig, sizeof sig), 43);
  assert_string_equal(sig, dot + 1);
  expect_refused(tok);
}

static void round_trip_and_limits(void **state) {
  (void)state;
  gw_jwt_claims c;
  memset(&c, 0, sizeof c);
  c.sub = -9;
  memset(c.sid, 's', sizeof c.sid - 1);   /* 39 bytes: the longest */
  memset(c.typ, 't', sizeof c.typ - 1);   /* 15 */
  memset(c.scope, 'r', sizeof c.scope - 1); /* 63 */
  c.iat = INT64_MIN;
  c.exp = INT64_MAX;
  char tok[GW_JWT_MAX + 1];
  int n = gw_jwt_sign(key, &c, tok, sizeof tok);
  assert_true(n > 0);
  gw_jwt_claims out;
  assert_int_equal(gw_jwt_verify(key, tok, NOW, &out), 0);
  assert_memory_equal(&out, &c, sizeof c);
  /* Exactly enough room, one byte short (out untouched). */
  char exact[GW_JWT_MAX + 1];
  assert_int_equal(gw_jwt_sign(key, &c, exact, (size_t)n + 1), n);
  memset(exact, 'u', sizeof exact);
  assert_int_equal(gw_jwt_sign(key, &c, exact, (size_t)n), CAIRN_ETOOBIG);
  assert_int_equal(exact[0], 'u');
}

static void sign_refuses_bad_claims(void **state) {
  (void)state;
  char out[GW_JWT_MAX + 1];
  gw_jwt_claims c = sample();
  memset(c.sid, 'x', sizeof c.sid); /* no NUL */
  assert_int_equal(gw_jwt_sign(key, &c, out, sizeof out), CAIRN_EINVAL);
  c = sample();
  memset(c.typ, 'x', sizeof c.typ);
  assert_int_equal(gw_jwt_sign(key, &c, out, sizeof out), CAIRN_EINVAL);
  c = sample();
  memset(c.scope, 'x', sizeof c.scope);
  assert_int_equal(gw_jwt_sign(key, &c, out, sizeof out), CAIRN_EINVAL);
  c = sample();
  strcpy(c.sid, "\xff\xfe"); /* not UTF-8 */
  assert_int_equal(gw_jwt_sign(key, &c, out, sizeof out), CAIRN_EINVAL);
  c = sample();
  assert_int_equal(gw_jwt_sign(NULL, &c, out, sizeof out), CAIRN_EINVAL);
  assert_int_equal(gw_jwt_sign(key, NULL, out, sizeof out), CAIRN_EINVAL);
  assert_int_equal(gw_jwt_verify(NULL, known_token, NOW, &c), CAIRN_EINVAL);
  assert_int_equal(gw_jwt_verify(key, known_token, NOW, NULL), CAIRN_EINVAL);
}

/* ---- refusals ---- */

static void tampered_tokens_refused(void **state) {
  (void)state;
  char *t = cmn_strdup(known_token);
  char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
  /* Flip one payload character to another valid one. */
  d1[5] = d1[5] == 'A' ? 'B' : 'A';
  expect_refused(t);
  strcpy(t, known_token);
  /* One signature character. */
  d2[1] = d2[1] == 'A' ? 'B' : 'A';
  expect_refused(t);
  strcpy(t, known_token);
  /* The header. */
  t[3] = t[3] == 'A' ? 'B' : 'A';
  expect_refused(t);
  strcpy(t, known_token);
  /* The last signature character with its spare bits set: a lax decoder
   * would read the same MAC. */
  char *last = t + strlen(t) - 1;
  assert_int_equal(*last, 'I'); /* value 8: spare bits 00 */
  *last = 'J';
  expect_refused(t);
  /* Payload swapped with another token's, signature kept. */
  const char *p2 = strchr(known_token_noscope, '.');
  const char *s1 = strrchr(known_token, '.');
  char *mix = cmn_sprintf("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9%.*s%s",
                    (int)(strrchr(known_token_noscope, '.') - p2), p2, s1);
  expect_refused(mix);
  free(mix);
  free(t);
}

static void other_algorithms_refused(void **state) {
  (void)state;
  /* The control: a forged token with an acceptable header passes, so the
   * refusals below are about their headers. */
  char *t = forge(key, "{\"typ\":\"JWT\",\"alg\":\"HS256\"}", good_payload);
  gw_jwt_claims out;
  assert_int_equal(gw_jwt_verify(key, t, NOW, &out), 0);
  assert_int_equal(out.sub, 5);
  free(t);
  t = forge(key, "{\"alg\":\"HS256\"}", good_payload);
  assert_int_equal(gw_jwt_verify(key, t, NOW, &out), 0);
  free(t);

  /* alg "none" the classic way: no signature at all. */
  char none[512];
  char h[128], p[256];
  gw_b64url_encode("{\"alg\":\"none\",\"typ\":\"JWT\"}", 26, h, sizeof h);
  gw_b64url_encode(good_payload, strlen(good_payload), p, sizeof p);
  snprintf(none, sizeof none, "%s.%s.", h, p);
  expect_refused(none);
  /* ... and even with a valid MAC over it. */
  expect_forged_refused("{\"alg\":\"none\",\"typ\":\"JWT\"}", good_payload);
  expect_forged_refused("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", good_payload);
  expect_forged_refused("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", good_payload);
  expect_forged_refused("{\"alg\":\"hs256\"}", good_payload);
  expect_forged_refused("{\"alg\":\"HS256\\u0000x\"}", good_payload);
  expect_forged_refused("{\"typ\":\"JWT\"}", good_payload);
  expect_forged_refused("{\"alg\":null}", good_payload);
  expect_forged_refused("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", good_payload);
  expect_forged_refused("{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", good_payload);
  expect_forged_refused("{\"alg\":\"HS256\",\"alg\":\"none\"}", good_payload);
  expect_forged_refused("[\"HS256\"]", good_payload);
  expect_forged_refused("not json", good_payload);
}

static void wrong_key_refused(void **state) {
  (void)state;
  uint8_t other[32];
  memcpy(other, key, 32);
  other[31] ^= 1;
  gw_jwt_claims c = sample(), out;
  char tok[GW_JWT_MAX + 1];
  assert_true(gw_jwt_sign(other, &c, tok, sizeof tok) > 0);
  expect_refused(tok);
  assert_int_equal(gw_jwt_verify(other, tok, NOW, &out), 0);
}

static void expired_refused(void **state) {
  (void)state;
  gw_jwt_claims out;
  /* known_token expires at 1700000900: valid until the second before. */
  assert_int_equal(gw_jwt_verify(key, known_token, 1700000899, &out), 0);
  assert_int_equal(gw_jwt_verify(key, known_token, 1700000900, &out), CAIRN_EAUTH);
  assert_int_equal(gw_jwt_verify(key, known_token, 1800000000, &out), CAIRN_EAUTH);
}

static void malformed_parts_refused(void **state) {
  (void)state;
  const char *sig = strrchr(known_token, '.');
  size_t head = (size_t)(sig - known_token);
  char *t;
  expect_refused(NULL);
  expect_refused("");
  expect_refused(".");
  expect_refused("..");
  expect_refused("a.b");
  expect_refused("a.b.c");
  /* Four parts, a trailing dot, a missing signature. */
  t = cmn_sprintf("%s.x", known_token);
  expect_refused(t);
  free(t);
  t = cmn_sprintf("%s.", known_token);
  expect_refused(t);
  free(t);
  t = cmn_sprintf("%.*s.", (int)head, known_token);
  expect_refused(t);
  free(t);
  /* Padding, whitespace, base64 (not url) characters. */
  t = cmn_sprintf("%s=", known_token);
  expect_refused(t);
  free(t);
  t = cmn_sprintf("%s\n", known_token);
  expect_refused(t);
  free(t);
  t = cmn_sprintf(" %s", known_token);
  expect_refused(t);
  free(t);
  /* Empty header or payload, signed. */
  t = forge(key, "", good_payload);
  expect_refused(t);
  free(t);
  t = forge(key, good_header, "");
  expect_refused(t);
  free(t);
}

/* A payload padded with an ignored claim to make the token `len` long. */
static char *token_of_length(size_t len) {
  char header_b64[64];
  int hl = gw_b64url_encode(good_header, strlen(good_header), header_b64, sizeof header_b64);
  /* len = hl + 1 + b64(payload) + 1 + 43; pick the payload's size so its
   * base64url is exactly what is left (never 4k+1 characters). */
  size_t payload_b64 = len - (size_t)hl - 2 - 43;
  assert_int_not_equal(payload_b64 % 4, 1);
  size_t payload_len = payload_b64 / 4 * 3 + (payload_b64 % 4 ? payload_b64 % 4 - 1 : 0);
  const char *base =
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900,\"x\":\"";
  size_t fill = payload_len - strlen(base) - 2;
  char *payload = cmn_malloc(payload_len + 1);
  strcpy(payload, base);
  memset(payload + strlen(base), 'y', fill);
  strcpy(payload + strlen(base) + fill, "\"}");
  char *t = forge(key, good_header, payload);
  free(payload);
  assert_int_equal(strlen(t), len);
  return t;
}

static void overlong_token_refused(void **state) {
  (void)state;
  /* A correctly signed token of exactly GW_JWT_MAX characters passes;
   * one more character and it is refused unread. */
  char *t = token_of_length(GW_JWT_MAX);
  gw_jwt_claims out;
  assert_int_equal(gw_jwt_verify(key, t, NOW, &out), 0);
  free(t);
  t = token_of_length(GW_JWT_MAX + 1);
  expect_refused(t);
  free(t);
}

static void wrong_claim_types_refused(void **state) {
  (void)state;
  static const char *bad[] = {
      "[1,2]",
      "\"a string\"",
      "{}",
      "{\"sub\":\"5\",\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5.0,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":true,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":7,\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":null,\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"0123456789012345678901234567890123456789\",\"typ\":\"a\",\"iat\":1,"
      "\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"a\\u0000b\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":[\"access\"],\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"0123456789abcdef\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"scope\":3,\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"scope\":null,\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"scope\":\"0123456789012345678901234567890123"
      "456789012345678901234567890123\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":\"1\",\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":\"1700000900\"}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900.5}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":99999999999999999999999}",
      "{\"sub\":5,\"sub\":6,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900}",
      "{\"sub\":5,\"sid\":\"abc\",\"typ\":\"access\",\"iat\":1,\"exp\":1700000900} trailing",
  };
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    expect_forged_refused(good_header, bad[i]);
  }
  /* The control: the longest legal strings and an extra claim pass. */
  char *t = forge(key, good_header,
                  "{\"sub\":5,\"sid\":\"012345678901234567890123456789012345678\",\"typ\":"
                  "\"0123456789abcde\",\"scope\":\"\",\"iat\":1,\"exp\":1700000900,\"extra\":[1]}");
  gw_jwt_claims out;
  assert_int_equal(gw_jwt_verify(key, t, NOW, &out), 0);
  assert_int_equal(strlen(out.sid), 39);
  assert_int_equal(strlen(out.typ), 15);
  free(t);
}

CAIRN_TEST_MAIN_WITH(setup_key, NULL, cmocka_unit_test(sign_matches_independent_token),
                     cmocka_unit_test(verify_accepts_independent_token),
                     cmocka_unit_test(rfc7515_a1_signature),
                     cmocka_unit_test(round_trip_and_limits),
                     cmocka_unit_test(sign_refuses_bad_claims),
                     cmocka_unit_test(tampered_tokens_refused),
                     cmocka_unit_test(other_algorithms_refused),
                     cmocka_unit_test(wrong_key_refused), cmocka_unit_test(expired_refused),
                     cmocka_unit_test(malformed_parts_refused),
                     cmocka_unit_test(overlong_token_refused),
                     cmocka_unit_test(wrong_claim_types_refused))
