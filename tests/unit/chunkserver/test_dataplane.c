/* Unit tests for the data plane's pushes and its handling of bad peers
 * (chunkserver/dataplane*.c, common/dpclient.c): real sockets on 127.0.0.1,
 * each server with its own store, push buffer and loop thread. Reads and
 * clones are in test_dataplane_read.c. */
#include "dp_test_util.h"

/* ---- pushes ---- */

static void push_one_server(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 64u << 20, NULL);
  size_t len = (3u << 20) + 5;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 1);
  uint8_t id[16];
  t_id(id);
  cmn_dp_conn *c = t_connect(&s);
  assert_string_equal(cmn_dp_server_id(c), cs_store_server_id(s.store));
  assert_int_equal(cmn_dp_ping(c), 0);
  assert_int_equal(cmn_dp_push(c, id, data, len, NULL, 0), 0);
  t_assert_pushed(&s, id, data, len);
  /* the connection carries the next operation; the same id is refused */
  assert_int_equal(cmn_dp_ping(c), 0);
  assert_int_equal(cmn_dp_push(c, id, data, 10, NULL, 0), CAIRN_EEXIST);
  assert_int_equal(cmn_dp_ping(c), CAIRN_ECLOSED); /* ERROR closes the connection */
  cmn_dp_close(c);

  cs_dataplane_stats st = t_srv_stats(&s);
  assert_int_equal(st.push_bytes_in, len);
  assert_int_equal(st.push_bytes_fwd, 0);
  assert_int_equal(st.pushes_ok, 1);
  cmn_buf m = {0};
  assert_int_equal(cmn_metrics_render(s.metrics, &m), 0);
  char want[128];
  snprintf(want, sizeof want, "cairn_dataplane_bytes_total{kind=\"push_in\"} %zu", len);
  assert_non_null(strstr(m.data, want));
  cmn_buf_free(&m);
  t_srv_stop(&s);
  free(data);
}

static void push_chain_of_three(void **state) {
  (void)state;
  t_srv s[3];
  for (int i = 0; i < 3; i++) t_srv_start(&s[i], 64u << 20, NULL);
  size_t len = (10u << 20) + 12345;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 2);
  uint8_t id[16];
  t_id(id);
  const char *chain[] = {s[1].addr, s[2].addr};
  cmn_dp_conn *c = t_connect(&s[0]);
  assert_int_equal(cmn_dp_push(c, id, data, len, chain, 2), 0);
  /* a second push in parts, odd sizes, on the same connection */
  uint8_t id2[16];
  t_id(id2);
  assert_int_equal(cmn_dp_push_begin(c, id2, len, cmn_crc32c(0, data, len), chain, 2), 0);
  for (size_t off = 0; off < len;) {
    size_t n = CMN_MIN(len - off, (size_t)777777);
    assert_int_equal(cmn_dp_push_write(c, data + off, n), 0);
    off += n;
  }
  assert_int_equal(cmn_dp_push_finish(c), 0);
  cmn_dp_close(c);
  for (int i = 0; i < 3; i++) {
    t_assert_pushed(&s[i], id, data, len);
    t_assert_pushed(&s[i], id2, data, len);
    cs_dataplane_stats st = t_srv_stats(&s[i]);
    assert_int_equal(st.push_bytes_in, 2 * len);
    assert_int_equal(st.push_bytes_fwd, i < 2 ? 2 * len : 0);
  }
  for (int i = 0; i < 3; i++) t_srv_stop(&s[i]);
  free(data);
}

static int got_bytes(void *arg) {
  t_srv *s = arg;
  return t_srv_stats(s).push_bytes_in > 0;
}

/*
 * Pipelining made provable: the client sends only the first half of a
 * 32 MiB push and waits until the third server has received bytes. A server
 * that waited for the whole push before forwarding would leave the third
 * server empty forever and the wait would fail; here the first server holds
 * at most half of the data at that moment.
 */
