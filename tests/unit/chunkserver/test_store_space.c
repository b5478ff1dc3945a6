/* Space, failures, server ids, import and concurrency tests for the replica
 * store (chunkserver/store*.c). */
#include "store_test_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

typedef struct t_events {
  int dir_state;
  unsigned dir;
  cs_store_dir_state state;
} t_events;

static void t_on_event(void *arg, const cs_store_event *ev) {
  t_events *e = arg;
  if (ev->kind != CS_STORE_EV_DIR_STATE) return;
  e->dir_state++;
  e->dir = ev->dir;
  e->state = ev->state;
}

static unsigned dir_of(cs_store *s, uint64_t h) {
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, h, &r), 0);
  return r.dir;
}

/* ---- out of space, failed disks ---- */

static void enospc_undoes_prepare_and_marks_read_only(void **state) {
  (void)state;
  char *dirs[2] = {t_tmpdir(), t_tmpdir()};
  t_fault f = {0};
  t_events ev = {0};
  cs_store_opts o = t_opts(&f);
  o.notify = t_on_event;
  o.notify_arg = &ev;
  cs_store *s = t_open_n(dirs, 2, &o);
  unsigned char *data = cmn_malloc(300000);
  t_fill(data, 300000, 1, 0);
  assert_int_equal(cs_store_create(s, 1, 1), 0);
  t_write(s, 1, 1, 1, 0, data, 100000);
  unsigned d = dir_of(s, 1);
  char *path = t_chunk_path(dirs[d], 1, 1);
  size_t n;
  unsigned char *before = t_slurp(path, &n);
  /* The disk fills while the bytes are written, the side file is written,
   * or the intent is written: each time nothing remains of the attempt. */
  const char *steps[] = {"prepare.data", "prepare.side", "prepare.intent"};
  const uint64_t offs[] = {100000, 50000, 100000};
  for (size_t i = 0; i < 3; i++) {
    f.armed = 1;
    f.err_step = steps[i];
    f.err_code = CAIRN_ENOSPC;
    assert_int_equal(cs_store_prepare(s, 1, 1, 2, offs[i], data, 200000,
                                      cmn_crc32c(0, data, 200000), 0), CAIRN_ENOSPC);
    f.armed = 0;
    assert_int_equal(t_pending(s).n, 0);
    t_assert_file_equals(path, before, n);
    char *side = t_side_path(dirs[d], 1, 1, 2);
    assert_false(t_exists(side));
    free(side);
  }
  cs_store_usage u;
  assert_int_equal(cs_store_stats(s, &u), 0);
  assert_int_equal(u.ndirs, 2);
  assert_int_equal(u.dirs[d].state, CS_STORE_DIR_READ_ONLY);
  assert_int_equal(u.dirs[1 - d].state, CS_STORE_DIR_OK);
  assert_int_equal(ev.dir_state, 1);
  assert_int_equal(ev.dir, d);
  assert_int_equal(ev.state, CS_STORE_DIR_READ_ONLY);
  /* New replicas go to the other dir only. */
  for (uint64_t h = 2; h < 6; h++) {
    assert_int_equal(cs_store_create(s, h, 1), 0);
    assert_int_equal(dir_of(s, h), 1 - d);
  }
  /* The read-only dir still serves and may still take writes. */
  t_assert_content(s, 1, 1, data, 100000);
  t_write(s, 1, 1, 2, 100000, data + 100000, 1000);
  free(before);
  free(path);
  free(data);
  cs_store_close(s);
  t_rm_rf(dirs[0]);
  t_rm_rf(dirs[1]);
}

