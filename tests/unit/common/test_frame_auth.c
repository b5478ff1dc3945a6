/* Unit tests for the data-plane handshake (common/frame_auth.c): the MACs
 * against a direct HMAC computation, both state machines talking through
 * real parsers, wrong secrets on either side, replays and stray frames. */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_frame.h"

#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SECRET "0123456789abcdef-cluster-secret"
#define OTHER "0123456789abcdef-another-secret"

/* Bytes in flight between the two sides: one encoded frame. */
typedef struct wire {
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  size_t len;
} wire;

/* Parse the one frame on the wire with the receiver's parser. The event
 * points into w->buf, valid while the wire is untouched. */
static cmn_frame receive(cmn_frame_parser *p, const wire *w) {
  assert_true(w->len > 0);
  cmn_frame f;
  size_t used = 0;
  assert_int_equal(cmn_frame_feed(p, w->buf, w->len, &used, &f), 1);
  assert_int_equal(used, w->len);
  return f;
}

typedef struct side {
  cmn_frame_hs hs;
  cmn_frame_parser *p;
} side;

static void side_init(side *s) {
  memset(s, 0, sizeof *s);
  assert_int_equal(cmn_frame_parser_new(0, &s->p), 0);
}

/* Server says HELLO; client takes it and answers AUTH (into *auth). */
static void open_session(side *srv, side *cli, const char *srv_secret, const char *cli_secret,
                         const char *expect, wire *auth) {
  side_init(srv);
  side_init(cli);
  wire hello;
  int n = cmn_frame_hs_server_start(&srv->hs, srv_secret, "cs-7f3a", hello.buf, sizeof hello.buf);
  assert_true(n > 0);
  hello.len = (size_t)n;
  assert_int_equal(srv->hs.state, CMN_FRAME_HS_EXPECT_AUTH);
  assert_int_equal(cmn_frame_hs_client_start(&cli->hs, cli_secret, expect), 0);
  assert_int_equal(cli->hs.state, CMN_FRAME_HS_EXPECT_HELLO);
  cmn_frame f = receive(cli->p, &hello);
  assert_int_equal(cmn_frame_hs_on_frame(&cli->hs, &f, auth->buf, sizeof auth->buf, &auth->len), 0);
  assert_true(auth->len > 0);
  assert_int_equal(cli->hs.state, CMN_FRAME_HS_EXPECT_AUTH_OK);
  assert_string_equal(cli->hs.server_id, "cs-7f3a");
}

static void side_free(side *s) { cmn_frame_parser_free(s->p); }

/* The MACs are exactly the documented HMAC-SHA256 constructions. */
static void macs_match_reference(void **state) {
  (void)state;
  uint8_t sn[CMN_FRAME_NONCE_SIZE], cn[CMN_FRAME_NONCE_SIZE];
  for (int i = 0; i < CMN_FRAME_NONCE_SIZE; i++) {
    sn[i] = (uint8_t)(i + 1);
    cn[i] = (uint8_t)(200 - i);
  }
  uint8_t msg[77], want[32], got[32];
  unsigned int wl = 0;
  memcpy(msg, sn, 32);
  memcpy(msg + 32, "cairn-data-v1", 13);
  memcpy(msg + 45, cn, 32);
  assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), msg, sizeof msg, want, &wl));
  assert_int_equal(cmn_frame_auth_compute(SECRET, sn, cn, got), 0);
  assert_memory_equal(got, want, 32);
  assert_int_equal(cmn_frame_auth_verify(SECRET, sn, cn, got), 0);
  got[31] ^= 1;
  assert_int_equal(cmn_frame_auth_verify(SECRET, sn, cn, got), CAIRN_EAUTH);
  assert_int_equal(cmn_frame_auth_verify(OTHER, sn, cn, want), CAIRN_EAUTH);

  memcpy(msg, cn, 32);
  memcpy(msg + 32, "cairn-data-ok", 13);
  memcpy(msg + 45, sn, 32);
  assert_non_null(HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), msg, sizeof msg, want, &wl));
  assert_int_equal(cmn_frame_auth_ok_compute(SECRET, sn, cn, got), 0);
  assert_memory_equal(got, want, 32);
  assert_int_equal(cmn_frame_auth_ok_verify(SECRET, sn, cn, got), 0);

  /* The two MACs differ even when the nonces are swapped (no reflection). */
  uint8_t a[32];
  assert_int_equal(cmn_frame_auth_compute(SECRET, cn, sn, a), 0);
  assert_memory_not_equal(a, got, 32);
  assert_int_equal(cmn_frame_auth_ok_verify(SECRET, sn, cn, a), CAIRN_EAUTH);

  assert_int_equal(cmn_frame_auth_compute("", sn, cn, got), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_auth_compute(NULL, sn, cn, got), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_auth_verify(SECRET, sn, cn, NULL), CAIRN_EINVAL);
}

