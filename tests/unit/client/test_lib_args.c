/* Unit tests for options, environment and argument checks of libcairn
 * (client/lib_policy.c) and the refusals cairn_connect makes before any
 * network use. */
#include "test_main.h"

#include "lib_internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void options_init_sets_the_documented_defaults(void **state) {
  (void)state;
  cairn_options o;
  memset(&o, 0x5a, sizeof o);
  cairn_options_init(&o);
  assert_null(o.master);
  assert_null(o.secret_file);
  assert_int_equal(o.rpc_timeout_ms, 10000);
  assert_int_equal(o.op_timeout_ms, 60000);
  assert_int_equal(o.max_retries, 16);
  assert_int_equal(o.cache_ttl_ms, 30000);
  assert_int_equal(o.io_threads, 4);
  assert_null(o.local_host);
  assert_null(o.zone);
  cairn_options_init(NULL); /* no crash */
}

static void resolve_prefers_options_then_environment_then_defaults(void **state) {
  (void)state;
  cairn_options o;
  cairn_options_init(&o);
  cairn__opts r;
  /* no secret anywhere */
  assert_int_equal(cairn__opts_resolve(&o, NULL, NULL, &r), CAIRN_EINVAL);
  assert_int_equal(cairn__opts_resolve(&o, "10.1.1.1:9000", "", &r), CAIRN_EINVAL);
  /* environment */
  assert_int_equal(cairn__opts_resolve(&o, "10.1.1.1:9000", "/env/secret", &r), 0);
  assert_string_equal(r.master, "10.1.1.1:9000");
  assert_string_equal(r.secret_file, "/env/secret");
  assert_null(r.local_host);
  cairn__opts_free(&r);
  /* defaults */
  assert_int_equal(cairn__opts_resolve(&o, "", "/env/secret", &r), 0);
  assert_string_equal(r.master, "127.0.0.1:9000");
  cairn__opts_free(&r);
  /* options win */
  o.master = "[::1]:7000";
  o.secret_file = "/opt/secret";
  o.local_host = "pi-1";
  o.zone = "";
  assert_int_equal(cairn__opts_resolve(&o, "10.1.1.1:9000", "/env/secret", &r), 0);
  assert_string_equal(r.master, "[::1]:7000");
  assert_string_equal(r.secret_file, "/opt/secret");
  assert_string_equal(r.local_host, "pi-1");
  assert_null(r.zone); /* "" is no preference */
  assert_int_equal(r.io_threads, 4);
  cairn__opts_free(&r);
  assert_null(r.master); /* freed and cleared */
}

static void resolve_numbers_zero_is_default_negative_is_refused(void **state) {
  (void)state;
  cairn_options o;
  memset(&o, 0, sizeof o); /* not initialised: zeros take the defaults */
  o.secret_file = "/s";
  cairn__opts r;
  assert_int_equal(cairn__opts_resolve(&o, NULL, NULL, &r), 0);
  assert_int_equal(r.rpc_timeout_ms, 10000);
  assert_int_equal(r.op_timeout_ms, 60000);
  assert_int_equal(r.max_retries, 16);
  assert_int_equal(r.io_threads, 4);
  assert_int_equal(r.cache_ttl_ms, 0); /* 0 turns the cache off */
  cairn__opts_free(&r);
  cairn_options bad;
#define REFUSED(field, value)                                             \
  do {                                                                    \
    cairn_options_init(&bad);                                             \
    bad.secret_file = "/s";                                               \
    bad.field = (value);                                                  \
    assert_int_equal(cairn__opts_resolve(&bad, NULL, NULL, &r), CAIRN_EINVAL); \
  } while (0)
  REFUSED(rpc_timeout_ms, -1);
  REFUSED(op_timeout_ms, -5);
  REFUSED(max_retries, -1);
  REFUSED(max_retries, CAIRN__MAX_RETRIES_LIMIT + 1);
  REFUSED(cache_ttl_ms, -1);
  REFUSED(io_threads, -2);
  REFUSED(io_threads, CAIRN__MAX_IO_THREADS + 1);
  REFUSED(master, "no-port");
  REFUSED(master, "host:0");
  REFUSED(master, "host:65536");
  REFUSED(master, ":9000");
  REFUSED(master, "a b:9000");
#undef REFUSED
  assert_int_equal(cairn__opts_resolve(NULL, NULL, NULL, &r), CAIRN_EINVAL);
}

