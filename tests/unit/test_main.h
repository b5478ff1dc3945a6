/*
 * test_main.h - the main() every cmocka unit-test program uses.
 *
 * CMake registers each case as its own CTest entry that runs
 * `<program> <case>`; with no argument the program runs every case.
 * A case name that does not exist fails (a filter matching nothing would
 * otherwise pass without testing anything).
 */
#ifndef CAIRN_TEST_MAIN_H
#define CAIRN_TEST_MAIN_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static inline int cairn_test_run(const struct CMUnitTest *tests, size_t n, int argc, char **argv,
                                 CMFixtureFunction setup, CMFixtureFunction teardown) {
  if (argc > 1) {
    size_t i;
    for (i = 0; i < n; i++)
      if (strcmp(tests[i].name, argv[1]) == 0) break;
    if (i == n) {
      fprintf(stderr, "no test case named '%s'\n", argv[1]);
      return 2;
    }
    cmocka_set_test_filter(argv[1]);
  }
  return _cmocka_run_group_tests("cairn", tests, n, setup, teardown);
}

#define CAIRN_TEST_MAIN_WITH(setup, teardown, ...)                                         \
  int main(int argc, char **argv) {                                                        \
    const struct CMUnitTest tests_[] = {__VA_ARGS__};                                      \
    return cairn_test_run(tests_, sizeof tests_ / sizeof tests_[0], argc, argv, setup,     \
                          teardown);                                                       \
  }
#define CAIRN_TEST_MAIN(...) CAIRN_TEST_MAIN_WITH(NULL, NULL, __VA_ARGS__)

#endif
