/* Unit tests for the data-plane frame parser (common/frame.c): streams of
 * frames in every slicing, each malformed header and payload, and garbage.
 * The payload codecs are tested in test_frame_msg.c, the handshake in
 * test_frame_auth.c. */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_frame.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

/* Fixed-seed xorshift64*: the same streams on every run. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}
static size_t rng_below(uint64_t *s, size_t bound) { return (size_t)(rng_next(s) % bound); }
static void rng_fill(uint64_t *s, uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) p[i] = (uint8_t)(rng_next(s) >> 56);
}

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A header with any field values, its header CRC made valid (so the field
 * under test, not the CRC, is what the parser sees first). */
static void raw_header(uint8_t h[CMN_FRAME_HEADER_SIZE], int type, int flags, int reserved,
                       uint32_t len, uint32_t payload_crc) {
  put32(h, CMN_FRAME_MAGIC);
  h[4] = (uint8_t)type;
  h[5] = (uint8_t)flags;
  h[6] = (uint8_t)reserved;
  h[7] = (uint8_t)(reserved >> 8);
  put32(h + 8, len);
  put32(h + 12, payload_crc);
  put32(h + 16, cmn_crc32c(0, h, 16));
}

static cmn_frame_parser *new_parser(size_t max_data) {
  cmn_frame_parser *p = NULL;
  assert_int_equal(cmn_frame_parser_new(max_data, &p), 0);
  assert_non_null(p);
  return p;
}

/* A failed parser keeps failing the same way and consumes nothing, even
 * when handed a perfectly valid frame. */
static void assert_failed_for_good(cmn_frame_parser *p, int rc, cmn_frame_fault fault) {
  uint8_t good[CMN_FRAME_CTRL_FRAME_MAX];
  cmn_frame_ping ping = {.token = 7};
  int n = cmn_frame_encode_ping(&ping, good, sizeof good);
  assert_true(n > 0);
  for (int i = 0; i < 3; i++) {
    size_t used = 99;
    cmn_frame f;
    assert_int_equal(cmn_frame_feed(p, good, (size_t)n, &used, &f), rc);
    assert_int_equal(used, 0);
    assert_int_equal(cmn_frame_parser_fault(p), fault);
    assert_true(strlen(cmn_frame_parser_error(p)) > 10);
  }
}

/* Feed `buf` whole and expect a fault after consuming at most `len`. */
static void expect_fault(cmn_frame_parser *p, const uint8_t *buf, size_t len, int rc,
                         cmn_frame_fault fault) {
  size_t used = 0;
  cmn_frame f;
  assert_int_equal(cmn_frame_feed(p, buf, len, &used, &f), rc);
  assert_true(used <= len);
  assert_failed_for_good(p, rc, fault);
}

/* Frames reassembled from parser events: control frames as delivered, data
 * frames glued from their pieces (which must arrive in order). */
typedef struct got_frame {
  int type;
  uint8_t *data;
  size_t len;
} got_frame;

typedef struct collector {
  got_frame *f;
  size_t n, cap;
  uint8_t *cur; /* data frame being assembled */
  size_t cur_len;
} collector;

static void collector_free(collector *c) {
  for (size_t i = 0; i < c->n; i++) free(c->f[i].data);
  free(c->f);
  free(c->cur);
  memset(c, 0, sizeof *c);
}

static void collect_push(collector *c, int type, uint8_t *data, size_t len) {
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 64;
    c->f = realloc(c->f, c->cap * sizeof *c->f);
    assert_non_null(c->f);
  }
  c->f[c->n++] = (got_frame){type, data, len};
}

