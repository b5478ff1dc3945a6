/*
 * presign.c - signatures of presigned document links (see gw_presign.h).
 */
#include "gw_presign.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "cairn_error.h"
#include "gw_crypto.h"

#define MSG_MAX (GW_PRESIGN_METHOD_MAX + GW_PRESIGN_ID_MAX + 32)

/* 1 when s is a non-empty string of at most max bytes without a newline. */
static int field_ok(const char *s, size_t max) {
  if (s == NULL) {
    return 0;
  }
  size_t n = strnlen(s, max + 1);
  return n > 0 && n <= max && memchr(s, '\n', n) == NULL;
}

/* The MAC of the signed message; 0, or CAIRN_EINVAL for refused fields. */
static int link_mac(const uint8_t key[32], const char *method, const char *doc_id,
                    int64_t expires_s, uint8_t mac[32]) {
  if (!field_ok(method, GW_PRESIGN_METHOD_MAX) || !field_ok(doc_id, GW_PRESIGN_ID_MAX)) {
    return CAIRN_EINVAL;
  }
  char msg[MSG_MAX];
  int n = snprintf(msg, sizeof msg, "%s\n%s\n%" PRId64, method, doc_id, expires_s);
  if (n < 0 || (size_t)n >= sizeof msg) {
    return CAIRN_EINVAL;
  }
  gw_hmac_sha256(key, 32, msg, (size_t)n, mac);
  return 0;
}

int gw_presign_make(const uint8_t key[32], const char *method, const char *doc_id,
                    int64_t expires_s, char *sig, size_t siglen) {
  if (key == NULL || sig == NULL) {
    return CAIRN_EINVAL;
  }
  uint8_t mac[32];
  int rc = link_mac(key, method, doc_id, expires_s, mac);
  if (rc < 0) {
    return rc;
  }
  if (siglen < GW_PRESIGN_SIG_LEN + 1) {
    return CAIRN_ETOOBIG;
  }
  return gw_b64url_encode(mac, sizeof mac, sig, siglen);
}

/*
 * The signature is decoded strictly (exactly 43 characters, canonical) and
 * the 32 bytes compared in constant time; the expiry is looked at only
 * once the signature holds, since an unsigned expiry means nothing.
 */
int gw_presign_check(const uint8_t key[32], const char *method, const char *doc_id,
                     int64_t expires_s, const char *sig, int64_t now_s, int *expired) {
  if (expired) {
    *expired = 0;
  }
  if (key == NULL) {
    return CAIRN_EINVAL;
  }
  uint8_t want[32], got[32];
  if (sig == NULL || strnlen(sig, GW_PRESIGN_SIG_LEN + 1) != GW_PRESIGN_SIG_LEN ||
      gw_b64url_decode(sig, GW_PRESIGN_SIG_LEN, got, sizeof got) != 32 ||
      link_mac(key, method, doc_id, expires_s, want) < 0 ||
      CRYPTO_memcmp(want, got, sizeof want) != 0) {
    return CAIRN_EPERM;
  }
  if (expires_s <= now_s) {
    if (expired) {
      *expired = 1;
    }
    return CAIRN_EPERM;
  }
  return 0;
}
