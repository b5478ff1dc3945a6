/* Unit tests for the data-plane payload codecs (common/frame_msg.c): every
 * type through encoder, parser and decoder, and every field a decoder or an
 * encoder must refuse. */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_frame.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

/* Frame encoded into `buf`; parse it with a fresh parser fed the whole
 * buffer, check type and placement, return the event. */
static cmn_frame parse_one(const uint8_t *buf, int n, int type) {
  assert_true(n > CMN_FRAME_HEADER_SIZE);
  cmn_frame_parser *p = NULL;
  assert_int_equal(cmn_frame_parser_new(0, &p), 0);
  cmn_frame f;
  size_t used = 0;
  assert_int_equal(cmn_frame_feed(p, buf, (size_t)n, &used, &f), 1);
  assert_int_equal(used, (size_t)n);
  assert_int_equal(f.type, type);
  assert_true(f.end);
  assert_ptr_equal(f.payload, buf + CMN_FRAME_HEADER_SIZE); /* in place */
  assert_int_equal(f.len, (size_t)n - CMN_FRAME_HEADER_SIZE);
  assert_true(cmn_frame_parser_idle(p));
  cmn_frame_parser_free(p);
  return f;
}

/* Raw payload bytes a decoder must refuse with EPROTO and a message that
 * contains `needle`. */
