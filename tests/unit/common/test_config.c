/* Unit tests for the table-driven configuration (common/config.c). */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_config.h"
#include "cmn_util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct tcfg {
  bool fsync;
  int64_t workers;
  uint64_t chunk_size;
  int64_t lease_ms;
  char *cluster;
  char *data_dir;
  int level;
  char *listen;
  int64_t offset;
  uint64_t max_bytes;
};

static const char *const levels[] = {"debug", "info", "warn", "error", NULL};

static const cmn_config_opt opts[] = {
    CMN_OPT_BOOL(struct tcfg, fsync, "fsync", "true", "fsync every oplog record"),
    CMN_OPT_INT(struct tcfg, workers, "workers", 1, 64, "4", "worker threads"),
    CMN_OPT_SIZE(struct tcfg, chunk_size, "chunk_size", 1 << 20, 1ll << 40, "64MiB",
                 "size of one chunk"),
    CMN_OPT_DURATION(struct tcfg, lease_ms, "lease_time", 1000, 86400000, "60s",
                     "how long a primary holds its lease before it must be renewed"),
    CMN_OPT_STRING(struct tcfg, cluster, "cluster_name", "cairn", "name shown in /status"),
    CMN_OPT_STRING(struct tcfg, data_dir, "data_dir", NULL, "where replicas live"),
    CMN_OPT_ENUM(struct tcfg, level, "log_level", levels, "info", "least severe level logged"),
    CMN_OPT_ADDR(struct tcfg, listen, "listen", "127.0.0.1:9000", "gRPC address"),
    CMN_OPT_INT(struct tcfg, offset, "offset", INT64_MIN, INT64_MAX, "-5", "any integer"),
    CMN_OPT_SIZE(struct tcfg, max_bytes, "max_bytes", 0, INT64_MAX, "0", "0 means no limit"),
};

static const cmn_config_spec spec =
    CMN_CONFIG_SPEC("cairn-test", "<command> [args...]", "a test program", struct tcfg, opts);

/* Per-test state: a config filled with defaults and a temporary directory. */
struct fx {
  struct tcfg cfg;
  char dir[256];
  char path[300];
  char err[256];
};

/* Runs before each case; the teardown runs even when the case fails, so
 * no temporary directory is left behind. */
