/*
 * test_presign.c - presigned link signatures (gateway/presign.c): a value
 * computed independently, acceptance, each signed field tampered with,
 * expiry told apart from forgery, and refused inputs.
 */
#include "test_main.h"

#include <string.h>

#include "cairn_error.h"
#include "gw_presign.h"

#define DOC "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
#define EXPIRES 1700000000

static uint8_t key[32];

static int setup_key(void **state) {
  (void)state;
  memset(key, 0xa5, sizeof key);
  return 0;
}

/* Python: base64url(hmac(0xa5 * 32, "GET\n<DOC>\n1700000000", sha256)). */
static const char known_sig[] = "QZ4o99TBHr4xoXy0Rxgh-9gMFilHTIol8tCM50bgc-w";

static void make_matches_independent_value(void **state) {
  (void)state;
  char sig[64];
  assert_int_equal(gw_presign_make(key, "GET", DOC, EXPIRES, sig, sizeof sig), GW_PRESIGN_SIG_LEN);
  assert_string_equal(sig, known_sig);
  /* Exactly the documented room, then one byte less (untouched). */
  char small[GW_PRESIGN_SIG_LEN + 1];
  assert_int_equal(gw_presign_make(key, "GET", DOC, EXPIRES, small, sizeof small), 43);
  memset(small, 'k', sizeof small);
  assert_int_equal(gw_presign_make(key, "GET", DOC, EXPIRES, small, sizeof small - 1),
                   CAIRN_ETOOBIG);
  assert_int_equal(small[0], 'k');
}

static void check_accepts_valid_link(void **state) {
  (void)state;
  int expired = 7;
  assert_int_equal(gw_presign_check(key, "GET", DOC, EXPIRES, known_sig, EXPIRES - 1, &expired),
                   0);
  assert_int_equal(expired, 0);
  assert_int_equal(gw_presign_check(key, "GET", DOC, EXPIRES, known_sig, 0, NULL), 0);
  /* Round trip with other values, negative times included. */
  char sig[64];
  assert_int_equal(gw_presign_make(key, "PUT", "x", -5, sig, sizeof sig), 43);
  assert_int_equal(gw_presign_check(key, "PUT", "x", -5, sig, -6, &expired), 0);
}

static void expect_forgery(const char *method, const char *doc, int64_t expires, const char *sig,
                           int64_t now) {
  int expired = 7;
  assert_int_equal(gw_presign_check(key, method, doc, expires, sig, now, &expired), CAIRN_EPERM);
  assert_int_equal(expired, 0);
}

static void tampered_fields_refused(void **state) {
  (void)state;
  int64_t now = EXPIRES - 100;
  expect_forgery("PUT", DOC, EXPIRES, known_sig, now);
  expect_forgery("get", DOC, EXPIRES, known_sig, now);
  expect_forgery("GET", "3f2504e0-4f89-11d3-9a0c-0305e82c3302", EXPIRES, known_sig, now);
  expect_forgery("GET", DOC "x", EXPIRES, known_sig, now);
  expect_forgery("GET", DOC, EXPIRES + 1, known_sig, now);
  expect_forgery("GET", DOC, EXPIRES + 86400 * 365, known_sig, now);
  /* The fields cannot slide into each other: "GET\nA" + "B" vs "GET" + "A\nB". */
  char sig[64];
  assert_int_equal(gw_presign_make(key, "GET", "A", EXPIRES, sig, sizeof sig), 43);
  expect_forgery("GET", "A\n", EXPIRES, sig, now);
  /* The signature: one character, cut, extended, emptied, absent. */
  char s[64];
  strcpy(s, known_sig);
  s[0] = s[0] == 'A' ? 'B' : 'A';
  expect_forgery("GET", DOC, EXPIRES, s, now);
  strcpy(s, known_sig);
  s[42] = '\0';
  expect_forgery("GET", DOC, EXPIRES, s, now);
  strcpy(s, known_sig);
  strcat(s, "A");
  expect_forgery("GET", DOC, EXPIRES, s, now);
  expect_forgery("GET", DOC, EXPIRES, "", now);
  expect_forgery("GET", DOC, EXPIRES, NULL, now);
  /* The last character's spare bits set: same MAC to a lax decoder. */
  strcpy(s, known_sig);
  assert_int_equal(s[42], 'w'); /* value 48: spare bits 00 */
  s[42] = 'x';
  expect_forgery("GET", DOC, EXPIRES, s, now);
  /* Padding or base64 (not url) characters. */
  strcpy(s, known_sig);
  s[20] = '+';
  expect_forgery("GET", DOC, EXPIRES, s, now);
  /* Another key. */
  uint8_t other[32];
  memset(other, 0xa4, sizeof other);
  int expired = 7;
  assert_int_equal(gw_presign_check(other, "GET", DOC, EXPIRES, known_sig, now, &expired),
                   CAIRN_EPERM);
  assert_int_equal(expired, 0);
}

