/* Unit tests for staging (chunkserver/store_stage.c and its use in
 * cs_store_prepare): bytes of a push written past the committed length of a
 * replica before the APPEND that will take them. Checked here: a prepare of
 * exactly the staged bytes uses them in place, every other mutation cuts
 * them off first, readers never see them, and refusals, replacement,
 * reaping and restarts leave no staged byte behind. */
#include "store_test_util.h"

#include <pthread.h>
#include <time.h>

#define H 77u         /* the replica every case works on */
#define V 1u
#define FIRST 100000u /* committed before each case (unaligned) */

/* ---- fixture: a store with replica (H, V) holding FIRST committed bytes ----
 *
 * Made by setup and freed by teardown, which cmocka runs even when a case
 * fails, so a failing case still removes its directory and frees its
 * buffers. The store's fault hook is the fixture's: inert unless a case
 * arms `flt` (t_fault) or `ip` (a stage begun inside a prepare, below). */

typedef struct inprep {
  cs_store *s;               /* NULL: inert */
  const char *step;          /* the prepare step at which to begin the stage */
  int fired;
  int begin_rc, write_rc;
  uint64_t stage_len;
  const unsigned char *junk; /* written to the stage when junk_len > 0 */
  size_t junk_len;
} inprep;

#define MAX_BUFS 8

typedef struct fx {
  char *dir;
  char *path;            /* the replica file of (H, V) */
  cs_store *s;
  unsigned char *model;  /* the committed content is model[0, L) */
  uint64_t L;
  uint64_t serial;       /* last serial used */
  uint64_t data_off;     /* where data starts in the replica file */
  t_fault flt;
  inprep ip;
  unsigned char *bufs[MAX_BUFS]; /* from bytes(f, ), freed by teardown */
  size_t nbufs;
} fx;

static int inprep_fire(inprep *c, const char *step);

static int fx_fault(void *arg, const char *step) {
  fx *f = arg;
  if (f->ip.s) return inprep_fire(&f->ip, step);
  return t_fault_fn(&f->flt, step);
}

static int fx_setup(void **state) {
  fx *f = cmn_calloc(1, sizeof *f);
  *state = f;
  f->dir = t_tmpdir();
  cs_store_opts o = t_opts(NULL);
  o.fault = fx_fault;
  o.fault_arg = f;
  f->s = t_open_n(&f->dir, 1, &o);
  assert_int_equal(cs_store_create(f->s, H, V), 0);
  f->path = t_chunk_path(f->dir, H, V);
  f->model = cmn_malloc(T_CHUNK);
  t_fill(f->model, T_CHUNK, 1, 0);
  f->data_off = f->s->g.data_off;
  assert_int_equal(f->data_off, t_geom().data_off);
  t_write(f->s, H, V, ++f->serial, 0, f->model, FIRST);
  f->L = FIRST;
  t_assert_crc_table(f->path, f->model, FIRST);
  return 0;
}

static int fx_teardown(void **state) {
  fx *f = *state;
  if (!f) return 0;
  cs_store_close(f->s);
  for (size_t i = 0; i < f->nbufs; i++) free(f->bufs[i]);
  free(f->path);
  free(f->model);
  t_rm_rf(f->dir);
  free(f);
  return 0;
}

/* Bytes of the replica file past the committed length. */
static uint64_t past(const fx *f) {
  uint64_t size = t_size(f->path);
  assert_true(size >= f->data_off + f->L);
  return size - f->data_off - f->L;
}

/* `n` fresh bytes of pattern `seed`, owned by the fixture. */
static unsigned char *bytes(fx *f, size_t n, uint32_t seed) {
  assert_true(f->nbufs < MAX_BUFS);
  unsigned char *d = cmn_malloc(n);
  t_fill(d, n, seed, 0);
  f->bufs[f->nbufs++] = d;
  return d;
}

static unsigned char raw_byte(const char *path, uint64_t off) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  unsigned char c = 0;
  assert_int_equal(pread(fd, &c, 1, (off_t)off), 1);
  close(fd);
  return c;
}

