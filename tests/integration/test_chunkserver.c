/*
 * Chunkservers with a real master on 127.0.0.1: writes through push + 2PC
 * with all replicas up, with one and two replicas dead, concurrent record
 * appends, and a corrupted replica found on read and replaced.
 */
#include "test_main.h"

#include "cairn_error.h"
#include "chunkserver.pb-c.h"
#include "cluster.h"
#include "cmn_crc32c.h"
#include "cmn_dpclient.h"
#include "cmn_util.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int setup3(void **state) {
  it_cluster *c = cmn_calloc(1, sizeof *c);
  *state = c;
  return it_cluster_start(c, "cs3", 3, 3);
}

static int setup4(void **state) {
  it_cluster *c = cmn_calloc(1, sizeof *c);
  *state = c;
  return it_cluster_start(c, "cs4", 4, 4);
}

static int teardown(void **state) {
  it_cluster *c = *state;
  it_cluster_stop(c);
  free(c);
  return 0;
}

static void fill(uint8_t *buf, size_t n, uint32_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    buf[i] = (uint8_t)x;
  }
}

/* Every replica of chunk 0 holds exactly `want`. */
static void assert_replicas_equal(it_cluster *c, uint64_t file_id, const uint8_t *want, size_t n,
                                  size_t expect_replicas) {
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(it_lookup(c, file_id, 0, &lr), 0);
  assert_int_equal(lr->n_chunks, 1);
  const Cairn__V1__ChunkLocation *loc = lr->chunks[0];
  assert_int_equal(loc->n_replicas, expect_replicas);
  uint8_t *got = cmn_malloc(n + 16);
  for (size_t i = 0; i < loc->n_replicas; i++) {
    int64_t r = it_read_replica(c, loc->replicas[i]->data_addr, loc->handle, loc->version, 0, got,
                                n + 16);
    assert_int_equal(r, (int64_t)n);
    assert_memory_equal(got, want, n);
  }
  free(got);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
}

static void write_with_all_three_up(void **state) {
  it_cluster *c = *state;
  uint64_t id;
  assert_int_equal(it_create(c, "/w/all-up", &id), 0);
  size_t n = 700 * 1024;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 1);
  /* Two writes: the second starts at an unaligned offset inside a block. */
  assert_int_equal(it_write(c, id, 0, data, 300 * 1024 + 7), 0);
  assert_int_equal(it_write(c, id, 300 * 1024 + 7, data + 300 * 1024 + 7, n - 300 * 1024 - 7), 0);
  assert_replicas_equal(c, id, data, n, 3);
  /* An overwrite inside committed data. */
  fill(data + 1000, 5000, 2);
  assert_int_equal(it_write(c, id, 1000, data + 1000, 5000), 0);
  assert_replicas_equal(c, id, data, n, 3);
  free(data);
}

struct repaired_arg {
  uint64_t file_id;
  int avoid;       /* the dead chunkserver */
  uint64_t min_version;
};

static bool chunk_repaired(it_cluster *c, void *arg) {
  struct repaired_arg *a = arg;
  Cairn__V1__LookupChunksReply *lr = NULL;
  if (it_lookup(c, a->file_id, 0, &lr) != 0) return false;
  bool ok = lr->n_chunks == 1 && lr->chunks[0]->n_replicas == 3 &&
            lr->chunks[0]->version >= a->min_version;
  for (size_t i = 0; ok && i < lr->chunks[0]->n_replicas; i++)
    if (a->avoid >= 0 && strcmp(lr->chunks[0]->replicas[i]->id, c->cs[a->avoid].id) == 0) ok = false;
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  return ok;
}

