/*
 * Unit tests for the `cairn` tool's argument handling (client/cli_util.c):
 * flags and positionals in any order, short aliases, values, "-" and "--",
 * refusals that change nothing, and the small validators.
 */
#include "test_main.h"

#include "cairn_error.h"
#include "cli_util.h"
#include "cmn_config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct topts {
  char *master;
  int64_t timeout_ms;
  bool json;
  bool long_fmt;
  bool overwrite;
};

static const cmn_config_opt opts[] = {
    CMN_OPT_STRING(struct topts, master, "master", NULL, "master address"),
    CMN_OPT_DURATION(struct topts, timeout_ms, "timeout", 100, 86400000, "60s", "deadline"),
    CMN_OPT_BOOL(struct topts, json, "json", "false", "JSON output"),
    CMN_OPT_BOOL(struct topts, long_fmt, "long", "false", "long listing"),
    CMN_OPT_BOOL(struct topts, overwrite, "overwrite", "false", "replace"),
};
static const cmn_config_spec spec = CMN_CONFIG_SPEC("t", NULL, NULL, struct topts, opts);
static const cli_short shorts[] = {{'l', "--long"}, {'o', "--overwrite"}, {0, NULL}};

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void defaults(struct topts *o) {
  memset(o, 0, sizeof *o);
  char err[256];
  assert_int_equal(cmn_config_defaults(&spec, o, err, sizeof err), 0);
}

static void flags_after_positionals(void **state) {
  (void)state;
  struct topts o;
  defaults(&o);
  char *argv[] = {"put", "a.txt", "/b", "--overwrite"};
  cli_args a;
  char err[256];
  assert_int_equal(cli_parse_args(&spec, shorts, &o, ARGC(argv), argv, &a, err, sizeof err), 0);
  assert_int_equal(a.npos, 2);
  assert_string_equal(a.pos[0], "a.txt");
  assert_string_equal(a.pos[1], "/b");
  assert_true(o.overwrite);
  assert_false(o.json);
  cli_args_free(&a);
  assert_null(a.pos);
  cmn_config_free(&spec, &o);
}

static void flags_mixed_with_short_alias(void **state) {
  (void)state;
  struct topts o;
  defaults(&o);
  char *argv[] = {"ls", "--json", "/x", "-l", "--timeout=5s"};
  cli_args a;
  char err[256];
  assert_int_equal(cli_parse_args(&spec, shorts, &o, ARGC(argv), argv, &a, err, sizeof err), 0);
  assert_int_equal(a.npos, 1);
  assert_string_equal(a.pos[0], "/x");
  assert_true(o.json);
  assert_true(o.long_fmt);
  assert_int_equal(o.timeout_ms, 5000);
  cli_args_free(&a);
  cmn_config_free(&spec, &o);
}

/* A flag that takes a value takes the next word even if it starts with '-'. */
static void combined_short_aliases(void **state) {
  (void)state;
  struct topts o;
  defaults(&o);
  char *argv[] = {"ls", "-lo", "/x"};
  cli_args a;
  char err[256];
  assert_int_equal(cli_parse_args(&spec, shorts, &o, ARGC(argv), argv, &a, err, sizeof err), 0);
  assert_true(o.long_fmt);
  assert_true(o.overwrite);
  assert_int_equal(a.npos, 1);
  cli_args_free(&a);
  cmn_config_free(&spec, &o);
}

static void value_flag_takes_next_word(void **state) {
  (void)state;
  struct topts o;
  defaults(&o);
  char *argv[] = {"ls", "--master", "-odd:1", "/x", "--timeout", "250ms"};
  cli_args a;
  char err[256];
  assert_int_equal(cli_parse_args(&spec, shorts, &o, ARGC(argv), argv, &a, err, sizeof err), 0);
  assert_string_equal(o.master, "-odd:1");
  assert_int_equal(o.timeout_ms, 250);
  assert_int_equal(a.npos, 1);
  assert_string_equal(a.pos[0], "/x");
  cli_args_free(&a);
  cmn_config_free(&spec, &o);
}

static void dash_and_double_dash_are_positional(void **state) {
  (void)state;
  struct topts o;
  defaults(&o);
  char *argv[] = {"put", "-", "--", "--odd", "-l"};
  cli_args a;
  char err[256];
  assert_int_equal(cli_parse_args(&spec, shorts, &o, ARGC(argv), argv, &a, err, sizeof err), 0);
  assert_int_equal(a.npos, 3);
  assert_string_equal(a.pos[0], "-");
  assert_string_equal(a.pos[1], "--odd");
  assert_string_equal(a.pos[2], "-l");
  assert_false(o.long_fmt);
  cli_args_free(&a);
  cmn_config_free(&spec, &o);
}

