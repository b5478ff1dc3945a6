/*
 * lib_write.c - writes and record appends (DESIGN.md §5).
 *
 * One mutation of one chunk: PrepareWrite names the chunk's replicas with
 * the lease holder first (allocating the chunk when the file does not
 * reach it yet); the bytes are pushed to the primary, which forwards them
 * along the chain of the other replicas as they arrive; then Write (or
 * Append) asks the primary to run two-phase commit on them. Success means
 * a quorum committed. A location with a lease that is still valid for a
 * while is taken from the cache instead of asking the master again; any
 * failure drops it, and the next attempt asks the master.
 *
 * A push along the chain fails as a whole when any server of the chain is
 * unreachable; the bytes are then pushed to each replica on its own, and
 * the write goes ahead if the primary and a quorum hold them (the primary
 * reports the replica that missed the write, and the master makes it stale).
 * A server that did not answer lately (cairn__dp_suspect) is left out from
 * the start, so a silent host does not cost a connect timeout per write.
 *
 * Holes: chunkservers refuse a write that starts past a chunk's committed
 * length (no holes inside a chunk). When a write is refused like that, the
 * library asks the primary for the committed length and first writes zeros
 * over the gap in that chunk, then the data. Chunks entirely inside a gap
 * are not written at all: readers see zeros there (lib_file.c). The fill is
 * not atomic with other writers: two clients writing the same chunk at once,
 * one of them past its end, may have the zeros land on the other's bytes,
 * so concurrent writers of one chunk must not leave gaps in it.
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "chunkserver.pb-c.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "master.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define LEASE_MARGIN_MS 2000 /* a cached lease must have this much left */
#define PREPARE_STEP 64      /* the master allocates at most this far past the end */
#define CHUNKFULL_MOVES_MAX 1000

/* ---- one mutation ------------------------------------------------------------------------ */

/* The bytes reach every replica on its own (no chain) under a new id,
 * leaving out secondaries that did not answer lately: 0 if the primary and
 * a quorum took them. */
static int push_each(cairn_client *c, const cairn__loc *l, uint8_t id[16], const void *data,
                     size_t len, const cmn_frame_place *place) {
  int rc = cmn_random_bytes(id, 16);
  if (rc != 0) return rc;
  size_t ok = 0;
  int first_rc = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (i > 0 && cairn__dp_suspect(c, l->rep[i].data_addr)) continue;
    int r = cairn__dp_push(c, &l->rep[i], NULL, 0, id, data, len, place);
    if (r == 0) ok++;
    else if (i == 0) first_rc = r;
  }
  if (first_rc != 0) return first_rc;
  return ok >= l->n / 2 + 1 ? 0 : CAIRN_ENOQUORUM;
}

/*
 * Push `data` to the replicas of `l` and ask the primary to apply it:
 * `method` "Write" at chunk offset `off`, or "Append". *where gets the
 * chunk offset the bytes went to, *committed how many replicas committed.
 */
