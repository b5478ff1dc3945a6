/*
 * lib_file.c - open files and reads.
 *
 * A read maps its range onto chunks (the chunk size is the cluster's),
 * finds each chunk's replicas (the location cache, or LookupChunks, which
 * also tells the file size), and reads every chunk piece from the closest
 * replica, moving on to the next one on any error. A replica never hands
 * out bytes that failed their checksum: the chunkserver verifies every
 * block it sends and answers CAIRN_ECHECKSUM instead. When every replica
 * failed, the location is looked up again (it may have moved) and the piece
 * retried with backoff within the operation's budget.
 *
 * Holes: a file's size is the end of its furthest write, and a write past
 * the end leaves a gap. Bytes of the gap that no replica holds (past a
 * chunk's committed length, or a chunk never written, which the master
 * still lists at its creation version 1) read as zeros, like a sparse file.
 * A replica that answers short of the committed length the master knows
 * for that version is not showing a hole: it lacks writes, and the next
 * replica is asked instead.
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "master.pb-c.h"

#include <stdlib.h>
#include <string.h>

#define LOOKUP_MAX 1024 /* chunks per LookupChunks (the master's limit) */

void cairn__file_size_raise(cairn_file *f, uint64_t size) {
  uint64_t cur = atomic_load(&f->size);
  while (cur < size && !atomic_compare_exchange_weak(&f->size, &cur, size)) {
  }
}

/* ---- open / close / fstat ----------------------------------------------------------- */

int cairn_open(cairn_client *c, const char *path, unsigned flags, cairn_file **out) {
  if (!c || !out) return CAIRN_EINVAL;
  int rc = cairn__open_flags_check(flags);
  if (rc == 0) rc = cairn__path_check(path);
  if (rc != 0) return rc;
  Cairn__V1__FileInfoReply *r = NULL;
  if (flags & CAIRN_O_CREATE) {
    Cairn__V1__CreateRequest req = CAIRN__V1__CREATE_REQUEST__INIT;
    req.path.data = (uint8_t *)path;
    req.path.len = strlen(path);
    req.exclusive = (flags & CAIRN_O_EXCL) != 0;
    req.parents = (flags & CAIRN_O_PARENTS) != 0;
    rc = cairn__master_call(c, "Create", &req.base, (ProtobufCMessage **)&r,
                            req.exclusive ? CAIRN__MUTATION : CAIRN__IDEMPOTENT);
  } else {
    Cairn__V1__PathRequest req = CAIRN__V1__PATH_REQUEST__INIT;
    req.path.data = (uint8_t *)path;
    req.path.len = strlen(path);
    rc = cairn__master_call(c, "Stat", &req.base, (ProtobufCMessage **)&r, CAIRN__IDEMPOTENT);
  }
  if (rc == 0 && !r->info) rc = CAIRN_EPROTO;
  if (rc == 0 && r->info->type == CAIRN__V1__FILE_TYPE__FILE_TYPE_DIR) rc = CAIRN_EISDIR;
  if (rc != 0) {
    if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    return rc;
  }
  cairn_file *f = cmn_calloc(1, sizeof *f);
  f->c = c;
  f->path = cmn_strdup(path);
  f->flags = flags;
  cairn__stat_from_pb(r->info, &f->st);
  f->id = f->st.id;
  atomic_init(&f->size, f->st.size);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  *out = f;
  return 0;
}

void cairn_close(cairn_file *f) {
  if (!f) return;
  free(f->path);
  free(f);
}

