/*
 * frame_msg.c - payload layouts of the data-plane control frames: one
 * encoder and one decoder per type (see cmn_frame.h for the rules).
 *
 * Layouts (little-endian; str8/str16 = u8/u16 byte count, then the bytes):
 *   HELLO       nonce[32] str8 server_id                        34..97
 *   AUTH        mac[32] client_nonce[32]                        64
 *   AUTH_OK     mac[32]                                         32
 *   ERROR       i32 code, str16 message                         6..262
 *   PING/PONG   u64 token                                       8
 *   PUSH_BEGIN  data_id[16] u64 total u32 crc u8 count,
 *               count x str8 "host:port"                        29..3869
 *   PUSH_END/ACK data_id[16] i32 status u64 bytes               28
 *   READ        u64 handle u64 version u64 offset u32 length    28
 *   READ_END    i32 status u64 total                            12
 *   CLONE       u64 handle u64 version                          16
 *
 * Each rule is written once and used by both directions: decoders check the
 * raw bytes of strings (a NUL inside a string must be seen before it is
 * copied into a C string) and then the same field checks the encoders run.
 */
#include "frame_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

/* Write a message into the caller's error buffer and return CAIRN_EPROTO. */
__attribute__((format(printf, 3, 4))) static int bad(char *err, size_t errlen, const char *fmt,
                                                     ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return CAIRN_EPROTO;
}

/* Exact payload size of a fixed layout: short payloads and trailing bytes
 * are both refused. */
static int want_len(const char *what, size_t len, size_t want, char *err, size_t errlen) {
  if (len < want) return bad(err, errlen, "%s payload is %zu bytes, short of %zu", what, len, want);
  if (len > want)
    return bad(err, errlen, "%s payload has %zu trailing bytes after %zu", what, len - want, want);
  return 0;
}

static bool all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++) acc |= p[i];
  return acc == 0;
}

/* Kinds of text: identifiers and addresses are visible ASCII only; ERROR
 * messages may also hold spaces and bytes >= 0x80 (UTF-8). Never control
 * bytes, so any of them can be logged as is. */
enum text_kind { TEXT_TOKEN, TEXT_MESSAGE };

/* Check `n` string bytes. `what` names the field in the message. */
static int check_text(const char *what, const uint8_t *s, size_t n, enum text_kind kind, char *err,
                      size_t errlen) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c == 0) return bad(err, errlen, "%s contains a NUL byte at offset %zu", what, i);
    bool ok = kind == TEXT_TOKEN ? (c > 0x20 && c < 0x7f) : (c >= 0x20 && c != 0x7f);
    if (!ok) return bad(err, errlen, "%s contains byte 0x%02x at offset %zu", what, c, i);
  }
  return 0;
}

/* A chain entry: visible ASCII "host:port", the port after the last ':'
 * being 1..65535 in decimal without leading zeros, the host non-empty. */
static int check_addr(size_t idx, const uint8_t *s, size_t n, char *err, size_t errlen) {
  char what[40];
  snprintf(what, sizeof what, "chain entry %zu", idx);
  if (n == 0) return bad(err, errlen, "%s is empty", what);
  if (n > CMN_FRAME_ADDR_MAX)
    return bad(err, errlen, "%s is %zu bytes, over %d", what, n, CMN_FRAME_ADDR_MAX);
  int rc = check_text(what, s, n, TEXT_TOKEN, err, errlen);
  if (rc < 0) return rc;
  size_t colon = n;
  while (colon > 0 && s[colon - 1] != ':') colon--;
  if (colon == 0) return bad(err, errlen, "%s has no ':port'", what);
  if (colon == 1) return bad(err, errlen, "%s has an empty host", what);
  size_t digits = n - colon;
  uint32_t port = 0;
  bool ok = digits >= 1 && digits <= 5 && s[colon] != '0';
  for (size_t i = colon; ok && i < n; i++) {
    ok = s[i] >= '0' && s[i] <= '9';
    port = port * 10 + (uint32_t)(s[i] - '0');
  }
  if (!ok || port > 65535) return bad(err, errlen, "%s has an invalid port", what);
  return 0;
}

/* A status: 0 or a negative code this build knows. */
static int check_status(const char *what, int32_t code, bool allow_zero, char *err, size_t errlen) {
  if (code == 0 && allow_zero) return 0;
  if (code >= 0 || !cairn_err_known(code))
    return bad(err, errlen, "%s %d is not a known error code", what, (int)code);
  return 0;
}

