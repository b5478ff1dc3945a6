/*
 * cmn_frame.h - the wire format of the chunkserver data plane (bulk bytes
 * over TCP, port 8080): frame header, payload codecs, an incremental parser
 * and the HMAC handshake on the cluster secret.
 *
 * Pure codec: no sockets, no event loop, no allocation on the hot path.
 * Chunkservers and clients both build their libuv connections on it: bytes
 * read from a socket go into cmn_frame_feed in whatever slices they arrive,
 * frames to send are encoded into caller buffers.
 *
 * ---------------------------------------------------------------- header
 * Every frame is a 20-byte header followed by `length` payload bytes. All
 * integers are little-endian.
 *
 *   off size
 *    0   4   magic/version: the bytes 'C' 'R' 'N' '1' (u32 0x314E5243)
 *    4   1   type (CMN_FRAME_HELLO ...)
 *    5   1   flags: no flag is defined in version 1; must be 0
 *    6   2   reserved: must be 0
 *    8   4   payload length
 *   12   4   crc32c of the payload (every type has at least 1 payload byte)
 *   16   4   crc32c of header bytes 0..15
 *
 * Design choices:
 * - The header has its own CRC, checked before any field is trusted, so a
 *   corrupted length or type is caught before it drives anything.
 * - The magic is checked byte by byte as it arrives: a peer that is not a
 *   cairn data-plane peer (an HTTP client, a port scanner) is refused at its
 *   first wrong byte. "CRN" followed by another digit is reported as an
 *   unsupported version rather than as garbage.
 * - Flags and reserved bits must be zero: a later version that needs them
 *   changes the version byte, so an old peer refuses it clearly instead of
 *   misreading it.
 * - Every type has a fixed range of payload lengths (a table in frame.c),
 *   checked from the header alone: a length outside it is refused before
 *   a single payload byte arrives. Control frames are small (at most
 *   CMN_FRAME_CTRL_PAYLOAD_MAX bytes); only the two data types carry up to
 *   CMN_FRAME_DATA_MAX (1 MiB) bytes.
 * - Unknown types are refused (no silent skipping): both ends of a
 *   connection speak the same version.
 *
 * ---------------------------------------------------------------- types
 *   HELLO       s->c  32-byte server nonce, server id
 *   AUTH        c->s  HMAC-SHA256(secret, server nonce || "cairn-data-v1" ||
 *                     client nonce), client nonce
 *   AUTH_OK     s->c  HMAC-SHA256(secret, client nonce || "cairn-data-ok" ||
 *                     server nonce): proves the server holds the secret too.
 *                     The two labels have the same length and position, so
 *                     an AUTH MAC can never be replayed as an AUTH_OK MAC
 *                     (reflection), and both nonces bind it to the session.
 *   ERROR       both  cairn error code + message; the sender closes after it
 *   PING, PONG  both  u64 token echoed back
 *   PUSH_BEGIN  c->s  data id, total length, crc32c of the whole data, the
 *                     rest of the chain (host:port strings), and optionally
 *                     where the bytes are expected to land (handle, version,
 *                     offset in the chunk or "at its end"): a hint that lets
 *                     a chunkserver stage them in the replica file while
 *                     they arrive; it never decides where they land
 *   PUSH_DATA   c->s  the next bytes of the push (1 B .. 1 MiB per frame)
 *   PUSH_END    c->s  data id, status (0, or a code that aborts the push),
 *                     bytes sent
 *   PUSH_ACK    s->c  data id, status, bytes received (same layout)
 *   READ        c->s  handle, version, offset, length
 *   READ_DATA   s->c  the next bytes of a read or clone (1 B .. 1 MiB)
 *   READ_END    s->c  status, total bytes sent
 *   CLONE       c->s  handle, version: the whole replica, answered like a
 *                     READ (READ_DATA frames, then READ_END)
 * A connection carries one push or one read at a time: PUSH_DATA and
 * READ_DATA do not repeat the data id or handle.
 * The handshake proves that both ends hold the cluster secret; it neither
 * encrypts nor authenticates the frames after it (their CRCs catch
 * corruption, not tampering), as befits a data plane inside the cluster.
 *
 * ---------------------------------------------------------------- payloads
 * Each control type has a struct, an encoder that writes a whole frame
 * (header and payload) into a caller buffer, and a decoder that validates
 * every field of a payload: exact length (no short payloads, no trailing
 * bytes), counts, string lengths and bytes, non-zero ids, known error codes,
 * value ranges. A decoder refuses with CAIRN_EPROTO and a message; an
 * encoder refuses what the decoder would refuse (CAIRN_EINVAL), so a cairn
 * process never sends a frame its peer must reject. Strings in structs are
 * NUL-terminated C strings; on the wire they are a length and the bytes,
 * without NUL.
 *
 * The data types (PUSH_DATA, READ_DATA) carry raw bytes and have no struct:
 * the sender writes a header (cmn_frame_encode_data_header) followed by its
 * own buffer, so bulk bytes are never copied to be framed.
 *
 * ---------------------------------------------------------------- parser
 * Memory: a parser is one allocation of about 4 KiB whatever the traffic.
 * - Control frames are delivered whole, after their CRC is verified. When
 *   the whole payload is inside the slice being fed, out->payload points
 *   into that slice (no copy); otherwise the parser gathers it in its own
 *   buffer (at most CMN_FRAME_CTRL_PAYLOAD_MAX bytes).
 * - Data frames are streamed, never buffered: each feed that brings payload
 *   bytes returns them as a piece pointing into the caller's slice, with its
 *   offset in the frame. The CRC covers the whole frame, so it can only be
 *   checked when the last byte has arrived: the last piece (out->end = 1) is
 *   returned only after the CRC matched; if it does not, feed returns
 *   CAIRN_ECHECKSUM instead of the last piece, and the consumer must discard
 *   every piece of that frame it has seen (and, since the connection is
 *   closed after any error, the whole push or read it belonged to). A
 *   chunkserver may forward pieces down a push chain before the frame is
 *   verified (GFS pipelining): the next server checks the same CRC, and the
 *   end-to-end crc32c of PUSH_BEGIN is checked before data is committed.
 * A parser error is final: every later feed returns the same error. The
 * connection is to be closed.
 *
 * Thread safety: no global state. A parser or handshake belongs to one
 * connection and must be used by one thread at a time; the codecs are pure
 * and may be called from any thread.
 */
