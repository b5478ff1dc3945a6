/* Unit tests for the replica store: formats, reads and writes, CRC block
 * accounting, two-phase mutations, versions (chunkserver/store*.c). Crash,
 * torn-write and failure tests are in test_store_crash.c and
 * test_store_space.c. */
#include "store_test_util.h"

/* ---- formats ---- */

static void header_round_trip_and_bad_header(void **state) {
  (void)state;
  cs__geom g = t_geom();
  assert_int_equal(g.nblocks, 16);
  assert_int_equal(g.slot_size, 4096);
  assert_int_equal(g.data_off, 3 * 4096);
  cs__geom big;
  cs__geom_init(&big, 64u << 20);
  assert_int_equal(big.slot_size, 8192);
  assert_int_equal(big.data_off, 20480);

  unsigned char slot[64 + 4 * 16] = {0};
  for (uint32_t b = 0; b < 16; b++) cs__table_set(slot, b, 0x01020304u * (b + 1));
  cs__header h = {.handle = 0x0123456789abcdefULL, .version = 7, .committed = 123457,
                  .chunk_size = T_CHUNK, .last_serial = 99, .seq = 0xfffffffeu};
  cs__header_encode(&g, &h, slot);
  assert_memory_equal(slot, "CAIRNCHK", 8);
  cs__header d;
  assert_int_equal(cs__header_decode(&g, slot, &d), 0);
  assert_int_equal(d.handle, h.handle);
  assert_int_equal(d.version, 7);
  assert_int_equal(d.committed, 123457);
  assert_int_equal(d.chunk_size, T_CHUNK);
  assert_int_equal(d.last_serial, 99);
  assert_int_equal(d.seq, 0xfffffffeu);
  assert_true(cs__seq_newer(1, 0xfffffffeu)); /* wraps */
  assert_false(cs__seq_newer(0xfffffffeu, 1));

  /* Any flipped byte of the header or the table invalidates the slot. */
  for (size_t i = 0; i < sizeof slot; i++) {
    slot[i] ^= 0x20;
    assert_int_equal(cs__header_decode(&g, slot, &d), CAIRN_ECORRUPT);
    slot[i] ^= 0x20;
  }
  assert_int_equal(cs__header_decode(&g, slot, &d), 0);
  /* Another chunk size, an impossible length, a zero version: refused even
   * with a correct CRC. */
  cs__header bad = h;
  bad.committed = T_CHUNK + 1;
  cs__header_encode(&g, &bad, slot);
  assert_int_equal(cs__header_decode(&g, slot, &d), CAIRN_ECORRUPT);
  bad = h;
  bad.version = 0;
  cs__header_encode(&g, &bad, slot);
  assert_int_equal(cs__header_decode(&g, slot, &d), CAIRN_ECORRUPT);
  cs__header_encode(&g, &h, slot);
  assert_int_equal(cs__header_decode(&big, slot, &d), CAIRN_ECORRUPT);
  memset(slot, 0, sizeof slot);
  assert_int_equal(cs__header_decode(&g, slot, &d), CAIRN_ECORRUPT);
}

