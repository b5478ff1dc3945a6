/*
 * dpclient.c - the blocking data-plane client (see cmn_dpclient.h).
 *
 * The socket is non-blocking and every wait is a poll() bounded by the
 * connection's timeout, so one slow server can never hold a caller beyond
 * it. Received bytes go through the frame parser of cmn_frame.h from an
 * input buffer; next_event() hands out one event at a time (a control
 * frame or a piece of a data frame), valid until the next call.
 *
 * While a push streams its data the server normally says nothing; when it
 * does, it is an ERROR before it closes (push refused, bad frame). So the
 * sender looks for input before every frame and whenever the socket is not
 * writable, and stops at once with the server's code instead of writing
 * into a connection that is going away.
 */
#include "cmn_dpclient.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_frame.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define DP_INBUF (256u << 10)
#define DP_INPUT 1 /* send_all: the server sent something */

struct cmn_dp_conn {
  int fd;
  int timeout_ms;
  char *secret;
  cmn_frame_parser *parser;
  uint8_t *in;
  size_t in_pos, in_len;
  bool broken;
  char err[384];
  char server_id[CMN_FRAME_SERVER_ID_MAX + 1];
  /* the push in progress */
  bool pushing;
  uint8_t push_id[CMN_FRAME_DATA_ID_SIZE];
  uint64_t push_total, push_sent;
};

/* ------------------------------------------------------------ errors */

__attribute__((format(printf, 3, 4))) static int set_err(cmn_dp_conn *c, int code,
                                                         const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  return code;
}

/* An error after which the stream is out of sync: the connection is dead. */
__attribute__((format(printf, 3, 4))) static int fatal(cmn_dp_conn *c, int code,
                                                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof c->err, fmt, ap);
  va_end(ap);
  c->broken = true;
  c->pushing = false;
  return code;
}

static int usable(cmn_dp_conn *c) {
  if (!c) return CAIRN_EINVAL;
  if (c->broken) return CAIRN_ECLOSED; /* keep the message of the first error */
  c->err[0] = '\0';
  return 0;
}

const char *cmn_dp_error(const cmn_dp_conn *c) { return c ? c->err : ""; }
const char *cmn_dp_server_id(const cmn_dp_conn *c) { return c ? c->server_id : ""; }

void cmn_dp_set_timeout(cmn_dp_conn *c, int timeout_ms) {
  if (c && timeout_ms > 0) c->timeout_ms = timeout_ms;
}

/* ------------------------------------------------------------ I/O */

/* poll() for `events`, bounded by the timeout. Returns revents, or a code. */
static int wait_fd(cmn_dp_conn *c, short events, const char *what) {
  struct pollfd p = {.fd = c->fd, .events = events};
  for (;;) {
    int n = poll(&p, 1, c->timeout_ms);
    if (n > 0) return p.revents;
    if (n == 0)
      return fatal(c, CAIRN_ETIMEDOUT, "no progress for %d ms while %s", c->timeout_ms, what);
    if (errno != EINTR) return fatal(c, CAIRN_EIO, "poll: %s", strerror(errno));
  }
}

/* 1 when the server has sent something (or closed) right now. */
static int input_pending(cmn_dp_conn *c) {
  if (c->in_pos < c->in_len) return 1;
  struct pollfd p = {.fd = c->fd, .events = POLLIN};
  return poll(&p, 1, 0) > 0;
}

/*
 * Send every byte of the iovecs. With `watch`, return DP_INPUT as soon as
 * the server sends something while the socket is not writable (the caller
 * reads it: an ERROR explains why the server stopped reading).
 */
