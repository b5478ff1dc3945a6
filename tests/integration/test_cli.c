/*
 * The `cairn` command-line tool against a real cluster on 127.0.0.1: each
 * case runs the built binary the way a user or a script would and checks
 * its output and its exit code (0 ok, 1 failed, 2 usage, 3 unreachable).
 */
#include "test_main.h"

#include "cairn_error.h"
#include "cluster.h"
#include "cmn_util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUN_TIMEOUT_MS 120000
#define MAX_ARGS 24

struct fx {
  it_cluster c;
  bool cluster;
  char dir[300];         /* scratch files of the test (inside the cluster dir) */
  char out_path[340], err_path[340];
  char *out, *err;       /* what the last run printed */
  size_t out_len;
};

/* ---- running the tool -------------------------------------------------------------- */

/*
 * Run `cairn args...` (args NULL-terminated) with stdin from `in` (NULL:
 * /dev/null), stdout and stderr captured separately into f->out and f->err.
 * A shell does the stderr and stdin redirections, since it_run sends
 * both streams to one log. Returns the exit code (-1: did not finish).
 */
static int run_cli(struct fx *f, const char *in, const char *const *args) {
  char bin[512];
  char *argv[MAX_ARGS + 8];
  int n = 0;
  it_bin(bin, sizeof bin, "cairn");
  argv[n++] = "/bin/sh";
  argv[n++] = "-c";
  argv[n++] = "in=$1; err=$2; shift 2; exec \"$0\" \"$@\" <\"$in\" 2>\"$err\"";
  argv[n++] = bin;
  argv[n++] = (char *)(in ? in : "/dev/null");
  argv[n++] = f->err_path;
  for (int i = 0; args[i] && i < MAX_ARGS; i++) argv[n++] = (char *)args[i];
  argv[n] = NULL;
  unlink(f->out_path);
  unlink(f->err_path);
  int rc = it_run(argv, f->out_path, RUN_TIMEOUT_MS);
  free(f->out);
  free(f->err);
  f->out = f->err = NULL;
  size_t elen = 0;
  if (cmn_read_file(f->out_path, 64u << 20, &f->out, &f->out_len) != 0) {
    f->out = cmn_strdup("");
    f->out_len = 0;
  }
  if (cmn_read_file(f->err_path, 1u << 20, &f->err, &elen) != 0) f->err = cmn_strdup("");
  if (rc != 0 && getenv("CAIRN_TEST_VERBOSE")) fprintf(stderr, "exit %d: %s", rc, f->err);
  return rc;
}

static int cairn_va(struct fx *f, const char *in, ...) {
  const char *args[MAX_ARGS + 1];
  int n = 0;
  va_list ap;
  va_start(ap, in);
  for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < MAX_ARGS;) args[n++] = a;
  va_end(ap);
  args[n] = NULL;
  return run_cli(f, in, args);
}

#define cairn(f, ...) cairn_va(f, NULL, __VA_ARGS__, (const char *)NULL)
#define cairn_stdin(f, in, ...) cairn_va(f, in, __VA_ARGS__, (const char *)NULL)

/* ---- reading JSON output ------------------------------------------------------------
 * The integration tests link no JSON library; these two checks are enough:
 * the text is exactly one object, and a named integer field has a value. */

static bool one_json_object(const char *s) {
  int depth = 0, objects = 0;
  bool in_str = false;
  while (isspace((unsigned char)*s)) s++;
  if (*s != '{') return false;
  for (; *s; s++) {
    if (in_str) {
      if (*s == '\\' && s[1]) s++;
      else if (*s == '"') in_str = false;
      continue;
    }
    if (*s == '"') in_str = true;
    else if (*s == '{' || *s == '[') depth++;
    else if (*s == '}' || *s == ']') {
      if (--depth < 0) return false;
      if (depth == 0) objects++;
    } else if (depth == 0 && !isspace((unsigned char)*s)) return false;
  }
  return depth == 0 && !in_str && objects == 1;
}

/* The first `"key": <integer>` in the text. */
static bool json_int(const char *s, const char *key, long long *v) {
  char pat[80];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = strstr(s, pat);
  if (!p) return false;
  p += strlen(pat);
  while (*p == ' ') p++;
  char *end;
  *v = strtoll(p, &end, 10);
  return end != p && (*end == ',' || *end == '\n' || *end == '}' || *end == ' ');
}

