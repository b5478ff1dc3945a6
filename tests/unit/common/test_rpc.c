/*
 * RPC layer tests with a real server and client on 127.0.0.1: round trip,
 * dispatch table, error mapping, secret check, deadlines, limits,
 * concurrency, replies from other threads and orderly shutdown.
 */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_metrics.h"
#include "cmn_rpc.h"
#include "cmn_util.h"
#include "master.pb-c.h"
#include "test.pb-c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#define SECRET "test-secret-0123456789abcdef"
#define SERVER_MAX (1u << 20) /* 1 MiB receive limit on the server */

struct fixture {
  cmn_metrics *metrics;
  cmn_rpc_server *srv;
  cmn_rpc_channel *ch;
  char target[64];
  atomic_int handled;
  pthread_t later[64];
  atomic_int n_later;
  atomic_int answering; /* deferred answers about to be sent */
};

struct later_job {
  struct fixture *f;
  cmn_rpc_call *call;
  unsigned sleep_ms;
  char text[64];
};

static void *reply_later_main(void *arg) {
  struct later_job *j = arg;
  usleep(j->sleep_ms * 1000u);
  Cairn__V1__EchoReply r = CAIRN__V1__ECHO_REPLY__INIT;
  char text[80];
  snprintf(text, sizeof text, "later:%s", j->text);
  r.text = text;
  atomic_fetch_add(&j->f->answering, 1);
  cmn_rpc_reply(j->call, &r.base);
  free(j);
  return NULL;
}

static void echo(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  struct fixture *f = ctx;
  const Cairn__V1__EchoRequest *req = (const Cairn__V1__EchoRequest *)msg;
  atomic_fetch_add(&f->handled, 1);
  if (req->fail_with < 0) {
    cmn_rpc_fail(call, req->fail_with, "failing as asked: %s", req->text);
    return;
  }
  if (req->reply_later) {
    struct later_job *j = cmn_calloc(1, sizeof *j);
    j->f = f;
    j->call = call;
    j->sleep_ms = req->sleep_ms;
    snprintf(j->text, sizeof j->text, "%s", req->text);
    int i = atomic_fetch_add(&f->n_later, 1);
    assert_true(i < 64);
    assert_int_equal(pthread_create(&f->later[i], NULL, reply_later_main, j), 0);
    return;
  }
  if (req->sleep_ms) usleep(req->sleep_ms * 1000u);
  Cairn__V1__EchoReply r = CAIRN__V1__ECHO_REPLY__INIT;
  r.text = req->text;
  r.payload = req->payload;
  r.peer = (char *)cmn_rpc_call_peer(call);
  cmn_rpc_reply(call, &r.base);
}

static const cmn_rpc_method test_methods[] = {{"Echo", echo}};

