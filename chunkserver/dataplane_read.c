/*
 * dataplane_read.c - READ and CLONE on the data plane.
 *
 * The store blocks on disk, so every cs_store_read runs on the libuv thread
 * pool, never on the loop thread. A connection has at most one piece
 * (CMN_FRAME_DATA_MAX bytes) being read at a time; the piece read is handed
 * to the socket and the next read starts at once if fewer than
 * read_queue_max bytes wait to be written, so the disk and the network work
 * in parallel while the memory of a connection stays bounded (the queue
 * plus one piece). The READ_DATA header (with the piece's CRC32C) is also
 * computed on the pool.
 *
 * A piece that fails its checksum is never sent: the read ends with
 * READ_END {CAIRN_ECHECKSUM, bytes sent before it} and the connection stays
 * usable. The store marks the replica corrupt and raises its notify event,
 * so reporting it to the master is not the data plane's job.
 *
 * CLONE is a READ of the whole committed replica; its first piece also
 * looks the replica up (cs_store_info) on the pool, to learn the length and
 * refuse another version (CAIRN_ESTALE), a corrupt replica (CAIRN_ECORRUPT)
 * or one with a mutation prepared and not yet decided (CAIRN_EBUSY).
 */
#include "dataplane_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"

#include <stdlib.h>
#include <string.h>

struct cs__dp_read {
  uv_work_t work;
  cs__dp_conn *c;
  cs_store *store;
  bool clone;
  bool sized;     /* remaining is known (always for READ; after the lookup for CLONE) */
  bool in_flight; /* work queued or running */
  bool abandoned; /* the connection went away while in flight */
  uint64_t handle, version, offset, remaining, sent;
  /* the piece being read (written by the pool thread, read after it) */
  uint8_t *buf;
  size_t want;
  int64_t got;
  uint8_t hdr[CMN_FRAME_HEADER_SIZE];
};

/* Pool thread: the lookup (CLONE's first piece), then one read. Touches only
 * the request and the store. */
static void read_work(uv_work_t *req) {
  cs__dp_read *rd = req->data;
  if (!rd->sized) {
    cs_store_replica r;
    int rc = cs_store_info(rd->store, rd->handle, &r);
    if (rc == 0 && r.version != rd->version) rc = CAIRN_ESTALE;
    if (rc == 0 && r.corrupt) rc = CAIRN_ECORRUPT;
    /* A prepared, undecided mutation may still be committed: a copy taken
     * now could miss it. The master orders the clone again later. */
    if (rc == 0 && rd->clone && r.pending) rc = CAIRN_EBUSY;
    if (rc < 0) {
      rd->got = rc;
      return;
    }
    rd->sized = true;
    rd->remaining = r.length;
    rd->want = (size_t)CMN_MIN((uint64_t)rd->want, rd->remaining);
  }
  if (rd->want == 0) {
    rd->got = 0;
    return;
  }
  rd->got = cs_store_read(rd->store, rd->handle, rd->version, rd->offset, rd->buf, rd->want);
  if (rd->got > 0)
    cmn_frame_encode_data_header(CMN_FRAME_READ_DATA, rd->buf, (size_t)rd->got, rd->hdr);
}

/* End the read with READ_END {status, bytes sent} and go back to READY. */
static void read_finish(cs__dp_conn *c, int status) {
  cs__dp_read *rd = c->rd;
  c->rd = NULL;
  cmn_frame_read_end end = {.status = status, .total = rd->sent};
  if (status < 0) {
    CMN_INFO(CS__DP_LOG, "%s failed peer=%s handle=%llu version=%llu offset=%llu code=%s",
             rd->clone ? "clone" : "read", c->peer, (unsigned long long)rd->handle,
             (unsigned long long)rd->version, (unsigned long long)rd->offset,
             cairn_err_name(status));
    if (status == CAIRN_ECHECKSUM) cs__dp_count_error(c->dp, CS__DP_ERR_CHECKSUM);
  }
  free(rd->buf);
  free(rd);
  c->state = CS__DP_READY;
  uint8_t out[64];
  int n = cmn_frame_encode_read_end(&end, out, sizeof out);
  if (n > 0) cs__dp_conn_send(c, out, (size_t)n);
}

static void read_after(uv_work_t *req, int status);