static int fx_setup(void **state) {
  struct fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  const char *tmp = getenv("TMPDIR");
  snprintf(f->dir, sizeof f->dir, "%s/cairn-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof f->path, "%s/t.conf", f->dir);
  assert_int_equal(cmn_config_defaults(&spec, &f->cfg, f->err, sizeof f->err), 0);
  *state = f;
  return 0;
}

static int fx_teardown(void **state) {
  struct fx *f = *state;
  unlink(f->path);
  int rc = rmdir(f->dir);
  cmn_config_free(&spec, &f->cfg);
  free(f);
  return rc;
}

static void write_conf(struct fx *f, const char *text) {
  FILE *fp = fopen(f->path, "w");
  assert_non_null(fp);
  assert_int_equal(fputs(text, fp) >= 0, 1);
  assert_int_equal(fclose(fp), 0);
}

/* Parse a command line given as a NULL-terminated list. */
static int args(struct fx *f, int *first_pos, const char *a0, ...) {
  char *argv[32];
  int argc = 0;
  va_list ap;
  va_start(ap, a0);
  for (const char *a = a0; a; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
  va_end(ap);
  argv[argc] = NULL;
  return cmn_config_parse_args(&spec, &f->cfg, argc, argv, first_pos, f->err, sizeof f->err);
}

/* The struct is byte-for-byte what its dump says; comparing dumps checks
 * every field, strings included. */
static void assert_unchanged(struct fx *f, const char *before) {
  char *now = cmn_config_dump(&spec, &f->cfg);
  assert_string_equal(now, before);
  free(now);
}

static void defaults_applied(void **state) {
  struct fx *f = *state;
  assert_true(f->cfg.fsync);
  assert_int_equal(f->cfg.workers, 4);
  assert_int_equal(f->cfg.chunk_size, 64u << 20);
  assert_int_equal(f->cfg.lease_ms, 60000);
  assert_string_equal(f->cfg.cluster, "cairn");
  assert_null(f->cfg.data_dir);
  assert_int_equal(f->cfg.level, 1);
  assert_string_equal(f->cfg.listen, "127.0.0.1:9000");
  assert_int_equal(f->cfg.offset, -5);
  assert_int_equal(f->cfg.max_bytes, 0);
  /* Applying defaults again frees and replaces the owned strings. */
  assert_int_equal(cmn_config_set(&spec, &f->cfg, "data-dir", "/srv/x", f->err, sizeof f->err), 0);
  assert_int_equal(cmn_config_defaults(&spec, &f->cfg, f->err, sizeof f->err), 0);
  assert_null(f->cfg.data_dir);
}

static void every_type_parses_valid_values(void **state) {
  struct fx *f = *state;
  struct tcfg *c = &f->cfg;
#define SET(n, v) assert_int_equal(cmn_config_set(&spec, c, n, v, f->err, sizeof f->err), 0)
  static const char *const off[] = {"false", "no", "off", "0", "FALSE", "Off"};
  static const char *const on[] = {"true", "yes", "on", "1", "True", "YES"};
  for (size_t i = 0; i < 6; i++) {
    SET("fsync", off[i]);
    assert_false(c->fsync);
    SET("fsync", on[i]);
    assert_true(c->fsync);
  }
  SET("workers", "64"); assert_int_equal(c->workers, 64);
  SET("workers", "+1"); assert_int_equal(c->workers, 1);
  SET("offset", "-9223372036854775808"); assert_true(c->offset == INT64_MIN);
  SET("offset", "9223372036854775807"); assert_true(c->offset == INT64_MAX);
  SET("chunk_size", "1048576"); assert_int_equal(c->chunk_size, 1u << 20);
  SET("chunk_size", "2M"); assert_int_equal(c->chunk_size, 2u << 20);
  SET("chunk_size", "3 MiB"); assert_int_equal(c->chunk_size, 3u << 20);
  SET("chunk_size", "1g"); assert_int_equal(c->chunk_size, 1u << 30);
  SET("chunk_size", "2GiB"); assert_int_equal(c->chunk_size, 2ull << 30);
  SET("chunk_size", "1T"); assert_int_equal(c->chunk_size, 1ull << 40);
  SET("chunk_size", "1024K"); assert_int_equal(c->chunk_size, 1u << 20);
  SET("chunk_size", "2048kib"); assert_int_equal(c->chunk_size, 2u << 20);
  SET("max_bytes", "512B"); assert_int_equal(c->max_bytes, 512);
  SET("max_bytes", "8191T"); assert_int_equal(c->max_bytes, 8191ull << 40);
  SET("lease_time", "1500ms"); assert_int_equal(c->lease_ms, 1500);
  SET("lease_time", "7"); assert_int_equal(c->lease_ms, 7000);
  SET("lease_time", "2s"); assert_int_equal(c->lease_ms, 2000);
  SET("lease_time", "3m"); assert_int_equal(c->lease_ms, 180000);
  SET("lease_time", "2 h"); assert_int_equal(c->lease_ms, 7200000);
  SET("lease_time", "1d"); assert_int_equal(c->lease_ms, 86400000);
  SET("log_level", "warn"); assert_int_equal(c->level, 2);
  SET("log-level", "DEBUG"); assert_int_equal(c->level, 0);
  SET("listen", "[::1]:9000"); assert_string_equal(c->listen, "[::1]:9000");
  SET("listen", "node-1.example:65535"); assert_string_equal(c->listen, "node-1.example:65535");
  SET("listen", "0.0.0.0:1"); assert_string_equal(c->listen, "0.0.0.0:1");
  SET("cluster_name", ""); assert_string_equal(c->cluster, "");
  SET("cluster_name", "a b # c"); assert_string_equal(c->cluster, "a b # c");
#undef SET
  /* Wrong units and shapes are refused. */
  const char *const bad[][2] = {{"chunk_size", "2MB"},  {"chunk_size", "1.5G"},
                                {"chunk_size", "-1M"},  {"chunk_size", ""},
                                {"lease_time", "5S"},   {"lease_time", "1w"},
                                {"lease_time", "-3s"},  {"workers", "4x"},
                                {"workers", "0x10"},    {"workers", ""},
                                {"log_level", "trace"}, {"nope", "1"}};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    char *before = cmn_config_dump(&spec, c);
    assert_int_equal(cmn_config_set(&spec, c, bad[i][0], bad[i][1], f->err, sizeof f->err),
                     CAIRN_ECONFIG);
    assert_true(strlen(f->err) > 0);
    assert_unchanged(f, before);
    free(before);
  }
  assert_non_null(strstr(f->err, "unknown setting 'nope'"));
}

static void file_with_comments_quotes_and_blank_lines(void **state) {
  struct fx *f = *state;
  write_conf(f, "# cairn test config\n"
                "\n"
                "   \t\n"
                "workers = 8   # trailing comment\n"
                "chunk-size=16MiB\n"
                "  cluster_name = \"my # cluster \"  # the name\n"
                "data_dir = /srv/a#b\n"
                "fsync = off\r\n"
                "log_level = error\n"
                "listen = \"[::1]:9001\"\n"
                "lease_time = 90s"); /* no final newline */
  assert_int_equal(cmn_config_load_file(&spec, &f->cfg, f->path, f->err, sizeof f->err), 0);
  assert_int_equal(f->cfg.workers, 8);
  assert_int_equal(f->cfg.chunk_size, 16u << 20);
  assert_string_equal(f->cfg.cluster, "my # cluster ");
  assert_string_equal(f->cfg.data_dir, "/srv/a#b");
  assert_false(f->cfg.fsync);
  assert_int_equal(f->cfg.level, 3);
  assert_string_equal(f->cfg.listen, "[::1]:9001");
  assert_int_equal(f->cfg.lease_ms, 90000);
  assert_int_equal(f->cfg.offset, -5); /* untouched keys keep their value */
}

/* Load `text` and expect CAIRN_ECONFIG with `msg` in the error and no change. */
static void expect_file_error(struct fx *f, const char *text, const char *msg) {
  char *before = cmn_config_dump(&spec, &f->cfg);
  write_conf(f, text);
  f->err[0] = '\0';
  assert_int_equal(cmn_config_load_file(&spec, &f->cfg, f->path, f->err, sizeof f->err),
                   CAIRN_ECONFIG);
  if (!strstr(f->err, msg)) fail_msg("error '%s' lacks '%s'", f->err, msg);
  assert_non_null(strstr(f->err, f->path));
  assert_unchanged(f, before);
  free(before);
}

static void unknown_key_names_file_and_line_and_changes_nothing(void **state) {
  struct fx *f = *state;
  expect_file_error(f,
                    "workers = 9\n"
                    "cluster_name = changed\n"
                    "# comment\n"
                    "chunk_sise = 1M\n",
                    "t.conf:4: unknown key 'chunk_sise'");
  assert_int_equal(f->cfg.workers, 4);
  assert_string_equal(f->cfg.cluster, "cairn");
}

static void out_of_range_refused(void **state) {
  struct fx *f = *state;
  expect_file_error(f, "workers = 65\n", "t.conf:1: workers: '65' is out of range 1..64");
  expect_file_error(f, "workers = 0\n", "out of range");
  expect_file_error(f, "fsync = no\nchunk_size = 512K\n",
                    "t.conf:2: chunk_size: '512K' is out of range 1MiB..1TiB");
  expect_file_error(f, "chunk_size = 2T\n", "out of range");
  expect_file_error(f, "lease_time = 999ms\n", "out of range 1s..1d");
  expect_file_error(f, "lease_time = 2d\n", "out of range");
  assert_int_equal(args(f, NULL, "prog", "--workers", "100", NULL), CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "--workers"));
  assert_int_equal(f->cfg.workers, 4);
}