static int setup(void **state) {
  struct fixture *f = cmn_calloc(1, sizeof *f);
  cmn_rpc_server_config cfg = {
      .addr = "127.0.0.1:0",
      .secret = SECRET,
      .workers = 2,
      .max_message = SERVER_MAX,
      .service = &cairn__v1__test__descriptor,
      .methods = test_methods,
      .n_methods = CMN_ARRAY_LEN(test_methods),
      .ctx = f,
  };
  if (cmn_metrics_create(&f->metrics) != 0) return -1;
  cfg.metrics = f->metrics;
  if (cmn_rpc_server_start(&cfg, &f->srv) != 0) return -1;
  snprintf(f->target, sizeof f->target, "127.0.0.1:%d", cmn_rpc_server_port(f->srv));
  cmn_rpc_client_config cc = {.secret = SECRET, .max_message = 8u << 20};
  if (cmn_rpc_channel_open(f->target, &cc, &f->ch) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  cmn_rpc_channel_close(f->ch);
  cmn_rpc_server_stop(f->srv);
  for (int i = 0; i < atomic_load(&f->n_later); i++) pthread_join(f->later[i], NULL);
  cmn_metrics_destroy(f->metrics);
  free(f);
  return 0;
}

static int call_echo(cmn_rpc_channel *ch, Cairn__V1__EchoRequest *req, Cairn__V1__EchoReply **out,
                     int64_t timeout_ms, cmn_rpc_status *st) {
  ProtobufCMessage *reply = NULL;
  int rc = cmn_rpc_call_unary(ch, &cairn__v1__test__descriptor, "Echo", &req->base, &reply,
                              timeout_ms, st);
  *out = (Cairn__V1__EchoReply *)reply;
  return rc;
}

static void round_trip(void **state) {
  struct fixture *f = *state;
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  uint8_t bytes[1000];
  for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(i * 7);
  req.text = "hello";
  req.payload.data = bytes;
  req.payload.len = sizeof bytes;
  Cairn__V1__EchoReply *r;
  cmn_rpc_status st;
  assert_int_equal(call_echo(f->ch, &req, &r, 5000, &st), 0);
  assert_string_equal(r->text, "hello");
  assert_int_equal(r->payload.len, sizeof bytes);
  assert_memory_equal(r->payload.data, bytes, sizeof bytes);
  assert_non_null(strstr(r->peer, "127.0.0.1"));
  protobuf_c_message_free_unpacked(&r->base, NULL);
  assert_int_equal(atomic_load(&f->handled), 1);
  /* The call is counted per method. */
  req.fail_with = CAIRN_ENOENT;
  assert_int_equal(call_echo(f->ch, &req, &r, 5000, &st), CAIRN_ENOENT);
  cmn_buf text = {0};
  assert_int_equal(cmn_metrics_render(f->metrics, &text), 0);
  assert_non_null(strstr(text.data, "cairn_rpc_calls_total{service=\"cairn.v1.Test\",method=\"Echo\",code=\"ok\"} 1"));
  assert_non_null(strstr(text.data, "cairn_rpc_calls_total{service=\"cairn.v1.Test\",method=\"Echo\",code=\"error\"} 1"));
  assert_non_null(strstr(text.data, "cairn_rpc_duration_seconds_count{service=\"cairn.v1.Test\",method=\"Echo\"} 2"));
  cmn_buf_free(&text);
}

static void unknown_method_is_unimplemented(void **state) {
  struct fixture *f = *state;
  /* A method of the service that has no handler in the table. */
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  ProtobufCMessage *reply = NULL;
  cmn_rpc_status st;
  int rc = cmn_rpc_call_unary(f->ch, &cairn__v1__test__descriptor, "Unregistered", &req.base,
                              &reply, 5000, &st);
  assert_int_equal(rc, CAIRN_EUNIMPL);
  assert_null(reply);
  /* A method of another service altogether. */
  Cairn__V1__PathRequest pr = CAIRN__V1__PATH_REQUEST__INIT;
  pr.path.data = (uint8_t *)"/x";
  pr.path.len = 2;
  rc = cmn_rpc_call_unary(f->ch, &cairn__v1__master__descriptor, "Stat", &pr.base, &reply, 5000,
                          &st);
  assert_int_equal(rc, CAIRN_EUNIMPL);
  assert_non_null(strstr(st.message, "/cairn.v1.Master/Stat"));
  assert_int_equal(atomic_load(&f->handled), 0);
  /* Names the client cannot even express are refused locally. */
  rc = cmn_rpc_call_unary(f->ch, &cairn__v1__test__descriptor, "Nope", &req.base, &reply, 5000, &st);
  assert_int_equal(rc, CAIRN_EINVAL);
  rc = cmn_rpc_call_unary(f->ch, &cairn__v1__test__descriptor, "Echo", &pr.base, &reply, 5000, &st);
  assert_int_equal(rc, CAIRN_EINVAL);
}

static void error_code_and_message_kept(void **state) {
  struct fixture *f = *state;
  /* ESTALE and ENOTDIR share gRPC FAILED_PRECONDITION: the exact code must
   * survive, and so must the message. */
  const int codes[] = {CAIRN_ESTALE, CAIRN_ENOTDIR, CAIRN_ENOENT, CAIRN_ENOQUORUM, CAIRN_ECHECKSUM};
  for (size_t i = 0; i < CMN_ARRAY_LEN(codes); i++) {
    Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
    req.text = "chunk 42";
    req.fail_with = codes[i];
    Cairn__V1__EchoReply *r;
    cmn_rpc_status st;
    assert_int_equal(call_echo(f->ch, &req, &r, 5000, &st), codes[i]);
    assert_null(r);
    assert_int_equal(st.code, codes[i]);
    assert_string_equal(st.message, "failing as asked: chunk 42");
  }
  /* A handler returning a code outside the list becomes EINTERNAL. */
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  req.text = "x";
  req.fail_with = -999;
  Cairn__V1__EchoReply *r;
  assert_int_equal(call_echo(f->ch, &req, &r, 5000, NULL), CAIRN_EINTERNAL);
}

static void deadline_exceeded(void **state) {
  struct fixture *f = *state;
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  req.text = "slow";
  req.sleep_ms = 600;
  req.reply_later = 1; /* do not hold a worker thread */
  Cairn__V1__EchoReply *r;
  cmn_rpc_status st;
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(call_echo(f->ch, &req, &r, 100, &st), CAIRN_ETIMEDOUT);
  assert_true(cmn_mono_ms() - t0 < 550);
  /* The channel keeps working afterwards. */
  req.sleep_ms = 0;
  req.reply_later = 0;
  req.text = "fast";
  assert_int_equal(call_echo(f->ch, &req, &r, 5000, &st), 0);
  assert_string_equal(r->text, "fast");
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void wrong_secret_refused(void **state) {
  struct fixture *f = *state;
  const char *bad[] = {"test-secret-0123456789abcdeX", "short", SECRET "-longer"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    cmn_rpc_client_config cc = {.secret = bad[i]};
    cmn_rpc_channel *ch;
    assert_int_equal(cmn_rpc_channel_open(f->target, &cc, &ch), 0);
    Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
    req.text = "intruder";
    Cairn__V1__EchoReply *r;
    cmn_rpc_status st;
    assert_int_equal(call_echo(ch, &req, &r, 5000, &st), CAIRN_EAUTH);
    cmn_rpc_channel_close(ch);
  }
  assert_int_equal(atomic_load(&f->handled), 0);
  assert_int_equal(cmn_rpc_server_auth_failures(f->srv), CMN_ARRAY_LEN(bad));
}

/*
 * A raw gRPC call that sends `body` as the message with optional
 * authorization metadata: for what the cairn client never sends (no secret,
 * bytes that are not protobuf). Returns the gRPC status.
 */
static grpc_status_code raw_call(const char *target, const char *auth, const void *body, size_t n) {
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  grpc_channel *ch = grpc_channel_create(target, creds, NULL);
  grpc_channel_credentials_release(creds);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  grpc_call *call = grpc_channel_create_call(
      ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, grpc_slice_from_static_string("/cairn.v1.Test/Echo"),
      NULL, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(5000, GPR_TIMESPAN)),
      NULL);
  grpc_metadata md;
  memset(&md, 0, sizeof md);
  md.key = grpc_slice_from_static_string("authorization");
  md.value = grpc_slice_from_copied_string(auth ? auth : "");
  grpc_slice s = grpc_slice_from_copied_buffer(body, n);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  grpc_byte_buffer *recv = NULL;
  grpc_metadata_array im, tm;
  grpc_metadata_array_init(&im);
  grpc_metadata_array_init(&tm);
  grpc_status_code status;
  grpc_slice details;
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = auth ? 1 : 0;
  ops[0].data.send_initial_metadata.metadata = &md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = bb;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &im;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &tm;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;
  assert_int_equal(grpc_call_start_batch(call, ops, 6, call, NULL), GRPC_CALL_OK);
  grpc_event ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  assert_int_equal(ev.type, GRPC_OP_COMPLETE);
  grpc_byte_buffer_destroy(bb);
  if (recv) grpc_byte_buffer_destroy(recv);
  grpc_metadata_array_destroy(&im);
  grpc_metadata_array_destroy(&tm);
  grpc_slice_unref(details);
  grpc_slice_unref(md.value);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  grpc_completion_queue_destroy(cq);
  grpc_channel_destroy(ch);
  return status;
}

static void missing_secret_refused(void **state) {
  struct fixture *f = *state;
  grpc_init();
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  req.text = "anonymous";
  uint8_t buf[64];
  size_t n = protobuf_c_message_pack(&req.base, buf);
  assert_int_equal(raw_call(f->target, NULL, buf, n), GRPC_STATUS_UNAUTHENTICATED);
  assert_int_equal(raw_call(f->target, SECRET, buf, n), GRPC_STATUS_UNAUTHENTICATED); /* no "Bearer " */
  assert_int_equal(raw_call(f->target, "Bearer ", buf, n), GRPC_STATUS_UNAUTHENTICATED);
  assert_int_equal(raw_call(f->target, "Bearer " SECRET, buf, n), GRPC_STATUS_OK);
  assert_int_equal(atomic_load(&f->handled), 1);
  grpc_shutdown();
}

static void garbage_message_refused(void **state) {
  struct fixture *f = *state;
  grpc_init();
  /* Field 1 as a length-delimited string claiming 100 bytes, then 2 bytes. */
  const uint8_t junk[] = {0x0a, 0x64, 'h', 'i'};
  assert_int_equal(raw_call(f->target, "Bearer " SECRET, junk, sizeof junk),
                   GRPC_STATUS_INVALID_ARGUMENT);
  assert_int_equal(atomic_load(&f->handled), 0);
  grpc_shutdown();
}

static void oversized_message_refused(void **state) {
  struct fixture *f = *state;
  size_t big = 2u << 20; /* over the server's 1 MiB limit, under the client's 8 MiB */
  uint8_t *bytes = cmn_calloc(1, big);
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  req.text = "big";
  req.payload.data = bytes;
  req.payload.len = big;
  Cairn__V1__EchoReply *r;
  cmn_rpc_status st;
  assert_int_equal(call_echo(f->ch, &req, &r, 5000, &st), CAIRN_ETOOBIG);
  assert_int_equal(atomic_load(&f->handled), 0);
  /* Over the client's own limit: refused before it leaves. */
  cmn_rpc_client_config cc = {.secret = SECRET, .max_message = 64u << 10};
  cmn_rpc_channel *small;
  assert_int_equal(cmn_rpc_channel_open(f->target, &cc, &small), 0);
  req.payload.len = 100u << 10;
  assert_int_equal(call_echo(small, &req, &r, 5000, &st), CAIRN_ETOOBIG);
  cmn_rpc_channel_close(small);
  /* Just under the server limit goes through, and the channel still works. */
  req.payload.len = SERVER_MAX - 1024;
  assert_int_equal(call_echo(f->ch, &req, &r, 5000, &st), 0);
  assert_int_equal(r->payload.len, SERVER_MAX - 1024);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  free(bytes);
}

static void reply_from_another_thread(void **state) {
  struct fixture *f = *state;
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  req.text = "deferred";
  req.reply_later = 1;
  req.sleep_ms = 20;
  Cairn__V1__EchoReply *r;
  assert_int_equal(call_echo(f->ch, &req, &r, 5000, NULL), 0);
  assert_string_equal(r->text, "later:deferred");
  protobuf_c_message_free_unpacked(&r->base, NULL);
}

struct conc_arg {
  struct fixture *f;
  int id;
  int ok;
};

static void *conc_main(void *arg) {
  struct conc_arg *a = arg;
  for (int i = 0; i < 50; i++) {
    char text[32];
    snprintf(text, sizeof text, "t%d-%d", a->id, i);
    Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
    req.text = text;
    req.reply_later = (i % 10 == 0) && a->id < 4; /* some deferred replies too */
    Cairn__V1__EchoReply *r;
    if (call_echo(a->f->ch, &req, &r, 10000, NULL) != 0) continue;
    if (strstr(r->text, text)) a->ok++;
    protobuf_c_message_free_unpacked(&r->base, NULL);
  }
  return NULL;
}

static void sixteen_concurrent_callers(void **state) {
  struct fixture *f = *state;
  pthread_t th[16];
  struct conc_arg args[16];
  for (int i = 0; i < 16; i++) {
    args[i] = (struct conc_arg){f, i, 0};
    assert_int_equal(pthread_create(&th[i], NULL, conc_main, &args[i]), 0);
  }
  int total = 0;
  for (int i = 0; i < 16; i++) {
    pthread_join(th[i], NULL);
    total += args[i].ok;
  }
  assert_int_equal(total, 16 * 50);
  assert_int_equal(atomic_load(&f->handled), 16 * 50);
}

/* Stopping while a handler still holds a call waits for its answer and
 * frees everything (LeakSanitizer checks the latter in the sanitizer build). */
struct held_call {
  struct fixture *f;
  int rc;
};

static void *held_call_main(void *arg) {
  struct held_call *h = arg;
  Cairn__V1__EchoRequest req = CAIRN__V1__ECHO_REQUEST__INIT;
  req.text = "in-flight";
  req.reply_later = 1;
  req.sleep_ms = 300;
  Cairn__V1__EchoReply *r;
  h->rc = call_echo(h->f->ch, &req, &r, 10000, NULL);
  if (h->rc == 0) protobuf_c_message_free_unpacked(&r->base, NULL);
  return NULL;
}

static void shutdown_with_call_in_flight(void **state) {
  struct fixture *f = *state;
  struct held_call h = {f, 1};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, held_call_main, &h), 0);
  for (int i = 0; i < 5000 && atomic_load(&f->n_later) == 0; i++) usleep(1000);
  assert_int_equal(atomic_load(&f->n_later), 1);
  cmn_rpc_server_stop(f->srv); /* must wait for the deferred answer */
  f->srv = NULL;
  assert_int_equal(atomic_load(&f->answering), 1);
  pthread_join(th, NULL);
  /* The client saw its call cancelled by the shutdown: a retryable error. */
  assert_true(h.rc < 0);
  assert_true(cairn_err_retryable(h.rc));
}