#ifndef CMN_FRAME_H
#define CMN_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- sizes */

#define CMN_FRAME_MAGIC 0x314E5243u /* "CRN1" read as a little-endian u32 */
#define CMN_FRAME_HEADER_SIZE 20
#define CMN_FRAME_DATA_MAX (1u << 20) /* payload of PUSH_DATA / READ_DATA */
#define CMN_FRAME_NONCE_SIZE 32
#define CMN_FRAME_MAC_SIZE 32            /* HMAC-SHA256 */
#define CMN_FRAME_DATA_ID_SIZE 16        /* 128-bit push id */
#define CMN_FRAME_SERVER_ID_MAX 64       /* bytes of a server id */
#define CMN_FRAME_CHAIN_MAX 15           /* entries in a push chain */
#define CMN_FRAME_ADDR_MAX 255           /* bytes of one host:port */
#define CMN_FRAME_MESSAGE_MAX 256        /* bytes of an ERROR message */
#define CMN_FRAME_CHUNK_MAX (1ull << 32) /* largest chunk a frame can address */

/* Largest control payload (PUSH_BEGIN with a full chain) and frame: a buffer
 * of CMN_FRAME_CTRL_FRAME_MAX bytes always holds any encoded control frame. */
#define CMN_FRAME_PLACE_SIZE 25 /* the optional placement of PUSH_BEGIN */
#define CMN_FRAME_CTRL_PAYLOAD_MAX \
  (29 + CMN_FRAME_CHAIN_MAX * (1 + CMN_FRAME_ADDR_MAX) + CMN_FRAME_PLACE_SIZE)