static long long json_int_or_fail(const char *s, const char *key) {
  long long v = 0;
  if (!json_int(s, key, &v)) fail_msg("no integer field \"%s\" in: %s", key, s);
  return v;
}

/* ---- fixtures ----------------------------------------------------------------------- */

static struct fx *fx_new(void) {
  struct fx *f = cmn_calloc(1, sizeof *f);
  return f;
}

/* Output files in f->dir (set by the caller). */
static void fx_paths(struct fx *f) {
  snprintf(f->out_path, sizeof f->out_path, "%s/cli.out", f->dir);
  snprintf(f->err_path, sizeof f->err_path, "%s/cli.err", f->dir);
}

static int setup(void **state) {
  struct fx *f = fx_new();
  *state = f;
  if (it_cluster_start(&f->c, "cli", 3, 3) != 0) return -1;
  f->cluster = true;
  memcpy(f->dir, f->c.dir, sizeof f->c.dir);
  fx_paths(f);
  setenv("CAIRN_MASTER", f->c.master_rpc, 1);
  setenv("CAIRN_SECRET_FILE", f->c.secret_file, 1);
  return 0;
}

/* No cluster: for what must fail before the tool talks to anyone. */
static int setup_offline(void **state) {
  struct fx *f = fx_new();
  *state = f;
  if (it_tmpdir(f->dir, sizeof f->dir, "cli-offline") != 0) return -1;
  fx_paths(f);
  setenv("CAIRN_MASTER", "127.0.0.1:1", 1);
  unsetenv("CAIRN_SECRET_FILE");
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  if (f->cluster) it_cluster_stop(&f->c);
  else if (f->dir[0]) it_rm_rf(f->dir);
  free(f->out);
  free(f->err);
  free(f);
  unsetenv("CAIRN_MASTER");
  unsetenv("CAIRN_SECRET_FILE");
  return 0;
}

static char *path_in(struct fx *f, const char *name) { return cmn_sprintf("%s/%s", f->dir, name); }

static void write_local(const char *path, const void *data, size_t n) {
  assert_int_equal(cmn_write_file_atomic(path, data, n, 0644), 0);
}

static void assert_local_equals(const char *path, const void *want, size_t n) {
  char *got = NULL;
  size_t len = 0;
  assert_int_equal(cmn_read_file(path, 64u << 20, &got, &len), 0);
  assert_int_equal(len, n);
  assert_memory_equal(got, want, n);
  free(got);
}

/* The output without its trailing newline, as a new string. */
static char *line_of(const char *s) { return cmn_strndup(s, strcspn(s, "\n")); }

/* ---- cases --------------------------------------------------------------------------- */

/* 5 MiB of random bytes (five 1 MiB chunks) out and back, three ways. */
static void put_get_round_trip(void **state) {
  struct fx *f = *state;
  size_t n = 5u << 20;
  uint8_t *data = cmn_malloc(n);
  assert_int_equal(cmn_random_bytes(data, n), 0);
  char *src = path_in(f, "random.bin"), *back = path_in(f, "back.bin");
  write_local(src, data, n);

  assert_int_equal(cairn(f, "mkdir", "/r"), 0);
  assert_int_equal(cairn(f, "put", src, "/r/random.bin"), 0);
  assert_string_equal(f->err, ""); /* not a terminal: no progress meter */
  assert_int_equal(cairn(f, "get", "/r/random.bin", back), 0);
  assert_local_equals(back, data, n);

  assert_int_equal(cairn(f, "get", "/r/random.bin", "-"), 0);
  assert_int_equal(f->out_len, n);
  assert_memory_equal(f->out, data, n);
  assert_int_equal(cairn(f, "cat", "/r/random.bin"), 0);
  assert_int_equal(f->out_len, n);
  assert_memory_equal(f->out, data, n);

  /* An existing file is kept unless --overwrite. */
  assert_int_equal(cairn(f, "put", src, "/r/random.bin"), 1);
  assert_non_null(strstr(f->err, "already exists"));
  assert_int_equal(cairn(f, "put", "--overwrite", src, "/r/random.bin", "--json"), 0);
  assert_true(one_json_object(f->out));
  assert_int_equal(json_int_or_fail(f->out, "bytes"), (long long)n);

  /* Into a directory, and from stdin. */
  assert_int_equal(cairn(f, "mkdir", "/into"), 0);
  assert_int_equal(cairn(f, "put", src, "/into"), 0);
  assert_int_equal(cairn(f, "stat", "/into/random.bin"), 0);
  assert_int_equal(cairn_stdin(f, src, "put", "-", "/r/from-stdin", "--quiet"), 0);
  assert_string_equal(f->err, "");
  unlink(back);
  assert_int_equal(cairn(f, "get", "/r/from-stdin", back), 0);
  assert_local_equals(back, data, n);
  free(src);
  free(back);
  free(data);
}

