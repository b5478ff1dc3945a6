/*
 * The master's state machine and persistence together: random operation
 * sequences applied and logged, with checkpoints taken along the way; a
 * second master recovering from the same directory (checkpoint + replay)
 * must hold exactly the same state.
 */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_util.h"
#include "mst_master.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fx {
  char dir[128];
  mst_config cfg;
};

static int rm_one(const char *p, const struct stat *s, int f, struct FTW *w) {
  (void)s;
  (void)f;
  (void)w;
  return remove(p);
}

static int setup(void **state) {
  struct fx *f = cmn_calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/cairn-apply-XXXXXX");
  if (!mkdtemp(f->dir)) return -1;
  char err[256];
  if (cmn_config_defaults(&mst_config_spec, &f->cfg, err, sizeof err) != 0) return -1;
  free(f->cfg.dir);
  f->cfg.dir = cmn_sprintf("%s/data", f->dir);
  f->cfg.chunk_size = 1 << 20;
  if (mst_init_cluster(&f->cfg, err, sizeof err) != 0) return -1;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fx *f = *state;
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  cmn_config_free(&mst_config_spec, &f->cfg);
  free(f);
  return 0;
}

static uint64_t rnd(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void random_path(uint64_t *s, char *out, size_t n) {
  static const char *const parts[] = {"a", "b", "c", "dd", "e"};
  int depth = 1 + (int)(rnd(s) % 3);
  size_t len = 0;
  for (int i = 0; i < depth; i++)
    len += (size_t)snprintf(out + len, n - len, "/%s", parts[rnd(s) % CMN_ARRAY_LEN(parts)]);
}

/* Apply one random record the way the services build them: ids and times
 * chosen here; failures are fine (they change nothing and are not logged). */
static void random_op(mst_master *m, uint64_t *s, int64_t now, int *applied) {
  char p1[64], p2[64];
  random_path(s, p1, sizeof p1);
  random_path(s, p2, sizeof p2);
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  Cairn__V1__OpMkdir mk = CAIRN__V1__OP_MKDIR__INIT;
  Cairn__V1__OpCreate cr = CAIRN__V1__OP_CREATE__INIT;
  Cairn__V1__OpRename rn = CAIRN__V1__OP_RENAME__INIT;
  Cairn__V1__OpDelete de = CAIRN__V1__OP_DELETE__INIT;
  Cairn__V1__OpSetGoal sg = CAIRN__V1__OP_SET_GOAL__INIT;
  Cairn__V1__OpAddChunk ac = CAIRN__V1__OP_ADD_CHUNK__INIT;
  Cairn__V1__OpSetVersion sv = CAIRN__V1__OP_SET_VERSION__INIT;
  Cairn__V1__OpSetSize ss = CAIRN__V1__OP_SET_SIZE__INIT;
  Cairn__V1__OpPurge pu = CAIRN__V1__OP_PURGE__INIT;
  Cairn__V1__OpUndelete ud = CAIRN__V1__OP_UNDELETE__INIT;
  cmn_buf trash = {0};
  uint64_t fid = MST_NS_FIRST_ID + rnd(s) % (m->next_file_id - MST_NS_FIRST_ID + 1);
  switch (rnd(s) % 11) {
  case 0:
    mk.path = p1;
    mk.parents = rnd(s) % 2;
    mk.first_id = m->next_file_id;
    mk.now_ms = now;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_MKDIR;
    rec.mkdir = &mk;
    break;
  case 1:
  case 2:
    cr.path = p1;
    cr.parents = rnd(s) % 2;
    cr.exclusive = 1;
    cr.first_id = m->next_file_id;
    cr.goal = (uint32_t)(rnd(s) % 4);
    cr.now_ms = now;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_CREATE;
    rec.create = &cr;
    break;
  case 3:
    rn.from = p1;
    rn.to = p2;
    rn.overwrite = rnd(s) % 2;
    rn.now_ms = now;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_RENAME;
    rec.rename = &rn;
    break;
  case 4:
    de.path = p1;
    de.recursive = rnd(s) % 2;
    de.now_ms = now;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_DELETE;
    rec.delete_ = &de;
    break;
  case 5:
    sg.path = p1;
    sg.goal = 1 + (uint32_t)(rnd(s) % 5);
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_GOAL;
    rec.set_goal = &sg;
    break;
  case 6:
  case 7: {
    mst_ns_info info;
    ac.file_id = fid;
    ac.index = mst_ns_stat_id(m->ns, fid, &info) == 0 ? info.chunk_count : 0;
    ac.handle = m->next_handle;
    ac.version = 1;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_ADD_CHUNK;
    rec.add_chunk = &ac;
    break;
  }
  case 8: {
    mst_chunk_info ci;
    sv.handle = 1 + rnd(s) % m->next_handle;
    sv.version = (mst_chunks_get(m->chunks, sv.handle, &ci) == 0 ? ci.version : 0) + 1;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_VERSION;
    rec.set_version = &sv;
    break;
  }
  case 9:
    ss.file_id = fid;
    ss.size = rnd(s) % (1 << 22);
    ss.mtime_ms = now;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_SET_SIZE;
    rec.set_size = &ss;
    break;
  default: {
    uint64_t ids[4];
    int n = mst_ns_trash_expired(m->ns, now + 1, ids, 4);
    if (n > 0 && rnd(s) % 2) {
      pu.file_id = ids[rnd(s) % (uint64_t)n];
      pu.now_ms = now;
      rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_PURGE;
      rec.purge = &pu;
    } else if (n > 0) {
      mst_ns_path(m->ns, ids[0], &trash);
      ud.trash_path = trash.data;
      ud.restore_to = "";
      ud.now_ms = now;
      rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_UNDELETE;
      rec.undelete = &ud;
    } else {
      cmn_buf_free(&trash);
      return;
    }
  }
  }
  if (mst_apply(m, &rec) == 0) {
    mst_log_record(m, &rec, NULL, NULL);
    (*applied)++;
  }
  cmn_buf_free(&trash);
}

struct chunk_digest {
  uint64_t sum;
  uint64_t n;
};

static int digest_chunk(void *arg, const mst_chunk_info *ci) {
  struct chunk_digest *d = arg;
  uint64_t h = ci->handle * 0x9E3779B97F4A7C15ull ^ ci->version * 31 ^ ci->file_id * 7 ^
               ((uint64_t)ci->index << 20) ^ ci->goal;
  d->sum += h * (h | 1);
  d->n++;
  return 0;
}

static void state_digest(mst_master *m, uint64_t out[4]) {
  struct chunk_digest d = {0};
  mst_chunks_iterate(m->chunks, digest_chunk, &d);
  out[0] = mst_ns_digest(m->ns);
  out[1] = d.sum ^ d.n;
  out[2] = m->next_file_id;
  out[3] = m->next_handle;
}

static void checkpoint_now(mst_master *m) {
  uint64_t next;
  assert_int_equal(mst_oplog_rotate(m->log, &next), 0);
  char *meta = cmn_sprintf("%s/meta", m->cfg.dir);
  assert_int_equal(mst_checkpoint_write_state(m, next - 1, meta), 0);
  free(meta);
}

static void run_property(struct fx *f, uint64_t seed, int ops, int ckpt_every) {
  mst_master a;
  char err[512];
  assert_int_equal(mst_master_init(&a, &f->cfg), 0);
  assert_int_equal(mst_recover(&a, err, sizeof err), 0);
  uint64_t s = seed;
  int applied = 0;
  int64_t now = 1700000000000;
  for (int i = 0; i < ops; i++) {
    random_op(&a, &s, now, &applied);
    now += (int64_t)(rnd(&s) % 1000);
    if (ckpt_every && i % ckpt_every == ckpt_every - 1) checkpoint_now(&a);
  }
  fprintf(stderr, "applied %d of %d operations\n", applied, ops);
  assert_true(applied > ops / 6);
  uint64_t da[4];
  state_digest(&a, da);
  assert_int_equal(mst_oplog_close(a.log), 0);
  a.log = NULL;

  mst_master b;
  assert_int_equal(mst_master_init(&b, &f->cfg), 0);
  assert_int_equal(mst_recover(&b, err, sizeof err), 0);
  uint64_t db[4];
  state_digest(&b, db);
  assert_memory_equal(da, db, sizeof da);
  assert_int_equal(mst_ns_verify(b.ns), 0);
  assert_string_equal(a.cluster_id, b.cluster_id);
  mst_oplog_close(b.log);
  mst_master_destroy(&a);
  mst_master_destroy(&b);
}

static void replay_alone_rebuilds_state(void **state) { run_property(*state, 42, 6000, 0); }

static void checkpoints_plus_replay_rebuild_state(void **state) {
  run_property(*state, 7, 6000, 1500);
}

static void checkpoint_at_the_very_end(void **state) { run_property(*state, 99, 3000, 3000); }

static void records_that_do_not_apply_change_nothing(void **state) {
  struct fx *f = *state;
  mst_master m;
  char err[512];
  assert_int_equal(mst_master_init(&m, &f->cfg), 0);
  assert_int_equal(mst_recover(&m, err, sizeof err), 0);
  uint64_t before[4], after[4];
  state_digest(&m, before);
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  Cairn__V1__OpAddChunk ac = CAIRN__V1__OP_ADD_CHUNK__INIT;
  ac.file_id = 12345; /* no such file */
  ac.handle = 1;
  ac.version = 1;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_ADD_CHUNK;
  rec.add_chunk = &ac;
  assert_int_equal(mst_apply(&m, &rec), CAIRN_ENOENT);
  Cairn__V1__OpCreate cr = CAIRN__V1__OP_CREATE__INIT;
  cr.path = "/x";
  cr.first_id = 3; /* reserved id */
  cr.now_ms = 1;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_CREATE;
  rec.create = &cr;
  assert_int_equal(mst_apply(&m, &rec), CAIRN_EINVAL);
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP__NOT_SET;
  assert_int_equal(mst_apply(&m, &rec), CAIRN_EINVAL);
  /* A chunk added at the wrong index is refused and leaves no chunk behind. */
  cr.first_id = m.next_file_id;
  assert_int_equal(mst_apply(&m, &(Cairn__V1__OplogRecord){
                                     .base = rec.base,
                                     .op_case = CAIRN__V1__OPLOG_RECORD__OP_CREATE,
                                     .create = &cr}),
                   0);
  state_digest(&m, before);
  ac.file_id = cr.first_id;
  ac.index = 3;
  rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_ADD_CHUNK;
  rec.add_chunk = &ac; /* the oneof members share storage */
  assert_int_equal(mst_apply(&m, &rec), CAIRN_EINVAL);
  state_digest(&m, after);
  assert_memory_equal(before, after, sizeof before);
  assert_int_equal(mst_chunks_count(m.chunks), 0);
  mst_oplog_close(m.log);
  mst_master_destroy(&m);
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(replay_alone_rebuilds_state, setup, teardown),
                cmocka_unit_test_setup_teardown(checkpoints_plus_replay_rebuild_state, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(checkpoint_at_the_very_end, setup, teardown),
                cmocka_unit_test_setup_teardown(records_that_do_not_apply_change_nothing, setup,
                                                teardown))