static int send_all(cmn_dp_conn *c, struct iovec *iov, int n, bool watch) {
  while (n > 0) {
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
    ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        int ev = wait_fd(c, (short)(POLLOUT | (watch ? POLLIN : 0)), "sending");
        if (ev < 0) return ev;
        if (watch && (ev & (POLLIN | POLLHUP | POLLERR)) && !(ev & POLLOUT)) return DP_INPUT;
        continue;
      }
      if (watch && (errno == EPIPE || errno == ECONNRESET)) return DP_INPUT; /* read why */
      return fatal(c, errno == EPIPE || errno == ECONNRESET ? CAIRN_ECLOSED : CAIRN_EIO,
                   "send: %s", strerror(errno));
    }
    size_t left = (size_t)w;
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      iov++;
      n--;
    }
    if (n > 0) {
      iov->iov_base = (uint8_t *)iov->iov_base + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

static int send_frame(cmn_dp_conn *c, const void *buf, size_t len) {
  struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
  return send_all(c, &iov, 1, false);
}

/*
 * The next event from the server: 1 with *f filled (pointing into the
 * connection's buffers, valid until the next call), or a fatal code. An
 * ERROR frame is returned as an event like any other.
 */
static int next_event(cmn_dp_conn *c, cmn_frame *f, const char *what) {
  for (;;) {
    if (c->in_pos < c->in_len) {
      size_t used = 0;
      int rc = cmn_frame_feed(c->parser, c->in + c->in_pos, c->in_len - c->in_pos, &used, f);
      c->in_pos += used;
      if (rc < 0)
        return fatal(c, rc, "bad frame from the server: %s", cmn_frame_parser_error(c->parser));
      if (rc == 1) return 1;
    }
    c->in_pos = c->in_len = 0;
    ssize_t r = recv(c->fd, c->in, DP_INBUF, 0);
    if (r > 0) {
      c->in_len = (size_t)r;
      continue;
    }
    if (r == 0) return fatal(c, CAIRN_ECLOSED, "server closed the connection while %s", what);
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return fatal(c, errno == ECONNRESET ? CAIRN_ECLOSED : CAIRN_EIO, "recv while %s: %s", what,
                   strerror(errno));
    int ev = wait_fd(c, POLLIN, what);
    if (ev < 0) return ev;
  }
}

/* An ERROR frame ends the connection with the server's code and message. */
static int peer_error(cmn_dp_conn *c, const cmn_frame *f) {
  cmn_frame_error e;
  char why[128];
  if (cmn_frame_decode_error(f->payload, f->len, &e, why, sizeof why) < 0)
    return fatal(c, CAIRN_EPROTO, "malformed ERROR frame: %s", why);
  return fatal(c, e.code, "server error %s: %s", cairn_err_name(e.code), e.message);
}

static int unexpected(cmn_dp_conn *c, const cmn_frame *f, const char *what) {
  if (f->type == CMN_FRAME_ERROR) return peer_error(c, f);
  return fatal(c, CAIRN_EPROTO, "unexpected %s frame while %s", cmn_frame_type_name(f->type),
               what);
}

/* The server sent something in the middle of a push: read it and fail. */
static int push_interrupted(cmn_dp_conn *c) {
  cmn_frame f;
  int rc = next_event(c, &f, "pushing");
  if (rc < 0) return rc;
  return unexpected(c, &f, "pushing");
}

/* ------------------------------------------------------------ connect */

/* Resolve and connect with a bounded wait; leaves c->fd open on success. */
static int dial(cmn_dp_conn *c, const char *addr) {
  const char *colon = strrchr(addr, ':');
  if (!colon || colon == addr || !colon[1]) return set_err(c, CAIRN_EINVAL, "bad address %s", addr);
  const char *h = addr, *e = colon;
  if (*h == '[' && e[-1] == ']') {
    h++;
    e--;
  }
  char host[256];
  if ((size_t)(e - h) >= sizeof host || e == h)
    return set_err(c, CAIRN_EINVAL, "bad address %s", addr);
  memcpy(host, h, (size_t)(e - h));
  host[e - h] = '\0';
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int g = getaddrinfo(host, colon + 1, &hints, &res);
  if (g != 0) return set_err(c, CAIRN_EUNAVAIL, "cannot resolve %s: %s", addr, gai_strerror(g));
  int rc = CAIRN_EUNAVAIL;
  for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    c->fd = fd;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        rc = set_err(c, CAIRN_EUNAVAIL, "connect to %s: %s", addr, strerror(errno));
        goto next;
      }
      int ev = wait_fd(c, POLLOUT, "connecting");
      if (ev < 0) {
        rc = ev;
        c->broken = false;
        goto next;
      }
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
      if (soerr) {
        rc = set_err(c, CAIRN_EUNAVAIL, "connect to %s: %s", addr, strerror(soerr));
        goto next;
      }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    freeaddrinfo(res);
    return 0;
  next:
    close(fd);
    c->fd = -1;
  }
  freeaddrinfo(res);
  return rc;
}