static void pipelining_forwards_before_complete(void **state) {
  (void)state;
  t_srv s[3];
  for (int i = 0; i < 3; i++) t_srv_start(&s[i], 64u << 20, NULL);
  size_t len = 32u << 20, half = len / 2;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 3);
  uint8_t id[16];
  t_id(id);
  const char *chain[] = {s[1].addr, s[2].addr};
  cmn_dp_conn *c = t_connect(&s[0]);
  assert_int_equal(cmn_dp_push_begin(c, id, len, cmn_crc32c(0, data, len), chain, 2), 0);
  assert_int_equal(cmn_dp_push_write(c, data, half), 0);
  assert_true(t_wait_for(got_bytes, &s[2], 20000));
  assert_true(t_srv_stats(&s[0]).push_bytes_in <= half);
  assert_int_equal(cmn_dp_push_write(c, data + half, len - half), 0);
  assert_int_equal(cmn_dp_push_finish(c), 0);
  cmn_dp_close(c);
  for (int i = 0; i < 3; i++) t_assert_pushed(&s[i], id, data, len);
  for (int i = 0; i < 3; i++) t_srv_stop(&s[i]);
  free(data);
}

static void budget_exceeded_is_ebusy(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 1u << 20, NULL);
  size_t len = 2u << 20;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 4);
  uint8_t id[16];
  t_id(id);
  cmn_dp_conn *c = t_connect(&s);
  assert_int_equal(cmn_dp_push(c, id, data, len, NULL, 0), CAIRN_EBUSY);
  assert_non_null(strstr(cmn_dp_error(c), "push buffer full"));
  cmn_dp_close(c);
  cs_pushbuf_stats ps;
  cs_pushbuf_get_stats(s.pb, &ps);
  assert_int_equal(ps.reserved, 0);
  assert_int_equal(ps.pushes, 0);
  assert_int_equal(ps.refused, 1);
  /* a push that fits still goes through on a new connection */
  c = t_connect(&s);
  assert_int_equal(cmn_dp_push(c, id, data, len / 2, NULL, 0), 0);
  cmn_dp_close(c);
  t_assert_pushed(&s, id, data, len / 2);
  t_srv_stop(&s);
  free(data);
}

/* The last server of the chain is out of budget: the first two keep the
 * bytes, the client hears EBUSY from the end of the chain. */
static void busy_next_hop_reported(void **state) {
  (void)state;
  t_srv a, b;
  t_srv_start(&a, 8u << 20, NULL);
  t_srv_start(&b, 1u << 20, NULL);
  size_t len = 3u << 20;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 5);
  uint8_t id[16];
  t_id(id);
  const char *chain[] = {b.addr};
  cmn_dp_conn *c = t_connect(&a);
  assert_int_equal(cmn_dp_push(c, id, data, len, chain, 1), CAIRN_EBUSY);
  assert_int_equal(cmn_dp_ping(c), 0); /* the chain's error leaves the connection usable */
  cmn_dp_close(c);
  t_assert_pushed(&a, id, data, len);
  cs_pushbuf_stats ps;
  cs_pushbuf_get_stats(b.pb, &ps);
  assert_int_equal(ps.reserved, 0);
  t_srv_stop(&a);
  t_srv_stop(&b);
  free(data);
}

static void bad_crc_push_rejected(void **state) {
  (void)state;
  t_srv s[2];
  for (int i = 0; i < 2; i++) t_srv_start(&s[i], 16u << 20, NULL);
  size_t len = 100000;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 6);
  uint8_t id[16];
  t_id(id);
  const char *chain[] = {s[1].addr};
  cmn_dp_conn *c = t_connect(&s[0]);
  /* announce a CRC the data does not have: every frame is intact, the end-to-end check fails */
  assert_int_equal(cmn_dp_push_begin(c, id, len, cmn_crc32c(0, data, len) ^ 1, chain, 1), 0);
  assert_int_equal(cmn_dp_push_write(c, data, len), 0);
  assert_int_equal(cmn_dp_push_finish(c), CAIRN_ECHECKSUM);
  /* an aborted push is dropped everywhere */
  uint8_t id2[16];
  t_id(id2);
  assert_int_equal(cmn_dp_push_begin(c, id2, len, cmn_crc32c(0, data, len), chain, 1), 0);
  assert_int_equal(cmn_dp_push_write(c, data, len / 2), 0);
  assert_int_equal(cmn_dp_push_abort(c, CAIRN_ECANCELED), 0);
  assert_int_equal(cmn_dp_ping(c), 0);
  cmn_dp_close(c);
  for (int i = 0; i < 2; i++) {
    cs_pushbuf_stats ps;
    cs_pushbuf_get_stats(s[i].pb, &ps);
    assert_int_equal(ps.pushes, 0);
    assert_int_equal(ps.reserved, 0);
  }
  for (int i = 0; i < 2; i++) t_srv_stop(&s[i]);
  free(data);
}