static void bad_bool_refused(void **state) {
  struct fx *f = *state;
  expect_file_error(f, "fsync = maybe\n", "t.conf:1: fsync: 'maybe' is not on/off");
  expect_file_error(f, "fsync = 2\n", "not on/off");
  expect_file_error(f, "fsync =\n", "not on/off");
  assert_int_equal(args(f, NULL, "prog", "--fsync=perhaps", NULL), CAIRN_ECONFIG);
  assert_true(f->cfg.fsync);
}

static void duplicate_key_and_bad_lines_refused(void **state) {
  struct fx *f = *state;
  expect_file_error(f, "workers = 2\nworkers = 3\n",
                    "t.conf:2: duplicate key 'workers' (first set on line 1)");
  expect_file_error(f, "chunk_size = 2M\n\nchunk-size = 2M\n", "t.conf:3: duplicate key");
  expect_file_error(f, "workers 2\n", "t.conf:1: expected 'name = value'");
  expect_file_error(f, " = 2\n", "missing name");
  expect_file_error(f, "cluster_name = \"open\n", "unterminated quote");
  expect_file_error(f, "cluster_name = \"a\" b\n", "after the closing quote");
}

static void missing_file_reported(void **state) {
  struct fx *f = *state;
  char *before = cmn_config_dump(&spec, &f->cfg);
  assert_int_equal(cmn_config_load_file(&spec, &f->cfg, f->path, f->err, sizeof f->err),
                   CAIRN_ENOENT);
  assert_non_null(strstr(f->err, "t.conf"));
  assert_int_equal(args(f, NULL, "prog", "--config", f->path, NULL), CAIRN_ENOENT);
  assert_unchanged(f, before);
  free(before);
}