/* Right secret: both sides end DONE, agreeing on nonces and server id. */
static void right_secret_works_both_ways(void **state) {
  (void)state;
  const char *expects[] = {NULL, "", "cs-7f3a"};
  for (size_t i = 0; i < sizeof expects / sizeof expects[0]; i++) {
    side srv, cli;
    wire auth, ok;
    open_session(&srv, &cli, SECRET, SECRET, expects[i], &auth);
    cmn_frame f = receive(srv.p, &auth);
    assert_int_equal(cmn_frame_hs_on_frame(&srv.hs, &f, ok.buf, sizeof ok.buf, &ok.len), 1);
    assert_int_equal(srv.hs.state, CMN_FRAME_HS_DONE);
    f = receive(cli.p, &ok);
    assert_int_equal(f.type, CMN_FRAME_AUTH_OK);
    wire none;
    assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &f, none.buf, sizeof none.buf, &none.len), 1);
    assert_int_equal(none.len, 0);
    assert_int_equal(cli.hs.state, CMN_FRAME_HS_DONE);
    assert_memory_equal(cli.hs.server_nonce, srv.hs.server_nonce, CMN_FRAME_NONCE_SIZE);
    assert_memory_equal(cli.hs.client_nonce, srv.hs.client_nonce, CMN_FRAME_NONCE_SIZE);
    /* After DONE, frames belong to the data protocol. */
    assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &f, none.buf, sizeof none.buf, &none.len),
                     CAIRN_EPROTO);
    assert_int_equal(cli.hs.state, CMN_FRAME_HS_DONE);
    side_free(&srv);
    side_free(&cli);
  }
}

/* A client with the wrong secret is refused by the server, which explains
 * why in an ERROR; the client reports the server's code. */
static void wrong_secret_refused_by_server(void **state) {
  (void)state;
  side srv, cli;
  wire auth, reply;
  open_session(&srv, &cli, SECRET, OTHER, NULL, &auth);
  cmn_frame f = receive(srv.p, &auth);
  assert_int_equal(cmn_frame_hs_on_frame(&srv.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EAUTH);
  assert_int_equal(srv.hs.state, CMN_FRAME_HS_FAILED);
  assert_true(reply.len > 0);
  /* Failed for good, and nothing more to send. */
  wire again;
  assert_int_equal(cmn_frame_hs_on_frame(&srv.hs, &f, again.buf, sizeof again.buf, &again.len),
                   CAIRN_EAUTH);
  assert_int_equal(again.len, 0);

  cmn_frame e = receive(cli.p, &reply);
  assert_int_equal(e.type, CMN_FRAME_ERROR);
  cmn_frame_error err;
  assert_int_equal(cmn_frame_decode_error(e.payload, e.len, &err, NULL, 0), 0);
  assert_int_equal(err.code, CAIRN_EAUTH);
  assert_non_null(strstr(err.message, "wrong cluster secret"));
  wire none;
  assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &e, none.buf, sizeof none.buf, &none.len),
                   CAIRN_EAUTH);
  assert_int_equal(none.len, 0);
  assert_int_equal(cli.hs.state, CMN_FRAME_HS_FAILED);
  assert_non_null(strstr(cli.hs.errmsg, "wrong cluster secret"));
  side_free(&srv);
  side_free(&cli);
}

/* An impostor server without the secret cannot produce an AUTH_OK the
 * client accepts: not with another secret, not by reflecting the client's
 * own AUTH MAC, not with random bytes. */
static void wrong_secret_refused_by_client(void **state) {
  (void)state;
  for (int attempt = 0; attempt < 3; attempt++) {
    side srv, cli;
    wire auth, ok;
    open_session(&srv, &cli, OTHER, SECRET, NULL, &auth);
    cmn_frame f = receive(srv.p, &auth);
    cmn_frame_auth a;
    assert_int_equal(cmn_frame_decode_auth(f.payload, f.len, &a, NULL, 0), 0);
    cmn_frame_auth_ok forged;
    if (attempt == 0)
      assert_int_equal(
          cmn_frame_auth_ok_compute(OTHER, srv.hs.server_nonce, a.client_nonce, forged.mac), 0);
    else if (attempt == 1)
      memcpy(forged.mac, a.mac, sizeof forged.mac);
    else
      memset(forged.mac, 0x5c, sizeof forged.mac);
    int n = cmn_frame_encode_auth_ok(&forged, ok.buf, sizeof ok.buf);
    assert_true(n > 0);
    ok.len = (size_t)n;
    f = receive(cli.p, &ok);
    wire none;
    assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &f, none.buf, sizeof none.buf, &none.len),
                     CAIRN_EAUTH);
    assert_int_equal(cli.hs.state, CMN_FRAME_HS_FAILED);
    assert_non_null(strstr(cli.hs.errmsg, "did not prove"));
    side_free(&srv);
    side_free(&cli);
  }
}