static void intent_and_side_records_round_trip(void **state) {
  (void)state;
  unsigned char buf[CS__REC_SIZE];
  cs__intent_rec r = {.kind = CS_STORE_KIND_OVERWRITE, .state = CS__REC_DECIDED, .handle = 5,
                      .version = 2, .serial = 11, .offset = 100, .length = 70000,
                      .old_len = 150000, .new_len = 150000, .crc = 0xdeadbeef};
  cs__intent_encode(&r, buf);
  cs__intent_rec d;
  assert_int_equal(cs__intent_decode(buf, &d), 0);
  assert_int_equal(d.kind, r.kind);
  assert_int_equal(d.state, r.state);
  assert_int_equal(d.handle, r.handle);
  assert_int_equal(d.version, r.version);
  assert_int_equal(d.serial, r.serial);
  assert_int_equal(d.offset, r.offset);
  assert_int_equal(d.length, r.length);
  assert_int_equal(d.old_len, r.old_len);
  assert_int_equal(d.new_len, r.new_len);
  assert_int_equal(d.crc, r.crc);
  for (size_t i = 0; i < sizeof buf; i++) {
    buf[i] ^= 1;
    assert_int_equal(cs__intent_decode(buf, &d), CAIRN_ECORRUPT);
    buf[i] ^= 1;
  }
  memset(buf, 0, sizeof buf);
  assert_int_equal(cs__intent_decode(buf, &d), CAIRN_ENOENT);
  r.kind = 9;
  cs__intent_encode(&r, buf);
  assert_int_equal(cs__intent_decode(buf, &d), CAIRN_ECORRUPT);

  unsigned char side[CS__SIDE_HDR_SIZE + 8];
  cs__put_le32(side + CS__SIDE_HDR_SIZE, 0x11111111u);
  cs__put_le32(side + CS__SIDE_HDR_SIZE + 4, 0x22222222u);
  cs__side_hdr sh = {.handle = 5, .version = 2, .serial = 11, .offset = 65636, .length = 70000,
                     .new_len = 150000, .first_block = 1, .nblocks = 2, .crc = 0xdeadbeef};
  cs__side_encode(&sh, side);
  cs__side_hdr sd;
  assert_int_equal(cs__side_decode(side, 16, &sd), 0);
  assert_int_equal(cs__side_check(side, &sd), 0);
  assert_int_equal(sd.first_block, 1);
  assert_int_equal(sd.nblocks, 2);
  assert_int_equal(sd.new_len, 150000);
  side[CS__SIDE_HDR_SIZE + 5] ^= 1; /* the table is covered */
  assert_int_equal(cs__side_check(side, &sd), CAIRN_ECORRUPT);
  assert_int_equal(cs__side_decode(side, 2, &sd), CAIRN_ECORRUPT); /* past the chunk */
}

static void file_names_parse(void **state) {
  (void)state;
  uint64_t h, v, s;
  assert_int_equal(cs__parse_name("00000000000000ab_12.chunk", &h, &v, &s), CS__FILE_CHUNK);
  assert_int_equal(h, 0xab);
  assert_int_equal(v, 12);
  assert_int_equal(cs__parse_name("00000000000000ab_12.s7", &h, &v, &s), CS__FILE_SIDE);
  assert_int_equal(s, 7);
  assert_int_equal(cs__parse_name("00000000000000ab_12.chunk.tmp", &h, &v, &s), CS__FILE_TMP);
  assert_int_equal(cs__parse_name("x.tmp", &h, &v, &s), CS__FILE_TMP);
  const char *bad[] = {"00000000000000ab_012.chunk", "00000000000000AB_12.chunk",
                       "00000000000000ab_0.chunk", "00000000000000ab_12.chunkx",
                       "0000000000000ab_12.chunk", "00000000000000ab_12.s0",
                       "00000000000000ab_12.s", "ffffffffffffffff_1.chunk",
                       "00000000000000ab_99999999999999999999.chunk", "ID", "LOCK"};
  for (size_t i = 0; i < CMN_ARRAY_LEN(bad); i++)
    assert_int_equal(cs__parse_name(bad[i], &h, &v, &s), CS__FILE_OTHER);
}

/* ---- writes and reads ---- */