#define EXPECT_REFUSED(decoder, payload, len, needle)                                \
  do {                                                                               \
    char err_[300] = "";                                                             \
    __typeof__(decoder##_out) out_;                                                  \
    assert_int_equal(decoder(payload, len, &out_, err_, sizeof err_), CAIRN_EPROTO); \
    if (!strstr(err_, needle)) fail_msg("message '%s' lacks '%s'", err_, needle);    \
  } while (0)

/* Output types for EXPECT_REFUSED (one per decoder). */
typedef cmn_frame_hello cmn_frame_decode_hello_out;
typedef cmn_frame_auth cmn_frame_decode_auth_out;
typedef cmn_frame_auth_ok cmn_frame_decode_auth_ok_out;
typedef cmn_frame_error cmn_frame_decode_error_out;
typedef cmn_frame_ping cmn_frame_decode_ping_out;
typedef cmn_frame_ping cmn_frame_decode_pong_out;
typedef cmn_frame_push_begin cmn_frame_decode_push_begin_out;
typedef cmn_frame_push_end cmn_frame_decode_push_end_out;
typedef cmn_frame_push_end cmn_frame_decode_push_ack_out;
typedef cmn_frame_read cmn_frame_decode_read_out;
typedef cmn_frame_read_end cmn_frame_decode_read_end_out;
typedef cmn_frame_clone cmn_frame_decode_clone_out;

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A valid PUSH_BEGIN payload with the given chain, built by hand (not by
 * the encoder) so tests can break it anywhere. Returns its length. */
static size_t raw_push_begin(uint8_t *p, unsigned count, const char *const *chain) {
  memset(p, 0xab, 16);
  put64(p + 16, 1000);
  put32(p + 24, 0x12345678);
  p[28] = (uint8_t)count;
  size_t off = 29;
  for (unsigned i = 0; i < count; i++) {
    size_t n = strlen(chain[i]);
    p[off++] = (uint8_t)n;
    memcpy(p + off, chain[i], n);
    off += n;
  }
  return off;
}

/* ------------------------------------------------------------ round trips */

static void round_trip_handshake_types(void **state) {
  (void)state;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  char err[200];

  cmn_frame_hello h = {0};
  for (int i = 0; i < CMN_FRAME_NONCE_SIZE; i++) h.nonce[i] = (uint8_t)(i * 7 + 1);
  strcpy(h.server_id, "4f1c2b9e-8d7a-4c3b-9e2f-0a1b2c3d4e5f");
  cmn_frame f = parse_one(buf, cmn_frame_encode_hello(&h, buf, sizeof buf), CMN_FRAME_HELLO);
  cmn_frame_hello h2;
  assert_int_equal(cmn_frame_decode_hello(f.payload, f.len, &h2, err, sizeof err), 0);
  assert_memory_equal(h2.nonce, h.nonce, CMN_FRAME_NONCE_SIZE);
  assert_string_equal(h2.server_id, h.server_id);
  /* The longest id. */
  memset(h.server_id, 'z', CMN_FRAME_SERVER_ID_MAX);
  h.server_id[CMN_FRAME_SERVER_ID_MAX] = '\0';
  f = parse_one(buf, cmn_frame_encode_hello(&h, buf, sizeof buf), CMN_FRAME_HELLO);
  assert_int_equal(cmn_frame_decode_hello(f.payload, f.len, &h2, err, sizeof err), 0);
  assert_string_equal(h2.server_id, h.server_id);

  cmn_frame_auth a;
  memset(a.mac, 0x5a, sizeof a.mac);
  memset(a.client_nonce, 0xc3, sizeof a.client_nonce);
  f = parse_one(buf, cmn_frame_encode_auth(&a, buf, sizeof buf), CMN_FRAME_AUTH);
  cmn_frame_auth a2;
  assert_int_equal(cmn_frame_decode_auth(f.payload, f.len, &a2, err, sizeof err), 0);
  assert_memory_equal(&a2, &a, sizeof a);

  cmn_frame_auth_ok ok;
  memset(ok.mac, 0x99, sizeof ok.mac);
  f = parse_one(buf, cmn_frame_encode_auth_ok(&ok, buf, sizeof buf), CMN_FRAME_AUTH_OK);
  cmn_frame_auth_ok ok2;
  assert_int_equal(cmn_frame_decode_auth_ok(f.payload, f.len, &ok2, err, sizeof err), 0);
  assert_memory_equal(ok2.mac, ok.mac, sizeof ok.mac);

  cmn_frame_error e = {.code = CAIRN_ENOSPC};
  strcpy(e.message, "disk full on /data2 (caf\xc3\xa9)");
  f = parse_one(buf, cmn_frame_encode_error(&e, buf, sizeof buf), CMN_FRAME_ERROR);
  cmn_frame_error e2;
  assert_int_equal(cmn_frame_decode_error(f.payload, f.len, &e2, err, sizeof err), 0);
  assert_int_equal(e2.code, CAIRN_ENOSPC);
  assert_string_equal(e2.message, e.message);
  /* Empty and longest messages. */
  e.message[0] = '\0';
  f = parse_one(buf, cmn_frame_encode_error(&e, buf, sizeof buf), CMN_FRAME_ERROR);
  assert_int_equal(cmn_frame_decode_error(f.payload, f.len, &e2, err, sizeof err), 0);
  assert_string_equal(e2.message, "");
  memset(e.message, 'm', CMN_FRAME_MESSAGE_MAX);
  e.message[CMN_FRAME_MESSAGE_MAX] = '\0';
  f = parse_one(buf, cmn_frame_encode_error(&e, buf, sizeof buf), CMN_FRAME_ERROR);
  assert_int_equal(cmn_frame_decode_error(f.payload, f.len, &e2, err, sizeof err), 0);
  assert_string_equal(e2.message, e.message);

  cmn_frame_ping pg = {0xfedcba9876543210ull}, pg2;
  f = parse_one(buf, cmn_frame_encode_ping(&pg, buf, sizeof buf), CMN_FRAME_PING);
  assert_int_equal(cmn_frame_decode_ping(f.payload, f.len, &pg2, err, sizeof err), 0);
  assert_true(pg2.token == pg.token);
  f = parse_one(buf, cmn_frame_encode_pong(&pg, buf, sizeof buf), CMN_FRAME_PONG);
  assert_int_equal(cmn_frame_decode_pong(f.payload, f.len, &pg2, err, sizeof err), 0);
  assert_true(pg2.token == pg.token);
}

static void round_trip_push_types(void **state) {
  (void)state;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  char err[200];

  /* The largest PUSH_BEGIN: a full chain of 255-byte addresses and a
   * placement fill a CMN_FRAME_CTRL_FRAME_MAX buffer exactly. */
  static cmn_frame_push_begin b, b2;
  memset(&b, 0, sizeof b);
  for (int i = 0; i < 16; i++) b.data_id[i] = (uint8_t)(0xf0 + i);
  b.total_len = CMN_FRAME_CHUNK_MAX;
  b.crc32c = 0xdeadbeef;
  b.chain_count = CMN_FRAME_CHAIN_MAX;
  for (int i = 0; i < CMN_FRAME_CHAIN_MAX; i++) {
    memset(b.chain[i], 'a' + i, CMN_FRAME_ADDR_MAX - 5);
    memcpy(b.chain[i] + CMN_FRAME_ADDR_MAX - 5, ":8080", 6);
  }
  b.has_place = true;
  b.place = (cmn_frame_place){.handle = 0x1122334455667788ull, .version = 7,
                              .offset = CMN_FRAME_PLACE_END};
  int n = cmn_frame_encode_push_begin(&b, buf, sizeof buf);
  assert_int_equal(n, CMN_FRAME_CTRL_FRAME_MAX);
  cmn_frame f = parse_one(buf, n, CMN_FRAME_PUSH_BEGIN);
  assert_int_equal(cmn_frame_decode_push_begin(f.payload, f.len, &b2, err, sizeof err), 0);
  assert_memory_equal(b2.data_id, b.data_id, 16);
  assert_true(b2.total_len == b.total_len);
  assert_int_equal(b2.crc32c, b.crc32c);
  assert_int_equal(b2.chain_count, CMN_FRAME_CHAIN_MAX);
  for (int i = 0; i < CMN_FRAME_CHAIN_MAX; i++) assert_string_equal(b2.chain[i], b.chain[i]);
  assert_true(b2.has_place);
  assert_true(b2.place.handle == b.place.handle && b2.place.version == 7 &&
              b2.place.offset == CMN_FRAME_PLACE_END);
  /* A placement at an offset, on an empty chain. */
  b.chain_count = 0;
  b.place.offset = 3u << 20;
  f = parse_one(buf, cmn_frame_encode_push_begin(&b, buf, sizeof buf), CMN_FRAME_PUSH_BEGIN);
  assert_int_equal(f.len, 29 + CMN_FRAME_PLACE_SIZE);
  assert_int_equal(cmn_frame_decode_push_begin(f.payload, f.len, &b2, err, sizeof err), 0);
  assert_true(b2.has_place && b2.place.offset == 3u << 20 && b2.chain_count == 0);
  /* The encoder refuses a placement the decoder would refuse. */
  b.place.handle = 0;
  assert_int_equal(cmn_frame_encode_push_begin(&b, buf, sizeof buf), CAIRN_EINVAL);
  b.place.handle = 9;
  b.place.offset = CMN_FRAME_CHUNK_MAX;
  assert_int_equal(cmn_frame_encode_push_begin(&b, buf, sizeof buf), CAIRN_EINVAL);
  b.has_place = false;
  /* An empty chain (the last server) and common address forms. */
  b.chain_count = 3;
  strcpy(b.chain[0], "127.0.0.1:8080");
  strcpy(b.chain[1], "[::1]:65535");
  strcpy(b.chain[2], "cs-03.rack2.local:1");
  f = parse_one(buf, cmn_frame_encode_push_begin(&b, buf, sizeof buf), CMN_FRAME_PUSH_BEGIN);
  assert_int_equal(cmn_frame_decode_push_begin(f.payload, f.len, &b2, err, sizeof err), 0);
  assert_int_equal(b2.chain_count, 3);
  assert_string_equal(b2.chain[1], "[::1]:65535");
  b.chain_count = 0;
  f = parse_one(buf, cmn_frame_encode_push_begin(&b, buf, sizeof buf), CMN_FRAME_PUSH_BEGIN);
  assert_int_equal(f.len, 29);
  assert_int_equal(cmn_frame_decode_push_begin(f.payload, f.len, &b2, err, sizeof err), 0);
  assert_int_equal(b2.chain_count, 0);
  assert_false(b2.has_place);

  /* PUSH_DATA: header from the encoder, bytes from the caller. */
  uint8_t data[5000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 31);
  static uint8_t frame[CMN_FRAME_HEADER_SIZE + 5000];
  assert_int_equal(cmn_frame_encode_data_header(CMN_FRAME_PUSH_DATA, data, sizeof data, frame), 0);
  memcpy(frame + CMN_FRAME_HEADER_SIZE, data, sizeof data);
  f = parse_one(frame, (int)sizeof frame, CMN_FRAME_PUSH_DATA);
  assert_memory_equal(f.payload, data, sizeof data);
  assert_int_equal(f.payload_crc, cmn_crc32c(0, data, sizeof data));
  /* A forwarder rebuilds the same header from the received fields. */
  uint8_t hdr[CMN_FRAME_HEADER_SIZE];
  assert_int_equal(cmn_frame_encode_header(f.type, f.frame_len, f.payload_crc, hdr), 0);
  assert_memory_equal(hdr, frame, CMN_FRAME_HEADER_SIZE);

  cmn_frame_push_end pe = {.status = 0, .bytes = 123456789}, pe2;
  memset(pe.data_id, 0x11, sizeof pe.data_id);
  f = parse_one(buf, cmn_frame_encode_push_end(&pe, buf, sizeof buf), CMN_FRAME_PUSH_END);
  assert_int_equal(cmn_frame_decode_push_end(f.payload, f.len, &pe2, err, sizeof err), 0);
  assert_memory_equal(pe2.data_id, pe.data_id, 16);
  assert_int_equal(pe2.status, 0);
  assert_true(pe2.bytes == pe.bytes);
  pe.status = CAIRN_EBUSY;
  f = parse_one(buf, cmn_frame_encode_push_ack(&pe, buf, sizeof buf), CMN_FRAME_PUSH_ACK);
  assert_int_equal(cmn_frame_decode_push_ack(f.payload, f.len, &pe2, err, sizeof err), 0);
  assert_int_equal(pe2.status, CAIRN_EBUSY);
  assert_true(pe2.bytes == pe.bytes);
}

static void round_trip_read_types(void **state) {
  (void)state;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  char err[200];

  cmn_frame_read r = {0x0102030405060708ull, 42, CMN_FRAME_CHUNK_MAX - 4096, 4096}, r2;
  cmn_frame f = parse_one(buf, cmn_frame_encode_read(&r, buf, sizeof buf), CMN_FRAME_READ);
  assert_int_equal(cmn_frame_decode_read(f.payload, f.len, &r2, err, sizeof err), 0);
  assert_true(r2.handle == r.handle && r2.version == r.version && r2.offset == r.offset);
  assert_int_equal(r2.length, r.length);

  uint8_t data[3] = {1, 2, 3};
  uint8_t frame[CMN_FRAME_HEADER_SIZE + 3];
  assert_int_equal(cmn_frame_encode_data_header(CMN_FRAME_READ_DATA, data, 3, frame), 0);
  memcpy(frame + CMN_FRAME_HEADER_SIZE, data, 3);
  f = parse_one(frame, (int)sizeof frame, CMN_FRAME_READ_DATA);
  assert_memory_equal(f.payload, data, 3);

  cmn_frame_read_end e = {CAIRN_ECHECKSUM, 65536}, e2;
  f = parse_one(buf, cmn_frame_encode_read_end(&e, buf, sizeof buf), CMN_FRAME_READ_END);
  assert_int_equal(cmn_frame_decode_read_end(f.payload, f.len, &e2, err, sizeof err), 0);
  assert_int_equal(e2.status, CAIRN_ECHECKSUM);
  assert_true(e2.total == 65536);

  cmn_frame_clone c = {99, 7}, c2;
  f = parse_one(buf, cmn_frame_encode_clone(&c, buf, sizeof buf), CMN_FRAME_CLONE);
  assert_int_equal(cmn_frame_decode_clone(f.payload, f.len, &c2, err, sizeof err), 0);
  assert_true(c2.handle == 99 && c2.version == 7);

  /* Names and kinds of every type. */
  assert_string_equal(cmn_frame_type_name(CMN_FRAME_READ_DATA), "READ_DATA");
  assert_true(cmn_frame_type_is_data(CMN_FRAME_PUSH_DATA));
  assert_false(cmn_frame_type_is_data(CMN_FRAME_READ));
  assert_false(cmn_frame_type_is_data(200));
}

/* ------------------------------------------------------------ decoders refuse */

/* Every fixed-size payload one byte short or one byte long is refused, as
 * is every truncation of a variable one. */
static void decoders_refuse_short_and_trailing(void **state) {
  (void)state;
  uint8_t p[CMN_FRAME_CTRL_PAYLOAD_MAX + 2];
  memset(p, 0x41, sizeof p); /* non-zero ids, 'A' strings */
  EXPECT_REFUSED(cmn_frame_decode_auth, p, 63, "short");
  EXPECT_REFUSED(cmn_frame_decode_auth, p, 65, "trailing");
  EXPECT_REFUSED(cmn_frame_decode_auth_ok, p, 31, "short");
  EXPECT_REFUSED(cmn_frame_decode_auth_ok, p, 33, "trailing");
  EXPECT_REFUSED(cmn_frame_decode_ping, p, 7, "short");
  EXPECT_REFUSED(cmn_frame_decode_pong, p, 9, "trailing");
  EXPECT_REFUSED(cmn_frame_decode_push_end, p, 27, "short");
  EXPECT_REFUSED(cmn_frame_decode_push_ack, p, 29, "trailing");
  EXPECT_REFUSED(cmn_frame_decode_read, p, 0, "short");
  EXPECT_REFUSED(cmn_frame_decode_read_end, p, 13, "trailing");
  EXPECT_REFUSED(cmn_frame_decode_clone, p, 15, "short");
  EXPECT_REFUSED(cmn_frame_decode_clone, p, 17, "trailing");

  /* HELLO: id length says 5. */
  p[CMN_FRAME_NONCE_SIZE] = 5;
  cmn_frame_hello h;
  assert_int_equal(cmn_frame_decode_hello(p, CMN_FRAME_NONCE_SIZE + 6, &h, NULL, 0), 0);
  EXPECT_REFUSED(cmn_frame_decode_hello, p, CMN_FRAME_NONCE_SIZE + 5, "short");
  EXPECT_REFUSED(cmn_frame_decode_hello, p, CMN_FRAME_NONCE_SIZE + 7, "trailing");
  EXPECT_REFUSED(cmn_frame_decode_hello, p, 10, "short");

  /* ERROR: message length says 3. */
  uint8_t e[16];
  put32(e, (uint32_t)CAIRN_EIO);
  e[4] = 3;
  e[5] = 0;
  memcpy(e + 6, "abcdefgh", 8);
  cmn_frame_error er;
  assert_int_equal(cmn_frame_decode_error(e, 9, &er, NULL, 0), 0);
  assert_string_equal(er.message, "abc");
  EXPECT_REFUSED(cmn_frame_decode_error, e, 8, "short");
  EXPECT_REFUSED(cmn_frame_decode_error, e, 10, "trailing");
  EXPECT_REFUSED(cmn_frame_decode_error, e, 5, "short");

  /* PUSH_BEGIN: every truncation of a valid payload, and extra bytes. */
  const char *chain[] = {"a:1", "host-b:8080", "[::1]:9"};
  size_t n = raw_push_begin(p, 3, chain);
  cmn_frame_push_begin b;
  assert_int_equal(cmn_frame_decode_push_begin(p, n, &b, NULL, 0), 0);
  for (size_t cut = 0; cut < n; cut++) {
    char err[300];
    assert_int_equal(cmn_frame_decode_push_begin(p, cut, &b, err, sizeof err), CAIRN_EPROTO);
  }
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n - 1, "past the payload end");
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n - 8, "ends before chain entry 2");
  p[n] = 0;
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n + 1, "trailing");
  /* A placement: exactly tag 1 and three u64; anything else is refused. */
  memset(p + n, 0, CMN_FRAME_PLACE_SIZE + 1);
  p[n] = 1;
  p[n + 1] = 5;  /* handle 5 */
  p[n + 9] = 2;  /* version 2 */
  p[n + 17] = 9; /* offset 9 */
  assert_int_equal(cmn_frame_decode_push_begin(p, n + CMN_FRAME_PLACE_SIZE, &b, NULL, 0), 0);
  assert_true(b.has_place && b.place.handle == 5 && b.place.version == 2 && b.place.offset == 9);
  for (size_t cut = 1; cut < CMN_FRAME_PLACE_SIZE; cut++)
    EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n + cut, "not a placement");
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n + CMN_FRAME_PLACE_SIZE + 1, "not a placement");
  p[n] = 2;
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n + CMN_FRAME_PLACE_SIZE, "not a placement");
  p[n] = 1;
  p[n + 1] = 0;
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n + CMN_FRAME_PLACE_SIZE, "neither may be 0");
  p[n + 1] = 5;
  p[n + 9] = 0;
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n + CMN_FRAME_PLACE_SIZE, "neither may be 0");
  p[n + 9] = 2;
  memset(p + n + 17, 0xff, 8);
  p[n + 17] = 0xfe; /* not the "end" marker, and past the largest chunk */
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n + CMN_FRAME_PLACE_SIZE, "outside the chunk");
  /* NULL payloads are refused too. */
  EXPECT_REFUSED(cmn_frame_decode_read, NULL, 28, "no payload");
}

