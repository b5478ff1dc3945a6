/*
 * libcairn against a real cluster on 127.0.0.1 (a master and three
 * chunkservers with 1 MiB chunks): round trips across chunk boundaries,
 * unaligned writes, holes, concurrent record appends, whole files through
 * file descriptors, reads that survive a dead server and a corrupt
 * replica, the location cache's TTL, the namespace calls and their errors.
 */
#include "test_main.h"

#include "cairn.h"
#include "cluster.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "lib_internal.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1u << 20)

typedef struct fx {
  it_cluster c;
  cairn_client *cl;
} fx;

/* A client of the test cluster; `tune` (may be NULL) adjusts the options. */
static cairn_client *client_with(fx *x, void (*tune)(cairn_options *, void *), void *arg) {
  cairn_options o;
  cairn_options_init(&o);
  o.master = x->c.master_rpc;
  o.secret_file = x->c.secret_file;
  o.rpc_timeout_ms = 5000;
  o.op_timeout_ms = 30000;
  if (tune) tune(&o, arg);
  cairn_client *cl = NULL;
  assert_int_equal(cairn_connect(&o, &cl), 0);
  return cl;
}

static int setup(void **state) {
  cmn_log_init("test_client"); /* CAIRN_LOG_LEVEL=debug shows what the library does */
  fx *x = cmn_calloc(1, sizeof *x);
  *state = x;
  if (it_cluster_start(&x->c, "client", 3, 3) != 0) return -1;
  cairn_options o;
  cairn_options_init(&o);
  o.master = x->c.master_rpc;
  o.secret_file = x->c.secret_file;
  o.op_timeout_ms = 30000;
  return cairn_connect(&o, &x->cl) == 0 ? 0 : -1;
}

static int teardown(void **state) {
  fx *x = *state;
  cairn_disconnect(x->cl);
  it_cluster_stop(&x->c);
  free(x);
  return 0;
}

static void fill(uint8_t *buf, size_t n, uint32_t seed) {
  uint64_t v = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    v ^= v << 13;
    v ^= v >> 7;
    v ^= v << 17;
    buf[i] = (uint8_t)v;
  }
}

static cairn_file *open_rw(cairn_client *cl, const char *path) {
  cairn_file *f = NULL;
  assert_int_equal(cairn_open(cl, path, CAIRN_O_READ | CAIRN_O_WRITE | CAIRN_O_CREATE |
                                            CAIRN_O_PARENTS, &f), 0);
  return f;
}

static void write_all(cairn_file *f, const void *buf, size_t n, uint64_t off) {
  assert_int_equal(cairn_pwrite(f, buf, n, off), (int64_t)n);
}

/* The whole file as the library reads it, compared with `want`. */
static void assert_file_is(cairn_client *cl, const char *path, const uint8_t *want, size_t n) {
  cairn_file *f = NULL;
  assert_int_equal(cairn_open(cl, path, CAIRN_O_READ, &f), 0);
  uint8_t *got = cmn_malloc(n + 64);
  assert_int_equal(cairn_pread(f, got, n + 64, 0), (int64_t)n);
  assert_memory_equal(got, want, n);
  cairn_stat st;
  assert_int_equal(cairn_fstat(f, &st), 0);
  assert_int_equal(st.size, n);
  free(got);
  cairn_close(f);
}

/* Every replica of every chunk of file `id` holds the same bytes as `want`
 * (where it holds any). */
static void assert_replicas_agree(it_cluster *c, uint64_t id, const uint8_t *want, size_t n) {
  uint8_t *got = cmn_malloc(MIB);
  for (uint64_t idx = 0; idx * MIB < n; idx++) {
    Cairn__V1__LookupChunksReply *lr = NULL;
    assert_int_equal(it_lookup(c, id, idx, &lr), 0);
    assert_int_equal(lr->n_chunks, 1);
    const Cairn__V1__ChunkLocation *loc = lr->chunks[0];
    assert_int_equal(loc->n_replicas, 3);
    size_t len = (size_t)CMN_MIN((uint64_t)MIB, n - idx * MIB);
    for (size_t r = 0; r < loc->n_replicas; r++) {
      int64_t k = it_read_replica(c, loc->replicas[r]->data_addr, loc->handle, loc->version, 0,
                                  got, len);
      assert_int_equal(k, (int64_t)len);
      assert_memory_equal(got, want + idx * MIB, len);
    }
    protobuf_c_message_free_unpacked(&lr->base, NULL);
  }
  free(got);
}

/* ---- data ------------------------------------------------------------------------- */