static void unaligned_appends_keep_block_crcs(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  assert_int_equal(strlen(cs_store_server_id(s)), 36);
  assert_int_equal(cs_store_create(s, 42, 1), 0);
  assert_int_equal(cs_store_create(s, 42, 1), CAIRN_EEXIST);
  assert_int_equal(cs_store_create(s, 42, 2), CAIRN_EEXIST);
  unsigned char *model = cmn_malloc(T_CHUNK);
  t_fill(model, T_CHUNK, 1, 0);
  char *path = t_chunk_path(dir, 42, 1);
  t_assert_crc_table(path, model, 0);
  /* Sizes chosen to start and end inside blocks, cross one or several
   * boundaries, and land exactly on one. */
  const size_t sizes[] = {1, 999, 65536 - 1000, 70000, 3 * 65536 + 17, 65536 - 17 - 1,
                          131072, 5};
  uint64_t L = 0, serial = 0;
  for (size_t i = 0; i < CMN_ARRAY_LEN(sizes); i++) {
    t_write(s, 42, 1, ++serial, L, model + L, sizes[i]);
    L += sizes[i];
    t_assert_content(s, 42, 1, model, L);
    t_assert_crc_table(path, model, L);
  }
  /* Reads at odd offsets, across blocks, and past the committed length. */
  unsigned char *buf = cmn_malloc(T_CHUNK);
  assert_int_equal(cs_store_read(s, 42, 1, 65530, buf, 20), 20);
  assert_memory_equal(buf, model + 65530, 20);
  assert_int_equal(cs_store_read(s, 42, 1, 1, buf, 200000), 200000);
  assert_memory_equal(buf, model + 1, 200000);
  assert_int_equal(cs_store_read(s, 42, 1, L - 10, buf, 100), 10);
  assert_memory_equal(buf, model + L - 10, 10);
  assert_int_equal(cs_store_read(s, 42, 1, L, buf, 100), 0);
  assert_int_equal(cs_store_read(s, 42, 1, T_CHUNK, buf, 0), 0);
  assert_int_equal(cs_store_read(s, 42, 1, T_CHUNK - 1, buf, 2), CAIRN_ERANGE);
  assert_int_equal(cs_store_read(s, 42, 1, T_CHUNK + 1, buf, 0), CAIRN_ERANGE);
  assert_int_equal(cs_store_read(s, 42, 1, 0, NULL, 1), CAIRN_EINVAL);
  assert_int_equal(cs_store_read(s, 42, 2, 0, buf, 1), CAIRN_ESTALE);
  assert_int_equal(cs_store_read(s, 43, 1, 0, buf, 1), CAIRN_ENOENT);

  /* Everything survives a restart. */
  cs_store_close(s);
  s = t_open(dir, NULL);
  t_assert_content(s, 42, 1, model, L);
  assert_int_equal(t_pending(s).n, 0);
  /* Fill to the end exactly, then nothing more fits. */
  t_write(s, 42, 1, ++serial, L, model + L, T_CHUNK - L);
  t_assert_crc_table(path, model, T_CHUNK);
  assert_int_equal(cs_store_prepare(s, 42, 1, ++serial, T_CHUNK, model, 1,
                                    cmn_crc32c(0, model, 1), 0), CAIRN_ERANGE);
  free(buf);
  free(path);
  free(model);
  cs_store_close(s);
  t_rm_rf(dir);
}

static void overwrite_goes_through_side_file(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 7, 3), 0);
  unsigned char *model = cmn_malloc(T_CHUNK), *data = cmn_malloc(T_CHUNK);
  t_fill(model, 300000, 1, 0);
  t_write(s, 7, 3, 1, 0, model, 300000);
  char *path = t_chunk_path(dir, 7, 3);
  size_t before_len;
  unsigned char *before = t_slurp(path, &before_len);

  /* Inside committed data, across two block boundaries, unaligned. */
  t_fill(data, 140000, 2, 0);
  assert_int_equal(cs_store_prepare(s, 7, 3, 2, 60000, data, 140000, cmn_crc32c(0, data, 140000), 0), 0);
  char *side = t_side_path(dir, 7, 3, 2);
  assert_true(t_exists(side));
  t_intents p = t_pending(s);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.v[0].kind, CS_STORE_KIND_OVERWRITE);
  assert_int_equal(p.v[0].offset, 60000);
  assert_int_equal(p.v[0].length, 140000);
  /* The chunk file is untouched but for the intent page; reads see the old bytes. */
  t_assert_content(s, 7, 3, model, 300000);
  size_t mid_len;
  unsigned char *mid = t_slurp(path, &mid_len);
  cs__geom g = t_geom();
  assert_int_equal(mid_len, before_len);
  assert_memory_equal(mid, before, g.intent_off);
  assert_memory_equal(mid + g.data_off, before + g.data_off, before_len - g.data_off);
  free(mid);
  assert_int_equal(cs_store_commit(s, 7, 3, 2), 0);
  assert_false(t_exists(side));
  memcpy(model + 60000, data, 140000);
  t_assert_content(s, 7, 3, model, 300000);
  t_assert_crc_table(path, model, 300000);
  free(side);

  /* Overlapping the end: rewrites the tail and grows the chunk. */
  t_fill(data, 100000, 3, 0);
  assert_int_equal(cs_store_prepare(s, 7, 3, 3, 250000, data, 100000, cmn_crc32c(0, data, 100000), 0), 0);
  t_assert_content(s, 7, 3, model, 300000);
  assert_int_equal(cs_store_commit(s, 7, 3, 3), 0);
  memcpy(model + 250000, data, 100000);
  t_assert_content(s, 7, 3, model, 350000);
  t_assert_crc_table(path, model, 350000);
  /* One byte at the very start. */
  data[0] = (unsigned char)~model[0];
  t_write(s, 7, 3, 4, 0, data, 1);
  model[0] = data[0];
  t_assert_content(s, 7, 3, model, 350000);
  t_assert_crc_table(path, model, 350000);
  cs_store_close(s);
  s = t_open(dir, NULL);
  t_assert_content(s, 7, 3, model, 350000);
  free(before);
  free(path);
  free(model);
  free(data);
  cs_store_close(s);
  t_rm_rf(dir);
}