/* ---- next hops that fail ---- */

/* A port nobody listens on: bind, note the port, close. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t l = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &l);
  close(fd);
  return ntohs(a.sin_port);
}

static void dead_next_hop_fails_fast(void **state) {
  (void)state;
  cs_dataplane_config cfg = {.io_timeout_ms = 500};
  t_srv s;
  t_srv_start(&s, 16u << 20, &cfg);
  size_t len = 1u << 20;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 7);

  /* refused connection */
  char refused[64];
  snprintf(refused, sizeof refused, "127.0.0.1:%d", dead_port());
  const char *chain1[] = {refused};
  uint8_t id[16];
  t_id(id);
  cmn_dp_conn *c = t_connect(&s);
  int64_t t0 = cmn_mono_ms();
  assert_int_equal(cmn_dp_push(c, id, data, len, chain1, 1), CAIRN_EUNAVAIL);
  t_assert_pushed(&s, id, data, len); /* the bytes stay usable here */

  /* a next hop that accepts TCP but never speaks: the io timeout ends it */
  int mute = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(mute, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(mute, 4), 0);
  socklen_t l = sizeof a;
  getsockname(mute, (struct sockaddr *)&a, &l);
  char silent[64];
  snprintf(silent, sizeof silent, "127.0.0.1:%d", ntohs(a.sin_port));
  const char *chain2[] = {silent};
  t_id(id);
  assert_int_equal(cmn_dp_push(c, id, data, len, chain2, 1), CAIRN_ETIMEDOUT);
  assert_true(cmn_mono_ms() - t0 < 8000);
  assert_int_equal(cmn_dp_ping(c), 0);
  cmn_dp_close(c);
  close(mute);
  t_srv_stop(&s);
  free(data);
}

/* A next hop that dies in the middle of a push: ECLOSED, no hang. */
static void next_hop_dies_mid_push(void **state) {
  (void)state;
  cs_dataplane_config cfg = {.io_timeout_ms = 2000};
  t_srv a, b;
  t_srv_start(&a, 64u << 20, &cfg);
  t_srv_start(&b, 64u << 20, NULL);
  size_t len = 8u << 20;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 8);
  uint8_t id[16];
  t_id(id);
  const char *chain[] = {b.addr};
  cmn_dp_conn *c = t_connect(&a);
  assert_int_equal(cmn_dp_push_begin(c, id, len, cmn_crc32c(0, data, len), chain, 1), 0);
  assert_int_equal(cmn_dp_push_write(c, data, len / 2), 0);
  assert_true(t_wait_for(got_bytes, &b, 10000));
  t_srv_stop(&b);
  assert_int_equal(cmn_dp_push_write(c, data + len / 2, len - len / 2), 0);
  int rc = cmn_dp_push_finish(c);
  assert_true(rc == CAIRN_ECLOSED || rc == CAIRN_EUNAVAIL);
  cmn_dp_close(c);
  t_assert_pushed(&a, id, data, len);
  t_srv_stop(&a);
  free(data);
}

/* ---- backpressure ---- */

/* A next hop that completes the handshake and then never reads. */
typedef struct fake_hop {
  int lfd, port;
  int stop[2];
  pthread_t thread;
} fake_hop;