static void read_only_dir_recovers_when_space_returns(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  t_fault f = {0};
  cs_store_opts o = t_opts(&f);
  o.readonly_retry_ms = 1;
  cs_store *s = t_open_n(&dir, 1, &o);
  f.armed = 1;
  f.err_step = "create.write";
  f.err_code = CAIRN_ENOSPC;
  assert_int_equal(cs_store_create(s, 1, 1), CAIRN_ENOSPC);
  f.armed = 0;
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 1, &r), CAIRN_ENOENT);
  assert_int_equal(cs_store_create(s, 1, 1), CAIRN_ENOSPC); /* the only dir is read-only */
  usleep(5000);
  cs_store_usage u;
  assert_int_equal(cs_store_stats(s, &u), 0); /* plenty of space really: back to ok */
  assert_int_equal(u.dirs[0].state, CS_STORE_DIR_OK);
  assert_int_equal(cs_store_create(s, 1, 1), 0);
  cs_store_close(s);
  t_rm_rf(dir);
}

static void io_error_fails_the_dir(void **state) {
  (void)state;
  char *dirs[2] = {t_tmpdir(), t_tmpdir()};
  t_fault f = {0};
  cs_store_opts o = t_opts(&f);
  cs_store *s = t_open_n(dirs, 2, &o);
  unsigned char data[1000];
  t_fill(data, sizeof data, 1, 0);
  assert_int_equal(cs_store_create(s, 1, 1), 0);
  unsigned d = dir_of(s, 1);
  /* A second replica on the same dir: created while the other is failed. */
  f.armed = 1;
  f.err_step = "prepare.sync";
  f.err_code = CAIRN_EIO;
  assert_int_equal(cs_store_prepare(s, 1, 1, 1, 0, data, 100, cmn_crc32c(0, data, 100), 0),
                   CAIRN_EIO);
  f.armed = 0;
  cs_store_usage u;
  assert_int_equal(cs_store_stats(s, &u), 0);
  assert_int_equal(u.dirs[d].state, CS_STORE_DIR_FAILED);
  assert_int_equal(u.dirs[d].capacity, 0);
  /* Its replicas are missing now. */
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 1, &r), CAIRN_ENOENT);
  assert_int_equal(cs_store_read(s, 1, 1, 0, data, 10), CAIRN_ENOENT);
  assert_int_equal(cs_store_count(s), 0);
  assert_int_equal(t_pending(s).n, 0);
  assert_int_equal(cs_store_create(s, 2, 1), 0);
  assert_int_equal(dir_of(s, 2), 1 - d);
  cs_store_close(s);
  /* After a restart (the disk replaced or repaired) the replica is back. */
  s = t_open_n(dirs, 2, &o);
  assert_int_equal(cs_store_info(s, 1, &r), 0);
  assert_int_equal(r.length, 0);
  assert_int_equal(cs_store_count(s), 2);
  cs_store_close(s);
  t_rm_rf(dirs[0]);
  t_rm_rf(dirs[1]);
}

typedef struct tmpfs_state {
  char *dir;
  int mounted;
} tmpfs_state;

/* Unmount and remove, also when the test failed half-way. */
static int tmpfs_teardown(void **state) {
  tmpfs_state *t = *state;
  if (t) {
    if (t->mounted) umount2(t->dir, MNT_DETACH);
    t_rm_rf(t->dir);
    free(t);
  }
  return 0;
}

/* A real full filesystem: a small tmpfs. Skipped when mounting is not
 * possible here (not root, no mount namespace). */
