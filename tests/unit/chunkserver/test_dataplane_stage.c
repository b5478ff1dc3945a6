/* Unit tests for staging on the data plane (chunkserver/dataplane_stage.c):
 * a push that says where its bytes land is written into the replica file
 * of every server of the chain while it arrives, and the prepare of those
 * bytes finds them there; a push without a placement, or for a replica a
 * server does not hold, or cut off half-way, still works as before. */
#include "dp_test_util.h"

#include "store_internal.h"

#include <inttypes.h>

#define H 0x51u
#define V 4u

static char *chunk_path(const t_srv *s) {
  return cmn_sprintf("%s/%02x/%016" PRIx64 "_%u.chunk", s->dir, (unsigned)(H & 0xff),
                     (uint64_t)H, V);
}

/* Bytes of the replica file past data_off. */
static uint64_t file_data_len(const t_srv *s) {
  cs__geom g;
  cs__geom_init(&g, T_CHUNK);
  char *path = chunk_path(s);
  struct stat st;
  int rc = stat(path, &st);
  free(path);
  assert_int_equal(rc, 0);
  return (uint64_t)st.st_size - g.data_off;
}

/* A replica with `committed` bytes of seed 1. */
static void make_replica(t_srv *s, size_t committed) {
  assert_int_equal(cs_store_create(s->store, H, V), 0);
  uint8_t *d = cmn_malloc(committed);
  t_fill(d, committed, 1);
  assert_int_equal(cs_store_prepare(s->store, H, V, 1, 0, d, committed, cmn_crc32c(0, d, committed), 0), 0);
  assert_int_equal(cs_store_commit(s->store, H, V, 1), 0);
  free(d);
}

typedef struct grown {
  t_srv *s;
  uint64_t want;
} grown;

static int has_grown(void *arg) {
  grown *g = arg;
  return file_data_len(g->s) >= g->want;
}

/* Prepare and commit `data` at `off` as serial 2, then read it back. */
static void apply_and_check(t_srv *s, uint64_t off, const uint8_t *data, size_t len) {
  assert_int_equal(cs_store_prepare(s->store, H, V, 2, off, data, len, cmn_crc32c(0, data, len), 0), 0);
  assert_int_equal(cs_store_commit(s->store, H, V, 2), 0);
  uint8_t *back = cmn_malloc(len);
  assert_int_equal(cs_store_read(s->store, H, V, off, back, len), (int64_t)len);
  assert_memory_equal(back, data, len);
  free(back);
  assert_true(file_data_len(s) == off + len);
}

static void chain_stages_and_prepare_uses(void **state) {
  (void)state;
  t_srv a, b;
  t_srv_start(&a, 16u << 20, NULL);
  t_srv_start(&b, 16u << 20, NULL);
  const size_t committed = 100000, len = (1u << 20) + 300001;
  make_replica(&a, committed);
  make_replica(&b, committed);
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 2);
  uint8_t id[16];
  cmn_random_bytes(id, sizeof id);
  const char *chain[1] = {b.addr};
  cmn_frame_place at = {.handle = H, .version = V, .offset = CMN_FRAME_PLACE_END};
  cmn_dp_conn *c = t_connect(&a);
  assert_int_equal(cmn_dp_push_at(c, id, data, len, chain, 1, &at), 0);
  cmn_dp_close(c);
  /* Both servers wrote the bytes past the committed length, unasked. */
  grown ga = {&a, committed + len}, gb = {&b, committed + len};
  assert_true(t_wait_for(has_grown, &ga, T_TIMEOUT_MS));
  assert_true(t_wait_for(has_grown, &gb, T_TIMEOUT_MS));
  /* Readers see only the committed bytes meanwhile. */
  uint8_t probe[16];
  assert_int_equal(cs_store_read(a.store, H, V, committed, probe, sizeof probe), 0);
  apply_and_check(&a, committed, data, len);
  apply_and_check(&b, committed, data, len);
  t_srv_stop(&a);
  t_srv_stop(&b);
  free(data);
}

static int has_synced(void *arg) { return t_srv_stats(arg).stage_syncs >= 1; }

/* A push longer than the sync interval is synced while it is staged (a
 * sync job beside the writes), and the prepare still uses every byte in
 * place. */