static void dispatch_table_must_match_service(void **state) {
  (void)state;
  const cmn_rpc_method bad[] = {{"Ech0", echo}};
  cmn_rpc_server_config cfg = {
      .addr = "127.0.0.1:0",
      .secret = SECRET,
      .workers = 1,
      .service = &cairn__v1__test__descriptor,
      .methods = bad,
      .n_methods = 1,
  };
  cmn_rpc_server *srv = NULL;
  assert_int_equal(cmn_rpc_server_start(&cfg, &srv), CAIRN_EINVAL);
  assert_null(srv);
  cfg.methods = test_methods;
  cfg.workers = 0;
  assert_int_equal(cmn_rpc_server_start(&cfg, &srv), CAIRN_EINVAL);
  cfg.workers = 1;
  cfg.addr = "256.0.0.1:99999";
  assert_int_equal(cmn_rpc_server_start(&cfg, &srv), CAIRN_EUNAVAIL);
}

static void secret_file_rules(void **state) {
  (void)state;
  char dir[] = "/tmp/cairn-rpc-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *path = cmn_sprintf("%s/secret", dir);
  char *s = NULL;
  assert_int_equal(cmn_rpc_load_secret(path, &s), CAIRN_ENOENT);
  const char *good = "  0123456789abcdef0123  \nsecond line ignored\n";
  assert_int_equal(cmn_write_file_atomic(path, good, strlen(good), 0600), 0);
  assert_int_equal(cmn_rpc_load_secret(path, &s), 0);
  assert_string_equal(s, "0123456789abcdef0123");
  free(s);
  const char *bad[] = {"short\n", "", "has a space inside it 123\n"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++) {
    assert_int_equal(cmn_write_file_atomic(path, bad[i], strlen(bad[i]), 0600), 0);
    assert_int_equal(cmn_rpc_load_secret(path, &s), CAIRN_ECONFIG);
  }
  unlink(path);
  rmdir(dir);
  free(path);
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(round_trip, setup, teardown),
                cmocka_unit_test_setup_teardown(unknown_method_is_unimplemented, setup, teardown),
                cmocka_unit_test_setup_teardown(error_code_and_message_kept, setup, teardown),
                cmocka_unit_test_setup_teardown(deadline_exceeded, setup, teardown),
                cmocka_unit_test_setup_teardown(wrong_secret_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(missing_secret_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(garbage_message_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(oversized_message_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(reply_from_another_thread, setup, teardown),
                cmocka_unit_test_setup_teardown(sixteen_concurrent_callers, setup, teardown),
                cmocka_unit_test_setup_teardown(shutdown_with_call_in_flight, setup, teardown),
                cmocka_unit_test(dispatch_table_must_match_service),
                cmocka_unit_test(secret_file_rules))
