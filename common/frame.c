/*
 * frame.c - data-plane frames: the type table, header encoding and the
 * incremental parser (see cmn_frame.h for the format and the memory rules).
 *
 * The parser is a two-state machine, HEADER and PAYLOAD, plus a terminal
 * FAILED state:
 *
 *   HEADER --20 bytes, all checks pass--> PAYLOAD --frame done--> HEADER
 *     |                                      |
 *     +------- any fault --> FAILED <--------+  (bad payload CRC)
 *
 * In HEADER, bytes are gathered into a 20-byte array (a header may arrive
 * one byte at a time); the magic is checked per byte so garbage fails at
 * its first byte. In PAYLOAD, control frames are gathered (or, when the
 * slice holds the whole payload, pointed at in place) and data frames are
 * handed out piece by piece as they arrive.
 */
#include "frame_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ type table */

/* Payload length of each type: fixed layouts have min == max; see
 * frame_msg.c for the field layouts. */
static const xx_frame_type_info type_table[256] = {
    [CMN_FRAME_HELLO] = {"HELLO", CMN_FRAME_NONCE_SIZE + 1 + 1,
                         CMN_FRAME_NONCE_SIZE + 1 + CMN_FRAME_SERVER_ID_MAX, false},
    [CMN_FRAME_AUTH] = {"AUTH", CMN_FRAME_MAC_SIZE + CMN_FRAME_NONCE_SIZE,
                        CMN_FRAME_MAC_SIZE + CMN_FRAME_NONCE_SIZE, false},
    [CMN_FRAME_AUTH_OK] = {"AUTH_OK", CMN_FRAME_MAC_SIZE, CMN_FRAME_MAC_SIZE, false},
    [CMN_FRAME_ERROR] = {"ERROR", 4 + 2, 4 + 2 + CMN_FRAME_MESSAGE_MAX, false},
    [CMN_FRAME_PING] = {"PING", 8, 8, false},
    [CMN_FRAME_PONG] = {"PONG", 8, 8, false},
    [CMN_FRAME_PUSH_BEGIN] = {"PUSH_BEGIN", 29, CMN_FRAME_CTRL_PAYLOAD_MAX, false},
    [CMN_FRAME_PUSH_DATA] = {"PUSH_DATA", 1, CMN_FRAME_DATA_MAX, true},
    [CMN_FRAME_PUSH_END] = {"PUSH_END", 28, 28, false},
    [CMN_FRAME_PUSH_ACK] = {"PUSH_ACK", 28, 28, false},
    [CMN_FRAME_READ] = {"READ", 28, 28, false},
    [CMN_FRAME_READ_DATA] = {"READ_DATA", 1, CMN_FRAME_DATA_MAX, true},
    [CMN_FRAME_READ_END] = {"READ_END", 12, 12, false},
    [CMN_FRAME_CLONE] = {"CLONE", 16, 16, false},
};

const xx_frame_type_info *xx_frame_type_info_of(int type) {
  if (type < 0 || type > 255 || !type_table[type].name) return NULL;
  return &type_table[type];
}

const char *cmn_frame_type_name(int type) {
  const xx_frame_type_info *t = xx_frame_type_info_of(type);
  return t ? t->name : NULL;
}

int cmn_frame_type_is_data(int type) {
  const xx_frame_type_info *t = xx_frame_type_info_of(type);
  return t && t->is_data;
}

const char *cmn_frame_fault_name(cmn_frame_fault f) {
  switch (f) {
    case CMN_FRAME_FAULT_NONE: return "none";
    case CMN_FRAME_FAULT_MAGIC: return "bad magic";
    case CMN_FRAME_FAULT_VERSION: return "unsupported version";
    case CMN_FRAME_FAULT_HEADER_CRC: return "header crc mismatch";
    case CMN_FRAME_FAULT_TYPE: return "unknown frame type";
    case CMN_FRAME_FAULT_RESERVED: return "reserved bits set";
    case CMN_FRAME_FAULT_TOO_LONG: return "length over maximum";
    case CMN_FRAME_FAULT_LENGTH: return "bad length for type";
    case CMN_FRAME_FAULT_PAYLOAD_CRC: return "payload crc mismatch";
  }
  return "unknown fault";
}

/* ------------------------------------------------------------ header */

int cmn_frame_encode_header(int type, size_t len, uint32_t payload_crc,
                            uint8_t hdr[CMN_FRAME_HEADER_SIZE]) {
  const xx_frame_type_info *t = xx_frame_type_info_of(type);
  if (!t || !hdr || len < t->min_len || len > t->max_len) return CAIRN_EINVAL;
  xx_frame_put_u32(hdr, CMN_FRAME_MAGIC);
  hdr[4] = (uint8_t)type;
  hdr[5] = 0;
  xx_frame_put_u16(hdr + 6, 0);
  xx_frame_put_u32(hdr + 8, (uint32_t)len);
  xx_frame_put_u32(hdr + 12, payload_crc);
  xx_frame_put_u32(hdr + 16, cmn_crc32c(0, hdr, 16));
  return 0;
}