static void sleep_ms(long ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Write data[0, n) into a stage in pieces of odd sizes (crossing blocks at
 * odd places), asserting every write succeeds. */
static void write_odd(cs_stage *st, const unsigned char *data, size_t n) {
  static const size_t pieces[] = {1, 4095, 65537, 99999, 7, 33333, 70001};
  size_t done = 0;
  for (size_t i = 0; done < n; i++) {
    size_t k = CMN_MIN(pieces[i % CMN_ARRAY_LEN(pieces)], n - done);
    assert_int_equal(cs_store_stage_write(st, data + done, k), 0);
    done += k;
  }
}

/* Begin a stage at the committed length (CS_STORE_STAGE_END) for n bytes
 * and write all of them; the caller ends it. */
static cs_stage *stage_all(fx *f, const unsigned char *data, size_t n) {
  cs_stage *st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, n, &st), 0);
  assert_non_null(st);
  assert_int_equal(cs_store_stage_offset(st), f->L);
  write_odd(st, data, n);
  return st;
}

/*
 * Prepare an APPEND of data[0, n) at the committed length and tell whether
 * the prepare used the staged bytes in place or wrote the data itself: one
 * byte of the range is changed on disk just before the prepare; a prepare
 * that writes the data restores it, one that uses the staged bytes leaves
 * it. The byte is put back afterwards so that the commit stays sound.
 */
static void prepare_probe(fx *f, const unsigned char *data, size_t n, bool expect_used) {
  uint64_t pos = f->data_off + f->L + n / 2;
  unsigned char orig = data[n / 2], bad = (unsigned char)(orig ^ 0xff);
  t_poke(f->path, pos, &bad, 1);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, data, n,
                                    cmn_crc32c(0, data, n), 0), 0);
  assert_int_equal(raw_byte(f->path, pos), expect_used ? bad : orig);
  t_poke(f->path, pos, &orig, 1);
}

/* Commit the pending APPEND of data[0, n) (serial f->serial) and check the
 * whole content, the CRC table and that nothing is left past it. */
static void commit_append(fx *f, const unsigned char *data, size_t n) {
  assert_int_equal(cs_store_commit(f->s, H, V, f->serial), 0);
  memmove(f->model + f->L, data, n); /* data may be model + L itself */
  f->L += n;
  t_assert_content(f->s, H, V, f->model, f->L);
  t_assert_crc_table(f->path, f->model, f->L);
  assert_int_equal(t_pending(f->s).n, 0);
}

/* ---- use ---- */

/* A prepare of exactly the staged bytes finds them in place and does not
 * write them again; before it, readers see none of them. */
static void staged_bytes_are_used(void **state) {
  fx *f = *state;
  const size_t n = 300000;
  unsigned char *d = bytes(f, n, 2);
  cs_stage *st = stage_all(f, d, n);
  cs_store_stage_end(st);
  assert_int_equal(past(f), n);
  size_t len;
  unsigned char *file = t_slurp(f->path, &len);
  assert_memory_equal(file + f->data_off + f->L, d, n); /* in place */
  free(file);

  /* Invisible to readers. */
  cs_store_replica r;
  assert_int_equal(cs_store_info(f->s, H, &r), 0);
  assert_int_equal(r.length, f->L);
  assert_false(r.pending);
  unsigned char buf[16];
  assert_int_equal(cs_store_read(f->s, H, V, f->L, buf, sizeof buf), 0);
  t_assert_content(f->s, H, V, f->model, f->L);

  prepare_probe(f, d, n, true);
  assert_int_equal(past(f), n); /* prepared, not yet committed */
  commit_append(f, d, n);
}

/* Staged bytes of the same length but other content (another CRC) are not
 * used: the prepare writes its own bytes. */
static void prepare_of_other_bytes_writes_them(void **state) {
  fx *f = *state;
  const size_t n = 300000;
  unsigned char *staged = bytes(f, n, 2), *d = bytes(f, n, 3);
  cs_stage *st = stage_all(f, staged, n);
  cs_store_stage_end(st);
  prepare_probe(f, d, n, false);
  assert_int_equal(past(f), n);
  commit_append(f, d, n);
}