static void abort_leaves_file_byte_identical(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 9, 1), 0);
  unsigned char *model = cmn_malloc(T_CHUNK), *data = cmn_malloc(T_CHUNK);
  t_fill(model, 100001, 1, 0);
  t_write(s, 9, 1, 1, 0, model, 100001);
  char *path = t_chunk_path(dir, 9, 1);
  size_t n;
  unsigned char *before = t_slurp(path, &n);
  t_fill(data, 200000, 5, 0);
  uint32_t crc = cmn_crc32c(0, data, 200000);
  /* Append, overwrite (growing), overwrite (inside), pad: each aborted. */
  struct {
    uint64_t off;
    size_t len;
    unsigned flags;
  } cases[] = {{100001, 200000, 0}, {50000, 200000, 0}, {10, 1000, 0}, {100001, 0, CS_STORE_PAD}};
  uint64_t serial = 1;
  for (size_t i = 0; i < CMN_ARRAY_LEN(cases); i++) {
    serial++;
    const void *d = cases[i].flags ? NULL : data;
    uint32_t c = cases[i].flags ? 0 : cmn_crc32c(0, data, cases[i].len);
    if (cases[i].len == 200000) assert_int_equal(c, crc);
    assert_int_equal(cs_store_prepare(s, 9, 1, serial, cases[i].off, d, cases[i].len, c,
                                      cases[i].flags), 0);
    assert_int_equal(t_pending(s).n, 1);
    t_assert_content(s, 9, 1, model, 100001);
    assert_int_equal(cs_store_abort(s, 9, 1, serial), 0);
    assert_int_equal(t_pending(s).n, 0);
    t_assert_file_equals(path, before, n);
    char *side = t_side_path(dir, 9, 1, serial);
    assert_false(t_exists(side));
    free(side);
    t_assert_content(s, 9, 1, model, 100001);
  }
  /* And still byte-identical after a restart. */
  cs_store_close(s);
  s = t_open(dir, NULL);
  t_assert_file_equals(path, before, n);
  free(before);
  free(path);
  free(model);
  free(data);
  cs_store_close(s);
  t_rm_rf(dir);
}

static void commit_and_abort_are_idempotent(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 1, 1), 0);
  unsigned char data[5000];
  t_fill(data, sizeof data, 1, 0);
  uint32_t crc = cmn_crc32c(0, data, 1000);
  assert_int_equal(cs_store_commit(s, 1, 1, 1), CAIRN_ENOENT); /* never prepared */
  assert_int_equal(cs_store_prepare(s, 1, 1, 1, 0, data, 1000, crc, 0), 0);
  assert_int_equal(cs_store_prepare(s, 1, 1, 1, 0, data, 1000, crc, 0), 0); /* retry */
  assert_int_equal(cs_store_commit(s, 1, 1, 1), 0);
  assert_int_equal(cs_store_commit(s, 1, 1, 1), 0);
  assert_int_equal(cs_store_abort(s, 1, 1, 1), CAIRN_ECONFLICT); /* it committed */
  assert_int_equal(cs_store_commit(s, 1, 1, 2), CAIRN_ENOENT);
  assert_int_equal(cs_store_abort(s, 1, 1, 2), 0); /* nothing to undo */
  assert_int_equal(cs_store_prepare(s, 1, 1, 2, 1000, data + 1000, 500,
                                    cmn_crc32c(0, data + 1000, 500), 0), 0);
  assert_int_equal(cs_store_abort(s, 1, 1, 2), 0);
  assert_int_equal(cs_store_abort(s, 1, 1, 2), 0);
  assert_int_equal(cs_store_commit(s, 1, 1, 2), CAIRN_ENOENT); /* aborted, not committed */
  t_assert_content(s, 1, 1, data, 1000);
  /* Idempotence survives a restart too. */
  cs_store_close(s);
  s = t_open(dir, NULL);
  assert_int_equal(cs_store_commit(s, 1, 1, 1), 0);
  assert_int_equal(cs_store_abort(s, 1, 1, 1), CAIRN_ECONFLICT);
  assert_int_equal(cs_store_commit(s, 1, 1, 3), CAIRN_ENOENT);
  cs_store_close(s);
  t_rm_rf(dir);
}