static void one_secondary_dead_write_succeeds_and_is_repaired(void **state) {
  it_cluster *c = *state;
  uint64_t id;
  assert_int_equal(it_create(c, "/w/one-dead", &id), 0);
  size_t n = 200 * 1024;
  uint8_t *data = cmn_malloc(2 * n);
  fill(data, 2 * n, 3);
  assert_int_equal(it_write(c, id, 0, data, n), 0);
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(it_lookup(c, id, 0, &lr), 0);
  uint64_t v0 = lr->chunks[0]->version;
  /* Kill a secondary (not the lease holder). */
  int victim = -1;
  for (size_t i = 0; i < lr->chunks[0]->n_replicas; i++) {
    if (strcmp(lr->chunks[0]->replicas[i]->id, lr->chunks[0]->primary_id) == 0) continue;
    victim = it_cs_by_id(c, lr->chunks[0]->replicas[i]->id);
    break;
  }
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  assert_true(victim >= 0);
  it_cs_kill(c, victim);
  /* The write succeeds on the two others; the dead one is reported and the
   * version bumped before the writer hears success. */
  assert_int_equal(it_write(c, id, n, data + n, n), 0);
  assert_int_equal(it_lookup(c, id, 0, &lr), 0);
  assert_true(lr->chunks[0]->version > v0);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  /* The master copies the chunk to the fourth server: three replicas again. */
  struct repaired_arg a = {id, victim, v0 + 1};
  assert_true(it_wait_until(c, 60000, chunk_repaired, &a));
  assert_replicas_equal(c, id, data, 2 * n, 3);
  free(data);
}

static void two_dead_write_fails_and_changes_nothing(void **state) {
  it_cluster *c = *state;
  uint64_t id;
  assert_int_equal(it_create(c, "/w/two-dead", &id), 0);
  size_t n = 100 * 1024;
  uint8_t *data = cmn_malloc(2 * n);
  fill(data, 2 * n, 4);
  assert_int_equal(it_write(c, id, 0, data, n), 0);
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(it_lookup(c, id, 0, &lr), 0);
  Cairn__V1__ChunkLocation *loc = lr->chunks[0];
  int primary = it_cs_by_id(c, loc->primary_id);
  assert_true(primary >= 0);
  for (size_t i = 0; i < loc->n_replicas; i++) {
    int k = it_cs_by_id(c, loc->replicas[i]->id);
    if (k != primary) it_cs_kill(c, k);
  }
  char path[600];
  it_replica_path(c, primary, loc->handle, path, sizeof path);
  assert_true(path[0] != '\0');
  char *before = NULL, *after = NULL;
  size_t blen = 0, alen = 0;
  assert_int_equal(cmn_read_file(path, 8u << 20, &before, &blen), 0);
  /* Push to the primary alone and ask it to write: the secondaries cannot
   * vote, so the 2PC aborts and the primary's replica is untouched. */
  uint8_t did[16];
  cmn_random_bytes(did, sizeof did);
  cmn_dp_conn *conn;
  assert_int_equal(cmn_dp_connect(c->cs[primary].data, c->secret, 10000, &conn), 0);
  assert_int_equal(cmn_dp_push(conn, did, data + n, n, NULL, 0), 0);
  cmn_dp_close(conn);
  cmn_rpc_channel *ch;
  assert_int_equal(cmn_rpc_pool_get(c->peers, c->cs[primary].rpc, &ch), 0);
  Cairn__V1__WriteRequest req = CAIRN__V1__WRITE_REQUEST__INIT;
  req.handle = loc->handle;
  req.version = loc->version;
  req.offset = n;
  req.data_id.data = did;
  req.data_id.len = sizeof did;
  req.length = (uint32_t)n;
  req.crc32c = cmn_crc32c(0, data + n, n);
  req.n_replicas = loc->n_replicas;
  req.replicas = loc->replicas;
  ProtobufCMessage *reply = NULL;
  int rc = cmn_rpc_call_unary(ch, &cairn__v1__chunkserver__descriptor, "Write", &req.base, &reply,
                              30000, NULL);
  assert_true(rc < 0);
  assert_true(cairn_err_retryable(rc));
  assert_int_equal(cmn_read_file(path, 8u << 20, &after, &alen), 0);
  assert_int_equal(alen, blen);
  assert_memory_equal(after, before, blen);
  free(before);
  free(after);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  free(data);
}

/* ---- concurrent record appends -------------------------------------------------- */

#define APPENDERS 8
#define RECORDS 40

