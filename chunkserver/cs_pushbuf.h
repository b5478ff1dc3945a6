/*
 * cs_pushbuf.h - the chunkserver's push buffer: bytes pushed by clients (and
 * forwarded along the replica chain) wait here, keyed by the client's
 * 128-bit data id, until a Write/Prepare uses them or they expire.
 *
 * Memory is bounded: a push reserves its whole announced length when it
 * begins, and a push that would take the total over the budget is refused
 * with CAIRN_EBUSY (a clear, retryable error; never an out-of-memory).
 * Pushes never used expire after the TTL.
 *
 * Lifecycle of one push:
 *   begin (reserve) -> append ... (bytes in order) -> finish (length and
 *   CRC32C checked: the push becomes visible) or cancel (connection lost).
 *   A visible push is used by the 2PC layer with get/put (a reference keeps
 *   it from expiring or being dropped while the bytes are read) and dropped
 *   once the mutation is decided.
 *
 * Thread safety: every function may be called from any thread. One push
 * (cs_push) is filled by one thread at a time (its connection's).
 */
#ifndef CS_PUSHBUF_H
#define CS_PUSHBUF_H

#include <stddef.h>
#include <stdint.h>

#define CS_DATA_ID_LEN 16

typedef struct cs_pushbuf cs_pushbuf;
typedef struct cs_push cs_push;

typedef struct cs_pushbuf_stats {
  uint64_t budget;         /* bytes */
  uint64_t reserved;       /* bytes reserved by pushes in progress or waiting */
  uint64_t pushes;         /* pushes held (in progress + complete) */
  uint64_t refused;        /* begins refused for lack of budget, since start */
  uint64_t expired;        /* pushes dropped by expiry, since start */
} cs_pushbuf_stats;

/* A new buffer with `budget` bytes and pushes expiring `ttl_ms` after they
 * were last touched. *out is the caller's (cs_pushbuf_free). CAIRN_EINVAL. */
int cs_pushbuf_new(uint64_t budget, int64_t ttl_ms, cs_pushbuf **out);

/* Frees every push (none may be in use) and the buffer. NULL is fine. */
void cs_pushbuf_free(cs_pushbuf *pb);

/* Start receiving `total` bytes (1..max chunk size) whose CRC32C is `crc`.
 * Errors: CAIRN_EBUSY (over budget), CAIRN_EEXIST (the id is in use),
 * CAIRN_EINVAL (total 0 or above 1 GiB). On success *out belongs to the
 * caller until finish or cancel. */
int cs_pushbuf_begin(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN], uint64_t total,
                     uint32_t crc, cs_push **out);

/* The next `len` bytes. CAIRN_ERANGE past the announced total. */
int cs_pushbuf_append(cs_push *p, const void *data, size_t len);

/* All bytes arrived: checks the length (CAIRN_EPROTO when short) and the
 * CRC (CAIRN_ECHECKSUM); on success the push becomes visible to get. On
 * failure the push is dropped. Either way `p` is no longer the caller's. */
int cs_pushbuf_finish(cs_push *p);

/* Abandon a push in progress (connection lost); frees its reservation
 * (once the last hold is gone). */
void cs_pushbuf_cancel(cs_push *p);

/* Keep the bytes of `p` (any state) allocated until unhold, whatever
 * happens to the push meanwhile (finish, cancel, drop; expiry skips it):
 * for a reader of bytes already appended, such as the data plane's stager.
 * The push's owner may go on appending while it is held. */
void cs_pushbuf_hold(cs_push *p);
void cs_pushbuf_unhold(cs_push *p);
/* The TTL given to cs_pushbuf_new. */
int64_t cs_pushbuf_ttl_ms(const cs_pushbuf *pb);
/* The push's bytes: [0, bytes appended so far) are readable. */
const uint8_t *cs_pushbuf_bytes(const cs_push *p);

/* Take a reference on the visible push `id`: *data (valid until put),
 * *len and *crc. Errors: CAIRN_ENOENT (unknown, still arriving, expired). */
int cs_pushbuf_get(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN], const void **data,
                   uint64_t *len, uint32_t *crc);

/* Release a reference taken by get. */
void cs_pushbuf_put(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN]);

/* The bytes are no longer needed (the mutation was decided): free them as
 * soon as no reference is held. Unknown ids are ignored. */
void cs_pushbuf_drop(cs_pushbuf *pb, const uint8_t id[CS_DATA_ID_LEN]);

/* Drop pushes untouched for longer than the TTL and not referenced;
 * returns how many. */
int cs_pushbuf_expire(cs_pushbuf *pb, int64_t now_ms);

void cs_pushbuf_get_stats(cs_pushbuf *pb, cs_pushbuf_stats *out);

#endif /* CS_PUSHBUF_H */
