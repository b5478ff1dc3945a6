/*
 * frame_auth.c - the data-plane handshake: HMAC-SHA256 challenge on the
 * cluster secret, both ways, and one small state machine per side.
 *
 *   server                                 client
 *   HELLO(server nonce, server id)  ---->  EXPECT_HELLO
 *   EXPECT_AUTH                     <----  AUTH(mac1, client nonce)
 *   verify mac1; AUTH_OK(mac2)      ---->  EXPECT_AUTH_OK: verify mac2
 *   DONE                                   DONE
 *
 *   mac1 = HMAC(secret, server nonce || "cairn-data-v1" || client nonce)
 *   mac2 = HMAC(secret, client nonce || "cairn-data-ok" || server nonce)
 *
 * Fresh nonces on both sides make every MAC single-use: an AUTH recorded on
 * one connection fails on any other (new server nonce), and an AUTH_OK
 * recorded earlier fails for a new client nonce. The labels have the same
 * length and position, so no mac1 can ever equal a mac2 message (no
 * reflection of a client's AUTH back to it as an AUTH_OK).
 *
 * Scope: the handshake proves that both ends hold the secret; it neither
 * encrypts nor authenticates the frames after it (each frame has a CRC
 * against corruption, not a MAC against tampering).
 */
#include "frame_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static const char label_auth[] = "cairn-data-v1";
static const char label_ok[] = "cairn-data-ok";
#define LABEL_LEN (sizeof label_auth - 1)
_Static_assert(sizeof label_auth == sizeof label_ok, "handshake labels must have one length");

/* HMAC-SHA256(secret, first || label || second). */
static int mac_of(const char *secret, const uint8_t *first, const char *label,
                  const uint8_t *second, uint8_t out[CMN_FRAME_MAC_SIZE]) {
  size_t klen = secret ? strlen(secret) : 0;
  if (klen == 0 || klen > INT_MAX || !first || !second || !out) return CAIRN_EINVAL;
  uint8_t msg[2 * CMN_FRAME_NONCE_SIZE + LABEL_LEN];
  memcpy(msg, first, CMN_FRAME_NONCE_SIZE);
  memcpy(msg + CMN_FRAME_NONCE_SIZE, label, LABEL_LEN);
  memcpy(msg + CMN_FRAME_NONCE_SIZE + LABEL_LEN, second, CMN_FRAME_NONCE_SIZE);
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), secret, (int)klen, msg, sizeof msg, out, &n) || n != CMN_FRAME_MAC_SIZE)
    return CAIRN_EINTERNAL;
  return 0;
}

/* Recompute and compare in constant time. */
static int mac_verify(const char *secret, const uint8_t *first, const char *label,
                      const uint8_t *second, const uint8_t *mac) {
  uint8_t want[CMN_FRAME_MAC_SIZE];
  if (!mac) return CAIRN_EINVAL;
  int rc = mac_of(secret, first, label, second, want);
  if (rc < 0) return rc;
  return cmn_ct_equal(want, mac, CMN_FRAME_MAC_SIZE) ? 0 : CAIRN_EAUTH;
}

int cmn_frame_auth_compute(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                           const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                           uint8_t out[CMN_FRAME_MAC_SIZE]) {
  return mac_of(secret, server_nonce, label_auth, client_nonce, out);
}

int cmn_frame_auth_verify(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                          const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                          const uint8_t mac[CMN_FRAME_MAC_SIZE]) {
  return mac_verify(secret, server_nonce, label_auth, client_nonce, mac);
}

int cmn_frame_auth_ok_compute(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                              const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                              uint8_t out[CMN_FRAME_MAC_SIZE]) {
  return mac_of(secret, client_nonce, label_ok, server_nonce, out);
}

int cmn_frame_auth_ok_verify(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                             const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                             const uint8_t mac[CMN_FRAME_MAC_SIZE]) {
  return mac_verify(secret, client_nonce, label_ok, server_nonce, mac);
}

/* ------------------------------------------------------------ state machines */

/*
 * Refuse the peer: the handshake becomes FAILED for good with `code`. A
 * server also writes an ERROR frame telling the client why, so a
 * misconfigured client logs a clear cause instead of a bare disconnect.
 */
__attribute__((format(printf, 5, 6))) static int hs_fail(cmn_frame_hs *hs, int code, void *buf,
                                                         size_t *out_len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(hs->errmsg, sizeof hs->errmsg, fmt, ap);
  va_end(ap);
  hs->state = CMN_FRAME_HS_FAILED;
  hs->error = code;
  if (hs->is_server) {
    int n = cmn_frame_encode_errorf(code, buf, CMN_FRAME_CTRL_FRAME_MAX, "%s", hs->errmsg);
    if (n > 0) *out_len = (size_t)n;
  }
  return code;
}