/* The file's size by id (it may have been renamed since it was opened). */
static int size_by_id(cairn_file *f, uint64_t *size) {
  Cairn__V1__LookupChunksRequest req = CAIRN__V1__LOOKUP_CHUNKS_REQUEST__INIT;
  req.file_id = f->id;
  req.count = 1;
  Cairn__V1__LookupChunksReply *r = NULL;
  atomic_fetch_add(&f->c->n_lookups, 1);
  int rc = cairn__master_call(f->c, "LookupChunks", &req.base, (ProtobufCMessage **)&r,
                              CAIRN__IDEMPOTENT);
  if (rc != 0) return rc;
  *size = r->file_size;
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

int cairn_fstat(cairn_file *f, cairn_stat *out) {
  if (!f || !out) return CAIRN_EINVAL;
  cairn_stat st;
  int rc = cairn_stat_path(f->c, f->path, &st);
  if (rc == 0 && st.id == f->id) {
    cairn__file_size_raise(f, st.size);
    *out = st;
    return 0;
  }
  if (rc != 0 && rc != CAIRN_ENOENT && rc != CAIRN_ENOTDIR) return rc;
  /* renamed or removed since open: what the id still tells */
  uint64_t size;
  if ((rc = size_by_id(f, &size)) != 0) return rc;
  cairn__file_size_raise(f, size);
  *out = f->st;
  out->size = size;
  return 0;
}

/* ---- lookups ------------------------------------------------------------------------- */

/* Locations of chunks [first, first+n) as one LookupChunks answered. */
typedef struct loc_batch {
  uint64_t first;
  size_t n;
  cairn__loc **locs; /* n entries, NULL where the master listed none */
  uint64_t size;     /* the file size it reported */
} loc_batch;

static void batch_free(loc_batch *b) {
  for (size_t i = 0; b->locs && i < b->n; i++) cairn__loc_unref(b->locs[i]);
  free(b->locs);
  memset(b, 0, sizeof *b);
}

/*
 * One LookupChunks for chunks [first, first+count): fills *b, raises the
 * file's known size and caches the locations (not for CAIRN_O_FRESH).
 * `r` NULL: with the call's own retries; else one attempt within r's budget.
 */
static int lookup(cairn_file *f, uint64_t first, size_t count, cairn__retry *r, loc_batch *b) {
  cairn_client *c = f->c;
  if (count > LOOKUP_MAX) count = LOOKUP_MAX;
  Cairn__V1__LookupChunksRequest req = CAIRN__V1__LOOKUP_CHUNKS_REQUEST__INIT;
  req.file_id = f->id;
  req.first_index = first;
  req.count = (uint32_t)(count ? count : 1);
  Cairn__V1__LookupChunksReply *rep = NULL;
  atomic_fetch_add(&c->n_lookups, 1);
  int rc = r ? cairn__master_once(c, "LookupChunks", &req.base, (ProtobufCMessage **)&rep,
                                  cairn__retry_timeout(r, c->o.rpc_timeout_ms, cmn_mono_ms()))
             : cairn__master_call(c, "LookupChunks", &req.base, (ProtobufCMessage **)&rep,
                                  CAIRN__IDEMPOTENT);
  if (rc != 0) return rc;
  memset(b, 0, sizeof *b);
  b->first = first;
  b->n = req.count;
  b->locs = cmn_calloc(b->n, sizeof *b->locs);
  b->size = rep->file_size;
  bool keep = !(f->flags & CAIRN_O_FRESH);
  int64_t now = cmn_mono_ms();
  for (size_t i = 0; i < rep->n_chunks; i++) {
    const Cairn__V1__ChunkLocation *pb = rep->chunks[i];
    if (pb->index < first || pb->index - first >= b->n || b->locs[pb->index - first]) continue;
    cairn__loc *l = cairn__loc_from_pb(pb);
    b->locs[pb->index - first] = l;
    if (keep) cairn__cache_put(c->cache, f->id, l, now);
  }
  cairn__file_size_raise(f, rep->file_size);
  protobuf_c_message_free_unpacked(&rep->base, NULL);
  return 0;
}

/* The location of chunk `index` for a read: cached unless `fresh`, else
 * looked up (one attempt). *cached says where it came from. */
static int locate(cairn_file *f, uint64_t index, bool fresh, cairn__retry *r, cairn__loc **out,
                  bool *cached) {
  *cached = false;
  if (!fresh && !(f->flags & CAIRN_O_FRESH)) {
    *out = cairn__cache_get(f->c->cache, f->id, index, cmn_mono_ms());
    if (*out) {
      *cached = true;
      return 0;
    }
  }
  loc_batch b;
  int rc = lookup(f, index, 1, r, &b);
  if (rc != 0) return rc;
  *out = b.locs[0];
  b.locs[0] = NULL;
  batch_free(&b);
  return *out ? 0 : CAIRN_ENOENT;
}

/* ---- reading one piece ------------------------------------------------------------------ */

/*
 * Read [off, off+len) of the chunk at `l` from its replicas, closest
 * first. 0 when one answered (a short answer is a hole: zeros), else the
 * error to act on: a retryable one if any replica gave one (the next
 * attempt may find it well), else the last. A replica missing where the
 * master placed it (CAIRN_ENOENT: moved or deleted since) also makes the
 * error worth another lookup: that is retry_rc CAIRN_EUNAVAIL.
 */
static int read_replicas(cairn_file *f, const cairn__loc *l, uint64_t off, size_t len,
                         uint8_t *dst) {
  cairn_client *c = f->c;
  if (l->version == 1) { /* allocated, never leased, so never written */
    memset(dst, 0, len);
    return 0;
  }
  size_t order[CAIRN__MAX_REPLICAS], late[CAIRN__MAX_REPLICAS], k = 0, nlate = 0;
  cairn__order_replicas(l, c->o.local_host, c->o.zone, order);
  for (size_t i = 0; i < l->n; i++) { /* servers that did not answer lately go last */
    if (cairn__dp_suspect(c, l->rep[order[i]].data_addr)) late[nlate++] = order[i];
    else order[k++] = order[i];
  }
  memcpy(order + k, late, nlate * sizeof *late);
  int rc = CAIRN_EUNAVAIL, retry_rc = 0;
  for (k = 0; k < l->n; k++) {
    const cairn__replica *rep = &l->rep[order[k]];
    int64_t got = cairn__dp_read(c, rep, l->handle, l->version, off, len, dst);
    if (got >= 0 && (size_t)got < len && off + (uint64_t)got < l->length) {
      /* Fewer committed bytes than the master knows this version has: not a
       * hole but a replica that lacks writes. Never hand out its zeros. */
      CMN_INFO(CAIRN__LOG, "replica shorter than its chunk handle=%llu version=%llu server=%s "
               "has=%llu master_length=%llu", (unsigned long long)l->handle,
               (unsigned long long)l->version, rep->id, (unsigned long long)(off + (uint64_t)got),
               (unsigned long long)l->length);
      got = CAIRN_ESTALE;
    }
    if (got >= 0) {
      if ((size_t)got < len) memset(dst + got, 0, len - (size_t)got);
      return 0;
    }
    rc = (int)got;
    if (!retry_rc && cairn_err_retryable(rc)) retry_rc = rc;
    if (!retry_rc && rc == CAIRN_ENOENT) retry_rc = CAIRN_EUNAVAIL;
    /* whatever went wrong, the next reader should ask the master again */
    cairn__cache_drop(c->cache, f->id, l->index, l);
    atomic_fetch_add(&c->n_fallbacks, 1);
    CMN_DEBUG(CAIRN__LOG, "replica failed, trying the next handle=%llu server=%s error=%s",
              (unsigned long long)l->handle, rep->id, cairn_err_name(rc));
  }
  return retry_rc ? retry_rc : rc;
}

/* Read [off, off+len) of chunk `index` (len <= CAIRN__IO_MAX), starting
 * from `initial` (may be NULL: the cache, or a lookup) and looking the chunk
 * up again after a failure. A failure with a cached location is retried at
 * once with a fresh one: the cache was merely out of date. */
static int read_piece(cairn_file *f, uint64_t index, uint64_t off, size_t len, uint8_t *dst,
                      cairn__loc *initial) {
  cairn__retry r;
  cairn__retry_start(f->c, &r);
  bool fresh = false;
  for (;;) {
    cairn__loc *l = NULL;
    bool cached = false;
    int rc = 0;
    if (initial) { /* just looked up */
      l = cairn__loc_ref(initial);
      initial = NULL;
    } else {
      rc = locate(f, index, fresh, &r, &l, &cached);
    }
    if (rc == 0) rc = read_replicas(f, l, off, len, dst);
    cairn__loc_unref(l);
    if (rc == 0) return 0;
    fresh = true;
    if (cached) continue;
    if (!cairn__retry_wait(f->c, &r, rc)) return rc;
  }
}

/* ---- reading ranges ---------------------------------------------------------------------- */

typedef struct read_op {
  cairn_file *f;
  cairn__span span;
  uint8_t *buf;
  loc_batch *batch; /* may be NULL */
} read_op;

/* Task i: the part of the range in chunk first+i, in sub-reads. */
static int read_task(void *arg, size_t i) {
  read_op *op = arg;
  uint64_t index = op->span.first + i, cstart = index * op->span.cs, start, end;
  cairn__span_part(&op->span, i, &start, &end);
  cairn__loc *initial = NULL;
  if (op->batch && index >= op->batch->first && index - op->batch->first < op->batch->n)
    initial = op->batch->locs[index - op->batch->first];
  for (uint64_t pos = start; pos < end;) {
    size_t n = (size_t)CMN_MIN(end - pos, (uint64_t)CAIRN__IO_MAX);
    int rc = read_piece(op->f, index, pos - cstart, n, op->buf + (pos - op->span.offset), initial);
    if (rc != 0) return rc;
    pos += n;
  }
  return 0;
}

static int read_with(cairn_file *f, uint64_t cs, uint64_t offset, size_t len, void *buf,
                     int threads, loc_batch *batch) {
  read_op op = {.f = f, .buf = buf, .batch = batch};
  cairn__span_init(&op.span, offset, len, cs);
  return cairn__run_parallel(threads, op.span.count, read_task, &op);
}

int cairn__read_range(cairn_file *f, uint64_t offset, size_t len, void *buf, int threads) {
  if (len == 0) return 0;
  uint64_t cs;
  int rc = cairn__chunk_size(f->c, &cs);
  if (rc != 0) return rc;
  return read_with(f, cs, offset, len, buf, threads, NULL);
}

/* Are all chunks [first, last] in the cache now? */
static bool all_cached(cairn_file *f, uint64_t first, uint64_t last) {
  int64_t now = cmn_mono_ms();
  for (uint64_t i = first; i <= last; i++) {
    cairn__loc *l = cairn__cache_get(f->c->cache, f->id, i, now);
    if (!l) return false;
    cairn__loc_unref(l);
  }
  return true;
}

int64_t cairn_pread(cairn_file *f, void *buf, size_t len, uint64_t offset) {
  if (!f || (!buf && len > 0)) return CAIRN_EINVAL;
  if (!(f->flags & CAIRN_O_READ)) return CAIRN_EPERM;
  if (len == 0) return 0;
  if (len > (size_t)INT64_MAX) len = (size_t)INT64_MAX;
  if (offset > UINT64_MAX - len) return CAIRN_EINVAL;
  uint64_t cs;
  int rc = cairn__chunk_size(f->c, &cs);
  if (rc != 0) return rc;
  /* One lookup for the whole range when the size may have grown or some
   * chunk is not cached: it tells the size and every location at once. */
  uint64_t size = atomic_load(&f->size);
  uint64_t first = offset / cs, last = (offset + len - 1) / cs;
  loc_batch batch = {0};
  loc_batch *bp = NULL;
  if ((f->flags & CAIRN_O_FRESH) || offset + len > size || !all_cached(f, first, last)) {
    if ((rc = lookup(f, first, (size_t)(last - first + 1), NULL, &batch)) != 0) return rc;
    size = batch.size;
    bp = &batch;
  }
  if (offset >= size) {
    batch_free(&batch);
    return 0;
  }
  if (len > size - offset) len = (size_t)(size - offset);
  rc = read_with(f, cs, offset, len, buf, f->c->o.io_threads, bp);
  batch_free(&batch);
  return rc != 0 ? rc : (int64_t)len;
}