static void namespace_commands(void **state) {
  struct fx *f = *state;
  char *src = path_in(f, "small.txt");
  write_local(src, "hello cairn\n", 12);

  assert_int_equal(cairn(f, "mkdir", "-p", "/a/b/c"), 0);
  assert_int_equal(cairn(f, "mkdir", "/a/b"), 1);
  assert_int_equal(cairn(f, "mkdir", "/a/b", "-p"), 0);
  assert_int_equal(cairn(f, "put", src, "/a/b/small.txt"), 0);

  assert_int_equal(cairn(f, "ls", "/a/b"), 0);
  assert_string_equal(f->out, "c/\nsmall.txt\n");
  assert_int_equal(cairn(f, "ls", "-l", "/a/b"), 0);
  assert_non_null(strstr(f->out, "small.txt"));
  assert_non_null(strstr(f->out, " 12 "));
  assert_non_null(strstr(f->out, "dir "));
  assert_int_equal(cairn(f, "ls", "--json", "/a/b"), 0);
  assert_true(one_json_object(f->out));
  assert_non_null(strstr(f->out, "\"name\": \"small.txt\""));
  assert_non_null(strstr(f->out, "\"type\": \"dir\""));

  assert_int_equal(cairn(f, "stat", "--json", "/a/b/small.txt"), 0);
  assert_true(one_json_object(f->out));
  assert_int_equal(json_int_or_fail(f->out, "size"), 12);
  assert_int_equal(json_int_or_fail(f->out, "goal"), 3);
  assert_non_null(strstr(f->out, "\"type\": \"file\""));
  assert_int_equal(cairn(f, "stat", "/a/b/small.txt"), 0);
  assert_non_null(strstr(f->out, "size:     12 (12 B)"));

  /* setgoal, then stat shows it. */
  assert_int_equal(cairn(f, "setgoal", "/a/b/small.txt", "2"), 0);
  assert_int_equal(cairn(f, "stat", "--json", "/a/b/small.txt"), 0);
  assert_int_equal(json_int_or_fail(f->out, "goal"), 2);
  assert_int_equal(cairn(f, "setgoal", "/a/nope", "2"), 1);

  /* mv: to a name, then into a directory. */
  assert_int_equal(cairn(f, "mv", "/a/b/small.txt", "/a/moved.txt"), 0);
  assert_int_equal(cairn(f, "stat", "/a/b/small.txt"), 1);
  assert_int_equal(cairn(f, "mv", "/a/moved.txt", "/a/b/c"), 0);
  assert_int_equal(cairn(f, "cat", "/a/b/c/moved.txt"), 0);
  assert_string_equal(f->out, "hello cairn\n");

  /* rm prints the trash path; undelete brings the file back. */
  assert_int_equal(cairn(f, "rm", "/a/b/c/moved.txt"), 0);
  char *trash = line_of(f->out);
  assert_true(trash[0] == '/');
  assert_int_equal(cairn(f, "stat", "/a/b/c/moved.txt"), 1);
  assert_int_equal(cairn(f, "undelete", trash), 0);
  assert_int_equal(cairn(f, "cat", "/a/b/c/moved.txt"), 0);
  assert_string_equal(f->out, "hello cairn\n");
  free(trash);
  assert_int_equal(cairn(f, "rm", "--json", "/a/b/c/moved.txt"), 0);
  assert_true(one_json_object(f->out));
  char *t2 = strstr(f->out, "\"trash_path\": \"");
  assert_non_null(t2);
  t2 = cmn_strndup(t2 + 15, strcspn(t2 + 15, "\""));
  assert_int_equal(cairn(f, "undelete", t2, "/a/restored.txt"), 0);
  assert_int_equal(cairn(f, "cat", "/a/restored.txt"), 0);
  assert_string_equal(f->out, "hello cairn\n");
  free(t2);

  /* A non-empty directory needs -r. */
  assert_int_equal(cairn(f, "rm", "/a"), 1);
  assert_non_null(strstr(f->err, "not empty"));
  assert_int_equal(cairn(f, "rm", "-r", "/a"), 0);
  assert_int_equal(cairn(f, "stat", "/a"), 1);
  free(src);
}