/* Client side of the handshake: HELLO in, AUTH out, AUTH_OK in. */
static int handshake(cmn_dp_conn *c, const char *expect_id) {
  cmn_frame_hs hs;
  int rc = cmn_frame_hs_client_start(&hs, c->secret, expect_id);
  if (rc < 0) return set_err(c, rc, "bad server id to expect");
  uint8_t out[CMN_FRAME_CTRL_FRAME_MAX];
  for (;;) {
    cmn_frame f;
    rc = next_event(c, &f, "handshaking");
    if (rc < 0) return rc;
    size_t n = 0;
    rc = cmn_frame_hs_on_frame(&hs, &f, out, sizeof out, &n);
    if (rc < 0) return fatal(c, rc, "handshake: %s", hs.errmsg);
    if (n) {
      int s = send_frame(c, out, n);
      if (s < 0) return s;
    }
    if (rc == 1) break;
  }
  memcpy(c->server_id, hs.server_id, sizeof c->server_id);
  return 0;
}

int cmn_dp_connect_ex(const char *addr, const char *secret, const char *expect_server_id,
                      int timeout_ms, char *err, size_t errlen, cmn_dp_conn **out) {
  if (err && errlen) err[0] = '\0';
  if (!addr || !secret || !secret[0] || timeout_ms <= 0 || !out) {
    if (err && errlen) snprintf(err, errlen, "invalid argument");
    return CAIRN_EINVAL;
  }
  cmn_dp_conn *c = cmn_calloc(1, sizeof *c);
  c->fd = -1;
  c->timeout_ms = timeout_ms;
  c->secret = cmn_strdup(secret);
  c->in = cmn_malloc(DP_INBUF);
  int rc = cmn_frame_parser_new(0, &c->parser);
  if (rc < 0) goto fail;
  rc = dial(c, addr);
  if (rc < 0) goto fail;
  rc = handshake(c, expect_server_id);
  if (rc < 0) goto fail;
  c->err[0] = '\0';
  *out = c;
  return 0;
fail:
  if (err && errlen) snprintf(err, errlen, "%s", c->err[0] ? c->err : cairn_strerror(rc));
  cmn_dp_close(c);
  return rc;
}

int cmn_dp_connect(const char *addr, const char *secret, int timeout_ms, cmn_dp_conn **out) {
  return cmn_dp_connect_ex(addr, secret, NULL, timeout_ms, NULL, 0, out);
}

void cmn_dp_close(cmn_dp_conn *c) {
  if (!c) return;
  if (c->fd >= 0) close(c->fd);
  cmn_frame_parser_free(c->parser);
  free(c->in);
  free(c->secret);
  free(c);
}