struct appender {
  it_cluster *c;
  uint64_t file_id;
  int id;
  uint64_t offsets[RECORDS];
  uint32_t sizes[RECORDS];
  int ok;
};

/* A record: [u32 magic][u32 writer][u32 seq][u32 len][u32 crc of body][body]. */
static size_t make_record(uint8_t *buf, int writer, int seq) {
  uint32_t len = 200 + (uint32_t)((writer * 7919 + seq * 104729) % 20000);
  uint32_t hdr[5] = {0x52435244u, (uint32_t)writer, (uint32_t)seq, len, 0};
  fill(buf + sizeof hdr, len, (uint32_t)(writer * 1000 + seq));
  hdr[4] = cmn_crc32c(0, buf + sizeof hdr, len);
  memcpy(buf, hdr, sizeof hdr);
  return sizeof hdr + len;
}

static void *append_main(void *arg) {
  struct appender *a = arg;
  uint8_t *buf = cmn_malloc(32 * 1024);
  for (int i = 0; i < RECORDS; i++) {
    size_t n = make_record(buf, a->id, i);
    if (it_append(a->c, a->file_id, buf, n, &a->offsets[i]) != 0) break;
    a->sizes[i] = (uint32_t)n;
    a->ok++;
  }
  free(buf);
  return NULL;
}

static void concurrent_record_appends(void **state) {
  it_cluster *c = *state;
  uint64_t id;
  assert_int_equal(it_create(c, "/w/log", &id), 0);
  pthread_t th[APPENDERS];
  struct appender *ap = cmn_calloc(APPENDERS, sizeof *ap);
  for (int i = 0; i < APPENDERS; i++) {
    ap[i] = (struct appender){.c = c, .file_id = id, .id = i};
    assert_int_equal(pthread_create(&th[i], NULL, append_main, &ap[i]), 0);
  }
  for (int i = 0; i < APPENDERS; i++) pthread_join(th[i], NULL);
  /* Every acknowledged record is where its reply said, intact. */
  uint8_t *chunk = cmn_malloc(IT_CHUNK_SIZE);
  uint8_t *want = cmn_malloc(32 * 1024);
  uint64_t cur_index = UINT64_MAX;
  int64_t have = 0;
  int checked = 0;
  for (int w = 0; w < APPENDERS; w++) {
    assert_int_equal(ap[w].ok, RECORDS);
    for (int i = 0; i < RECORDS; i++) {
      uint64_t index = ap[w].offsets[i] / IT_CHUNK_SIZE, off = ap[w].offsets[i] % IT_CHUNK_SIZE;
      if (index != cur_index) {
        Cairn__V1__LookupChunksReply *lr = NULL;
        assert_int_equal(it_lookup(c, id, index, &lr), 0);
        assert_int_equal(lr->n_chunks, 1);
        have = it_read_replica(c, lr->chunks[0]->replicas[0]->data_addr, lr->chunks[0]->handle,
                               lr->chunks[0]->version, 0, chunk, IT_CHUNK_SIZE);
        protobuf_c_message_free_unpacked(&lr->base, NULL);
        assert_true(have > 0);
        cur_index = index;
      }
      size_t n = make_record(want, w, i);
      assert_int_equal(n, ap[w].sizes[i]);
      assert_true(off + n <= (uint64_t)have);
      assert_memory_equal(chunk + off, want, n);
      checked++;
    }
  }
  assert_int_equal(checked, APPENDERS * RECORDS);
  free(chunk);
  free(want);
  free(ap);
}

/* ---- corruption ---------------------------------------------------------------------------- */

/* Flip the bits `mask` of the byte `back` bytes before the end of a
 * replica file, behind the store's back. */
static void flip_byte(const char *path, off_t back, unsigned char mask) {
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  off_t end = lseek(fd, 0, SEEK_END);
  unsigned char b;
  assert_int_equal(pread(fd, &b, 1, end - back), 1);
  b ^= mask;
  assert_int_equal(pwrite(fd, &b, 1, end - back), 1);
  close(fd);
}

