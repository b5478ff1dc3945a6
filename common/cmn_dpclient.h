/*
 * cmn_dpclient.h - a blocking client of the chunkserver data plane (the
 * frames of cmn_frame.h over TCP), on plain POSIX sockets: no event loop.
 * Chunkservers use it to fetch CLONEs; the client library uses it from its
 * own threads to push and read.
 *
 * A connection is authenticated once (the HMAC handshake on the cluster
 * secret, both ways) and then carries one operation at a time: a push
 * (cmn_dp_push, or begin / write / finish for data that arrives in parts),
 * a read, a clone or a ping.
 *
 * Timeouts: every wait for the network (connect, each send or receive) is
 * bounded by the connection's timeout without progress; exceeding it is
 * CAIRN_ETIMEDOUT. A long transfer that keeps moving never times out.
 *
 * Errors: every function returns 0 (or a count) or a negative cairn code,
 * and cmn_dp_error() describes the last one. Two kinds:
 *   - answers of the server that leave the stream in sync: a push
 *     acknowledged with a nonzero status, a read or clone ended with a
 *     nonzero READ_END status (CAIRN_ECHECKSUM, CAIRN_ENOENT,
 *     CAIRN_ESTALE, ...), and CAIRN_EINVAL for bad arguments (nothing sent).
 *     The connection stays usable.
 *   - everything else (I/O errors, timeouts, malformed or unexpected frames,
 *     an ERROR frame from the server, a callback that stopped a clone): the
 *     connection is broken, every later call returns CAIRN_ECLOSED, and the
 *     caller closes it.
 *
 * Thread safety: a connection is used by one thread at a time; different
 * connections are independent. SIGPIPE is never raised (MSG_NOSIGNAL).
 */
#ifndef CMN_DPCLIENT_H
#define CMN_DPCLIENT_H

#include "cmn_frame.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cmn_dp_conn cmn_dp_conn;

/*
 * Connect to `addr` ("host:port", "[v6]:port"; the host may be a name),
 * set TCP_NODELAY and run the client handshake with `secret` (non-empty;
 * copied). `timeout_ms` (> 0) bounds each wait, and later operations too.
 * On success *out is the caller's (cmn_dp_close).
 * Errors: CAIRN_EINVAL (bad arguments or address), CAIRN_EUNAVAIL (cannot
 * resolve or connect), CAIRN_ETIMEDOUT, CAIRN_EAUTH (wrong secret, either
 * way), CAIRN_EBUSY (the server has too many connections), CAIRN_EPROTO
 * (not a data-plane server), CAIRN_ECLOSED (closed during the handshake).
 */
int cmn_dp_connect(const char *addr, const char *secret, int timeout_ms, cmn_dp_conn **out);

/* cmn_dp_connect that also requires the server to announce the id
 * `expect_server_id` (NULL or "" for any; another id is CAIRN_EAUTH) and
 * writes the failure's message into `err` (NUL-terminated, truncated to
 * `errlen`; NULL/0 for none). */
int cmn_dp_connect_ex(const char *addr, const char *secret, const char *expect_server_id,
                      int timeout_ms, char *err, size_t errlen, cmn_dp_conn **out);

/* Close the socket and free the connection. NULL is fine. */
void cmn_dp_close(cmn_dp_conn *c);

/* The message of the last error ("" if none). Owned by the connection,
 * valid until the next call on it. */
const char *cmn_dp_error(const cmn_dp_conn *c);

/* The id the server announced in its HELLO. Owned by the connection. */
const char *cmn_dp_server_id(const cmn_dp_conn *c);

/* Change the per-wait timeout (> 0 ms). */
void cmn_dp_set_timeout(cmn_dp_conn *c, int timeout_ms);

/* PING / PONG round trip. 0 or a connection error. */
int cmn_dp_ping(cmn_dp_conn *c);

