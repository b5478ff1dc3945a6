/*
 * crypto.c - base64url, SHA-256, HMAC, randomness, key derivation, SipHash
 * and argon2id password hashes for the gateway (see gw_crypto.h).
 */
#include "gw_crypto.h"

#include <argon2.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#define SALT_LEN 16
#define TAG_LEN 32
#define TOKEN_BYTES 32
#define MAX_LANES 16
#define ENCODED_MAX 512 /* longest PHC string gw_password_verify looks at */

/* OpenSSL's one-shot digest and MAC calls fail only when they cannot
 * allocate; like cmn_malloc, that ends the process in one place. */
static void openssl_failed(const char *what) {
  CMN_ERROR("gw", "openssl failure op=%s", what);
  abort();
}

/* ---- base64url ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int gw_b64url_encode(const void *in, size_t n, char *out, size_t outlen) {
  if ((in == NULL && n > 0) || out == NULL) {
    return CAIRN_EINVAL;
  }
  if (n > (size_t)INT_MAX / 4 * 3 - 3) {
    return CAIRN_ETOOBIG;
  }
  size_t need = GW_B64URL_LEN(n);
  if (outlen < need + 1) {
    return CAIRN_ETOOBIG;
  }
  const unsigned char *p = in;
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = b64_alphabet[v >> 18];
    *o++ = b64_alphabet[(v >> 12) & 63];
    *o++ = b64_alphabet[(v >> 6) & 63];
    *o++ = b64_alphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    *o++ = b64_alphabet[v >> 18];
    *o++ = b64_alphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    *o++ = b64_alphabet[v >> 18];
    *o++ = b64_alphabet[(v >> 12) & 63];
    *o++ = b64_alphabet[(v >> 6) & 63];
  }
  *o = '\0';
  return (int)need;
}

/* The 6-bit value of a base64url character, or -1. */
static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '-') {
    return 62;
  }
  if (c == '_') {
    return 63;
  }
  return -1;
}

/*
 * Strict decoding. Everything is validated before the first byte is
 * written, so a bad string leaves `out` as it was. A final group of two
 * characters carries 12 bits for one byte and three carry 18 bits for two:
 * the spare 4 or 2 low bits must be zero, otherwise several strings would
 * decode to the same bytes (a signature could then be altered without
 * being rejected).
 */
int gw_b64url_decode(const char *in, size_t n, void *out, size_t outlen) {
  if ((in == NULL && n > 0) || (out == NULL && outlen > 0)) {
    return CAIRN_EINVAL;
  }
  size_t rem = n % 4;
  if (rem == 1) {
    return CAIRN_EINVAL;
  }
  for (size_t i = 0; i < n; i++) {
    if (b64_value((unsigned char)in[i]) < 0) {
      return CAIRN_EINVAL;
    }
  }
  if (rem == 2 && (b64_value((unsigned char)in[n - 1]) & 15) != 0) {
    return CAIRN_EINVAL;
  }
  if (rem == 3 && (b64_value((unsigned char)in[n - 1]) & 3) != 0) {
    return CAIRN_EINVAL;
  }
  size_t need = n / 4 * 3 + (rem == 0 ? 0 : rem - 1);
  if (need > (size_t)INT_MAX) {
    return CAIRN_ETOOBIG;
  }
  if (need > outlen) {
    return CAIRN_ETOOBIG;
  }
  unsigned char *o = out;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    uint32_t v = (uint32_t)b64_value((unsigned char)in[i]) << 18 |
                 (uint32_t)b64_value((unsigned char)in[i + 1]) << 12 |
                 (uint32_t)b64_value((unsigned char)in[i + 2]) << 6 |
                 (uint32_t)b64_value((unsigned char)in[i + 3]);
    *o++ = (unsigned char)(v >> 16);
    *o++ = (unsigned char)(v >> 8);
    *o++ = (unsigned char)v;
  }
  if (rem >= 2) {
    uint32_t v = (uint32_t)b64_value((unsigned char)in[i]) << 18 |
                 (uint32_t)b64_value((unsigned char)in[i + 1]) << 12;
    if (rem == 3) {
      v |= (uint32_t)b64_value((unsigned char)in[i + 2]) << 6;
    }
    *o++ = (unsigned char)(v >> 16);
    if (rem == 3) {
      *o++ = (unsigned char)(v >> 8);
    }
  }
  return (int)need;
}

/* ---- hashes and MACs ---- */