#define CMN_FRAME_CTRL_FRAME_MAX (CMN_FRAME_HEADER_SIZE + CMN_FRAME_CTRL_PAYLOAD_MAX)

/* The frame types. Values are part of the wire format. */
typedef enum cmn_frame_type {
  CMN_FRAME_HELLO = 1,
  CMN_FRAME_AUTH = 2,
  CMN_FRAME_AUTH_OK = 3,
  CMN_FRAME_ERROR = 4,
  CMN_FRAME_PING = 5,
  CMN_FRAME_PONG = 6,
  CMN_FRAME_PUSH_BEGIN = 16,
  CMN_FRAME_PUSH_DATA = 17,
  CMN_FRAME_PUSH_END = 18,
  CMN_FRAME_PUSH_ACK = 19,
  CMN_FRAME_READ = 32,
  CMN_FRAME_READ_DATA = 33,
  CMN_FRAME_READ_END = 34,
  CMN_FRAME_CLONE = 48,
} cmn_frame_type;

/* "PUSH_DATA" for a known type, NULL for any other value. Static string. */
const char *cmn_frame_type_name(int type);

/* 1 for PUSH_DATA and READ_DATA (streamed, raw bytes), 0 otherwise. */
int cmn_frame_type_is_data(int type);

/* ---------------------------------------------------------------- header */

/*
 * Write a header for a payload of `len` bytes whose crc32c is `payload_crc`
 * into `hdr`. Used to forward a data frame as it streams (the crc comes from
 * the received header, see cmn_frame.payload_crc) and by the encoders.
 * 0, or CAIRN_EINVAL for an unknown type or a length outside the type's range.
 */
int cmn_frame_encode_header(int type, size_t len, uint32_t payload_crc,
                            uint8_t hdr[CMN_FRAME_HEADER_SIZE]);

/*
 * Header of a data frame (PUSH_DATA or READ_DATA) carrying `data`
 * (1 .. CMN_FRAME_DATA_MAX bytes): computes the CRC. The caller sends `hdr`
 * followed by its own `data`. 0 or CAIRN_EINVAL.
 */
int cmn_frame_encode_data_header(int type, const void *data, size_t len,
                                 uint8_t hdr[CMN_FRAME_HEADER_SIZE]);

/* ---------------------------------------------------------------- parser */

typedef struct cmn_frame_parser cmn_frame_parser;

/* What cmn_frame_feed returns when it returns 1. */
typedef struct cmn_frame {
  int type;               /* cmn_frame_type */
  int flags;              /* always 0 in version 1 */
  const uint8_t *payload; /* control frame: the whole payload; data frame: this piece */
  size_t len;             /* bytes at `payload` */
  size_t frame_len;       /* payload length of the whole frame */
  size_t offset;          /* data frame: offset of this piece in the frame; else 0 */
  uint32_t payload_crc;   /* crc32c of the whole payload, from the header */
  bool end;               /* 1: frame complete and its CRC verified (always for
                           * control frames; the last piece of a data frame) */
} cmn_frame;

/* Why a parser failed, for logs, metrics and tests. */
typedef enum cmn_frame_fault {
  CMN_FRAME_FAULT_NONE = 0,
  CMN_FRAME_FAULT_MAGIC,       /* first bytes are not "CRN": not a cairn peer */
  CMN_FRAME_FAULT_VERSION,     /* "CRN" then a version this build does not speak */
  CMN_FRAME_FAULT_HEADER_CRC,  /* header checksum mismatch */
  CMN_FRAME_FAULT_TYPE,        /* unknown frame type */
  CMN_FRAME_FAULT_RESERVED,    /* flags or reserved bits set */
  CMN_FRAME_FAULT_TOO_LONG,    /* length over the type's or the parser's maximum */
  CMN_FRAME_FAULT_LENGTH,      /* length under the type's minimum / not its size */
  CMN_FRAME_FAULT_PAYLOAD_CRC, /* payload checksum mismatch */
} cmn_frame_fault;