static bool replica_readable_everywhere(it_cluster *c, void *arg) {
  uint64_t *fid = arg;
  Cairn__V1__LookupChunksReply *lr = NULL;
  if (it_lookup(c, fid[0], 0, &lr) != 0) return false;
  bool ok = lr->n_chunks == 1 && lr->chunks[0]->n_replicas == 3;
  uint8_t *buf = cmn_malloc(fid[1] + 16);
  for (size_t i = 0; ok && i < lr->chunks[0]->n_replicas; i++)
    ok = it_read_replica(c, lr->chunks[0]->replicas[i]->data_addr, lr->chunks[0]->handle,
                         lr->chunks[0]->version, 0, buf, fid[1] + 16) == (int64_t)fid[1];
  free(buf);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  return ok;
}

static void corrupted_byte_is_detected_and_repaired(void **state) {
  it_cluster *c = *state;
  uint64_t id;
  assert_int_equal(it_create(c, "/w/corrupt", &id), 0);
  size_t n = 256 * 1024;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 5);
  assert_int_equal(it_write(c, id, 0, data, n), 0);
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(it_lookup(c, id, 0, &lr), 0);
  uint64_t handle = lr->chunks[0]->handle, version = lr->chunks[0]->version;
  int victim = it_cs_by_id(c, lr->chunks[0]->replicas[1]->id);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  char path[600];
  it_replica_path(c, victim, handle, path, sizeof path);
  assert_true(path[0] != '\0');
  /* Flip one byte near the end of the file: inside the data. */
  flip_byte(path, 1000, 0x40);
  /* The read from that replica fails its checksum: no bytes come back. */
  uint8_t *buf = cmn_malloc(n);
  assert_int_equal(it_read_replica(c, c->cs[victim].data, handle, version, 0, buf, n),
                   CAIRN_ECHECKSUM);
  /* The replica is reported and replaced: every replica reads right again. */
  uint64_t arg[2] = {id, n};
  assert_true(it_wait_until(c, 60000, replica_readable_everywhere, arg));
  assert_replicas_equal(c, id, data, n, 3);
  free(buf);
  free(data);
}

/* Silent corruption of an idle replica is found by the scrubber, not by a
 * reader, and the master replaces the replica all the same. */
static void scrubber_finds_silent_corruption(void **state) {
  it_cluster *c = *state;
  uint64_t id;
  assert_int_equal(it_create(c, "/w/scrubbed", &id), 0);
  size_t n = 128 * 1024;
  uint8_t *data = cmn_malloc(n);
  fill(data, n, 6);
  assert_int_equal(it_write(c, id, 0, data, n), 0);
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(it_lookup(c, id, 0, &lr), 0);
  uint64_t handle = lr->chunks[0]->handle;
  int victim = it_cs_by_id(c, lr->chunks[0]->replicas[2]->id);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  /* Stop the server, damage its replica, start it again with scrubbing on. */
  it_stop(&c->cs[victim].proc, SIGTERM, 10000);
  char path[600];
  it_replica_path(c, victim, handle, path, sizeof path);
  assert_true(path[0] != '\0');
  flip_byte(path, 77, 0x01);
  snprintf(c->scrub_rate, sizeof c->scrub_rate, "64M");
  assert_int_equal(it_cs_start(c, victim), 0);
  uint64_t arg[2] = {id, n};
  assert_true(it_wait_until(c, 60000, replica_readable_everywhere, arg));
  assert_replicas_equal(c, id, data, n, 3);
  assert_true(it_file_contains(c->cs[victim].proc.log, "scrub: replica failed verification"));
  free(data);
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(write_with_all_three_up, setup3, teardown),
                cmocka_unit_test_setup_teardown(one_secondary_dead_write_succeeds_and_is_repaired,
                                                setup4, teardown),
                cmocka_unit_test_setup_teardown(two_dead_write_fails_and_changes_nothing, setup3,
                                                teardown),
                cmocka_unit_test_setup_teardown(concurrent_record_appends, setup3, teardown),
                cmocka_unit_test_setup_teardown(corrupted_byte_is_detected_and_repaired, setup3,
                                                teardown),
                cmocka_unit_test_setup_teardown(scrubber_finds_silent_corruption, setup3, teardown))