/* Check one event against the parser's promises and record it. */
static void collect_event(collector *c, const cmn_frame *ev) {
  assert_non_null(cmn_frame_type_name(ev->type));
  assert_non_null(ev->payload);
  assert_true(ev->len >= 1);
  assert_true(ev->offset + ev->len <= ev->frame_len);
  assert_int_equal(ev->flags, 0);
  if (!cmn_frame_type_is_data(ev->type)) {
    assert_true(ev->end);
    assert_int_equal(ev->offset, 0);
    assert_int_equal(ev->len, ev->frame_len);
    uint8_t *copy = malloc(ev->len);
    assert_non_null(copy);
    memcpy(copy, ev->payload, ev->len);
    collect_push(c, ev->type, copy, ev->len);
    return;
  }
  if (ev->offset == 0) {
    assert_null(c->cur);
    c->cur = malloc(ev->frame_len);
    assert_non_null(c->cur);
    c->cur_len = 0;
  }
  assert_non_null(c->cur);
  assert_int_equal(ev->offset, c->cur_len);
  memcpy(c->cur + c->cur_len, ev->payload, ev->len);
  c->cur_len += ev->len;
  assert_int_equal(ev->end, c->cur_len == ev->frame_len);
  if (ev->end) {
    assert_int_equal(cmn_crc32c(0, c->cur, c->cur_len), ev->payload_crc);
    collect_push(c, ev->type, c->cur, c->cur_len);
    c->cur = NULL;
  }
}

/*
 * Feed `len` bytes in slices: `slice` 0 means random sizes from the rng
 * (1 .. 3 * max_slice), otherwise that fixed size. Returns the final
 * status: 0 (needs more / idle) or the parser's error.
 */
static int feed_stream(cmn_frame_parser *p, const uint8_t *buf, size_t len, size_t slice,
                       uint64_t *rng, size_t max_slice, collector *c) {
  size_t pos = 0;
  while (pos < len) {
    size_t n = slice ? slice : 1 + rng_below(rng, 3 * max_slice);
    n = n < len - pos ? n : len - pos;
    size_t off = 0;
    while (off < n) {
      size_t used = 0;
      cmn_frame ev;
      int rc = cmn_frame_feed(p, buf + pos + off, n - off, &used, &ev);
      if (rc < 0) return rc;
      off += used;
      if (rc == 0) {
        assert_int_equal(off, n);
        break;
      }
      assert_int_equal(rc, 1);
      assert_true(used > 0);
      collect_event(c, &ev);
    }
    pos += n;
  }
  return 0;
}

/* A control frame of a random type with random (valid) fields. */
static int random_ctrl(uint64_t *rng, uint8_t *buf, size_t cap) {
  switch (rng_below(rng, 6)) {
    case 0: {
      cmn_frame_hello m;
      memset(&m, 0, sizeof m);
      rng_fill(rng, m.nonce, sizeof m.nonce);
      m.nonce[0] |= 1;
      size_t n = 1 + rng_below(rng, CMN_FRAME_SERVER_ID_MAX);
      for (size_t i = 0; i < n; i++) m.server_id[i] = (char)('a' + rng_below(rng, 26));
      return cmn_frame_encode_hello(&m, buf, cap);
    }
    case 1: {
      cmn_frame_push_begin m;
      memset(&m, 0, sizeof m);
      rng_fill(rng, m.data_id, sizeof m.data_id);
      m.data_id[0] |= 1;
      m.total_len = 1 + rng_below(rng, 1u << 26);
      m.crc32c = (uint32_t)rng_next(rng);
      m.chain_count = (uint32_t)rng_below(rng, CMN_FRAME_CHAIN_MAX + 1);
      for (uint32_t i = 0; i < m.chain_count; i++) {
        size_t h = 1 + rng_below(rng, 240);
        memset(m.chain[i], 'h', h);
        snprintf(m.chain[i] + h, sizeof m.chain[i] - h, ":%u", 1 + (unsigned)rng_below(rng, 65535));
      }
      return cmn_frame_encode_push_begin(&m, buf, cap);
    }
    case 2: {
      cmn_frame_read m = {1 + rng_next(rng) % 1000, 1 + rng_next(rng) % 9, rng_below(rng, 1u << 26),
                          1 + (uint32_t)rng_below(rng, 1u << 20)};
      return cmn_frame_encode_read(&m, buf, cap);
    }
    case 3: {
      cmn_frame_error m = {.code = CAIRN_ECHECKSUM};
      snprintf(m.message, sizeof m.message, "block %llu bad", (unsigned long long)rng_next(rng));
      return cmn_frame_encode_error(&m, buf, cap);
    }
    case 4: {
      cmn_frame_push_end m = {.status = 0, .bytes = rng_below(rng, 1u << 26)};
      rng_fill(rng, m.data_id, sizeof m.data_id);
      m.data_id[15] |= 0x80;
      return cmn_frame_encode_push_ack(&m, buf, cap);
    }
    default: {
      cmn_frame_ping m = {rng_next(rng)};
      return cmn_frame_encode_pong(&m, buf, cap);
    }
  }
}