/* "bad magic", "header crc mismatch", ... for a fault; static string. */
const char *cmn_frame_fault_name(cmn_frame_fault f);

/*
 * A new parser whose data frames may carry at most `max_data` payload bytes
 * (0 means CMN_FRAME_DATA_MAX; larger values are CAIRN_EINVAL). A data frame
 * announcing more is refused from its header. Control frames have their own
 * fixed limits. *out is owned by the caller (cmn_frame_parser_free).
 * 0 or CAIRN_EINVAL.
 */
int cmn_frame_parser_new(size_t max_data, cmn_frame_parser **out);
void cmn_frame_parser_free(cmn_frame_parser *p);

/*
 * Feed bytes received from the peer. Consumes bytes from `data` up to the
 * end of at most one event and sets *consumed to how many it used; the
 * caller feeds the rest (data + *consumed) again, in a loop, until it has
 * consumed everything.
 *
 * Returns
 *   1  an event is in *out: a complete control frame, or a piece of a data
 *      frame (see the file comment). out->payload points into the parser or
 *      into `data`: valid until the next call on this parser, and no longer
 *      than `data` itself.
 *   0  every byte was absorbed (*consumed == len) and more are needed.
 *   <0 the stream is broken and the connection must be closed:
 *      CAIRN_EPROTO     bad magic, unsupported version, unknown type,
 *                       reserved bits set, length under the type's minimum
 *      CAIRN_ETOOBIG    length over the maximum (refused from the header)
 *      CAIRN_ECHECKSUM  header or payload CRC mismatch
 *      CAIRN_EINVAL     NULL arguments (the parser is not failed by this)
 *      The fault and a message are kept (cmn_frame_parser_fault/_error);
 *      every later call returns the same error and consumes nothing.
 */
int cmn_frame_feed(cmn_frame_parser *p, const void *data, size_t len, size_t *consumed,
                   cmn_frame *out);

/* The fault of a failed parser (CMN_FRAME_FAULT_NONE while healthy), and a
 * message describing it ("" while healthy), owned by the parser and valid
 * until it is freed. */
cmn_frame_fault cmn_frame_parser_fault(const cmn_frame_parser *p);
const char *cmn_frame_parser_error(const cmn_frame_parser *p);

/* 1 when no partial frame is pending (a clean place to close). */
int cmn_frame_parser_idle(const cmn_frame_parser *p);

/* ---------------------------------------------------------------- payloads */

typedef struct cmn_frame_hello {
  uint8_t nonce[CMN_FRAME_NONCE_SIZE];         /* fresh random, not all zero */
  char server_id[CMN_FRAME_SERVER_ID_MAX + 1]; /* 1..64 bytes of 0x21..0x7e */
} cmn_frame_hello;

typedef struct cmn_frame_auth {
  uint8_t mac[CMN_FRAME_MAC_SIZE];
  uint8_t client_nonce[CMN_FRAME_NONCE_SIZE]; /* fresh random, not all zero */
} cmn_frame_auth;

typedef struct cmn_frame_auth_ok {
  uint8_t mac[CMN_FRAME_MAC_SIZE];
} cmn_frame_auth_ok;

/* An ERROR: `code` is a negative code of cairn_error.h (a code this build
 * does not know is refused); `message` 0..256 bytes, no control bytes
 * (< 0x20 or 0x7f, NUL included), so it can be logged as is. */
typedef struct cmn_frame_error {
  int32_t code;
  char message[CMN_FRAME_MESSAGE_MAX + 1];
} cmn_frame_error;

/* PING and PONG: the PONG echoes the PING's token. */
typedef struct cmn_frame_ping {
  uint64_t token;
} cmn_frame_ping;