/* The peer sent an ERROR during the handshake: adopt its code. */
static int hs_peer_error(cmn_frame_hs *hs, const cmn_frame *f, void *buf, size_t *out_len) {
  cmn_frame_error e;
  char why[128];
  if (cmn_frame_decode_error(f->payload, f->len, &e, why, sizeof why) < 0)
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "malformed ERROR from peer: %s", why);
  /* Not hs_fail: an ERROR is never answered with an ERROR. */
  snprintf(hs->errmsg, sizeof hs->errmsg, "peer refused the handshake: %s (%s)", e.message,
           cairn_err_name(e.code));
  hs->state = CMN_FRAME_HS_FAILED;
  hs->error = e.code;
  return e.code;
}

int cmn_frame_hs_server_start(cmn_frame_hs *hs, const char *secret, const char *server_id,
                              void *buf, size_t cap) {
  if (!hs || !secret || !*secret || !server_id || !buf) return CAIRN_EINVAL;
  size_t idlen = strnlen(server_id, CMN_FRAME_SERVER_ID_MAX + 1);
  if (idlen == 0 || idlen > CMN_FRAME_SERVER_ID_MAX) return CAIRN_EINVAL;
  memset(hs, 0, sizeof *hs);
  hs->is_server = true;
  hs->secret = secret;
  memcpy(hs->server_id, server_id, idlen);
  int rc = cmn_random_bytes(hs->server_nonce, sizeof hs->server_nonce);
  if (rc < 0) return rc;
  cmn_frame_hello h;
  memcpy(h.nonce, hs->server_nonce, sizeof h.nonce);
  memcpy(h.server_id, hs->server_id, sizeof h.server_id);
  rc = cmn_frame_encode_hello(&h, buf, cap);
  if (rc < 0) return rc;
  hs->state = CMN_FRAME_HS_EXPECT_AUTH;
  return rc;
}

int cmn_frame_hs_client_start(cmn_frame_hs *hs, const char *secret, const char *expect_server_id) {
  if (!hs || !secret || !*secret) return CAIRN_EINVAL;
  size_t idlen = expect_server_id ? strnlen(expect_server_id, CMN_FRAME_SERVER_ID_MAX + 1) : 0;
  if (idlen > CMN_FRAME_SERVER_ID_MAX) return CAIRN_EINVAL;
  memset(hs, 0, sizeof *hs);
  hs->secret = secret;
  if (idlen) memcpy(hs->expect_id, expect_server_id, idlen);
  hs->state = CMN_FRAME_HS_EXPECT_HELLO;
  return 0;
}

/* Server, EXPECT_AUTH: check the client's MAC over our nonce and its own,
 * then prove the secret back with AUTH_OK. */
static int server_on_auth(cmn_frame_hs *hs, const cmn_frame *f, void *buf, size_t *out_len) {
  cmn_frame_auth a;
  char why[128];
  if (f->type != CMN_FRAME_AUTH)
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "expected AUTH, got %s",
                   cmn_frame_type_name(f->type));
  if (cmn_frame_decode_auth(f->payload, f->len, &a, why, sizeof why) < 0)
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "malformed AUTH: %s", why);
  int rc = cmn_frame_auth_verify(hs->secret, hs->server_nonce, a.client_nonce, a.mac);
  if (rc == CAIRN_EAUTH)
    return hs_fail(hs, CAIRN_EAUTH, buf, out_len, "wrong cluster secret (AUTH mac mismatch)");
  if (rc < 0) return hs_fail(hs, rc, buf, out_len, "cannot verify AUTH: %s", cairn_strerror(rc));
  memcpy(hs->client_nonce, a.client_nonce, sizeof hs->client_nonce);
  cmn_frame_auth_ok ok;
  rc = cmn_frame_auth_ok_compute(hs->secret, hs->server_nonce, hs->client_nonce, ok.mac);
  if (rc < 0) return hs_fail(hs, rc, buf, out_len, "cannot compute AUTH_OK");
  int n = cmn_frame_encode_auth_ok(&ok, buf, CMN_FRAME_CTRL_FRAME_MAX);
  if (n < 0) return hs_fail(hs, n, buf, out_len, "cannot encode AUTH_OK");
  *out_len = (size_t)n;
  hs->state = CMN_FRAME_HS_DONE;
  return 1;
}