static void append_twice(void **state) {
  struct fx *f = *state;
  const char r1[] = "first record\n", r2[] = "the second record\n";
  char *p1 = path_in(f, "r1"), *p2 = path_in(f, "r2");
  write_local(p1, r1, strlen(r1));
  write_local(p2, r2, strlen(r2));
  assert_int_equal(cairn(f, "append", "/log", p1), 0);
  long long o1 = strtoll(f->out, NULL, 10);
  assert_int_equal(o1, 0);
  assert_int_equal(cairn_stdin(f, p2, "append", "/log", "-", "--json"), 0);
  assert_true(one_json_object(f->out));
  long long o2 = json_int_or_fail(f->out, "offset");
  assert_int_equal(json_int_or_fail(f->out, "length"), (long long)strlen(r2));
  assert_true(o2 >= (long long)strlen(r1));
  assert_int_equal(cairn(f, "cat", "/log"), 0);
  assert_true(f->out_len >= (size_t)o2 + strlen(r2));
  assert_memory_equal(f->out + o1, r1, strlen(r1));
  assert_memory_equal(f->out + o2, r2, strlen(r2));
  /* --no-create: a missing file stays missing. */
  assert_int_equal(cairn(f, "append", "/nolog", p1, "--no-create"), 1);
  assert_int_equal(cairn(f, "stat", "/nolog"), 1);
  free(p1);
  free(p2);
}

static void status_fsck_drain(void **state) {
  struct fx *f = *state;
  char *src = path_in(f, "two.bin");
  uint8_t *data = cmn_calloc(1, 2u << 20);
  write_local(src, data, 2u << 20);
  assert_int_equal(cairn(f, "put", src, "/two.bin"), 0);

  assert_int_equal(cairn(f, "status"), 0);
  for (int i = 0; i < f->c.ncs; i++) assert_non_null(strstr(f->out, f->c.cs[i].id));
  assert_non_null(strstr(f->out, "alive"));
  assert_int_equal(cairn(f, "status", "--json"), 0);
  assert_true(one_json_object(f->out));
  assert_true(json_int_or_fail(f->out, "chunks") >= 2);

  /* A write succeeds on 2 of 3 replicas; give a lagging third one time. */
  int rc = -1;
  for (int tries = 0; tries < 60 && rc != 0; tries++) {
    if (tries) usleep(500 * 1000);
    rc = cairn(f, "fsck", "--json");
  }
  assert_int_equal(rc, 0);
  assert_true(one_json_object(f->out));
  const char *fields[] = {"files", "chunks", "under_replicated", "missing", "corrupt"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) json_int_or_fail(f->out, fields[i]);
  assert_true(json_int_or_fail(f->out, "files") >= 1);
  assert_true(json_int_or_fail(f->out, "chunks") >= 2);
  assert_int_equal(json_int_or_fail(f->out, "missing"), 0);
  assert_int_equal(json_int_or_fail(f->out, "corrupt"), 0);
  assert_int_equal(json_int_or_fail(f->out, "under_replicated"), 0);
  assert_int_equal(cairn(f, "fsck"), 0);
  assert_non_null(strstr(f->out, "HEALTHY"));

  assert_int_equal(cairn(f, "drain", "no-such-server"), 1);
  assert_int_equal(cairn(f, "drain", f->c.cs[0].id), 0);
  assert_int_equal(cairn(f, "drain", f->c.cs[0].id, "--cancel"), 0);
  free(data);
  free(src);
}

