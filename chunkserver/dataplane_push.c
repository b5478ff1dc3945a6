/*
 * dataplane_push.c - PUSH on the data plane: the push buffer side of
 * PUSH_BEGIN / PUSH_DATA / PUSH_END, and the connection to the next server
 * of the chain that every piece is forwarded to as it arrives.
 *
 * The next hop ("down") is a client connection of its own: resolve, connect,
 * client handshake, then PUSH_BEGIN (chain minus the next hop), the data
 * frames and PUSH_END, and finally its PUSH_ACK. Bytes that arrive from
 * upstream before the handshake is done wait in `early`; reading from
 * upstream stops meanwhile (cs__dp_push_blocked), so `early` holds at most
 * one read buffer. Afterwards every piece is written as it comes, and
 * upstream reading pauses while more than forward_queue_max bytes wait in
 * the next hop's write queue.
 *
 * Every wait on the next hop is bounded by io_timeout_ms without progress:
 * connecting, the handshake, a write queue that does not drain, and the
 * PUSH_ACK. The timer is stopped only while the next hop has nothing to do
 * (all written, PUSH_END not sent yet): then a slow client is the upstream
 * idle timer's business.
 *
 * A next hop that fails reports its code to the upstream connection and
 * closes; the push goes on locally and PUSH_ACK carries the first error.
 */
#include "dataplane_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum down_state {
  DOWN_RESOLVE = 0,
  DOWN_CONNECT,
  DOWN_HANDSHAKE,
  DOWN_STREAM,
} down_state;

struct cs__dp_down {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t creq;
  uv_getaddrinfo_t gai;
  cs_dataplane *dp;
  cs__dp_conn *up; /* NULL once detached */
  int refs;        /* open handles + getaddrinfo in flight */
  down_state state;
  bool closed;
  bool tcp_open;
  bool gai_pending; /* getaddrinfo in flight */
  bool end_sent;
  cmn_frame_hs hs;
  cmn_frame_parser *parser;
  cmn_buf early; /* queued before the handshake completed */
  uint8_t id[CMN_FRAME_DATA_ID_SIZE];
  uint64_t total;
  char addr[CMN_FRAME_ADDR_MAX + 1];
  char host[CMN_FRAME_ADDR_MAX + 1];
  int port;
  uint8_t rbuf[4096]; /* the next hop only sends small control frames */
};

static void push_next_done(cs__dp_conn *c, int status);

/* ------------------------------------------------------------ lifetimes */

static void down_unref(cs__dp_down *d) {
  if (--d->refs > 0) return;
  cs_dataplane *dp = d->dp;
  cmn_frame_parser_free(d->parser);
  cmn_buf_free(&d->early);
  free(d);
  cs__dp_unref(dp);
}

static void on_down_closed(uv_handle_t *h) { down_unref(h->data); }

static void down_close(cs__dp_down *d) {
  if (d->closed) return;
  d->closed = true;
  uv_close((uv_handle_t *)&d->timer, on_down_closed);
  if (d->tcp_open) uv_close((uv_handle_t *)&d->tcp, on_down_closed);
  if (d->gai_pending) uv_cancel((uv_req_t *)&d->gai); /* its callback still runs */
}

/* Hand the result to the upstream connection (if still there) and close. */
static void down_report(cs__dp_down *d, int status) {
  cs__dp_conn *up = d->up;
  d->up = NULL;
  down_close(d);
  if (up) {
    up->down = NULL;
    push_next_done(up, status);
  }
}

