/*
 * jwt.c - HS256 JSON Web Tokens: signing and strict verification of the
 * gateway's access tokens (see gw_jwt.h). jansson builds and parses the
 * JSON; gw_crypto does base64url and the MAC.
 */
#include "gw_jwt.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "gw_crypto.h"

/* base64url('{"alg":"HS256","typ":"JWT"}'): every token starts with it. */
static const char header_b64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

#define SIG_B64_LEN GW_B64URL_LEN(32)         /* 43 */
#define PART_MAX (GW_JWT_MAX / 4 * 3)         /* decoded size of any part */
#define PARSE_FLAGS (JSON_REJECT_DUPLICATES)  /* \u0000 stays refused */

/* 1 when the array holds a NUL, i.e. the string fits its field. */
static int fits(const char *field, size_t size) { return memchr(field, '\0', size) != NULL; }

/* The claims as a compact JSON object, in a fixed key order; NULL when a
 * string is not valid UTF-8 (json_string refuses it). Caller frees. */
static char *claims_json(const gw_jwt_claims *c) {
  char *text = NULL;
  json_t *o = json_object();
  json_t *sid = json_string(c->sid), *typ = json_string(c->typ);
  json_t *scope = c->scope[0] ? json_string(c->scope) : NULL;
  if (o == NULL || sid == NULL || typ == NULL || (c->scope[0] && scope == NULL)) {
    json_decref(sid);
    json_decref(typ);
    json_decref(scope);
    goto fail;
  }
  json_object_set_new(o, "sub", json_integer(c->sub));
  json_object_set_new(o, "sid", sid);
  json_object_set_new(o, "typ", typ);
  if (scope) {
    json_object_set_new(o, "scope", scope);
  }
  json_object_set_new(o, "iat", json_integer(c->iat));
  json_object_set_new(o, "exp", json_integer(c->exp));
  text = json_dumps(o, JSON_COMPACT);
fail:
  json_decref(o);
  return text;
}

/*
 * Build the token in a local buffer and copy it out only when it fits, so
 * a failure leaves `out` untouched. The header is a constant: the gateway
 * issues one kind of token.
 */
int gw_jwt_sign(const uint8_t key[32], const gw_jwt_claims *c, char *out, size_t outlen) {
  if (key == NULL || c == NULL || out == NULL || !fits(c->sid, sizeof c->sid) ||
      !fits(c->typ, sizeof c->typ) || !fits(c->scope, sizeof c->scope)) {
    return CAIRN_EINVAL;
  }
  char *payload = claims_json(c);
  if (payload == NULL) {
    return CAIRN_EINVAL;
  }
  char tok[GW_JWT_MAX + 1];
  size_t hlen = sizeof header_b64 - 1;
  int rc = 0;
  memcpy(tok, header_b64, hlen);
  tok[hlen] = '.';
  int plen = gw_b64url_encode(payload, strlen(payload), tok + hlen + 1, sizeof tok - hlen - 1);
  if (plen < 0) {
    rc = CAIRN_ETOOBIG;
    goto fail;
  }
  size_t signed_len = hlen + 1 + (size_t)plen;
  if (signed_len + 1 + SIG_B64_LEN > GW_JWT_MAX) {
    rc = CAIRN_ETOOBIG;
    goto fail;
  }
  uint8_t mac[32];
  gw_hmac_sha256(key, 32, tok, signed_len, mac);
  tok[signed_len] = '.';
  gw_b64url_encode(mac, sizeof mac, tok + signed_len + 1, sizeof tok - signed_len - 1);
  size_t len = signed_len + 1 + SIG_B64_LEN;
  if (outlen < len + 1) {
    rc = CAIRN_ETOOBIG;
    goto fail;
  }
  memcpy(out, tok, len + 1);
  rc = (int)len;
fail:
  free(payload);
  return rc;
}

/* Decode one base64url part and parse it as a JSON object; NULL if either
 * fails. Caller decrefs. */
static json_t *decode_object(const char *b64, size_t n) {
  char buf[PART_MAX];
  int len = gw_b64url_decode(b64, n, buf, sizeof buf);
  if (len <= 0) {
    return NULL;
  }
  json_t *v = json_loadb(buf, (size_t)len, PARSE_FLAGS, NULL);
  if (v != NULL && !json_is_object(v)) {
    json_decref(v);
    v = NULL;
  }
  return v;
}