static void enospc_on_a_full_tmpfs(void **state) {
  tmpfs_state *t = cmn_calloc(1, sizeof *t);
  *state = t;
  char *dir = t->dir = t_tmpdir();
  if (mount("tmpfs", dir, "tmpfs", 0, "size=512k") != 0) {
    fprintf(stderr, "cannot mount a tmpfs (%s): skipping\n", strerror(errno));
    skip();
  }
  t->mounted = 1;
  cs_store *s = NULL;
  unsigned char *data = cmn_malloc(T_CHUNK);
  t_fill(data, T_CHUNK, 1, 0);
  s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 1, 1), 0);
  t_write(s, 1, 1, 1, 0, data, 256 * 1024);
  char *path = t_chunk_path(dir, 1, 1);
  size_t n;
  unsigned char *before = t_slurp(path, &n);
  /* An append that does not fit. */
  assert_int_equal(cs_store_prepare(s, 1, 1, 2, 256 * 1024, data, 400 * 1024,
                                    cmn_crc32c(0, data, 400 * 1024), 0), CAIRN_ENOSPC);
  t_assert_file_equals(path, before, n);
  assert_int_equal(t_pending(s).n, 0);
  /* An overwrite whose side file does not fit. */
  assert_int_equal(cs_store_prepare(s, 1, 1, 2, 0, data + 1, 250 * 1024,
                                    cmn_crc32c(0, data + 1, 250 * 1024), 0), CAIRN_ENOSPC);
  t_assert_file_equals(path, before, n);
  char *side = t_side_path(dir, 1, 1, 2);
  assert_false(t_exists(side));
  cs_store_usage u;
  assert_int_equal(cs_store_stats(s, &u), 0);
  assert_int_equal(u.dirs[0].state, CS_STORE_DIR_READ_ONLY);
  assert_true(u.capacity <= 512 * 1024);
  assert_int_equal(cs_store_create(s, 2, 1), CAIRN_ENOSPC);
  /* What fits still goes in, and the data is intact. */
  t_write(s, 1, 1, 2, 256 * 1024, data + 256 * 1024, 1000);
  t_assert_content(s, 1, 1, data, 256 * 1024 + 1000);
  cs_store_close(s);
  free(side);
  free(before);
  free(path);
  free(data);
}

/* ---- server ids, options ---- */

static void mixed_server_ids_refused(void **state) {
  (void)state;
  char *a = t_tmpdir(), *b = t_tmpdir(), *c = t_tmpdir();
  cs_store *s = t_open(a, NULL);
  char id[37];
  memcpy(id, cs_store_server_id(s), 37);
  cs_store_close(s);
  s = t_open(b, NULL);
  assert_string_not_equal(cs_store_server_id(s), id);
  cs_store_close(s);
  char *ab[2] = {a, b};
  cs_store_opts o = t_opts(NULL);
  cs_store *bad = NULL;
  assert_int_equal(cs_store_open((const char *const *)ab, 2, &o, &bad), CAIRN_ECONFIG);
  assert_null(bad);
  /* A new, empty dir joins the server and gets its id. */
  char *ac[2] = {a, c};
  s = t_open_n(ac, 2, &o);
  assert_string_equal(cs_store_server_id(s), id);
  cs_store_close(s);
  char *idpath = cmn_sprintf("%s/ID", c), *buf = NULL;
  size_t len;
  assert_int_equal(cmn_read_file(idpath, 100, &buf, &len), 0);
  assert_int_equal(len, 37);
  assert_memory_equal(buf, id, 36);
  free(buf);
  /* A malformed id is refused too. */
  assert_int_equal(cmn_write_file_atomic(idpath, "not-a-uuid\n", 11, 0644), 0);
  assert_int_equal(cs_store_open((const char *const *)ac, 2, &o, &bad), CAIRN_ECONFIG);
  free(idpath);
  t_rm_rf(a);
  t_rm_rf(b);
  t_rm_rf(c);
}

static void open_refuses_bad_options(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = NULL;
  cs_store_opts o = t_opts(NULL);
  assert_int_equal(cs_store_open((const char *const *)&dir, 0, &o, &s), CAIRN_EINVAL);
  o.chunk_size = 100000;
  assert_int_equal(cs_store_open((const char *const *)&dir, 1, &o, &s), CAIRN_EINVAL);
  o.chunk_size = 2ull << 30;
  assert_int_equal(cs_store_open((const char *const *)&dir, 1, &o, &s), CAIRN_EINVAL);
  o = t_opts(NULL);
  char *twice[2] = {dir, cmn_sprintf("%s/", dir)};
  assert_int_equal(cs_store_open((const char *const *)twice, 2, &o, &s), CAIRN_EINVAL);
  char *file = cmn_sprintf("%s/plain", dir);
  int fd = open(file, O_WRONLY | O_CREAT, 0644);
  close(fd);
  assert_int_equal(cs_store_open((const char *const *)&file, 1, &o, &s), CAIRN_EINVAL);
  assert_null(s);
  /* A replica of another chunk size is reported corrupt, not misread. */
  s = t_open(dir, NULL);
  assert_int_equal(cs_store_create(s, 1, 1), 0);
  cs_store_close(s);
  o.chunk_size = 2 * T_CHUNK;
  s = t_open_n(&dir, 1, &o);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 1, &r), 0);
  assert_true(r.corrupt);
  cs_store_close(s);
  free(twice[1]);
  free(file);
  t_rm_rf(dir);
}

