/*
 * dataplane.c - the data-plane server: listener, connections, handshake,
 * frame dispatch, timeouts, lingering close, shutdown and counters (see
 * cs_dataplane.h for the protocol and dataplane_internal.h for lifetimes).
 * Pushes are in dataplane_push.c, reads and clones in dataplane_read.c.
 *
 * A connection reads into its own buffer and feeds every slice to its frame
 * parser; each event (a control frame, or a piece of a data frame) is
 * dispatched at once on the loop thread, so nothing of a slice is kept after
 * the read callback returns. Flow control is done by starting and stopping
 * reads (cs__dp_conn_flow), never by holding bytes back.
 */
#include "dataplane_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ counters */

void cs__dp_stat_add(uint64_t *field, uint64_t n) { __atomic_add_fetch(field, n, __ATOMIC_RELAXED); }

static void stat_sub(uint64_t *field, uint64_t n) { __atomic_sub_fetch(field, n, __ATOMIC_RELAXED); }

void cs__dp_count_error(cs_dataplane *dp, cs__dp_err_kind kind) {
  cs__dp_stat_add(&dp->st.errors, 1);
  if (dp->m_err[kind]) cmn_counter_inc(dp->m_err[kind]);
}

static cs__dp_err_kind kind_of(int code) {
  switch (code) {
    case CAIRN_EAUTH: return CS__DP_ERR_AUTH;
    case CAIRN_ECHECKSUM: return CS__DP_ERR_CHECKSUM;
    case CAIRN_EBUSY: return CS__DP_ERR_BUSY;
    case CAIRN_ETIMEDOUT: return CS__DP_ERR_TIMEOUT;
    case CAIRN_EPROTO:
    case CAIRN_ETOOBIG:
    case CAIRN_EINVAL:
    case CAIRN_ERANGE: return CS__DP_ERR_PROTOCOL;
    default: return CS__DP_ERR_IO;
  }
}

static const char *state_name(cs__dp_state s) {
  static const char *const names[] = {"handshake", "ready", "push", "push_ack",
                                      "read", "linger", "closed"};
  return (unsigned)s < CMN_ARRAY_LEN(names) ? names[s] : "?";
}

/* ------------------------------------------------------------ lifetimes */

void cs__dp_ref(cs_dataplane *dp) { dp->refs++; }

/* Free the data plane once it is stopped and nothing refers to it. */
void cs__dp_unref(cs_dataplane *dp) {
  if (--dp->refs > 0 || !dp->stopping) return;
  CMN_DEBUG(CS__DP_LOG, "stopped port=%d", dp->port);
  free(dp->secret);
  free(dp->server_id);
  free(dp);
}

static void on_dp_handle_closed(uv_handle_t *h) { cs__dp_unref(h->data); }

void cs__dp_conn_unref(cs__dp_conn *c) {
  if (--c->refs > 0) return;
  cs_dataplane *dp = c->dp;
  cmn_frame_parser_free(c->parser);
  free(c->rbuf);
  free(c);
  cs__dp_unref(dp);
}

static void on_conn_handle_closed(uv_handle_t *h) { cs__dp_conn_unref(h->data); }

/* Close both handles now (pending writes are cancelled) after stopping the
 * operation in progress. The memory goes when the last reference does. */