static void round_trip_across_chunk_boundaries(void **state) {
  fx *x = *state;
  size_t n = 3 * MIB + MIB / 2 + 123;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 1);
  cairn_file *f = open_rw(x->cl, "/rt/a");
  write_all(f, data, n, 0); /* four chunks, written in parallel */
  cairn_stat st;
  assert_int_equal(cairn_fstat(f, &st), 0);
  assert_int_equal(st.size, n);
  assert_int_equal(st.chunks, 4);
  assert_int_equal(st.goal, 3);
  uint8_t *got = cmn_malloc(n);
  assert_int_equal(cairn_pread(f, got, n, 0), (int64_t)n);
  assert_memory_equal(got, data, n);
  /* a slice across the first boundary, and the tail */
  assert_int_equal(cairn_pread(f, got, 3000, MIB - 1000), 3000);
  assert_memory_equal(got, data + MIB - 1000, 3000);
  assert_int_equal(cairn_pread(f, got, 100, n - 10), 10);
  assert_memory_equal(got, data + n - 10, 10);
  assert_int_equal(cairn_pread(f, got, 100, n), 0);
  assert_int_equal(cairn_pread(f, got, 100, n + MIB), 0);
  assert_replicas_agree(&x->c, st.id, data, n);
  cairn_close(f);
  /* another client, with nothing cached, sees the same */
  cairn_client *other = client_with(x, NULL, NULL);
  assert_file_is(other, "/rt/a", data, n);
  cairn_disconnect(other);
  free(got);
  free(data);
}

static void unaligned_writes_match_a_model(void **state) {
  fx *x = *state;
  size_t cap = 3 * MIB;
  uint8_t *model = cmn_calloc(1, cap), *data = cmn_malloc(cap);
  fill(data, cap, 2);
  struct { uint64_t off; size_t len; } w[] = {
      {0, 1000},          {999, 5001},           {MIB - 7, 20},        {300001, 900000},
      {2 * MIB + 5, 77},  {65535, 65537},        {MIB + 1, 3},         {2 * MIB - 1, 2},
      {1500000, 700000},  {17, 1},
  };
  cairn_file *f = open_rw(x->cl, "/model/f");
  size_t size = 0;
  for (size_t i = 0; i < CMN_ARRAY_LEN(w); i++) {
    const uint8_t *src = data + (w[i].off * 7 + i) % (cap - w[i].len);
    write_all(f, src, w[i].len, w[i].off);
    memcpy(model + w[i].off, src, w[i].len);
    size = CMN_MAX(size, (size_t)(w[i].off + w[i].len));
  }
  cairn_close(f);
  assert_file_is(x->cl, "/model/f", model, size);
  free(model);
  free(data);
}

static void holes_read_as_zeros(void **state) {
  fx *x = *state;
  cairn_file *f = open_rw(x->cl, "/holes/f");
  uint8_t head[100], tail[4096], mid[5000];
  fill(head, sizeof head, 3);
  fill(tail, sizeof tail, 4);
  fill(mid, sizeof mid, 5);
  write_all(f, head, sizeof head, 0);
  /* chunk 0's tail and chunk 1 stay holes; chunk 2 is zero-filled up to the data */
  uint64_t toff = 2 * MIB + MIB / 2;
  write_all(f, tail, sizeof tail, toff);
  size_t n = (size_t)toff + sizeof tail;
  uint8_t *model = cmn_calloc(1, n);
  memcpy(model, head, sizeof head);
  memcpy(model + toff, tail, sizeof tail);
  assert_file_is(x->cl, "/holes/f", model, n);
  /* a write past chunk 0's committed end fills the gap in that chunk */
  write_all(f, mid, sizeof mid, 600000);
  memcpy(model + 600000, mid, sizeof mid);
  assert_file_is(x->cl, "/holes/f", model, n);
  /* far past the end: the master allocates at most 64 chunks past it per call */
  uint64_t far = 80ull * MIB + 5;
  write_all(f, head, sizeof head, far);
  uint8_t *got = cmn_malloc(MIB);
  assert_int_equal(cairn_pread(f, got, MIB, 40ull * MIB), MIB);
  for (size_t i = 0; i < MIB; i++) assert_int_equal(got[i], 0);
  assert_int_equal(cairn_pread(f, got, 200, far - 100), 200);
  for (size_t i = 0; i < 100; i++) assert_int_equal(got[i], 0);
  assert_memory_equal(got + 100, head, sizeof head);
  cairn_stat st;
  assert_int_equal(cairn_fstat(f, &st), 0);
  assert_int_equal(st.size, far + sizeof head);
  cairn_close(f);
  free(got);
  free(model);
}

/* ---- record append ---------------------------------------------------------------- */

#define APPENDERS 8
#define RECORDS 30
#define REC_MAGIC 0x52435243u

typedef struct rec_hdr {
  uint32_t magic, thread, seq, len, crc;
} rec_hdr;

typedef struct appender {
  cairn_file *f;
  uint32_t thread;
  uint64_t offsets[RECORDS];
  size_t lens[RECORDS];
  int rc;
} appender;