void gw_sha256(const void *d, size_t n, uint8_t out[32]) {
  unsigned int len = 0;
  if (EVP_Digest(n ? d : "", n, out, &len, EVP_sha256(), NULL) != 1 || len != 32) {
    openssl_failed("sha256");
  }
}

/*
 * HMAC() takes the key length as an int. A key longer than SHA-256's block
 * is replaced by its hash inside HMAC anyway, so doing that here first for
 * keys beyond INT_MAX gives the same MAC for every length.
 */
void gw_hmac_sha256(const void *key, size_t klen, const void *d, size_t n, uint8_t out[32]) {
  uint8_t khash[32];
  if (klen > (size_t)INT_MAX) {
    gw_sha256(key, klen, khash);
    key = khash;
    klen = sizeof khash;
  }
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), klen ? key : "", (int)klen, n ? d : (const void *)"", n, out, &len) ==
          NULL ||
      len != 32) {
    openssl_failed("hmac-sha256");
  }
  OPENSSL_cleanse(khash, sizeof khash);
}

struct gw_sha256_ctx {
  EVP_MD_CTX *md;
};

gw_sha256_ctx *gw_sha256_new(void) {
  gw_sha256_ctx *c = cmn_malloc(sizeof *c);
  c->md = EVP_MD_CTX_new();
  if (c->md == NULL || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
    openssl_failed("sha256-init");
  }
  return c;
}

void gw_sha256_update(gw_sha256_ctx *c, const void *d, size_t n) {
  if (n > 0 && EVP_DigestUpdate(c->md, d, n) != 1) {
    openssl_failed("sha256-update");
  }
}

void gw_sha256_final(gw_sha256_ctx *c, uint8_t out[32]) {
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(c->md, out, &len) != 1 || len != 32 ||
      EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
    openssl_failed("sha256-final");
  }
}

void gw_sha256_free(gw_sha256_ctx *c) {
  if (c == NULL) {
    return;
  }
  EVP_MD_CTX_free(c->md);
  free(c);
}

/* ---- randomness and keys ---- */

int gw_random_bytes(void *buf, size_t n) {
  unsigned char *p = buf;
  while (n > 0) {
    int k = n > (size_t)INT_MAX ? INT_MAX : (int)n;
    if (RAND_bytes(p, k) != 1) {
      CMN_ERROR("gw", "random bytes unavailable");
      return CAIRN_EIO;
    }
    p += k;
    n -= (size_t)k;
  }
  return 0;
}

int gw_random_token(const char *prefix, char *out, size_t outlen) {
  size_t plen = prefix ? strlen(prefix) : 0;
  size_t len = plen + GW_B64URL_LEN(TOKEN_BYTES);
  if (out == NULL) {
    return CAIRN_EINVAL;
  }
  if (outlen < len + 1 || len > (size_t)INT_MAX) {
    return CAIRN_ETOOBIG;
  }
  uint8_t raw[TOKEN_BYTES];
  int rc = gw_random_bytes(raw, sizeof raw);
  if (rc < 0) {
    return rc;
  }
  memcpy(out, prefix ? prefix : "", plen);
  gw_b64url_encode(raw, sizeof raw, out + plen, outlen - plen);
  OPENSSL_cleanse(raw, sizeof raw);
  return (int)len;
}

void gw_derive_key(const void *master, size_t n, const char *label, uint8_t out[32]) {
  gw_hmac_sha256(master, n, label, strlen(label), out);
}

/* ---- SipHash-2-4 (Aumasson and Bernstein), for hash tables ---- */

#define ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) {
    v = v << 8 | p[i];
  }
  return v;
}

#define SIPROUND                                                                               \
  do {                                                                                         \
    v0 += v1;                                                                                  \
    v1 = ROTL64(v1, 13);                                                                       \
    v1 ^= v0;                                                                                  \
    v0 = ROTL64(v0, 32);                                                                       \
    v2 += v3;                                                                                  \
    v3 = ROTL64(v3, 16);                                                                       \
    v3 ^= v2;                                                                                  \
    v0 += v3;                                                                                  \
    v3 = ROTL64(v3, 21);                                                                       \
    v3 ^= v0;                                                                                  \
    v2 += v1;                                                                                  \
    v1 = ROTL64(v1, 17);                                                                       \
    v1 ^= v2;                                                                                  \
    v2 = ROTL64(v2, 32);                                                                       \
  } while (0)

