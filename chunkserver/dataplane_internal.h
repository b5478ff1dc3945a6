/*
 * dataplane_internal.h - what dataplane.c (listener, connections,
 * handshake, dispatch, lifetimes), dataplane_push.c (pushes and their
 * forwarding to the next hop) and dataplane_read.c (READ and CLONE on the
 * thread pool) share. Not part of the chunkserver's interface.
 *
 * Lifetimes. Everything here lives on the loop thread.
 *   - A connection (cs__dp_conn) counts what may still call back into it in
 *     `refs`: its two handles (tcp, timer) until their close callbacks, and
 *     thread-pool work in flight. It is freed when the count drops to zero,
 *     which only happens after cs__dp_conn_close.
 *   - A next-hop connection (cs__dp_down) belongs to the push of one
 *     upstream connection; it counts its handles and its getaddrinfo request
 *     the same way. Closing the upstream connection closes it; a next hop
 *     that finishes or fails reports to its upstream and closes itself.
 *   - The data plane counts its own handles plus every live conn and down;
 *     after cs_dataplane_stop it frees itself when that count reaches zero.
 * libuv calls write callbacks (with UV_ECANCELED when the handle closes)
 * before the close callback, so a write request may point at its stream's
 * owner.
 */
#ifndef CS_DATAPLANE_INTERNAL_H
#define CS_DATAPLANE_INTERNAL_H

#include "cs_dataplane.h"

#include "cmn_frame.h"
#include "cmn_util.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define CS__DP_LOG "dataplane"
#define CS__DP_RBUF (128u << 10)  /* read buffer of an upstream connection */
#define CS__DP_LINGER_MS 2000     /* lingering close after an ERROR */
#define CS__DP_PEER_MAX 64
#define CS__DP_STAGE_MIN (256u << 10) /* smaller pushes are not staged */
/* Default interval of the sync job beside a stage's writes. Measured on
 * the benchmark machine (a virtual disk whose flushes cost in proportion
 * to the bytes they flush), single 64 MiB writes: p50 374-381 ms, against
 * 384-427 ms with the syncs in the writer's own job (which then spent a
 * third of the stage's time in them) and 427-473 ms with one flush in the
 * prepare. */
#define CS__DP_STAGE_SYNC (8u << 20)

typedef struct cs__dp_conn cs__dp_conn;
typedef struct cs__dp_down cs__dp_down;
typedef struct cs__dp_read cs__dp_read;
typedef struct cs__dp_stager cs__dp_stager;

/* What a connection is doing. */
typedef enum cs__dp_state {
  CS__DP_HANDSHAKE = 0, /* HELLO sent, waiting for AUTH */
  CS__DP_READY,         /* authenticated, idle */
  CS__DP_PUSH,          /* between PUSH_BEGIN and PUSH_END */
  CS__DP_PUSH_ACK,      /* PUSH_END received, waiting for the next hop's ACK */
  CS__DP_READ,          /* READ or CLONE in progress */
  CS__DP_LINGER,        /* ERROR sent; discarding input until close */
  CS__DP_CLOSED,        /* handles closing */
} cs__dp_state;

/* Error kinds for metrics and logs. */
typedef enum cs__dp_err_kind {
  CS__DP_ERR_PROTOCOL = 0,
  CS__DP_ERR_AUTH,
  CS__DP_ERR_CHECKSUM,
  CS__DP_ERR_BUSY,
  CS__DP_ERR_TIMEOUT,
  CS__DP_ERR_NEXT_HOP,
  CS__DP_ERR_IO,
  CS__DP_ERR_COUNT
} cs__dp_err_kind;

struct cs_dataplane {
  uv_loop_t *loop;
  uv_tcp_t listener;
  uv_timer_t expire_timer;
  char *secret;
  char *server_id;
  cs_store *store;
  cs_pushbuf *push;
  int max_conns;
  int64_t idle_ms, io_ms, expire_ms;
  size_t fwd_max, read_max;
  size_t stage_sync; /* bytes staged between two sync jobs */
  int port;
  bool stopping;
  bool reaping;         /* a cs_store_stage_reap job is on the thread pool */
  uv_work_t reap_work;
  int refs;             /* open handles + live conns + live downs */
  cs__dp_conn *conns;   /* live connections (doubly linked) */
  uint64_t nconns;      /* in the list */
  cs_dataplane_stats st; /* updated with __atomic builtins */
  /* metrics, all NULL without a registry */
  cmn_counter *m_bytes_in, *m_bytes_fwd, *m_bytes_read;
  cmn_counter *m_accepted, *m_push_ok, *m_push_failed, *m_stage_syncs;
  cmn_gauge *m_open;
  cmn_counter *m_err[CS__DP_ERR_COUNT];
};

