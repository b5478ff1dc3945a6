/* Unit tests for parallel pieces (client/lib_xfer.c) and the data-plane
 * pool's memory of unreachable servers (client/lib_dp.c). */
#include "test_main.h"

#include "cmn_util.h"
#include "lib_internal.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- independent tasks ---- */

typedef struct tasks {
  atomic_int runs[64];
  int fail_at; /* -1: none */
} tasks;

static int task(void *arg, size_t i) {
  tasks *t = arg;
  atomic_fetch_add(&t->runs[i], 1);
  usleep((useconds_t)(i % 5) * 200);
  return (int)i == t->fail_at ? CAIRN_EIO : 0;
}

static void every_task_runs_once(void **state) {
  (void)state;
  for (int threads = 0; threads <= 8; threads += 4) {
    tasks t = {.fail_at = -1};
    assert_int_equal(cairn__run_parallel(threads, 64, task, &t), 0);
    for (int i = 0; i < 64; i++) assert_int_equal(atomic_load(&t.runs[i]), 1);
  }
  tasks none = {.fail_at = -1};
  assert_int_equal(cairn__run_parallel(4, 0, task, &none), 0);
}

static void first_failure_stops_new_tasks(void **state) {
  (void)state;
  tasks t = {.fail_at = 3};
  assert_int_equal(cairn__run_parallel(1, 64, task, &t), CAIRN_EIO);
  for (int i = 4; i < 64; i++) assert_int_equal(atomic_load(&t.runs[i]), 0);
  tasks u = {.fail_at = 3};
  assert_int_equal(cairn__run_parallel(4, 64, task, &u), CAIRN_EIO);
  int ran = 0;
  for (int i = 0; i < 64; i++) ran += atomic_load(&u.runs[i]);
  assert_true(ran < 64); /* the rest never started */
}

/* ---- ordered ring ---- */

typedef struct ring_test {
  uint64_t pieces;      /* fill gives this many */
  int fail_fill_at;     /* -1: none */
  int fail_work_at;
  uint64_t drained;     /* next index drain expects */
  bool out_of_order;
  atomic_int in_work, max_in_work;
  int ticks;
  int slow_ms;          /* every piece takes at least this long */
} ring_test;

static int r_fill(void *arg, cairn__slot *s) {
  ring_test *t = arg;
  if ((int)s->index == t->fail_fill_at) return CAIRN_EIO;
  if (s->index >= t->pieces) return 0;
  s->offset = s->index * s->cap;
  s->len = s->cap;
  memset(s->buf, (int)(s->index & 0xff), s->cap);
  return 1;
}

static int r_work(void *arg, cairn__slot *s) {
  ring_test *t = arg;
  int now = atomic_fetch_add(&t->in_work, 1) + 1;
  int max = atomic_load(&t->max_in_work);
  while (now > max && !atomic_compare_exchange_weak(&t->max_in_work, &max, now)) {
  }
  /* later pieces finish first now and then */
  usleep((useconds_t)((s->index * 7919) % 4) * 3000 + (useconds_t)t->slow_ms * 1000);
  for (size_t i = 0; i < s->len; i++) s->buf[i] ^= 0x5a;
  atomic_fetch_sub(&t->in_work, 1);
  return (int)s->index == t->fail_work_at ? CAIRN_ECHECKSUM : 0;
}

static int r_drain(void *arg, cairn__slot *s) {
  ring_test *t = arg;
  if (s->index != t->drained || s->buf[0] != (uint8_t)((s->index & 0xff) ^ 0x5a))
    t->out_of_order = true;
  t->drained++;
  return 0;
}

static void r_tick(void *arg) { ((ring_test *)arg)->ticks++; }