static void long_stage_is_synced_on_the_way(void **state) {
  (void)state;
  t_srv a;
  cs_dataplane_config cfg = {.stage_sync_bytes = 1u << 20};
  t_srv_start(&a, 16u << 20, &cfg);
  const size_t committed = 70000, len = (3u << 20) + 1;
  make_replica(&a, committed);
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 4);
  uint8_t id[16];
  cmn_random_bytes(id, sizeof id);
  cmn_frame_place at = {.handle = H, .version = V, .offset = committed};
  cmn_dp_conn *c = t_connect(&a);
  assert_int_equal(cmn_dp_push_begin_at(c, id, len, cmn_crc32c(0, data, len), NULL, 0, &at), 0);
  /* Half first: staged past the interval with more to come, so a sync
   * must start (the last bytes are left to the prepare's own). */
  const size_t half = 2u << 20;
  assert_int_equal(cmn_dp_push_write(c, data, half), 0);
  grown gh = {&a, committed + half};
  assert_true(t_wait_for(has_grown, &gh, T_TIMEOUT_MS));
  assert_true(t_wait_for(has_synced, &a, T_TIMEOUT_MS));
  assert_int_equal(cmn_dp_push_write(c, data + half, len - half), 0);
  assert_int_equal(cmn_dp_push_finish(c), 0);
  cmn_dp_close(c);
  grown ga = {&a, committed + len};
  assert_true(t_wait_for(has_grown, &ga, T_TIMEOUT_MS));
  apply_and_check(&a, committed, data, len);
  t_srv_stop(&a);
  free(data);
}

/* A placement for a replica the server does not hold, or at an offset that
 * is not its end: the push succeeds and nothing is staged. */
static void wrong_placement_is_harmless(void **state) {
  (void)state;
  t_srv a;
  t_srv_start(&a, 16u << 20, NULL);
  make_replica(&a, 5000);
  const size_t len = 1u << 20;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 3);
  cmn_dp_conn *c = t_connect(&a);
  cmn_frame_place at[3] = {{.handle = H + 1, .version = V, .offset = CMN_FRAME_PLACE_END},
                           {.handle = H, .version = V + 1, .offset = 5000},
                           {.handle = H, .version = V, .offset = 4096}};
  for (int i = 0; i < 3; i++) {
    uint8_t id[16];
    cmn_random_bytes(id, sizeof id);
    assert_int_equal(cmn_dp_push_at(c, id, data, len, NULL, 0, &at[i]), 0);
    t_assert_pushed(&a, id, data, len);
  }
  cmn_dp_close(c);
  usleep(50000); /* a stager would have written by now */
  assert_true(file_data_len(&a) == 5000);
  apply_and_check(&a, 5000, data, len);
  t_srv_stop(&a);
  free(data);
}

/* A push cut off half-way: what was staged never becomes data, and the
 * next write of the chunk (other bytes, shorter) leaves no trace of it. */
static void abandoned_push_is_cut_off(void **state) {
  (void)state;
  t_srv a;
  t_srv_start(&a, 16u << 20, NULL);
  make_replica(&a, 70000);
  const size_t len = 3u << 20;
  uint8_t *data = cmn_malloc(len);
  t_fill(data, len, 4);
  uint8_t id[16];
  cmn_random_bytes(id, sizeof id);
  cmn_frame_place at = {.handle = H, .version = V, .offset = 70000};
  cmn_dp_conn *c = t_connect(&a);
  assert_int_equal(cmn_dp_push_begin_at(c, id, len, cmn_crc32c(0, data, len), NULL, 0, &at), 0);
  assert_int_equal(cmn_dp_push_write(c, data, 2u << 20), 0);
  grown g = {&a, 70000 + (1u << 20)};
  assert_true(t_wait_for(has_grown, &g, T_TIMEOUT_MS));
  cmn_dp_close(c);
  uint8_t other[1000];
  t_fill(other, sizeof other, 5);
  /* The prepare may overlap the stager's last write; it waits or cuts. */
  apply_and_check(&a, 70000, other, sizeof other);
  t_srv_stop(&a);
  free(data);
}

CAIRN_TEST_MAIN(cmocka_unit_test(chain_stages_and_prepare_uses),
                cmocka_unit_test(long_stage_is_synced_on_the_way),
                cmocka_unit_test(wrong_placement_is_harmless),
                cmocka_unit_test(abandoned_push_is_cut_off))