/* Strings: oversized, empty, NUL inside, control bytes, bad addresses. */
static void decoders_refuse_bad_strings(void **state) {
  (void)state;
  uint8_t p[600];
  memset(p, 0x41, sizeof p);
  /* HELLO server id. */
  p[CMN_FRAME_NONCE_SIZE] = CMN_FRAME_SERVER_ID_MAX + 1;
  EXPECT_REFUSED(cmn_frame_decode_hello, p, CMN_FRAME_NONCE_SIZE + 1 + 65, "over 64");
  p[CMN_FRAME_NONCE_SIZE] = 0;
  EXPECT_REFUSED(cmn_frame_decode_hello, p, CMN_FRAME_NONCE_SIZE + 1, "empty");
  p[CMN_FRAME_NONCE_SIZE] = 4;
  p[CMN_FRAME_NONCE_SIZE + 3] = 0;
  EXPECT_REFUSED(cmn_frame_decode_hello, p, CMN_FRAME_NONCE_SIZE + 5, "NUL byte at offset 2");
  p[CMN_FRAME_NONCE_SIZE + 3] = ' ';
  EXPECT_REFUSED(cmn_frame_decode_hello, p, CMN_FRAME_NONCE_SIZE + 5, "byte 0x20");

  /* ERROR message. */
  uint8_t e[300];
  memset(e, 'x', sizeof e);
  put32(e, (uint32_t)CAIRN_EIO);
  e[4] = (uint8_t)(257 & 0xff);
  e[5] = (uint8_t)(257 >> 8);
  EXPECT_REFUSED(cmn_frame_decode_error, e, 6 + 257, "over 256");
  e[4] = 10;
  e[5] = 0;
  e[6 + 4] = 0;
  EXPECT_REFUSED(cmn_frame_decode_error, e, 16, "NUL byte at offset 4");
  e[6 + 4] = '\n';
  EXPECT_REFUSED(cmn_frame_decode_error, e, 16, "byte 0x0a");
  e[6 + 4] = 0x7f;
  EXPECT_REFUSED(cmn_frame_decode_error, e, 16, "byte 0x7f");

  /* Chain entries. */
  struct {
    const char *addr;
    const char *needle;
  } bad[] = {
      {"host", "no ':port'"},   {":80", "empty host"},        {"h:", "invalid port"},
      {"h:0", "invalid port"},  {"h:65536", "invalid port"},  {"h:080", "invalid port"},
      {"h:8o", "invalid port"}, {"h:123456", "invalid port"}, {"h st:1", "byte 0x20"},
      {"h\x01:1", "byte 0x01"}, {"h\xc3\xa9:1", "byte 0xc3"}, {"", "is empty"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *chain[] = {"ok:1", bad[i].addr};
    size_t n = raw_push_begin(p, 2, chain);
    EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n, bad[i].needle);
  }
  /* A NUL inside an entry (strlen cannot express it: patch the bytes). */
  const char *chain[] = {"good:1", "abcdef:22"};
  size_t n = raw_push_begin(p, 2, chain);
  p[n - 5] = 0;
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n,
                 "chain entry 1 contains a NUL byte at offset 4");
}

