/* Crash and torn-write tests for the replica store (chunkserver/store*.c):
 * a simulated crash at every step of prepare, commit, abort, version change,
 * create, import and delete, then a restart, must leave the old or the new
 * state, never a mix, with the undecided mutation listed as pending. */
#include "store_test_util.h"

#define H 5u
#define OLD_LEN 100000u

typedef enum phase { PH_PREPARE, PH_COMMIT, PH_ABORT } phase;

typedef struct scenario {
  uint64_t off;
  size_t len;
  unsigned flags;
  cs_store_kind kind;
} scenario;

static const scenario APPEND = {OLD_LEN, 150000, 0, CS_STORE_KIND_APPEND};
static const scenario OVERWRITE_IN = {30000, 65000, 0, CS_STORE_KIND_OVERWRITE};
static const scenario OVERWRITE_GROW = {90000, 100000, 0, CS_STORE_KIND_OVERWRITE};
static const scenario PAD = {OLD_LEN, 0, CS_STORE_PAD, CS_STORE_KIND_PAD};

typedef struct world {
  unsigned char *old_model, *new_model, *data;
  size_t new_len;
} world;

static void world_init(world *w, const scenario *sc) {
  w->old_model = cmn_calloc(1, T_CHUNK);
  w->new_model = cmn_calloc(1, T_CHUNK);
  w->data = cmn_malloc(T_CHUNK);
  t_fill(w->old_model, OLD_LEN, 1, 0);
  t_fill(w->data, sc->len, 2, 0);
  memcpy(w->new_model, w->old_model, OLD_LEN);
  if (sc->flags & CS_STORE_PAD) {
    w->new_len = T_CHUNK;
  } else {
    memcpy(w->new_model + sc->off, w->data, sc->len);
    w->new_len = CMN_MAX((size_t)OLD_LEN, sc->off + sc->len);
  }
}

static void world_free(world *w) {
  free(w->old_model);
  free(w->new_model);
  free(w->data);
}

static int do_prepare(cs_store *s, const scenario *sc, const world *w) {
  const void *d = (sc->flags & CS_STORE_PAD) ? NULL : w->data;
  uint32_t crc = d ? cmn_crc32c(0, d, sc->len) : 0;
  return cs_store_prepare(s, H, 1, 2, sc->off, d, sc->len, crc, sc->flags);
}

static void assert_intent(const t_intents *p, const scenario *sc) {
  assert_int_equal(p->n, 1);
  assert_int_equal(p->v[0].handle, H);
  assert_int_equal(p->v[0].version, 1);
  assert_int_equal(p->v[0].serial, 2);
  assert_int_equal(p->v[0].offset, sc->off);
  assert_int_equal(p->v[0].kind, sc->kind);
  assert_int_equal(p->v[0].length, sc->flags ? T_CHUNK - OLD_LEN : sc->len);
}

/*
 * For n = 1, 2, ...: a fresh store with OLD_LEN committed bytes; the phase's
 * operation crashes at its n-th step; restart; check old-or-new and the
 * pending list; finish the protocol (commit or abort) and check again after
 * one more restart. Ends when the operation runs through without reaching
 * step n. Returns the number of steps exercised.
 */
static int crash_every_step(phase ph, const scenario *sc) {
  world w;
  world_init(&w, sc);
  int steps = 0;
  for (int n = 1;; n++) {
    char *dir = t_tmpdir();
    t_fault f = {0};
    cs_store *s = t_open(dir, &f);
    assert_int_equal(cs_store_create(s, H, 1), 0);
    t_write(s, H, 1, 1, 0, w.old_model, OLD_LEN);
    char *path = t_chunk_path(dir, H, 1);
    size_t before_len;
    unsigned char *before = t_slurp(path, &before_len);
    if (ph != PH_PREPARE) assert_int_equal(do_prepare(s, sc, &w), 0);
    f.armed = 1;
    f.crash_at = n;
    int rc = ph == PH_PREPARE ? do_prepare(s, sc, &w)
             : ph == PH_COMMIT ? cs_store_commit(s, H, 1, 2)
                               : cs_store_abort(s, H, 1, 2);
    f.armed = 0;
    bool crashed = f.crashed;
    if (crashed) {
      assert_int_equal(rc, CAIRN_EIO);
      unsigned char b;
      assert_int_equal(cs_store_read(s, H, 1, 0, &b, 1), CAIRN_EIO); /* dead until reopened */
      steps++;
    } else {
      assert_int_equal(rc, 0);
    }
    cs_store_close(s);
    s = t_open(dir, NULL);
    t_intents p = t_pending(s);
    bool is_new = false;
    if (p.n == 0) {
      cs_store_replica r;
      assert_int_equal(cs_store_info(s, H, &r), 0);
      assert_false(r.corrupt);
      is_new = ph == PH_COMMIT; /* no intent left: a commit finished, else nothing happened */
      if (ph == PH_PREPARE && !crashed) assert_true(false); /* a yes vote must survive */
    } else {
      assert_intent(&p, sc);
      t_assert_content(s, H, 1, w.old_model, OLD_LEN); /* nothing applied yet */
      rc = ph == PH_ABORT ? cs_store_abort(s, H, 1, 2) : cs_store_commit(s, H, 1, 2);
      assert_int_equal(rc, 0);
      is_new = ph != PH_ABORT;
    }
    for (int round = 0; round < 2; round++) {
      if (is_new) {
        t_assert_content(s, H, 1, w.new_model, w.new_len);
        t_assert_crc_table(path, w.new_model, w.new_len);
      } else {
        t_assert_content(s, H, 1, w.old_model, OLD_LEN);
        t_assert_file_equals(path, before, before_len);
      }
      char *side = t_side_path(dir, H, 1, 2);
      assert_false(t_exists(side));
      free(side);
      assert_int_equal(t_pending(s).n, 0);
      cs_store_close(s);
      s = t_open(dir, NULL);
    }
    cs_store_close(s);
    free(before);
    free(path);
    t_rm_rf(dir);
    if (!crashed) break;
  }
  world_free(&w);
  return steps;
}