__attribute__((format(printf, 3, 4))) static void down_fail(cs__dp_down *d, int code,
                                                            const char *fmt, ...) {
  if (d->closed) return;
  char reason[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  char hex[2 * CMN_FRAME_DATA_ID_SIZE + 1];
  cmn_hex_encode(d->id, sizeof d->id, hex);
  CMN_WARN(CS__DP_LOG, "next hop failed addr=%s id=%s code=%s reason=\"%s\"", d->addr, hex,
           cairn_err_name(code), reason);
  cs__dp_count_error(d->dp, CS__DP_ERR_NEXT_HOP);
  down_report(d, code);
}

/* ------------------------------------------------------------ timer, writes */

static size_t down_queued(const cs__dp_down *d) {
  size_t n = d->early.len;
  if (d->tcp_open) n += uv_stream_get_write_queue_size((const uv_stream_t *)&d->tcp);
  return n;
}

static void on_down_timeout(uv_timer_t *t) {
  cs__dp_down *d = t->data;
  static const char *const what[] = {"resolving", "connecting", "handshaking", "streaming"};
  down_fail(d, CAIRN_ETIMEDOUT, "no progress for %lld ms while %s%s", (long long)d->dp->io_ms,
            what[d->state], d->end_sent ? " (waiting for PUSH_ACK)" : "");
}

/* (Re)start the no-progress timer when we wait on the next hop; stop it
 * when it has nothing to do. */
static void down_arm(cs__dp_down *d) {
  if (d->closed) return;
  if (d->state < DOWN_STREAM || d->end_sent || down_queued(d) > 0)
    uv_timer_start(&d->timer, on_down_timeout, (uint64_t)d->dp->io_ms, 0);
  else
    uv_timer_stop(&d->timer);
}

static void on_down_write(void *arg, int status) {
  cs__dp_down *d = arg;
  if (d->closed) return;
  if (status < 0) {
    down_fail(d, CAIRN_ECLOSED, "write failed: %s", uv_strerror(status));
    return;
  }
  down_arm(d);
  if (d->up) {
    cs__dp_conn_touch(d->up);
    cs__dp_conn_flow(d->up);
  }
}

/* Send a and b (copied) to the next hop, or queue them until the handshake
 * is done. */
static void down_send(cs__dp_down *d, const void *a, size_t alen, const void *b, size_t blen) {
  if (d->closed) return;
  if (d->state < DOWN_STREAM) {
    if (alen) cmn_buf_append(&d->early, a, alen);
    if (blen) cmn_buf_append(&d->early, b, blen);
    return;
  }
  if (cs__dp_write((uv_stream_t *)&d->tcp, a, alen, b, blen, NULL, on_down_write, d) < 0) {
    down_fail(d, CAIRN_ECLOSED, "cannot write to the next hop");
    return;
  }
  down_arm(d);
}

/* ------------------------------------------------------------ reading */

/* A frame from the next hop: the handshake, then only PUSH_ACK (after our
 * PUSH_END) or ERROR are expected. */
static void down_frame(cs__dp_down *d, const cmn_frame *f) {
  char why[160];
  if (d->state == DOWN_HANDSHAKE) {
    uint8_t out[CMN_FRAME_CTRL_FRAME_MAX];
    size_t n = 0;
    int rc = cmn_frame_hs_on_frame(&d->hs, f, out, sizeof out, &n);
    if (rc < 0) {
      down_fail(d, rc, "handshake: %s", d->hs.errmsg);
      return;
    }
    if (n && cs__dp_write((uv_stream_t *)&d->tcp, out, n, NULL, 0, NULL, on_down_write, d) < 0) {
      down_fail(d, CAIRN_ECLOSED, "cannot write AUTH");
      return;
    }
    if (rc == 1) {
      d->state = DOWN_STREAM;
      cmn_buf early = d->early;
      memset(&d->early, 0, sizeof d->early);
      down_send(d, early.data, early.len, NULL, 0);
      cmn_buf_free(&early);
      if (d->up) cs__dp_conn_flow(d->up);
    }
    down_arm(d);
    return;
  }
  if (f->type == CMN_FRAME_ERROR) {
    cmn_frame_error e;
    if (cmn_frame_decode_error(f->payload, f->len, &e, why, sizeof why) < 0) {
      down_fail(d, CAIRN_EPROTO, "malformed ERROR: %s", why);
      return;
    }
    down_fail(d, e.code, "next hop refused: %s", e.message);
    return;
  }
  if (f->type != CMN_FRAME_PUSH_ACK || !d->end_sent) {
    down_fail(d, CAIRN_EPROTO, "unexpected %s frame from the next hop",
              cmn_frame_type_name(f->type));
    return;
  }
  cmn_frame_push_end ack;
  if (cmn_frame_decode_push_ack(f->payload, f->len, &ack, why, sizeof why) < 0) {
    down_fail(d, CAIRN_EPROTO, "malformed PUSH_ACK: %s", why);
    return;
  }
  if (memcmp(ack.data_id, d->id, sizeof d->id) != 0) {
    down_fail(d, CAIRN_EPROTO, "PUSH_ACK for another data id");
    return;
  }
  if (ack.status == 0 && ack.bytes != d->total) {
    down_fail(d, CAIRN_EPROTO, "PUSH_ACK says %llu bytes, pushed %llu",
              (unsigned long long)ack.bytes, (unsigned long long)d->total);
    return;
  }
  down_report(d, ack.status);
}

static void on_down_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  cs__dp_down *d = h->data;
  *buf = uv_buf_init((char *)d->rbuf, sizeof d->rbuf);
}