/* Counts, ids, codes and ranges. */
static void decoders_refuse_bad_fields(void **state) {
  (void)state;
  uint8_t p[CMN_FRAME_CTRL_PAYLOAD_MAX + 300];
  const char *many[16];
  for (int i = 0; i < 16; i++) many[i] = "h:1";
  size_t n = raw_push_begin(p, 16, many);
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n, "16 entries, at most 15");
  p[28] = 255;
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n, "255 entries");
  n = raw_push_begin(p, 15, many);
  cmn_frame_push_begin b;
  assert_int_equal(cmn_frame_decode_push_begin(p, n, &b, NULL, 0), 0);
  memset(p, 0, 16);
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n, "data id is all zero");
  n = raw_push_begin(p, 0, NULL);
  put64(p + 16, 0);
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n, "total length 0");
  put64(p + 16, CMN_FRAME_CHUNK_MAX + 1);
  EXPECT_REFUSED(cmn_frame_decode_push_begin, p, n, "outside");

  /* Nonces. */
  memset(p, 0, 97);
  p[CMN_FRAME_NONCE_SIZE] = 1;
  p[CMN_FRAME_NONCE_SIZE + 1] = 'x';
  EXPECT_REFUSED(cmn_frame_decode_hello, p, CMN_FRAME_NONCE_SIZE + 2, "nonce is all zero");
  memset(p, 0x33, CMN_FRAME_MAC_SIZE);
  memset(p + CMN_FRAME_MAC_SIZE, 0, CMN_FRAME_NONCE_SIZE);
  EXPECT_REFUSED(cmn_frame_decode_auth, p, 64, "nonce is all zero");

  /* Error codes: unknown, zero, positive. */
  uint8_t e[6] = {0};
  int32_t codes[] = {0, 1, -9999, INT32_MIN};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
    put32(e, (uint32_t)codes[i]);
    EXPECT_REFUSED(cmn_frame_decode_error, e, 6, "not a known error code");
  }
  /* Statuses: 0 is fine, positive or unknown is not. */
  memset(p, 0x22, 28);
  put32(p + 16, 0);
  put64(p + 20, 5);
  cmn_frame_push_end pe;
  assert_int_equal(cmn_frame_decode_push_ack(p, 28, &pe, NULL, 0), 0);
  put32(p + 16, 3);
  EXPECT_REFUSED(cmn_frame_decode_push_ack, p, 28, "PUSH_ACK status 3");
  put32(p + 16, (uint32_t)CAIRN_EIO);
  put64(p + 20, CMN_FRAME_CHUNK_MAX + 1);
  EXPECT_REFUSED(cmn_frame_decode_push_end, p, 28, "byte count");
  put64(p + 20, 0);
  memset(p, 0, 16);
  EXPECT_REFUSED(cmn_frame_decode_push_end, p, 28, "data id is all zero");
  uint8_t re[12];
  put32(re, (uint32_t)-500);
  put64(re + 4, 0);
  EXPECT_REFUSED(cmn_frame_decode_read_end, re, 12, "-500");
  put32(re, 0);
  put64(re + 4, CMN_FRAME_CHUNK_MAX + 1);
  EXPECT_REFUSED(cmn_frame_decode_read_end, re, 12, "total");

  /* READ and CLONE ranges. */
  uint8_t r[28];
  put64(r, 0);
  put64(r + 8, 1);
  put64(r + 16, 0);
  put32(r + 24, 1);
  EXPECT_REFUSED(cmn_frame_decode_read, r, 28, "handle is 0");
  put64(r, 1);
  put64(r + 8, 0);
  EXPECT_REFUSED(cmn_frame_decode_read, r, 28, "version is 0");
  put64(r + 8, 1);
  put32(r + 24, 0);
  EXPECT_REFUSED(cmn_frame_decode_read, r, 28, "length is 0");
  put32(r + 24, 2);
  put64(r + 16, CMN_FRAME_CHUNK_MAX - 1);
  EXPECT_REFUSED(cmn_frame_decode_read, r, 28, "past the largest chunk");
  put64(r + 16, UINT64_MAX); /* offset + length would wrap */
  EXPECT_REFUSED(cmn_frame_decode_read, r, 28, "past the largest chunk");
  put64(r + 16, CMN_FRAME_CHUNK_MAX - 2);
  cmn_frame_read rd;
  assert_int_equal(cmn_frame_decode_read(r, 28, &rd, NULL, 0), 0);
  put64(r, 0);
  EXPECT_REFUSED(cmn_frame_decode_clone, r, 16, "CLONE chunk handle is 0");
}