static void crash_in_prepare_append(void **state) {
  (void)state;
  assert_true(crash_every_step(PH_PREPARE, &APPEND) >= 3);
}
static void crash_in_prepare_overwrite(void **state) {
  (void)state;
  assert_true(crash_every_step(PH_PREPARE, &OVERWRITE_IN) >= 5);
  assert_true(crash_every_step(PH_PREPARE, &OVERWRITE_GROW) >= 5);
}
static void crash_in_prepare_pad(void **state) {
  (void)state;
  assert_true(crash_every_step(PH_PREPARE, &PAD) >= 3);
}
static void crash_in_commit_append(void **state) {
  (void)state;
  assert_true(crash_every_step(PH_COMMIT, &APPEND) >= 3);
  assert_true(crash_every_step(PH_COMMIT, &PAD) >= 3);
}
static void crash_in_commit_overwrite(void **state) {
  (void)state;
  assert_true(crash_every_step(PH_COMMIT, &OVERWRITE_IN) >= 6);
  assert_true(crash_every_step(PH_COMMIT, &OVERWRITE_GROW) >= 6);
}
static void crash_in_abort(void **state) {
  (void)state;
  assert_true(crash_every_step(PH_ABORT, &APPEND) >= 3);
  assert_true(crash_every_step(PH_ABORT, &OVERWRITE_GROW) >= 3);
  assert_true(crash_every_step(PH_ABORT, &PAD) >= 3);
}

/* ---- restart with prepared mutations ---- */

static void restart_lists_prepared_then_commit_works(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  world w;
  world_init(&w, &OVERWRITE_IN);
  assert_int_equal(cs_store_create(s, H, 1), 0);
  assert_int_equal(cs_store_create(s, 6, 1), 0);
  assert_int_equal(cs_store_create(s, 7, 1), 0);
  t_write(s, H, 1, 1, 0, w.old_model, OLD_LEN);
  assert_int_equal(do_prepare(s, &OVERWRITE_IN, &w), 0);
  assert_int_equal(cs_store_prepare(s, 6, 1, 9, 0, w.data, 1000, cmn_crc32c(0, w.data, 1000), 0), 0);
  assert_int_equal(cs_store_prepare(s, 7, 1, 4, 0, w.data, 10, cmn_crc32c(0, w.data, 10), 0), 0);
  cs_store_close(s);
  s = t_open(dir, NULL);
  t_intents p = t_pending(s);
  assert_int_equal(p.n, 3);
  int seen = 0;
  for (size_t i = 0; i < p.n; i++) {
    if (p.v[i].handle == H) {
      assert_int_equal(p.v[i].kind, CS_STORE_KIND_OVERWRITE);
      assert_int_equal(p.v[i].crc, cmn_crc32c(0, w.data, OVERWRITE_IN.len));
      seen |= 1;
    } else if (p.v[i].handle == 6) {
      assert_int_equal(p.v[i].serial, 9);
      assert_int_equal(p.v[i].kind, CS_STORE_KIND_APPEND);
      assert_int_equal(p.v[i].length, 1000);
      seen |= 2;
    } else {
      assert_int_equal(p.v[i].handle, 7);
      seen |= 4;
    }
  }
  assert_int_equal(seen, 7);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 6, &r), 0);
  assert_true(r.pending);
  assert_int_equal(r.length, 0);
  assert_int_equal(cs_store_commit(s, H, 1, 2), 0);
  assert_int_equal(cs_store_commit(s, 6, 1, 9), 0);
  assert_int_equal(cs_store_abort(s, 7, 1, 4), 0);
  t_assert_content(s, H, 1, w.new_model, w.new_len);
  t_assert_content(s, 6, 1, w.data, 1000);
  t_assert_content(s, 7, 1, w.data, 0);
  assert_int_equal(t_pending(s).n, 0);
  world_free(&w);
  cs_store_close(s);
  t_rm_rf(dir);
}