/* A stage that was not fully written is not used, and its bytes go. */
static void partial_stage_is_not_used(void **state) {
  fx *f = *state;
  const size_t n = 300000;
  unsigned char *d = bytes(f, n, 2);
  cs_stage *st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L, n, &st), 0);
  write_odd(st, d, n / 2);
  cs_store_stage_end(st); /* the writer gave up */
  assert_int_equal(past(f), n / 2);
  prepare_probe(f, d, n, false);
  commit_append(f, d, n);
}

/* CS_STORE_STAGE_END resolves to the committed length at begin, wherever
 * that is; an explicit offset equal to it is the same. */
static void stage_end_offset_resolves_to_committed_length(void **state) {
  fx *f = *state;
  cs_stage *st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 1000, &st), 0);
  assert_int_equal(cs_store_stage_offset(st), FIRST);
  cs_store_stage_end(st);
  st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, FIRST, 1000, &st), CAIRN_EBUSY);
  assert_int_equal(cs_store_stage_reap(f->s, -1), 1); /* the first one leaves */
  assert_int_equal(cs_store_stage_begin(f->s, H, V, FIRST, 1000, &st), 0);
  assert_int_equal(cs_store_stage_offset(st), FIRST);
  cs_store_stage_end(st);

  /* After another commit it follows the new length. */
  unsigned char *d = bytes(f, 12345, 4);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, 12345,
                                    cmn_crc32c(0, d, 12345), 0), 0);
  commit_append(f, d, 12345);
  st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 1000, &st), 0);
  assert_int_equal(cs_store_stage_offset(st), FIRST + 12345);
  cs_store_stage_end(st);

  /* An empty replica: offset 0. */
  assert_int_equal(cs_store_create(f->s, H + 1, V), 0);
  st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H + 1, V, CS_STORE_STAGE_END, 1000, &st), 0);
  assert_int_equal(cs_store_stage_offset(st), 0);
  cs_store_stage_end(st);
}

/* ---- cut-off by other mutations ---- */

/* A prepare shorter than the stage at the same offset: the staged tail
 * beyond it must not survive into the file. */
static void longer_stage_is_cut_by_shorter_prepare(void **state) {
  fx *f = *state;
  unsigned char *staged = bytes(f, 400000, 2), *d = bytes(f, 100000, 3);
  cs_stage *st = stage_all(f, staged, 400000);
  cs_store_stage_end(st);
  assert_int_equal(past(f), 400000);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, 100000,
                                    cmn_crc32c(0, d, 100000), 0), 0);
  assert_int_equal(past(f), 100000); /* only the prepared bytes */
  commit_append(f, d, 100000);       /* checks size == data_off + committed */
}

/* PAD zero-fills by allocation, trusting that nothing lies past the
 * committed length: an unused stage must be cut off first. */
static void pad_after_unused_stage_reads_zeros(void **state) {
  fx *f = *state;
  unsigned char *staged = bytes(f, 200000, 2);
  cs_stage *st = stage_all(f, staged, 200000);
  cs_store_stage_end(st);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, NULL, 0, 0, CS_STORE_PAD), 0);
  assert_int_equal(cs_store_commit(f->s, H, V, f->serial), 0);
  memset(f->model + f->L, 0, T_CHUNK - f->L);
  f->L = T_CHUNK;
  t_assert_content(f->s, H, V, f->model, T_CHUNK);
  t_assert_crc_table(f->path, f->model, T_CHUNK);
}

/* An OVERWRITE (growing the chunk) after a stage: the staged bytes go, and
 * an abort then leaves the file as it was before the stage. */