static int mutate_once(cairn_client *c, const cairn__loc *l, const char *method, uint64_t off,
                       const void *data, size_t len, int64_t timeout_ms, uint64_t *where,
                       uint32_t *committed) {
  if (!l->has_primary || l->n == 0) return CAIRN_ENOTPRIMARY;
  uint8_t id[16];
  int rc = cmn_random_bytes(id, sizeof id);
  if (rc != 0) return rc;
  const char *chain[CAIRN__MAX_REPLICAS];
  bool suspect = false;
  for (size_t i = 1; i < l->n; i++) {
    chain[i - 1] = l->rep[i].data_addr;
    suspect = suspect || cairn__dp_suspect(c, chain[i - 1]);
  }
  /* Where the bytes will land, so the servers can stage them on arrival. */
  cmn_frame_place place = {.handle = l->handle, .version = l->version,
                           .offset = strcmp(method, "Append") == 0 ? CMN_FRAME_PLACE_END : off};
  rc = suspect ? CAIRN_EUNAVAIL
               : cairn__dp_push(c, &l->rep[0], chain, l->n - 1, id, data, len, &place);
  if (rc != 0 && l->n > 1) rc = push_each(c, l, id, data, len, &place);
  if (rc != 0) return rc;

  Cairn__V1__ServerAddress addrs[CAIRN__MAX_REPLICAS], *ptrs[CAIRN__MAX_REPLICAS];
  for (size_t i = 0; i < l->n; i++) {
    cairn__v1__server_address__init(&addrs[i]);
    addrs[i].id = (char *)l->rep[i].id;
    addrs[i].data_addr = (char *)l->rep[i].data_addr;
    addrs[i].rpc_addr = (char *)l->rep[i].rpc_addr;
    addrs[i].zone = (char *)l->rep[i].zone;
    ptrs[i] = &addrs[i];
  }
  Cairn__V1__WriteRequest req = CAIRN__V1__WRITE_REQUEST__INIT;
  req.handle = l->handle;
  req.version = l->version;
  req.offset = off;
  req.data_id.data = id;
  req.data_id.len = sizeof id;
  req.length = (uint32_t)len;
  req.crc32c = cmn_crc32c(0, data, len);
  req.n_replicas = l->n;
  req.replicas = ptrs;
  Cairn__V1__WriteReply *r = NULL;
  rc = cairn__cs_call(c, l->rep[0].rpc_addr, method, &req.base, (ProtobufCMessage **)&r,
                      timeout_ms);
  if (rc == 0) {
    *where = r->offset;
    *committed = r->committed;
  }
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

/* ---- locations for writing ----------------------------------------------------------------- */

static int prepare_once(cairn_file *f, uint64_t index, bool append, uint64_t min_index,
                        int64_t timeout_ms, cairn__loc **out) {
  cairn_client *c = f->c;
  Cairn__V1__PrepareWriteRequest req = CAIRN__V1__PREPARE_WRITE_REQUEST__INIT;
  req.file_id = f->id;
  req.chunk_index = index;
  req.append = append;
  req.min_index = min_index;
  Cairn__V1__PrepareWriteReply *r = NULL;
  atomic_fetch_add(&c->n_prepares, 1);
  int rc = cairn__master_once(c, "PrepareWrite", &req.base, (ProtobufCMessage **)&r, timeout_ms);
  if (rc == 0 && !r->chunk) rc = CAIRN_EPROTO;
  if (rc == 0) {
    cairn__chunk_size_learn(c, r->chunk_size);
    *out = cairn__loc_from_pb(r->chunk);
    if (!(f->flags & CAIRN_O_FRESH)) cairn__cache_put(c->cache, f->id, *out, cmn_mono_ms());
  }
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

/* The master refuses to allocate more than PREPARE_STEP chunks past a
 * file's end in one call: reach a far chunk in steps (each allocating the
 * chunks before it). The known size gives a lower bound of the chunks the
 * file has. */
static int reach_chunk(cairn_file *f, uint64_t index) {
  uint64_t cs;
  int rc = cairn__chunk_size(f->c, &cs);
  if (rc != 0) return rc;
  uint64_t have = (atomic_load(&f->size) + cs - 1) / cs;
  for (uint64_t i = have + PREPARE_STEP; i < index && rc == 0; i += PREPARE_STEP) {
    cairn__loc *l = NULL;
    cairn__retry r;
    cairn__retry_start(f->c, &r);
    do {
      rc = prepare_once(f, i, false, 0, cairn__retry_timeout(&r, f->c->o.rpc_timeout_ms,
                                                             cmn_mono_ms()), &l);
    } while (rc != 0 && cairn__retry_wait(f->c, &r, rc));
    cairn__loc_unref(l);
  }
  return rc;
}

/* The chunk's location with a valid lease: cached (unless `fresh` or the
 * file is CAIRN_O_FRESH) when the lease has a while to run, else from
 * PrepareWrite (one attempt, plus the steps to a far chunk). */
static int write_locate(cairn_file *f, uint64_t index, bool fresh, cairn__retry *r,
                        cairn__loc **out) {
  cairn_client *c = f->c;
  if (!fresh && !(f->flags & CAIRN_O_FRESH)) {
    cairn__loc *l = cairn__cache_get(c->cache, f->id, index, cmn_mono_ms());
    if (l && l->has_primary && l->lease_expiry_ms - cmn_wall_ms() > LEASE_MARGIN_MS) {
      *out = l;
      return 0;
    }
    cairn__loc_unref(l);
  }
  int64_t t = cairn__retry_timeout(r, c->o.rpc_timeout_ms, cmn_mono_ms());
  int rc = prepare_once(f, index, false, 0, t, out);
  if (rc == CAIRN_EINVAL && index > PREPARE_STEP) {
    rc = reach_chunk(f, index);
    if (rc == 0) rc = prepare_once(f, index, false, 0, t, out);
  }
  return rc;
}

/* The primary's committed length of the chunk. */
static int chunk_length(cairn_client *c, const cairn__loc *l, int64_t timeout_ms, uint64_t *out) {
  Cairn__V1__ChunkInfoRequest req = CAIRN__V1__CHUNK_INFO_REQUEST__INIT;
  req.handle = l->handle;
  Cairn__V1__ChunkInfoReply *r = NULL;
  int rc = cairn__cs_call(c, l->rep[0].rpc_addr, "ChunkInfo", &req.base, (ProtobufCMessage **)&r,
                          timeout_ms);
  if (rc == 0 && !r->replica) rc = CAIRN_EPROTO;
  if (rc == 0) *out = r->replica->length;
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

/* ---- writing one piece ----------------------------------------------------------------------- */

static int fill_zeros(cairn_file *f, uint64_t index, uint64_t from, uint64_t to);

/*
 * Write [off, off+len) of chunk `index` (len <= CAIRN__WRITE_MAX) with
 * retries. `may_fill`: a refusal for a gap before `off` is answered by
 * writing zeros over the gap first. A piece larger than CAIRN__IO_MAX is
 * not retried when a server is busy (its push buffer may never hold it):
 * CAIRN_EBUSY goes back at once, for the caller to write it smaller.
 */
static int write_piece(cairn_file *f, uint64_t index, uint64_t off, const uint8_t *data,
                       size_t len, bool may_fill) {
  cairn_client *c = f->c;
  cairn__retry r;
  cairn__retry_start(c, &r);
  bool fresh = false;
  for (;;) {
    cairn__loc *l = NULL;
    uint64_t where = 0;
    uint32_t committed = 0;
    int rc = write_locate(f, index, fresh, &r, &l);
    int64_t t = cairn__retry_timeout(&r, c->o.rpc_timeout_ms, cmn_mono_ms());
    if (rc == 0) rc = mutate_once(c, l, "Write", off, data, len, t, &where, &committed);
    if (rc == 0) {
      /* a replica missed it: the master bumped the version of the others */
      if (committed < l->n) cairn__cache_drop(c->cache, f->id, index, l);
      cairn__loc_unref(l);
      return 0;
    }
    if (l) cairn__cache_drop(c->cache, f->id, index, l);
    uint64_t have;
    if (rc == CAIRN_EINVAL && may_fill && off > 0 && l && chunk_length(c, l, t, &have) == 0 &&
        have < off) {
      cairn__loc_unref(l);
      CMN_DEBUG(CAIRN__LOG, "zero-filling a gap file=%llu chunk=%llu from=%llu to=%llu",
                (unsigned long long)f->id, (unsigned long long)index, (unsigned long long)have,
                (unsigned long long)off);
      if ((rc = fill_zeros(f, index, have, off)) != 0) return rc;
      may_fill = false;
      continue;
    }
    cairn__loc_unref(l);
    if (rc == CAIRN_EBUSY && len > CAIRN__IO_MAX) return rc;
    fresh = true;
    if (!cairn__retry_wait(c, &r, rc)) return rc;
  }
}

/* Zeros over [from, to) of chunk `index`. */
static int fill_zeros(cairn_file *f, uint64_t index, uint64_t from, uint64_t to) {
  size_t n = (size_t)CMN_MIN(to - from, (uint64_t)CAIRN__IO_MAX);
  uint8_t *zeros = calloc(1, n);
  if (!zeros) return CAIRN_ENOMEM;
  int rc = 0;
  for (uint64_t pos = from; pos < to && rc == 0;) {
    size_t k = (size_t)CMN_MIN(to - pos, (uint64_t)n);
    rc = write_piece(f, index, pos, zeros, k, false);
    pos += k;
  }
  free(zeros);
  return rc;
}

/* ---- ranges -------------------------------------------------------------------------------- */

typedef struct write_op {
  cairn_file *f;
  cairn__span span;
  const uint8_t *buf;
  size_t piece; /* bytes per push / Write */
} write_op;

/* Task i: the part of the range in chunk first+i, in order, in pieces of
 * op->piece bytes, or CAIRN__IO_MAX from the first piece a server was too
 * busy to take on. */
static int write_task(void *arg, size_t i) {
  write_op *op = arg;
  uint64_t index = op->span.first + i, cstart = index * op->span.cs, start, end;
  cairn__span_part(&op->span, i, &start, &end);
  size_t piece = op->piece;
  for (uint64_t pos = start; pos < end;) {
    size_t n = (size_t)CMN_MIN(end - pos, (uint64_t)piece);
    int rc = write_piece(op->f, index, pos - cstart, op->buf + (pos - op->span.offset), n, true);
    if (rc == CAIRN_EBUSY && n > CAIRN__IO_MAX) {
      CMN_DEBUG(CAIRN__LOG, "a server is busy: smaller pieces file=%llu chunk=%llu",
                (unsigned long long)op->f->id, (unsigned long long)index);
      piece = CAIRN__IO_MAX;
      continue;
    }
    if (rc != 0) return rc;
    pos += n;
  }
  return 0;
}

int cairn__write_range(cairn_file *f, uint64_t offset, const void *buf, size_t len, int threads,
                       size_t piece) {
  if (len == 0) return 0;
  uint64_t cs;
  int rc = cairn__chunk_size(f->c, &cs);
  if (rc != 0) return rc;
  write_op op = {.f = f, .buf = buf, .piece = piece};
  cairn__span_init(&op.span, offset, len, cs);
  return cairn__run_parallel(threads, op.span.count, write_task, &op);
}

int cairn__complete_write(cairn_file *f, uint64_t end) {
  if (end <= atomic_load(&f->size)) return 0; /* the master's size is at least that */
  Cairn__V1__CompleteWriteRequest req = CAIRN__V1__COMPLETE_WRITE_REQUEST__INIT;
  req.file_id = f->id;
  req.end_offset = end;
  Cairn__V1__FileInfoReply *r = NULL;
  int rc = cairn__master_call(f->c, "CompleteWrite", &req.base, (ProtobufCMessage **)&r,
                              CAIRN__IDEMPOTENT);
  if (rc == 0) cairn__file_size_raise(f, r->info && r->info->size > end ? r->info->size : end);
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

int64_t cairn_pwrite(cairn_file *f, const void *buf, size_t len, uint64_t offset) {
  if (!f || (!buf && len > 0)) return CAIRN_EINVAL;
  if (!(f->flags & CAIRN_O_WRITE)) return CAIRN_EPERM;
  if (len == 0) return 0;
  if (len > (size_t)INT64_MAX || offset > UINT64_MAX - len) return CAIRN_EINVAL;
  int rc = cairn__write_range(f, offset, buf, len, f->c->o.io_threads, CAIRN__WRITE_MAX);
  if (rc == 0) rc = cairn__complete_write(f, offset + len);
  return rc != 0 ? rc : (int64_t)len;
}

/* ---- record append ------------------------------------------------------------------------- */

/*
 * GFS §3.3: the primary chooses where the record goes (the end of the last
 * chunk); a record that does not fit pads the chunk and the answer is
 * CAIRN_ECHUNKFULL, so the next attempt asks for a chunk past it. A retry
 * after an unclear failure may store the record twice (at-least-once).
 */
int cairn_append(cairn_file *f, const void *buf, size_t len, uint64_t *offset) {
  if (!f || !buf || len == 0) return CAIRN_EINVAL;
  if (!(f->flags & CAIRN_O_WRITE)) return CAIRN_EPERM;
  cairn_client *c = f->c;
  uint64_t cs;
  int rc = cairn__chunk_size(c, &cs);
  if (rc != 0) return rc;
  if (len > cs / 4) return CAIRN_ETOOBIG;
  cairn__retry r;
  cairn__retry_start(c, &r);
  uint64_t min_index = 0;
  for (int moves = 0;;) {
    cairn__loc *l = NULL;
    uint64_t where = 0;
    uint32_t committed = 0;
    int64_t t = cairn__retry_timeout(&r, c->o.rpc_timeout_ms, cmn_mono_ms());
    rc = prepare_once(f, 0, true, min_index, t, &l);
    if (rc == 0) rc = mutate_once(c, l, "Append", 0, buf, len, t, &where, &committed);
    if (rc == 0) {
      uint64_t pos = l->index * cs + where;
      if (committed < l->n) cairn__cache_drop(c->cache, f->id, l->index, l);
      cairn__loc_unref(l);
      rc = cairn__complete_write(f, pos + len);
      if (rc == 0 && offset) *offset = pos;
      return rc;
    }
    if (rc == CAIRN_ECHUNKFULL && l && ++moves < CHUNKFULL_MOVES_MAX) {
      min_index = l->index + 1;
      cairn__loc_unref(l);
      continue;
    }
    if (l) cairn__cache_drop(c->cache, f->id, l->index, l);
    cairn__loc_unref(l);
    if (!cairn__retry_wait(c, &r, rc)) return rc;
  }
}
