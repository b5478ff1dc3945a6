/*
 * dp_test_util.h - helpers for the data-plane tests: a data-plane server on
 * 127.0.0.1 with its own temp store, push buffer and loop thread; a raw
 * frame socket for sending malformed input; deterministic data; waiting for
 * a condition with a deadline.
 */
#ifndef DP_TEST_UTIL_H
#define DP_TEST_UTIL_H

#include "test_main.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_dpclient.h"
#include "cmn_frame.h"
#include "cmn_log.h"
#include "cmn_metrics.h"
#include "cmn_util.h"
#include "test_tmp.h"
#include "cs_dataplane.h"
#include "cs_pushbuf.h"
#include "cs_store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#define T_SECRET "test-cluster-secret"
#define T_CHUNK (4u << 20)
#define T_TIMEOUT_MS 10000

/* ---- temp dirs ---- */

static inline void t_rm_rf(char *dir) { cairn_test_rm_rf(dir); }
static inline char *t_tmpdir(void) { return cairn_test_tmpdir("dp"); }

static inline cs_store *t_store_open(const char *dir) {
  cs_store_opts o = {.chunk_size = T_CHUNK, .reserve_bytes = 4096};
  cs_store *s = NULL;
  assert_int_equal(cs_store_open(&dir, 1, &o, &s), 0);
  return s;
}

/* ---- a server with its own loop thread ---- */

typedef struct t_srv {
  char *dir;
  cs_store *store;
  cs_pushbuf *pb;
  cmn_metrics *metrics;
  uv_loop_t loop;
  uv_async_t stop;
  pthread_t thread;
  cs_dataplane *dp;
  int port;
  char addr[64];
} t_srv;

static inline void t_srv_on_stop(uv_async_t *a) {
  t_srv *s = a->data;
  cs_dataplane_stop(s->dp);
  uv_close((uv_handle_t *)a, NULL);
}

static inline void *t_srv_main(void *arg) {
  t_srv *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* Start a server; `cfg` (may be NULL) supplies limits and timeouts, the
 * rest is filled in here. */
static inline void t_srv_start(t_srv *s, uint64_t budget, const cs_dataplane_config *cfg) {
  memset(s, 0, sizeof *s);
  s->dir = t_tmpdir();
  s->store = t_store_open(s->dir);
  assert_int_equal(cs_pushbuf_new(budget, 60000, &s->pb), 0);
  assert_int_equal(cmn_metrics_create(&s->metrics), 0);
  assert_int_equal(uv_loop_init(&s->loop), 0);
  cs_dataplane_config c = {0};
  if (cfg) c = *cfg;
  c.listen = "127.0.0.1:0";
  c.secret = T_SECRET;
  c.server_id = cs_store_server_id(s->store);
  c.store = s->store;
  c.push = s->pb;
  c.metrics = s->metrics;
  assert_int_equal(cs_dataplane_start(&s->loop, &c, &s->dp), 0);
  s->port = cs_dataplane_port(s->dp);
  assert_true(s->port > 0);
  snprintf(s->addr, sizeof s->addr, "127.0.0.1:%d", s->port);
  assert_int_equal(uv_async_init(&s->loop, &s->stop, t_srv_on_stop), 0);
  s->stop.data = s;
  assert_int_equal(pthread_create(&s->thread, NULL, t_srv_main, s), 0);
}

static inline cs_dataplane_stats t_srv_stats(t_srv *s) {
  cs_dataplane_stats st;
  cs_dataplane_get_stats(s->dp, &st);
  return st;
}

/* Stop the server, wait for its loop to finish closing everything, and
 * free it all. */
static inline void t_srv_stop(t_srv *s) {
  uv_async_send(&s->stop);
  pthread_join(s->thread, NULL);
  assert_int_equal(uv_loop_close(&s->loop), 0);
  cs_pushbuf_free(s->pb);
  cs_store_close(s->store);
  cmn_metrics_destroy(s->metrics);
  t_rm_rf(s->dir);
}

/* ---- data ---- */

static inline void t_fill(uint8_t *buf, size_t n, uint32_t seed) {
  uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(buf + i, &x, 8);
  }
  for (; i < n; i++) buf[i] = (uint8_t)(x >> (8 * (i & 7)));
}

static inline void t_id(uint8_t id[16]) {
  assert_int_equal(cmn_random_bytes(id, 16), 0);
  id[0] |= 1;
}