static void prepare_checks_are_refusals(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 3, 4), 0);
  unsigned char data[3000];
  t_fill(data, sizeof data, 1, 0);
  uint32_t crc = cmn_crc32c(0, data, 1000);
  char *path = t_chunk_path(dir, 3, 4);
  size_t n;
  unsigned char *before = t_slurp(path, &n);
  assert_int_equal(cs_store_prepare(s, 3, 3, 1, 0, data, 1000, crc, 0), CAIRN_ESTALE);
  assert_int_equal(cs_store_prepare(s, 3, 5, 1, 0, data, 1000, crc, 0), CAIRN_ESTALE);
  assert_int_equal(cs_store_prepare(s, 4, 4, 1, 0, data, 1000, crc, 0), CAIRN_ENOENT);
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, 0, data, 1000, crc ^ 1, 0), CAIRN_ECHECKSUM);
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, 1, data, 1000, crc, 0), CAIRN_EINVAL); /* hole */
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, T_CHUNK - 999, data, 1000, crc, 0), CAIRN_ERANGE);
  assert_int_equal(cs_store_prepare(s, 3, 4, 0, 0, data, 1000, crc, 0), CAIRN_EINVAL);
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, 0, data, 0, 0, 0), CAIRN_EINVAL);
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, 0, NULL, 10, 0, 0), CAIRN_EINVAL);
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, 0, data, 10, 0, CS_STORE_PAD), CAIRN_EINVAL);
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, 5, NULL, 0, 0, CS_STORE_PAD), CAIRN_EINVAL);
  assert_int_equal(cs_store_prepare(s, 3, 4, 1, 0, data, 1000, crc, 0x80), CAIRN_EINVAL);
  t_assert_file_equals(path, before, n); /* refusals change nothing */
  assert_int_equal(cs_store_prepare(s, 3, 4, 5, 0, data, 1000, crc, 0), 0);
  /* One pending mutation per chunk. */
  assert_int_equal(cs_store_prepare(s, 3, 4, 6, 0, data, 10, cmn_crc32c(0, data, 10), 0),
                   CAIRN_EBUSY);
  assert_int_equal(cs_store_prepare(s, 3, 4, 5, 0, data, 999, cmn_crc32c(0, data, 999), 0),
                   CAIRN_ECONFLICT);
  assert_int_equal(cs_store_set_version(s, 3, 4, 5), CAIRN_EBUSY);
  assert_int_equal(cs_store_commit(s, 3, 3, 5), CAIRN_ESTALE);
  assert_int_equal(cs_store_abort(s, 3, 5, 5), CAIRN_ESTALE);
  assert_int_equal(cs_store_commit(s, 3, 4, 5), 0);
  /* Serials only go up. */
  assert_int_equal(cs_store_prepare(s, 3, 4, 5, 1000, data, 10, cmn_crc32c(0, data, 10), 0),
                   CAIRN_ECONFLICT);
  assert_int_equal(cs_store_prepare(s, 3, 4, 2, 1000, data, 10, cmn_crc32c(0, data, 10), 0),
                   CAIRN_ECONFLICT);
  /* PAD fills to the chunk end with zeros. */
  assert_int_equal(cs_store_prepare(s, 3, 4, 6, 1000, NULL, 0, 0, CS_STORE_PAD), 0);
  t_intents p = t_pending(s);
  assert_int_equal(p.n, 1);
  assert_int_equal(p.v[0].kind, CS_STORE_KIND_PAD);
  assert_int_equal(p.v[0].length, T_CHUNK - 1000);
  assert_int_equal(cs_store_commit(s, 3, 4, 6), 0);
  unsigned char *model = cmn_calloc(1, T_CHUNK);
  memcpy(model, data, 1000);
  t_assert_content(s, 3, 4, model, T_CHUNK);
  t_assert_crc_table(path, model, T_CHUNK);
  /* A full chunk pads with nothing. */
  assert_int_equal(cs_store_prepare(s, 3, 4, 7, T_CHUNK, NULL, 0, 0, CS_STORE_PAD), 0);
  assert_int_equal(cs_store_commit(s, 3, 4, 7), 0);
  t_assert_content(s, 3, 4, model, T_CHUNK);
  free(model);
  free(before);
  free(path);
  cs_store_close(s);
  t_rm_rf(dir);
}