/* Where a push's bytes are expected to land: replica (handle, version) at
 * `offset` in the chunk, or at whatever its end is (CMN_FRAME_PLACE_END).
 * Only a hint for staging (see PUSH_BEGIN); handle and version are not 0,
 * an offset is below CMN_FRAME_CHUNK_MAX. On the wire: u8 1, then the three
 * u64, after the chain. */
#define CMN_FRAME_PLACE_END UINT64_MAX
typedef struct cmn_frame_place {
  uint64_t handle, version, offset;
} cmn_frame_place;

/* Start of a push. `chain` holds the servers still to receive the data after
 * the one this frame is sent to, in order: each "host:port" (1..255 bytes of
 * 0x21..0x7e, a ':' followed by a port 1..65535, a non-empty host).
 * `total_len` is 1..CMN_FRAME_CHUNK_MAX; `data_id` is not all zero.
 * `has_place` says whether `place` is sent. */
typedef struct cmn_frame_push_begin {
  uint8_t data_id[CMN_FRAME_DATA_ID_SIZE];
  uint64_t total_len;
  uint32_t crc32c;      /* of the whole data */
  uint32_t chain_count; /* 0..CMN_FRAME_CHAIN_MAX */
  char chain[CMN_FRAME_CHAIN_MAX][CMN_FRAME_ADDR_MAX + 1];
  bool has_place;
  cmn_frame_place place;
} cmn_frame_push_begin;

/* PUSH_END (client -> server) and PUSH_ACK (server -> client). `status` is 0
 * or a negative cairn code; `bytes` <= CMN_FRAME_CHUNK_MAX. */
typedef struct cmn_frame_push_end {
  uint8_t data_id[CMN_FRAME_DATA_ID_SIZE];
  int32_t status;
  uint64_t bytes;
} cmn_frame_push_end;

/* READ: handle >= 1, version >= 1, length >= 1, offset + length <=
 * CMN_FRAME_CHUNK_MAX. */
typedef struct cmn_frame_read {
  uint64_t handle;
  uint64_t version;
  uint64_t offset;
  uint32_t length;
} cmn_frame_read;

/* READ_END: status 0 or a negative cairn code; total <= CMN_FRAME_CHUNK_MAX. */
typedef struct cmn_frame_read_end {
  int32_t status;
  uint64_t total;
} cmn_frame_read_end;

/* CLONE: handle >= 1, version >= 1. */
typedef struct cmn_frame_clone {
  uint64_t handle;
  uint64_t version;
} cmn_frame_clone;

/*
 * Encoders: write the whole frame (header + payload) for `m` into `buf` of
 * `cap` bytes (CMN_FRAME_CTRL_FRAME_MAX always suffices). Return the number
 * of bytes written (> 0), CAIRN_EINVAL when a field is invalid (the same
 * rules as the decoder), or CAIRN_ETOOBIG when `cap` is too small. Nothing
 * is kept; `buf` belongs to the caller.
 *
 * Decoders: parse the payload of a frame of the matching type (`payload`,
 * `len` as cmn_frame gives them) into *out. 0, or CAIRN_EPROTO with a
 * message in `err` (`errlen` bytes, NUL-terminated, truncated; NULL/0 for
 * none); on error *out is unspecified. Nothing points into `payload` after
 * the call.
 */
int cmn_frame_encode_hello(const cmn_frame_hello *m, void *buf, size_t cap);
int cmn_frame_decode_hello(const void *payload, size_t len, cmn_frame_hello *out, char *err,
                           size_t errlen);
int cmn_frame_encode_auth(const cmn_frame_auth *m, void *buf, size_t cap);
int cmn_frame_decode_auth(const void *payload, size_t len, cmn_frame_auth *out, char *err,
                          size_t errlen);