static size_t record(uint32_t thread, uint32_t seq, uint8_t *buf) {
  size_t payload = 50 + (thread * 7919u + seq * 104729u) % 20000u;
  rec_hdr h = {REC_MAGIC, thread, seq, (uint32_t)payload, 0};
  fill(buf + sizeof h, payload, thread * 1000 + seq);
  h.crc = cmn_crc32c(0, buf + sizeof h, payload);
  memcpy(buf, &h, sizeof h);
  return sizeof h + payload;
}

static void *append_main(void *arg) {
  appender *a = arg;
  uint8_t *buf = cmn_malloc(sizeof(rec_hdr) + 20050);
  for (uint32_t s = 0; s < RECORDS && a->rc == 0; s++) {
    a->lens[s] = record(a->thread, s, buf);
    a->rc = cairn_append(a->f, buf, a->lens[s], &a->offsets[s]);
  }
  free(buf);
  return NULL;
}

static void appends_from_eight_threads(void **state) {
  fx *x = *state;
  cairn_file *f = open_rw(x->cl, "/ap/log"); /* one handle shared by every thread */
  appender a[APPENDERS];
  pthread_t th[APPENDERS];
  for (uint32_t t = 0; t < APPENDERS; t++) {
    memset(&a[t], 0, sizeof a[t]);
    a[t].f = f;
    a[t].thread = t;
    assert_int_equal(pthread_create(&th[t], NULL, append_main, &a[t]), 0);
  }
  for (int t = 0; t < APPENDERS; t++) pthread_join(th[t], NULL);
  cairn_stat st;
  assert_int_equal(cairn_fstat(f, &st), 0);
  uint8_t *all = cmn_malloc(st.size);
  assert_int_equal(cairn_pread(f, all, st.size, 0), (int64_t)st.size);
  uint8_t *want = cmn_malloc(sizeof(rec_hdr) + 20050);
  for (int t = 0; t < APPENDERS; t++) {
    assert_int_equal(a[t].rc, 0);
    for (uint32_t s = 0; s < RECORDS; s++) {
      size_t len = record((uint32_t)t, s, want);
      assert_int_equal(len, a[t].lens[s]);
      assert_true(a[t].offsets[s] + len <= st.size);
      /* a record never straddles a chunk: it is atomic on one chunk */
      assert_int_equal(a[t].offsets[s] / MIB, (a[t].offsets[s] + len - 1) / MIB);
      assert_memory_equal(all + a[t].offsets[s], want, len);
    }
  }
  /* too big for a record (a quarter chunk), and not writable */
  assert_int_equal(cairn_append(f, all, MIB / 4 + 1, NULL), CAIRN_ETOOBIG);
  cairn_file *ro = NULL;
  assert_int_equal(cairn_open(x->cl, "/ap/log", CAIRN_O_READ, &ro), 0);
  assert_int_equal(cairn_append(ro, want, 10, NULL), CAIRN_EPERM);
  assert_int_equal(cairn_pwrite(ro, want, 10, 0), CAIRN_EPERM);
  cairn_close(ro);
  cairn_close(f);
  free(want);
  free(all);
}

/* ---- whole files ---------------------------------------------------------------- */

typedef struct progress {
  uint64_t last, total;
  int calls;
  bool monotonic;
} progress;

static void on_progress(void *arg, uint64_t done, uint64_t total) {
  progress *p = arg;
  if (done < p->last) p->monotonic = false;
  p->last = done;
  p->total = total;
  p->calls++;
}

static void sha256_of(const char *path, uint8_t out[32]) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_int_equal(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL), 1);
  uint8_t buf[65536];
  ssize_t r;
  while ((r = read(fd, buf, sizeof buf)) > 0) EVP_DigestUpdate(ctx, buf, (size_t)r);
  unsigned int len = 0;
  assert_int_equal(EVP_DigestFinal_ex(ctx, out, &len), 1);
  assert_int_equal(len, 32);
  EVP_MD_CTX_free(ctx);
  close(fd);
}

struct pipe_writer {
  int fd;
  const uint8_t *data;
  size_t n;
};

static void *pipe_main(void *arg) {
  struct pipe_writer *w = arg;
  (void)cmn_write_all(w->fd, w->data, w->n);
  close(w->fd);
  return NULL;
}