int cmn_dp_ping(cmn_dp_conn *c) {
  int rc = usable(c);
  if (rc < 0 || c->pushing) return rc < 0 ? rc : set_err(c, CAIRN_EINVAL, "a push is open");
  cmn_frame_ping ping = {.token = (uint64_t)cmn_mono_ns()};
  uint8_t buf[64];
  int n = cmn_frame_encode_ping(&ping, buf, sizeof buf);
  if ((rc = send_frame(c, buf, (size_t)n)) < 0) return rc;
  cmn_frame f;
  if ((rc = next_event(c, &f, "waiting for PONG")) < 0) return rc;
  if (f.type != CMN_FRAME_PONG) return unexpected(c, &f, "waiting for PONG");
  cmn_frame_ping pong;
  char why[128];
  if (cmn_frame_decode_pong(f.payload, f.len, &pong, why, sizeof why) < 0 ||
      pong.token != ping.token)
    return fatal(c, CAIRN_EPROTO, "bad PONG");
  return 0;
}

/* ------------------------------------------------------------ push */

int cmn_dp_push_begin(cmn_dp_conn *c, const uint8_t id[16], uint64_t total, uint32_t crc,
                      const char *const *chain, size_t nchain) {
  return cmn_dp_push_begin_at(c, id, total, crc, chain, nchain, NULL);
}

int cmn_dp_push_begin_at(cmn_dp_conn *c, const uint8_t id[16], uint64_t total, uint32_t crc,
                         const char *const *chain, size_t nchain, const cmn_frame_place *place) {
  int rc = usable(c);
  if (rc < 0) return rc;
  if (c->pushing) return set_err(c, CAIRN_EINVAL, "a push is already open");
  if (!id || (nchain && !chain) || nchain > CMN_FRAME_CHAIN_MAX)
    return set_err(c, CAIRN_EINVAL, "bad push arguments");
  cmn_frame_push_begin *b = cmn_calloc(1, sizeof *b);
  memcpy(b->data_id, id, sizeof b->data_id);
  b->total_len = total;
  b->crc32c = crc;
  b->chain_count = (uint32_t)nchain;
  for (size_t i = 0; i < nchain; i++) {
    if (!chain[i] || strlen(chain[i]) > CMN_FRAME_ADDR_MAX) {
      free(b);
      return set_err(c, CAIRN_EINVAL, "bad chain entry %zu", i);
    }
    strcpy(b->chain[i], chain[i]);
  }
  if (place) {
    b->has_place = true;
    b->place = *place;
  }
  uint8_t frame[CMN_FRAME_CTRL_FRAME_MAX];
  int n = cmn_frame_encode_push_begin(b, frame, sizeof frame);
  free(b);
  if (n < 0)
    return set_err(c, CAIRN_EINVAL,
                   "invalid push (zero id, length 0 or over %llu, bad chain or placement)",
                   (unsigned long long)CMN_FRAME_CHUNK_MAX);
  if ((rc = send_frame(c, frame, (size_t)n)) < 0) return rc;
  c->pushing = true;
  memcpy(c->push_id, id, sizeof c->push_id);
  c->push_total = total;
  c->push_sent = 0;
  return 0;
}

int cmn_dp_push_write(cmn_dp_conn *c, const void *data, size_t len) {
  int rc = usable(c);
  if (rc < 0) return rc;
  if (!c->pushing) return set_err(c, CAIRN_EINVAL, "no push is open");
  if ((!data && len) || len > c->push_total - c->push_sent)
    return set_err(c, CAIRN_EINVAL, "write past the announced %llu bytes",
                   (unsigned long long)c->push_total);
  const uint8_t *p = data;
  while (len > 0) {
    if (input_pending(c)) return push_interrupted(c);
    size_t n = CMN_MIN(len, (size_t)CMN_FRAME_DATA_MAX);
    uint8_t hdr[CMN_FRAME_HEADER_SIZE];
    cmn_frame_encode_data_header(CMN_FRAME_PUSH_DATA, p, n, hdr);
    struct iovec iov[2] = {{.iov_base = hdr, .iov_len = sizeof hdr},
                           {.iov_base = (void *)p, .iov_len = n}};
    rc = send_all(c, iov, 2, true);
    if (rc == DP_INPUT) return push_interrupted(c);
    if (rc < 0) return rc;
    p += n;
    len -= n;
    c->push_sent += n;
  }
  return 0;
}