/* Length of a C string field of at most `max` bytes; `max + 1` when the
 * field holds more (or is not terminated inside its array). */
static size_t field_len(const char *s, size_t max) { return strnlen(s, max + 1); }

/* Size check for an encoder: the frame needs `plen` payload bytes. */
static int room(size_t cap, size_t plen) {
  return cap < CMN_FRAME_HEADER_SIZE + plen ? CAIRN_ETOOBIG : 0;
}

/* Write the header in front of a payload already at buf + 20. Returns the
 * frame size. */
static int seal(int type, uint8_t *buf, size_t plen) {
  int rc =
      cmn_frame_encode_header(type, plen, cmn_crc32c(0, buf + CMN_FRAME_HEADER_SIZE, plen), buf);
  return rc < 0 ? rc : (int)(CMN_FRAME_HEADER_SIZE + plen);
}

/* An encoder's field check failed: that is the caller's bad argument. */
#define ENC_CHECK(expr)                  \
  do {                                   \
    if ((expr) < 0) return CAIRN_EINVAL; \
  } while (0)

/* ------------------------------------------------------------ HELLO */

static int check_hello(const cmn_frame_hello *m, size_t idlen, char *err, size_t errlen) {
  if (all_zero(m->nonce, sizeof m->nonce)) return bad(err, errlen, "HELLO nonce is all zero");
  if (idlen == 0) return bad(err, errlen, "HELLO server id is empty");
  if (idlen > CMN_FRAME_SERVER_ID_MAX)
    return bad(err, errlen, "HELLO server id of %zu bytes is over %d", idlen,
               CMN_FRAME_SERVER_ID_MAX);
  return 0;
}

int cmn_frame_encode_hello(const cmn_frame_hello *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  size_t idlen = field_len(m->server_id, CMN_FRAME_SERVER_ID_MAX);
  ENC_CHECK(check_hello(m, idlen, NULL, 0));
  ENC_CHECK(check_text("server id", (const uint8_t *)m->server_id, idlen, TEXT_TOKEN, NULL, 0));
  size_t plen = CMN_FRAME_NONCE_SIZE + 1 + idlen;
  if (room(cap, plen) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  memcpy(p, m->nonce, CMN_FRAME_NONCE_SIZE);
  p[CMN_FRAME_NONCE_SIZE] = (uint8_t)idlen;
  memcpy(p + CMN_FRAME_NONCE_SIZE + 1, m->server_id, idlen);
  return seal(CMN_FRAME_HELLO, buf, plen);
}

int cmn_frame_decode_hello(const void *payload, size_t len, cmn_frame_hello *out, char *err,
                           size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "HELLO: no payload");
  if (len < CMN_FRAME_NONCE_SIZE + 1)
    return bad(err, errlen, "HELLO payload is %zu bytes, short of %d", len,
               CMN_FRAME_NONCE_SIZE + 1);
  size_t idlen = p[CMN_FRAME_NONCE_SIZE];
  memcpy(out->nonce, p, CMN_FRAME_NONCE_SIZE);
  int rc = check_hello(out, idlen, err, errlen);
  if (rc == 0) rc = want_len("HELLO", len, CMN_FRAME_NONCE_SIZE + 1 + idlen, err, errlen);
  if (rc == 0)
    rc =
        check_text("HELLO server id", p + CMN_FRAME_NONCE_SIZE + 1, idlen, TEXT_TOKEN, err, errlen);
  if (rc < 0) return rc;
  memcpy(out->server_id, p + CMN_FRAME_NONCE_SIZE + 1, idlen);
  out->server_id[idlen] = '\0';
  return 0;
}

/* ------------------------------------------------------------ AUTH, AUTH_OK */