/* ---- import ---- */

static void import_verifies_and_publishes(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cs_store *s = t_open(dir, NULL);
  unsigned char *data = cmn_malloc(T_CHUNK);
  t_fill(data, T_CHUNK, 9, 0);
  const size_t total = 3 * T_B + 4321;
  /* A piece with a bad CRC poisons the import; nothing is published. */
  cs_store_import_ctx *imp;
  assert_int_equal(cs_store_import_begin(s, 1, 4, total, &imp), 0);
  assert_int_equal(cs_store_import_write(imp, data, 1000, cmn_crc32c(0, data, 1000)), 0);
  assert_int_equal(cs_store_import_write(imp, data + 1000, 1000, cmn_crc32c(0, data, 1000)),
                   CAIRN_ECHECKSUM);
  assert_int_equal(cs_store_import_write(imp, data + 1000, 1000, cmn_crc32c(0, data + 1000, 1000)),
                   CAIRN_ECHECKSUM);
  assert_int_equal(cs_store_import_finish(imp), CAIRN_EPROTO);
  cs_store_replica r;
  assert_int_equal(cs_store_info(s, 1, &r), CAIRN_ENOENT);
  char *path = t_chunk_path(dir, 1, 4), *tmp = cmn_sprintf("%s.tmp", path);
  assert_false(t_exists(path));
  assert_false(t_exists(tmp));
  assert_int_equal(cs_store_import(s, 1, 4, data, 1000, 12345), CAIRN_ECHECKSUM);
  assert_false(t_exists(tmp));
  /* Short and long imports are refused. */
  assert_int_equal(cs_store_import_begin(s, 1, 4, total, &imp), 0);
  assert_int_equal(cs_store_import_write(imp, data, 10, cmn_crc32c(0, data, 10)), 0);
  assert_int_equal(cs_store_import_finish(imp), CAIRN_EPROTO);
  assert_int_equal(cs_store_import_begin(s, 1, 4, 10, &imp), 0);
  assert_int_equal(cs_store_import_write(imp, data, 11, cmn_crc32c(0, data, 11)), CAIRN_ERANGE);
  cs_store_import_cancel(imp);
  assert_int_equal(cs_store_import_begin(s, 1, 4, T_CHUNK + 1, &imp), CAIRN_ERANGE);
  /* Unaligned pieces, CRCs computed on the way. */
  assert_int_equal(cs_store_import_begin(s, 1, 4, total, &imp), 0);
  const size_t pieces[] = {1000, 70000, T_B, total - 1000 - 70000 - T_B};
  size_t off = 0;
  for (size_t i = 0; i < 4; i++) {
    assert_int_equal(cs_store_import_write(imp, data + off, pieces[i],
                                           cmn_crc32c(0, data + off, pieces[i])), 0);
    off += pieces[i];
  }
  assert_int_equal(cs_store_import_finish(imp), 0);
  t_assert_content(s, 1, 4, data, total);
  t_assert_crc_table(path, data, total);
  assert_false(t_exists(tmp));
  /* Appends continue on an imported replica. */
  t_write(s, 1, 4, 1, total, data + total, 100);
  /* Same or older version: refused; newer: replaces. */
  assert_int_equal(cs_store_import(s, 1, 4, data, 10, cmn_crc32c(0, data, 10)), CAIRN_EEXIST);
  assert_int_equal(cs_store_import(s, 1, 3, data, 10, cmn_crc32c(0, data, 10)), CAIRN_EEXIST);
  assert_int_equal(cs_store_import(s, 1, 6, data + 5, 5000, cmn_crc32c(0, data + 5, 5000)), 0);
  assert_false(t_exists(path));
  t_assert_content(s, 1, 6, data + 5, 5000);
  cs_store_close(s);
  s = t_open(dir, NULL);
  t_assert_content(s, 1, 6, data + 5, 5000);
  assert_int_equal(cs_store_count(s), 1);
  free(tmp);
  free(path);
  free(data);
  cs_store_close(s);
  t_rm_rf(dir);
}