static void flags_override_file_regardless_of_order(void **state) {
  struct fx *f = *state;
  write_conf(f, "workers = 3\ncluster_name = from-file\nfsync = no\n");
  assert_int_equal(args(f, NULL, "prog", "--workers", "9", "--config", f->path, NULL), 0);
  assert_int_equal(f->cfg.workers, 9);
  assert_string_equal(f->cfg.cluster, "from-file");
  assert_false(f->cfg.fsync);
  assert_int_equal(args(f, NULL, "prog", "--config=", NULL), CAIRN_ENOENT);
  assert_int_equal(
      args(f, NULL, "prog", "--config", f->path, "--workers", "10", "--fsync", NULL), 0);
  assert_int_equal(f->cfg.workers, 10);
  assert_true(f->cfg.fsync);
  /* A later flag wins over an earlier one. */
  assert_int_equal(args(f, NULL, "prog", "--workers=5", "--workers", "6", NULL), 0);
  assert_int_equal(f->cfg.workers, 6);
  assert_int_equal(args(f, NULL, "prog", "--config", f->path, "--config", f->path, NULL),
                   CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "twice"));
  /* A bad file stops everything, flags included. */
  write_conf(f, "workers = 3\nbogus = 1\n");
  assert_int_equal(args(f, NULL, "prog", "--cluster-name", "x", "--config", f->path, NULL),
                   CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "t.conf:2: unknown key 'bogus'"));
  assert_int_equal(f->cfg.workers, 6);
  assert_string_equal(f->cfg.cluster, "from-file");
  /* And a bad flag after a good file changes nothing either. */
  write_conf(f, "workers = 3\n");
  assert_int_equal(args(f, NULL, "prog", "--config", f->path, "--chunk-size", "1X", NULL),
                   CAIRN_ECONFIG);
  assert_int_equal(f->cfg.workers, 6);
}

static void no_prefix_and_bare_bool(void **state) {
  struct fx *f = *state;
  assert_int_equal(args(f, NULL, "prog", "--no-fsync", NULL), 0);
  assert_false(f->cfg.fsync);
  assert_int_equal(args(f, NULL, "prog", "--fsync", NULL), 0);
  assert_true(f->cfg.fsync);
  assert_int_equal(args(f, NULL, "prog", "--no_fsync", NULL), 0);
  assert_false(f->cfg.fsync);
  assert_int_equal(args(f, NULL, "prog", "--fsync=yes", NULL), 0);
  assert_true(f->cfg.fsync);
  assert_int_equal(args(f, NULL, "prog", "--no-fsync=yes", NULL), CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "takes no value"));
  assert_int_equal(args(f, NULL, "prog", "--no-workers", NULL), CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "--no-workers"));
  assert_true(f->cfg.fsync);
  /* A bool never takes the next argument: "off" is a positional here. */
  int pos = -1;
  assert_int_equal(args(f, &pos, "prog", "--no-fsync", "off", NULL), 0);
  assert_int_equal(pos, 2);
}