/*
 * A stream of `count` frames: control frames of every kind and data frames
 * from 1 byte to a full 1 MiB. `want` gets the frames a parser must report.
 */
static uint8_t *build_stream(uint64_t *rng, int count, bool big, size_t *len, collector *want) {
  size_t cap = 4u << 20, n = 0;
  uint8_t *s = malloc(cap);
  assert_non_null(s);
  for (int i = 0; i < count; i++) {
    if (n + CMN_FRAME_HEADER_SIZE + CMN_FRAME_DATA_MAX > cap) {
      cap *= 2;
      s = realloc(s, cap);
      assert_non_null(s);
    }
    if (rng_below(rng, 2) == 0) {
      int w = random_ctrl(rng, s + n, CMN_FRAME_CTRL_FRAME_MAX);
      assert_true(w > CMN_FRAME_HEADER_SIZE);
      uint8_t *copy = malloc((size_t)w - CMN_FRAME_HEADER_SIZE);
      assert_non_null(copy);
      memcpy(copy, s + n + CMN_FRAME_HEADER_SIZE, (size_t)w - CMN_FRAME_HEADER_SIZE);
      collect_push(want, s[n + 4], copy, (size_t)w - CMN_FRAME_HEADER_SIZE);
      n += (size_t)w;
    } else {
      size_t dl = big && i == count / 2 ? CMN_FRAME_DATA_MAX
                                        : 1 + rng_below(rng, rng_below(rng, 4) ? 300 : 70000);
      int type = rng_below(rng, 2) ? CMN_FRAME_PUSH_DATA : CMN_FRAME_READ_DATA;
      uint8_t *copy = malloc(dl);
      assert_non_null(copy);
      rng_fill(rng, copy, dl);
      assert_int_equal(cmn_frame_encode_data_header(type, copy, dl, s + n), 0);
      memcpy(s + n + CMN_FRAME_HEADER_SIZE, copy, dl);
      n += CMN_FRAME_HEADER_SIZE + dl;
      collect_push(want, type, copy, dl);
    }
  }
  *len = n;
  return s;
}

static void assert_same_frames(const collector *a, const collector *b) {
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    assert_int_equal(a->f[i].type, b->f[i].type);
    assert_int_equal(a->f[i].len, b->f[i].len);
    assert_memory_equal(a->f[i].data, b->f[i].data, a->f[i].len);
  }
}

/* ------------------------------------------------------------ streams */

/* The same stream fed whole, 1 byte at a time, and in random slices of
 * several scales gives exactly the frames that were encoded. */
static void stream_in_any_slicing(void **state) {
  (void)state;
  uint64_t rng = 0x5eed0001;
  collector want = {0};
  size_t len = 0;
  uint8_t *s = build_stream(&rng, 300, true, &len, &want);
  assert_int_equal(want.n, 300);
  assert_true(len > CMN_FRAME_DATA_MAX + 100000);

  struct {
    size_t fixed, max;
  } modes[] = {{len, 0}, {1, 0}, {7, 0}, {0, 16}, {0, 4096}, {0, 300000}};
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    cmn_frame_parser *p = new_parser(0);
    collector got = {0};
    uint64_t r = 42 + m;
    assert_int_equal(feed_stream(p, s, len, modes[m].fixed, &r, modes[m].max, &got), 0);
    assert_true(cmn_frame_parser_idle(p));
    assert_int_equal(cmn_frame_parser_fault(p), CMN_FRAME_FAULT_NONE);
    assert_string_equal(cmn_frame_parser_error(p), "");
    assert_same_frames(&want, &got);
    collector_free(&got);
    cmn_frame_parser_free(p);
  }
  collector_free(&want);
  free(s);
}