static void put_and_get_twenty_mib(void **state) {
  fx *x = *state;
  char src[400], dst[400];
  snprintf(src, sizeof src, "%s/src.bin", x->c.dir);
  snprintf(dst, sizeof dst, "%s/dst.bin", x->c.dir);
  size_t n = 20 * MIB;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 6);
  assert_int_equal(cmn_write_file_atomic(src, data, n, 0644), 0);
  assert_int_equal(cairn_mkdir(x->cl, "/big", 0), 0);
  int in = open(src, O_RDONLY);
  progress p = {.monotonic = true};
  uint64_t bytes = 0;
  assert_int_equal(cairn_put_fd(x->cl, in, "/big/file.bin", 0, on_progress, &p, &bytes), 0);
  assert_int_equal(bytes, n);
  assert_true(p.monotonic && p.calls >= 2);
  assert_int_equal(p.last, n);
  assert_int_equal(p.total, n);
  /* only the target is there: the temporary name is gone */
  cairn_list *l;
  cairn_dirent e;
  assert_int_equal(cairn_list_open(x->cl, "/big", &l), 0);
  assert_int_equal(cairn_list_next(l, &e), 1);
  assert_string_equal(e.name, "file.bin");
  assert_int_equal(e.st.size, n);
  assert_int_equal(cairn_list_next(l, &e), 0);
  cairn_list_close(l);
  int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  progress q = {.monotonic = true};
  assert_int_equal(cairn_get_fd(x->cl, "/big/file.bin", out, on_progress, &q, &bytes), 0);
  close(out);
  assert_int_equal(bytes, n);
  assert_int_equal(q.last, n);
  uint8_t h1[32], h2[32];
  sha256_of(src, h1);
  sha256_of(dst, h2);
  assert_memory_equal(h1, h2, 32);
  /* an existing target needs overwrite */
  assert_int_equal(lseek(in, 0, SEEK_SET), 0);
  assert_int_equal(cairn_put_fd(x->cl, in, "/big/file.bin", 0, NULL, NULL, NULL), CAIRN_EEXIST);
  assert_int_equal(lseek(in, 10 * MIB, SEEK_SET), 10 * MIB); /* from the current offset */
  assert_int_equal(cairn_put_fd(x->cl, in, "/big/file.bin", 1, NULL, NULL, &bytes), 0);
  assert_int_equal(bytes, 10 * MIB);
  close(in);
  assert_file_is(x->cl, "/big/file.bin", data + 10 * MIB, 10 * MIB);
  /* from a pipe: whole chunks are buffered in turn */
  int pfd[2];
  assert_int_equal(pipe(pfd), 0);
  struct pipe_writer w = {pfd[1], data, 3 * MIB + 17};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, pipe_main, &w), 0);
  progress r = {.monotonic = true};
  assert_int_equal(cairn_put_fd(x->cl, pfd[0], "/big/piped", 0, on_progress, &r, &bytes), 0);
  pthread_join(th, NULL);
  close(pfd[0]);
  assert_int_equal(bytes, w.n);
  assert_int_equal(r.total, 0); /* unknown in advance */
  assert_int_equal(r.last, w.n);
  assert_file_is(x->cl, "/big/piped", data, w.n);
  free(data);
}

/* ---- faults ------------------------------------------------------------------------- */

static void prefer_zone(cairn_options *o, void *arg) { o->zone = arg; }

/* A file of n bytes, and the chunkserver holding the first replica of
 * its chunk 0 (which a client preferring its zone reads first). */
static int setup_victim(fx *x, const char *path, uint8_t *data, size_t n, uint64_t *handle) {
  cairn_file *f = open_rw(x->cl, path);
  write_all(f, data, n, 0);
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(it_lookup(&x->c, f->id, 0, &lr), 0);
  int victim = it_cs_by_id(&x->c, lr->chunks[0]->replicas[0]->id);
  *handle = lr->chunks[0]->handle;
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  cairn_close(f);
  assert_true(victim >= 0);
  return victim;
}

static void read_falls_back_when_a_server_dies(void **state) {
  fx *x = *state;
  size_t n = 2 * MIB + MIB / 2;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 7);
  uint64_t handle;
  int victim = setup_victim(x, "/fault/dead", data, n, &handle);
  cairn_client *cl = client_with(x, prefer_zone, x->c.cs[victim].zone);
  assert_file_is(cl, "/fault/dead", data, n); /* locations cached, connections pooled */
  cairn__stats before, after;
  cairn__client_stats(cl, &before);
  assert_int_equal(before.fallbacks, 0);
  it_cs_kill(&x->c, victim);
  assert_file_is(cl, "/fault/dead", data, n);
  cairn__client_stats(cl, &after);
  assert_true(after.fallbacks > 0);
  cairn_disconnect(cl);
  free(data);
}

static void read_skips_a_corrupt_replica(void **state) {
  fx *x = *state;
  size_t n = MIB + MIB / 2;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 8);
  uint64_t handle;
  int victim = setup_victim(x, "/fault/corrupt", data, n, &handle);
  char path[600];
  it_replica_path(&x->c, victim, handle, path, sizeof path);
  assert_true(path[0] != '\0');
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  off_t end = lseek(fd, 0, SEEK_END);
  uint8_t b;
  assert_int_equal(pread(fd, &b, 1, end - 77), 1); /* in the chunk's last block */
  b ^= 0x40;
  assert_int_equal(pwrite(fd, &b, 1, end - 77), 1);
  close(fd);
  cairn_client *cl = client_with(x, prefer_zone, x->c.cs[victim].zone);
  assert_file_is(cl, "/fault/corrupt", data, n);
  cairn__stats st;
  cairn__client_stats(cl, &st);
  assert_true(st.fallbacks > 0); /* the bad replica was tried first and skipped */
  assert_file_is(cl, "/fault/corrupt", data, n);
  cairn_disconnect(cl);
  free(data);
}