/* ---- torn writes ---- */

typedef enum damage { CUT_DATA, SCRAMBLE_DATA, CUT_SIDE, SCRAMBLE_SIDE, BAD_INTENT } damage;

/* Prepare, "crash" (close), damage what the prepare wrote, reopen: the
 * mutation must be dropped and the file byte-identical to before. */
static void torn_prepare(damage d) {
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  const scenario *sc = d == CUT_SIDE || d == SCRAMBLE_SIDE ? &OVERWRITE_GROW : &APPEND;
  world w;
  world_init(&w, sc);
  assert_int_equal(cs_store_create(s, H, 1), 0);
  t_write(s, H, 1, 1, 0, w.old_model, OLD_LEN);
  char *path = t_chunk_path(dir, H, 1), *side = t_side_path(dir, H, 1, 2);
  size_t n;
  unsigned char *before = t_slurp(path, &n);
  assert_int_equal(do_prepare(s, sc, &w), 0);
  cs_store_close(s);
  cs__geom g = t_geom();
  switch (d) {
  case CUT_DATA: t_truncate(path, g.data_off + OLD_LEN + sc->len / 2); break;
  case SCRAMBLE_DATA: t_flip(path, g.data_off + OLD_LEN + sc->len - 1); break;
  case CUT_SIDE: t_truncate(side, t_size(side) - 5000); break;
  case SCRAMBLE_SIDE: t_flip(side, t_size(side) - 5000); break;
  case BAD_INTENT: t_flip(path, g.intent_off + 40); break;
  }
  s = t_open(dir, NULL);
  assert_int_equal(t_pending(s).n, 0);
  t_assert_content(s, H, 1, w.old_model, OLD_LEN);
  t_assert_file_equals(path, before, n);
  assert_false(t_exists(side));
  assert_int_equal(cs_store_commit(s, H, 1, 2), CAIRN_ENOENT); /* the 2PC layer reports it */
  /* The replica takes the next mutation normally. */
  t_write(s, H, 1, 3, OLD_LEN, w.data, 10);
  cs_store_close(s);
  free(before);
  free(path);
  free(side);
  world_free(&w);
  t_rm_rf(dir);
}

static void torn_append_data_dropped(void **state) {
  (void)state;
  torn_prepare(CUT_DATA);
  torn_prepare(SCRAMBLE_DATA);
}
static void torn_side_file_dropped(void **state) {
  (void)state;
  torn_prepare(CUT_SIDE);
  torn_prepare(SCRAMBLE_SIDE);
}
static void torn_intent_record_dropped(void **state) {
  (void)state;
  torn_prepare(BAD_INTENT);
}

/* A commit whose header write tore (crash before its fsync, the slot
 * garbled): the previous slot still rules, the intent is pending again. */
static void torn_header_write_falls_back(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  t_fault f = {0};
  cs_store *s = t_open(dir, &f);
  world w;
  world_init(&w, &APPEND);
  assert_int_equal(cs_store_create(s, H, 1), 0);
  t_write(s, H, 1, 1, 0, w.old_model, OLD_LEN); /* slot B now current */
  assert_int_equal(do_prepare(s, &APPEND, &w), 0);
  f.armed = 1;
  f.err_step = NULL;
  f.crash_at = 2; /* commit.header done, crash at commit.sync */
  assert_int_equal(cs_store_commit(s, H, 1, 2), CAIRN_EIO);
  cs_store_close(s);
  char *path = t_chunk_path(dir, H, 1);
  t_flip(path, 30); /* slot A, the one the commit was writing */
  s = t_open(dir, NULL);
  t_intents p = t_pending(s);
  assert_intent(&p, &APPEND);
  t_assert_content(s, H, 1, w.old_model, OLD_LEN);
  assert_int_equal(cs_store_commit(s, H, 1, 2), 0);
  t_assert_content(s, H, 1, w.new_model, w.new_len);
  free(path);
  world_free(&w);
  cs_store_close(s);
  t_rm_rf(dir);
}

/* A decided overwrite whose side file vanished cannot be redone: the
 * replica is reported corrupt, not served as if nothing happened. */