static void *fake_hop_main(void *arg) {
  fake_hop *h = arg;
  int fd = accept(h->lfd, NULL, NULL);
  if (fd < 0) return NULL;
  cmn_frame_hs hs;
  uint8_t out[CMN_FRAME_CTRL_FRAME_MAX], in[4096];
  int n = cmn_frame_hs_server_start(&hs, T_SECRET, "fake-hop", out, sizeof out);
  cmn_frame_parser *p = NULL;
  cmn_frame_parser_new(0, &p);
  if (n > 0 && send(fd, out, (size_t)n, MSG_NOSIGNAL) == n) {
    while (hs.state != CMN_FRAME_HS_DONE && hs.state != CMN_FRAME_HS_FAILED) {
      ssize_t r = recv(fd, in, sizeof in, 0);
      if (r <= 0) break;
      size_t pos = 0;
      while (pos < (size_t)r && hs.state != CMN_FRAME_HS_DONE) {
        size_t used = 0, olen = 0;
        cmn_frame f;
        int rc = cmn_frame_feed(p, in + pos, (size_t)r - pos, &used, &f);
        pos += used;
        if (rc <= 0) break;
        if (cmn_frame_hs_on_frame(&hs, &f, out, sizeof out, &olen) < 0) break;
        if (olen) send(fd, out, olen, MSG_NOSIGNAL);
      }
    }
  }
  char x;
  while (read(h->stop[0], &x, 1) < 0 && errno == EINTR) {
  }
  cmn_frame_parser_free(p);
  close(fd);
  return NULL;
}

static void fake_hop_start(fake_hop *h) {
  h->lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(h->lfd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(h->lfd, 4), 0);
  socklen_t l = sizeof a;
  getsockname(h->lfd, (struct sockaddr *)&a, &l);
  h->port = ntohs(a.sin_port);
  assert_int_equal(pipe(h->stop), 0);
  assert_int_equal(pthread_create(&h->thread, NULL, fake_hop_main, h), 0);
}

static void fake_hop_stop(fake_hop *h) {
  assert_int_equal(write(h->stop[1], "x", 1), 1);
  pthread_join(h->thread, NULL);
  close(h->stop[0]);
  close(h->stop[1]);
  close(h->lfd);
}

typedef struct pusher {
  t_srv *srv;
  const char *next;
  uint8_t id[16];
  const uint8_t *data;
  size_t len;
  int rc;
} pusher;

static void *pusher_main(void *arg) {
  pusher *p = arg;
  cmn_dp_conn *c = NULL;
  p->rc = cmn_dp_connect(p->srv->addr, T_SECRET, 30000, &c);
  if (p->rc == 0) p->rc = cmn_dp_push(c, p->id, p->data, p->len, &p->next, 1);
  cmn_dp_close(c);
  return NULL;
}

/*
 * The next hop stops reading: the server must stop taking bytes from the
 * client once its forward queue is full (plus what the kernel buffers
 * hold), instead of buffering the whole push in memory. Then the io timeout
 * gives up on the next hop, the push completes locally and the client hears
 * ETIMEDOUT from the chain.
 */
static void backpressure_bounds_forwarding(void **state) {
  (void)state;
  cs_dataplane_config cfg = {.io_timeout_ms = 3000};
  t_srv s;
  t_srv_start(&s, 128u << 20, &cfg);
  fake_hop h;
  fake_hop_start(&h);
  char next[64];
  snprintf(next, sizeof next, "127.0.0.1:%d", h.port);
  size_t len = 64u << 20;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 9);
  pusher p = {.srv = &s, .next = next, .data = data, .len = len, .rc = 1};
  t_id(p.id);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, pusher_main, &p), 0);
  /* wait until the intake stops moving (it must, long before 64 MiB) */
  uint64_t prev = 0, cur = 0;
  int64_t end = cmn_mono_ms() + 10000;
  for (;;) {
    usleep(300 * 1000);
    cur = t_srv_stats(&s).push_bytes_in;
    if (cur > 0 && cur == prev) break;
    prev = cur;
    assert_true(cmn_mono_ms() < end);
  }
  fprintf(stderr, "intake stalled at %llu bytes of %zu\n", (unsigned long long)cur, len);
  assert_true(cur < 32u << 20);
  pthread_join(th, NULL);
  assert_int_equal(p.rc, CAIRN_ETIMEDOUT);
  t_assert_pushed(&s, p.id, data, len);
  fake_hop_stop(&h);
  t_srv_stop(&s);
  free(data);
}