/*
 * Push `len` bytes (1 .. 1 GiB) under the 128-bit id `id` (not all zero) to
 * the server and, through it, to the `nchain` servers of `chain` (each
 * "host:port", at most 15), then wait for the PUSH_ACK. Returns its status:
 * 0 when every server of the chain holds the bytes intact, else the first
 * error along the chain (CAIRN_ECHECKSUM, CAIRN_EUNAVAIL / CAIRN_ETIMEDOUT /
 * CAIRN_ECLOSED for an unreachable next hop, ...; the connection stays
 * usable), or a connection error (CAIRN_EBUSY and CAIRN_EEXIST come as an
 * ERROR frame: the server refused the push and closed). `data` is only
 * read during the call.
 */
int cmn_dp_push(cmn_dp_conn *c, const uint8_t id[16], const void *data, size_t len,
                const char *const *chain, size_t nchain);

/* The same, telling every server where the bytes are expected to land
 * (`place`, may be NULL): a hint that lets them stage the bytes in the
 * replica file while they arrive, so the write that follows has less to do.
 * A wrong hint costs nothing but the staging. */
int cmn_dp_push_at(cmn_dp_conn *c, const uint8_t id[16], const void *data, size_t len,
                   const char *const *chain, size_t nchain, const cmn_frame_place *place);

/* The same push in parts: begin announces `total` bytes and their CRC32C,
 * write sends the next bytes (any sizes; sent as frames of at most 1 MiB),
 * finish sends PUSH_END and returns the PUSH_ACK status as cmn_dp_push.
 * abort ends the push with `code` (negative) instead: the servers drop what
 * they received; returns 0 once they acknowledged, or a connection error.
 * CAIRN_EINVAL (nothing sent): begin during a push, write/finish/abort
 * without one, write past `total`, finish before `total` bytes. */
int cmn_dp_push_begin(cmn_dp_conn *c, const uint8_t id[16], uint64_t total, uint32_t crc,
                      const char *const *chain, size_t nchain);
int cmn_dp_push_begin_at(cmn_dp_conn *c, const uint8_t id[16], uint64_t total, uint32_t crc,
                         const char *const *chain, size_t nchain, const cmn_frame_place *place);
int cmn_dp_push_write(cmn_dp_conn *c, const void *data, size_t len);
int cmn_dp_push_finish(cmn_dp_conn *c);
int cmn_dp_push_abort(cmn_dp_conn *c, int code);

/*
 * Read up to `len` bytes (1 .. 4 GiB - 1) at `offset` of replica (handle,
 * version) into `buf`. Returns the bytes read (short at the end of the
 * committed data), or the server's READ_END status (CAIRN_ECHECKSUM: a
 * block failed verification on the server and its bytes were not sent;
 * CAIRN_ENOENT, CAIRN_ESTALE, CAIRN_ERANGE, CAIRN_ECORRUPT, CAIRN_EIO), or a
 * connection error. On error the contents of `buf` are unspecified.
 */
int64_t cmn_dp_read(cmn_dp_conn *c, uint64_t handle, uint64_t version, uint64_t offset,
                    size_t len, void *buf);

/* A piece of a clone: `len` bytes (at most 1 MiB) whose CRC32C is `crc`
 * (already verified). `data` is valid during the call only. Return 0 to go
 * on, a negative code to stop the clone. */
typedef int (*cmn_dp_piece_fn)(void *arg, const void *data, size_t len, uint32_t crc);

/*
 * Fetch the whole committed replica (handle, version), calling `cb` for
 * each piece in order; *total (may be NULL) gets the length. Returns 0 once
 * the server's READ_END confirmed the total, its status (CAIRN_ENOENT,
 * CAIRN_ESTALE, CAIRN_ECORRUPT, CAIRN_ECHECKSUM, ...), the callback's code
 * (the connection is then broken: the rest of the stream was not read), or
 * a connection error. Pieces already passed to cb before an error must be
 * discarded by the caller (e.g. cs_store_import_cancel).
 */
int cmn_dp_clone(cmn_dp_conn *c, uint64_t handle, uint64_t version, cmn_dp_piece_fn cb,
                 void *arg, uint64_t *total);

#endif /* CMN_DPCLIENT_H */