static void conn_close(cs__dp_conn *c) {
  if (c->state == CS__DP_CLOSED) return;
  cs__dp_push_abort(c);
  cs__dp_read_abort(c);
  c->state = CS__DP_CLOSED;
  cs_dataplane *dp = c->dp;
  if (c->prev)
    c->prev->next = c->next;
  else
    dp->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  dp->nconns--;
  stat_sub(&dp->st.conns_open, 1);
  if (dp->m_open) cmn_gauge_add(dp->m_open, -1);
  uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* ------------------------------------------------------------ writes */

typedef struct wreq {
  uv_write_t req;
  cs__dp_write_done done;
  void *arg;
  void *owned;
  uint8_t copy[]; /* the copied bytes */
} wreq;

static void on_write(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  if (w->done) w->done(w->arg, status);
  free(w->owned);
  free(w);
}

/*
 * Queue a write. Without `owned`, a and b are copied into the request (one
 * buffer); with it, `a` is copied and `b` (== owned) is written in place and
 * freed once written. On failure nothing is queued, `owned` is freed and
 * `done` is not called.
 */
int cs__dp_write(uv_stream_t *s, const void *a, size_t alen, const void *b, size_t blen,
                 void *owned, cs__dp_write_done done, void *arg) {
  size_t ncopy = owned ? alen : alen + blen;
  wreq *w = malloc(sizeof *w + ncopy);
  if (!w) {
    free(owned);
    return CAIRN_ENOMEM;
  }
  w->done = done;
  w->arg = arg;
  w->owned = owned;
  if (alen) memcpy(w->copy, a, alen);
  if (!owned && blen) memcpy(w->copy + alen, b, blen);
  uv_buf_t bufs[2] = {uv_buf_init((char *)w->copy, (unsigned)ncopy),
                      uv_buf_init((char *)b, (unsigned)blen)};
  int rc = uv_write(&w->req, s, bufs, owned ? 2 : 1, on_write);
  if (rc < 0) {
    free(owned);
    free(w);
    return CAIRN_ECLOSED;
  }
  return 0;
}

/* A write of an upstream connection finished: a failed write means the peer
 * is gone; a completed one may let a read go on or reading resume. */
static void conn_write_done(void *arg, int status) {
  cs__dp_conn *c = arg;
  if (c->state >= CS__DP_LINGER) return;
  if (status < 0) {
    CMN_INFO(CS__DP_LOG, "connection closed peer=%s reason=\"write failed: %s\"", c->peer,
             uv_strerror(status));
    conn_close(c);
    return;
  }
  cs__dp_conn_touch(c);
  if (c->state == CS__DP_READ) cs__dp_read_pump(c);
  cs__dp_conn_flow(c);
}

int cs__dp_conn_send(cs__dp_conn *c, const void *frame, size_t len) {
  if (c->state == CS__DP_CLOSED) return CAIRN_ECLOSED;
  int rc = cs__dp_write((uv_stream_t *)&c->tcp, frame, len, NULL, 0, NULL, conn_write_done, c);
  if (rc < 0) conn_close(c);
  return rc;
}

int cs__dp_conn_send_data(cs__dp_conn *c, const uint8_t hdr[CMN_FRAME_HEADER_SIZE], void *data,
                          size_t len) {
  if (c->state == CS__DP_CLOSED) {
    free(data);
    return CAIRN_ECLOSED;
  }
  int rc = cs__dp_write((uv_stream_t *)&c->tcp, hdr, CMN_FRAME_HEADER_SIZE, data, len, data,
                        conn_write_done, c);
  if (rc < 0) conn_close(c);
  return rc;
}

/* ------------------------------------------------------------ faults */

static void on_linger_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_shutdown(uv_shutdown_t *req, int status) {
  cs__dp_conn *c = req->data;
  free(req);
  if (status < 0 && c->state == CS__DP_LINGER) conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);

/*
 * Log and count a fault, send `frame` (an ERROR, may be empty), then close
 * lingering: shut our side down so the peer reads the ERROR and EOF, keep
 * reading (and discarding) so that its unread bytes do not turn our close
 * into a reset that would destroy the ERROR in flight, and close for good
 * at EOF or after CS__DP_LINGER_MS.
 */
static void conn_fail_frame(cs__dp_conn *c, int code, cs__dp_err_kind kind, const void *frame,
                            size_t len, const char *reason) {
  if (c->state >= CS__DP_LINGER) return;
  CMN_WARN(CS__DP_LOG, "connection failed peer=%s state=%s code=%s reason=\"%s\"", c->peer,
           state_name(c->state), cairn_err_name(code), reason);
  cs__dp_count_error(c->dp, kind);
  cs__dp_push_abort(c);
  cs__dp_read_abort(c);
  c->state = CS__DP_LINGER;
  if (len && cs__dp_write((uv_stream_t *)&c->tcp, frame, len, NULL, 0, NULL, NULL, NULL) < 0) {
    conn_close(c);
    return;
  }
  uv_shutdown_t *req = cmn_malloc(sizeof *req);
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
    free(req);
    conn_close(c);
    return;
  }
  uv_timer_stop(&c->timer);
  uv_timer_start(&c->timer, on_linger_timeout, CS__DP_LINGER_MS, 0);
  if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = true;
}