/* Client, EXPECT_HELLO: learn the server's nonce and id, answer with AUTH. */
static int client_on_hello(cmn_frame_hs *hs, const cmn_frame *f, void *buf, size_t *out_len) {
  cmn_frame_hello h;
  char why[128];
  if (f->type != CMN_FRAME_HELLO)
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "expected HELLO, got %s",
                   cmn_frame_type_name(f->type));
  if (cmn_frame_decode_hello(f->payload, f->len, &h, why, sizeof why) < 0)
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "malformed HELLO: %s", why);
  if (hs->expect_id[0] && strcmp(hs->expect_id, h.server_id) != 0)
    return hs_fail(hs, CAIRN_EAUTH, buf, out_len, "connected to server %s, expected %s",
                   h.server_id, hs->expect_id);
  memcpy(hs->server_id, h.server_id, sizeof hs->server_id);
  memcpy(hs->server_nonce, h.nonce, sizeof hs->server_nonce);
  int rc = cmn_random_bytes(hs->client_nonce, sizeof hs->client_nonce);
  if (rc < 0) return hs_fail(hs, rc, buf, out_len, "no randomness for the client nonce");
  cmn_frame_auth a;
  memcpy(a.client_nonce, hs->client_nonce, sizeof a.client_nonce);
  rc = cmn_frame_auth_compute(hs->secret, hs->server_nonce, hs->client_nonce, a.mac);
  if (rc < 0) return hs_fail(hs, rc, buf, out_len, "cannot compute AUTH");
  int n = cmn_frame_encode_auth(&a, buf, CMN_FRAME_CTRL_FRAME_MAX);
  if (n < 0) return hs_fail(hs, n, buf, out_len, "cannot encode AUTH");
  *out_len = (size_t)n;
  hs->state = CMN_FRAME_HS_EXPECT_AUTH_OK;
  return 0;
}

/* Client, EXPECT_AUTH_OK: the server must prove the secret too. */
static int client_on_auth_ok(cmn_frame_hs *hs, const cmn_frame *f, void *buf, size_t *out_len) {
  cmn_frame_auth_ok ok;
  char why[128];
  if (f->type != CMN_FRAME_AUTH_OK)
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "expected AUTH_OK, got %s",
                   cmn_frame_type_name(f->type));
  if (cmn_frame_decode_auth_ok(f->payload, f->len, &ok, why, sizeof why) < 0)
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "malformed AUTH_OK: %s", why);
  int rc = cmn_frame_auth_ok_verify(hs->secret, hs->server_nonce, hs->client_nonce, ok.mac);
  if (rc == CAIRN_EAUTH)
    return hs_fail(hs, CAIRN_EAUTH, buf, out_len,
                   "server %s did not prove the cluster secret (AUTH_OK mac mismatch)",
                   hs->server_id);
  if (rc < 0) return hs_fail(hs, rc, buf, out_len, "cannot verify AUTH_OK");
  hs->state = CMN_FRAME_HS_DONE;
  return 1;
}

/*
 * Dispatch on the state. Data frames, pieces and ERROR frames are handled
 * here once for both sides; the per-state functions see only whole
 * control frames that are not ERROR.
 */
int cmn_frame_hs_on_frame(cmn_frame_hs *hs, const cmn_frame *f, void *buf, size_t cap,
                          size_t *out_len) {
  if (out_len) *out_len = 0;
  if (!hs || !f || !buf || !out_len || cap < CMN_FRAME_CTRL_FRAME_MAX) return CAIRN_EINVAL;
  switch (hs->state) {
    case CMN_FRAME_HS_FAILED: return hs->error;
    case CMN_FRAME_HS_DONE: return CAIRN_EPROTO;
    case CMN_FRAME_HS_IDLE: return CAIRN_EINVAL;
    default: break;
  }
  if (!cmn_frame_type_name(f->type) || cmn_frame_type_is_data(f->type) || !f->end ||
      (!f->payload && f->len))
    return hs_fail(hs, CAIRN_EPROTO, buf, out_len, "data or partial frame during the handshake");
  if (f->type == CMN_FRAME_ERROR) return hs_peer_error(hs, f, buf, out_len);
  switch (hs->state) {
    case CMN_FRAME_HS_EXPECT_AUTH: return server_on_auth(hs, f, buf, out_len);
    case CMN_FRAME_HS_EXPECT_HELLO: return client_on_hello(hs, f, buf, out_len);
    case CMN_FRAME_HS_EXPECT_AUTH_OK: return client_on_auth_ok(hs, f, buf, out_len);
    default: return CAIRN_EINTERNAL;
  }
}
