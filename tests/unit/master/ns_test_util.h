/*
 * ns_test_util.h - helpers shared by the namespace unit tests
 * (test_namespace.c, test_ns_checkpoint.c).
 */
#ifndef NS_TEST_UTIL_H
#define NS_TEST_UTIL_H

#include "test_main.h"

#include "cairn_error.h"
#include "cmn_util.h"
#include "mst_ns.h"

#include <stdlib.h>
#include <string.h>

/* A C string as the (pointer, length) pair the API takes. */
#define P(s) (s), strlen(s)

static inline mst_ns *new_ns(void) {
  mst_ns *ns = NULL;
  assert_int_equal(mst_ns_new(&ns), 0);
  assert_non_null(ns);
  return ns;
}

/* Stat that must succeed; returns the id. */
static inline uint64_t id_of(mst_ns *ns, const char *path) {
  mst_ns_info info;
  assert_int_equal(mst_ns_stat(ns, P(path), &info), 0);
  return info.id;
}

static inline void assert_enoent(mst_ns *ns, const char *path) {
  mst_ns_info info;
  assert_int_equal(mst_ns_stat(ns, P(path), &info), CAIRN_ENOENT);
}

/* The current path of `id` as a new string (caller frees). */
static inline char *path_of(mst_ns *ns, uint64_t id) {
  cmn_buf b = {0};
  assert_int_equal(mst_ns_path(ns, id, &b), 0);
  return b.data;
}

static inline void assert_path_of(mst_ns *ns, uint64_t id, const char *want) {
  char *got = path_of(ns, id);
  assert_string_equal(got, want);
  free(got);
}

#endif