/* Fed whole, control payloads and data pieces point into the caller's
 * slice (no copy); a control frame split across feeds is gathered by the
 * parser and still delivered whole. */
static void zero_copy_when_contiguous(void **state) {
  (void)state;
  uint8_t *buf = malloc(CMN_FRAME_HEADER_SIZE + CMN_FRAME_DATA_MAX);
  assert_non_null(buf);
  for (size_t i = 0; i < CMN_FRAME_DATA_MAX; i++) buf[CMN_FRAME_HEADER_SIZE + i] = (uint8_t)i;
  assert_int_equal(cmn_frame_encode_data_header(CMN_FRAME_PUSH_DATA, buf + CMN_FRAME_HEADER_SIZE,
                                                CMN_FRAME_DATA_MAX, buf),
                   0);
  cmn_frame_parser *p = new_parser(0);
  cmn_frame f;
  size_t used = 0;
  assert_int_equal(cmn_frame_feed(p, buf, CMN_FRAME_HEADER_SIZE + CMN_FRAME_DATA_MAX, &used, &f),
                   1);
  assert_int_equal(used, CMN_FRAME_HEADER_SIZE + CMN_FRAME_DATA_MAX);
  assert_ptr_equal(f.payload, buf + CMN_FRAME_HEADER_SIZE);
  assert_int_equal(f.len, CMN_FRAME_DATA_MAX);
  assert_true(f.end);

  /* Header alone: needs more, a pending frame. Then two halves: the first
   * is an unverified piece, the second ends the frame. */
  assert_int_equal(cmn_frame_feed(p, buf, CMN_FRAME_HEADER_SIZE, &used, &f), 0);
  assert_int_equal(used, CMN_FRAME_HEADER_SIZE);
  assert_false(cmn_frame_parser_idle(p));
  const uint8_t *half = buf + CMN_FRAME_HEADER_SIZE + CMN_FRAME_DATA_MAX / 2;
  assert_int_equal(
      cmn_frame_feed(p, buf + CMN_FRAME_HEADER_SIZE, CMN_FRAME_DATA_MAX / 2, &used, &f), 1);
  assert_false(f.end);
  assert_int_equal(f.offset, 0);
  assert_int_equal(f.frame_len, CMN_FRAME_DATA_MAX);
  assert_int_equal(cmn_frame_feed(p, half, CMN_FRAME_DATA_MAX / 2, &used, &f), 1);
  assert_true(f.end);
  assert_ptr_equal(f.payload, half);
  assert_int_equal(f.offset, CMN_FRAME_DATA_MAX / 2);
  assert_true(cmn_frame_parser_idle(p));

  /* A control frame in two slices is copied; whole, it is not. */
  uint8_t ctrl[CMN_FRAME_CTRL_FRAME_MAX];
  cmn_frame_read rd = {9, 2, 0, 100};
  int n = cmn_frame_encode_read(&rd, ctrl, sizeof ctrl);
  assert_int_equal(n, CMN_FRAME_HEADER_SIZE + 28);
  assert_int_equal(cmn_frame_feed(p, ctrl, 25, &used, &f), 0);
  assert_int_equal(cmn_frame_feed(p, ctrl + 25, (size_t)n - 25, &used, &f), 1);
  assert_ptr_not_equal(f.payload, ctrl + CMN_FRAME_HEADER_SIZE);
  assert_memory_equal(f.payload, ctrl + CMN_FRAME_HEADER_SIZE, 28);
  assert_int_equal(cmn_frame_feed(p, ctrl, (size_t)n, &used, &f), 1);
  assert_ptr_equal(f.payload, ctrl + CMN_FRAME_HEADER_SIZE);
  cmn_frame_parser_free(p);
  free(buf);
}

/* ------------------------------------------------------------ malformed */