int cmn_frame_encode_auth_ok(const cmn_frame_auth_ok *m, void *buf, size_t cap);
int cmn_frame_decode_auth_ok(const void *payload, size_t len, cmn_frame_auth_ok *out, char *err,
                             size_t errlen);
int cmn_frame_encode_error(const cmn_frame_error *m, void *buf, size_t cap);
int cmn_frame_decode_error(const void *payload, size_t len, cmn_frame_error *out, char *err,
                           size_t errlen);
int cmn_frame_encode_ping(const cmn_frame_ping *m, void *buf, size_t cap);
int cmn_frame_decode_ping(const void *payload, size_t len, cmn_frame_ping *out, char *err,
                          size_t errlen);
int cmn_frame_encode_pong(const cmn_frame_ping *m, void *buf, size_t cap);
int cmn_frame_decode_pong(const void *payload, size_t len, cmn_frame_ping *out, char *err,
                          size_t errlen);
int cmn_frame_encode_push_begin(const cmn_frame_push_begin *m, void *buf, size_t cap);
int cmn_frame_decode_push_begin(const void *payload, size_t len, cmn_frame_push_begin *out,
                                char *err, size_t errlen);
int cmn_frame_encode_push_end(const cmn_frame_push_end *m, void *buf, size_t cap);
int cmn_frame_decode_push_end(const void *payload, size_t len, cmn_frame_push_end *out, char *err,
                              size_t errlen);
int cmn_frame_encode_push_ack(const cmn_frame_push_end *m, void *buf, size_t cap);
int cmn_frame_decode_push_ack(const void *payload, size_t len, cmn_frame_push_end *out, char *err,
                              size_t errlen);
int cmn_frame_encode_read(const cmn_frame_read *m, void *buf, size_t cap);
int cmn_frame_decode_read(const void *payload, size_t len, cmn_frame_read *out, char *err,
                          size_t errlen);
int cmn_frame_encode_read_end(const cmn_frame_read_end *m, void *buf, size_t cap);
int cmn_frame_decode_read_end(const void *payload, size_t len, cmn_frame_read_end *out, char *err,
                              size_t errlen);
int cmn_frame_encode_clone(const cmn_frame_clone *m, void *buf, size_t cap);
int cmn_frame_decode_clone(const void *payload, size_t len, cmn_frame_clone *out, char *err,
                           size_t errlen);

/* Encode an ERROR frame from a code and a printf message (truncated to
 * CMN_FRAME_MESSAGE_MAX bytes, control bytes replaced by '?'). A code that
 * is not a known negative code is sent as CAIRN_EINTERNAL. Bytes written,
 * or CAIRN_ETOOBIG when `cap` is too small. */