/* The header must name HS256, may say typ "JWT", and must not carry
 * "crit" (extensions we would have to understand). 1 when acceptable. */
static int header_ok(const json_t *h) {
  const json_t *alg = json_object_get(h, "alg");
  const json_t *typ = json_object_get(h, "typ");
  if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0 ||
      json_string_length(alg) != 5) {
    return 0;
  }
  if (typ != NULL && (!json_is_string(typ) || strcmp(json_string_value(typ), "JWT") != 0 ||
                      json_string_length(typ) != 3)) {
    return 0;
  }
  return json_object_get(h, "crit") == NULL;
}

/* Copy a string claim into a field of `size` bytes: it must be a string
 * shorter than the field, without NULs. 1 on success. */
static int get_string(const json_t *o, const char *name, char *field, size_t size) {
  const json_t *v = json_object_get(o, name);
  if (!json_is_string(v)) {
    return 0;
  }
  const char *s = json_string_value(v);
  size_t len = json_string_length(v);
  if (len >= size || strlen(s) != len) {
    return 0;
  }
  memcpy(field, s, len + 1);
  return 1;
}

/* An integer claim (a JSON real such as 1.0 is not one). 1 on success. */
static int get_int(const json_t *o, const char *name, int64_t *val) {
  const json_t *v = json_object_get(o, name);
  if (!json_is_integer(v)) {
    return 0;
  }
  *val = (int64_t)json_integer_value(v);
  return 1;
}

/* The claims of a payload object into *c. 1 when all are present and of
 * the right type. */
static int claims_from(const json_t *p, gw_jwt_claims *c) {
  memset(c, 0, sizeof *c);
  if (!get_int(p, "sub", &c->sub) || !get_string(p, "sid", c->sid, sizeof c->sid) ||
      !get_string(p, "typ", c->typ, sizeof c->typ) || !get_int(p, "iat", &c->iat) ||
      !get_int(p, "exp", &c->exp)) {
    return 0;
  }
  if (json_object_get(p, "scope") != NULL &&
      !get_string(p, "scope", c->scope, sizeof c->scope)) {
    return 0;
  }
  return 1;
}

/*
 * Structure first (length, three parts, a 32-byte signature), then the MAC
 * over "<header>.<payload>" compared in constant time, and only then the
 * JSON: nothing an outsider sends reaches the parser unless it was signed
 * with our key. The header's alg is still checked, so a token signed by us
 * for some other scheme could never pass as HS256.
 */
int gw_jwt_verify(const uint8_t key[32], const char *token, int64_t now_s, gw_jwt_claims *out) {
  if (key == NULL || out == NULL) {
    return CAIRN_EINVAL;
  }
  if (token == NULL) {
    return CAIRN_EAUTH;
  }
  size_t len = strnlen(token, GW_JWT_MAX + 1);
  if (len > GW_JWT_MAX) {
    return CAIRN_EAUTH;
  }
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL) {
    return CAIRN_EAUTH;
  }
  size_t signed_len = (size_t)(d2 - token);
  size_t sig_len = len - signed_len - 1;
  uint8_t sig[32], mac[32];
  if (sig_len != SIG_B64_LEN || gw_b64url_decode(d2 + 1, sig_len, sig, sizeof sig) != 32) {
    return CAIRN_EAUTH;
  }
  gw_hmac_sha256(key, 32, token, signed_len, mac);
  if (CRYPTO_memcmp(sig, mac, sizeof mac) != 0) {
    return CAIRN_EAUTH;
  }
  int rc = CAIRN_EAUTH;
  gw_jwt_claims c;
  json_t *header = decode_object(token, (size_t)(d1 - token));
  json_t *payload = decode_object(d1 + 1, (size_t)(d2 - d1 - 1));
  if (header == NULL || payload == NULL || !header_ok(header) || !claims_from(payload, &c)) {
    goto fail;
  }
  if (c.exp <= now_s) {
    goto fail;
  }
  *out = c;
  rc = 0;
fail:
  json_decref(header);
  json_decref(payload);
  return rc;
}