void cs__dp_conn_fail(cs__dp_conn *c, int code, cs__dp_err_kind kind, const char *fmt, ...) {
  if (c->state >= CS__DP_LINGER) return;
  char reason[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  uint8_t frame[CMN_FRAME_CTRL_FRAME_MAX];
  int n = cmn_frame_encode_errorf(code, frame, sizeof frame, "%s", reason);
  conn_fail_frame(c, code, kind, frame, n > 0 ? (size_t)n : 0, reason);
}

/* ------------------------------------------------------------ flow, timers */

/* The handshake has a fixed deadline (io_timeout_ms from the accept) that
 * traffic does not extend; afterwards the timer is an idle timeout. */
void cs__dp_conn_touch(cs__dp_conn *c) {
  if (c->state > CS__DP_HANDSHAKE && c->state < CS__DP_LINGER) uv_timer_again(&c->timer);
}

/* Idle timeout. An idle authenticated connection is simply closed; one in
 * the middle of something is a fault (a push in progress is cancelled). */
static void on_idle(uv_timer_t *t) {
  cs__dp_conn *c = t->data;
  if (c->state == CS__DP_READY) {
    CMN_INFO(CS__DP_LOG, "connection closed peer=%s reason=\"idle\"", c->peer);
    conn_close(c);
    return;
  }
  if (c->state == CS__DP_HANDSHAKE) {
    cs__dp_conn_fail(c, CAIRN_ETIMEDOUT, CS__DP_ERR_TIMEOUT, "handshake not done within %lld ms",
                     (long long)c->dp->io_ms);
    return;
  }
  cs__dp_conn_fail(c, CAIRN_ETIMEDOUT, CS__DP_ERR_TIMEOUT, "no progress for %lld ms",
                   (long long)c->dp->idle_ms);
}

/* Read from upstream unless the next hop is behind (a push) or our own
 * replies pile up (a read, or a peer that sends PINGs and reads nothing). */
void cs__dp_conn_flow(cs__dp_conn *c) {
  if (c->state >= CS__DP_LINGER) return;
  size_t own = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
  bool want = !cs__dp_push_blocked(c) && own <= c->dp->read_max + CS__DP_RBUF;
  if (want && !c->reading) {
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0) c->reading = true;
  } else if (!want && c->reading) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
  }
}

/* ------------------------------------------------------------ dispatch */

/* Server side of the handshake: every frame before DONE goes through the
 * state machine, which writes the AUTH_OK or the ERROR to send. */
static void on_handshake_frame(cs__dp_conn *c, const cmn_frame *f) {
  uint8_t out[CMN_FRAME_CTRL_FRAME_MAX];
  size_t n = 0;
  int rc = cmn_frame_hs_on_frame(&c->hs, f, out, sizeof out, &n);
  if (rc < 0) {
    conn_fail_frame(c, rc, kind_of(rc), out, n, c->hs.errmsg);
    return;
  }
  if (n && cs__dp_conn_send(c, out, n) < 0) return;
  if (rc == 1) {
    c->state = CS__DP_READY;
    uv_timer_start(&c->timer, on_idle, (uint64_t)c->dp->idle_ms, (uint64_t)c->dp->idle_ms);
    CMN_DEBUG(CS__DP_LOG, "authenticated peer=%s", c->peer);
  }
}

