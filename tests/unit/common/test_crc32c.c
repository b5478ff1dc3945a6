/* Unit tests for CRC32C (common/crc32c.c): known vectors, chaining, and
 * every implementation this CPU offers against the portable one and against
 * a bit-at-a-time reference that shares no code or tables with the module. */
#include "test_main.h"

#include "cmn_crc32c.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LEN 300000
#define ALIGN_SLACK 16

static const cmn_crc32c_impl all_impls[] = {CMN_CRC32C_SOFT, CMN_CRC32C_SSE42,
                                            CMN_CRC32C_ARMV8};
#define N_IMPLS (sizeof all_impls / sizeof all_impls[0])

/* Fixed-seed xorshift64*: the same buffers and lengths on every run. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

static size_t rng_below(uint64_t *s, size_t bound) { return (size_t)(rng_next(s) % bound); }

static unsigned char *random_buffer(uint64_t *s, size_t n) {
  unsigned char *b = malloc(n);
  assert_non_null(b);
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(rng_next(s) >> 56);
  return b;
}

/* Bit-at-a-time CRC32C, straight from the definition. */
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *p, size_t n) {
  uint32_t c = ~crc;
  while (n--) {
    c ^= *p++;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

/* Check `want` against cmn_crc32c and every available implementation. */
static void expect_all(const void *data, size_t n, uint32_t want) {
  assert_int_equal(cmn_crc32c(0, data, n), want);
  for (size_t i = 0; i < N_IMPLS; i++)
    if (cmn_crc32c_available(all_impls[i]))
      assert_int_equal(cmn_crc32c_with(all_impls[i], 0, data, n), want);
}

static void check_value(void **state) {
  (void)state;
  expect_all("123456789", 9, 0xE3069283u);
  expect_all("a", 1, 0xC1D04330u);
}

/* iSCSI test vectors (RFC 3720, appendix B.4). */
static void rfc3720_vectors(void **state) {
  (void)state;
  unsigned char buf[32];
  memset(buf, 0, sizeof buf);
  expect_all(buf, sizeof buf, 0x8A9136AAu);
  memset(buf, 0xff, sizeof buf);
  expect_all(buf, sizeof buf, 0x62A8AB43u);
  for (int i = 0; i < 32; i++) buf[i] = (unsigned char)i;
  expect_all(buf, sizeof buf, 0x46DD794Eu);
  for (int i = 0; i < 32; i++) buf[i] = (unsigned char)(31 - i);
  expect_all(buf, sizeof buf, 0x113FDB5Cu);
}

static void empty_input_returns_crc(void **state) {
  (void)state;
  const uint32_t crcs[] = {0, 1, 0xE3069283u, 0xFFFFFFFFu};
  unsigned char byte = 0x5a;
  for (size_t c = 0; c < sizeof crcs / sizeof crcs[0]; c++) {
    assert_int_equal(cmn_crc32c(crcs[c], NULL, 0), crcs[c]);
    assert_int_equal(cmn_crc32c(crcs[c], &byte, 0), crcs[c]);
    for (size_t i = 0; i < N_IMPLS; i++) {
      if (!cmn_crc32c_available(all_impls[i])) continue;
      assert_int_equal(cmn_crc32c_with(all_impls[i], crcs[c], NULL, 0), crcs[c]);
      assert_int_equal(cmn_crc32c_with(all_impls[i], crcs[c], &byte, 0), crcs[c]);
    }
  }
}

/* The CRC of a buffer equals the CRC chained over two or three pieces cut
 * at random points, for every implementation and for cmn_crc32c itself. */
static void chaining(void **state) {
  (void)state;
  uint64_t s = 0x1234567887654321ULL;
  const size_t n = 100000;
  unsigned char *buf = random_buffer(&s, n);
  uint32_t whole = crc_bitwise(0, buf, n);
  assert_int_equal(cmn_crc32c(0, buf, n), whole);
  for (int round = 0; round < 200; round++) {
    size_t a = rng_below(&s, n + 1);
    size_t b = a + rng_below(&s, n - a + 1);
    uint32_t c = cmn_crc32c(cmn_crc32c(0, buf, a), buf + a, n - a);
    assert_int_equal(c, whole);
    for (size_t i = 0; i < N_IMPLS; i++) {
      if (!cmn_crc32c_available(all_impls[i])) continue;
      c = cmn_crc32c_with(all_impls[i], 0, buf, a);
      c = cmn_crc32c_with(all_impls[i], c, buf + a, b - a);
      c = cmn_crc32c_with(all_impls[i], c, buf + b, n - b);
      assert_int_equal(c, whole);
    }
  }
  free(buf);
}

/* The portable path against the bitwise reference, at many small lengths
 * (every head/word/tail split) and a few large ones. */
static void soft_matches_bitwise(void **state) {
  (void)state;
  uint64_t s = 42;
  unsigned char *buf = random_buffer(&s, 70000 + ALIGN_SLACK);
  for (size_t off = 0; off < ALIGN_SLACK; off++)
    for (size_t len = 0; len <= 200; len++)
      assert_int_equal(cmn_crc32c_with(CMN_CRC32C_SOFT, 7, buf + off, len),
                       crc_bitwise(7, buf + off, len));
  const size_t big[] = {4096, 65536, 65536 + 13, 70000};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
    assert_int_equal(cmn_crc32c_with(CMN_CRC32C_SOFT, 0, buf + 3, big[i]),
                     crc_bitwise(0, buf + 3, big[i]));
  free(buf);
}

/* Each available implementation agrees with the portable one at every
 * alignment 0..15, on random lengths 0..MAX_LEN and on lengths next to the
 * block sizes a fast path may switch on (multiples of 8, 3*256, 3*8192). */
static void impls_agree_with_soft(void **state) {
  (void)state;
  uint64_t s = 0xC0FFEEULL;
  unsigned char *buf = random_buffer(&s, MAX_LEN + ALIGN_SLACK);
  const size_t edges[] = {0,   1,   7,   8,   9,   15,   16,   17,   767,  768,
                          769, 1535, 1536, 1537, 24575, 24576, 24577, 49152, 49160,
                          65536, MAX_LEN};
  int others = 0;
  for (size_t i = 0; i < N_IMPLS; i++) {
    cmn_crc32c_impl impl = all_impls[i];
    if (impl == CMN_CRC32C_SOFT || !cmn_crc32c_available(impl)) continue;
    others++;
    for (size_t off = 0; off < ALIGN_SLACK; off++) {
      for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++) {
        uint32_t init = (uint32_t)rng_next(&s);
        assert_int_equal(cmn_crc32c_with(impl, init, buf + off, edges[e]),
                         cmn_crc32c_with(CMN_CRC32C_SOFT, init, buf + off, edges[e]));
      }
      for (int r = 0; r < 6; r++) {
        size_t len = rng_below(&s, MAX_LEN + 1);
        assert_int_equal(cmn_crc32c_with(impl, 0, buf + off, len),
                         cmn_crc32c_with(CMN_CRC32C_SOFT, 0, buf + off, len));
      }
    }
  }
  print_message("crc32c: %d hardware implementation(s) compared, active=%s\n", others,
                cmn_crc32c_impl_name(cmn_crc32c_active()));
  free(buf);
}

static void active_and_names(void **state) {
  (void)state;
  cmn_crc32c_impl active = cmn_crc32c_active();
  assert_true(cmn_crc32c_available(active));
  assert_true(cmn_crc32c_available(CMN_CRC32C_SOFT));
  assert_false(cmn_crc32c_available((cmn_crc32c_impl)99));
  /* The fastest available path is the one used. */
  if (cmn_crc32c_available(CMN_CRC32C_SSE42) || cmn_crc32c_available(CMN_CRC32C_ARMV8))
    assert_int_not_equal(active, CMN_CRC32C_SOFT);
  for (size_t i = 0; i < N_IMPLS; i++) {
    const char *name = cmn_crc32c_impl_name(all_impls[i]);
    assert_non_null(name);
    assert_true(strlen(name) > 0);
    for (size_t j = 0; j < i; j++)
      assert_string_not_equal(name, cmn_crc32c_impl_name(all_impls[j]));
  }
  assert_true(strlen(cmn_crc32c_impl_name((cmn_crc32c_impl)99)) > 0);
  /* Asking for an implementation the CPU lacks still gives the right CRC. */
  for (size_t i = 0; i < N_IMPLS; i++)
    assert_int_equal(cmn_crc32c_with(all_impls[i], 0, "123456789", 9), 0xE3069283u);
}

/* Each case runs in its own process, so here the threads race on the very
 * first call (the one-time initialisation) and must all see finished tables. */
#define N_THREADS 8
static void *thread_crc(void *arg) {
  uint32_t *out = arg;
  static const unsigned char zeros[32];
  out[0] = cmn_crc32c(0, "123456789", 9);
  out[1] = cmn_crc32c(0, zeros, sizeof zeros);
  return NULL;
}

static void first_use_from_many_threads(void **state) {
  (void)state;
  pthread_t th[N_THREADS];
  uint32_t out[N_THREADS][2];
  for (int i = 0; i < N_THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thread_crc, out[i]), 0);
  for (int i = 0; i < N_THREADS; i++) {
    assert_int_equal(pthread_join(th[i], NULL), 0);
    assert_int_equal(out[i][0], 0xE3069283u);
    assert_int_equal(out[i][1], 0x8A9136AAu);
  }
}

CAIRN_TEST_MAIN(cmocka_unit_test(check_value), cmocka_unit_test(rfc3720_vectors),
                cmocka_unit_test(empty_input_returns_crc), cmocka_unit_test(chaining),
                cmocka_unit_test(soft_matches_bitwise), cmocka_unit_test(impls_agree_with_soft),
                cmocka_unit_test(active_and_names),
                cmocka_unit_test(first_use_from_many_threads))