static void addresses(void **state) {
  (void)state;
  assert_int_equal(cairn__addr_check("127.0.0.1:9000"), 0);
  assert_int_equal(cairn__addr_check("pi-3.lan:1"), 0);
  assert_int_equal(cairn__addr_check("[fe80::1]:65535"), 0);
  assert_int_equal(cairn__addr_check("[]:80"), CAIRN_EINVAL);
  assert_int_equal(cairn__addr_check("::1:80"), CAIRN_EINVAL); /* v6 needs brackets */
  assert_int_equal(cairn__addr_check("host:"), CAIRN_EINVAL);
  assert_int_equal(cairn__addr_check("host:12a"), CAIRN_EINVAL);
  assert_int_equal(cairn__addr_check("host:123456"), CAIRN_EINVAL);
  assert_int_equal(cairn__addr_check(""), CAIRN_EINVAL);
  assert_int_equal(cairn__addr_check(NULL), CAIRN_EINVAL);
  char h[16];
  assert_int_equal(cairn__addr_host("[fe80::1]:80", h, sizeof h), 0);
  assert_string_equal(h, "fe80::1");
  assert_int_equal(cairn__addr_host("pi:80", h, sizeof h), 0);
  assert_string_equal(h, "pi");
  assert_int_equal(cairn__addr_host("a-very-long-host-name:80", h, sizeof h), CAIRN_EINVAL);
}

static void paths_follow_the_namespace_rules(void **state) {
  (void)state;
  assert_int_equal(cairn__path_check("/"), 0);
  assert_int_equal(cairn__path_check("/a"), 0);
  assert_int_equal(cairn__path_check("/a/b.c/..d"), 0);
  assert_int_equal(cairn__path_check("/dir/"), 0); /* one trailing slash names a directory */
  assert_int_equal(cairn__path_check(NULL), CAIRN_EINVAL);
  assert_int_equal(cairn__path_check(""), CAIRN_EBADPATH);
  assert_int_equal(cairn__path_check("relative"), CAIRN_EBADPATH);
  assert_int_equal(cairn__path_check("//"), CAIRN_EBADPATH);
  assert_int_equal(cairn__path_check("/a//b"), CAIRN_EBADPATH);
  assert_int_equal(cairn__path_check("/a/b//"), CAIRN_EBADPATH);
  assert_int_equal(cairn__path_check("/a/./b"), CAIRN_EBADPATH);
  assert_int_equal(cairn__path_check("/a/.."), CAIRN_EBADPATH);
  char name[300];
  memset(name, 'n', sizeof name);
  name[0] = '/';
  name[256] = '\0'; /* a 255-byte name is fine */
  assert_int_equal(cairn__path_check(name), 0);
  name[256] = 'n';
  name[257] = '\0';
  assert_int_equal(cairn__path_check(name), CAIRN_ENAMETOOLONG);
  /* the first offending component decides */
  char mixed[400];
  snprintf(mixed, sizeof mixed, "/a/../%s", name + 1);
  assert_int_equal(cairn__path_check(mixed), CAIRN_EBADPATH);
  char *big = malloc(5000);
  for (int i = 0; i < 4999; i++) big[i] = i % 10 == 0 ? '/' : 'x';
  big[4999] = '\0';
  assert_int_equal(cairn__path_check(big), CAIRN_ENAMETOOLONG);
  big[4096] = '\0'; /* exactly 4096 bytes, ending in a name */
  assert_int_equal(cairn__path_check(big), 0);
  free(big);
}

static void open_flags(void **state) {
  (void)state;
  assert_int_equal(cairn__open_flags_check(CAIRN_O_READ), 0);
  assert_int_equal(cairn__open_flags_check(CAIRN_O_WRITE | CAIRN_O_CREATE | CAIRN_O_EXCL), 0);
  assert_int_equal(cairn__open_flags_check(CAIRN_O_READ | CAIRN_O_FRESH), 0);
  assert_int_equal(cairn__open_flags_check(0), CAIRN_EINVAL);
  assert_int_equal(cairn__open_flags_check(CAIRN_O_CREATE), CAIRN_EINVAL);
  assert_int_equal(cairn__open_flags_check(CAIRN_O_READ | CAIRN_O_EXCL), CAIRN_EINVAL);
  assert_int_equal(cairn__open_flags_check(CAIRN_O_WRITE | CAIRN_O_PARENTS), CAIRN_EINVAL);
  assert_int_equal(cairn__open_flags_check(CAIRN_O_READ | 0x100u), CAIRN_EINVAL);
}