int cmn_frame_encode_auth(const cmn_frame_auth *m, void *buf, size_t cap) {
  if (!m || !buf || all_zero(m->client_nonce, sizeof m->client_nonce)) return CAIRN_EINVAL;
  size_t plen = CMN_FRAME_MAC_SIZE + CMN_FRAME_NONCE_SIZE;
  if (room(cap, plen) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  memcpy(p, m->mac, CMN_FRAME_MAC_SIZE);
  memcpy(p + CMN_FRAME_MAC_SIZE, m->client_nonce, CMN_FRAME_NONCE_SIZE);
  return seal(CMN_FRAME_AUTH, buf, plen);
}

int cmn_frame_decode_auth(const void *payload, size_t len, cmn_frame_auth *out, char *err,
                          size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "AUTH: no payload");
  int rc = want_len("AUTH", len, CMN_FRAME_MAC_SIZE + CMN_FRAME_NONCE_SIZE, err, errlen);
  if (rc < 0) return rc;
  memcpy(out->mac, p, CMN_FRAME_MAC_SIZE);
  memcpy(out->client_nonce, p + CMN_FRAME_MAC_SIZE, CMN_FRAME_NONCE_SIZE);
  if (all_zero(out->client_nonce, CMN_FRAME_NONCE_SIZE))
    return bad(err, errlen, "AUTH client nonce is all zero");
  return 0;
}

int cmn_frame_encode_auth_ok(const cmn_frame_auth_ok *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  if (room(cap, CMN_FRAME_MAC_SIZE) < 0) return CAIRN_ETOOBIG;
  memcpy((uint8_t *)buf + CMN_FRAME_HEADER_SIZE, m->mac, CMN_FRAME_MAC_SIZE);
  return seal(CMN_FRAME_AUTH_OK, buf, CMN_FRAME_MAC_SIZE);
}

int cmn_frame_decode_auth_ok(const void *payload, size_t len, cmn_frame_auth_ok *out, char *err,
                             size_t errlen) {
  if (!payload || !out) return bad(err, errlen, "AUTH_OK: no payload");
  int rc = want_len("AUTH_OK", len, CMN_FRAME_MAC_SIZE, err, errlen);
  if (rc < 0) return rc;
  memcpy(out->mac, payload, CMN_FRAME_MAC_SIZE);
  return 0;
}

/* ------------------------------------------------------------ ERROR */

int cmn_frame_encode_error(const cmn_frame_error *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  size_t mlen = field_len(m->message, CMN_FRAME_MESSAGE_MAX);
  if (mlen > CMN_FRAME_MESSAGE_MAX) return CAIRN_EINVAL;
  ENC_CHECK(check_status("ERROR code", m->code, false, NULL, 0));
  ENC_CHECK(check_text("message", (const uint8_t *)m->message, mlen, TEXT_MESSAGE, NULL, 0));
  size_t plen = 4 + 2 + mlen;
  if (room(cap, plen) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  xx_frame_put_u32(p, (uint32_t)m->code);
  xx_frame_put_u16(p + 4, (uint16_t)mlen);
  memcpy(p + 6, m->message, mlen);
  return seal(CMN_FRAME_ERROR, buf, plen);
}

int cmn_frame_decode_error(const void *payload, size_t len, cmn_frame_error *out, char *err,
                           size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "ERROR: no payload");
  if (len < 6) return bad(err, errlen, "ERROR payload is %zu bytes, short of 6", len);
  out->code = (int32_t)xx_frame_get_u32(p);
  size_t mlen = xx_frame_get_u16(p + 4);
  int rc = check_status("ERROR code", out->code, false, err, errlen);
  if (rc == 0 && mlen > CMN_FRAME_MESSAGE_MAX)
    rc = bad(err, errlen, "ERROR message of %zu bytes is over %d", mlen, CMN_FRAME_MESSAGE_MAX);
  if (rc == 0) rc = want_len("ERROR", len, 6 + mlen, err, errlen);
  if (rc == 0) rc = check_text("ERROR message", p + 6, mlen, TEXT_MESSAGE, err, errlen);
  if (rc < 0) return rc;
  memcpy(out->message, p + 6, mlen);
  out->message[mlen] = '\0';
  return 0;
}

/*
 * Build an ERROR from a printf message. Meant for the paths that refuse a
 * peer, so it cannot fail on content: unknown codes become EINTERNAL and
 * bytes the decoder would refuse become '?'.
 */
int cmn_frame_encode_errorf(int code, void *buf, size_t cap, const char *fmt, ...) {
  cmn_frame_error m;
  m.code = (code < 0 && cairn_err_known(code)) ? code : CAIRN_EINTERNAL;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m.message, sizeof m.message, fmt, ap);
  va_end(ap);
  for (char *c = m.message; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  return cmn_frame_encode_error(&m, buf, cap);
}

/* ------------------------------------------------------------ PING, PONG */