/* The push buffer of `s` holds exactly `data` under `id`. */
static inline void t_assert_pushed(t_srv *s, const uint8_t id[16], const void *data, size_t len) {
  const void *got;
  uint64_t glen;
  uint32_t crc;
  assert_int_equal(cs_pushbuf_get(s->pb, id, &got, &glen, &crc), 0);
  assert_int_equal(glen, len);
  assert_int_equal(crc, cmn_crc32c(0, data, len));
  assert_memory_equal(got, data, len);
  cs_pushbuf_put(s->pb, id);
}

static inline cmn_dp_conn *t_connect(t_srv *s) {
  cmn_dp_conn *c = NULL;
  char err[256];
  int rc = cmn_dp_connect_ex(s->addr, T_SECRET, NULL, T_TIMEOUT_MS, err, sizeof err, &c);
  if (rc != 0) fprintf(stderr, "connect: %s: %s\n", cairn_err_name(rc), err);
  assert_int_equal(rc, 0);
  return c;
}

/* Wait up to `ms` for pred(arg); returns its last value. */
static inline int t_wait_for(int (*pred)(void *), void *arg, int64_t ms) {
  int64_t end = cmn_mono_ms() + ms;
  while (!pred(arg)) {
    if (cmn_mono_ms() > end) return 0;
    usleep(2000);
  }
  return 1;
}

/* ---- raw frames on a blocking socket ---- */

typedef struct t_raw {
  int fd;
  cmn_frame_parser *p;
  uint8_t in[65536];
  size_t pos, len;
} t_raw;

static inline void t_raw_open(t_raw *r, int port) {
  memset(r, 0, sizeof *r);
  r->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(r->fd >= 0);
  struct timeval tv = {.tv_sec = 5};
  setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(r->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(cmn_frame_parser_new(0, &r->p), 0);
}

static inline void t_raw_close(t_raw *r) {
  close(r->fd);
  cmn_frame_parser_free(r->p);
}

static inline void t_raw_send(t_raw *r, const void *buf, size_t len) {
  assert_int_equal(send(r->fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Next complete frame: 1, 0 at EOF / reset, or fail the test on a timeout. */
static inline int t_raw_next(t_raw *r, cmn_frame *f) {
  for (;;) {
    if (r->pos < r->len) {
      size_t used = 0;
      int rc = cmn_frame_feed(r->p, r->in + r->pos, r->len - r->pos, &used, f);
      r->pos += used;
      assert_true(rc >= 0);
      if (rc == 1 && f->end) return 1;
      continue;
    }
    r->pos = r->len = 0;
    ssize_t n = recv(r->fd, r->in, sizeof r->in, 0);
    if (n == 0) return 0;
    if (n < 0) {
      assert_true(errno == ECONNRESET); /* a timeout (EAGAIN) fails the test */
      return 0;
    }
    r->len = (size_t)n;
  }
}

/* Handshake as a client over the raw socket. */
static inline void t_raw_auth(t_raw *r, const char *secret) {
  cmn_frame_hs hs;
  assert_int_equal(cmn_frame_hs_client_start(&hs, secret, NULL), 0);
  uint8_t out[CMN_FRAME_CTRL_FRAME_MAX];
  for (;;) {
    cmn_frame f;
    assert_int_equal(t_raw_next(r, &f), 1);
    size_t n = 0;
    int rc = cmn_frame_hs_on_frame(&hs, &f, out, sizeof out, &n);
    assert_true(rc >= 0);
    if (n) t_raw_send(r, out, n);
    if (rc == 1) return;
  }
}

/* Read until the server closes; returns the code of the ERROR frame it sent
 * before closing (0 if none). */
static inline int t_raw_expect_close(t_raw *r) {
  int code = 0;
  cmn_frame f;
  while (t_raw_next(r, &f) == 1) {
    if (f.type != CMN_FRAME_ERROR) continue;
    cmn_frame_error e;
    assert_int_equal(cmn_frame_decode_error(f.payload, f.len, &e, NULL, 0), 0);
    code = e.code;
  }
  return code;
}

/* A header written by hand, so it can say what no encoder would. */
static inline void t_raw_header(uint8_t hdr[CMN_FRAME_HEADER_SIZE], int type, uint32_t len,
                                uint32_t crc) {
  uint32_t v[3] = {CMN_FRAME_MAGIC, 0, len};
  memcpy(hdr, &v[0], 4);
  hdr[4] = (uint8_t)type;
  hdr[5] = hdr[6] = hdr[7] = 0;
  memcpy(hdr + 8, &v[2], 4);
  memcpy(hdr + 12, &crc, 4);
  uint32_t hc = cmn_crc32c(0, hdr, 16);
  memcpy(hdr + 16, &hc, 4);
}

#endif /* DP_TEST_UTIL_H */