/* A header that stops short is not an error: the parser waits. */
static void truncated_header_needs_more(void **state) {
  (void)state;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  cmn_frame_ping m = {0x1122334455667788ull};
  int n = cmn_frame_encode_ping(&m, buf, sizeof buf);
  assert_int_equal(n, CMN_FRAME_HEADER_SIZE + 8);
  cmn_frame_parser *p = new_parser(0);
  cmn_frame f;
  size_t used = 0;
  assert_true(cmn_frame_parser_idle(p));
  assert_int_equal(cmn_frame_feed(p, buf, 0, &used, &f), 0);
  assert_int_equal(cmn_frame_feed(p, NULL, 0, &used, &f), 0);
  for (int i = 0; i < CMN_FRAME_HEADER_SIZE - 1; i++) {
    assert_int_equal(cmn_frame_feed(p, buf + i, 1, &used, &f), 0);
    assert_int_equal(used, 1);
    assert_false(cmn_frame_parser_idle(p));
    assert_int_equal(cmn_frame_parser_fault(p), CMN_FRAME_FAULT_NONE);
  }
  assert_int_equal(cmn_frame_feed(p, buf + 19, (size_t)n - 19, &used, &f), 1);
  assert_int_equal(f.type, CMN_FRAME_PING);
  /* Bad arguments are refused without failing the parser. */
  assert_int_equal(cmn_frame_feed(p, NULL, 3, &used, &f), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_feed(p, buf, 3, NULL, &f), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_feed(p, buf, 3, &used, NULL), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_parser_fault(p), CMN_FRAME_FAULT_NONE);
  cmn_frame_parser_free(p);
  assert_int_equal(cmn_frame_parser_new(CMN_FRAME_DATA_MAX + 1, &p), CAIRN_EINVAL);
}

/* Not a cairn peer: refused at the first wrong byte, even byte by byte. */
static void bad_magic_and_version(void **state) {
  (void)state;
  const char *http = "GET / HTTP/1.1\r\n\r\n";
  cmn_frame_parser *p = new_parser(0);
  expect_fault(p, (const uint8_t *)http, strlen(http), CAIRN_EPROTO, CMN_FRAME_FAULT_MAGIC);
  cmn_frame_parser_free(p);

  /* "CR" then garbage, fed one byte at a time: the third byte fails. */
  p = new_parser(0);
  cmn_frame f;
  size_t used = 0;
  assert_int_equal(cmn_frame_feed(p, "C", 1, &used, &f), 0);
  assert_int_equal(cmn_frame_feed(p, "R", 1, &used, &f), 0);
  assert_int_equal(cmn_frame_feed(p, "X", 1, &used, &f), CAIRN_EPROTO);
  assert_int_equal(used, 0);
  assert_failed_for_good(p, CAIRN_EPROTO, CMN_FRAME_FAULT_MAGIC);
  cmn_frame_parser_free(p);

  /* A later version of the protocol is named as such. */
  uint8_t h[CMN_FRAME_HEADER_SIZE];
  raw_header(h, CMN_FRAME_PING, 0, 0, 8, 0);
  h[3] = '2';
  p = new_parser(0);
  expect_fault(p, h, sizeof h, CAIRN_EPROTO, CMN_FRAME_FAULT_VERSION);
  cmn_frame_parser_free(p);
}

/* Any damaged header byte is caught by the header CRC before the field it
 * hit is believed. */
static void header_crc_mismatch(void **state) {
  (void)state;
  uint8_t good[CMN_FRAME_CTRL_FRAME_MAX];
  cmn_frame_ping m = {5};
  int n = cmn_frame_encode_ping(&m, good, sizeof good);
  for (int byte = 4; byte < CMN_FRAME_HEADER_SIZE; byte++) {
    uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
    memcpy(buf, good, (size_t)n);
    buf[byte] ^= 0x10;
    cmn_frame_parser *p = new_parser(0);
    size_t used = 0;
    cmn_frame f;
    assert_int_equal(cmn_frame_feed(p, buf, CMN_FRAME_HEADER_SIZE, &used, &f), CAIRN_ECHECKSUM);
    assert_int_equal(used, CMN_FRAME_HEADER_SIZE);
    assert_non_null(strstr(cmn_frame_parser_error(p), "header crc"));
    assert_failed_for_good(p, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_HEADER_CRC);
    cmn_frame_parser_free(p);
  }
}