static void copy_file(const char *from, const char *to) {
  size_t n = 0;
  char *buf = NULL;
  assert_int_equal(cmn_read_file(from, 8 * MIB, &buf, &n), 0);
  FILE *fp = fopen(to, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(buf, 1, n, fp), n);
  assert_int_equal(fclose(fp), 0);
  free(buf);
}

struct chunk_at {
  uint64_t file_id, length;
};

static bool master_knows_length(it_cluster *c, void *arg) {
  struct chunk_at *a = arg;
  Cairn__V1__LookupChunksReply *lr = NULL;
  if (it_lookup(c, a->file_id, 0, &lr) != 0) return false;
  bool ok = lr->n_chunks == 1 && lr->chunks[0]->length == a->length;
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  return ok;
}

/* A replica that holds fewer committed bytes than its version has (it
 * lacks writes: the old copy of a replica put back at the same version) is
 * not a hole: the read moves on to a replica that has them, never handing
 * out zeros for them. */
static void read_skips_a_replica_that_lacks_writes(void **state) {
  fx *x = *state;
  size_t n = MIB + MIB / 2;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 9);
  uint64_t handle;
  int victim = setup_victim(x, "/fault/short", data, MIB / 4, &handle);
  char path[600], saved[700];
  it_replica_path(&x->c, victim, handle, path, sizeof path);
  assert_true(path[0] != '\0');
  snprintf(saved, sizeof saved, "%s/short-replica", x->c.dir);
  copy_file(path, saved); /* a quarter chunk committed, at the current version */
  cairn_file *f = open_rw(x->cl, "/fault/short");
  write_all(f, data + MIB / 4, n - MIB / 4, MIB / 4);
  struct chunk_at at = {f->id, MIB};
  cairn_close(f);
  /* The victim comes back with the old copy; every server restarts, so the
   * master learns the chunk's length from their reports. */
  for (int i = 0; i < 3; i++) it_cs_kill(&x->c, i);
  copy_file(saved, path);
  for (int i = 0; i < 3; i++) assert_int_equal(it_cs_start(&x->c, i), 0);
  assert_true(it_wait_until(&x->c, 20000, master_knows_length, &at));
  cairn_client *cl = client_with(x, prefer_zone, x->c.cs[victim].zone);
  assert_file_is(cl, "/fault/short", data, n);
  cairn__stats st;
  cairn__client_stats(cl, &st);
  assert_true(st.fallbacks > 0); /* the short replica was tried first and skipped */
  cairn_disconnect(cl);
  free(data);
}

static void write_survives_a_dead_secondary(void **state) {
  fx *x = *state;
  size_t n = MIB + MIB / 2;
  uint8_t *v1 = cmn_malloc(n), *v2 = cmn_malloc(n);
  fill(v1, n, 10);
  fill(v2, n, 11);
  cairn_file *f = open_rw(x->cl, "/fault/write");
  write_all(f, v1, n, 0);
  /* a secondary of chunk 0 (the lease holder is listed first) dies before the
   * master notices: the push along the chain fails, the bytes go to each live
   * replica, and two of three commit */
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(it_lookup(&x->c, f->id, 0, &lr), 0);
  assert_true(lr->chunks[0]->primary_id[0] != '\0');
  int victim = it_cs_by_id(&x->c, lr->chunks[0]->replicas[lr->chunks[0]->n_replicas - 1]->id);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  assert_true(victim >= 0);
  it_cs_kill(&x->c, victim);
  write_all(f, v2, n, 0);
  assert_file_is(x->cl, "/fault/write", v2, n);
  cairn_client *other = client_with(x, NULL, NULL);
  assert_file_is(other, "/fault/write", v2, n);
  cairn_disconnect(other);
  cairn_close(f);
  free(v1);
  free(v2);
}

/* ---- cache -------------------------------------------------------------------------- */

static void short_ttl(cairn_options *o, void *arg) { o->cache_ttl_ms = *(int64_t *)arg; }

static uint64_t lookups(cairn_client *cl) {
  cairn__stats st;
  cairn__client_stats(cl, &st);
  return st.lookups;
}