/* ---- concurrency ---- */

#define CC_LEN 300000u
#define CC_ROUNDS 40

typedef struct cc_ctx {
  cs_store *s;
  atomic_int stop;
  atomic_int reads, errors, mixed;
} cc_ctx;

typedef struct cc_reader_arg {
  cc_ctx *c;
  unsigned seed;
} cc_reader_arg;

/* Readers: random ranges must come back whole from one generation. */
static void *cc_reader(void *arg) {
  cc_ctx *c = ((cc_reader_arg *)arg)->c;
  unsigned seed = ((cc_reader_arg *)arg)->seed;
  unsigned char *buf = cmn_malloc(CC_LEN);
  while (!atomic_load(&c->stop)) {
    uint64_t off = (uint64_t)rand_r(&seed) % (CC_LEN - 1);
    size_t len = 1 + (size_t)rand_r(&seed) % 150000;
    if (off + len > CC_LEN) len = CC_LEN - (size_t)off;
    int64_t n = cs_store_read(c->s, 1, 1, off, buf, len);
    atomic_fetch_add(&c->reads, 1);
    if (n != (int64_t)len) {
      atomic_fetch_add(&c->errors, 1);
      continue;
    }
    int gen = -1;
    for (int g = 0; g <= CC_ROUNDS && gen < 0; g++) {
      size_t k = 0;
      while (k < 16 && k < len && buf[k] == t_byte((uint32_t)g, off + k)) k++;
      if (k == 16 || k == len) gen = g;
    }
    bool ok = gen >= 0;
    for (size_t i = 0; ok && i < len; i++) ok = buf[i] == t_byte((uint32_t)gen, off + i);
    if (!ok) atomic_fetch_add(&c->mixed, 1);
  }
  free(buf);
  return NULL;
}

static void reads_see_whole_commits_only(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  cc_ctx c = {.s = t_open(dir, NULL)};
  atomic_init(&c.stop, 0);
  atomic_init(&c.reads, 0);
  atomic_init(&c.errors, 0);
  atomic_init(&c.mixed, 0);
  unsigned char *data = cmn_malloc(CC_LEN);
  assert_int_equal(cs_store_create(c.s, 1, 1), 0);
  t_fill(data, CC_LEN, 0, 0);
  t_write(c.s, 1, 1, 1, 0, data, CC_LEN);
  pthread_t th[2];
  cc_reader_arg ra[2];
  for (int i = 0; i < 2; i++) {
    ra[i] = (cc_reader_arg){.c = &c, .seed = (unsigned)i + 1};
    assert_int_equal(pthread_create(&th[i], NULL, cc_reader, &ra[i]), 0);
  }
  /* Each round rewrites all of it through a side file (the commit copies
   * five blocks in place while the readers run). */
  for (uint32_t g = 1; g <= CC_ROUNDS; g++) {
    t_fill(data, CC_LEN, g, 0);
    t_write(c.s, 1, 1, g + 1, 0, data, CC_LEN);
  }
  atomic_store(&c.stop, 1);
  for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
  fprintf(stderr, "reads=%d errors=%d mixed=%d\n", atomic_load(&c.reads), atomic_load(&c.errors),
          atomic_load(&c.mixed));
  assert_true(atomic_load(&c.reads) > 0);
  assert_int_equal(atomic_load(&c.errors), 0);
  assert_int_equal(atomic_load(&c.mixed), 0);
  cs_store_replica r;
  assert_int_equal(cs_store_info(c.s, 1, &r), 0);
  assert_false(r.corrupt);
  t_assert_content(c.s, 1, 1, data, CC_LEN);
  free(data);
  cs_store_close(c.s);
  t_rm_rf(dir);
}