static void unknown_type(void **state) {
  (void)state;
  int types[] = {0, 7, 15, 20, 35, 47, 49, 255};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    assert_null(cmn_frame_type_name(types[i]));
    uint8_t h[CMN_FRAME_HEADER_SIZE];
    raw_header(h, types[i], 0, 0, 8, 0);
    cmn_frame_parser *p = new_parser(0);
    expect_fault(p, h, sizeof h, CAIRN_EPROTO, CMN_FRAME_FAULT_TYPE);
    cmn_frame_parser_free(p);
  }
}

static void reserved_bits_set(void **state) {
  (void)state;
  struct {
    int flags, reserved;
  } cases[] = {{1, 0}, {0x80, 0}, {0, 1}, {0, 0x8000}, {0xff, 0xffff}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t h[CMN_FRAME_HEADER_SIZE];
    raw_header(h, CMN_FRAME_PUSH_DATA, cases[i].flags, cases[i].reserved, 10, 0);
    cmn_frame_parser *p = new_parser(0);
    expect_fault(p, h, sizeof h, CAIRN_EPROTO, CMN_FRAME_FAULT_RESERVED);
    cmn_frame_parser_free(p);
  }
}

/* Lengths are judged from the header alone: over the maximum is refused
 * before any payload byte is sent (a 4 GiB claim allocates nothing), and a
 * control frame must have its type's size. */
static void length_refused_from_header(void **state) {
  (void)state;
  struct {
    size_t max_data;
    int type;
    uint32_t len;
    int rc;
    cmn_frame_fault fault;
  } cases[] = {
      {0, CMN_FRAME_PUSH_DATA, CMN_FRAME_DATA_MAX + 1, CAIRN_ETOOBIG, CMN_FRAME_FAULT_TOO_LONG},
      {0, CMN_FRAME_READ_DATA, 0xffffffffu, CAIRN_ETOOBIG, CMN_FRAME_FAULT_TOO_LONG},
      {4096, CMN_FRAME_PUSH_DATA, 4097, CAIRN_ETOOBIG, CMN_FRAME_FAULT_TOO_LONG},
      {0, CMN_FRAME_PING, 9, CAIRN_ETOOBIG, CMN_FRAME_FAULT_TOO_LONG},
      {0, CMN_FRAME_PUSH_BEGIN, CMN_FRAME_CTRL_PAYLOAD_MAX + 1, CAIRN_ETOOBIG,
       CMN_FRAME_FAULT_TOO_LONG},
      {0, CMN_FRAME_ERROR, 0x7fffffff, CAIRN_ETOOBIG, CMN_FRAME_FAULT_TOO_LONG},
      {0, CMN_FRAME_AUTH, 10, CAIRN_EPROTO, CMN_FRAME_FAULT_LENGTH},
      {0, CMN_FRAME_PUSH_DATA, 0, CAIRN_EPROTO, CMN_FRAME_FAULT_LENGTH},
      {0, CMN_FRAME_HELLO, 33, CAIRN_EPROTO, CMN_FRAME_FAULT_LENGTH},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint8_t h[CMN_FRAME_HEADER_SIZE];
    raw_header(h, cases[i].type, 0, 0, cases[i].len, 0);
    cmn_frame_parser *p = new_parser(cases[i].max_data);
    size_t used = 0;
    cmn_frame f;
    assert_int_equal(cmn_frame_feed(p, h, sizeof h, &used, &f), cases[i].rc);
    assert_int_equal(used, CMN_FRAME_HEADER_SIZE);
    assert_failed_for_good(p, cases[i].rc, cases[i].fault);
    cmn_frame_parser_free(p);
  }
  /* Exactly the parser's limit is accepted. */
  cmn_frame_parser *p = new_parser(4096);
  uint8_t h[CMN_FRAME_HEADER_SIZE];
  raw_header(h, CMN_FRAME_PUSH_DATA, 0, 0, 4096, 0);
  size_t used = 0;
  cmn_frame f;
  assert_int_equal(cmn_frame_feed(p, h, sizeof h, &used, &f), 0);
  cmn_frame_parser_free(p);
}

