/* Unit tests for the error list (common/error.c). */
#include "test_main.h"

#include "cairn_error.h"

#include <string.h>

static void codes_are_dense_and_named(void **state) {
  (void)state;
  /* Every code from -1 down to the last is known, has a name and a message. */
  int last = 0;
#define COUNT_(name, value, msg, grpc, http, retry) last = (value);
  CAIRN_ERRNO_MAP(COUNT_)
#undef COUNT_
  for (int c = -1; c >= last; c--) {
    assert_true(cairn_err_known(c));
    if (c != CAIRN_EUNKNOWN) assert_string_not_equal(cairn_err_name(c), "EUNKNOWN");
    assert_non_null(cairn_strerror(c));
  }
  assert_false(cairn_err_known(last - 1));
  assert_false(cairn_err_known(1));
  assert_string_equal(cairn_err_name(CAIRN_ESTALE), "ESTALE");
  assert_string_equal(cairn_strerror(CAIRN_ECHECKSUM), "checksum mismatch");
  assert_string_equal(cairn_strerror(0), "success");
  assert_string_equal(cairn_strerror(-9999), "unknown error code");
}

static void grpc_mapping_round_trips_generic_codes(void **state) {
  (void)state;
  assert_int_equal(cairn_err_to_grpc(0), 0);
  assert_int_equal(cairn_err_to_grpc(CAIRN_ENOENT), 5);
  assert_int_equal(cairn_err_to_grpc(CAIRN_EAUTH), 16);
  assert_int_equal(cairn_err_to_grpc(CAIRN_ETIMEDOUT), 4);
  assert_int_equal(cairn_err_to_grpc(CAIRN_EUNIMPL), 12);
  assert_int_equal(cairn_err_from_grpc(0), 0);
  assert_int_equal(cairn_err_from_grpc(5), CAIRN_ENOENT);
  assert_int_equal(cairn_err_from_grpc(4), CAIRN_ETIMEDOUT);
  assert_int_equal(cairn_err_from_grpc(12), CAIRN_EUNIMPL);
  assert_int_equal(cairn_err_from_grpc(16), CAIRN_EAUTH);
  assert_int_equal(cairn_err_from_grpc(14), CAIRN_EUNAVAIL);
  assert_int_equal(cairn_err_from_grpc(99), CAIRN_EUNKNOWN);
  assert_int_equal(cairn_err_from_grpc(-1), CAIRN_EUNKNOWN);
  /* Every gRPC status maps back to a code that maps forward to it again. */
  for (int g = 1; g <= 16; g++) {
    int c = cairn_err_from_grpc(g);
    assert_true(c < 0);
    assert_int_equal(cairn_err_to_grpc(c), g);
  }
}

static void http_and_retry(void **state) {
  (void)state;
  assert_int_equal(cairn_err_http_status(0), 200);
  assert_int_equal(cairn_err_http_status(CAIRN_ENOENT), 404);
  assert_int_equal(cairn_err_http_status(CAIRN_ETOOBIG), 413);
  assert_int_equal(cairn_err_http_status(CAIRN_ERANGE), 416);
  assert_int_equal(cairn_err_http_status(CAIRN_ERATELIMIT), 429);
  assert_int_equal(cairn_err_http_status(-12345), 500);
  assert_true(cairn_err_retryable(CAIRN_ENOQUORUM));
  assert_true(cairn_err_retryable(CAIRN_ESTALE));
  assert_false(cairn_err_retryable(CAIRN_EINVAL));
  assert_false(cairn_err_retryable(-12345));
}

CAIRN_TEST_MAIN(cmocka_unit_test(codes_are_dense_and_named),
                cmocka_unit_test(grpc_mapping_round_trips_generic_codes),
                cmocka_unit_test(http_and_retry))