static void overwrite_cuts_stage_and_aborts_clean(void **state) {
  fx *f = *state;
  size_t before_len;
  unsigned char *before = t_slurp(f->path, &before_len);
  unsigned char *staged = bytes(f, 200000, 2), *d = bytes(f, 50000, 3);
  cs_stage *st = stage_all(f, staged, 200000);
  cs_store_stage_end(st);
  const uint64_t off = FIRST - 20000; /* overlaps committed data, grows by 30000 */
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, off, d, 50000,
                                    cmn_crc32c(0, d, 50000), 0), 0);
  assert_int_equal(past(f), 0); /* the new contents are in the side file */
  assert_int_equal(cs_store_abort(f->s, H, V, f->serial), 0);
  t_assert_file_equals(f->path, before, before_len);

  /* And committed, the overwrite reads back with nothing staged in it. */
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, off, d, 50000,
                                    cmn_crc32c(0, d, 50000), 0), 0);
  assert_int_equal(cs_store_commit(f->s, H, V, f->serial), 0);
  memcpy(f->model + off, d, 50000);
  f->L = off + 50000;
  t_assert_content(f->s, H, V, f->model, f->L);
  t_assert_crc_table(f->path, f->model, f->L);
  free(before);
}

/* Abort of a prepare that used the staged bytes: the file is byte-identical
 * to what it was before the stage began. */
static void abort_after_used_stage_is_byte_identical(void **state) {
  fx *f = *state;
  size_t before_len;
  unsigned char *before = t_slurp(f->path, &before_len);
  const size_t n = 300000;
  unsigned char *d = bytes(f, n, 2);
  cs_stage *st = stage_all(f, d, n);
  prepare_probe(f, d, n, true);
  assert_int_equal(cs_store_abort(f->s, H, V, f->serial), 0);
  t_assert_file_equals(f->path, before, before_len);
  assert_int_equal(t_pending(f->s).n, 0);
  /* The claim went to the prepare: the writer cannot add bytes now. */
  assert_int_equal(cs_store_stage_write(st, d, 1), CAIRN_ECANCELED);
  cs_store_stage_end(st);
  t_assert_file_equals(f->path, before, before_len);
  t_assert_content(f->s, H, V, f->model, f->L);
  /* The next append goes through as usual. */
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, n,
                                    cmn_crc32c(0, d, n), 0), 0);
  commit_append(f, d, n);
  free(before);
}

/* Once a prepare took the claim (here with other bytes), the writer's
 * further writes are refused and land nowhere. */
static void stage_write_after_prepare_took_claim_is_canceled(void **state) {
  fx *f = *state;
  /* Other length, stage half written and still open. */
  unsigned char *staged = bytes(f, 300000, 2), *d = bytes(f, 50000, 3);
  cs_stage *st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 300000, &st), 0);
  write_odd(st, staged, 100000);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, 50000,
                                    cmn_crc32c(0, d, 50000), 0), 0);
  assert_int_equal(cs_store_stage_write(st, staged + 100000, 100000), CAIRN_ECANCELED);
  assert_int_equal(past(f), 50000);
  cs_store_stage_end(st);
  commit_append(f, d, 50000);

  /* Same length, other bytes, fully written but not ended. */
  unsigned char *e = bytes(f, 70000, 4);
  st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 70000, &st), 0);
  write_odd(st, staged, 70000);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, e, 70000,
                                    cmn_crc32c(0, e, 70000), 0), 0);
  assert_int_equal(cs_store_stage_write(st, staged, 1), CAIRN_ECANCELED);
  cs_store_stage_end(st);
  commit_append(f, e, 70000);
}

/* ---- refusals ---- */

/* Every refused begin (and a refused write) changes nothing: not the file,
 * not an existing stage's claim. */