int cmn_frame_encode_data_header(int type, const void *data, size_t len,
                                 uint8_t hdr[CMN_FRAME_HEADER_SIZE]) {
  if (!cmn_frame_type_is_data(type) || !data) return CAIRN_EINVAL;
  return cmn_frame_encode_header(type, len, cmn_crc32c(0, data, len), hdr);
}

/* ------------------------------------------------------------ parser */

enum { ST_HEADER = 0, ST_PAYLOAD = 1, ST_FAILED = 2 };

struct cmn_frame_parser {
  size_t max_data; /* limit on data-frame payloads */
  int state;
  size_t hdr_have; /* header bytes gathered */
  uint8_t hdr[CMN_FRAME_HEADER_SIZE];
  /* the frame being read (valid in PAYLOAD) */
  int type;
  const xx_frame_type_info *info;
  size_t len;        /* payload length */
  size_t have;       /* payload bytes consumed */
  uint32_t want_crc; /* from the header */
  uint32_t crc;      /* running crc of a data frame */
  /* the failure (valid in FAILED) */
  int err;
  cmn_frame_fault fault;
  char msg[192];
  /* a control payload that arrives in several slices */
  uint8_t buf[CMN_FRAME_CTRL_PAYLOAD_MAX];
};

int cmn_frame_parser_new(size_t max_data, cmn_frame_parser **out) {
  if (!out || max_data > CMN_FRAME_DATA_MAX) return CAIRN_EINVAL;
  cmn_frame_parser *p = cmn_calloc(1, sizeof *p);
  p->max_data = max_data ? max_data : CMN_FRAME_DATA_MAX;
  p->state = ST_HEADER;
  *out = p;
  return 0;
}

void cmn_frame_parser_free(cmn_frame_parser *p) { free(p); }

cmn_frame_fault cmn_frame_parser_fault(const cmn_frame_parser *p) {
  return p->state == ST_FAILED ? p->fault : CMN_FRAME_FAULT_NONE;
}

const char *cmn_frame_parser_error(const cmn_frame_parser *p) {
  return p->state == ST_FAILED ? p->msg : "";
}

int cmn_frame_parser_idle(const cmn_frame_parser *p) {
  return p->state == ST_HEADER && p->hdr_have == 0;
}

/* Enter the terminal FAILED state with `err`, `fault` and a message. */
__attribute__((format(printf, 4, 5))) static int parser_fail(cmn_frame_parser *p, int err,
                                                             cmn_frame_fault fault, const char *fmt,
                                                             ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p->msg, sizeof p->msg, fmt, ap);
  va_end(ap);
  p->state = ST_FAILED;
  p->err = err;
  p->fault = fault;
  return err;
}

/*
 * Check a complete header in the order that makes each fault meaningful:
 * the header CRC first (nothing else is trusted before it), then the type,
 * the reserved bits, and the length against the type's range and the
 * parser's data limit. On success the parser moves to PAYLOAD.
 */
static int header_done(cmn_frame_parser *p) {
  const uint8_t *h = p->hdr;
  uint32_t want = xx_frame_get_u32(h + 16), got = cmn_crc32c(0, h, 16);
  if (want != got)
    return parser_fail(p, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_HEADER_CRC,
                       "header crc mismatch: computed 0x%08x, header says 0x%08x", got, want);
  int type = h[4];
  const xx_frame_type_info *t = xx_frame_type_info_of(type);
  if (!t) return parser_fail(p, CAIRN_EPROTO, CMN_FRAME_FAULT_TYPE, "unknown frame type %d", type);
  if (h[5] != 0 || xx_frame_get_u16(h + 6) != 0)
    return parser_fail(p, CAIRN_EPROTO, CMN_FRAME_FAULT_RESERVED,
                       "%s frame has reserved bits set: flags=0x%02x reserved=0x%04x", t->name,
                       h[5], xx_frame_get_u16(h + 6));
  uint32_t len = xx_frame_get_u32(h + 8);
  size_t max = t->is_data ? CMN_MIN((size_t)t->max_len, p->max_data) : t->max_len;
  if (len > max)
    return parser_fail(p, CAIRN_ETOOBIG, CMN_FRAME_FAULT_TOO_LONG,
                       "%s payload of %u bytes exceeds the maximum of %zu", t->name, len, max);
  if (len < t->min_len)
    return parser_fail(p, CAIRN_EPROTO, CMN_FRAME_FAULT_LENGTH,
                       "%s payload of %u bytes is under the minimum of %u", t->name, len,
                       t->min_len);
  p->state = ST_PAYLOAD;
  p->hdr_have = 0;
  p->type = type;
  p->info = t;
  p->len = len;
  p->have = 0;
  p->want_crc = xx_frame_get_u32(h + 12);
  p->crc = 0;
  return 1;
}

/* Gather header bytes from `in` (advancing *pos). 1 when the header is
 * complete and valid, 0 when more bytes are needed, <0 on a fault. */