/* Queue the next piece if none is in flight and the write queue has room. */
void cs__dp_read_pump(cs__dp_conn *c) {
  cs__dp_read *rd = c->rd;
  if (!rd || rd->in_flight || c->state != CS__DP_READ) return;
  if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) >= c->dp->read_max) return;
  size_t want = CMN_FRAME_DATA_MAX;
  if (rd->sized) want = (size_t)CMN_MIN((uint64_t)want, rd->remaining);
  rd->buf = malloc(want ? want : 1);
  if (!rd->buf) {
    read_finish(c, CAIRN_ENOMEM);
    return;
  }
  rd->want = want;
  rd->got = 0;
  rd->in_flight = true;
  c->refs++;
  if (uv_queue_work(c->dp->loop, &rd->work, read_work, read_after) != 0) {
    rd->in_flight = false;
    c->refs--;
    read_finish(c, CAIRN_EIO);
  }
}

/*
 * Loop thread, a piece is back: send it (the buffer goes with the write),
 * then either end the read (error, short read, all sent) or queue the next
 * piece. A read whose connection went away is only freed.
 */
static void read_after(uv_work_t *req, int status) {
  cs__dp_read *rd = req->data;
  cs__dp_conn *c = rd->c;
  rd->in_flight = false;
  if (rd->abandoned) {
    free(rd->buf);
    free(rd);
    cs__dp_conn_unref(c);
    return;
  }
  c->refs--; /* the handles are open (the read was not abandoned): not the last */
  cs__dp_conn_touch(c);
  if (status < 0) {
    read_finish(c, CAIRN_EIO);
    return;
  }
  if (rd->got < 0) {
    read_finish(c, (int)rd->got);
    return;
  }
  size_t got = (size_t)rd->got;
  if (got > 0) {
    uint8_t *buf = rd->buf;
    rd->buf = NULL;
    rd->sent += got;
    rd->offset += got;
    rd->remaining -= got;
    cs__dp_stat_add(&c->dp->st.read_bytes_out, got);
    if (c->dp->m_bytes_read) cmn_counter_add(c->dp->m_bytes_read, got);
    if (cs__dp_conn_send_data(c, rd->hdr, buf, got) < 0) return; /* closed: rd is gone */
  } else {
    free(rd->buf);
    rd->buf = NULL;
  }
  if (got == 0 || got < rd->want || rd->remaining == 0) {
    read_finish(c, 0);
    return;
  }
  cs__dp_read_pump(c);
}

void cs__dp_read_start(cs__dp_conn *c, const cmn_frame *f) {
  cs__dp_read *rd = cmn_calloc(1, sizeof *rd);
  rd->work.data = rd;
  rd->c = c;
  rd->store = c->dp->store;
  char why[160];
  int rc;
  if (f->type == CMN_FRAME_READ) {
    cmn_frame_read m;
    rc = cmn_frame_decode_read(f->payload, f->len, &m, why, sizeof why);
    rd->handle = m.handle;
    rd->version = m.version;
    rd->offset = m.offset;
    rd->remaining = m.length;
    rd->sized = true;
  } else {
    cmn_frame_clone m;
    rc = cmn_frame_decode_clone(f->payload, f->len, &m, why, sizeof why);
    rd->handle = m.handle;
    rd->version = m.version;
    rd->clone = true;
  }
  if (rc < 0) {
    free(rd);
    cs__dp_conn_fail(c, CAIRN_EPROTO, CS__DP_ERR_PROTOCOL, "malformed %s: %s",
                     cmn_frame_type_name(f->type), why);
    return;
  }
  c->rd = rd;
  c->state = CS__DP_READ;
  CMN_DEBUG(CS__DP_LOG, "%s begin peer=%s handle=%llu version=%llu offset=%llu length=%llu",
            rd->clone ? "clone" : "read", c->peer, (unsigned long long)rd->handle,
            (unsigned long long)rd->version, (unsigned long long)rd->offset,
            (unsigned long long)rd->remaining);
  /* a range past the chunk size is refused whole, before any disk work */
  if (rd->sized && rd->offset + rd->remaining > cs_store_chunk_size(rd->store)) {
    read_finish(c, CAIRN_ERANGE);
    return;
  }
  cs__dp_read_pump(c);
}

void cs__dp_read_abort(cs__dp_conn *c) {
  cs__dp_read *rd = c->rd;
  if (!rd) return;
  c->rd = NULL;
  if (rd->in_flight) {
    rd->abandoned = true; /* read_after frees it and drops the connection's reference */
    return;
  }
  free(rd->buf);
  free(rd);
}