static void begin_refusals_change_nothing(void **state) {
  fx *f = *state;
  cs_stage *st = NULL, *x = NULL;
  const uint64_t room = T_CHUNK - FIRST;
  for (int round = 0; round < 2; round++) {
    size_t snap_len;
    unsigned char *snap = t_slurp(f->path, &snap_len);
    assert_int_equal(cs_store_stage_begin(f->s, H + 1, V, CS_STORE_STAGE_END, 10, &x),
                     CAIRN_ENOENT);
    assert_int_equal(cs_store_stage_begin(f->s, H, V + 1, CS_STORE_STAGE_END, 10, &x),
                     CAIRN_ESTALE);
    assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L - 1, 10, &x), CAIRN_ECONFLICT);
    assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L + 1, 10, &x), CAIRN_ECONFLICT);
    assert_int_equal(cs_store_stage_begin(f->s, H, V, 0, 10, &x), CAIRN_ECONFLICT);
    assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L, room + 1, &x), CAIRN_ERANGE);
    assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, UINT64_MAX, &x),
                     CAIRN_ERANGE);
    assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L, 0, &x), CAIRN_EINVAL);
    assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L, 10, NULL), CAIRN_EINVAL);
    assert_int_equal(cs_store_stage_begin(NULL, H, V, f->L, 10, &x), CAIRN_EINVAL);
    assert_int_equal(cs_store_stage_begin(f->s, H, 0, f->L, 10, &x), CAIRN_EINVAL);
    assert_int_equal(cs_store_stage_begin(f->s, UINT64_MAX, V, f->L, 10, &x), CAIRN_EINVAL);
    assert_null(x);
    t_assert_file_equals(f->path, snap, snap_len);
    free(snap);
    if (round == 0) {
      /* Round two runs with a stage in progress, which must survive it. */
      assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 200000, &st), 0);
      write_odd(st, f->model + f->L, 120000);
    }
  }
  /* Bad writes: refused, nothing written, the claim kept. */
  size_t snap_len;
  unsigned char *snap = t_slurp(f->path, &snap_len);
  assert_int_equal(cs_store_stage_write(NULL, f->model, 1), CAIRN_EINVAL);
  assert_int_equal(cs_store_stage_write(st, NULL, 5), CAIRN_EINVAL);
  assert_int_equal(cs_store_stage_write(st, f->model, 80001), CAIRN_ERANGE);
  t_assert_file_equals(f->path, snap, snap_len);
  free(snap);
  write_odd(st, f->model + f->L + 120000, 80000);
  cs_store_stage_end(st);
  prepare_probe(f, f->model + f->L, 200000, true);

  /* A pending mutation: EBUSY, at either form of the offset. */
  snap = t_slurp(f->path, &snap_len);
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 10, &x), CAIRN_EBUSY);
  assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L, 10, &x), CAIRN_EBUSY);
  assert_null(x);
  t_assert_file_equals(f->path, snap, snap_len);
  free(snap);
  commit_append(f, f->model + f->L, 200000);

  /* An exact fit to the chunk end is accepted (and simply reaped). */
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, T_CHUNK - f->L, &x), 0);
  cs_store_stage_end(x);
  x = NULL;
  assert_int_equal(cs_store_stage_reap(f->s, -1), 1);

  /* A corrupt replica takes no stage. */
  t_flip(f->path, f->data_off + 10);
  unsigned char buf[100];
  assert_int_equal(cs_store_read(f->s, H, V, 0, buf, sizeof buf), CAIRN_ECHECKSUM);
  snap = t_slurp(f->path, &snap_len);
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 10, &x), CAIRN_ECORRUPT);
  assert_null(x);
  t_assert_file_equals(f->path, snap, snap_len);
  free(snap);
}

/* A dir gone read-only (ENOSPC during a prepare) takes no stage. */
static void begin_refused_on_read_only_dir(void **state) {
  fx *f = *state;
  f->flt = (t_fault){.armed = 1, .err_step = "prepare.data", .err_code = CAIRN_ENOSPC};
  unsigned char *d = bytes(f, 1000, 2);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, 1000,
                                    cmn_crc32c(0, d, 1000), 0), CAIRN_ENOSPC);
  f->flt.armed = 0;
  size_t snap_len;
  unsigned char *snap = t_slurp(f->path, &snap_len);
  cs_stage *x = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 10, &x), CAIRN_EREADONLY);
  assert_null(x);
  t_assert_file_equals(f->path, snap, snap_len);
  free(snap);
}

/* ---- one stage per chunk, reaping, restart ---- */

/* A chunk has one stage at a time: a second begin is refused and changes
 * nothing; the prepare of the refused push's bytes writes them itself and
 * cuts the first stage off; then the chunk can be staged again. */
