/* Unit tests for the namespace's determinism, checkpoint walk and rebuild
 * (master/ns_checkpoint.c): the property the operation log relies on. */
#include "ns_test_util.h"

#include <inttypes.h>
#include <stdio.h>

/* ---- determinism, checkpoints ----------------------------------------------- */

/* xorshift64*: a fixed, portable sequence. */
static uint64_t rnd(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

/* A random path of 1-3 components drawn from a few names, so operations
 * collide often and reach their error paths. */
static void rnd_path(uint64_t *s, char *buf, size_t cap) {
  static const char *names[] = {"a", "b", "c", "dd", "e"};
  size_t depth = 1 + rnd(s) % 3, len = 0;
  for (size_t i = 0; i < depth; i++)
    len += (size_t)snprintf(buf + len, cap - len, "/%s", names[rnd(s) % CMN_ARRAY_LEN(names)]);
}

typedef struct driver {
  uint64_t seed;
  uint64_t next_id;
  int64_t now;
  int ok[12];  /* per operation kind: how often it succeeded */
  int err[12]; /* ... and failed */
} driver;

/* One random operation; returns its result code, so two drivers can be
 * compared step by step. */
static int random_op(mst_ns *ns, driver *d) {
  char p1[64], p2[64];
  uint64_t *s = &d->seed;
  d->now += (int64_t)(rnd(s) % 50);
  rnd_path(s, p1, sizeof p1);
  rnd_path(s, p2, sizeof p2);
  uint64_t some_id = MST_NS_FIRST_ID + rnd(s) % (d->next_id - MST_NS_FIRST_ID + 1);
  /* Draw every random value first: argument evaluation order is unspecified. */
  int kind = (int)(rnd(s) % 12), rc;
  uint64_t r1 = rnd(s), r2 = rnd(s);
  switch (kind) {
  case 0: rc = mst_ns_mkdir(ns, P(p1), r1 & 1, d->next_id, d->now, NULL); break;
  case 1:
  case 2:
    rc = mst_ns_create(ns, P(p1), (unsigned)(r1 % 4), (uint32_t)(r2 % 5), d->next_id, d->now, NULL);
    break;
  case 3: rc = mst_ns_rename(ns, P(p1), P(p2), r1 & 1, d->now, NULL); break;
  case 4: rc = mst_ns_delete(ns, P(p1), r1 & 1, d->now, NULL); break;
  case 5: {
    uint64_t ids[4];
    int n = mst_ns_trash_expired(ns, d->now, ids, 4);
    rc = n;
    if (n == 0) return 0; /* nothing to undelete: not counted */
    if (n > 0) {
      cmn_buf b = {0};
      assert_int_equal(mst_ns_path(ns, ids[r1 % (uint64_t)n], &b), 0);
      if (r2 & 1)
        rc = mst_ns_undelete(ns, b.data, b.len, P(p1), d->now, NULL);
      else
        rc = mst_ns_undelete(ns, b.data, b.len, NULL, 0, d->now, NULL);
      cmn_buf_free(&b);
    }
    break;
  }
  case 6: {
    uint64_t ids[4];
    int n = mst_ns_trash_expired(ns, d->now - 500, ids, 4);
    if (n == 0) return 0;
    rc = n > 0 ? mst_ns_purge(ns, ids[0], d->now, NULL) : n;
    break;
  }
  case 7: rc = mst_ns_set_goal(ns, P(p1), (uint32_t)(r1 % 11), NULL); break;
  case 8: rc = mst_ns_grow_size(ns, some_id, r1 % 100000, d->now); break;
  case 9: {
    mst_ns_info info;
    rc = mst_ns_stat_id(ns, some_id, &info);
    if (rc == 0 && info.type == MST_NS_FILE)
      rc = mst_ns_chunk_append(ns, some_id, info.chunk_count, 1 + r1 % 1000000);
    break;
  }
  case 10: {
    mst_ns_info info;
    uint64_t index = r1 % 3;
    if (mst_ns_stat_id(ns, some_id, &info) == 0 && info.chunk_count > 0 && (r2 & 1))
      index = r1 % info.chunk_count;
    rc = mst_ns_chunk_replace(ns, some_id, index, 1 + r2 % 1000);
    break;
  }
  default: rc = mst_ns_set_mtime(ns, some_id, d->now); break;
  }
  /* Successful creations report how many ids they used. */
  if ((kind <= 2) && rc > 0) d->next_id += (uint64_t)rc;
  if (rc >= 0)
    d->ok[kind]++;
  else
    d->err[kind]++;
  return rc;
}

static void determinism_random_ops(void **state) {
  (void)state;
  mst_ns *a = new_ns(), *b = new_ns(), *c = new_ns();
  driver da = {.seed = 0x5eed1234abcdULL, .next_id = MST_NS_FIRST_ID};
  driver db = da;
  driver dc = {.seed = 0x0ddba11ULL, .next_id = MST_NS_FIRST_ID};
  for (int i = 0; i < 20000; i++) {
    int ra = random_op(a, &da);
    int rb = random_op(b, &db);
    if (ra != rb) fail_msg("op %d: %d vs %d", i, ra, rb);
    random_op(c, &dc);
    if (i % 2000 == 0) assert_int_equal(mst_ns_verify(a), 0);
  }
  /* Every kind of operation did real work, and most met errors too. */
  for (int k = 0; k < 12; k++) {
    print_message("kind %2d: %5d ok %5d failed\n", k, da.ok[k], da.err[k]);
    if (da.ok[k] < 5) fail_msg("operation kind %d succeeded only %d times", k, da.ok[k]);
    if (k != 6 && da.err[k] < 5) fail_msg("operation kind %d failed only %d times", k, da.err[k]);
  }
  mst_ns_counts ca;
  mst_ns_get_counts(a, &ca);
  assert_true(ca.total > 10);
  assert_true(ca.trash_entries > 0);
  assert_int_equal(mst_ns_verify(a), 0);
  assert_int_equal(mst_ns_verify(b), 0);
  assert_int_equal(mst_ns_digest(a), mst_ns_digest(b));
  assert_int_not_equal(mst_ns_digest(a), mst_ns_digest(c));
  mst_ns_free(a);
  mst_ns_free(b);
  mst_ns_free(c);
}

static int insert_into(void *arg, const mst_ns_record *rec) {
  int rc = mst_ns_insert(arg, rec);
  if (rc != 0) fail_msg("insert id %" PRIu64 ": %d", rec->id, rc);
  return rc;
}

static int count_records(void *arg, const mst_ns_record *rec) {
  (void)rec;
  (*(uint64_t *)arg)++;
  return 0;
}

static void checkpoint_rebuild_same_digest(void **state) {
  (void)state;
  mst_ns *a = new_ns(), *b = new_ns();
  driver d = {.seed = 77, .next_id = MST_NS_FIRST_ID};
  for (int i = 0; i < 20000; i++) random_op(a, &d);
  /* And a deep chain, which the walk must handle without recursion. */
  char deep[4096];
  size_t len = 0;
  for (int i = 0; i < 1000; i++) len += (size_t)snprintf(deep + len, sizeof deep - len, "/z");
  assert_int_equal(mst_ns_mkdir(a, deep, len, true, d.next_id, 5, NULL), 1000);
  d.next_id += 1000;
  assert_int_equal(mst_ns_iterate(a, insert_into, b), 0);
  assert_int_equal(mst_ns_verify(b), 0);
  assert_int_equal(mst_ns_digest(a), mst_ns_digest(b));
  mst_ns_counts ca, cb;
  mst_ns_get_counts(a, &ca);
  mst_ns_get_counts(b, &cb);
  assert_memory_equal(&ca, &cb, sizeof ca);
  uint64_t n = 0;
  assert_int_equal(mst_ns_iterate(a, count_records, &n), 0);
  assert_int_equal(n, ca.total + 2);

  /* Both keep evolving identically after the rebuild (replay after a
   * checkpoint). */
  driver d2 = d;
  for (int i = 0; i < 3000; i++) {
    int ra = random_op(a, &d), rb = random_op(b, &d2);
    if (ra != rb) fail_msg("op %d after rebuild: %d vs %d", i, ra, rb);
  }
  assert_int_equal(mst_ns_digest(a), mst_ns_digest(b));
  mst_ns_free(a);
  mst_ns_free(b);
}

static void insert_refuses_inconsistent_records(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  uint64_t chunks[2] = {5, 0};
  mst_ns_record r = {.id = 16, .parent_id = MST_NS_ROOT_ID, .type = MST_NS_DIR, .name = "d",
                     .name_len = 1, .mtime_ms = 3, .goal = 3};
  assert_int_equal(mst_ns_insert(ns, &r), 0);
  mst_ns_record f = {.id = 17, .parent_id = 16, .type = MST_NS_FILE, .name = "f", .name_len = 1,
                     .size = 10, .mtime_ms = 4, .goal = 2, .chunks = chunks, .chunk_count = 1};
  assert_int_equal(mst_ns_insert(ns, &f), 0);
  uint64_t digest = mst_ns_digest(ns);

  mst_ns_record bad;
#define REFUSED(base, field_edit)                                            \
  do {                                                                       \
    bad = (base);                                                            \
    field_edit;                                                              \
    assert_int_equal(mst_ns_insert(ns, &bad), CAIRN_ECORRUPT);               \
  } while (0)
  REFUSED(f, bad.id = 18; bad.parent_id = 999);                    /* unknown parent */
  REFUSED(f, bad.name = "g");                                       /* duplicate id */
  REFUSED(f, bad.id = 18);                                          /* duplicate name */
  REFUSED(f, bad.id = 18; bad.parent_id = 17; bad.name = "g");      /* parent is a file */
  REFUSED(f, bad.id = 5; bad.name = "g");                           /* reserved id */
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.goal = 0);
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.goal = 10);
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.type = (mst_ns_type)7);
  REFUSED(f, bad.id = 18; bad.name = ".."; bad.name_len = 2);
  REFUSED(f, bad.id = 18; bad.name = "a/b"; bad.name_len = 3);
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.mtime_ms = -1);
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.chunk_count = 2);     /* handle 0 */
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.chunks = NULL);
  REFUSED(r, bad.id = 18; bad.name = "e"; bad.size = 1);            /* directory with size */
  REFUSED(r, bad.id = 18; bad.name = "e"; bad.chunks = chunks; bad.chunk_count = 1);
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.trash_ms = 5);        /* trash fields outside */
  REFUSED(f, bad.id = 18; bad.name = "g"; bad.trash_origin = "/g"; bad.trash_origin_len = 2);
  /* Trash entries: origin, time and the exact entry name are required. */
  mst_ns_record t = {.id = 20, .parent_id = MST_NS_TRASH_ID, .type = MST_NS_FILE,
                     .name = "0000000000007-20-g", .name_len = 18, .mtime_ms = 1, .goal = 3,
                     .trash_ms = 7, .trash_origin = "/d/g", .trash_origin_len = 4};
  REFUSED(t, bad.trash_origin = NULL; bad.trash_origin_len = 0);
  REFUSED(t, bad.trash_origin = "d/g"; bad.trash_origin_len = 3);
  REFUSED(t, bad.trash_ms = 8);
  REFUSED(t, bad.name = "0000000000007-21-g");
  REFUSED(t, bad.trash_origin = "/d/h");
  REFUSED(t, bad.trash_ms = -7);
  /* Built-in nodes must look like themselves. */
  mst_ns_record root = {.id = MST_NS_ROOT_ID, .type = MST_NS_DIR, .name = "", .mtime_ms = 9,
                        .goal = 4};
  REFUSED(root, bad.parent_id = 16);
  REFUSED(root, bad.type = MST_NS_FILE);
  REFUSED(root, bad.name = "x"; bad.name_len = 1);
  mst_ns_record tr = {.id = MST_NS_TRASH_ID, .parent_id = MST_NS_ROOT_ID, .type = MST_NS_DIR,
                      .name = ".trash", .name_len = 6, .goal = 3};
  REFUSED(tr, bad.name = "trash"; bad.name_len = 5);
#undef REFUSED
  assert_int_equal(mst_ns_digest(ns), digest);
  assert_int_equal(mst_ns_verify(ns), 0);

  /* The good versions go in. */
  assert_int_equal(mst_ns_insert(ns, &t), 0);
  assert_int_equal(mst_ns_insert(ns, &root), 0);
  assert_int_equal(mst_ns_insert(ns, &tr), 0);
  mst_ns_info info;
  assert_int_equal(mst_ns_stat(ns, P("/"), &info), 0);
  assert_int_equal(info.goal, 4);
  assert_int_equal(info.mtime_ms, 9);
  assert_int_equal(mst_ns_stat(ns, P("/.trash/0000000000007-20-g"), &info), 0);
  assert_true(info.trashed);
  assert_int_equal(mst_ns_undelete(ns, P("/.trash/0000000000007-20-g"), NULL, 0, 10, NULL), 0);
  assert_int_equal(id_of(ns, "/d/g"), 20);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

CAIRN_TEST_MAIN(cmocka_unit_test(determinism_random_ops),
                cmocka_unit_test(checkpoint_rebuild_same_digest),
                cmocka_unit_test(insert_refuses_inconsistent_records))