static void on_ping(cs__dp_conn *c, const cmn_frame *f) {
  cmn_frame_ping ping;
  char why[128];
  if (cmn_frame_decode_ping(f->payload, f->len, &ping, why, sizeof why) < 0) {
    cs__dp_conn_fail(c, CAIRN_EPROTO, CS__DP_ERR_PROTOCOL, "malformed PING: %s", why);
    return;
  }
  uint8_t out[64];
  int n = cmn_frame_encode_pong(&ping, out, sizeof out);
  if (n > 0) cs__dp_conn_send(c, out, (size_t)n);
}

/* The peer reports an error and closes: log it and close at once. */
static void on_peer_error(cs__dp_conn *c, const cmn_frame *f) {
  cmn_frame_error e;
  char why[128];
  if (cmn_frame_decode_error(f->payload, f->len, &e, why, sizeof why) < 0) {
    cs__dp_conn_fail(c, CAIRN_EPROTO, CS__DP_ERR_PROTOCOL, "malformed ERROR: %s", why);
    return;
  }
  CMN_INFO(CS__DP_LOG, "connection closed peer=%s state=%s reason=\"peer error %s: %s\"", c->peer,
           state_name(c->state), cairn_err_name(e.code), e.message);
  conn_close(c);
}

/* One event from the parser, in the connection's state. Anything the
 * protocol does not allow here closes the connection. */
static void dispatch(cs__dp_conn *c, const cmn_frame *f) {
  if (c->state == CS__DP_HANDSHAKE) {
    on_handshake_frame(c, f);
    return;
  }
  switch (f->type) {
    case CMN_FRAME_PING: on_ping(c, f); return;
    case CMN_FRAME_ERROR: on_peer_error(c, f); return;
    case CMN_FRAME_PUSH_BEGIN:
      if (c->state == CS__DP_READY) {
        cs__dp_push_begin(c, f);
        return;
      }
      break;
    case CMN_FRAME_PUSH_DATA:
      if (c->state == CS__DP_PUSH) {
        cs__dp_push_data(c, f);
        return;
      }
      break;
    case CMN_FRAME_PUSH_END:
      if (c->state == CS__DP_PUSH) {
        cs__dp_push_end(c, f);
        return;
      }
      break;
    case CMN_FRAME_READ:
    case CMN_FRAME_CLONE:
      if (c->state == CS__DP_READY) {
        cs__dp_read_start(c, f);
        return;
      }
      break;
    default: break;
  }
  cs__dp_conn_fail(c, CAIRN_EPROTO, CS__DP_ERR_PROTOCOL, "unexpected %s frame in state %s",
                   cmn_frame_type_name(f->type), state_name(c->state));
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  cs__dp_conn *c = h->data;
  *buf = uv_buf_init((char *)c->rbuf, CS__DP_RBUF);
}

/* Feed what arrived to the parser, one event at a time, until the slice is
 * used up or the connection stopped accepting input. */
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  cs__dp_conn *c = s->data;
  if (c->state == CS__DP_CLOSED) return;
  if (nread < 0) {
    if (c->state == CS__DP_LINGER) {
      conn_close(c);
      return;
    }
    bool clean = nread == UV_EOF && (c->state == CS__DP_READY || c->state == CS__DP_HANDSHAKE) &&
                 cmn_frame_parser_idle(c->parser);
    if (clean)
      CMN_DEBUG(CS__DP_LOG, "connection closed peer=%s reason=\"peer closed\"", c->peer);
    else
      CMN_WARN(CS__DP_LOG, "connection lost peer=%s state=%s reason=\"%s\"", c->peer,
               state_name(c->state), uv_strerror((int)nread));
    conn_close(c);
    return;
  }
  if (c->state == CS__DP_LINGER || nread == 0) return;
  cs__dp_conn_touch(c);
  const uint8_t *in = (const uint8_t *)buf->base;
  size_t pos = 0, n = (size_t)nread;
  while (pos < n && c->state < CS__DP_LINGER) {
    size_t used = 0;
    cmn_frame f;
    int rc = cmn_frame_feed(c->parser, in + pos, n - pos, &used, &f);
    pos += used;
    if (rc < 0) {
      cmn_frame_fault fault = cmn_frame_parser_fault(c->parser);
      cs__dp_conn_fail(c, rc,
                       fault == CMN_FRAME_FAULT_PAYLOAD_CRC || fault == CMN_FRAME_FAULT_HEADER_CRC
                           ? CS__DP_ERR_CHECKSUM
                           : CS__DP_ERR_PROTOCOL,
                       "%s", cmn_frame_parser_error(c->parser));
      break;
    }
    if (rc == 0) break;
    dispatch(c, &f);
  }
  cs__dp_conn_flow(c);
}