/* ------------------------------------------------------------ encoders refuse */

/* What a decoder refuses an encoder refuses too (EINVAL), and a buffer
 * one byte short is ETOOBIG with nothing promised about its content. */
static void encoders_refuse_invalid(void **state) {
  (void)state;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  cmn_frame_hello h;
  memset(&h, 0, sizeof h);
  strcpy(h.server_id, "srv");
  assert_int_equal(cmn_frame_encode_hello(&h, buf, sizeof buf), CAIRN_EINVAL); /* zero nonce */
  h.nonce[3] = 1;
  int n = cmn_frame_encode_hello(&h, buf, sizeof buf);
  assert_int_equal(n, CMN_FRAME_HEADER_SIZE + 32 + 1 + 3);
  assert_int_equal(cmn_frame_encode_hello(&h, buf, (size_t)n - 1), CAIRN_ETOOBIG);
  memset(h.server_id, 'q', sizeof h.server_id); /* not terminated within 64 */
  assert_int_equal(cmn_frame_encode_hello(&h, buf, sizeof buf), CAIRN_EINVAL);
  strcpy(h.server_id, "a b");
  assert_int_equal(cmn_frame_encode_hello(&h, buf, sizeof buf), CAIRN_EINVAL);
  h.server_id[0] = '\0';
  assert_int_equal(cmn_frame_encode_hello(&h, buf, sizeof buf), CAIRN_EINVAL);

  cmn_frame_error e = {.code = 5};
  strcpy(e.message, "x");
  assert_int_equal(cmn_frame_encode_error(&e, buf, sizeof buf), CAIRN_EINVAL);
  e.code = CAIRN_EIO;
  strcpy(e.message, "line\nbreak");
  assert_int_equal(cmn_frame_encode_error(&e, buf, sizeof buf), CAIRN_EINVAL);
  memset(e.message, 'm', sizeof e.message);
  assert_int_equal(cmn_frame_encode_error(&e, buf, sizeof buf), CAIRN_EINVAL);

  static cmn_frame_push_begin b;
  memset(&b, 0, sizeof b);
  b.data_id[0] = 1;
  b.total_len = 10;
  b.chain_count = 16;
  assert_int_equal(cmn_frame_encode_push_begin(&b, buf, sizeof buf), CAIRN_EINVAL);
  b.chain_count = 1;
  memset(b.chain[0], 'h', sizeof b.chain[0]); /* 256 bytes, over 255 */
  assert_int_equal(cmn_frame_encode_push_begin(&b, buf, sizeof buf), CAIRN_EINVAL);
  strcpy(b.chain[0], "nohost");
  assert_int_equal(cmn_frame_encode_push_begin(&b, buf, sizeof buf), CAIRN_EINVAL);
  strcpy(b.chain[0], "h:1");
  assert_int_equal(cmn_frame_encode_push_begin(&b, buf, sizeof buf), CMN_FRAME_HEADER_SIZE + 33);
  b.total_len = 0;
  assert_int_equal(cmn_frame_encode_push_begin(&b, buf, sizeof buf), CAIRN_EINVAL);

  cmn_frame_push_end pe = {.status = 0, .bytes = 1};
  assert_int_equal(cmn_frame_encode_push_end(&pe, buf, sizeof buf), CAIRN_EINVAL);
  cmn_frame_read r = {1, 1, 0, 0};
  assert_int_equal(cmn_frame_encode_read(&r, buf, sizeof buf), CAIRN_EINVAL);
  cmn_frame_read_end re = {1, 0};
  assert_int_equal(cmn_frame_encode_read_end(&re, buf, sizeof buf), CAIRN_EINVAL);
  cmn_frame_clone c = {1, 0};
  assert_int_equal(cmn_frame_encode_clone(&c, buf, sizeof buf), CAIRN_EINVAL);
  cmn_frame_auth a;
  memset(&a, 0, sizeof a);
  assert_int_equal(cmn_frame_encode_auth(&a, buf, sizeof buf), CAIRN_EINVAL);
  cmn_frame_ping pg = {1};
  assert_int_equal(cmn_frame_encode_ping(&pg, buf, CMN_FRAME_HEADER_SIZE + 7), CAIRN_ETOOBIG);
  assert_int_equal(cmn_frame_encode_ping(NULL, buf, sizeof buf), CAIRN_EINVAL);

  /* Headers: unknown type, lengths outside the type's range. */
  uint8_t hdr[CMN_FRAME_HEADER_SIZE];
  assert_int_equal(cmn_frame_encode_header(9, 8, 0, hdr), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_encode_header(CMN_FRAME_PING, 9, 0, hdr), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_encode_header(CMN_FRAME_PUSH_DATA, CMN_FRAME_DATA_MAX + 1, 0, hdr),
                   CAIRN_EINVAL);
  assert_int_equal(cmn_frame_encode_data_header(CMN_FRAME_PUSH_DATA, buf, 0, hdr), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_encode_data_header(CMN_FRAME_READ, buf, 28, hdr), CAIRN_EINVAL);
}