uint64_t gw_siphash(const uint8_t key[16], const void *d, size_t n) {
  const uint8_t *p = d;
  uint64_t k0 = load_le64(key), k1 = load_le64(key + 8);
  uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
  uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
  uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
  uint64_t v3 = 0x7465646279746573ULL ^ k1;
  size_t full = n - n % 8;
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m = load_le64(p + i);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
  }
  uint64_t b = (uint64_t)n << 56;
  for (size_t i = 0; i < n % 8; i++) {
    b |= (uint64_t)p[full + i] << (8 * i);
  }
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- argon2id ---- */

/* libargon2's result codes as cairn codes: what the caller got wrong (a
 * parameter out of bounds, a string that does not decode), what the
 * machine lacked, and misuse of the library itself. */
static int argon2_to_cairn(int rc) {
  switch (rc) {
  case ARGON2_OK:
    return 0;
  case ARGON2_VERIFY_MISMATCH:
    return CAIRN_EAUTH;
  case ARGON2_MEMORY_ALLOCATION_ERROR:
  case ARGON2_THREAD_FAIL:
    return CAIRN_ENOMEM;
  case ARGON2_OUTPUT_PTR_NULL:
  case ARGON2_FREE_MEMORY_CBK_NULL:
  case ARGON2_ALLOCATE_MEMORY_CBK_NULL:
  case ARGON2_INCORRECT_TYPE:
  case ARGON2_OUT_PTR_MISMATCH:
  case ARGON2_MISSING_ARGS:
  case ARGON2_ENCODING_FAIL:
    return CAIRN_EINTERNAL;
  default:
    return CAIRN_EINVAL;
  }
}

/*
 * Validate the parameters (argon2 would too, but its answer for a huge
 * lane count is to start that many threads), hash with a fresh salt into a
 * local buffer, and copy out only on success.
 */
int gw_password_hash(const gw_argon2_params *p, const char *pw, size_t n, char *out,
                     size_t outlen) {
  if (p == NULL || out == NULL || (pw == NULL && n > 0) || n > GW_PASSWORD_MAX) {
    return CAIRN_EINVAL;
  }
  if (p->t_cost < ARGON2_MIN_TIME || p->lanes < 1 || p->lanes > MAX_LANES ||
      p->m_kib < 8 * p->lanes) {
    return CAIRN_EINVAL;
  }
  size_t need = argon2_encodedlen(p->t_cost, p->m_kib, p->lanes, SALT_LEN, TAG_LEN, Argon2_id);
  if (need > GW_PASSWORD_HASH_MAX) {
    return CAIRN_EINTERNAL;
  }
  if (outlen < need) {
    return CAIRN_ETOOBIG;
  }
  uint8_t salt[SALT_LEN];
  char buf[GW_PASSWORD_HASH_MAX];
  int rc = gw_random_bytes(salt, sizeof salt);
  if (rc < 0) {
    return rc;
  }
  int arc = argon2id_hash_encoded(p->t_cost, p->m_kib, p->lanes, n ? pw : "", n, salt,
                                  sizeof salt, TAG_LEN, buf, sizeof buf);
  rc = argon2_to_cairn(arc);
  if (rc == CAIRN_EINVAL || rc == CAIRN_EINTERNAL) {
    CMN_WARN("gw", "password hash failed error=\"%s\"", argon2_error_message(arc));
  }
  if (rc == 0) {
    memcpy(out, buf, strlen(buf) + 1);
  }
  OPENSSL_cleanse(salt, sizeof salt);
  OPENSSL_cleanse(buf, sizeof buf);
  return rc;
}

/*
 * argon2_verify re-derives the tag with the salt and parameters the string
 * records and compares in constant time. Only argon2id strings with a
 * 32-byte tag (43 base64 characters, as gw_password_hash writes) are
 * accepted: an argon2i or argon2d string, or one cut short (whose shorter
 * tag argon2 would happily check), is EINVAL, so a caller can tell a
 * damaged record from a wrong password.
 */
int gw_password_verify(const char *encoded, const char *pw, size_t n) {
  static const char prefix[] = "$argon2id$";
  if (encoded == NULL || (pw == NULL && n > 0)) {
    return CAIRN_EINVAL;
  }
  size_t elen = strnlen(encoded, ENCODED_MAX + 1);
  if (elen > ENCODED_MAX || strncmp(encoded, prefix, sizeof prefix - 1) != 0) {
    return CAIRN_EINVAL;
  }
  const char *tag = strrchr(encoded, '$');
  if (strlen(tag + 1) != GW_B64URL_LEN(TAG_LEN)) {
    return CAIRN_EINVAL;
  }
  if (n > GW_PASSWORD_MAX) {
    return CAIRN_EAUTH;
  }
  return argon2_to_cairn(argon2_verify(encoded, n ? pw : "", n, Argon2_id));
}