static void cache_ttl_expires(void **state) {
  fx *x = *state;
  size_t n = MIB + 1000;
  uint8_t *data = cmn_malloc(n), *got = cmn_malloc(n);
  fill(data, n, 9);
  cairn_file *w = open_rw(x->cl, "/cache/f");
  write_all(w, data, n, 0);
  cairn_close(w);
  int64_t ttl = 500;
  cairn_client *cl = client_with(x, short_ttl, &ttl);
  cairn_file *f = NULL;
  assert_int_equal(cairn_open(cl, "/cache/f", CAIRN_O_READ, &f), 0);
  assert_int_equal(cairn_pread(f, got, n, 0), (int64_t)n);
  uint64_t l1 = lookups(cl);
  assert_true(l1 >= 1);
  assert_int_equal(cairn_pread(f, got, n, 0), (int64_t)n); /* all cached */
  assert_int_equal(lookups(cl), l1);
  usleep(700 * 1000);
  assert_int_equal(cairn_pread(f, got, n, 0), (int64_t)n); /* expired: asked again */
  assert_true(lookups(cl) > l1);
  assert_memory_equal(got, data, n);
  cairn_close(f);
  /* CAIRN_O_FRESH never uses the cache */
  assert_int_equal(cairn_open(cl, "/cache/f", CAIRN_O_READ | CAIRN_O_FRESH, &f), 0);
  uint64_t l2 = lookups(cl);
  assert_int_equal(cairn_pread(f, got, 10, 0), 10);
  assert_int_equal(cairn_pread(f, got, 10, 0), 10);
  assert_int_equal(lookups(cl), l2 + 2);
  cairn_close(f);
  cairn_disconnect(cl);
  /* a cache TTL of 0 caches nothing */
  ttl = 0;
  cl = client_with(x, short_ttl, &ttl);
  assert_int_equal(cairn_open(cl, "/cache/f", CAIRN_O_READ, &f), 0);
  assert_int_equal(cairn_pread(f, got, 10, 0), 10);
  l2 = lookups(cl);
  assert_int_equal(cairn_pread(f, got, 10, 0), 10);
  assert_int_equal(lookups(cl), l2 + 1);
  cairn_close(f);
  cairn_disconnect(cl);
  free(got);
  free(data);
}

/* ---- namespace ------------------------------------------------------------------------- */

static uint64_t create(cairn_client *cl, const char *path) {
  cairn_file *f = NULL;
  assert_int_equal(cairn_open(cl, path, CAIRN_O_WRITE | CAIRN_O_CREATE | CAIRN_O_EXCL, &f), 0);
  uint64_t id = f->id;
  cairn_close(f);
  return id;
}