static void expired_link_told_apart(void **state) {
  (void)state;
  int expired = 0;
  assert_int_equal(gw_presign_check(key, "GET", DOC, EXPIRES, known_sig, EXPIRES, &expired),
                   CAIRN_EPERM);
  assert_int_equal(expired, 1);
  expired = 0;
  assert_int_equal(gw_presign_check(key, "GET", DOC, EXPIRES, known_sig, EXPIRES + 3600, &expired),
                   CAIRN_EPERM);
  assert_int_equal(expired, 1);
  assert_int_equal(gw_presign_check(key, "GET", DOC, EXPIRES, known_sig, EXPIRES, NULL),
                   CAIRN_EPERM);
  /* Expired and forged is just forged. */
  expect_forgery("GET", DOC, EXPIRES - 1, known_sig, EXPIRES + 3600);
}

static void bad_input_refused(void **state) {
  (void)state;
  char sig[64];
  char long_id[GW_PRESIGN_ID_MAX + 2];
  memset(long_id, 'd', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  strcpy(sig, "untouched");
  assert_int_equal(gw_presign_make(key, "GET", long_id, EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_int_equal(gw_presign_make(key, "", DOC, EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_int_equal(gw_presign_make(key, "GET", "", EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_int_equal(gw_presign_make(key, "GE\nT", DOC, EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_int_equal(gw_presign_make(key, "GET", "a\nb", EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_int_equal(gw_presign_make(key, NULL, DOC, EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_int_equal(gw_presign_make(key, "GET", NULL, EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_int_equal(gw_presign_make(NULL, "GET", DOC, EXPIRES, sig, sizeof sig), CAIRN_EINVAL);
  assert_string_equal(sig, "untouched");
  /* The longest id is fine, and checks. */
  long_id[GW_PRESIGN_ID_MAX] = '\0';
  assert_int_equal(gw_presign_make(key, "GET", long_id, EXPIRES, sig, sizeof sig), 43);
  assert_int_equal(gw_presign_check(key, "GET", long_id, EXPIRES, sig, 0, NULL), 0);
  /* Check refuses what make refuses, as a forgery. */
  expect_forgery("GET", "", EXPIRES, known_sig, 0);
  expect_forgery(NULL, DOC, EXPIRES, known_sig, 0);
  expect_forgery("GET", NULL, EXPIRES, known_sig, 0);
  int expired = 7;
  assert_int_equal(gw_presign_check(NULL, "GET", DOC, EXPIRES, known_sig, 0, &expired),
                   CAIRN_EINVAL);
  assert_int_equal(expired, 0);
}

CAIRN_TEST_MAIN_WITH(setup_key, NULL, cmocka_unit_test(make_matches_independent_value),
                     cmocka_unit_test(check_accepts_valid_link),
                     cmocka_unit_test(tampered_fields_refused),
                     cmocka_unit_test(expired_link_told_apart), cmocka_unit_test(bad_input_refused))