struct cs__dp_conn {
  uv_tcp_t tcp;
  uv_timer_t timer; /* idle timeout, then the linger deadline */
  cs_dataplane *dp;
  cs__dp_conn *prev, *next;
  int refs;
  cs__dp_state state;
  bool reading;  /* uv_read_start is in effect */
  char peer[CS__DP_PEER_MAX];
  cmn_frame_parser *parser;
  cmn_frame_hs hs;
  uint8_t *rbuf;
  /* the push in progress (PUSH, PUSH_ACK) */
  cs_push *push;
  uint8_t push_id[CMN_FRAME_DATA_ID_SIZE];
  uint64_t push_total, push_got;
  int push_status; /* this server's result, once PUSH_END came */
  int down_status; /* the chain's result, once known */
  cs__dp_down *down;
  cs__dp_stager *stager; /* NULL when the push is not staged */
  /* the read in progress (READ) */
  cs__dp_read *rd;
};

/* ---- dataplane.c ---- */

void cs__dp_ref(cs_dataplane *dp);
void cs__dp_unref(cs_dataplane *dp);
void cs__dp_conn_unref(cs__dp_conn *c);

/* Count an error of `kind` (metrics and stats). */
void cs__dp_count_error(cs_dataplane *dp, cs__dp_err_kind kind);
void cs__dp_stat_add(uint64_t *field, uint64_t n);

/* Record progress on `c` (restarts its idle timer). */
void cs__dp_conn_touch(cs__dp_conn *c);

/* Send a control frame already encoded in `frame` (copied). Failures close
 * the connection. Returns 0 or a negative code. */
int cs__dp_conn_send(cs__dp_conn *c, const void *frame, size_t len);

/* Send a data frame: `hdr` (copied) then `data`, whose ownership passes to
 * the write (freed when it completes). On failure `data` is freed too. */
int cs__dp_conn_send_data(cs__dp_conn *c, const uint8_t hdr[CMN_FRAME_HEADER_SIZE], void *data,
                          size_t len);

/* Close `c` for a fault: log `peer=... reason=...`, count it, send an ERROR
 * frame with `code` and the reason, then linger-close. Stops any push or
 * read in progress. Safe to call more than once. */
void cs__dp_conn_fail(cs__dp_conn *c, int code, cs__dp_err_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Start or stop reading from upstream after a change in the next hop's
 * queue, this connection's own write queue, or its state. */
void cs__dp_conn_flow(cs__dp_conn *c);

/* Generic write request: one malloc'd block, or a header plus owned data.
 * `done` (may be NULL) runs on completion with the libuv status. */
typedef void (*cs__dp_write_done)(void *arg, int status);
int cs__dp_write(uv_stream_t *s, const void *a, size_t alen, const void *b, size_t blen,
                 void *owned, cs__dp_write_done done, void *arg);

/* Split "host:port" / "[v6]:port" into a numeric-or-name host and a port. */
int cs__dp_split_addr(const char *addr, char *host, size_t hostcap, int *port);

/* ---- dataplane_push.c ---- */

void cs__dp_push_begin(cs__dp_conn *c, const cmn_frame *f);
void cs__dp_push_data(cs__dp_conn *c, const cmn_frame *f);
void cs__dp_push_end(cs__dp_conn *c, const cmn_frame *f);
/* The connection is going away: cancel the push and close the next hop. */
void cs__dp_push_abort(cs__dp_conn *c);
/* True when reading from upstream must wait for the next hop. */
bool cs__dp_push_blocked(const cs__dp_conn *c);

/* ---- dataplane_stage.c ---- */

/* Stage the bytes of `push` (`total` long) where `place` says they will
 * land; NULL when not worth it (small push) or there is no store. */
cs__dp_stager *cs__dp_stage_start(cs_dataplane *dp, cs_push *push, const cmn_frame_place *place,
                                  uint64_t total);
/* [0, have) of the push are in the push buffer. */
void cs__dp_stage_feed(cs__dp_stager *g, uint64_t have);
/* The connection is done with the push: `complete` when every byte came
 * and verified, else staging stops. The stager is no longer the caller's. */
void cs__dp_stage_detach(cs__dp_stager *g, bool complete);
/* Expiry tick: cut off stages idle for longer than the push TTL. */
void cs__dp_stage_reap(cs_dataplane *dp);

/* ---- dataplane_read.c ---- */

/* READ or CLONE frame received in READY. */
void cs__dp_read_start(cs__dp_conn *c, const cmn_frame *f);
/* A write of this connection completed: queue the next piece if room. */
void cs__dp_read_pump(cs__dp_conn *c);
/* The connection is going away: abandon the read (work in flight keeps the
 * connection alive until it returns). */
void cs__dp_read_abort(cs__dp_conn *c);

#endif /* CS_DATAPLANE_INTERNAL_H */