/* ---- bad peers ---- */

static void wrong_secret_refused(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 16u << 20, NULL);
  cmn_dp_conn *c = NULL;
  char err[256];
  assert_int_equal(cmn_dp_connect_ex(s.addr, "not-the-secret", NULL, T_TIMEOUT_MS, err,
                                     sizeof err, &c),
                   CAIRN_EAUTH);
  assert_null(c);
  assert_true(strlen(err) > 0);
  /* a peer that skips AUTH and sends data is refused and nothing is kept */
  t_raw r;
  t_raw_open(&r, s.port);
  cmn_frame f;
  assert_int_equal(t_raw_next(&r, &f), 1);
  assert_int_equal(f.type, CMN_FRAME_HELLO);
  cmn_frame_push_begin b = {.total_len = 10, .crc32c = 0};
  memset(b.data_id, 7, sizeof b.data_id);
  uint8_t buf[CMN_FRAME_CTRL_FRAME_MAX];
  int n = cmn_frame_encode_push_begin(&b, buf, sizeof buf);
  t_raw_send(&r, buf, (size_t)n);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_EPROTO);
  t_raw_close(&r);
  cs_pushbuf_stats ps;
  cs_pushbuf_get_stats(s.pb, &ps);
  assert_int_equal(ps.pushes, 0);
  /* expecting another server id fails too */
  assert_int_equal(cmn_dp_connect_ex(s.addr, T_SECRET, "some-other-server", T_TIMEOUT_MS, err,
                                     sizeof err, &c),
                   CAIRN_EAUTH);
  assert_true(t_srv_stats(&s).errors >= 2);
  t_srv_stop(&s);
}

/* One malformed input per connection; each is closed with an ERROR, and
 * the server goes on serving. */
static void bad_frames_close_connection(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 16u << 20, NULL);
  uint8_t hdr[CMN_FRAME_HEADER_SIZE], buf[CMN_FRAME_CTRL_FRAME_MAX];
  t_raw r;

  /* garbage before the handshake */
  t_raw_open(&r, s.port);
  t_raw_send(&r, "GET / HTTP/1.1\r\n\r\n", 18);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_EPROTO);
  t_raw_close(&r);

  /* bad magic after the handshake */
  t_raw_open(&r, s.port);
  t_raw_auth(&r, T_SECRET);
  t_raw_send(&r, "XXXXXXXXXXXXXXXXXXXXXXXX", 24);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_EPROTO);
  t_raw_close(&r);

  /* a huge length, refused from the header */
  t_raw_open(&r, s.port);
  t_raw_auth(&r, T_SECRET);
  t_raw_header(hdr, CMN_FRAME_PUSH_DATA, 0x7fffffffu, 0);
  t_raw_send(&r, hdr, sizeof hdr);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_ETOOBIG);
  t_raw_close(&r);

  /* a short frame: under the type's minimum */
  t_raw_open(&r, s.port);
  t_raw_auth(&r, T_SECRET);
  t_raw_header(hdr, CMN_FRAME_PING, 4, 0);
  t_raw_send(&r, hdr, sizeof hdr);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_EPROTO);
  t_raw_close(&r);

  /* a bad payload CRC */
  t_raw_open(&r, s.port);
  t_raw_auth(&r, T_SECRET);
  cmn_frame_ping ping = {.token = 42};
  int n = cmn_frame_encode_ping(&ping, buf, sizeof buf);
  buf[n - 1] ^= 0xff;
  t_raw_send(&r, buf, (size_t)n);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_ECHECKSUM);
  t_raw_close(&r);

  /* data before PUSH_BEGIN */
  t_raw_open(&r, s.port);
  t_raw_auth(&r, T_SECRET);
  uint8_t payload[100] = {1};
  cmn_frame_encode_data_header(CMN_FRAME_PUSH_DATA, payload, sizeof payload, hdr);
  t_raw_send(&r, hdr, sizeof hdr);
  t_raw_send(&r, payload, sizeof payload);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_EPROTO);
  t_raw_close(&r);

  /* a second handshake */
  t_raw_open(&r, s.port);
  t_raw_auth(&r, T_SECRET);
  cmn_frame_auth auth;
  memset(&auth, 1, sizeof auth);
  n = cmn_frame_encode_auth(&auth, buf, sizeof buf);
  t_raw_send(&r, buf, (size_t)n);
  assert_int_equal(t_raw_expect_close(&r), CAIRN_EPROTO);
  t_raw_close(&r);

  /* a peer that vanishes in the middle of a push: the push is cancelled */
  t_raw_open(&r, s.port);
  t_raw_auth(&r, T_SECRET);
  cmn_frame_push_begin b = {.total_len = 1000, .crc32c = 0};
  memset(b.data_id, 9, sizeof b.data_id);
  n = cmn_frame_encode_push_begin(&b, buf, sizeof buf);
  t_raw_send(&r, buf, (size_t)n);
  t_raw_send(&r, hdr, sizeof hdr); /* a PUSH_DATA header, then half its payload */
  t_raw_send(&r, payload, 50);
  t_raw_close(&r);

  /* still serving */
  cmn_dp_conn *c = t_connect(&s);
  assert_int_equal(cmn_dp_ping(c), 0);
  cmn_dp_close(c);
  cs_dataplane_stats st = t_srv_stats(&s);
  assert_true(st.errors >= 7);
  cs_pushbuf_stats ps;
  cs_pushbuf_get_stats(s.pb, &ps);
  assert_int_equal(ps.pushes, 0); /* the vanished push was cancelled */
  t_srv_stop(&s);
}

