/* Unit tests for common/daemon.c: directory lock, UUIDs, start-up table. */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void dir_lock_is_exclusive(void **state) {
  (void)state;
  char dir[] = "/tmp/cairn-daemon-XXXXXX";
  assert_non_null(mkdtemp(dir));
  int fd = cmn_daemon_lock_dir(dir);
  assert_true(fd >= 0);
  /* flock is per open file description: a second open in this process is
   * refused just as another process would be. */
  assert_int_equal(cmn_daemon_lock_dir(dir), CAIRN_EBUSY);
  pid_t pid = fork();
  if (pid == 0) _exit(cmn_daemon_lock_dir(dir) == CAIRN_EBUSY ? 0 : 1);
  int status;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  close(fd);
  fd = cmn_daemon_lock_dir(dir);
  assert_true(fd >= 0);
  close(fd);
  char *lock = cmn_sprintf("%s/LOCK", dir);
  unlink(lock);
  free(lock);
  rmdir(dir);
  assert_true(cmn_daemon_lock_dir("/nonexistent-dir-for-cairn-test") < 0);
}

static void uuids_are_v4_and_distinct(void **state) {
  (void)state;
  char a[37], b[37];
  assert_int_equal(cmn_uuid_v4(a), 0);
  assert_int_equal(cmn_uuid_v4(b), 0);
  assert_true(cmn_uuid_valid(a));
  assert_string_not_equal(a, b);
  assert_int_equal(a[14], '4');
  assert_true(strchr("89ab", a[19]) != NULL);
  assert_false(cmn_uuid_valid("not-a-uuid"));
  assert_false(cmn_uuid_valid("0123456789abcdef0123456789abcdef0123"));
  assert_false(cmn_uuid_valid("01234567-89ab-cdef-0123-456789abcdeg"));
  assert_true(cmn_uuid_valid("01234567-89AB-cdef-0123-456789abcdef"));
}

static char trace[16];
static size_t ntrace;
static int start_a(void *ctx) { (void)ctx; trace[ntrace++] = 'A'; return 0; }
static int start_b(void *ctx) { (void)ctx; trace[ntrace++] = 'B'; return 0; }
static int start_fail(void *ctx) { (void)ctx; trace[ntrace++] = 'F'; return CAIRN_EIO; }
static void stop_a(void *ctx) { (void)ctx; trace[ntrace++] = 'a'; }
static void stop_b(void *ctx) { (void)ctx; trace[ntrace++] = 'b'; }

static void start_table_unwinds_in_reverse(void **state) {
  (void)state;
  const cmn_daemon_module ok[] = {{"a", start_a, stop_a}, {"b", start_b, stop_b}};
  ntrace = 0;
  memset(trace, 0, sizeof trace);
  assert_int_equal(cmn_daemon_start_all(ok, 2, NULL), 0);
  cmn_daemon_stop_all(ok, 2, NULL);
  assert_string_equal(trace, "ABba");
  const cmn_daemon_module bad[] = {{"a", start_a, stop_a}, {"b", start_b, stop_b},
                                   {"f", start_fail, NULL}, {"never", start_a, stop_a}};
  ntrace = 0;
  memset(trace, 0, sizeof trace);
  assert_int_equal(cmn_daemon_start_all(bad, 4, NULL), CAIRN_EIO);
  assert_string_equal(trace, "ABFba");
}

CAIRN_TEST_MAIN(cmocka_unit_test(dir_lock_is_exclusive), cmocka_unit_test(uuids_are_v4_and_distinct),
                cmocka_unit_test(start_table_unwinds_in_reverse))
