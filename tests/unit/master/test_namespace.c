/* Unit tests for the master's namespace operations (master/namespace.c,
 * ns_path.c, ns_index.c, ns_trash.c). Checkpoints and determinism are in
 * test_ns_checkpoint.c. */
#include "ns_test_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>

/* ---- paths ---------------------------------------------------------------- */

static void path_validation_table(void **state) {
  (void)state;
  char name255[257], name256[258];
  name255[0] = name256[0] = '/';
  memset(name255 + 1, 'n', 255);
  memset(name256 + 1, 'n', 256);
  name255[256] = name256[257] = '\0';

  /* A 4096-byte path of 128 components "/xxx...x" (32 bytes each), and one
   * byte more. */
  char *p4096 = malloc(4098);
  for (int i = 0; i < 128; i++) {
    p4096[i * 32] = '/';
    memset(p4096 + i * 32 + 1, 'x', 31);
  }
  p4096[4096] = '\0';
  char *p4097 = malloc(4099);
  memcpy(p4097, p4096, 4096);
  p4097[4096] = 'y';
  p4097[4097] = '\0';

  static const struct {
    const char *path;
    size_t len; /* 0: strlen */
    int rc;
  } table[] = {
      {"/", 0, 0},
      {"/a", 0, 0},
      {"/a/b/c", 0, 0},
      {"/a/", 0, 0},           /* trailing slash: a directory */
      {"/a/b/", 0, 0},
      {"/.a", 0, 0},
      {"/...", 0, 0},
      {"/a..b/.c./x y/\xc3\xa9", 0, 0},
      {"", 0, CAIRN_EBADPATH},
      {"a", 0, CAIRN_EBADPATH},
      {"a/b", 0, CAIRN_EBADPATH},
      {"//", 0, CAIRN_EBADPATH},
      {"//a", 0, CAIRN_EBADPATH},
      {"/a//b", 0, CAIRN_EBADPATH},
      {"/a//", 0, CAIRN_EBADPATH},
      {"/.", 0, CAIRN_EBADPATH},
      {"/..", 0, CAIRN_EBADPATH},
      {"/a/./b", 0, CAIRN_EBADPATH},
      {"/a/../b", 0, CAIRN_EBADPATH},
      {"/a/..", 0, CAIRN_EBADPATH},
      {"/a/../", 0, CAIRN_EBADPATH},
      {"/a\0b", 4, CAIRN_EBADPATH},  /* embedded NUL, as from a protobuf string */
      {"/ab\0", 4, CAIRN_EBADPATH},
      {"/\0", 2, CAIRN_EBADPATH},
  };
  for (size_t i = 0; i < CMN_ARRAY_LEN(table); i++) {
    size_t len = table[i].len ? table[i].len : strlen(table[i].path);
    int rc = mst_ns_path_check(table[i].path, len);
    if (rc != table[i].rc) fail_msg("path #%zu \"%s\": got %d want %d", i, table[i].path, rc, table[i].rc);
  }
  assert_int_equal(mst_ns_path_check(NULL, 0), CAIRN_EBADPATH);
  assert_int_equal(mst_ns_path_check(P(name255)), 0);
  assert_int_equal(mst_ns_path_check(P(name256)), CAIRN_ENAMETOOLONG);
  assert_int_equal(mst_ns_path_check(p4096, 4096), 0);
  assert_int_equal(mst_ns_path_check(p4097, 4097), CAIRN_ENAMETOOLONG);

  /* Every path operation applies the same rules. */
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_mkdir(ns, "/a\0b", 4, false, 16, 1, NULL), CAIRN_EBADPATH);
  assert_int_equal(mst_ns_create(ns, P(name256), 0, 0, 16, 1, NULL), CAIRN_ENAMETOOLONG);
  assert_int_equal(mst_ns_create(ns, P(name255), 0, 0, 16, 1, NULL), 1);
  assert_int_equal(mst_ns_stat(ns, P("/x/../y"), &info), CAIRN_EBADPATH);
  assert_int_equal(mst_ns_delete(ns, P(""), false, 1, NULL), CAIRN_EBADPATH);
  assert_int_equal(mst_ns_rename(ns, P("/a"), P("b"), false, 1, NULL), CAIRN_EBADPATH);
  bool more;
  assert_int_equal(mst_ns_list(ns, P("//"), NULL, 0, &info, 1, &more), CAIRN_EBADPATH);
  assert_int_equal(mst_ns_set_goal(ns, p4097, 4097, 2, NULL), CAIRN_ENAMETOOLONG);
  mst_ns_free(ns);
  free(p4096);
  free(p4097);
}

/* ---- mkdir ---------------------------------------------------------------- */