static int idle_closed(void *arg) {
  cs_pushbuf_stats ps;
  cs_pushbuf_get_stats(((t_srv *)arg)->pb, &ps);
  return ps.reserved == 0;
}

static void limits_and_idle_timeout(void **state) {
  (void)state;
  cs_dataplane_config cfg = {.max_conns = 2, .idle_timeout_ms = 300};
  t_srv s;
  t_srv_start(&s, 16u << 20, &cfg);
  cmn_dp_conn *a = t_connect(&s), *b = t_connect(&s), *c = NULL;
  assert_int_equal(cmn_dp_connect(s.addr, T_SECRET, T_TIMEOUT_MS, &c), CAIRN_EBUSY);
  /* a stalled push is cancelled by the idle timeout, its reservation freed */
  uint8_t id[16], data[1000] = {0};
  t_id(id);
  assert_int_equal(cmn_dp_push_begin(a, id, 100000, 0, NULL, 0), 0);
  assert_int_equal(cmn_dp_push_write(a, data, sizeof data), 0);
  usleep(100 * 1000);
  assert_true(t_wait_for(idle_closed, &s, 5000));
  /* the server said why before closing */
  assert_int_equal(cmn_dp_push_abort(a, CAIRN_ECANCELED), CAIRN_ETIMEDOUT);
  usleep(600 * 1000);
  assert_int_equal(cmn_dp_ping(b), CAIRN_ECLOSED); /* idle: closed by the server */
  cmn_dp_close(a);
  cmn_dp_close(b);
  c = t_connect(&s);
  assert_int_equal(cmn_dp_ping(c), 0);
  cmn_dp_close(c);
  t_srv_stop(&s);
}

CAIRN_TEST_MAIN(cmocka_unit_test(push_one_server), cmocka_unit_test(push_chain_of_three),
                cmocka_unit_test(pipelining_forwards_before_complete),
                cmocka_unit_test(budget_exceeded_is_ebusy),
                cmocka_unit_test(busy_next_hop_reported), cmocka_unit_test(bad_crc_push_rejected),
                cmocka_unit_test(dead_next_hop_fails_fast),
                cmocka_unit_test(next_hop_dies_mid_push),
                cmocka_unit_test(backpressure_bounds_forwarding),
                cmocka_unit_test(wrong_secret_refused),
                cmocka_unit_test(bad_frames_close_connection),
                cmocka_unit_test(limits_and_idle_timeout))