static int take_header(cmn_frame_parser *p, const uint8_t *in, size_t len, size_t *pos) {
  static const uint8_t magic[4] = {'C', 'R', 'N', '1'};
  size_t n = CMN_MIN(CMN_FRAME_HEADER_SIZE - p->hdr_have, len - *pos);
  for (size_t i = 0; i < n; i++) {
    size_t at = p->hdr_have + i;
    uint8_t b = in[*pos + i];
    if (at >= 4 || b == magic[at]) continue;
    *pos += i;
    if (at < 3)
      return parser_fail(p, CAIRN_EPROTO, CMN_FRAME_FAULT_MAGIC,
                         "bad magic: byte %zu is 0x%02x, expected 0x%02x ('%c'); not a cairn "
                         "data-plane peer",
                         at, b, magic[at], magic[at]);
    return parser_fail(p, CAIRN_EPROTO, CMN_FRAME_FAULT_VERSION,
                       "unsupported data-plane version byte 0x%02x (this build speaks '1')", b);
  }
  memcpy(p->hdr + p->hdr_have, in + *pos, n);
  p->hdr_have += n;
  *pos += n;
  if (p->hdr_have < CMN_FRAME_HEADER_SIZE) return 0;
  return header_done(p);
}

/* Fill the fields of *out common to both kinds of frames. */
static void frame_out(const cmn_frame_parser *p, cmn_frame *out, const uint8_t *payload, size_t n,
                      size_t offset, bool end) {
  out->type = p->type;
  out->flags = 0;
  out->payload = payload;
  out->len = n;
  out->frame_len = p->len;
  out->offset = offset;
  out->payload_crc = p->want_crc;
  out->end = end;
}

/*
 * Data frame: hand out whatever payload bytes this slice holds as one piece,
 * in place. The CRC runs over the pieces; the piece that completes the
 * frame is only handed out once the CRC matched.
 */
static int take_data(cmn_frame_parser *p, const uint8_t *in, size_t len, size_t *pos,
                     cmn_frame *out) {
  size_t remaining = p->len - p->have, avail = len - *pos;
  if (remaining > 0 && avail == 0) return 0;
  size_t n = CMN_MIN(remaining, avail), offset = p->have;
  const uint8_t *piece = in + *pos;
  p->crc = cmn_crc32c(p->crc, piece, n);
  p->have += n;
  *pos += n;
  bool end = p->have == p->len;
  if (end) {
    if (p->crc != p->want_crc)
      return parser_fail(p, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_PAYLOAD_CRC,
                         "%s payload crc mismatch: computed 0x%08x, header says 0x%08x; the "
                         "frame's %zu bytes must be discarded",
                         p->info->name, p->crc, p->want_crc, p->len);
    p->state = ST_HEADER;
  }
  frame_out(p, out, piece, n, offset, end);
  return 1;
}

/*
 * Control frame: point at the payload in place when the slice holds all of
 * it, else gather it in the parser's buffer. Delivered once, whole, after
 * its CRC matched.
 */
static int take_ctrl(cmn_frame_parser *p, const uint8_t *in, size_t len, size_t *pos,
                     cmn_frame *out) {
  size_t avail = len - *pos;
  const uint8_t *payload;
  if (p->have == 0 && avail >= p->len) {
    payload = in + *pos;
    *pos += p->len;
  } else {
    size_t n = CMN_MIN(p->len - p->have, avail);
    memcpy(p->buf + p->have, in + *pos, n);
    p->have += n;
    *pos += n;
    if (p->have < p->len) return 0;
    payload = p->buf;
  }
  uint32_t got = cmn_crc32c(0, payload, p->len);
  if (got != p->want_crc)
    return parser_fail(p, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_PAYLOAD_CRC,
                       "%s payload crc mismatch: computed 0x%08x, header says 0x%08x",
                       p->info->name, got, p->want_crc);
  p->state = ST_HEADER;
  frame_out(p, out, payload, p->len, 0, true);
  return 1;
}

/*
 * Consume bytes up to the end of at most one event. A header and the start
 * of its payload may come in one call; a completed header whose payload has
 * not arrived yet leaves the parser in PAYLOAD and returns 0.
 */
int cmn_frame_feed(cmn_frame_parser *p, const void *data, size_t len, size_t *consumed,
                   cmn_frame *out) {
  if (consumed) *consumed = 0;
  if (!p || !consumed || !out || (!data && len)) return CAIRN_EINVAL;
  if (p->state == ST_FAILED) return p->err;
  if (len == 0) return 0; /* every frame has payload bytes: nothing can complete */
  const uint8_t *in = data;
  size_t pos = 0;
  int rc = 1;
  if (p->state == ST_HEADER) rc = take_header(p, in, len, &pos);
  if (rc > 0)
    rc = p->info->is_data ? take_data(p, in, len, &pos, out) : take_ctrl(p, in, len, &pos, out);
  *consumed = pos;
  return rc;
}