/* Send PUSH_END with `status` and wait for the matching PUSH_ACK. */
static int push_end(cmn_dp_conn *c, int status) {
  cmn_frame_push_end e;
  memcpy(e.data_id, c->push_id, sizeof e.data_id);
  e.status = status;
  e.bytes = c->push_sent;
  uint8_t buf[64];
  int n = cmn_frame_encode_push_end(&e, buf, sizeof buf);
  if (n < 0) return set_err(c, CAIRN_EINVAL, "bad abort code %d", status);
  if (input_pending(c)) return push_interrupted(c);
  int rc = send_frame(c, buf, (size_t)n);
  if (rc < 0) return rc;
  c->pushing = false;
  cmn_frame f;
  if ((rc = next_event(c, &f, "waiting for PUSH_ACK")) < 0) return rc;
  if (f.type != CMN_FRAME_PUSH_ACK) return unexpected(c, &f, "waiting for PUSH_ACK");
  cmn_frame_push_end ack;
  char why[128];
  if (cmn_frame_decode_push_ack(f.payload, f.len, &ack, why, sizeof why) < 0)
    return fatal(c, CAIRN_EPROTO, "malformed PUSH_ACK: %s", why);
  if (memcmp(ack.data_id, c->push_id, sizeof ack.data_id) != 0)
    return fatal(c, CAIRN_EPROTO, "PUSH_ACK for another data id");
  if (ack.status < 0)
    return set_err(c, ack.status, "push failed along the chain: %s (%s)",
                   cairn_err_name(ack.status), cairn_strerror(ack.status));
  return 0;
}

int cmn_dp_push_finish(cmn_dp_conn *c) {
  int rc = usable(c);
  if (rc < 0) return rc;
  if (!c->pushing) return set_err(c, CAIRN_EINVAL, "no push is open");
  if (c->push_sent != c->push_total)
    return set_err(c, CAIRN_EINVAL, "only %llu of %llu bytes written",
                   (unsigned long long)c->push_sent, (unsigned long long)c->push_total);
  return push_end(c, 0);
}

int cmn_dp_push_abort(cmn_dp_conn *c, int code) {
  int rc = usable(c);
  if (rc < 0) return rc;
  if (!c->pushing || code >= 0) return set_err(c, CAIRN_EINVAL, "no push is open, or code >= 0");
  rc = push_end(c, code);
  return rc == code ? 0 : rc;
}

int cmn_dp_push(cmn_dp_conn *c, const uint8_t id[16], const void *data, size_t len,
                const char *const *chain, size_t nchain) {
  return cmn_dp_push_at(c, id, data, len, chain, nchain, NULL);
}

int cmn_dp_push_at(cmn_dp_conn *c, const uint8_t id[16], const void *data, size_t len,
                   const char *const *chain, size_t nchain, const cmn_frame_place *place) {
  if (!c || (!data && len)) return c ? set_err(c, CAIRN_EINVAL, "no data") : CAIRN_EINVAL;
  int rc = cmn_dp_push_begin_at(c, id, len, cmn_crc32c(0, data, len), chain, nchain, place);
  if (rc == 0) rc = cmn_dp_push_write(c, data, len);
  if (rc == 0) rc = cmn_dp_push_finish(c);
  return rc;
}

/* ------------------------------------------------------------ read, clone */

/* READ_END: the status (stream in sync), or the total if it matches what
 * arrived. */
static int64_t read_end(cmn_dp_conn *c, const cmn_frame *f, uint64_t got, const char *what) {
  cmn_frame_read_end end;
  char why[128];
  if (cmn_frame_decode_read_end(f->payload, f->len, &end, why, sizeof why) < 0)
    return fatal(c, CAIRN_EPROTO, "malformed READ_END: %s", why);
  if (end.status < 0)
    return set_err(c, end.status, "%s refused by the server: %s (%s)", what,
                   cairn_err_name(end.status), cairn_strerror(end.status));
  if (end.total != got)
    return fatal(c, CAIRN_EPROTO, "READ_END says %llu bytes, received %llu",
                 (unsigned long long)end.total, (unsigned long long)got);
  return (int64_t)got;
}