static void name_equals_value_form(void **state) {
  struct fx *f = *state;
  assert_int_equal(args(f, NULL, "prog", "--workers=7", "--chunk_size=2M", "--lease-time=5s",
                        "--listen=127.0.0.1:1234", "--cluster-name=a=b", "--log-level", "warn",
                        "--offset", "-42", NULL),
                   0);
  assert_int_equal(f->cfg.workers, 7);
  assert_int_equal(f->cfg.chunk_size, 2u << 20);
  assert_int_equal(f->cfg.lease_ms, 5000);
  assert_string_equal(f->cfg.listen, "127.0.0.1:1234");
  assert_string_equal(f->cfg.cluster, "a=b");
  assert_int_equal(f->cfg.level, 2);
  assert_int_equal(f->cfg.offset, -42); /* a value may start with '-' */
  assert_int_equal(args(f, NULL, "prog", "--data-dir=", NULL), 0);
  assert_string_equal(f->cfg.data_dir, "");
}

static void unknown_flag_refused(void **state) {
  struct fx *f = *state;
  char *before = cmn_config_dump(&spec, &f->cfg);
  assert_int_equal(args(f, NULL, "prog", "--workers", "8", "--chunk-sise", "1M", NULL),
                   CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "unknown option '--chunk-sise'"));
  assert_int_equal(args(f, NULL, "prog", "-w", "8", NULL), CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "'-w'"));
  assert_int_equal(args(f, NULL, "prog", "--workers", NULL), CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "needs a value"));
  assert_int_equal(args(f, NULL, "prog", "--config", NULL), CAIRN_ECONFIG);
  assert_int_equal(args(f, NULL, "prog", "--", NULL), 0);
  assert_unchanged(f, before);
  free(before);
}

static void help_detected_and_lists_every_option(void **state) {
  struct fx *f = *state;
  char *before = cmn_config_dump(&spec, &f->cfg);
  assert_int_equal(args(f, NULL, "prog", "--help", NULL), CMN_CONFIG_HELP);
  assert_int_equal(args(f, NULL, "prog", "--workers", "9", "-h", NULL), CMN_CONFIG_HELP);
  assert_int_equal(args(f, NULL, "prog", "--bogus", "--help", NULL), CMN_CONFIG_HELP);
  assert_unchanged(f, before);
  /* "--help" as the value of an option, or after "--", is not a request. */
  assert_int_equal(args(f, NULL, "prog", "--cluster-name", "--help", NULL), 0);
  assert_string_equal(f->cfg.cluster, "--help");
  int pos = -1;
  assert_int_equal(args(f, &pos, "prog", "--", "--help", NULL), 0);
  assert_int_equal(pos, 2);

  char *h = cmn_config_help(&spec);
  assert_non_null(strstr(h, "usage: cairn-test [options] <command> [args...]"));
  for (size_t i = 0; i < CMN_ARRAY_LEN(opts); i++) {
    char flag[64], def[64];
    snprintf(flag, sizeof flag, "--%s%s ", opts[i].type == CMN_CFG_BOOL ? "[no-]" : "",
             opts[i].name);
    for (char *c = flag; *c; c++)
      if (*c == '_') *c = '-';
    if (!strstr(h, flag)) fail_msg("help lacks '%s'", flag);
    snprintf(def, sizeof def, "(default %s", opts[i].def ? opts[i].def : "");
    if (opts[i].def && opts[i].def[0] && !strstr(h, def)) fail_msg("help lacks '%s'", def);
  }
  assert_non_null(strstr(h, "--[no-]fsync"));
  assert_non_null(strstr(h, "debug|info|warn|error"));
  assert_non_null(strstr(h, "range 1MiB..1TiB"));
  assert_non_null(strstr(h, "--config FILE"));
  assert_non_null(strstr(h, "-h, --help"));
  /* Wrapped: no line is wider than 79 columns. */
  for (const char *line = h; *line;) {
    size_t n = strcspn(line, "\n");
    assert_true(n <= 79);
    line += n + (line[n] != '\0');
  }
  free(h);
  free(before);
}

static void positional_arguments(void **state) {
  struct fx *f = *state;
  int pos = -1;
  assert_int_equal(args(f, NULL, "prog", "put", NULL), CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "unexpected argument 'put'"));
  assert_int_equal(args(f, NULL, "prog", "--", "put", NULL), CAIRN_ECONFIG);
  assert_int_equal(args(f, &pos, "prog", "--workers", "3", "put", "--workers", "99", NULL), 0);
  assert_int_equal(pos, 3);
  assert_int_equal(f->cfg.workers, 3); /* flags after the command are its own */
  assert_int_equal(args(f, &pos, "prog", "--workers=2", NULL), 0);
  assert_int_equal(pos, 2);
  assert_int_equal(args(f, &pos, "prog", "-", "x", NULL), 0);
  assert_int_equal(pos, 1);
  assert_int_equal(args(f, &pos, "prog", "--no-fsync", "--", "--workers", NULL), 0);
  assert_int_equal(pos, 3);
  assert_false(f->cfg.fsync);
  pos = -1;
  assert_int_equal(args(f, &pos, "prog", "--bogus", "cmd", NULL), CAIRN_ECONFIG);
  assert_int_equal(pos, -1);
}