static void namespace_through_the_library(void **state) {
  fx *x = *state;
  cairn_client *cl = x->cl;
  assert_int_equal(cairn_mkdir(cl, "/ns/a/b", 1), 0);
  assert_int_equal(cairn_mkdir(cl, "/ns/a", 0), CAIRN_EEXIST);
  assert_int_equal(cairn_mkdir(cl, "/x/y", 0), CAIRN_ENOENT);
  const char *names[] = {"f1", "f2", "f3", "f4", "f5"};
  uint64_t ids[5];
  char p[64];
  for (int i = 0; i < 5; i++) {
    snprintf(p, sizeof p, "/ns/a/%s", names[i]);
    ids[i] = create(cl, p);
  }
  cairn_file *f = NULL;
  assert_int_equal(cairn_open(cl, "/ns/a/f1", CAIRN_O_WRITE | CAIRN_O_CREATE | CAIRN_O_EXCL, &f),
                   CAIRN_EEXIST);
  cairn_stat st;
  assert_int_equal(cairn_stat_path(cl, "/ns/a", &st), 0);
  assert_int_equal(st.type, CAIRN_TYPE_DIR);
  assert_int_equal(cairn_stat_path(cl, "/ns/a/f1", &st), 0);
  assert_int_equal(st.type, CAIRN_TYPE_FILE);
  assert_int_equal(st.id, ids[0]);
  assert_int_equal(st.size, 0);
  /* listing in name order */
  cairn_list *l;
  cairn_dirent e;
  assert_int_equal(cairn_list_open(cl, "/ns/a", &l), 0);
  const char *want[] = {"b", "f1", "f2", "f3", "f4", "f5"};
  for (int i = 0; i < 6; i++) {
    assert_int_equal(cairn_list_next(l, &e), 1);
    assert_string_equal(e.name, want[i]);
    assert_int_equal(e.st.type, i == 0 ? CAIRN_TYPE_DIR : CAIRN_TYPE_FILE);
  }
  assert_int_equal(cairn_list_next(l, &e), 0);
  assert_int_equal(cairn_list_next(l, &e), 0);
  cairn_list_close(l);
  assert_int_equal(cairn_list_open(cl, "/ns/none", &l), CAIRN_ENOENT);
  /* rename */
  assert_int_equal(cairn_rename(cl, "/ns/a/f1", "/ns/a/g1", 0), 0);
  assert_int_equal(cairn_stat_path(cl, "/ns/a/f1", &st), CAIRN_ENOENT);
  assert_int_equal(cairn_stat_path(cl, "/ns/a/g1", &st), 0);
  assert_int_equal(st.id, ids[0]);
  assert_int_equal(cairn_rename(cl, "/ns/a/f2", "/ns/a/f3", 0), CAIRN_EEXIST);
  assert_int_equal(cairn_rename(cl, "/ns/a/f2", "/ns/a/f3", 1), 0);
  assert_int_equal(cairn_stat_path(cl, "/ns/a/f3", &st), 0);
  assert_int_equal(st.id, ids[1]);
  /* remove, undelete */
  char trash[512];
  assert_int_equal(cairn_remove(cl, "/ns/a", 0, NULL, 0), CAIRN_ENOTEMPTY);
  assert_int_equal(cairn_remove(cl, "/ns/a/g1", 0, trash, sizeof trash), 0);
  assert_int_equal(strncmp(trash, "/.trash/", 8), 0);
  assert_int_equal(cairn_stat_path(cl, "/ns/a/g1", &st), CAIRN_ENOENT);
  assert_int_equal(cairn_stat_path(cl, trash, &st), 0);
  assert_true(st.trashed_ms > 0);
  assert_int_equal(cairn_undelete(cl, trash, NULL), 0);
  assert_int_equal(cairn_stat_path(cl, "/ns/a/g1", &st), 0);
  assert_int_equal(st.id, ids[0]);
  assert_int_equal(cairn_remove(cl, "/ns/a/b", 1, trash, sizeof trash), 0);
  assert_int_equal(cairn_undelete(cl, trash, "/ns/b2"), 0);
  assert_int_equal(cairn_stat_path(cl, "/ns/b2", &st), 0);
  assert_int_equal(st.type, CAIRN_TYPE_DIR);
  assert_int_equal(cairn_remove(cl, "/ns/a", 1, NULL, 0), 0);
  assert_int_equal(cairn_stat_path(cl, "/ns/a/f4", &st), CAIRN_ENOENT);
  /* goal */
  assert_int_equal(cairn_set_goal(cl, "/ns/b2", 2), 0);
  uint64_t id = create(cl, "/ns/b2/new");
  assert_int_equal(cairn_stat_path(cl, "/ns/b2/new", &st), 0);
  assert_int_equal(st.id, id);
  assert_int_equal(st.goal, 2); /* the directory's default */
  assert_int_equal(cairn_set_goal(cl, "/ns/b2/new", 1), 0);
  assert_int_equal(cairn_stat_path(cl, "/ns/b2/new", &st), 0);
  assert_int_equal(st.goal, 1);
  assert_int_equal(cairn_set_goal(cl, "/ns/nope", 2), CAIRN_ENOENT);
  assert_int_equal(cairn_mkdir(cl, "/.trash/x", 0), CAIRN_EPERM);
}

static void errors_for_bad_paths_and_missing_files(void **state) {
  fx *x = *state;
  cairn_client *cl = x->cl;
  cairn_file *f = NULL;
  assert_int_equal(cairn_open(cl, "/nope", CAIRN_O_READ, &f), CAIRN_ENOENT);
  assert_int_equal(cairn_open(cl, "relative", CAIRN_O_READ, &f), CAIRN_EBADPATH);
  assert_int_equal(cairn_open(cl, "/a//b", CAIRN_O_READ, &f), CAIRN_EBADPATH);
  assert_int_equal(cairn_open(cl, "/a/../b", CAIRN_O_READ, &f), CAIRN_EBADPATH);
  char name[300];
  memset(name, 'n', sizeof name);
  name[0] = '/';
  name[299] = '\0';
  assert_int_equal(cairn_open(cl, name, CAIRN_O_READ, &f), CAIRN_ENAMETOOLONG);
  assert_int_equal(cairn_mkdir(cl, "/d", 0), 0);
  assert_int_equal(cairn_open(cl, "/d", CAIRN_O_READ, &f), CAIRN_EISDIR);
  (void)create(cl, "/file");
  assert_int_equal(cairn_open(cl, "/file/x", CAIRN_O_READ | CAIRN_O_WRITE | CAIRN_O_CREATE, &f),
                   CAIRN_ENOTDIR);
  assert_int_equal(cairn_open(cl, "/file", CAIRN_O_WRITE, &f), 0);
  uint8_t buf[16] = {0};
  assert_int_equal(cairn_pread(f, buf, sizeof buf, 0), CAIRN_EPERM);
  cairn_close(f);
  int fd = open("/dev/null", O_RDWR);
  assert_int_equal(cairn_get_fd(cl, "/missing", fd, NULL, NULL, NULL), CAIRN_ENOENT);
  assert_int_equal(cairn_put_fd(cl, fd, "/no/such/dir/f", 0, NULL, NULL, NULL), CAIRN_ENOENT);
  close(fd);
  /* nothing was left behind by the failed put */
  cairn_list *l;
  cairn_dirent e;
  assert_int_equal(cairn_list_open(cl, "/", &l), 0);
  int rc;
  while ((rc = cairn_list_next(l, &e)) == 1) assert_null(strstr(e.name, ".put-"));
  assert_int_equal(rc, 0);
  cairn_list_close(l);
}