int64_t cmn_dp_read(cmn_dp_conn *c, uint64_t handle, uint64_t version, uint64_t offset,
                    size_t len, void *buf) {
  int rc = usable(c);
  if (rc < 0) return rc;
  if (c->pushing) return set_err(c, CAIRN_EINVAL, "a push is open");
  if (!buf || len == 0 || len > UINT32_MAX)
    return set_err(c, CAIRN_EINVAL, "read length must be 1..%u", UINT32_MAX);
  cmn_frame_read m = {.handle = handle, .version = version, .offset = offset,
                      .length = (uint32_t)len};
  uint8_t frame[64];
  int n = cmn_frame_encode_read(&m, frame, sizeof frame);
  if (n < 0) return set_err(c, CAIRN_EINVAL, "invalid READ (handle, version, range)");
  if ((rc = send_frame(c, frame, (size_t)n)) < 0) return rc;
  uint64_t got = 0;
  for (;;) {
    cmn_frame f;
    if ((rc = next_event(c, &f, "reading")) < 0) return rc;
    if (f.type == CMN_FRAME_READ_END) return read_end(c, &f, got, "read");
    if (f.type != CMN_FRAME_READ_DATA) return unexpected(c, &f, "reading");
    if (f.len > len - got) return fatal(c, CAIRN_EPROTO, "server sent more than asked for");
    memcpy((uint8_t *)buf + got, f.payload, f.len);
    got += f.len;
  }
}

/*
 * Gather each READ_DATA frame whole (it arrives in pieces) and hand it to
 * the callback once its CRC is verified (the parser checks it before the
 * last piece).
 */
int cmn_dp_clone(cmn_dp_conn *c, uint64_t handle, uint64_t version, cmn_dp_piece_fn cb,
                 void *arg, uint64_t *total) {
  int rc = usable(c);
  if (rc < 0) return rc;
  if (c->pushing) return set_err(c, CAIRN_EINVAL, "a push is open");
  if (!cb) return set_err(c, CAIRN_EINVAL, "no callback");
  cmn_frame_clone m = {.handle = handle, .version = version};
  uint8_t frame[64];
  int n = cmn_frame_encode_clone(&m, frame, sizeof frame);
  if (n < 0) return set_err(c, CAIRN_EINVAL, "invalid CLONE (handle, version)");
  uint8_t *piece = malloc(CMN_FRAME_DATA_MAX);
  if (!piece) return set_err(c, CAIRN_ENOMEM, "no memory for a clone buffer");
  uint64_t got = 0;
  if ((rc = send_frame(c, frame, (size_t)n)) < 0) goto done;
  for (;;) {
    cmn_frame f;
    if ((rc = next_event(c, &f, "cloning")) < 0) goto done;
    if (f.type == CMN_FRAME_READ_END) {
      int64_t r = read_end(c, &f, got, "clone");
      rc = r < 0 ? (int)r : 0;
      if (rc == 0 && total) *total = got;
      goto done;
    }
    if (f.type != CMN_FRAME_READ_DATA) {
      rc = unexpected(c, &f, "cloning");
      goto done;
    }
    memcpy(piece + f.offset, f.payload, f.len);
    if (!f.end) continue;
    got += f.frame_len;
    int cbrc = cb(arg, piece, f.frame_len, f.payload_crc);
    if (cbrc != 0) {
      rc = fatal(c, cbrc < 0 ? cbrc : CAIRN_ECANCELED, "clone stopped by the receiver: %s",
                 cairn_strerror(cbrc));
      goto done;
    }
  }
done:
  free(piece);
  return rc;
}