static void size_and_duration_overflow_refused(void **state) {
  struct fx *f = *state;
  const char *const bad[][2] = {
      {"max_bytes", "99999999999T"},
      {"max_bytes", "18446744073709551616"},
      {"max_bytes", "99999999999999999999999"},
      {"max_bytes", "9223372036854775808"}, /* fits u64, but over INT64_MAX */
      {"max_bytes", "8388608T"}, /* 2^63 */
      {"lease_time", "9999999999999999d"},
      {"lease_time", "9223372036854775807s"},
      {"offset", "9223372036854775808"},
      {"offset", "-9223372036854775809"},
  };
  char *before = cmn_config_dump(&spec, &f->cfg);
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    assert_int_equal(cmn_config_set(&spec, &f->cfg, bad[i][0], bad[i][1], f->err, sizeof f->err),
                     CAIRN_ECONFIG);
    if (!strstr(f->err, "too large") && !strstr(f->err, "out of range"))
      fail_msg("%s = %s: %s", bad[i][0], bad[i][1], f->err);
  }
  assert_unchanged(f, before);
  free(before);
}

static void invalid_addr_refused(void **state) {
  struct fx *f = *state;
  const char *const bad[] = {"localhost",       "localhost:0",   "localhost:70000", ":9000",
                             "::1:9000",        "[::1]9000",     "[]:9000",         "host:",
                             "host:12a",        "host:000009000", "ho st:1",         "host:-1",
                             "host:+80",        ""};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    assert_int_equal(cmn_config_set(&spec, &f->cfg, "listen", bad[i], f->err, sizeof f->err),
                     CAIRN_ECONFIG);
    assert_string_equal(f->cfg.listen, "127.0.0.1:9000");
  }
  expect_file_error(f, "listen = example.org:0\n", "t.conf:1: listen:");
  assert_int_equal(args(f, NULL, "prog", "--listen", "example.org:70000", NULL), CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "1 to 65535"));
  /* A listen address may ask for any free port with 0. */
  struct lcfg {
    char *bind;
  } lc = {0};
  const cmn_config_opt lo[] = {CMN_OPT_LISTEN(struct lcfg, bind, "bind", "127.0.0.1:0", "")};
  cmn_config_spec ls = {"p", NULL, NULL, lo, 1, sizeof lc};
  assert_int_equal(cmn_config_defaults(&ls, &lc, f->err, sizeof f->err), 0);
  assert_string_equal(lc.bind, "127.0.0.1:0");
  assert_int_equal(cmn_config_set(&ls, &lc, "bind", "127.0.0.1:70000", f->err, sizeof f->err),
                   CAIRN_ECONFIG);
  assert_non_null(strstr(f->err, "0 to 65535"));
  cmn_config_free(&ls, &lc);
}

static void dump_round_trips_through_a_file(void **state) {
  struct fx *f = *state;
  assert_int_equal(args(f, NULL, "prog", "--chunk-size=3M", "--lease-time=1500ms", "--no-fsync",
                        "--data-dir", "/srv/a b#c", "--log-level=error", "--offset=-1",
                        "--max-bytes", "1536", NULL),
                   0);
  char *dump = cmn_config_dump(&spec, &f->cfg);
  assert_non_null(strstr(dump, "chunk_size = 3MiB\n"));
  assert_non_null(strstr(dump, "lease_time = 1500ms\n"));
  assert_non_null(strstr(dump, "fsync = false\n"));
  assert_non_null(strstr(dump, "log_level = error\n"));
  assert_non_null(strstr(dump, "data_dir = \"/srv/a b#c\"\n"));
  assert_non_null(strstr(dump, "max_bytes = 1536\n"));
  write_conf(f, dump);
  struct tcfg other = {0};
  assert_int_equal(cmn_config_defaults(&spec, &other, f->err, sizeof f->err), 0);
  assert_int_equal(cmn_config_load_file(&spec, &other, f->path, f->err, sizeof f->err), 0);
  char *dump2 = cmn_config_dump(&spec, &other);
  assert_string_equal(dump, dump2);
  free(dump);
  free(dump2);
  cmn_config_free(&spec, &other);
  cmn_config_free(&spec, &other); /* twice is harmless */
}