static int encode_token(int type, const cmn_frame_ping *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  if (room(cap, 8) < 0) return CAIRN_ETOOBIG;
  xx_frame_put_u64((uint8_t *)buf + CMN_FRAME_HEADER_SIZE, m->token);
  return seal(type, buf, 8);
}

static int decode_token(const char *what, const void *payload, size_t len, cmn_frame_ping *out,
                        char *err, size_t errlen) {
  if (!payload || !out) return bad(err, errlen, "%s: no payload", what);
  int rc = want_len(what, len, 8, err, errlen);
  if (rc < 0) return rc;
  out->token = xx_frame_get_u64(payload);
  return 0;
}

int cmn_frame_encode_ping(const cmn_frame_ping *m, void *buf, size_t cap) {
  return encode_token(CMN_FRAME_PING, m, buf, cap);
}
int cmn_frame_decode_ping(const void *payload, size_t len, cmn_frame_ping *out, char *err,
                          size_t errlen) {
  return decode_token("PING", payload, len, out, err, errlen);
}
int cmn_frame_encode_pong(const cmn_frame_ping *m, void *buf, size_t cap) {
  return encode_token(CMN_FRAME_PONG, m, buf, cap);
}
int cmn_frame_decode_pong(const void *payload, size_t len, cmn_frame_ping *out, char *err,
                          size_t errlen) {
  return decode_token("PONG", payload, len, out, err, errlen);
}

/* ------------------------------------------------------------ PUSH_BEGIN */

static int check_push_begin(const cmn_frame_push_begin *m, char *err, size_t errlen) {
  if (all_zero(m->data_id, CMN_FRAME_DATA_ID_SIZE))
    return bad(err, errlen, "PUSH_BEGIN data id is all zero");
  if (m->total_len == 0 || m->total_len > CMN_FRAME_CHUNK_MAX)
    return bad(err, errlen, "PUSH_BEGIN total length %llu is outside 1..%llu",
               (unsigned long long)m->total_len, (unsigned long long)CMN_FRAME_CHUNK_MAX);
  if (m->chain_count > CMN_FRAME_CHAIN_MAX)
    return bad(err, errlen, "PUSH_BEGIN chain has %u entries, at most %d", m->chain_count,
               CMN_FRAME_CHAIN_MAX);
  return 0;
}

static int check_place(const cmn_frame_place *pl, char *err, size_t errlen) {
  if (pl->handle == 0 || pl->version == 0)
    return bad(err, errlen, "PUSH_BEGIN placement has handle %llu, version %llu: neither may be 0",
               (unsigned long long)pl->handle, (unsigned long long)pl->version);
  if (pl->offset != CMN_FRAME_PLACE_END && pl->offset >= CMN_FRAME_CHUNK_MAX)
    return bad(err, errlen, "PUSH_BEGIN placement offset %llu is outside the chunk",
               (unsigned long long)pl->offset);
  return 0;
}

