/* Unit tests for READ and CLONE on the data plane (chunkserver/
 * dataplane_read.c, common/dpclient.c): committed replicas read back in
 * pieces, checksum failures that never return the bytes, a clone imported
 * into another store. */
#include "dp_test_util.h"

#include "store_internal.h"

#include <fcntl.h>
#include <inttypes.h>

/* Create replica (h, v) holding `len` bytes of seed `seed`, committed in
 * two mutations (an append that crosses piece boundaries, then another). */
static uint8_t *make_replica(cs_store *st, uint64_t h, uint64_t v, size_t len, uint32_t seed) {
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, seed);
  assert_int_equal(cs_store_create(st, h, v), 0);
  size_t first = len / 3;
  assert_int_equal(cs_store_prepare(st, h, v, 1, 0, data, first, cmn_crc32c(0, data, first), 0),
                   0);
  assert_int_equal(cs_store_commit(st, h, v, 1), 0);
  assert_int_equal(cs_store_prepare(st, h, v, 2, first, data + first, len - first,
                                    cmn_crc32c(0, data + first, len - first), 0),
                   0);
  assert_int_equal(cs_store_commit(st, h, v, 2), 0);
  return data;
}

static void flip_on_disk(const char *dir, uint64_t h, uint64_t v, uint64_t data_pos) {
  cs__geom g;
  cs__geom_init(&g, T_CHUNK);
  char *path = cmn_sprintf("%s/%02x/%016" PRIx64 "_%" PRIu64 ".chunk", dir, (unsigned)(h & 0xff),
                           h, v);
  int fd = open(path, O_RDWR);
  assert_true(fd >= 0);
  uint8_t c;
  assert_int_equal(pread(fd, &c, 1, (off_t)(g.data_off + data_pos)), 1);
  c ^= 0x5a;
  assert_int_equal(pwrite(fd, &c, 1, (off_t)(g.data_off + data_pos)), 1);
  close(fd);
  free(path);
}

static void read_committed_replica(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 16u << 20, NULL);
  size_t len = (2u << 20) + (512u << 10) + 17;
  uint8_t *data = make_replica(s.store, 7, 3, len, 11);
  uint8_t *buf = cmn_malloc(T_CHUNK);
  cmn_dp_conn *c = t_connect(&s);

  assert_int_equal(cmn_dp_read(c, 7, 3, 0, len, buf), (int64_t)len);
  assert_memory_equal(buf, data, len);
  /* a range inside, across piece boundaries */
  assert_int_equal(cmn_dp_read(c, 7, 3, 1000, (1u << 20) + 5000, buf), (1u << 20) + 5000);
  assert_memory_equal(buf, data + 1000, (1u << 20) + 5000);
  /* past the committed length: short; past the chunk size: ERANGE */
  assert_int_equal(cmn_dp_read(c, 7, 3, len - 10, 1000, buf), 10);
  assert_memory_equal(buf, data + len - 10, 10);
  assert_int_equal(cmn_dp_read(c, 7, 3, len + 10, 1000, buf), 0);
  assert_int_equal(cmn_dp_read(c, 7, 3, T_CHUNK - 10, 1000, buf), CAIRN_ERANGE);
  /* another version, an unknown chunk; the connection stays usable */
  assert_int_equal(cmn_dp_read(c, 7, 2, 0, 100, buf), CAIRN_ESTALE);
  assert_int_equal(cmn_dp_read(c, 8, 1, 0, 100, buf), CAIRN_ENOENT);
  assert_non_null(strstr(cmn_dp_error(c), "ENOENT"));
  assert_int_equal(cmn_dp_read(c, 7, 3, 0, 0, buf), CAIRN_EINVAL);
  assert_int_equal(cmn_dp_read(c, 7, 3, 5, 5, buf), 5);
  assert_memory_equal(buf, data + 5, 5);
  cmn_dp_close(c);
  assert_true(t_srv_stats(&s).read_bytes_out >= len + (1u << 20) + 5000 + 15);
  t_srv_stop(&s);
  free(buf);
  free(data);
}

typedef struct sink {
  cmn_buf bytes;
  size_t pieces;
  int bad_crc;
  int stop_after; /* return an error after this many pieces (0: never) */
} sink;

static int sink_piece(void *arg, const void *data, size_t len, uint32_t crc) {
  sink *k = arg;
  if (cmn_crc32c(0, data, len) != crc) k->bad_crc++;
  assert_true(len <= CMN_FRAME_DATA_MAX);
  cmn_buf_append(&k->bytes, data, len);
  k->pieces++;
  if (k->stop_after && k->pieces >= (size_t)k->stop_after) return CAIRN_ENOSPC;
  return 0;
}

/* A byte flipped on disk in the second MiB: the first piece is sent, the
 * bad one never is, and the read ends with ECHECKSUM. */
static void read_checksum_failure(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 16u << 20, NULL);
  size_t len = 3u << 20;
  uint8_t *data = make_replica(s.store, 9, 1, len, 12);
  flip_on_disk(s.dir, 9, 1, (1u << 20) + 12345);
  uint8_t *buf = cmn_malloc(len);
  cmn_dp_conn *c = t_connect(&s);
  assert_int_equal(cmn_dp_read(c, 9, 1, 0, len, buf), CAIRN_ECHECKSUM);
  assert_int_equal(t_srv_stats(&s).read_bytes_out, 1u << 20); /* only the good piece */
  /* blocks that verify are still served */
  assert_int_equal(cmn_dp_read(c, 9, 1, 0, 1u << 20, buf), 1u << 20);
  assert_memory_equal(buf, data, 1u << 20);
  assert_int_equal(cmn_dp_read(c, 9, 1, (1u << 20) + 12000, 100, buf), CAIRN_ECHECKSUM);
  /* the replica is now marked corrupt: no clone of it */
  uint64_t total = 0;
  sink k = {0};
  assert_int_equal(cmn_dp_clone(c, 9, 1, sink_piece, &k, &total), CAIRN_ECORRUPT);
  assert_int_equal(k.pieces, 0);
  assert_int_equal(cmn_dp_clone(c, 9, 1, NULL, NULL, &total), CAIRN_EINVAL);
  cmn_dp_close(c);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s.store, 9, &r), 0);
  assert_true(r.corrupt);
  t_srv_stop(&s);
  free(buf);
  free(data);
}