/* encode_errorf always produces a frame the decoder accepts. */
static void errorf_sanitizes(void **state) {
  (void)state;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  char big[600];
  memset(big, 'B', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  int n = cmn_frame_encode_errorf(CAIRN_EAUTH, buf, sizeof buf, "bad\nsecret\t%s", big);
  cmn_frame f = parse_one(buf, n, CMN_FRAME_ERROR);
  cmn_frame_error e;
  assert_int_equal(cmn_frame_decode_error(f.payload, f.len, &e, NULL, 0), 0);
  assert_int_equal(e.code, CAIRN_EAUTH);
  assert_int_equal(strlen(e.message), CMN_FRAME_MESSAGE_MAX);
  assert_memory_equal(e.message, "bad?secret?BB", 13);
  n = cmn_frame_encode_errorf(12345, buf, sizeof buf, "odd code");
  f = parse_one(buf, n, CMN_FRAME_ERROR);
  assert_int_equal(cmn_frame_decode_error(f.payload, f.len, &e, NULL, 0), 0);
  assert_int_equal(e.code, CAIRN_EINTERNAL);
  assert_int_equal(cmn_frame_encode_errorf(CAIRN_EIO, buf, 10, "x"), CAIRN_ETOOBIG);
}

CAIRN_TEST_MAIN(cmocka_unit_test(round_trip_handshake_types),
                cmocka_unit_test(round_trip_push_types), cmocka_unit_test(round_trip_read_types),
                cmocka_unit_test(decoders_refuse_short_and_trailing),
                cmocka_unit_test(decoders_refuse_bad_strings),
                cmocka_unit_test(decoders_refuse_bad_fields),
                cmocka_unit_test(encoders_refuse_invalid), cmocka_unit_test(errorf_sanitizes))