/* ------------------------------------------------------------ accept */

static void peer_name(uv_tcp_t *tcp, char *out, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  char ip[64] = "?";
  int port = 0;
  snprintf(out, cap, "?");
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0) return;
  if (ss.ss_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
    uv_ip4_name(a, ip, sizeof ip);
    port = ntohs(a->sin_port);
    snprintf(out, cap, "%s:%d", ip, port);
  } else if (ss.ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, ip, sizeof ip);
    port = ntohs(a->sin6_port);
    snprintf(out, cap, "[%s]:%d", ip, port);
  }
}

/*
 * A new connection: set it up, count it, refuse it with ERROR EBUSY when
 * over the limit, else send HELLO and start the idle timer. The handles are
 * registered first so that every later failure is an ordinary close.
 */
static void on_connection(uv_stream_t *server, int status) {
  cs_dataplane *dp = server->data;
  if (status < 0) {
    CMN_WARN(CS__DP_LOG, "accept failed reason=\"%s\"", uv_strerror(status));
    return;
  }
  if (dp->stopping) return;
  cs__dp_conn *c = cmn_calloc(1, sizeof *c);
  c->dp = dp;
  if (uv_tcp_init(dp->loop, &c->tcp) < 0) {
    free(c);
    return;
  }
  c->tcp.data = c;
  uv_timer_init(dp->loop, &c->timer);
  c->timer.data = c;
  c->refs = 2;
  cs__dp_ref(dp);
  c->state = CS__DP_HANDSHAKE;
  c->next = dp->conns;
  if (dp->conns) dp->conns->prev = c;
  dp->conns = c;
  dp->nconns++;
  cs__dp_stat_add(&dp->st.conns_accepted, 1);
  cs__dp_stat_add(&dp->st.conns_open, 1);
  if (dp->m_accepted) cmn_counter_inc(dp->m_accepted);
  if (dp->m_open) cmn_gauge_add(dp->m_open, 1);
  snprintf(c->peer, sizeof c->peer, "?");
  c->rbuf = cmn_malloc(CS__DP_RBUF);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
      cmn_frame_parser_new(0, &c->parser) < 0) {
    conn_close(c);
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  peer_name(&c->tcp, c->peer, sizeof c->peer);
  uv_timer_start(&c->timer, on_idle, (uint64_t)dp->io_ms, 0);
  if (dp->nconns > (uint64_t)dp->max_conns) {
    cs__dp_conn_fail(c, CAIRN_EBUSY, CS__DP_ERR_BUSY, "too many connections (limit %d)",
                     dp->max_conns);
    return;
  }
  uint8_t hello[CMN_FRAME_CTRL_FRAME_MAX];
  int n = cmn_frame_hs_server_start(&c->hs, dp->secret, dp->server_id, hello, sizeof hello);
  if (n < 0) {
    CMN_ERROR(CS__DP_LOG, "cannot start handshake peer=%s code=%s", c->peer, cairn_err_name(n));
    conn_close(c);
    return;
  }
  if (cs__dp_conn_send(c, hello, (size_t)n) < 0) return;
  cs__dp_conn_flow(c);
  CMN_DEBUG(CS__DP_LOG, "connection accepted peer=%s", c->peer);
}