/* MACs are bound to both nonces: an AUTH recorded on one connection, or
 * one whose client nonce was swapped, fails; so does an old AUTH_OK. */
static void replayed_auth_refused(void **state) {
  (void)state;
  side srv1, cli1;
  wire auth1, ok1;
  open_session(&srv1, &cli1, SECRET, SECRET, NULL, &auth1);
  cmn_frame f = receive(srv1.p, &auth1);
  assert_int_equal(cmn_frame_hs_on_frame(&srv1.hs, &f, ok1.buf, sizeof ok1.buf, &ok1.len), 1);

  /* Replay of connection 1's AUTH on connection 2 (new server nonce). */
  side srv2, cli2;
  wire auth2, reply;
  open_session(&srv2, &cli2, SECRET, SECRET, NULL, &auth2);
  assert_memory_not_equal(srv1.hs.server_nonce, srv2.hs.server_nonce, CMN_FRAME_NONCE_SIZE);
  f = receive(srv2.p, &auth1);
  assert_int_equal(cmn_frame_hs_on_frame(&srv2.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EAUTH);
  assert_true(reply.len > 0);

  /* Connection 3: the genuine MAC with a different client nonce. */
  side srv3, cli3;
  wire auth3;
  open_session(&srv3, &cli3, SECRET, SECRET, NULL, &auth3);
  cmn_frame_auth a;
  f = receive(srv3.p, &auth3);
  assert_int_equal(cmn_frame_decode_auth(f.payload, f.len, &a, NULL, 0), 0);
  a.client_nonce[0] ^= 0x01;
  wire tampered;
  int n = cmn_frame_encode_auth(&a, tampered.buf, sizeof tampered.buf);
  assert_true(n > 0);
  tampered.len = (size_t)n;
  f = receive(srv3.p, &tampered);
  assert_int_equal(cmn_frame_hs_on_frame(&srv3.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EAUTH);

  /* Connection 1's AUTH_OK shown to connection 2's client. */
  f = receive(cli2.p, &ok1);
  wire none;
  assert_int_equal(cmn_frame_hs_on_frame(&cli2.hs, &f, none.buf, sizeof none.buf, &none.len),
                   CAIRN_EAUTH);
  side_free(&srv1);
  side_free(&cli1);
  side_free(&srv2);
  side_free(&cli2);
  side_free(&srv3);
  side_free(&cli3);
}

/* Frames out of order, from the wrong server, malformed or streamed are
 * refused; an ERROR from the server hands its code to the client. */
static void unexpected_frames_refused(void **state) {
  (void)state;
  side srv, cli;
  wire w, reply;

  /* Server expecting AUTH gets a PING: EPROTO and an ERROR saying so. */
  side_init(&srv);
  int n = cmn_frame_hs_server_start(&srv.hs, SECRET, "cs-1", w.buf, sizeof w.buf);
  assert_true(n > 0);
  cmn_frame_ping ping = {1};
  w.len = (size_t)cmn_frame_encode_ping(&ping, w.buf, sizeof w.buf);
  cmn_frame f = receive(srv.p, &w);
  assert_int_equal(cmn_frame_hs_on_frame(&srv.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EPROTO);
  cmn_frame_parser *p = NULL;
  assert_int_equal(cmn_frame_parser_new(0, &p), 0);
  cmn_frame e = receive(p, &reply);
  cmn_frame_error err;
  assert_int_equal(cmn_frame_decode_error(e.payload, e.len, &err, NULL, 0), 0);
  assert_int_equal(err.code, CAIRN_EPROTO);
  assert_string_equal(err.message, "expected AUTH, got PING");
  cmn_frame_parser_free(p);
  side_free(&srv);

  /* Server gets an AUTH with an all-zero client nonce: malformed. */
  side_init(&srv);
  assert_true(cmn_frame_hs_server_start(&srv.hs, SECRET, "cs-1", w.buf, sizeof w.buf) > 0);
  uint8_t raw[64] = {0};
  f = (cmn_frame){.type = CMN_FRAME_AUTH, .payload = raw, .len = 64, .frame_len = 64, .end = true};
  assert_int_equal(cmn_frame_hs_on_frame(&srv.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EPROTO);
  assert_non_null(strstr(srv.hs.errmsg, "malformed AUTH"));
  side_free(&srv);

  /* Client gets AUTH_OK before any HELLO: EPROTO, nothing to send. */
  side_init(&cli);
  assert_int_equal(cmn_frame_hs_client_start(&cli.hs, SECRET, NULL), 0);
  cmn_frame_auth_ok ok;
  memset(ok.mac, 1, sizeof ok.mac);
  w.len = (size_t)cmn_frame_encode_auth_ok(&ok, w.buf, sizeof w.buf);
  f = receive(cli.p, &w);
  assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EPROTO);
  assert_int_equal(reply.len, 0);
  side_free(&cli);

  /* Client connected to the wrong server. */
  side_init(&srv);
  side_init(&cli);
  w.len = (size_t)cmn_frame_hs_server_start(&srv.hs, SECRET, "cs-2", w.buf, sizeof w.buf);
  assert_int_equal(cmn_frame_hs_client_start(&cli.hs, SECRET, "cs-1"), 0);
  f = receive(cli.p, &w);
  assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EAUTH);
  assert_non_null(strstr(cli.hs.errmsg, "expected cs-1"));
  side_free(&srv);
  side_free(&cli);

  /* A data piece during the handshake. */
  side_init(&cli);
  assert_int_equal(cmn_frame_hs_client_start(&cli.hs, SECRET, NULL), 0);
  uint8_t byte = 7;
  f = (cmn_frame){.type = CMN_FRAME_READ_DATA, .payload = &byte, .len = 1, .frame_len = 2};
  assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_EPROTO);
  side_free(&cli);

  /* The server refuses with ENOSPC: the client reports ENOSPC. */
  side_init(&cli);
  assert_int_equal(cmn_frame_hs_client_start(&cli.hs, SECRET, NULL), 0);
  w.len = (size_t)cmn_frame_encode_errorf(CAIRN_ENOSPC, w.buf, sizeof w.buf, "too busy: %d", 3);
  f = receive(cli.p, &w);
  assert_int_equal(cmn_frame_hs_on_frame(&cli.hs, &f, reply.buf, sizeof reply.buf, &reply.len),
                   CAIRN_ENOSPC);
  assert_non_null(strstr(cli.hs.errmsg, "too busy: 3"));
  side_free(&cli);
}

/* Bad arguments change nothing. */
static void bad_arguments(void **state) {
  (void)state;
  cmn_frame_hs hs;
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  char long_id[CMN_FRAME_SERVER_ID_MAX + 2];
  memset(long_id, 'i', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  assert_int_equal(cmn_frame_hs_server_start(&hs, "", "cs", buf, sizeof buf), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_hs_server_start(&hs, SECRET, "", buf, sizeof buf), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_hs_server_start(&hs, SECRET, long_id, buf, sizeof buf), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_hs_server_start(&hs, SECRET, "bad id", buf, sizeof buf), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_hs_server_start(&hs, SECRET, "cs", buf, 20), CAIRN_ETOOBIG);
  assert_int_equal(cmn_frame_hs_client_start(&hs, NULL, NULL), CAIRN_EINVAL);
  assert_int_equal(cmn_frame_hs_client_start(&hs, SECRET, long_id), CAIRN_EINVAL);

  memset(&hs, 0, sizeof hs); /* IDLE: never started */
  cmn_frame f = {.type = CMN_FRAME_PING, .payload = buf, .len = 8, .frame_len = 8, .end = true};
  size_t out = 99;
  assert_int_equal(cmn_frame_hs_on_frame(&hs, &f, buf, sizeof buf, &out), CAIRN_EINVAL);
  assert_int_equal(out, 0);
  assert_int_equal(cmn_frame_hs_client_start(&hs, SECRET, NULL), 0);
  assert_int_equal(cmn_frame_hs_on_frame(&hs, &f, buf, 100, &out), CAIRN_EINVAL);
  assert_int_equal(hs.state, CMN_FRAME_HS_EXPECT_HELLO);
  assert_int_equal(cmn_frame_hs_on_frame(&hs, NULL, buf, sizeof buf, &out), CAIRN_EINVAL);
  assert_int_equal(hs.state, CMN_FRAME_HS_EXPECT_HELLO);
}

CAIRN_TEST_MAIN(cmocka_unit_test(macs_match_reference),
                cmocka_unit_test(right_secret_works_both_ways),
                cmocka_unit_test(wrong_secret_refused_by_server),
                cmocka_unit_test(wrong_secret_refused_by_client),
                cmocka_unit_test(replayed_auth_refused),
                cmocka_unit_test(unexpected_frames_refused), cmocka_unit_test(bad_arguments))