static void second_stage_is_refused(void **state) {
  fx *f = *state;
  unsigned char *a = bytes(f, 300000, 2), *b = bytes(f, 200000, 3);
  cs_stage *sa = stage_all(f, a, 300000);
  assert_int_equal(past(f), 300000);
  cs_stage *sb = NULL;
  /* The first claim stands: a second begin changes nothing. */
  assert_int_equal(cs_store_stage_begin(f->s, H, V, f->L, 200000, &sb), CAIRN_EBUSY);
  assert_null(sb);
  assert_int_equal(past(f), 300000);
  cs_store_stage_end(sa);
  /* The prepare of the refused push's bytes writes them itself and cuts the
   * first stage's bytes off. */
  prepare_probe(f, b, 200000, false);
  commit_append(f, b, 200000);
  /* Once taken, the chunk can be staged again. */
  unsigned char *c = bytes(f, 100000, 4);
  cs_stage *sc = stage_all(f, c, 100000);
  cs_store_stage_end(sc);
  prepare_probe(f, c, 100000, true);
  commit_append(f, c, 100000);
}

/* The reaper cuts off stages idle for longer than asked, and only those;
 * a writer still holding a reaped stage gets CAIRN_ECANCELED. */
static void reap_cuts_idle_stages(void **state) {
  fx *f = *state;
  unsigned char *d = bytes(f, 300000, 2);
  cs_stage *st = stage_all(f, d, 300000);
  cs_store_stage_end(st);
  size_t snap_len;
  unsigned char *snap = t_slurp(f->path, &snap_len);
  assert_int_equal(cs_store_stage_reap(f->s, 1000000), 0);
  t_assert_file_equals(f->path, snap, snap_len);
  free(snap);
  sleep_ms(30);
  assert_int_equal(cs_store_stage_reap(f->s, 10), 1);
  assert_int_equal(past(f), 0);
  assert_int_equal(cs_store_stage_reap(f->s, 10), 0); /* gone from the list */
  t_assert_content(f->s, H, V, f->model, f->L);

  /* Reaped while the writer still holds it. */
  st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, 300000, &st), 0);
  write_odd(st, d, 150000);
  sleep_ms(30);
  assert_int_equal(cs_store_stage_reap(f->s, 10), 1);
  assert_int_equal(past(f), 0);
  assert_int_equal(cs_store_stage_write(st, d + 150000, 1000), CAIRN_ECANCELED);
  assert_int_equal(past(f), 0);
  cs_store_stage_end(st);

  /* A reaped stage is not used by the prepare of its bytes. */
  prepare_probe(f, d, 300000, false);
  commit_append(f, d, 300000);
}

/* Staged bytes do not survive a restart: with no mutation pending the
 * start-up scan cuts the file back to the committed length. */
static void restart_cuts_staged_bytes(void **state) {
  fx *f = *state;
  unsigned char *d = bytes(f, 300000, 2);
  cs_stage *st = stage_all(f, d, 300000);
  cs_store_stage_end(st);
  assert_int_equal(past(f), 300000);
  cs_store_close(f->s);
  f->s = NULL;
  assert_int_equal(past(f), 300000); /* close writes nothing */
  f->s = t_open(f->dir, NULL);
  assert_int_equal(past(f), 0);
  assert_int_equal(t_pending(f->s).n, 0);
  t_assert_content(f->s, H, V, f->model, f->L);
  t_assert_crc_table(f->path, f->model, f->L);
  /* Nothing left of the stage: the same bytes are written again. */
  prepare_probe(f, d, 300000, false);
  commit_append(f, d, 300000);
}

/* The stage was begun on a replica file that has since been deleted and
 * created again (same handle, version and offset): its bytes are in the
 * old file, so the prepare must write them. A version change keeps the
 * file; the prepare at the new version must be correct either way. */