int cmn_frame_encode_errorf(int code, void *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---------------------------------------------------------------- handshake */

/*
 * The MACs of the handshake (see AUTH and AUTH_OK above) with HMAC-SHA256
 * keyed by the cluster secret (a non-empty C string, as loaded by
 * cmn_rpc_load_secret). compute: 0 or CAIRN_EINVAL (empty secret) /
 * CAIRN_EINTERNAL (the crypto library failed). verify: 0 when `mac` is right
 * (compared in constant time), else CAIRN_EAUTH (or CAIRN_EINVAL).
 */
int cmn_frame_auth_compute(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                           const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                           uint8_t out[CMN_FRAME_MAC_SIZE]);
int cmn_frame_auth_verify(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                          const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                          const uint8_t mac[CMN_FRAME_MAC_SIZE]);
int cmn_frame_auth_ok_compute(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                              const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                              uint8_t out[CMN_FRAME_MAC_SIZE]);
int cmn_frame_auth_ok_verify(const char *secret, const uint8_t server_nonce[CMN_FRAME_NONCE_SIZE],
                             const uint8_t client_nonce[CMN_FRAME_NONCE_SIZE],
                             const uint8_t mac[CMN_FRAME_MAC_SIZE]);

typedef enum cmn_frame_hs_state {
  CMN_FRAME_HS_IDLE = 0,       /* not started */
  CMN_FRAME_HS_EXPECT_AUTH,    /* server: HELLO sent */
  CMN_FRAME_HS_EXPECT_HELLO,   /* client: connected */
  CMN_FRAME_HS_EXPECT_AUTH_OK, /* client: AUTH sent */
  CMN_FRAME_HS_DONE,           /* authenticated: data frames may flow */
  CMN_FRAME_HS_FAILED,         /* refused: close the connection */
} cmn_frame_hs_state;

/*
 * One side of the handshake of one connection. Plain struct, owned and
 * placed by the caller (inside its connection); no resources to free.
 * `secret` is borrowed: it must outlive the handshake.
 *
 * Server:  cmn_frame_hs_server_start -> send the HELLO it wrote;
 *          each control frame received -> cmn_frame_hs_on_frame; send what
 *          it wrote (AUTH_OK, or ERROR before closing).
 * Client:  cmn_frame_hs_client_start; each control frame received ->
 *          cmn_frame_hs_on_frame; send what it wrote (AUTH).
 * The network code only moves bytes; the state machine decides.
 */
typedef struct cmn_frame_hs {
  cmn_frame_hs_state state;
  bool is_server;
  const char *secret;
  uint8_t server_nonce[CMN_FRAME_NONCE_SIZE];
  uint8_t client_nonce[CMN_FRAME_NONCE_SIZE];
  char server_id[CMN_FRAME_SERVER_ID_MAX + 1]; /* ours (server) or the peer's (client) */
  char expect_id[CMN_FRAME_SERVER_ID_MAX + 1]; /* client: required server id, "" = any */
  int error;                                   /* the failure, once FAILED */
  char errmsg[320];                            /* its description */
} cmn_frame_hs;

/*
 * Server side: fresh nonce, HELLO frame written to `buf` (cap >=
 * CMN_FRAME_CTRL_FRAME_MAX is always enough). Returns the bytes to send,
 * or CAIRN_EINVAL (empty secret, invalid server id), CAIRN_ETOOBIG (small
 * buffer), CAIRN_EIO (no randomness).
 */
int cmn_frame_hs_server_start(cmn_frame_hs *hs, const char *secret, const char *server_id,
                              void *buf, size_t cap);

/*
 * Client side: expect a HELLO. `expect_server_id` (NULL or "" for any)
 * makes a HELLO from another server fail with CAIRN_EAUTH. 0 or
 * CAIRN_EINVAL.
 */
int cmn_frame_hs_client_start(cmn_frame_hs *hs, const char *secret, const char *expect_server_id);

/*
 * Advance the handshake with a received frame (a complete control frame
 * from cmn_frame_feed). Writes the frame to send, if any, into `buf`
 * (cap >= CMN_FRAME_CTRL_FRAME_MAX) and its size into *out_len (0 = none).
 * Returns
 *   0  handshake continues (client: AUTH written, wait for AUTH_OK)
 *   1  authenticated (server: AUTH_OK written; client: nothing to send)
 *  <0  refused; the connection must be closed after sending *out_len bytes
 *      (the server writes an ERROR frame; the client writes nothing):
 *      CAIRN_EAUTH  wrong MAC either way, or unexpected server id
 *      CAIRN_EPROTO unexpected frame type or malformed payload
 *      the code of an ERROR frame the peer sent (client side)
 *      CAIRN_EIO    no randomness (client)
 *      CAIRN_EINVAL NULL arguments, a buffer under CMN_FRAME_CTRL_FRAME_MAX
 *                   or a handshake never started (the state is unchanged)
 * Once DONE or FAILED, every call returns CAIRN_EPROTO (after DONE, frames
 * belong to the data protocol) or the stored error respectively.
 */
int cmn_frame_hs_on_frame(cmn_frame_hs *hs, const cmn_frame *f, void *buf, size_t cap,
                          size_t *out_len);

#endif /* CMN_FRAME_H */