/* Each of these is refused before anything is sent: exit 2, a message. */
static void usage_errors_exit_2(void **state) {
  struct fx *f = *state;
  const char *cases[][6] = {
      {NULL},
      {"bogus"},
      {"--bogus", "ls"},
      {"ls", "--bogus"},
      {"ls", "-x"},
      {"ls", "/a", "/b"},
      {"put", "onlyone"},
      {"put", "a", "b", "c"},
      {"get", "/x"},
      {"cat"},
      {"stat"},
      {"mkdir"},
      {"mv", "/a"},
      {"rm"},
      {"undelete"},
      {"append", "/x"},
      {"setgoal", "/x"},
      {"setgoal", "/x", "10"},
      {"setgoal", "/x", "zero"},
      {"status", "extra"},
      {"fsck", "extra"},
      {"drain"},
      {"help", "nope"},
      {"--timeout", "soon", "ls"},
      {"ls", "--timeout"},
      {"--master", "nohostport", "--secret-file", "/dev/null", "ls"},
      {"ls", "/"}, /* no secret anywhere */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *const *a = cases[i];
    int rc = run_cli(f, NULL, a);
    if (rc != 2)
      fail_msg("case %zu (%s %s): exit %d, want 2", i, a[0] ? a[0] : "", a[0] && a[1] ? a[1] : "",
               rc);
    assert_non_null(strstr(f->err, "cairn"));
    assert_string_equal(f->out, "");
  }
}

static void help_for_every_command(void **state) {
  struct fx *f = *state;
  const char *cmds[] = {"put", "get",     "cat",    "ls",      "stat",   "mkdir", "mv",
                        "rm",  "undelete", "append", "setgoal", "status", "fsck",  "drain"};
  assert_int_equal(cairn(f, "--help"), 0);
  assert_non_null(strstr(f->out, "exit codes:"));
  assert_int_equal(cairn(f, "help"), 0);
  assert_non_null(strstr(f->out, "usage: cairn"));
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    char want[64];
    snprintf(want, sizeof want, "usage: cairn %s", cmds[i]);
    assert_int_equal(cairn(f, cmds[i], "--help"), 0);
    assert_non_null(strstr(f->out, want));
    assert_non_null(strstr(f->out, "examples:"));
    assert_int_equal(cairn(f, "help", cmds[i]), 0);
    assert_non_null(strstr(f->out, want));
    assert_int_equal(cairn(f, cmds[i], "-h"), 0);
  }
}

static void missing_file_exit_1(void **state) {
  struct fx *f = *state;
  assert_int_equal(cairn(f, "stat", "/nope"), 1);
  assert_string_equal(f->err, "cairn: stat /nope: no such file, directory or chunk\n");
  char *local = path_in(f, "never");
  assert_int_equal(cairn(f, "get", "/nope", local), 1);
  struct stat st;
  assert_int_equal(stat(local, &st), -1); /* a failed get leaves nothing behind */
  assert_int_equal(cairn(f, "put", local, "/x"), 1);
  assert_non_null(strstr(f->err, "cannot open"));
  assert_int_equal(cairn(f, "cat", "/nope"), 1);
  free(local);
}

static void unreachable_exit_3(void **state) {
  struct fx *f = *state;
  char *wrong = path_in(f, "wrong-secret");
  const char s[] = "0123456789abcdef0123456789abcdef\n";
  write_local(wrong, s, strlen(s));
  assert_int_equal(cairn(f, "--secret-file", wrong, "ls", "/"), 3);
  assert_non_null(strstr(f->err, "authentication failed"));
  assert_int_equal(cairn(f, "stat", "/", "--secret-file", wrong), 3);
  /* Nobody listens on port 1. */
  assert_int_equal(cairn(f, "--master", "127.0.0.1:1", "--timeout", "1s", "stat", "/"), 3);
  /* A secret file that cannot be read. */
  char *none = path_in(f, "no-such-secret");
  assert_int_equal(cairn(f, "--secret-file", none, "ls", "/"), 3);
  free(none);
  free(wrong);
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(put_get_round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(namespace_commands, setup, teardown),
                cmocka_unit_test_setup_teardown(append_twice, setup, teardown),
                cmocka_unit_test_setup_teardown(status_fsck_drain, setup, teardown),
                cmocka_unit_test_setup_teardown(usage_errors_exit_2, setup_offline, teardown),
                cmocka_unit_test_setup_teardown(help_for_every_command, setup_offline,
                                                teardown),
                cmocka_unit_test_setup_teardown(missing_file_exit_1, setup, teardown),
                cmocka_unit_test_setup_teardown(unreachable_exit_3, setup, teardown))
