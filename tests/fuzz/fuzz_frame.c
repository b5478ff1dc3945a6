/*
 * fuzz_frame.c - libFuzzer target for the data-plane frame codec
 * (common/frame.c, frame_msg.c, frame_auth.c).
 *
 * Not part of the default build. From the repository root:
 *
 *   clang -g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *     -Icommon tests/fuzz/fuzz_frame.c common/frame.c common/frame_msg.c \
 *     common/frame_auth.c common/crc32c.c common/util.c common/error.c \
 *     -lcrypto -o fuzz_frame
 *   mkdir -p corpus && ./fuzz_frame -max_len=8192 corpus
 *
 * One input drives three things:
 *   1. the parser, fed the input in slices whose sizes come from the input's
 *      first bytes (so slicing is fuzzed too), with a small data limit half
 *      of the time; every event is checked against the parser's promises
 *      and every complete control frame goes to its decoder;
 *   2. every decoder, on the raw input as a payload;
 *   3. a server and a client handshake, fed each complete control frame.
 * Any crash, sanitizer report or broken promise (abort) is a finding.
 */
#include "cairn_error.h"
#include "cmn_frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)       \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

/* Decode a payload as `type`; the result must be accepted or EPROTO. */
static void decode_as(int type, const uint8_t *p, size_t len) {
  char err[256];
  union {
    cmn_frame_hello hello;
    cmn_frame_auth auth;
    cmn_frame_auth_ok auth_ok;
    cmn_frame_error error;
    cmn_frame_ping ping;
    cmn_frame_push_begin push_begin;
    cmn_frame_push_end push_end;
    cmn_frame_read read;
    cmn_frame_read_end read_end;
    cmn_frame_clone clone;
  } u;
  int rc = 0;
  switch (type) {
    case CMN_FRAME_HELLO: rc = cmn_frame_decode_hello(p, len, &u.hello, err, sizeof err); break;
    case CMN_FRAME_AUTH: rc = cmn_frame_decode_auth(p, len, &u.auth, err, sizeof err); break;
    case CMN_FRAME_AUTH_OK:
      rc = cmn_frame_decode_auth_ok(p, len, &u.auth_ok, err, sizeof err);
      break;
    case CMN_FRAME_ERROR: rc = cmn_frame_decode_error(p, len, &u.error, err, sizeof err); break;
    case CMN_FRAME_PING: rc = cmn_frame_decode_ping(p, len, &u.ping, err, sizeof err); break;
    case CMN_FRAME_PONG: rc = cmn_frame_decode_pong(p, len, &u.ping, err, sizeof err); break;
    case CMN_FRAME_PUSH_BEGIN:
      rc = cmn_frame_decode_push_begin(p, len, &u.push_begin, err, sizeof err);
      if (rc == 0) { /* what was accepted must encode back to the same bytes */
        uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
        int n = cmn_frame_encode_push_begin(&u.push_begin, buf, sizeof buf);
        CHECK(n == (int)(CMN_FRAME_HEADER_SIZE + len));
        CHECK(memcmp(buf + CMN_FRAME_HEADER_SIZE, p, len) == 0);
      }
      break;
    case CMN_FRAME_PUSH_END:
      rc = cmn_frame_decode_push_end(p, len, &u.push_end, err, sizeof err);
      break;
    case CMN_FRAME_PUSH_ACK:
      rc = cmn_frame_decode_push_ack(p, len, &u.push_end, err, sizeof err);
      break;
    case CMN_FRAME_READ: rc = cmn_frame_decode_read(p, len, &u.read, err, sizeof err); break;
    case CMN_FRAME_READ_END:
      rc = cmn_frame_decode_read_end(p, len, &u.read_end, err, sizeof err);
      break;
    case CMN_FRAME_CLONE: rc = cmn_frame_decode_clone(p, len, &u.clone, err, sizeof err); break;
    default: return;
  }
  CHECK(rc == 0 || rc == CAIRN_EPROTO);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int types[] = {CMN_FRAME_HELLO,      CMN_FRAME_AUTH,     CMN_FRAME_AUTH_OK,
                              CMN_FRAME_ERROR,      CMN_FRAME_PING,     CMN_FRAME_PONG,
                              CMN_FRAME_PUSH_BEGIN, CMN_FRAME_PUSH_END, CMN_FRAME_PUSH_ACK,
                              CMN_FRAME_READ,       CMN_FRAME_READ_END, CMN_FRAME_CLONE};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) decode_as(types[i], data, size);
  if (size < 2) return 0;

  /* Slicing and limit from the first two bytes. */
  size_t slice = 1 + data[0];
  size_t max_data = (data[1] & 1) ? 0 : 64;
  data += 2;
  size -= 2;

  cmn_frame_parser *p = NULL;
  CHECK(cmn_frame_parser_new(max_data, &p) == 0);
  cmn_frame_hs srv, cli;
  uint8_t hello[CMN_FRAME_CTRL_FRAME_MAX], reply[CMN_FRAME_CTRL_FRAME_MAX];
  CHECK(cmn_frame_hs_server_start(&srv, "fuzz-secret-0123456789", "cs-fuzz", hello, sizeof hello) >
        0);
  CHECK(cmn_frame_hs_client_start(&cli, "fuzz-secret-0123456789", NULL) == 0);

  size_t pos = 0, data_have = 0;
  int rc = 0;
  while (pos < size && rc >= 0) {
    size_t n = slice < size - pos ? slice : size - pos, off = 0;
    while (off < n) {
      size_t used = 0;
      cmn_frame f;
      rc = cmn_frame_feed(p, data + pos + off, n - off, &used, &f);
      CHECK(used <= n - off);
      off += used;
      if (rc <= 0) break;
      CHECK(used > 0 && f.payload && f.len > 0 && f.offset + f.len <= f.frame_len);
      if (cmn_frame_type_is_data((int)f.type)) {
        CHECK(f.offset == data_have);
        data_have = f.end ? 0 : data_have + f.len;
        continue;
      }
      CHECK(f.end && f.len == f.frame_len);
      decode_as(f.type, f.payload, f.len);
      size_t out = 0;
      int h = cmn_frame_hs_on_frame(&srv, &f, reply, sizeof reply, &out);
      CHECK(h <= 1 && out <= sizeof reply);
      h = cmn_frame_hs_on_frame(&cli, &f, reply, sizeof reply, &out);
      CHECK(h <= 1 && out <= sizeof reply);
    }
    CHECK(rc < 0 || off == n);
    pos += n;
  }
  if (rc < 0) {
    CHECK(cmn_frame_parser_fault(p) != CMN_FRAME_FAULT_NONE);
    size_t used = 1;
    cmn_frame f;
    CHECK(cmn_frame_feed(p, data, size, &used, &f) == rc && used == 0);
  }
  cmn_frame_parser_free(p);
  return 0;
}