int cmn_frame_encode_push_begin(const cmn_frame_push_begin *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  ENC_CHECK(check_push_begin(m, NULL, 0));
  size_t plen = 29, lens[CMN_FRAME_CHAIN_MAX];
  for (uint32_t i = 0; i < m->chain_count; i++) {
    lens[i] = field_len(m->chain[i], CMN_FRAME_ADDR_MAX);
    ENC_CHECK(check_addr(i, (const uint8_t *)m->chain[i], lens[i], NULL, 0));
    plen += 1 + lens[i];
  }
  if (m->has_place) {
    ENC_CHECK(check_place(&m->place, NULL, 0));
    plen += CMN_FRAME_PLACE_SIZE;
  }
  if (room(cap, plen) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  memcpy(p, m->data_id, CMN_FRAME_DATA_ID_SIZE);
  xx_frame_put_u64(p + 16, m->total_len);
  xx_frame_put_u32(p + 24, m->crc32c);
  p[28] = (uint8_t)m->chain_count;
  size_t off = 29;
  for (uint32_t i = 0; i < m->chain_count; i++) {
    p[off++] = (uint8_t)lens[i];
    memcpy(p + off, m->chain[i], lens[i]);
    off += lens[i];
  }
  if (m->has_place) {
    p[off] = 1;
    xx_frame_put_u64(p + off + 1, m->place.handle);
    xx_frame_put_u64(p + off + 9, m->place.version);
    xx_frame_put_u64(p + off + 17, m->place.offset);
  }
  return seal(CMN_FRAME_PUSH_BEGIN, buf, plen);
}

/* Walk the chain entries: each a u8 length and that many bytes, checked
 * before being copied; then either the payload ends, or the placement
 * (tag 1 and three u64) ends it exactly. */
int cmn_frame_decode_push_begin(const void *payload, size_t len, cmn_frame_push_begin *out,
                                char *err, size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "PUSH_BEGIN: no payload");
  if (len < 29) return bad(err, errlen, "PUSH_BEGIN payload is %zu bytes, short of 29", len);
  memcpy(out->data_id, p, CMN_FRAME_DATA_ID_SIZE);
  out->total_len = xx_frame_get_u64(p + 16);
  out->crc32c = xx_frame_get_u32(p + 24);
  out->chain_count = p[28];
  int rc = check_push_begin(out, err, errlen);
  if (rc < 0) return rc;
  size_t off = 29;
  for (uint32_t i = 0; i < out->chain_count; i++) {
    if (off >= len)
      return bad(err, errlen, "PUSH_BEGIN payload ends before chain entry %u of %u", i,
                 out->chain_count);
    size_t n = p[off++];
    if (n > len - off)
      return bad(err, errlen, "PUSH_BEGIN chain entry %u of %zu bytes runs past the payload end", i,
                 n);
    rc = check_addr(i, p + off, n, err, errlen);
    if (rc < 0) return rc;
    memcpy(out->chain[i], p + off, n);
    out->chain[i][n] = '\0';
    off += n;
  }
  out->has_place = false;
  if (off == len) return 0;
  if (len - off != CMN_FRAME_PLACE_SIZE || p[off] != 1)
    return bad(err, errlen, "PUSH_BEGIN payload has %zu trailing bytes after the chain that are "
               "not a placement", len - off);
  out->has_place = true;
  out->place.handle = xx_frame_get_u64(p + off + 1);
  out->place.version = xx_frame_get_u64(p + off + 9);
  out->place.offset = xx_frame_get_u64(p + off + 17);
  return check_place(&out->place, err, errlen);
}

/* ------------------------------------------------------------ PUSH_END, PUSH_ACK */

static int check_push_end(const char *what, const cmn_frame_push_end *m, char *err, size_t errlen) {
  if (all_zero(m->data_id, CMN_FRAME_DATA_ID_SIZE))
    return bad(err, errlen, "%s data id is all zero", what);
  char label[32];
  snprintf(label, sizeof label, "%s status", what);
  int rc = check_status(label, m->status, true, err, errlen);
  if (rc < 0) return rc;
  if (m->bytes > CMN_FRAME_CHUNK_MAX)
    return bad(err, errlen, "%s byte count %llu is over %llu", what, (unsigned long long)m->bytes,
               (unsigned long long)CMN_FRAME_CHUNK_MAX);
  return 0;
}

static int encode_push_end(int type, const cmn_frame_push_end *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  ENC_CHECK(check_push_end("PUSH_END", m, NULL, 0));
  if (room(cap, 28) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  memcpy(p, m->data_id, CMN_FRAME_DATA_ID_SIZE);
  xx_frame_put_u32(p + 16, (uint32_t)m->status);
  xx_frame_put_u64(p + 20, m->bytes);
  return seal(type, buf, 28);
}

static int decode_push_end(const char *what, const void *payload, size_t len,
                           cmn_frame_push_end *out, char *err, size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "%s: no payload", what);
  int rc = want_len(what, len, 28, err, errlen);
  if (rc < 0) return rc;
  memcpy(out->data_id, p, CMN_FRAME_DATA_ID_SIZE);
  out->status = (int32_t)xx_frame_get_u32(p + 16);
  out->bytes = xx_frame_get_u64(p + 20);
  return check_push_end(what, out, err, errlen);
}

int cmn_frame_encode_push_end(const cmn_frame_push_end *m, void *buf, size_t cap) {
  return encode_push_end(CMN_FRAME_PUSH_END, m, buf, cap);
}
int cmn_frame_decode_push_end(const void *payload, size_t len, cmn_frame_push_end *out, char *err,
                              size_t errlen) {
  return decode_push_end("PUSH_END", payload, len, out, err, errlen);
}
int cmn_frame_encode_push_ack(const cmn_frame_push_end *m, void *buf, size_t cap) {
  return encode_push_end(CMN_FRAME_PUSH_ACK, m, buf, cap);
}
int cmn_frame_decode_push_ack(const void *payload, size_t len, cmn_frame_push_end *out, char *err,
                              size_t errlen) {
  return decode_push_end("PUSH_ACK", payload, len, out, err, errlen);
}