/* A damaged control payload is never delivered. */
static void control_payload_crc_mismatch(void **state) {
  (void)state;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  cmn_frame_clone m = {77, 3};
  int n = cmn_frame_encode_clone(&m, buf, sizeof buf);
  buf[n - 1] ^= 1;
  cmn_frame_parser *p = new_parser(0);
  expect_fault(p, buf, (size_t)n, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_PAYLOAD_CRC);
  cmn_frame_parser_free(p);
  /* The same, gathered one byte at a time. */
  p = new_parser(0);
  collector c = {0};
  uint64_t r = 1;
  assert_int_equal(feed_stream(p, buf, (size_t)n, 1, &r, 0, &c), CAIRN_ECHECKSUM);
  assert_int_equal(c.n, 0);
  assert_failed_for_good(p, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_PAYLOAD_CRC);
  collector_free(&c);
  cmn_frame_parser_free(p);
}

/* A damaged data frame: pieces before the end are delivered unverified,
 * the last one is withheld and the error says to discard the frame. */
static void data_payload_crc_mismatch(void **state) {
  (void)state;
  enum { LEN = 10000 };
  uint8_t *buf = malloc(CMN_FRAME_HEADER_SIZE + LEN);
  assert_non_null(buf);
  uint64_t r = 3;
  rng_fill(&r, buf + CMN_FRAME_HEADER_SIZE, LEN);
  assert_int_equal(
      cmn_frame_encode_data_header(CMN_FRAME_READ_DATA, buf + CMN_FRAME_HEADER_SIZE, LEN, buf), 0);
  buf[CMN_FRAME_HEADER_SIZE + 5] ^= 0x40;
  cmn_frame_parser *p = new_parser(0);
  cmn_frame f;
  size_t used = 0, half = CMN_FRAME_HEADER_SIZE + LEN / 2;
  assert_int_equal(cmn_frame_feed(p, buf, half, &used, &f), 1);
  assert_int_equal(used, half);
  assert_false(f.end);
  assert_int_equal(f.len, LEN / 2);
  assert_int_equal(cmn_frame_feed(p, buf + half, LEN / 2, &used, &f), CAIRN_ECHECKSUM);
  assert_non_null(strstr(cmn_frame_parser_error(p), "discard"));
  assert_failed_for_good(p, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_PAYLOAD_CRC);
  cmn_frame_parser_free(p);
  /* Fed whole, nothing at all is delivered. */
  p = new_parser(0);
  expect_fault(p, buf, CMN_FRAME_HEADER_SIZE + LEN, CAIRN_ECHECKSUM, CMN_FRAME_FAULT_PAYLOAD_CRC);
  cmn_frame_parser_free(p);
  free(buf);
}

/* Valid frames before a fault are delivered; the fault ends the stream. */
static void fault_after_good_frames(void **state) {
  (void)state;
  uint8_t buf[3 * CMN_FRAME_CTRL_FRAME_MAX];
  size_t n = 0;
  cmn_frame_ping m = {1};
  n += (size_t)cmn_frame_encode_ping(&m, buf + n, sizeof buf - n);
  n += (size_t)cmn_frame_encode_pong(&m, buf + n, sizeof buf - n);
  memcpy(buf + n, "JUNKJUNKJUNK", 12);
  n += 12;
  cmn_frame_parser *p = new_parser(0);
  collector c = {0};
  uint64_t r = 9;
  assert_int_equal(feed_stream(p, buf, n, 0, &r, 5, &c), CAIRN_EPROTO);
  assert_int_equal(c.n, 2);
  assert_int_equal(c.f[0].type, CMN_FRAME_PING);
  assert_int_equal(c.f[1].type, CMN_FRAME_PONG);
  assert_failed_for_good(p, CAIRN_EPROTO, CMN_FRAME_FAULT_MAGIC);
  collector_free(&c);
  cmn_frame_parser_free(p);
}

/* ------------------------------------------------------------ garbage */

/*
 * 10,000 inputs, fixed seed: pure random bytes, random bytes behind a valid
 * magic or a valid header, and valid streams with a damaged byte, fed in
 * random slices. Nothing crashes, every event keeps the parser's promises,
 * and the stream ends in an error or needs more. Decoders see the same
 * bytes as payloads and either accept or refuse with EPROTO.
 */