/* ---- drop-behind (cs__pwrite_bulk, cs__drop_cache) ---- */

/* Pages of [from, to) of fd in the page cache (mincore of a mapping that is
 * never touched, so it faults nothing in). */
static size_t resident_pages(int fd, uint64_t from, uint64_t to) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  void *m = mmap(NULL, (size_t)to, PROT_READ, MAP_SHARED, fd, 0);
  assert_true(m != MAP_FAILED);
  size_t n = ((size_t)to + pg - 1) / pg;
  unsigned char *vec = cmn_malloc(n);
  assert_int_equal(mincore(m, (size_t)to, vec), 0);
  size_t count = 0;
  for (size_t i = (size_t)(from / pg); i < n; i++) count += vec[i] & 1;
  free(vec);
  munmap(m, (size_t)to);
  return count;
}

static void bulk_writes_drop_what_is_on_disk(void **state) {
  (void)state;
  char *dir = t_tmpdir();
  struct statfs sf;
  if (statfs(dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC) {
    t_rm_rf(dir);
    skip(); /* tmpfs pages are the file: nothing to drop */
  }
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/bulk", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  const uint64_t floor = 3 * 4096 + 100; /* where "the range" begins */
  const size_t total = 14u << 20, pg = (size_t)sysconf(_SC_PAGESIZE);
  unsigned char *data = cmn_malloc(total);
  t_fill(data, total, 7, 0);
  /* Consecutive calls of uneven sizes, as a stage makes them. */
  size_t done = 0, sizes[] = {3000001, 5u << 20, 1u << 20, 777777};
  for (int i = 0; done < total; i = (i + 1) % 4) {
    size_t k = CMN_MIN(sizes[i], total - done);
    assert_int_equal(cs__pwrite_bulk(fd, data + done, k, floor + done, floor), 0);
    done += k;
  }
  /* All but the last CS__DROP_LAG bytes (and the piece they end in) went
   * once written... */
  uint64_t gone_to = cs__round_down(floor + total - CS__DROP_LAG, CS__BULK_PIECE);
  size_t want_gone = (size_t)(gone_to / pg - (floor + pg - 1) / pg);
  size_t left = resident_pages(fd, (floor + pg - 1) / pg * pg, gone_to / pg * pg);
  fprintf(stderr, "resident after the writes: %zu of %zu pages\n", left, want_gone);
  assert_true(left < want_gone / 8);
  /* ... and the rest goes once synced. */
  assert_int_equal(cs__fdatasync(fd), 0);
  cs__drop_cache(fd, floor, floor + total, false);
  size_t all = (size_t)((floor + total) / pg - floor / pg);
  left = resident_pages(fd, floor, floor + total);
  fprintf(stderr, "resident after the sync: %zu of %zu pages\n", left, all);
  assert_true(left < all / 4);
  /* Only a cache hint: the bytes are all there. */
  unsigned char *back = cmn_malloc(total);
  assert_int_equal(cs__pread(fd, back, total, floor), (int64_t)total);
  assert_memory_equal(back, data, total);
  free(back);
  free(data);
  close(fd);
  t_rm_rf(dir);
}

CAIRN_TEST_MAIN(cmocka_unit_test(enospc_undoes_prepare_and_marks_read_only),
                cmocka_unit_test(read_only_dir_recovers_when_space_returns),
                cmocka_unit_test(io_error_fails_the_dir),
                cmocka_unit_test_teardown(enospc_on_a_full_tmpfs, tmpfs_teardown),
                cmocka_unit_test(mixed_server_ids_refused),
                cmocka_unit_test(open_refuses_bad_options),
                cmocka_unit_test(import_verifies_and_publishes),
                cmocka_unit_test(reads_see_whole_commits_only),
                cmocka_unit_test(bulk_writes_drop_what_is_on_disk))