/* ------------------------------------------------------------ READ, READ_END, CLONE */

static int check_replica(const char *what, uint64_t handle, uint64_t version, char *err,
                         size_t errlen) {
  if (handle == 0) return bad(err, errlen, "%s chunk handle is 0", what);
  if (version == 0) return bad(err, errlen, "%s chunk version is 0", what);
  return 0;
}

static int check_read(const cmn_frame_read *m, char *err, size_t errlen) {
  int rc = check_replica("READ", m->handle, m->version, err, errlen);
  if (rc < 0) return rc;
  if (m->length == 0) return bad(err, errlen, "READ length is 0");
  if (m->offset > CMN_FRAME_CHUNK_MAX - m->length)
    return bad(err, errlen, "READ range %llu+%u is past the largest chunk",
               (unsigned long long)m->offset, m->length);
  return 0;
}

int cmn_frame_encode_read(const cmn_frame_read *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  ENC_CHECK(check_read(m, NULL, 0));
  if (room(cap, 28) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  xx_frame_put_u64(p, m->handle);
  xx_frame_put_u64(p + 8, m->version);
  xx_frame_put_u64(p + 16, m->offset);
  xx_frame_put_u32(p + 24, m->length);
  return seal(CMN_FRAME_READ, buf, 28);
}

int cmn_frame_decode_read(const void *payload, size_t len, cmn_frame_read *out, char *err,
                          size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "READ: no payload");
  int rc = want_len("READ", len, 28, err, errlen);
  if (rc < 0) return rc;
  out->handle = xx_frame_get_u64(p);
  out->version = xx_frame_get_u64(p + 8);
  out->offset = xx_frame_get_u64(p + 16);
  out->length = xx_frame_get_u32(p + 24);
  return check_read(out, err, errlen);
}

static int check_read_end(const cmn_frame_read_end *m, char *err, size_t errlen) {
  int rc = check_status("READ_END status", m->status, true, err, errlen);
  if (rc < 0) return rc;
  if (m->total > CMN_FRAME_CHUNK_MAX)
    return bad(err, errlen, "READ_END total %llu is over %llu", (unsigned long long)m->total,
               (unsigned long long)CMN_FRAME_CHUNK_MAX);
  return 0;
}

int cmn_frame_encode_read_end(const cmn_frame_read_end *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  ENC_CHECK(check_read_end(m, NULL, 0));
  if (room(cap, 12) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  xx_frame_put_u32(p, (uint32_t)m->status);
  xx_frame_put_u64(p + 4, m->total);
  return seal(CMN_FRAME_READ_END, buf, 12);
}

int cmn_frame_decode_read_end(const void *payload, size_t len, cmn_frame_read_end *out, char *err,
                              size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "READ_END: no payload");
  int rc = want_len("READ_END", len, 12, err, errlen);
  if (rc < 0) return rc;
  out->status = (int32_t)xx_frame_get_u32(p);
  out->total = xx_frame_get_u64(p + 4);
  return check_read_end(out, err, errlen);
}

int cmn_frame_encode_clone(const cmn_frame_clone *m, void *buf, size_t cap) {
  if (!m || !buf) return CAIRN_EINVAL;
  ENC_CHECK(check_replica("CLONE", m->handle, m->version, NULL, 0));
  if (room(cap, 16) < 0) return CAIRN_ETOOBIG;
  uint8_t *p = (uint8_t *)buf + CMN_FRAME_HEADER_SIZE;
  xx_frame_put_u64(p, m->handle);
  xx_frame_put_u64(p + 8, m->version);
  return seal(CMN_FRAME_CLONE, buf, 16);
}

int cmn_frame_decode_clone(const void *payload, size_t len, cmn_frame_clone *out, char *err,
                           size_t errlen) {
  const uint8_t *p = payload;
  if (!p || !out) return bad(err, errlen, "CLONE: no payload");
  int rc = want_len("CLONE", len, 16, err, errlen);
  if (rc < 0) return rc;
  out->handle = xx_frame_get_u64(p);
  out->version = xx_frame_get_u64(p + 8);
  return check_replica("CLONE", out->handle, out->version, err, errlen);
}