/* ------------------------------------------------------------ start, stop */

int cs__dp_split_addr(const char *addr, char *host, size_t hostcap, int *port) {
  const char *colon = addr ? strrchr(addr, ':') : NULL;
  if (!colon || colon == addr || !colon[1]) return CAIRN_EINVAL;
  const char *h = addr, *e = colon;
  if (*h == '[') {
    if (e[-1] != ']') return CAIRN_EINVAL;
    h++;
    e--;
  }
  size_t n = (size_t)(e - h);
  if (n == 0 || n >= hostcap) return CAIRN_EINVAL;
  memcpy(host, h, n);
  host[n] = '\0';
  char *end = NULL;
  long p = strtol(colon + 1, &end, 10);
  if (*end || p < 0 || p > 65535) return CAIRN_EINVAL;
  *port = (int)p;
  return 0;
}

static void on_expire(uv_timer_t *t) {
  cs_dataplane *dp = t->data;
  int n = cs_pushbuf_expire(dp->push, cmn_mono_ms());
  if (n > 0) CMN_INFO(CS__DP_LOG, "pushes expired count=%d", n);
  cs__dp_stage_reap(dp);
}

/* Register the series when a registry is given (shared between instances
 * that use the same registry, as cmn_metrics allows). */
static void register_metrics(cs_dataplane *dp, cmn_metrics *m) {
  if (!m) return;
  static const char *const err_names[CS__DP_ERR_COUNT] = {
      "protocol", "auth", "checksum", "busy", "timeout", "next_hop", "io"};
  const char *bytes = "cairn_dataplane_bytes_total";
  const char *bytes_help = "Data-plane payload bytes by direction.";
  cmn_label l = {"kind", "push_in"};
  cmn_counter_register(m, bytes, bytes_help, &l, 1, &dp->m_bytes_in);
  l.value = "forwarded";
  cmn_counter_register(m, bytes, bytes_help, &l, 1, &dp->m_bytes_fwd);
  l.value = "read";
  cmn_counter_register(m, bytes, bytes_help, &l, 1, &dp->m_bytes_read);
  cmn_counter_register(m, "cairn_dataplane_connections_total",
                       "Data-plane connections accepted.", NULL, 0, &dp->m_accepted);
  cmn_gauge_register(m, "cairn_dataplane_connections", "Data-plane connections open.", NULL, 0,
                     &dp->m_open);
  cmn_label r = {"result", "ok"};
  cmn_counter_register(m, "cairn_dataplane_pushes_total", "Pushes acknowledged, by result.", &r,
                       1, &dp->m_push_ok);
  r.value = "failed";
  cmn_counter_register(m, "cairn_dataplane_pushes_total", "Pushes acknowledged, by result.", &r,
                       1, &dp->m_push_failed);
  cmn_counter_register(m, "cairn_dataplane_stage_syncs_total",
                       "Syncs of staged bytes while their push still arrived.", NULL, 0,
                       &dp->m_stage_syncs);
  for (int i = 0; i < CS__DP_ERR_COUNT; i++) {
    cmn_label k = {"kind", err_names[i]};
    cmn_counter_register(m, "cairn_dataplane_errors_total",
                         "Data-plane connections failed, by kind.", &k, 1, &dp->m_err[i]);
  }
}

/*
 * Validate the config, then bind and listen. From the first handle on, a
 * failure goes through the ordinary stop path (handles closed, the data
 * plane freed by the loop), so there is one way to release everything.
 */