static void stage_of_replaced_file_is_not_used(void **state) {
  fx *f = *state;
  const uint64_t h2 = H + 5;
  assert_int_equal(cs_store_create(f->s, h2, V), 0);
  unsigned char *d = bytes(f, 150000, 2);
  cs_stage *st = NULL;
  assert_int_equal(cs_store_stage_begin(f->s, h2, V, 0, 150000, &st), 0);
  write_odd(st, d, 150000);
  cs_store_stage_end(st);
  assert_int_equal(cs_store_delete(f->s, h2, V), 0);
  assert_int_equal(cs_store_create(f->s, h2, V), 0);
  t_write(f->s, h2, V, 1, 0, d, 150000);
  t_assert_content(f->s, h2, V, d, 150000);
  char *p2 = t_chunk_path(f->dir, h2, V);
  t_assert_crc_table(p2, d, 150000);
  free(p2);

  /* Version change between stage and prepare. */
  unsigned char *e = bytes(f, 90000, 3);
  st = stage_all(f, e, 90000);
  cs_store_stage_end(st);
  assert_int_equal(cs_store_set_version(f->s, H, V, V + 1), 0);
  assert_int_equal(cs_store_prepare(f->s, H, V + 1, 1, f->L, e, 90000, cmn_crc32c(0, e, 90000), 0),
                   0);
  assert_int_equal(cs_store_commit(f->s, H, V + 1, 1), 0);
  memcpy(f->model + f->L, e, 90000);
  f->L += 90000;
  t_assert_content(f->s, H, V + 1, f->model, f->L);
  char *p3 = t_chunk_path(f->dir, H, V + 1);
  t_assert_crc_table(p3, f->model, f->L);
  free(p3);
}

/* ---- concurrency ---- */

#define PIECES 8

typedef struct slow_writer {
  cs_stage *st;
  const unsigned char *data;
  size_t n;
  bool keep; /* the caller ends the stage */
  int rc[PIECES];
} slow_writer;

static void *slow_write(void *arg) {
  slow_writer *w = arg;
  size_t piece = w->n / PIECES, done = 0;
  for (int i = 0; i < PIECES; i++) {
    size_t k = i == PIECES - 1 ? w->n - done : piece;
    sleep_ms(5);
    w->rc[i] = cs_store_stage_write(w->st, w->data + done, k);
    done += k;
  }
  if (!w->keep) cs_store_stage_end(w->st);
  return NULL;
}

/* A prepare that arrives while the stage is still being written (bytes
 * keep coming) waits for it and uses it: no write of the stage is
 * refused, and the result reads back. */
static void prepare_waits_for_stage_being_written(void **state) {
  fx *f = *state;
  const size_t n = 400003;
  unsigned char *d = bytes(f, n, 2);
  slow_writer w = {.data = d, .n = n};
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, n, &w.st), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, slow_write, &w), 0);
  int64_t t0 = cmn_mono_ms();
  int rc = cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, n, cmn_crc32c(0, d, n), 0);
  int64_t took = cmn_mono_ms() - t0;
  assert_int_equal(pthread_join(t, NULL), 0);
  assert_int_equal(rc, 0);
  for (int i = 0; i < PIECES; i++) assert_int_equal(w.rc[i], 0);
  assert_true(took < 10000);
  commit_append(f, d, n);
}

/* Syncs run beside the writer, as the data plane's sync job does, and the
 * stage is still used whole, in place. Once a prepare took the claim, a
 * sync is refused. */
static void sync_beside_writer_keeps_stage_usable(void **state) {
  fx *f = *state;
  const size_t n = 400003;
  unsigned char *d = bytes(f, n, 2);
  slow_writer w = {.data = d, .n = n, .keep = true};
  assert_int_equal(cs_store_stage_begin(f->s, H, V, CS_STORE_STAGE_END, n, &w.st), 0);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, slow_write, &w), 0);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(cs_store_stage_sync(w.st), 0);
    sleep_ms(2);
  }
  assert_int_equal(pthread_join(t, NULL), 0);
  for (int i = 0; i < PIECES; i++) assert_int_equal(w.rc[i], 0);
  assert_int_equal(cs_store_stage_sync(w.st), 0);
  prepare_probe(f, d, n, true);
  assert_int_equal(cs_store_stage_sync(w.st), CAIRN_ECANCELED);
  cs_store_stage_end(w.st);
  commit_append(f, d, n);
  assert_int_equal(cs_store_stage_sync(NULL), CAIRN_EINVAL);
}

