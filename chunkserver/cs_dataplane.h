/*
 * cs_dataplane.h - the chunkserver's data plane: a TCP server on a libuv
 * loop speaking the frames of cmn_frame.h (default port 8080).
 *
 * Every connection starts with the server side of the HMAC handshake on the
 * cluster secret (HELLO -> AUTH -> AUTH_OK): no secret, no data. Then the
 * connection carries one operation at a time:
 *
 *   PUSH   PUSH_BEGIN reserves the announced length in the push buffer and,
 *          when the chain is not empty, connects to the next server (client
 *          handshake with the same secret) and sends it PUSH_BEGIN with the
 *          chain minus itself. Each PUSH_DATA piece is appended to the push
 *          buffer and forwarded downstream as it arrives (GFS §3.2
 *          pipelining), reusing the incoming frame header so the next server
 *          checks the same CRC. When more than `forward_queue_max` bytes wait
 *          to be written downstream, reading from upstream stops until they
 *          drain: memory per push connection stays bounded. PUSH_END
 *          finishes the push locally (length + CRC32C), waits for the next
 *          server's PUSH_ACK, then answers PUSH_ACK with the status: 0 only
 *          if this server and every server after it got the bytes intact,
 *          else the first error along the chain (this server's own, then the
 *          next hop's: its code, CAIRN_EUNAVAIL when it cannot be reached,
 *          CAIRN_ETIMEDOUT when it stops making progress, CAIRN_ECLOSED when
 *          it went away). A failed next hop does not stop the push here: the
 *          bytes stay usable on this server and the rest of the push is
 *          still received; only the status reports the failure.
 *   READ   READ_DATA frames (1 MiB each) then READ_END {status, total}. The
 *          store is read on the libuv thread pool, one piece at a time per
 *          connection, with at most `read_queue_max` bytes queued for
 *          writing. A checksum failure ends the read with READ_END
 *          {CAIRN_ECHECKSUM}: the bad piece is never sent. Reads past the
 *          committed length are short; past the chunk size, CAIRN_ERANGE.
 *   CLONE  the whole committed replica, answered like a READ from 0 to its
 *          committed length (READ_END carries the total).
 *   PING   answered with PONG, at any time after the handshake.
 *
 * Refusals and faults. A push refused at PUSH_BEGIN (CAIRN_EBUSY over the
 * budget, CAIRN_EEXIST for an id in use, CAIRN_EINVAL) gets an ERROR frame
 * and the connection is then closed, as for every ERROR (the client may
 * already be streaming the data; the server stops reading it). Garbage,
 * short or oversized frames, bad CRCs, a failed handshake and frames out of
 * state (data before PUSH_BEGIN, a second handshake, a READ during a push)
 * also get an ERROR frame (when the stream is still in sync enough to send
 * one) and close the connection, with a log line `peer=... reason=...`; the
 * server keeps serving every other connection. To let the peer read that
 * ERROR before the close, the server shuts its side down and discards input
 * for up to two seconds (a lingering close). A connection with no progress
 * for `idle_timeout_ms` is closed; a push in progress on it is cancelled.
 *
 * Threads: every function runs on the loop's thread, except
 * cs_dataplane_port and cs_dataplane_get_stats (any thread, until stop).
 */
#ifndef CS_DATAPLANE_H
#define CS_DATAPLANE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cmn_metrics.h"
#include "cs_pushbuf.h"
#include "cs_store.h"

typedef struct cs_dataplane cs_dataplane;

typedef struct cs_dataplane_config {
  const char *listen;         /* "host:port" with a numeric host ("0.0.0.0:8080",
                               * "[::1]:0"); port 0 picks a free port */
  const char *secret;         /* cluster secret, non-empty; copied */
  const char *server_id;      /* sent in HELLO: 1..64 bytes of 0x21..0x7e; copied */
  cs_store *store;            /* borrowed: must outlive the data plane */
  cs_pushbuf *push;           /* borrowed: must outlive the data plane */
  cmn_metrics *metrics;       /* optional; must outlive the data plane */
  int max_conns;              /* 0: 256. Over it a new connection gets ERROR
                               * CAIRN_EBUSY and is closed */
  int64_t idle_timeout_ms;    /* 0: 60 s. A connection without progress is closed */
  int64_t io_timeout_ms;      /* 0: 10 s. Deadline of a new connection's handshake, and
                               * bound on connecting to, handshaking with, writing to
                               * and waiting for the ACK of a next hop */
  int64_t expire_interval_ms; /* 0: 1 s; < 0: never. Period of cs_pushbuf_expire */
  size_t forward_queue_max;   /* 0: 4 MiB. Bytes queued to a next hop before
                               * reading from upstream pauses */
  size_t read_queue_max;      /* 0: 4 MiB. Bytes of READ_DATA queued per connection */
  size_t stage_sync_bytes;    /* 0: 8 MiB. A staged push is synced to disk every this
                               * many bytes while it arrives (dataplane_stage.c) */
} cs_dataplane_config;

/* Counters since start (any thread may read them, until stop). */
typedef struct cs_dataplane_stats {
  uint64_t conns_accepted;  /* connections accepted */
  uint64_t conns_open;      /* connections open now */
  uint64_t push_bytes_in;   /* bytes appended to the push buffer */
  uint64_t push_bytes_fwd;  /* bytes forwarded to next hops (payload) */
  uint64_t read_bytes_out;  /* READ_DATA payload bytes sent */
  uint64_t pushes_ok;       /* pushes acknowledged with status 0 */
  uint64_t pushes_failed;   /* pushes acknowledged with an error, or refused */
  uint64_t errors;          /* connections closed for a fault or timeout */
  uint64_t stage_syncs;     /* staged bytes made durable while their push arrived */
} cs_dataplane_stats;

/*
 * Bind, listen and start serving on `loop` (call from the loop's thread, or
 * before the loop runs). `cfg` and its strings are read during the call
 * only (the store, push buffer and registry are borrowed). On success *out
 * is the running data plane, released by cs_dataplane_stop. On failure the
 * callback rule of libuv holds (nothing runs later) but the loop must still
 * run once (uv_run) to release the handles that were opened, as after stop.
 * Errors: CAIRN_EINVAL (bad config or address), CAIRN_EIO (bind or listen
 * failed: the message is logged; the port may be in use).
 * Side effect: SIGPIPE is set to SIG_IGN when its disposition is the
 * default (libuv writes with writev(2); a peer that resets a connection
 * must not kill the server). A handler the process installed is kept.
 */
int cs_dataplane_start(uv_loop_t *loop, const cs_dataplane_config *cfg, cs_dataplane **out);

/* The bound port (useful after port 0). Any thread, until stop. */
int cs_dataplane_port(const cs_dataplane *dp);

/* Copy the counters into *out. Any thread, until stop. */
void cs_dataplane_get_stats(const cs_dataplane *dp, cs_dataplane_stats *out);

/*
 * Stop: close the listener and every connection now (pushes in progress
 * are cancelled, reads in flight are abandoned when their thread-pool work
 * returns). The data plane frees itself once all its handles are closed:
 * the loop's owner runs the loop (uv_run(loop, UV_RUN_DEFAULT) returns when
 * nothing is left) before uv_loop_close. `dp` must not be used after the
 * call. Loop thread only. NULL is ignored.
 */
void cs_dataplane_stop(cs_dataplane *dp);

#endif /* CS_DATAPLANE_H */