/* ---- corruption ---- */

typedef struct t_events {
  int corrupt, dir_state;
  uint64_t handle;
  cs_store_dir_state state;
  unsigned dir;
} t_events;

static void t_on_event(void *arg, const cs_store_event *ev) {
  t_events *e = arg;
  if (ev->kind == CS_STORE_EV_CORRUPT) {
    e->corrupt++;
    e->handle = ev->handle;
  } else {
    e->dir_state++;
    e->state = ev->state;
    e->dir = ev->dir;
  }
}

static void reads_verify_checksums(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  t_events ev = {0};
  cs_store_opts o = t_opts(NULL);
  o.notify = t_on_event;
  o.notify_arg = &ev;
  cs_store *s = t_open_n(&dir, 1, &o);
  unsigned char *model = cmn_malloc(T_CHUNK), *buf = cmn_malloc(T_CHUNK);
  t_fill(model, 3 * T_B + 100, 1, 0);
  for (uint64_t h = 10; h <= 11; h++) {
    assert_int_equal(cs_store_create(s, h, 1), 0);
    t_write(s, h, 1, 1, 0, model, 3 * T_B + 100);
  }
  cs__geom g = t_geom();
  char *path = t_chunk_path(dir, 10, 1);
  t_flip(path, g.data_off + T_B + 1234); /* block 1 */
  memset(buf, 0x77, 100);
  assert_int_equal(cs_store_read(s, 10, 1, T_B + 1000, buf, 100), CAIRN_ECHECKSUM);
  for (int i = 0; i < 100; i++) assert_int_equal(buf[i], 0); /* never the bytes */
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 10, &r), 0);
  assert_true(r.corrupt);
  assert_int_equal(ev.corrupt, 1);
  assert_int_equal(ev.handle, 10);
  /* A range touching the bad block fails whole; the others still read. */
  assert_int_equal(cs_store_read(s, 10, 1, 0, buf, 3 * T_B), CAIRN_ECHECKSUM);
  assert_int_equal(cs_store_read(s, 10, 1, 0, buf, T_B), T_B);
  assert_memory_equal(buf, model, T_B);
  assert_int_equal(cs_store_read(s, 10, 1, 2 * T_B, buf, T_B + 100), T_B + 100);
  assert_memory_equal(buf, model + 2 * T_B, T_B + 100);
  assert_int_equal(ev.corrupt, 1); /* reported once */
  /* A corrupt replica takes no writes. */
  assert_int_equal(cs_store_prepare(s, 10, 1, 2, 3 * T_B + 100, model, 1,
                                    cmn_crc32c(0, model, 1), 0), CAIRN_ECORRUPT);
  /* The last, partial block is covered too. */
  char *path11 = t_chunk_path(dir, 11, 1);
  t_flip(path11, g.data_off + 3 * T_B + 99);
  assert_int_equal(cs_store_read(s, 11, 1, 3 * T_B + 99, buf, 1), CAIRN_ECHECKSUM);
  assert_int_equal(ev.corrupt, 2);
  cs_store_usage u;
  assert_int_equal(cs_store_stats(s, &u), 0);
  assert_int_equal(u.chunks, 2);
  assert_int_equal(u.corrupt, 2);
  free(path11);
  free(path);
  free(model);
  free(buf);
  cs_store_close(s);
  t_rm_rf(dir);
}