static void mkdir_success_and_errors(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_mkdir(ns, P("/a"), false, 16, 100, &info), 1);
  assert_int_equal(info.id, 16);
  assert_int_equal(info.type, MST_NS_DIR);
  assert_int_equal(info.parent_id, MST_NS_ROOT_ID);
  assert_int_equal(info.mtime_ms, 100);
  assert_int_equal(info.goal, MST_NS_DEFAULT_GOAL);
  assert_memory_equal(info.name, "a", 1);
  assert_int_equal(info.name_len, 1);
  assert_false(info.trashed);
  assert_int_equal(mst_ns_stat(ns, P("/"), &info), 0);
  assert_int_equal(info.mtime_ms, 100); /* the parent's mtime follows its entries */
  assert_int_equal(info.entries, 2);    /* a and .trash */

  uint64_t digest = mst_ns_digest(ns);
  assert_int_equal(mst_ns_mkdir(ns, P("/a"), false, 17, 101, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_mkdir(ns, P("/"), false, 17, 101, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_mkdir(ns, P("/x/y"), false, 17, 101, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_mkdir(ns, P("/.trash"), true, 17, 101, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_mkdir(ns, P("/.trash/x"), false, 17, 101, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_mkdir(ns, P("/b"), false, 16, 101, NULL), CAIRN_EINVAL); /* id used */
  assert_int_equal(mst_ns_mkdir(ns, P("/b"), false, 3, 101, NULL), CAIRN_EINVAL);  /* reserved */
  assert_int_equal(mst_ns_mkdir(ns, P("/b"), false, 17, -1, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_mkdir(ns, P("/b"), false, 17, MST_NS_MAX_MS + 1, NULL), CAIRN_EINVAL);
  /* parents: the whole chain needs free ids; one in use refuses it all. */
  assert_int_equal(mst_ns_mkdir(ns, P("/p/q/r"), true, 15, 101, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_mkdir(ns, P("/p/q/r"), true, UINT64_MAX - 1, 101, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_digest(ns), digest);
  assert_int_equal(mst_ns_verify(ns), 0);

  /* mkdir -p: existing directory is fine, missing ones get ids top-down. */
  assert_int_equal(mst_ns_mkdir(ns, P("/a"), true, 17, 102, &info), 0);
  assert_int_equal(info.id, 16);
  assert_int_equal(mst_ns_mkdir(ns, P("/"), true, 17, 102, &info), 0);
  assert_int_equal(info.id, MST_NS_ROOT_ID);
  assert_int_equal(mst_ns_mkdir(ns, P("/a/b/c/d/"), true, 20, 103, &info), 3);
  assert_int_equal(info.id, 22);
  assert_int_equal(id_of(ns, "/a/b"), 20);
  assert_int_equal(id_of(ns, "/a/b/c"), 21);
  assert_int_equal(id_of(ns, "/a/b/c/d/"), 22);

  /* A file in the way. */
  assert_int_equal(mst_ns_create(ns, P("/a/f"), 0, 0, 30, 104, NULL), 1);
  assert_int_equal(mst_ns_mkdir(ns, P("/a/f"), false, 31, 105, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_mkdir(ns, P("/a/f"), true, 31, 105, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_mkdir(ns, P("/a/f/g"), false, 31, 105, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_mkdir(ns, P("/a/f/g/h"), true, 31, 105, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

/* ---- create --------------------------------------------------------------- */

static void create_success_and_errors(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_mkdir(ns, P("/d"), false, 16, 10, NULL), 1);
  assert_int_equal(mst_ns_create(ns, P("/d/f"), MST_NS_EXCLUSIVE, 0, 17, 11, &info), 1);
  assert_int_equal(info.id, 17);
  assert_int_equal(info.type, MST_NS_FILE);
  assert_int_equal(info.size, 0);
  assert_int_equal(info.chunk_count, 0);
  assert_int_equal(info.goal, MST_NS_DEFAULT_GOAL);
  assert_int_equal(info.mtime_ms, 11);

  uint64_t digest = mst_ns_digest(ns);
  assert_int_equal(mst_ns_create(ns, P("/d/f"), MST_NS_EXCLUSIVE, 0, 18, 12, NULL), CAIRN_EEXIST);
  /* Not exclusive: the existing file, unchanged, no id used. */
  assert_int_equal(mst_ns_create(ns, P("/d/f"), 0, 5, 18, 12, &info), 0);
  assert_int_equal(info.id, 17);
  assert_int_equal(info.goal, MST_NS_DEFAULT_GOAL);
  assert_int_equal(info.mtime_ms, 11);
  assert_int_equal(mst_ns_create(ns, P("/d"), 0, 0, 18, 12, NULL), CAIRN_EISDIR);
  assert_int_equal(mst_ns_create(ns, P("/"), 0, 0, 18, 12, NULL), CAIRN_EISDIR);
  assert_int_equal(mst_ns_create(ns, P("/d/g/"), 0, 0, 18, 12, NULL), CAIRN_EISDIR);
  assert_int_equal(mst_ns_create(ns, P("/x/f"), 0, 0, 18, 12, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_create(ns, P("/d/f/g"), 0, 0, 18, 12, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_create(ns, P("/d/f/g"), MST_NS_PARENTS, 0, 18, 12, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_create(ns, P("/.trash/f"), 0, 0, 18, 12, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_create(ns, P("/.trash"), 0, 0, 18, 12, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_create(ns, P("/d/g"), 0, MST_NS_GOAL_MAX + 1, 18, 12, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_create(ns, P("/d/g"), 0x80, 0, 18, 12, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_create(ns, P("/d/g"), 0, 0, 17, 12, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_create(ns, P("/d/g"), 0, 0, 0, 12, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_create(ns, P("/d/g"), 0, 0, 18, -5, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_digest(ns), digest);

  /* Explicit goal; parents created with ids before the file's. */
  assert_int_equal(mst_ns_create(ns, P("/d/g"), 0, 5, 18, 13, &info), 1);
  assert_int_equal(info.goal, 5);
  assert_int_equal(mst_ns_create(ns, P("/p/q/file"), MST_NS_PARENTS | MST_NS_EXCLUSIVE, 2, 19, 14,
                                 &info), 3);
  assert_int_equal(info.id, 21);
  assert_int_equal(info.goal, 2);
  assert_int_equal(id_of(ns, "/p"), 19);
  assert_int_equal(id_of(ns, "/p/q"), 20);
  assert_int_equal(mst_ns_stat(ns, P("/p/q/file/"), &info), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

/* ---- stat, ids, paths ----------------------------------------------------- */

static void stat_by_path_and_id(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_stat(ns, P("/"), &info), 0);
  assert_int_equal(info.id, MST_NS_ROOT_ID);
  assert_int_equal(info.parent_id, 0);
  assert_int_equal(info.name_len, 0);
  assert_int_equal(mst_ns_create(ns, P("/a/b/c"), MST_NS_PARENTS, 0, 100, 5, NULL), 3);
  assert_int_equal(mst_ns_stat_id(ns, 102, &info), 0);
  assert_int_equal(info.parent_id, 101);
  assert_memory_equal(info.name, "c", 1);
  assert_path_of(ns, 102, "/a/b/c");
  assert_path_of(ns, MST_NS_ROOT_ID, "/");
  assert_path_of(ns, MST_NS_TRASH_ID, "/.trash");
  cmn_buf b = {0};
  assert_int_equal(mst_ns_path(ns, 999, &b), CAIRN_ENOENT);
  assert_int_equal(mst_ns_stat_id(ns, 999, &info), CAIRN_ENOENT);
  assert_int_equal(mst_ns_stat_id(ns, 0, &info), CAIRN_ENOENT);
  assert_enoent(ns, "/a/x");
  assert_int_equal(mst_ns_stat(ns, P("/a/b/c/d"), &info), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_stat(ns, P("/a/b/c/"), &info), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_stat(ns, P("/a/b/"), &info), 0);
  assert_int_equal(mst_ns_stat(ns, P("/.trash"), &info), 0);
  assert_int_equal(info.id, MST_NS_TRASH_ID);
  mst_ns_free(ns);
}

/* ---- list ----------------------------------------------------------------- */

static void list_sorted_and_errors(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info e[8];
  bool more = true;
  static const char *names[] = {"b", "a", "ab", "B", "-x", "zz", "a b"};
  uint64_t id = 16;
  for (size_t i = 0; i < CMN_ARRAY_LEN(names); i++) {
    char path[16];
    snprintf(path, sizeof path, "/%s", names[i]);
    assert_int_equal(mst_ns_create(ns, P(path), 0, 0, id++, 1, NULL), 1);
  }
  /* "/" does not show .trash; order is by bytes. */
  assert_int_equal(mst_ns_list(ns, P("/"), NULL, 0, e, 8, &more), 7);
  assert_false(more);
  static const char *sorted[] = {"-x", "B", "a", "a b", "ab", "b", "zz"};
  for (int i = 0; i < 7; i++) {
    assert_int_equal(e[i].name_len, strlen(sorted[i]));
    assert_memory_equal(e[i].name, sorted[i], e[i].name_len);
    assert_int_equal(e[i].type, MST_NS_FILE);
  }
  /* From a name that is not there, and from the last one. */
  assert_int_equal(mst_ns_list(ns, P("/"), P("a a"), e, 2, &more), 2);
  assert_memory_equal(e[0].name, "a b", 3);
  assert_memory_equal(e[1].name, "ab", 2);
  assert_true(more);
  assert_int_equal(mst_ns_list(ns, P("/"), P("zz"), e, 2, &more), 0);
  assert_false(more);
  /* The limit stops before .trash would be reached: "-x" then "B". */
  assert_int_equal(mst_ns_list(ns, P("/"), NULL, 0, e, 2, &more), 2);
  assert_memory_equal(e[1].name, "B", 1);
  assert_true(more);

  assert_int_equal(mst_ns_list(ns, P("/a"), NULL, 0, e, 8, &more), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_list(ns, P("/nope"), NULL, 0, e, 8, &more), CAIRN_ENOENT);
  assert_int_equal(mst_ns_list(ns, P("/"), NULL, 0, e, 0, &more), CAIRN_EINVAL);
  /* /.trash is listed through its own path, read-only. */
  assert_int_equal(mst_ns_list(ns, P("/.trash"), NULL, 0, e, 8, &more), 0);
  assert_int_equal(mst_ns_delete(ns, P("/b"), false, 50, NULL), 0);
  assert_int_equal(mst_ns_list(ns, P("/.trash"), NULL, 0, e, 8, &more), 1);
  assert_true(e[0].trashed);
  assert_int_equal(e[0].trashed_ms, 50);
  /* An empty directory. */
  assert_int_equal(mst_ns_mkdir(ns, P("/empty"), false, id++, 2, NULL), 1);
  assert_int_equal(mst_ns_list(ns, P("/empty/"), NULL, 0, e, 8, &more), 0);
  assert_false(more);
  mst_ns_free(ns);
}

static void list_paging_2500(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  assert_int_equal(mst_ns_mkdir(ns, P("/d"), false, 16, 1, NULL), 1);
  /* Insert in a scrambled order so sorting is really tested. */
  for (uint64_t i = 0; i < 2500; i++) {
    uint64_t k = (i * 7919) % 2500;
    char path[32];
    snprintf(path, sizeof path, "/d/f%05" PRIu64, k);
    assert_int_equal(mst_ns_create(ns, P(path), MST_NS_EXCLUSIVE, 0, 100 + i, 2, NULL), 1);
  }
  mst_ns_info *page = calloc(1000, sizeof *page);
  char last[32] = "";
  size_t last_len = 0, seen = 0;
  int pages = 0;
  bool more = true;
  while (more) {
    int n = mst_ns_list(ns, P("/d"), last, last_len, page, 1000, &more);
    assert_true(n >= 0);
    pages++;
    for (int i = 0; i < n; i++) {
      char want[32];
      snprintf(want, sizeof want, "f%05zu", seen);
      assert_int_equal(page[i].name_len, strlen(want));
      assert_memory_equal(page[i].name, want, page[i].name_len);
      seen++;
    }
    assert_int_equal(n, seen <= 2000 ? 1000 : 500);
    memcpy(last, page[n - 1].name, page[n - 1].name_len);
    last_len = page[n - 1].name_len;
  }
  assert_int_equal(seen, 2500);
  assert_int_equal(pages, 3);
  free(page);
  mst_ns_free(ns);
}

/* ---- rename --------------------------------------------------------------- */

static void rename_files(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  uint64_t replaced = 99;
  assert_int_equal(mst_ns_create(ns, P("/d/f"), MST_NS_PARENTS, 0, 16, 1, NULL), 2);
  assert_int_equal(mst_ns_create(ns, P("/d/g"), 0, 0, 18, 1, NULL), 1);
  assert_int_equal(mst_ns_mkdir(ns, P("/e"), false, 19, 1, NULL), 1);

  assert_int_equal(mst_ns_rename(ns, P("/d/f"), P("/e/f2"), false, 5, &replaced), 0);
  assert_int_equal(replaced, 0);
  assert_enoent(ns, "/d/f");
  assert_int_equal(id_of(ns, "/e/f2"), 17);
  assert_int_equal(mst_ns_stat(ns, P("/d"), &info), 0);
  assert_int_equal(info.mtime_ms, 5);
  assert_int_equal(info.entries, 1);
  assert_int_equal(mst_ns_stat(ns, P("/e"), &info), 0);
  assert_int_equal(info.mtime_ms, 5);
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0);
  assert_int_equal(info.mtime_ms, 1); /* a rename does not touch the file's mtime */

  uint64_t digest = mst_ns_digest(ns);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/e/f2"), false, 6, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/e"), true, 6, NULL), CAIRN_EISDIR);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/"), true, 6, NULL), CAIRN_EISDIR);
  assert_int_equal(mst_ns_rename(ns, P("/d/nope"), P("/e/x"), false, 6, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/nope/x"), false, 6, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/e/f2/x"), false, 6, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_rename(ns, P("/d/g/"), P("/e/x"), false, 6, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/e/x/"), false, 6, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/.trash/x"), false, 6, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_rename(ns, P("/.trash"), P("/t"), false, 6, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_rename(ns, P("/"), P("/r"), false, 6, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/e/x"), false, -1, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_digest(ns), digest);

  /* To itself: nothing happens. */
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/d/g"), false, 7, NULL), 0);
  assert_int_equal(mst_ns_digest(ns), digest);

  /* Overwrite: the old target goes to the trash, its id is reported. */
  assert_int_equal(mst_ns_rename(ns, P("/d/g"), P("/e/f2"), true, 8, &replaced), 0);
  assert_int_equal(replaced, 17);
  assert_int_equal(id_of(ns, "/e/f2"), 18);
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0);
  assert_true(info.trashed);
  assert_int_equal(info.trashed_ms, 8);
  const char *origin;
  size_t origin_len;
  int64_t ms;
  assert_int_equal(mst_ns_trash_origin(ns, 17, &origin, &origin_len, &ms), 0);
  assert_int_equal(origin_len, 5);
  assert_memory_equal(origin, "/e/f2", 5);
  assert_int_equal(ms, 8);

  /* Renames that need a bigger node (long names) keep everything linked. */
  char longname[200];
  memset(longname, 'L', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  char target[220];
  snprintf(target, sizeof target, "/e/%s", longname);
  assert_int_equal(mst_ns_rename(ns, P("/e/f2"), P(target), false, 9, NULL), 0);
  assert_int_equal(id_of(ns, target), 18);
  assert_path_of(ns, 18, target);
  assert_int_equal(mst_ns_rename(ns, P(target), P("/e/s"), false, 10, NULL), 0);
  assert_path_of(ns, 18, "/e/s");
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

static void rename_directory_moves_subtree(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_create(ns, P("/a/b/c/file"), MST_NS_PARENTS, 0, 16, 1, NULL), 4);
  for (uint64_t i = 0; i < 50; i++) { /* enough children to make the tree deep */
    char p[32];
    snprintf(p, sizeof p, "/a/k%02" PRIu64, i);
    assert_int_equal(mst_ns_create(ns, P(p), 0, 0, 100 + i, 1, NULL), 1);
  }
  assert_int_equal(mst_ns_mkdir(ns, P("/x"), false, 20, 1, NULL), 1);
  assert_int_equal(mst_ns_chunk_append(ns, 19, 0, 555), 0);

  assert_int_equal(mst_ns_rename(ns, P("/a"), P("/x/y"), false, 2, NULL), 0);
  assert_enoent(ns, "/a");
  assert_enoent(ns, "/a/b/c/file");
  assert_int_equal(id_of(ns, "/x/y/b/c/file"), 19);
  assert_int_equal(id_of(ns, "/x/y/k49"), 149);
  assert_path_of(ns, 19, "/x/y/b/c/file");
  uint64_t h = 0;
  assert_int_equal(mst_ns_chunk_get(ns, 19, 0, &h), 0);
  assert_int_equal(h, 555);
  assert_int_equal(mst_ns_stat(ns, P("/x/y"), &info), 0);
  assert_int_equal(info.id, 16);
  assert_int_equal(info.entries, 51);

  /* A much longer name reallocates the directory node: the children must
   * follow (their parent pointers are fixed up). */
  char deep[300];
  char name[201];
  memset(name, 'D', 200);
  name[200] = '\0';
  snprintf(deep, sizeof deep, "/%s", name);
  assert_int_equal(mst_ns_rename(ns, P("/x/y"), P(deep), false, 3, NULL), 0);
  snprintf(deep, sizeof deep, "/%s/b/c/file", name);
  assert_int_equal(id_of(ns, deep), 19);
  assert_path_of(ns, 19, deep);
  snprintf(deep, sizeof deep, "/%s/k07", name);
  assert_path_of(ns, 107, deep);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

static void rename_into_own_subtree_refused(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  assert_int_equal(mst_ns_mkdir(ns, P("/a/b/c"), true, 16, 1, NULL), 3);
  assert_int_equal(mst_ns_create(ns, P("/f"), 0, 0, 30, 1, NULL), 1);
  assert_int_equal(mst_ns_mkdir(ns, P("/z"), false, 31, 1, NULL), 1);
  uint64_t digest = mst_ns_digest(ns);
  assert_int_equal(mst_ns_rename(ns, P("/a"), P("/a/x"), false, 2, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_rename(ns, P("/a"), P("/a/b/c/x"), false, 2, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_rename(ns, P("/a/b"), P("/a/b/c/x"), true, 2, NULL), CAIRN_EINVAL);
  /* A directory never replaces anything, overwrite or not. */
  assert_int_equal(mst_ns_rename(ns, P("/a"), P("/z"), true, 2, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_rename(ns, P("/a"), P("/f"), true, 2, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_rename(ns, P("/a/b"), P("/"), false, 2, NULL), CAIRN_EEXIST);
  /* Onto its own ancestor's name. */
  assert_int_equal(mst_ns_rename(ns, P("/a/b"), P("/a"), false, 2, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_digest(ns), digest);
  /* Moving up is fine. */
  assert_int_equal(mst_ns_rename(ns, P("/a/b/c"), P("/c"), false, 3, NULL), 0);
  assert_int_equal(id_of(ns, "/c"), 18);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

/* ---- delete, trash -------------------------------------------------------- */

static void delete_to_trash_and_errors(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  mst_ns_counts counts;
  assert_int_equal(mst_ns_create(ns, P("/d/f"), MST_NS_PARENTS, 0, 16, 1, NULL), 2);
  assert_int_equal(mst_ns_create(ns, P("/g"), 0, 0, 40, 1, NULL), 1);

  uint64_t digest = mst_ns_digest(ns);
  assert_int_equal(mst_ns_delete(ns, P("/d"), false, 5, NULL), CAIRN_ENOTEMPTY);
  assert_int_equal(mst_ns_delete(ns, P("/"), true, 5, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_delete(ns, P("/.trash"), true, 5, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_delete(ns, P("/nope"), false, 5, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_delete(ns, P("/g/"), false, 5, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_delete(ns, P("/g/x"), false, 5, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_delete(ns, P("/g"), false, -2, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_digest(ns), digest);

  assert_int_equal(mst_ns_delete(ns, P("/g"), false, 1234, &info), 0);
  assert_int_equal(info.id, 40);
  assert_true(info.trashed);
  assert_int_equal(info.trashed_ms, 1234);
  assert_int_equal(info.parent_id, MST_NS_TRASH_ID);
  assert_enoent(ns, "/g");
  assert_path_of(ns, 40, "/.trash/0000000001234-40-g");
  assert_int_equal(id_of(ns, "/.trash/0000000001234-40-g"), 40);

  assert_int_equal(mst_ns_delete(ns, P("/d"), true, 1300, NULL), 0);
  assert_enoent(ns, "/d/f");
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0); /* still reachable by id */
  assert_true(info.trashed);
  assert_int_equal(info.trashed_ms, 1300);
  assert_path_of(ns, 17, "/.trash/0000000001300-16-d/f");
  /* Nothing inside the trash may be changed by path. */
  assert_int_equal(mst_ns_delete(ns, P("/.trash/0000000001300-16-d/f"), false, 5, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_set_goal(ns, P("/.trash/0000000001300-16-d/f"), 2, NULL), CAIRN_EPERM);
  mst_ns_get_counts(ns, &counts);
  assert_int_equal(counts.files, 2);
  assert_int_equal(counts.dirs, 1);
  assert_int_equal(counts.total, 3);
  assert_int_equal(counts.trash_entries, 2);

  /* A long name is cut in the entry name, but kept whole in the origin. */
  char name[256], path[300], want[300];
  memset(name, 'q', 255);
  name[255] = '\0';
  snprintf(path, sizeof path, "/%s", name);
  assert_int_equal(mst_ns_create(ns, P(path), 0, 0, 50, 1, NULL), 1);
  assert_int_equal(mst_ns_delete(ns, P(path), false, 1400, &info), 0);
  assert_int_equal(info.name_len, MST_NS_NAME_MAX);
  snprintf(want, sizeof want, "/.trash/0000000001400-50-%.*s", MST_NS_NAME_MAX - 17, name);
  assert_path_of(ns, 50, want);
  assert_int_equal(mst_ns_undelete(ns, P(want), NULL, 0, 1500, &info), 0);
  assert_int_equal(info.name_len, 255);
  assert_int_equal(id_of(ns, path), 50);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

static void trash_undelete_purge_round_trip(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_create(ns, P("/d/sub/f1"), MST_NS_PARENTS, 0, 16, 1, NULL), 3);
  assert_int_equal(mst_ns_create(ns, P("/d/f2"), 0, 0, 19, 1, NULL), 1);
  for (uint64_t i = 0; i < 5; i++) assert_int_equal(mst_ns_chunk_append(ns, 18, i, 1000 + i), 0);
  assert_int_equal(mst_ns_chunk_append(ns, 19, 0, 2000), 0);
  uint64_t live = mst_ns_digest(ns);

  /* Delete and restore to the origin: the same namespace but for mtimes. */
  assert_int_equal(mst_ns_delete(ns, P("/d"), true, 100, &info), 0);
  char *tp = path_of(ns, info.id);
  assert_string_equal(tp, "/.trash/0000000000100-16-d");
  assert_int_equal(mst_ns_undelete(ns, P(tp), NULL, 0, 200, &info), 0);
  free(tp);
  assert_int_equal(info.id, 16);
  assert_false(info.trashed);
  assert_int_equal(id_of(ns, "/d/sub/f1"), 18);
  assert_int_equal(mst_ns_set_mtime(ns, MST_NS_ROOT_ID, 1), 0);
  assert_int_equal(mst_ns_set_mtime(ns, MST_NS_TRASH_ID, 0), 0);
  assert_int_equal(mst_ns_digest(ns), live);

  /* Delete again; restore elsewhere; errors first. */
  assert_int_equal(mst_ns_delete(ns, P("/d"), true, 300, NULL), 0);
  const char *entry = "/.trash/0000000000300-16-d";
  assert_int_equal(mst_ns_create(ns, P("/d"), 0, 0, 30, 301, NULL), 1); /* origin occupied */
  uint64_t digest = mst_ns_digest(ns);
  assert_int_equal(mst_ns_undelete(ns, P(entry), NULL, 0, 302, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_undelete(ns, P(entry), P("/nope/d"), 302, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_undelete(ns, P(entry), P("/d/x"), 302, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_undelete(ns, P(entry), P("/.trash/x"), 302, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_undelete(ns, P(entry), P("/"), 302, NULL), CAIRN_EEXIST);
  assert_int_equal(mst_ns_undelete(ns, P(entry), P("bad"), 302, NULL), CAIRN_EBADPATH);
  assert_int_equal(mst_ns_undelete(ns, P("/.trash/0000000000300-99-d"), NULL, 0, 302, NULL),
                   CAIRN_ENOENT);
  assert_int_equal(mst_ns_undelete(ns, P("/.trash"), NULL, 0, 302, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_undelete(ns, P("/.trash/0000000000300-16-d/sub"), NULL, 0, 302, NULL),
                   CAIRN_EINVAL);
  assert_int_equal(mst_ns_undelete(ns, P("/d"), NULL, 0, 302, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_undelete(ns, P(entry), P("/r"), -1, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_digest(ns), digest);
  assert_int_equal(mst_ns_undelete(ns, P(entry), P("/restored"), 303, &info), 0);
  assert_int_equal(id_of(ns, "/restored/sub/f1"), 18);

  /* Purge: gone for good, with the handles of every file below. */
  assert_int_equal(mst_ns_delete(ns, P("/restored"), true, 400, NULL), 0);
  assert_int_equal(mst_ns_delete(ns, P("/d"), false, 500, NULL), 0);
  uint64_t ids[8];
  assert_int_equal(mst_ns_trash_expired(ns, 400, ids, 8), 0);
  assert_int_equal(mst_ns_trash_expired(ns, 401, ids, 8), 1);
  assert_int_equal(ids[0], 16);
  assert_int_equal(mst_ns_trash_expired(ns, 10000, ids, 8), 2);
  assert_int_equal(ids[0], 16);
  assert_int_equal(ids[1], 30);
  assert_int_equal(mst_ns_trash_expired(ns, 10000, ids, 1), 1);

  mst_ns_handles h = {0};
  assert_int_equal(mst_ns_purge(ns, 18, 600, &h), CAIRN_EINVAL); /* below an entry, not one */
  assert_int_equal(mst_ns_purge(ns, 999, 600, &h), CAIRN_ENOENT);
  assert_int_equal(mst_ns_purge(ns, 16, -1, &h), CAIRN_EINVAL);
  assert_int_equal(h.n, 0);
  assert_int_equal(mst_ns_purge(ns, 16, 600, &h), 4); /* d, sub, f1, f2 */
  assert_int_equal(h.n, 6);
  uint64_t sum = 0;
  for (size_t i = 0; i < h.n; i++) sum += h.v[i];
  assert_int_equal(sum, 1000 + 1001 + 1002 + 1003 + 1004 + 2000);
  mst_ns_handles_free(&h);
  for (uint64_t id = 16; id <= 19; id++) assert_int_equal(mst_ns_stat_id(ns, id, &info), CAIRN_ENOENT);
  assert_int_equal(mst_ns_trash_origin(ns, 16, NULL, NULL, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_trash_origin(ns, MST_NS_ROOT_ID, NULL, NULL, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_purge(ns, 30, 601, NULL), 1);
  mst_ns_counts c;
  mst_ns_get_counts(ns, &c);
  assert_int_equal(c.total, 0);
  assert_int_equal(c.trash_entries, 0);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

/* ---- goals, sizes, chunks -------------------------------------------------- */

static void set_goal_files_and_dirs(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_create(ns, P("/d/old"), MST_NS_PARENTS, 0, 16, 1, NULL), 2);
  assert_int_equal(mst_ns_set_goal(ns, P("/d/old"), 1, &info), 0);
  assert_int_equal(info.goal, 1);
  assert_int_equal(mst_ns_set_goal(ns, P("/d/"), 5, &info), 0);
  assert_int_equal(info.goal, 5);
  /* The directory's goal applies to what is created below it later. */
  assert_int_equal(mst_ns_create(ns, P("/d/new"), 0, 0, 20, 2, &info), 1);
  assert_int_equal(info.goal, 5);
  assert_int_equal(mst_ns_mkdir(ns, P("/d/sub"), false, 21, 2, &info), 1);
  assert_int_equal(info.goal, 5);
  assert_int_equal(mst_ns_create(ns, P("/d/sub/x"), 0, 7, 22, 2, &info), 1);
  assert_int_equal(info.goal, 7);
  assert_int_equal(mst_ns_stat(ns, P("/d/old"), &info), 0);
  assert_int_equal(info.goal, 1);

  assert_int_equal(mst_ns_set_goal(ns, P("/d/old"), 0, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_set_goal(ns, P("/d/old"), MST_NS_GOAL_MAX + 1, NULL), CAIRN_EINVAL);
  assert_int_equal(mst_ns_set_goal(ns, P("/d/nope"), 2, NULL), CAIRN_ENOENT);
  assert_int_equal(mst_ns_set_goal(ns, P("/d/old/"), 2, NULL), CAIRN_ENOTDIR);
  assert_int_equal(mst_ns_set_goal(ns, P("/.trash"), 2, NULL), CAIRN_EPERM);
  assert_int_equal(mst_ns_set_goal(ns, P("/"), MST_NS_GOAL_MAX, NULL), 0);
  mst_ns_free(ns);
}

static void size_and_mtime_updates(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  assert_int_equal(mst_ns_create(ns, P("/d/f"), MST_NS_PARENTS, 0, 16, 1, NULL), 2);
  assert_int_equal(mst_ns_grow_size(ns, 17, 1000, 5), 0);
  assert_int_equal(mst_ns_grow_size(ns, 17, 10, 6), 0); /* never shrinks */
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0);
  assert_int_equal(info.size, 1000);
  assert_int_equal(info.mtime_ms, 6);
  assert_int_equal(mst_ns_set_size(ns, 17, 3, 7), 0); /* exact */
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0);
  assert_int_equal(info.size, 3);
  assert_int_equal(info.mtime_ms, 7);
  assert_int_equal(mst_ns_set_mtime(ns, 17, 42), 0);
  assert_int_equal(mst_ns_set_mtime(ns, 16, 43), 0); /* directories too */
  assert_int_equal(mst_ns_stat(ns, P("/d"), &info), 0);
  assert_int_equal(info.mtime_ms, 43);
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0);
  assert_int_equal(info.mtime_ms, 42);

  assert_int_equal(mst_ns_set_size(ns, 16, 1, 8), CAIRN_EISDIR);
  assert_int_equal(mst_ns_grow_size(ns, 16, 1, 8), CAIRN_EISDIR);
  assert_int_equal(mst_ns_set_size(ns, 99, 1, 8), CAIRN_ENOENT);
  assert_int_equal(mst_ns_grow_size(ns, 99, 1, 8), CAIRN_ENOENT);
  assert_int_equal(mst_ns_set_mtime(ns, 99, 8), CAIRN_ENOENT);
  assert_int_equal(mst_ns_set_size(ns, 17, 1, -8), CAIRN_EINVAL);
  assert_int_equal(mst_ns_set_mtime(ns, 17, MST_NS_MAX_MS + 1), CAIRN_EINVAL);
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0);
  assert_int_equal(info.size, 3);
  mst_ns_free(ns);
}

static void chunk_list(void **state) {
  (void)state;
  mst_ns *ns = new_ns();
  mst_ns_info info;
  uint64_t h = 0, out[300];
  assert_int_equal(mst_ns_create(ns, P("/d/f"), MST_NS_PARENTS, 0, 16, 1, NULL), 2);
  assert_int_equal(mst_ns_chunk_get(ns, 17, 0, &h), CAIRN_ENOENT);
  assert_int_equal(mst_ns_chunks(ns, 17, 0, 10, out), 0);
  assert_int_equal(mst_ns_chunk_append(ns, 17, 1, 5), CAIRN_EINVAL); /* not the next index */
  assert_int_equal(mst_ns_chunk_append(ns, 17, 0, 0), CAIRN_EINVAL); /* handle 0 */
  assert_int_equal(mst_ns_chunk_append(ns, 16, 0, 5), CAIRN_EISDIR);
  assert_int_equal(mst_ns_chunk_append(ns, 99, 0, 5), CAIRN_ENOENT);
  /* Through the inline slot, the first array and many regrowths. */
  for (uint64_t i = 0; i < 257; i++) {
    assert_int_equal(mst_ns_chunk_append(ns, 17, i, 10000 + i), 0);
    assert_int_equal(mst_ns_chunk_get(ns, 17, i, &h), 0);
    assert_int_equal(h, 10000 + i);
    if (i == 0) assert_int_equal(mst_ns_chunk_get(ns, 17, 0, &h), 0);
  }
  assert_int_equal(mst_ns_stat_id(ns, 17, &info), 0);
  assert_int_equal(info.chunk_count, 257);
  for (uint64_t i = 0; i < 257; i++) {
    assert_int_equal(mst_ns_chunk_get(ns, 17, i, &h), 0);
    assert_int_equal(h, 10000 + i);
  }
  assert_int_equal(mst_ns_chunk_get(ns, 17, 257, &h), CAIRN_ENOENT);
  assert_int_equal(mst_ns_chunk_replace(ns, 17, 100, 77), 0);
  assert_int_equal(mst_ns_chunk_get(ns, 17, 100, &h), 0);
  assert_int_equal(h, 77);
  assert_int_equal(mst_ns_chunk_replace(ns, 17, 257, 77), CAIRN_ENOENT);
  assert_int_equal(mst_ns_chunk_replace(ns, 17, 0, 0), CAIRN_EINVAL);
  assert_int_equal(mst_ns_chunk_replace(ns, 16, 0, 1), CAIRN_EISDIR);
  assert_int_equal(mst_ns_chunks(ns, 17, 250, 300, out), 7);
  assert_int_equal(out[0], 10250);
  assert_int_equal(out[6], 10256);
  assert_int_equal(mst_ns_chunks(ns, 17, 99, 2, out), 2);
  assert_int_equal(out[1], 77);
  assert_int_equal(mst_ns_chunks(ns, 17, 257, 2, out), 0);
  assert_int_equal(mst_ns_chunk_get(ns, 16, 0, &h), CAIRN_EISDIR);

  /* A file with exactly one chunk keeps it inline; replace works there. */
  assert_int_equal(mst_ns_create(ns, P("/d/one"), 0, 0, 18, 1, NULL), 1);
  assert_int_equal(mst_ns_chunk_append(ns, 18, 0, 9), 0);
  assert_int_equal(mst_ns_chunk_replace(ns, 18, 0, 8), 0);
  assert_int_equal(mst_ns_chunks(ns, 18, 0, 5, out), 1);
  assert_int_equal(out[0], 8);
  assert_int_equal(mst_ns_verify(ns), 0);
  mst_ns_free(ns);
}

/* ---- scale ------------------------------------------------------------------ */

static double secs_since(const struct timespec *t0) {
  struct timespec t1;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* 200,000 files in one directory: creation must stay O(log n) per file.
 * The time is printed, not asserted (sanitizer builds are much slower). */
static void large_directory(void **state) {
  (void)state;
  enum { N = 200000 };
  mst_ns *ns = new_ns();
  struct timespec t0;
  assert_int_equal(mst_ns_mkdir(ns, P("/big"), false, 16, 1, NULL), 1);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char path[64];
  for (uint64_t i = 0; i < N; i++) {
    /* Hash-like names: arrival order unrelated to sort order. */
    snprintf(path, sizeof path, "/big/%016" PRIx64, (uint64_t)(i * UINT64_C(0x9E3779B97F4A7C15)));
    int rc = mst_ns_create(ns, P(path), MST_NS_EXCLUSIVE, 0, 100 + i, 2, NULL);
    if (rc != 1) fail_msg("create %" PRIu64 ": %d", i, rc);
  }
  double create_s = secs_since(&t0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (uint64_t i = 0; i < N; i += 7) {
    snprintf(path, sizeof path, "/big/%016" PRIx64, (uint64_t)(i * UINT64_C(0x9E3779B97F4A7C15)));
    assert_int_equal(id_of(ns, path), 100 + i);
  }
  double stat_s = secs_since(&t0);
  /* A page from the middle. */
  mst_ns_info page[100];
  bool more;
  assert_int_equal(mst_ns_list(ns, P("/big"), P("8"), page, 100, &more), 100);
  assert_true(more);
  assert_true(page[0].name[0] >= '8');
  for (int i = 1; i < 100; i++)
    assert_true(memcmp(page[i - 1].name, page[i].name, 16) < 0);
  mst_ns_info info;
  assert_int_equal(mst_ns_stat(ns, P("/big"), &info), 0);
  assert_int_equal(info.entries, N);
  assert_int_equal(mst_ns_verify(ns), 0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  mst_ns_free(ns);
  print_message("200000 creates in one directory: %.3f s (%.0f/s); %d stats %.3f s; free %.3f s\n",
                create_s, N / create_s, N / 7 + 1, stat_s, secs_since(&t0));
}

CAIRN_TEST_MAIN(cmocka_unit_test(path_validation_table),
                cmocka_unit_test(mkdir_success_and_errors),
                cmocka_unit_test(create_success_and_errors),
                cmocka_unit_test(stat_by_path_and_id),
                cmocka_unit_test(list_sorted_and_errors),
                cmocka_unit_test(list_paging_2500),
                cmocka_unit_test(rename_files),
                cmocka_unit_test(rename_directory_moves_subtree),
                cmocka_unit_test(rename_into_own_subtree_refused),
                cmocka_unit_test(delete_to_trash_and_errors),
                cmocka_unit_test(trash_undelete_purge_round_trip),
                cmocka_unit_test(set_goal_files_and_dirs),
                cmocka_unit_test(size_and_mtime_updates),
                cmocka_unit_test(chunk_list),
                cmocka_unit_test(large_directory))