/* ---- a stage begun while a prepare is in flight ----
 *
 * A prepare becomes pending only at its very end, after it took (or found
 * no) stage. A stage begun in between would claim the tail under the
 * prepare: its bytes could land on the prepared ones, and cutting it off
 * later (reaper, next prepare) would cut what was committed meanwhile.
 * The fault hook, called at the prepare's steps, begins one right there;
 * whether begin refuses or not, nothing prepared or committed may change. */

static int inprep_fire(inprep *c, const char *step) {
  if (c->fired || strcmp(step, c->step) != 0) return 0;
  c->fired = 1;
  cs_stage *st = NULL;
  c->begin_rc = cs_store_stage_begin(c->s, H, V, CS_STORE_STAGE_END, c->stage_len, &st);
  if (c->begin_rc == 0) {
    if (c->junk_len) c->write_rc = cs_store_stage_write(st, c->junk, c->junk_len);
    cs_store_stage_end(st);
  }
  return 0;
}

/* Whatever becomes of such a stage (reaped here, or taken by the next
 * prepare), cutting it off must never cut committed bytes. */
static void stage_begun_during_prepare_keeps_committed_bytes(void **state) {
  fx *f = *state;
  unsigned char *d = bytes(f, 70000, 2), *e = bytes(f, 30000, 3);
  f->ip = (inprep){.s = f->s, .step = "prepare.sync", .stage_len = 50000};
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, 70000,
                                    cmn_crc32c(0, d, 70000), 0), 0);
  assert_true(f->ip.fired);
  commit_append(f, d, 70000);
  sleep_ms(20);
  cs_store_stage_reap(f->s, 5);
  t_assert_content(f->s, H, V, f->model, f->L);
  t_assert_crc_table(f->path, f->model, f->L);
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, e, 30000,
                                    cmn_crc32c(0, e, 30000), 0), 0);
  commit_append(f, e, 30000);
}

/* Bytes written to such a stage must not land on the prepared bytes (the
 * yes vote promised them). */
static void stage_begun_during_prepare_keeps_prepared_bytes(void **state) {
  fx *f = *state;
  unsigned char *d = bytes(f, 70000, 2), *junk = bytes(f, 70000, 9);
  f->ip = (inprep){.s = f->s, .step = "prepare.sync", .stage_len = 70000, .junk = junk,
                   .junk_len = 70000};
  assert_int_equal(cs_store_prepare(f->s, H, V, ++f->serial, f->L, d, 70000,
                                    cmn_crc32c(0, d, 70000), 0), 0);
  assert_true(f->ip.fired);
  size_t len;
  unsigned char *file = t_slurp(f->path, &len);
  assert_true(len >= f->data_off + f->L + 70000);
  int same = memcmp(file + f->data_off + f->L, d, 70000) == 0;
  free(file);
  assert_true(same);
  commit_append(f, d, 70000);
}

CAIRN_TEST_MAIN(
                cmocka_unit_test_setup_teardown(staged_bytes_are_used,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(prepare_of_other_bytes_writes_them,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(partial_stage_is_not_used,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(stage_end_offset_resolves_to_committed_length,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(longer_stage_is_cut_by_shorter_prepare,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(pad_after_unused_stage_reads_zeros,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(overwrite_cuts_stage_and_aborts_clean,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(abort_after_used_stage_is_byte_identical,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(stage_write_after_prepare_took_claim_is_canceled,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(begin_refusals_change_nothing,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(begin_refused_on_read_only_dir,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(second_stage_is_refused,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(reap_cuts_idle_stages,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(restart_cuts_staged_bytes,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(stage_of_replaced_file_is_not_used,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(prepare_waits_for_stage_being_written,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(sync_beside_writer_keeps_stage_usable,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(stage_begun_during_prepare_keeps_committed_bytes,
                                                fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(stage_begun_during_prepare_keeps_prepared_bytes,
                                                fx_setup, fx_teardown))