static void garbage_never_crashes(void **state) {
  (void)state;
  uint64_t rng = 0xbad5eed;
  collector want = {0};
  size_t slen = 0;
  uint64_t srng = 77;
  uint8_t *stream = build_stream(&srng, 40, false, &slen, &want);
  collector_free(&want);
  uint8_t *buf = malloc(slen + 4096);
  assert_non_null(buf);
  int errors = 0, pending = 0;
  for (int it = 0; it < 10000; it++) {
    size_t len;
    int kind = (int)rng_below(&rng, 4);
    if (kind == 3) {
      len = 1 + rng_below(&rng, slen < 30000 ? slen : 30000);
      memcpy(buf, stream, len);
      buf[rng_below(&rng, len)] ^= (uint8_t)(1u << rng_below(&rng, 8));
    } else {
      len = rng_below(&rng, 4096);
      rng_fill(&rng, buf, len);
      if (kind == 1 && len >= 4) put32(buf, CMN_FRAME_MAGIC);
      if (kind == 2 && len >= CMN_FRAME_HEADER_SIZE) {
        static const int types[] = {CMN_FRAME_HELLO, CMN_FRAME_ERROR, CMN_FRAME_PUSH_BEGIN,
                                    CMN_FRAME_PUSH_DATA, CMN_FRAME_READ};
        int t = types[rng_below(&rng, 5)];
        size_t pl = len - CMN_FRAME_HEADER_SIZE;
        if (t != CMN_FRAME_PUSH_DATA && pl > CMN_FRAME_CTRL_PAYLOAD_MAX)
          pl = CMN_FRAME_CTRL_PAYLOAD_MAX;
        uint32_t crc = cmn_crc32c(0, buf + CMN_FRAME_HEADER_SIZE, pl);
        raw_header(buf, t, 0, 0, (uint32_t)pl, rng_below(&rng, 4) ? crc : crc ^ 1);
      }
    }
    cmn_frame_parser *p = new_parser(rng_below(&rng, 2) ? 0 : 512);
    collector c = {0};
    int rc = feed_stream(p, buf, len, 0, &rng, 1 + rng_below(&rng, 600), &c);
    assert_true(rc <= 0);
    if (rc < 0) {
      errors++;
      assert_int_not_equal(cmn_frame_parser_fault(p), CMN_FRAME_FAULT_NONE);
      assert_failed_for_good(p, rc, cmn_frame_parser_fault(p));
    } else {
      pending++;
    }
    /* Decoders on raw bytes. */
    char err[200];
    union {
      cmn_frame_hello h;
      cmn_frame_error e;
      cmn_frame_push_begin pb;
      cmn_frame_push_end pe;
      cmn_frame_read rd;
    } u;
    size_t dl = len < 4000 ? len : 4000;
    int d[] = {cmn_frame_decode_hello(buf, dl, &u.h, err, sizeof err),
               cmn_frame_decode_error(buf, dl, &u.e, err, sizeof err),
               cmn_frame_decode_push_begin(buf, dl, &u.pb, err, sizeof err),
               cmn_frame_decode_push_end(buf, dl, &u.pe, err, sizeof err),
               cmn_frame_decode_read(buf, dl, &u.rd, err, sizeof err)};
    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
      assert_true(d[i] == 0 || d[i] == CAIRN_EPROTO);
    collector_free(&c);
    cmn_frame_parser_free(p);
  }
  /* Both endings occur (the generator is not degenerate). */
  assert_true(errors > 1000);
  assert_true(pending > 10);
  free(buf);
  free(stream);
}

CAIRN_TEST_MAIN(cmocka_unit_test(stream_in_any_slicing),
                cmocka_unit_test(zero_copy_when_contiguous),
                cmocka_unit_test(truncated_header_needs_more),
                cmocka_unit_test(bad_magic_and_version), cmocka_unit_test(header_crc_mismatch),
                cmocka_unit_test(unknown_type), cmocka_unit_test(reserved_bits_set),
                cmocka_unit_test(length_refused_from_header),
                cmocka_unit_test(control_payload_crc_mismatch),
                cmocka_unit_test(data_payload_crc_mismatch),
                cmocka_unit_test(fault_after_good_frames), cmocka_unit_test(garbage_never_crashes))