static void on_down_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cs__dp_down *d = s->data;
  if (d->closed) return;
  if (nread < 0) {
    down_fail(d, CAIRN_ECLOSED, "next hop closed the connection: %s", uv_strerror((int)nread));
    return;
  }
  const uint8_t *in = (const uint8_t *)buf->base;
  size_t pos = 0, n = (size_t)nread;
  while (pos < n && !d->closed) {
    size_t used = 0;
    cmn_frame f;
    int rc = cmn_frame_feed(d->parser, in + pos, n - pos, &used, &f);
    pos += used;
    if (rc < 0) {
      down_fail(d, rc, "bad frame from the next hop: %s", cmn_frame_parser_error(d->parser));
      return;
    }
    if (rc == 0) break;
    down_frame(d, &f);
  }
  if (!d->closed && d->up) cs__dp_conn_touch(d->up);
}

/* ------------------------------------------------------------ connecting */

static void on_down_connect(uv_connect_t *req, int status) {
  cs__dp_down *d = req->data;
  if (d->closed) return;
  if (status < 0) {
    down_fail(d, CAIRN_EUNAVAIL, "cannot connect: %s", uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&d->tcp, 1);
  int rc = cmn_frame_hs_client_start(&d->hs, d->dp->secret, NULL);
  if (rc == 0) rc = cmn_frame_parser_new(4096, &d->parser);
  if (rc == 0 && uv_read_start((uv_stream_t *)&d->tcp, on_down_alloc, on_down_read) != 0)
    rc = CAIRN_ECLOSED;
  if (rc < 0) {
    down_fail(d, rc, "cannot start the handshake");
    return;
  }
  d->state = DOWN_HANDSHAKE;
  down_arm(d);
}

static void down_connect(cs__dp_down *d, const struct sockaddr *sa) {
  if (uv_tcp_init(d->dp->loop, &d->tcp) != 0) {
    down_fail(d, CAIRN_EIO, "cannot create a socket");
    return;
  }
  d->tcp.data = d;
  d->tcp_open = true;
  d->refs++;
  d->creq.data = d;
  d->state = DOWN_CONNECT;
  int rc = uv_tcp_connect(&d->creq, &d->tcp, sa, on_down_connect);
  if (rc < 0) {
    down_fail(d, CAIRN_EUNAVAIL, "cannot connect: %s", uv_strerror(rc));
    return;
  }
  down_arm(d);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  cs__dp_down *d = req->data;
  d->gai_pending = false;
  if (!d->closed) {
    if (status < 0 || !res)
      down_fail(d, CAIRN_EUNAVAIL, "cannot resolve %s: %s", d->host, uv_strerror(status));
    else
      down_connect(d, res->ai_addr);
  }
  uv_freeaddrinfo(res);
  down_unref(d);
}

/*
 * Open the connection to the next hop of `b` (its chain[0]) and queue the
 * PUSH_BEGIN it gets: the same push with the chain minus itself. A numeric
 * address connects at once; a name is resolved on the thread pool.
 */
static void down_start(cs__dp_conn *c, const cmn_frame_push_begin *b) {
  cs_dataplane *dp = c->dp;
  cs__dp_down *d = cmn_calloc(1, sizeof *d);
  d->dp = dp;
  d->up = c;
  c->down = d;
  cs__dp_ref(dp);
  uv_timer_init(dp->loop, &d->timer);
  d->timer.data = d;
  d->refs = 1;
  memcpy(d->id, b->data_id, sizeof d->id);
  d->total = b->total_len;
  snprintf(d->addr, sizeof d->addr, "%s", b->chain[0]);

  cmn_frame_push_begin *fwd = cmn_malloc(sizeof *fwd);
  memcpy(fwd->data_id, b->data_id, sizeof fwd->data_id);
  fwd->total_len = b->total_len;
  fwd->crc32c = b->crc32c;
  fwd->chain_count = b->chain_count - 1;
  fwd->has_place = b->has_place;
  fwd->place = b->place;
  for (uint32_t i = 1; i < b->chain_count; i++)
    memcpy(fwd->chain[i - 1], b->chain[i], sizeof fwd->chain[0]);
  uint8_t frame[CMN_FRAME_CTRL_FRAME_MAX];
  int n = cmn_frame_encode_push_begin(fwd, frame, sizeof frame);
  free(fwd);
  if (n < 0) {
    down_fail(d, n, "cannot encode PUSH_BEGIN");
    return;
  }
  cmn_buf_append(&d->early, frame, (size_t)n);

  struct sockaddr_storage sa;
  if (cs__dp_split_addr(d->addr, d->host, sizeof d->host, &d->port) < 0) {
    down_fail(d, CAIRN_EINVAL, "bad address");
    return;
  }
  if (uv_ip4_addr(d->host, d->port, (struct sockaddr_in *)&sa) == 0 ||
      uv_ip6_addr(d->host, d->port, (struct sockaddr_in6 *)&sa) == 0) {
    down_connect(d, (const struct sockaddr *)&sa);
    return;
  }
  char port[16];
  snprintf(port, sizeof port, "%d", d->port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  d->gai.data = d;
  d->state = DOWN_RESOLVE;
  int rc = uv_getaddrinfo(dp->loop, &d->gai, on_resolved, d->host, port, &hints);
  if (rc < 0) {
    down_fail(d, CAIRN_EUNAVAIL, "cannot resolve %s: %s", d->host, uv_strerror(rc));
    return;
  }
  d->refs++;
  d->gai_pending = true;
  down_arm(d);
}

/* ------------------------------------------------------------ upstream side */

bool cs__dp_push_blocked(const cs__dp_conn *c) {
  const cs__dp_down *d = c->down;
  if (!d || d->closed) return false;
  return d->state < DOWN_STREAM || down_queued(d) > c->dp->fwd_max;
}

static void id_hex(const uint8_t id[CMN_FRAME_DATA_ID_SIZE], char out[2 * CMN_FRAME_DATA_ID_SIZE + 1]) {
  cmn_hex_encode(id, CMN_FRAME_DATA_ID_SIZE, out);
}

/* Answer PUSH_END: this server's result first, then the chain's. */
static void push_ack(cs__dp_conn *c) {
  cs_dataplane *dp = c->dp;
  cmn_frame_push_end ack;
  memcpy(ack.data_id, c->push_id, sizeof ack.data_id);
  ack.status = c->push_status ? c->push_status : c->down_status;
  ack.bytes = c->push_got;
  char hex[2 * CMN_FRAME_DATA_ID_SIZE + 1];
  id_hex(c->push_id, hex);
  if (ack.status == 0) {
    cs__dp_stat_add(&dp->st.pushes_ok, 1);
    if (dp->m_push_ok) cmn_counter_inc(dp->m_push_ok);
    CMN_DEBUG(CS__DP_LOG, "push done peer=%s id=%s bytes=%llu", c->peer, hex,
              (unsigned long long)ack.bytes);
  } else {
    cs__dp_stat_add(&dp->st.pushes_failed, 1);
    if (dp->m_push_failed) cmn_counter_inc(dp->m_push_failed);
    CMN_INFO(CS__DP_LOG, "push failed peer=%s id=%s bytes=%llu local=%s chain=%s", c->peer, hex,
             (unsigned long long)ack.bytes, cairn_err_name(c->push_status),
             cairn_err_name(c->down_status));
  }
  c->state = CS__DP_READY;
  uint8_t out[64];
  int n = cmn_frame_encode_push_ack(&ack, out, sizeof out);
  if (n > 0) cs__dp_conn_send(c, out, (size_t)n);
  cs__dp_conn_flow(c);
}

/* The next hop acknowledged (status from its PUSH_ACK) or failed. */
static void push_next_done(cs__dp_conn *c, int status) {
  if (status < 0 && c->down_status == 0) c->down_status = status;
  if (c->state == CS__DP_PUSH_ACK)
    push_ack(c);
  else
    cs__dp_conn_flow(c); /* reading may resume: the bytes now only stay here */
}

void cs__dp_push_begin(cs__dp_conn *c, const cmn_frame *f) {
  cs_dataplane *dp = c->dp;
  cmn_frame_push_begin *b = cmn_malloc(sizeof *b);
  char why[160];
  if (cmn_frame_decode_push_begin(f->payload, f->len, b, why, sizeof why) < 0) {
    cs__dp_conn_fail(c, CAIRN_EPROTO, CS__DP_ERR_PROTOCOL, "malformed PUSH_BEGIN: %s", why);
    goto done;
  }
  char hex[2 * CMN_FRAME_DATA_ID_SIZE + 1];
  id_hex(b->data_id, hex);
  int rc = cs_pushbuf_begin(dp->push, b->data_id, b->total_len, b->crc32c, &c->push);
  if (rc < 0) {
    cs__dp_stat_add(&dp->st.pushes_failed, 1);
    if (dp->m_push_failed) cmn_counter_inc(dp->m_push_failed);
    cs__dp_conn_fail(c, rc, rc == CAIRN_EBUSY ? CS__DP_ERR_BUSY : CS__DP_ERR_PROTOCOL,
                     "push refused id=%s bytes=%llu: %s", hex,
                     (unsigned long long)b->total_len,
                     rc == CAIRN_EBUSY    ? "push buffer full, retry later"
                     : rc == CAIRN_EEXIST ? "data id already in use"
                                          : cairn_strerror(rc));
    c->push = NULL;
    goto done;
  }
  c->state = CS__DP_PUSH;
  memcpy(c->push_id, b->data_id, sizeof c->push_id);
  c->push_total = b->total_len;
  c->push_got = 0;
  c->push_status = 0;
  c->down_status = 0;
  CMN_DEBUG(CS__DP_LOG, "push begin peer=%s id=%s bytes=%llu next=%s", c->peer, hex,
            (unsigned long long)b->total_len, b->chain_count ? b->chain[0] : "-");
  if (b->has_place) c->stager = cs__dp_stage_start(dp, c->push, &b->place, b->total_len);
  if (b->chain_count > 0) down_start(c, b);
done:
  free(b);
}

/* One piece: into the push buffer, and on to the next hop at once. The
 * first piece of a frame carries the frame's header, rebuilt from the
 * received length and CRC so the next server verifies the same CRC. */
void cs__dp_push_data(cs__dp_conn *c, const cmn_frame *f) {
  cs_dataplane *dp = c->dp;
  int rc = cs_pushbuf_append(c->push, f->payload, f->len);
  if (rc < 0) {
    cs__dp_conn_fail(c, rc == CAIRN_ERANGE ? CAIRN_EPROTO : rc, CS__DP_ERR_PROTOCOL,
                     "PUSH_DATA beyond the announced %llu bytes",
                     (unsigned long long)c->push_total);
    return;
  }
  c->push_got += f->len;
  if (c->stager) cs__dp_stage_feed(c->stager, c->push_got);
  cs__dp_stat_add(&dp->st.push_bytes_in, f->len);
  if (dp->m_bytes_in) cmn_counter_add(dp->m_bytes_in, f->len);
  if (!c->down) return;
  uint8_t hdr[CMN_FRAME_HEADER_SIZE];
  size_t hlen = 0;
  if (f->offset == 0) {
    cmn_frame_encode_header(CMN_FRAME_PUSH_DATA, f->frame_len, f->payload_crc, hdr);
    hlen = sizeof hdr;
  }
  down_send(c->down, hdr, hlen, f->payload, f->len);
  cs__dp_stat_add(&dp->st.push_bytes_fwd, f->len);
  if (dp->m_bytes_fwd) cmn_counter_add(dp->m_bytes_fwd, f->len);
}

/*
 * PUSH_END: finish here (or cancel, when the client aborts or the byte
 * count disagrees), pass the PUSH_END on, and answer once the next hop
 * acknowledged, or at once without one.
 */
void cs__dp_push_end(cs__dp_conn *c, const cmn_frame *f) {
  cmn_frame_push_end e;
  char why[160];
  if (cmn_frame_decode_push_end(f->payload, f->len, &e, why, sizeof why) < 0) {
    cs__dp_conn_fail(c, CAIRN_EPROTO, CS__DP_ERR_PROTOCOL, "malformed PUSH_END: %s", why);
    return;
  }
  if (memcmp(e.data_id, c->push_id, sizeof e.data_id) != 0) {
    cs__dp_conn_fail(c, CAIRN_EPROTO, CS__DP_ERR_PROTOCOL, "PUSH_END for another data id");
    return;
  }
  if (e.status != 0) {
    cs_pushbuf_cancel(c->push);
    c->push_status = e.status;
  } else if (e.bytes != c->push_got) {
    cs_pushbuf_cancel(c->push);
    c->push_status = CAIRN_EPROTO;
  } else {
    c->push_status = cs_pushbuf_finish(c->push);
  }
  c->push = NULL;
  if (c->stager) {
    cs__dp_stage_detach(c->stager, c->push_status == 0);
    c->stager = NULL;
  }
  if (c->push_status < 0 && c->push_status != e.status) {
    char hex[2 * CMN_FRAME_DATA_ID_SIZE + 1];
    id_hex(c->push_id, hex);
    CMN_WARN(CS__DP_LOG, "push rejected peer=%s id=%s code=%s reason=\"%s\"", c->peer, hex,
             cairn_err_name(c->push_status),
             c->push_status == CAIRN_ECHECKSUM ? "crc32c of the data does not match PUSH_BEGIN"
                                               : "byte count does not match");
    if (c->push_status == CAIRN_ECHECKSUM) cs__dp_count_error(c->dp, CS__DP_ERR_CHECKSUM);
  }
  if (!c->down) {
    push_ack(c);
    return;
  }
  uint8_t out[64];
  int n = cmn_frame_encode_push_end(&e, out, sizeof out);
  c->state = CS__DP_PUSH_ACK;
  c->down->end_sent = true;
  down_send(c->down, out, n > 0 ? (size_t)n : 0, NULL, 0);
  if (c->down) down_arm(c->down);
}

void cs__dp_push_abort(cs__dp_conn *c) {
  if (c->state == CS__DP_PUSH || c->state == CS__DP_PUSH_ACK) {
    cs__dp_stat_add(&c->dp->st.pushes_failed, 1);
    if (c->dp->m_push_failed) cmn_counter_inc(c->dp->m_push_failed);
  }
  if (c->stager) {
    cs__dp_stage_detach(c->stager, false);
    c->stager = NULL;
  }
  if (c->push) {
    cs_pushbuf_cancel(c->push);
    c->push = NULL;
  }
  if (c->down) {
    c->down->up = NULL;
    down_close(c->down);
    c->down = NULL;
  }
}