static void ring_drains_in_order_with_pieces_in_parallel(void **state) {
  (void)state;
  ring_test t = {.pieces = 40, .fail_fill_at = -1, .fail_work_at = -1};
  cairn__ring_ops ops = {r_fill, r_work, r_drain, r_tick};
  assert_int_equal(cairn__ring_run(4, 1024, &ops, &t), 0);
  assert_int_equal(t.drained, 40);
  assert_false(t.out_of_order);
  assert_true(atomic_load(&t.max_in_work) > 1);
  assert_true(atomic_load(&t.max_in_work) <= 4);
  /* nothing at all */
  ring_test e = {.pieces = 0, .fail_fill_at = -1, .fail_work_at = -1};
  assert_int_equal(cairn__ring_run(3, 16, &ops, &e), 0);
  assert_int_equal(e.drained, 0);
}

static void ring_stops_at_the_first_failure(void **state) {
  (void)state;
  cairn__ring_ops ops = {r_fill, r_work, r_drain, NULL};
  ring_test w = {.pieces = 40, .fail_fill_at = -1, .fail_work_at = 9};
  assert_int_equal(cairn__ring_run(4, 64, &ops, &w), CAIRN_ECHECKSUM);
  assert_true(w.drained <= 9); /* nothing after the failed piece is drained */
  assert_false(w.out_of_order);
  ring_test f = {.pieces = 40, .fail_fill_at = 5, .fail_work_at = -1};
  assert_int_equal(cairn__ring_run(2, 64, &ops, &f), CAIRN_EIO);
  assert_true(f.drained <= 5);
}

static void ring_ticks_while_waiting(void **state) {
  (void)state;
  ring_test t = {.pieces = 2, .fail_fill_at = -1, .fail_work_at = -1, .slow_ms = 250};
  cairn__ring_ops ops = {r_fill, r_work, r_drain, r_tick};
  /* pieces of 250 ms, ticks every CAIRN__TICK_MS while the caller waits */
  assert_int_equal(cairn__ring_run(1, 8, &ops, &t), 0);
  assert_int_equal(t.drained, 2);
  assert_true(t.ticks >= 2);
  assert_false(t.out_of_order);
}

/* ---- unreachable servers ---- */

/* A loopback port nothing listens on (bound, then closed). */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

static void refused_servers_become_suspect(void **state) {
  (void)state;
  const char *tmp = getenv("TMPDIR");
  char dir[PATH_MAX], secret[PATH_MAX + 16];
  snprintf(dir, sizeof dir, "%s/cairn-libxfer-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  assert_non_null(mkdtemp(dir));
  snprintf(secret, sizeof secret, "%s/secret", dir);
  assert_int_equal(cmn_write_file_atomic(secret, "0123456789abcdef0123456789abcdef\n", 33, 0600),
                   0);
  cairn_options o;
  cairn_options_init(&o);
  o.master = "127.0.0.1:1";
  o.secret_file = secret;
  o.rpc_timeout_ms = 2000;
  cairn_client *c = NULL;
  assert_int_equal(cairn_connect(&o, &c), 0);
  char addr[64], other[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", dead_port());
  snprintf(other, sizeof other, "127.0.0.1:%d", dead_port());
  assert_false(cairn__dp_suspect(c, addr));
  cairn__replica r = {"some-id", addr, addr, "z"};
  uint8_t buf[16];
  assert_int_equal(cairn__dp_read(c, &r, 5, 2, 0, sizeof buf, buf), CAIRN_EUNAVAIL);
  assert_true(cairn__dp_suspect(c, addr));
  assert_false(cairn__dp_suspect(c, other));
  uint8_t id[16] = {1};
  cairn__replica r2 = {"x", other, other, "z"};
  assert_int_equal(cairn__dp_push(c, &r2, NULL, 0, id, buf, sizeof buf, NULL), CAIRN_EUNAVAIL);
  assert_true(cairn__dp_suspect(c, other));
  cairn_disconnect(c);
  unlink(secret);
  rmdir(dir);
}

CAIRN_TEST_MAIN(cmocka_unit_test(every_task_runs_once),
                cmocka_unit_test(first_failure_stops_new_tasks),
                cmocka_unit_test(ring_drains_in_order_with_pieces_in_parallel),
                cmocka_unit_test(ring_stops_at_the_first_failure),
                cmocka_unit_test(ring_ticks_while_waiting),
                cmocka_unit_test(refused_servers_become_suspect))