static void scrubber_finds_damage(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  unsigned char *model = cmn_malloc(T_CHUNK);
  t_fill(model, 200000, 1, 0);
  for (uint64_t h = 1; h <= 5; h++) {
    assert_int_equal(cs_store_create(s, h, 2), 0);
    t_write(s, h, 2, 1, 0, model, 200000);
  }
  /* A clean pass verifies all five, then reports the end. */
  uint64_t cursor = 0, h = 0;
  int good = 0, rc;
  while ((rc = cs_store_scrub_one(s, &cursor, &h)) == 1) good++;
  assert_int_equal(rc, 0);
  assert_int_equal(good, 5);
  assert_int_equal(cursor, 0);
  cs__geom g = t_geom();
  char *path = t_chunk_path(dir, 4, 2);
  t_flip(path, g.data_off + 150000);
  int bad = 0;
  good = 0;
  while ((rc = cs_store_scrub_one(s, &cursor, &h)) != 0) {
    if (rc == CAIRN_ECHECKSUM) {
      bad++;
      assert_int_equal(h, 4);
    } else {
      assert_int_equal(rc, 1);
      good++;
    }
  }
  assert_int_equal(bad, 1);
  assert_int_equal(good, 4);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 4, &r), 0);
  assert_true(r.corrupt);
  free(path);
  free(model);
  cs_store_close(s);
  t_rm_rf(dir);
}

/* ---- versions, listing ---- */

static int t_count_replica(void *arg, const cs_store_replica *r) {
  (void)r;
  (*(int *)arg)++;
  return 0;
}

static void set_version_renames(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 0x1234, 1), 0);
  unsigned char data[70000];
  t_fill(data, sizeof data, 1, 0);
  t_write(s, 0x1234, 1, 5, 0, data, sizeof data);
  assert_int_equal(cs_store_set_version(s, 0x1234, 1, 3), 0);
  char *p1 = t_chunk_path(dir, 0x1234, 1), *p3 = t_chunk_path(dir, 0x1234, 3);
  assert_false(t_exists(p1));
  assert_true(t_exists(p3));
  t_assert_content(s, 0x1234, 3, data, sizeof data);
  assert_int_equal(cs_store_read(s, 0x1234, 1, 0, data, 1), CAIRN_ESTALE);
  assert_int_equal(cs_store_set_version(s, 0x1234, 1, 3), 0); /* already there */
  assert_int_equal(cs_store_set_version(s, 0x1234, 2, 4), CAIRN_ESTALE);
  assert_int_equal(cs_store_set_version(s, 0x1234, 3, 3), CAIRN_EINVAL);
  assert_int_equal(cs_store_set_version(s, 0x1234, 3, 2), CAIRN_EINVAL);
  /* Serials restart with the version. */
  t_write(s, 0x1234, 3, 1, sizeof data, data, 10);
  /* The rule for never-written chunks, and its limit. */
  assert_int_equal(cs_store_set_version(s, 0x99, 1, 5), 0);
  t_assert_content(s, 0x99, 5, data, 0);
  assert_int_equal(cs_store_set_version(s, 0x98, 2, 5), CAIRN_ENOENT);
  cs_store_close(s);
  s = t_open(dir, NULL);
  unsigned char *model = cmn_malloc(sizeof data + 10);
  memcpy(model, data, sizeof data);
  memcpy(model + sizeof data, data, 10);
  t_assert_content(s, 0x1234, 3, model, sizeof data + 10);
  int n = 0;
  assert_int_equal(cs_store_foreach(s, t_count_replica, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(cs_store_count(s), 2);
  /* Delete: by version, then any. */
  assert_int_equal(cs_store_delete(s, 0x1234, 2), CAIRN_ESTALE);
  assert_int_equal(cs_store_delete(s, 0x1234, 3), 0);
  assert_false(t_exists(p3));
  assert_int_equal(cs_store_delete(s, 0x1234, 3), CAIRN_ENOENT);
  assert_int_equal(cs_store_delete(s, 0x99, 0), 0);
  assert_int_equal(cs_store_count(s), 0);
  free(model);
  free(p1);
  free(p3);
  cs_store_close(s);
  t_rm_rf(dir);
}

static void highest_version_kept_and_temp_files_removed(void **state) {
  (void)state;
  char *dirs[2] = {t_tmpdir(), t_tmpdir()};
  cs_store_opts o = t_opts(NULL);
  cs_store *s = t_open_n(dirs, 2, &o);
  unsigned char data[1000];
  t_fill(data, sizeof data, 1, 0);
  /* Version 2 of handle 0x500 in each dir in turn, bumped to 3 in one. */
  assert_int_equal(cs_store_create(s, 0x500, 2), 0);
  t_write(s, 0x500, 2, 1, 0, data, 100);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 0x500, &r), 0);
  unsigned first = r.dir;
  char *old_path = t_chunk_path(dirs[first], 0x500, 2);
  size_t n;
  unsigned char *old_file = t_slurp(old_path, &n);
  assert_int_equal(cs_store_set_version(s, 0x500, 2, 3), 0);
  t_write(s, 0x500, 3, 1, 100, data + 100, 200);
  cs_store_close(s);
  /* Put the stale version back, in the other dir, and in the same one. */
  char *stale_other = t_chunk_path(dirs[1 - first], 0x500, 2);
  char *stale_low = t_chunk_path(dirs[first], 0x500, 1);
  int fd = open(stale_other, O_WRONLY | O_CREAT, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, old_file, n), (ssize_t)n);
  close(fd);
  fd = open(stale_low, O_WRONLY | O_CREAT, 0644);
  close(fd);
  /* Temp files of an unfinished create / import, and a stranger's file. */
  char *tmp1 = cmn_sprintf("%s/00/0000000000000100_1.chunk.tmp", dirs[0]);
  char *tmp2 = cmn_sprintf("%s/ab/whatever.tmp", dirs[1]);
  char *other = cmn_sprintf("%s/ab/notes.txt", dirs[1]);
  const char *mk[] = {tmp1, tmp2, other};
  for (size_t i = 0; i < 3; i++) {
    fd = open(mk[i], O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    close(fd);
  }
  s = t_open_n(dirs, 2, &o);
  assert_false(t_exists(stale_other));
  assert_false(t_exists(stale_low));
  assert_false(t_exists(tmp1));
  assert_false(t_exists(tmp2));
  assert_true(t_exists(other)); /* not ours: left alone */
  t_assert_content(s, 0x500, 3, data, 300);
  assert_int_equal(cs_store_count(s), 1);
  free(tmp1);
  free(tmp2);
  free(other);
  free(stale_other);
  free(stale_low);
  free(old_file);
  free(old_path);
  cs_store_close(s);
  t_rm_rf(dirs[0]);
  t_rm_rf(dirs[1]);
}