static void decided_commit_without_side_file_is_corrupt(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  t_fault f = {0};
  cs_store *s = t_open(dir, &f);
  world w;
  world_init(&w, &OVERWRITE_IN);
  assert_int_equal(cs_store_create(s, H, 1), 0);
  t_write(s, H, 1, 1, 0, w.old_model, OLD_LEN);
  assert_int_equal(do_prepare(s, &OVERWRITE_IN, &w), 0);
  f.armed = 1;
  f.crash_at = 4; /* decide, decide_sync, first copy done, crash at the second */
  assert_int_equal(cs_store_commit(s, H, 1, 2), CAIRN_EIO);
  cs_store_close(s);
  char *side = t_side_path(dir, H, 1, 2);
  assert_int_equal(unlink(side), 0);
  s = t_open(dir, NULL);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, H, &r), 0);
  assert_true(r.corrupt);
  assert_int_equal(t_pending(s).n, 0);
  free(side);
  world_free(&w);
  cs_store_close(s);
  t_rm_rf(dir);
}

/* ---- other operations ---- */

static void crash_in_version_change(void **state) {
  (void)state;
  unsigned char data[5000];
  t_fill(data, sizeof data, 3, 0);
  for (int n = 1;; n++) {
    char *dir = t_tmpdir();
    t_fault f = {0};
    cs_store *s = t_open(dir, &f);
    assert_int_equal(cs_store_create(s, H, 1), 0);
    t_write(s, H, 1, 1, 0, data, sizeof data);
    f.armed = 1;
    f.crash_at = n;
    int rc = cs_store_set_version(s, H, 1, 2);
    bool crashed = f.crashed;
    assert_int_equal(rc, crashed ? CAIRN_EIO : 0);
    cs_store_close(s);
    s = t_open(dir, NULL);
    cs_store_replica r;
    assert_int_equal(cs_store_info(s, H, &r), 0);
    assert_true(r.version == 1 || r.version == 2);
    t_assert_content(s, H, r.version, data, sizeof data);
    char *p1 = t_chunk_path(dir, H, 1), *p2 = t_chunk_path(dir, H, 2);
    assert_true(t_exists(r.version == 1 ? p1 : p2));
    assert_false(t_exists(r.version == 1 ? p2 : p1));
    /* Writes continue at whichever version survived. */
    t_write(s, H, r.version, 7, sizeof data, data, 10);
    if (!crashed) assert_int_equal(r.version, 2);
    free(p1);
    free(p2);
    cs_store_close(s);
    t_rm_rf(dir);
    if (!crashed) {
      assert_true(n >= 5);
      break;
    }
  }
}

static void crash_in_create_import_delete(void **state) {
  (void)state;
  unsigned char *data = cmn_malloc(200000);
  t_fill(data, 200000, 4, 0);
  for (int op = 0; op < 3; op++) {
    for (int n = 1;; n++) {
      char *dir = t_tmpdir();
      t_fault f = {0};
      cs_store *s = t_open(dir, &f);
      if (op == 2) {
        assert_int_equal(cs_store_create(s, H, 3), 0);
        t_write(s, H, 3, 1, 0, data, 1000);
      }
      f.armed = 1;
      f.crash_at = n;
      int rc = op == 0   ? cs_store_create(s, H, 3)
               : op == 1 ? cs_store_import(s, H, 3, data, 200000, cmn_crc32c(0, data, 200000))
                         : cs_store_delete(s, H, 0);
      bool crashed = f.crashed;
      assert_int_equal(rc, crashed ? CAIRN_EIO : 0);
      cs_store_close(s);
      s = t_open(dir, NULL);
      cs_store_replica r;
      rc = cs_store_info(s, H, &r);
      if (rc == 0) {
        size_t want = op == 0 ? 0 : op == 1 ? 200000 : 1000;
        t_assert_content(s, H, 3, data, want);
      } else {
        assert_int_equal(rc, CAIRN_ENOENT);
      }
      if (!crashed) assert_int_equal(rc, op == 2 ? CAIRN_ENOENT : 0);
      cs_store_close(s);
      t_rm_rf(dir);
      if (!crashed) break;
    }
  }
  free(data);
}

CAIRN_TEST_MAIN(cmocka_unit_test(crash_in_prepare_append),
                cmocka_unit_test(crash_in_prepare_overwrite),
                cmocka_unit_test(crash_in_prepare_pad),
                cmocka_unit_test(crash_in_commit_append),
                cmocka_unit_test(crash_in_commit_overwrite),
                cmocka_unit_test(crash_in_abort),
                cmocka_unit_test(restart_lists_prepared_then_commit_works),
                cmocka_unit_test(torn_append_data_dropped),
                cmocka_unit_test(torn_side_file_dropped),
                cmocka_unit_test(torn_intent_record_dropped),
                cmocka_unit_test(torn_header_write_falls_back),
                cmocka_unit_test(decided_commit_without_side_file_is_corrupt),
                cmocka_unit_test(crash_in_version_change),
                cmocka_unit_test(crash_in_create_import_delete))