static void cluster_status_and_drain(void **state) {
  fx *x = *state;
  cairn_cluster_status s;
  assert_int_equal(cairn_cluster_status_get(x->cl, &s), 0);
  assert_true(s.cluster_id[0] != '\0');
  assert_int_equal(s.nservers, 3);
  for (size_t i = 0; i < s.nservers; i++) {
    assert_string_equal(s.servers[i].state, "alive");
    assert_true(it_cs_by_id(&x->c, s.servers[i].id) >= 0);
    assert_true(s.servers[i].data_addr[0] && s.servers[i].zone[0]);
  }
  cairn_cluster_status_free(&s);
  assert_null(s.servers);
  assert_int_equal(cairn_drain(x->cl, "no-such-server", 0), CAIRN_ENOENT);
  assert_int_equal(cairn_drain(x->cl, x->c.cs[0].id, 0), 0);
  assert_int_equal(cairn_cluster_status_get(x->cl, &s), 0);
  int draining = 0;
  for (size_t i = 0; i < s.nservers; i++) draining += strcmp(s.servers[i].state, "draining") == 0;
  assert_int_equal(draining, 1);
  cairn_cluster_status_free(&s);
  assert_int_equal(cairn_drain(x->cl, x->c.cs[0].id, 1), 0);
}

/* Bytes the caller holds go in pieces larger than the library's own
 * buffers; servers whose push buffer cannot hold such a piece (here 24 MiB
 * against 32 MiB pieces) refuse it, and the write goes on in smaller pieces
 * instead of waiting for room that never comes. */
static void large_pieces_fall_back_on_small_push_buffers(void **state) {
  (void)state;
  fx x = {0};
  if (it_cluster_start_with(&x.c, "client-pieces", 3, 3, "64M", "24M") != 0) {
    it_cluster_stop(&x.c);
    fail_msg("cluster did not start (logs kept with CAIRN_KEEP_TEST_DIRS=1)");
  }
  cairn_client *cl = client_with(&x, NULL, NULL);
  const size_t n = (70u << 20) + 12345; /* a whole chunk and part of the next */
  uint8_t *buf = cmn_malloc(n);
  fill(buf, n, 77);
  cairn_file *f = open_rw(cl, "/pieces/big");
  int64_t t0 = cmn_mono_ms();
  write_all(f, buf, n, 0);
  assert_true(cmn_mono_ms() - t0 < 20000); /* no wait for the op deadline */
  cairn_close(f);
  assert_file_is(cl, "/pieces/big", buf, n);
  /* The first server did refuse a large piece. */
  const size_t cap = 1u << 20;
  char *out = cmn_malloc(cap);
  long refused = 0;
  for (int i = 0; i < x.c.ncs; i++) {
    assert_int_equal(it_http_get(x.c.cs[i].http, "/metrics", NULL, out, cap), 200);
    const char *m = strstr(out, "cairn_dataplane_errors_total{kind=\"busy\"} ");
    if (m) refused += strtol(m + strlen("cairn_dataplane_errors_total{kind=\"busy\"} "), NULL, 10);
  }
  assert_true(refused >= 1);
  free(out);
  free(buf);
  cairn_disconnect(cl);
  it_cluster_stop(&x.c);
}

CAIRN_TEST_MAIN(
    cmocka_unit_test_setup_teardown(round_trip_across_chunk_boundaries, setup, teardown),
    cmocka_unit_test_setup_teardown(unaligned_writes_match_a_model, setup, teardown),
    cmocka_unit_test_setup_teardown(holes_read_as_zeros, setup, teardown),
    cmocka_unit_test_setup_teardown(appends_from_eight_threads, setup, teardown),
    cmocka_unit_test_setup_teardown(put_and_get_twenty_mib, setup, teardown),
    cmocka_unit_test_setup_teardown(read_falls_back_when_a_server_dies, setup, teardown),
    cmocka_unit_test_setup_teardown(read_skips_a_corrupt_replica, setup, teardown),
    cmocka_unit_test_setup_teardown(read_skips_a_replica_that_lacks_writes, setup, teardown),
    cmocka_unit_test_setup_teardown(write_survives_a_dead_secondary, setup, teardown),
    cmocka_unit_test_setup_teardown(cache_ttl_expires, setup, teardown),
    cmocka_unit_test_setup_teardown(namespace_through_the_library, setup, teardown),
    cmocka_unit_test_setup_teardown(errors_for_bad_paths_and_missing_files, setup, teardown),
    cmocka_unit_test_setup_teardown(cluster_status_and_drain, setup, teardown),
    cmocka_unit_test(large_pieces_fall_back_on_small_push_buffers))