static void clone_and_import(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 16u << 20, NULL);
  size_t len = (3u << 20) + 4321;
  uint8_t *data = make_replica(s.store, 21, 5, len, 13);
  cmn_dp_conn *c = t_connect(&s);
  sink k = {0};
  uint64_t total = 0;
  assert_int_equal(cmn_dp_clone(c, 21, 5, sink_piece, &k, &total), 0);
  assert_int_equal(total, len);
  assert_int_equal(k.bytes.len, len);
  assert_int_equal(k.bad_crc, 0);
  assert_int_equal(k.pieces, 4);
  assert_memory_equal(k.bytes.data, data, len);

  /* import into another store: an identical replica */
  char *dir2 = t_tmpdir();
  cs_store *st2 = t_store_open(dir2);
  assert_int_equal(
      cs_store_import(st2, 21, 5, k.bytes.data, k.bytes.len, cmn_crc32c(0, k.bytes.data, len)), 0);
  cs_store_replica a, b;
  assert_int_equal(cs_store_info(s.store, 21, &a), 0);
  assert_int_equal(cs_store_info(st2, 21, &b), 0);
  assert_int_equal(a.version, b.version);
  assert_int_equal(a.length, b.length);
  uint8_t *x = cmn_malloc(T_CHUNK), *y = cmn_malloc(T_CHUNK);
  assert_int_equal(cs_store_read(s.store, 21, 5, 0, x, T_CHUNK), (int64_t)len);
  assert_int_equal(cs_store_read(st2, 21, 5, 0, y, T_CHUNK), (int64_t)len);
  assert_memory_equal(x, y, len);
  free(x);
  free(y);
  cs_store_close(st2);
  t_rm_rf(dir2);
  cmn_buf_free(&k.bytes);

  /* refusals keep the connection in sync */
  assert_int_equal(cmn_dp_clone(c, 21, 4, sink_piece, &k, &total), CAIRN_ESTALE);
  assert_int_equal(cmn_dp_clone(c, 22, 1, sink_piece, &k, &total), CAIRN_ENOENT);
  /* an empty replica clones as zero bytes */
  assert_int_equal(cs_store_create(s.store, 23, 1), 0);
  total = 99;
  assert_int_equal(cmn_dp_clone(c, 23, 1, sink_piece, &k, &total), 0);
  assert_int_equal(total, 0);
  /* a mutation prepared and not decided yet: no copy until it is, then
   * the copy has it */
  uint8_t more[5000];
  memset(more, 0x6b, sizeof more);
  assert_int_equal(cs_store_prepare(s.store, 21, 5, 7, len, more, sizeof more,
                                    cmn_crc32c(0, more, sizeof more), 0), 0);
  assert_int_equal(cmn_dp_clone(c, 21, 5, sink_piece, &k, &total), CAIRN_EBUSY);
  assert_int_equal(cs_store_commit(s.store, 21, 5, 7), 0);
  cmn_buf_free(&k.bytes);
  memset(&k, 0, sizeof k);
  assert_int_equal(cmn_dp_clone(c, 21, 5, sink_piece, &k, &total), 0);
  assert_int_equal(total, len + sizeof more);
  assert_memory_equal(k.bytes.data + len, more, sizeof more);
  /* a receiver that gives up breaks the connection */
  sink k2 = {.stop_after = 1};
  assert_int_equal(cmn_dp_clone(c, 21, 5, sink_piece, &k2, &total), CAIRN_ENOSPC);
  assert_int_equal(cmn_dp_ping(c), CAIRN_ECLOSED);
  cmn_buf_free(&k2.bytes);
  cmn_buf_free(&k.bytes);
  cmn_dp_close(c);
  t_srv_stop(&s);
  free(data);
}

/* Stopping a server while reads are in flight on the thread pool (and
 * connections are open) releases everything (checked by LeakSanitizer). */
static void stop_during_reads(void **state) {
  (void)state;
  t_srv s;
  t_srv_start(&s, 16u << 20, NULL);
  size_t len = T_CHUNK;
  uint8_t *data = make_replica(s.store, 30, 1, len, 14);
  int fd[4];
  for (int i = 0; i < 4; i++) {
    t_raw r;
    t_raw_open(&r, s.port);
    t_raw_auth(&r, T_SECRET);
    cmn_frame_read m = {.handle = 30, .version = 1, .offset = 0, .length = (uint32_t)len};
    uint8_t buf[64];
    int n = cmn_frame_encode_read(&m, buf, sizeof buf);
    t_raw_send(&r, buf, (size_t)n);
    fd[i] = r.fd; /* keep the socket, never read the data */
    cmn_frame_parser_free(r.p);
  }
  usleep(50 * 1000);
  t_srv_stop(&s);
  for (int i = 0; i < 4; i++) close(fd[i]);
  free(data);
}

CAIRN_TEST_MAIN(cmocka_unit_test(read_committed_replica), cmocka_unit_test(read_checksum_failure),
                cmocka_unit_test(clone_and_import), cmocka_unit_test(stop_during_reads))