static void bad_header_replica_is_reported_not_served(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 0x77, 1), 0);
  unsigned char data[1000];
  t_fill(data, sizeof data, 1, 0);
  t_write(s, 0x77, 1, 1, 0, data, sizeof data);
  cs_store_close(s);
  char *path = t_chunk_path(dir, 0x77, 1);
  cs__geom g = t_geom();
  /* Damage both header slots: no valid header remains. */
  t_flip(path, 20);
  t_flip(path, g.slot_size + 20);
  s = t_open(dir, NULL);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 0x77, &r), 0);
  assert_true(r.corrupt);
  assert_int_equal(r.version, 1);
  assert_int_equal(cs_store_read(s, 0x77, 1, 0, data, 10), CAIRN_ECORRUPT);
  assert_int_equal(cs_store_prepare(s, 0x77, 1, 2, 0, data, 10, cmn_crc32c(0, data, 10), 0),
                   CAIRN_ECORRUPT);
  assert_true(t_exists(path)); /* kept for the master to decide */
  assert_int_equal(cs_store_delete(s, 0x77, 0), 0);
  assert_false(t_exists(path));
  free(path);
  cs_store_close(s);
  t_rm_rf(dir);
}

CAIRN_TEST_MAIN(cmocka_unit_test(header_round_trip_and_bad_header),
                cmocka_unit_test(intent_and_side_records_round_trip),
                cmocka_unit_test(file_names_parse),
                cmocka_unit_test(unaligned_appends_keep_block_crcs),
                cmocka_unit_test(overwrite_goes_through_side_file),
                cmocka_unit_test(abort_leaves_file_byte_identical),
                cmocka_unit_test(commit_and_abort_are_idempotent),
                cmocka_unit_test(prepare_checks_are_refusals),
                cmocka_unit_test(reads_verify_checksums),
                cmocka_unit_test(scrubber_finds_damage),
                cmocka_unit_test(set_version_renames),
                cmocka_unit_test(highest_version_kept_and_temp_files_removed),
                cmocka_unit_test(bad_header_replica_is_reported_not_served))