int cs_dataplane_start(uv_loop_t *loop, const cs_dataplane_config *cfg, cs_dataplane **out) {
  if (!loop || !cfg || !out || !cfg->secret || !cfg->secret[0] || !cfg->server_id ||
      !cfg->store || !cfg->push || cfg->max_conns < 0 || cfg->idle_timeout_ms < 0 ||
      cfg->io_timeout_ms < 0)
    return CAIRN_EINVAL;
  size_t idlen = strlen(cfg->server_id);
  if (idlen == 0 || idlen > CMN_FRAME_SERVER_ID_MAX) return CAIRN_EINVAL;
  for (size_t i = 0; i < idlen; i++)
    if (cfg->server_id[i] < 0x21 || cfg->server_id[i] > 0x7e) return CAIRN_EINVAL;
  char host[256];
  int port;
  struct sockaddr_storage sa;
  if (cs__dp_split_addr(cfg->listen, host, sizeof host, &port) < 0) return CAIRN_EINVAL;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
    return CAIRN_EINVAL;

  /* libuv writes with writev(2): a peer that resets the connection would
   * raise SIGPIPE and kill the process. Ignore it unless the process chose
   * a handler of its own. */
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);

  cs_dataplane *dp = cmn_calloc(1, sizeof *dp);
  dp->loop = loop;
  dp->secret = cmn_strdup(cfg->secret);
  dp->server_id = cmn_strdup(cfg->server_id);
  dp->store = cfg->store;
  dp->push = cfg->push;
  dp->max_conns = cfg->max_conns ? cfg->max_conns : 256;
  dp->idle_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : 60000;
  dp->io_ms = cfg->io_timeout_ms ? cfg->io_timeout_ms : 10000;
  dp->expire_ms = cfg->expire_interval_ms ? cfg->expire_interval_ms : 1000;
  dp->fwd_max = cfg->forward_queue_max ? cfg->forward_queue_max : (4u << 20);
  dp->stage_sync = cfg->stage_sync_bytes ? cfg->stage_sync_bytes : CS__DP_STAGE_SYNC;
  dp->read_max = cfg->read_queue_max ? cfg->read_queue_max : (4u << 20);
  register_metrics(dp, cfg->metrics);

  int rc = 0;
  uv_tcp_init(loop, &dp->listener);
  dp->listener.data = dp;
  uv_timer_init(loop, &dp->expire_timer);
  dp->expire_timer.data = dp;
  dp->refs = 2;
  int uvrc = uv_tcp_bind(&dp->listener, (const struct sockaddr *)&sa, 0);
  if (uvrc == 0) uvrc = uv_listen((uv_stream_t *)&dp->listener, 128, on_connection);
  if (uvrc != 0) {
    CMN_ERROR(CS__DP_LOG, "cannot listen addr=%s reason=\"%s\"", cfg->listen, uv_strerror(uvrc));
    rc = CAIRN_EIO;
    goto fail;
  }
  struct sockaddr_storage bound;
  int blen = sizeof bound;
  uv_tcp_getsockname(&dp->listener, (struct sockaddr *)&bound, &blen);
  dp->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                               : ((struct sockaddr_in *)&bound)->sin_port);
  if (dp->expire_ms > 0)
    uv_timer_start(&dp->expire_timer, on_expire, (uint64_t)dp->expire_ms,
                   (uint64_t)dp->expire_ms);
  CMN_INFO(CS__DP_LOG, "listening addr=%s port=%d id=%s", cfg->listen, dp->port, dp->server_id);
  *out = dp;
  return 0;
fail:
  cs_dataplane_stop(dp);
  return rc;
}

int cs_dataplane_port(const cs_dataplane *dp) { return dp ? dp->port : 0; }

void cs_dataplane_get_stats(const cs_dataplane *dp, cs_dataplane_stats *out) {
  if (!dp || !out) return;
  const uint64_t *src = (const uint64_t *)&dp->st;
  uint64_t *dst = (uint64_t *)out;
  for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
    dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

void cs_dataplane_stop(cs_dataplane *dp) {
  if (!dp || dp->stopping) return;
  dp->stopping = true;
  uv_close((uv_handle_t *)&dp->listener, on_dp_handle_closed);
  uv_close((uv_handle_t *)&dp->expire_timer, on_dp_handle_closed);
  while (dp->conns) conn_close(dp->conns);
}