/* Every mistake a table can hold is caught by cmn_config_defaults. */
static void bad_tables_refused(void **state) {
  (void)state;
  struct tcfg c = {0};
  char err[256];
  const cmn_config_opt bad_default[] = {
      CMN_OPT_INT(struct tcfg, workers, "workers", 1, 8, "9", "out of its own range"),
      CMN_OPT_STRING(struct tcfg, cluster, "cluster_name", "x", "")};
  const cmn_config_opt bad_size[] = {CMN_OPT_SIZE(struct tcfg, chunk_size, "c", 0, 10, "1X", "")};
  const cmn_config_opt twice[] = {CMN_OPT_INT(struct tcfg, workers, "w", 0, 8, "1", ""),
                                  CMN_OPT_INT(struct tcfg, offset, "w", 0, 8, "1", "")};
  const cmn_config_opt reserved[] = {CMN_OPT_STRING(struct tcfg, cluster, "config", NULL, "")};
  const cmn_config_opt upper[] = {CMN_OPT_STRING(struct tcfg, cluster, "Name", NULL, "")};
  const cmn_config_opt bounds[] = {CMN_OPT_INT(struct tcfg, workers, "w", 9, 1, "5", "")};
  const cmn_config_opt no_def[] = {CMN_OPT_ADDR(struct tcfg, listen, "l", NULL, "")};
  const cmn_config_opt empty_enum[] = {CMN_OPT_ENUM(struct tcfg, level, "e", NULL, "x", "")};
  const struct {
    const cmn_config_opt *o;
    size_t n;
    const char *msg;
  } cases[] = {{bad_default, 2, "default of 'workers'"}, {bad_size, 1, "default of 'c'"},
               {twice, 2, "twice"},         {reserved, 1, "reserved"},
               {upper, 1, "[a-z0-9_]"},     {bounds, 1, "bounds"},
               {no_def, 1, "no default"},   {empty_enum, 1, "no choices"}};
  for (size_t i = 0; i < CMN_ARRAY_LEN(cases); i++) {
    cmn_config_spec s = {"p", NULL, NULL, cases[i].o, cases[i].n, sizeof c};
    assert_int_equal(cmn_config_defaults(&s, &c, err, sizeof err), CAIRN_ECONFIG);
    if (!strstr(err, cases[i].msg)) fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].msg);
    assert_null(c.cluster); /* nothing applied, nothing leaked */
    assert_int_equal(c.workers, 0);
  }
  /* A field outside the struct is caught too. */
  cmn_config_spec small = {"p", NULL, NULL, opts, CMN_ARRAY_LEN(opts), sizeof(bool)};
  assert_int_equal(cmn_config_defaults(&small, &c, err, sizeof err), CAIRN_ECONFIG);
  /* A NULL error buffer is allowed. */
  assert_int_equal(cmn_config_defaults(&small, &c, NULL, 0), CAIRN_ECONFIG);
}

CAIRN_TEST_MAIN(
    cmocka_unit_test_setup_teardown(defaults_applied,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(every_type_parses_valid_values,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(file_with_comments_quotes_and_blank_lines,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(unknown_key_names_file_and_line_and_changes_nothing,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(out_of_range_refused,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(bad_bool_refused,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(duplicate_key_and_bad_lines_refused,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(missing_file_reported,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(flags_override_file_regardless_of_order,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(no_prefix_and_bare_bool,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(name_equals_value_form,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(unknown_flag_refused,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(help_detected_and_lists_every_option,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(positional_arguments,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(size_and_duration_overflow_refused,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(invalid_addr_refused,
                                    fx_setup, fx_teardown),
    cmocka_unit_test_setup_teardown(dump_round_trips_through_a_file,
                                    fx_setup, fx_teardown),
    cmocka_unit_test(bad_tables_refused))