/* Every refusal leaves the settings as they were and returns no positionals. */
static void bad_flags_refused_unchanged(void **state) {
  (void)state;
  struct {
    char *argv[4];
    int argc;
    const char *needle;
  } cases[] = {
      {{"ls", "/x", "--bogus"}, 3, "--bogus"},
      {{"ls", "-x", "/x"}, 3, "-x"},
      {{"ls", "-lz"}, 2, "-lz"},
      {{"ls", "-hl"}, 2, "-hl"},
      {{"ls", "--timeout", "soon"}, 3, "soon"},
      {{"ls", "--json", "--master"}, 3, "--master"},
      {{"ls", "--no-timeout"}, 2, "no-timeout"},
      {{"ls", "--json=maybe"}, 2, "maybe"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct topts o;
    defaults(&o);
    cli_args a = {(char **)1, 7};
    char err[256] = "";
    int rc = cli_parse_args(&spec, shorts, &o, cases[i].argc, cases[i].argv, &a, err, sizeof err);
    assert_int_equal(rc, CAIRN_ECONFIG);
    assert_non_null(strstr(err, cases[i].needle));
    assert_null(a.pos);
    assert_int_equal(a.npos, 0);
    assert_false(o.json);
    assert_int_equal(o.timeout_ms, 60000);
    assert_null(o.master);
    cmn_config_free(&spec, &o);
  }
}

static void help_wins(void **state) {
  (void)state;
  struct topts o;
  defaults(&o);
  char *argv[] = {"ls", "--bogus", "/x", "-h"};
  cli_args a;
  char err[256];
  assert_int_equal(cli_parse_args(&spec, shorts, &o, ARGC(argv), argv, &a, err, sizeof err),
                   CMN_CONFIG_HELP);
  assert_int_equal(a.npos, 0);
  char *argv2[] = {"ls", "--help"};
  assert_int_equal(cli_parse_args(&spec, NULL, &o, ARGC(argv2), argv2, &a, err, sizeof err),
                   CMN_CONFIG_HELP);
  cmn_config_free(&spec, &o);
}

static void no_form_and_later_flag_wins(void **state) {
  (void)state;
  struct topts o;
  defaults(&o);
  char *argv[] = {"ls", "--json", "--no-json", "--timeout", "1s", "--timeout", "2s"};
  cli_args a;
  char err[256];
  assert_int_equal(cli_parse_args(&spec, NULL, &o, ARGC(argv), argv, &a, err, sizeof err), 0);
  assert_false(o.json);
  assert_int_equal(o.timeout_ms, 2000);
  assert_int_equal(a.npos, 0);
  cli_args_free(&a);
  cmn_config_free(&spec, &o);
}

static void goal_parsing(void **state) {
  (void)state;
  uint32_t g = 0;
  for (int i = 1; i <= 9; i++) {
    char s[2] = {(char)('0' + i), 0};
    assert_int_equal(cli_parse_goal(s, &g), 0);
    assert_int_equal(g, (uint32_t)i);
  }
  const char *bad[] = {"0", "10", "", "3x", "-1", " 3", "+3"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(cli_parse_goal(bad[i], &g), CAIRN_EINVAL);
  assert_int_equal(cli_parse_goal(NULL, &g), CAIRN_EINVAL);
}

static void addr_check(void **state) {
  (void)state;
  const char *good[] = {"127.0.0.1:9000", "[::1]:9000", "host:1", "a.b-c:65535"};
  const char *bad[] = {"",        "host",    ":9000",   "host:0",   "host:65536", "a:b:1",
                       "host:12a", "ho st:1", "[::1]9000", "host:", "host:000009000"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    assert_int_equal(cli_check_addr(good[i]), 0);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(cli_check_addr(bad[i]), CAIRN_EINVAL);
  assert_int_equal(cli_check_addr(NULL), CAIRN_EINVAL);
}

static void paths(void **state) {
  (void)state;
  struct {
    const char *in, *base;
  } b[] = {{"a/b/", "b"}, {"/", ""}, {"x", "x"}, {"/a/b", "b"}, {"./photo.jpg", "photo.jpg"}};
  for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
    char *s = cli_basename(b[i].in);
    assert_string_equal(s, b[i].base);
    free(s);
  }
  char *j = cli_join("/", "x");
  assert_string_equal(j, "/x");
  free(j);
  j = cli_join("/a", "x");
  assert_string_equal(j, "/a/x");
  free(j);
  j = cli_join("/a/", "x");
  assert_string_equal(j, "/a/x");
  free(j);
}

static void exit_codes(void **state) {
  (void)state;
  assert_int_equal(cli_exit_code(0), CLI_EXIT_OK);
  assert_int_equal(cli_exit_code(CAIRN_EUNAVAIL), CLI_EXIT_UNREACH);
  assert_int_equal(cli_exit_code(CAIRN_ETIMEDOUT), CLI_EXIT_UNREACH);
  assert_int_equal(cli_exit_code(CAIRN_EAUTH), CLI_EXIT_UNREACH);
  assert_int_equal(cli_exit_code(CAIRN_ECLOSED), CLI_EXIT_UNREACH);
  assert_int_equal(cli_exit_code(CAIRN_ENOENT), CLI_EXIT_FAIL);
  assert_int_equal(cli_exit_code(CAIRN_EEXIST), CLI_EXIT_FAIL);
  assert_int_equal(cli_exit_code(CAIRN_ENOQUORUM), CLI_EXIT_FAIL);
  assert_int_equal(CLI_EXIT_USAGE, 2);
}

CAIRN_TEST_MAIN(cmocka_unit_test(flags_after_positionals),
                cmocka_unit_test(flags_mixed_with_short_alias),
                cmocka_unit_test(combined_short_aliases),
                cmocka_unit_test(value_flag_takes_next_word),
                cmocka_unit_test(dash_and_double_dash_are_positional),
                cmocka_unit_test(bad_flags_refused_unchanged), cmocka_unit_test(help_wins),
                cmocka_unit_test(no_form_and_later_flag_wins), cmocka_unit_test(goal_parsing),
                cmocka_unit_test(addr_check), cmocka_unit_test(paths),
                cmocka_unit_test(exit_codes))