static void temp_names_sit_next_to_the_target(void **state) {
  (void)state;
  char out[CAIRN__PATH_MAX + 1];
  assert_int_equal(cairn__temp_path("/dir/file.iso", 0x0123456789abcdefull, out, sizeof out), 0);
  assert_int_equal(strncmp(out, "/dir/.file.iso.put-", 19), 0);
  assert_int_equal(strlen(out), 19 + 16);
  assert_int_equal(cairn__path_check(out), 0);
  assert_int_equal(cairn__temp_path("/top", 1, out, sizeof out), 0);
  assert_int_equal(strncmp(out, "/.top.put-", 10), 0);
  /* different random bits, different names */
  char other[CAIRN__PATH_MAX + 1];
  assert_int_equal(cairn__temp_path("/top", 2, other, sizeof other), 0);
  assert_string_not_equal(out, other);
  /* a 255-byte name still gives a valid component */
  char name[300];
  memset(name, 'n', sizeof name);
  name[0] = '/';
  name[256] = '\0';
  assert_int_equal(cairn__temp_path(name, 7, out, sizeof out), 0);
  assert_int_equal(cairn__path_check(out), 0);
  assert_int_equal(strlen(out), 256);
  assert_int_equal(cairn__temp_path("/", 1, out, sizeof out), CAIRN_EISDIR);
  assert_int_equal(cairn__temp_path("/dir/", 1, out, sizeof out), CAIRN_EISDIR);
  assert_int_equal(cairn__temp_path("rel", 1, out, sizeof out), CAIRN_EBADPATH);
  assert_int_equal(cairn__temp_path("/a", 1, out, 8), CAIRN_ENAMETOOLONG);
}

static void connect_refuses_bad_input(void **state) {
  (void)state;
  cairn_client *c = NULL;
  cairn_options o;
  cairn_options_init(&o);
  assert_int_equal(cairn_connect(NULL, &c), CAIRN_EINVAL);
  assert_int_equal(cairn_connect(&o, NULL), CAIRN_EINVAL);
  unsetenv("CAIRN_SECRET_FILE");
  unsetenv("CAIRN_MASTER");
  assert_int_equal(cairn_connect(&o, &c), CAIRN_EINVAL); /* no secret file */
  o.secret_file = "/nonexistent/cairn/secret";
  assert_int_equal(cairn_connect(&o, &c), CAIRN_ENOENT);
  const char *tmp = getenv("TMPDIR");
  char tdir[PATH_MAX];
  snprintf(tdir, sizeof tdir, "%s/cairn-libargs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(tdir));
  char secret[PATH_MAX + 16];
  snprintf(secret, sizeof secret, "%s/secret", tdir);
  FILE *f = fopen(secret, "w");
  fputs("short\n", f); /* under 16 characters */
  fclose(f);
  o.secret_file = secret;
  assert_int_equal(cairn_connect(&o, &c), CAIRN_ECONFIG);
  /* a good secret: the channel is lazy, so this succeeds without a master */
  f = fopen(secret, "w");
  fputs("0123456789abcdef0123456789abcdef\n", f);
  fclose(f);
  setenv("CAIRN_SECRET_FILE", secret, 1);
  o.secret_file = NULL;
  o.master = "127.0.0.1:1";
  assert_int_equal(cairn_connect(&o, &c), 0);
  assert_non_null(c);
  /* argument checks come before the network */
  assert_int_equal(cairn_mkdir(c, "rel", 0), CAIRN_EBADPATH);
  cairn_stat st;
  assert_int_equal(cairn_stat_path(c, "/a//b", &st), CAIRN_EBADPATH);
  assert_int_equal(cairn_rename(c, "/a", "/b/../c", 0), CAIRN_EBADPATH);
  assert_int_equal(cairn_set_goal(c, "/a", 0), CAIRN_EINVAL);
  assert_int_equal(cairn_set_goal(c, "/a", 10), CAIRN_EINVAL);
  assert_int_equal(cairn_drain(c, "", 0), CAIRN_EINVAL);
  cairn_file *fh;
  assert_int_equal(cairn_open(c, "/a", 0, &fh), CAIRN_EINVAL);
  assert_int_equal(cairn_open(c, "a", CAIRN_O_READ, &fh), CAIRN_EBADPATH);
  assert_int_equal(cairn_put_fd(c, 0, "/", 0, NULL, NULL, NULL), CAIRN_EISDIR);
  assert_int_equal(cairn_put_fd(c, -1, "/x", 0, NULL, NULL, NULL), CAIRN_EINVAL);
  cairn_disconnect(c);
  cairn_disconnect(NULL);
  unsetenv("CAIRN_SECRET_FILE");
  unlink(secret);
  rmdir(tdir);
}

CAIRN_TEST_MAIN(cmocka_unit_test(options_init_sets_the_documented_defaults),
                cmocka_unit_test(resolve_prefers_options_then_environment_then_defaults),
                cmocka_unit_test(resolve_numbers_zero_is_default_negative_is_refused),
                cmocka_unit_test(addresses), cmocka_unit_test(paths_follow_the_namespace_rules),
                cmocka_unit_test(open_flags), cmocka_unit_test(temp_names_sit_next_to_the_target),
                cmocka_unit_test(connect_refuses_bad_input))
