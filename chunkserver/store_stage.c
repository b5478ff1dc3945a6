/*
 * store_stage.c - staging (cs_store.h): the bytes of a push written where
 * an APPEND will put them while they still arrive, so the prepare that
 * follows finds them in place, their writeback already begun.
 *
 * A stage holds a claim on the tail of one replica file: the bytes past its
 * committed length. The claim is taken in cs_store_stage_begin under the
 * store lock (the replica is then idle: no mutation pending) and lost for
 * good when any prepare on the chunk, a newer stage or the reaper takes
 * the stage out of the list. Whoever takes it revokes the claim under the
 * stage's own lock, which the writer holds for each write, so once a claim
 * is revoked no staged byte lands any more. The new owner of the tail then
 * either uses the bytes (a prepare of exactly them) or cuts the file back
 * to the committed length: outside a claim, a replica file never holds
 * bytes past its committed (or prepared) length, which PAD relies on.
 *
 * Why the committed length cannot move under a claim: it only changes by a
 * commit, a commit needs a prepare, and every prepare revokes the claim
 * first; from its first check until it is pending (or has failed) a
 * prepare marks the chunk (CS__F_PREPARING) so no stage begins meanwhile.
 * A version change renames the same file and changes no byte; a delete or
 * an import leaves the stage writing into a file nobody reads.
 *
 * Lock order: s->mu and st->mu are never held together.
 */
#include "store_internal.h"

#include "cairn_error.h"
#include "cmn_crc32c.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A prepare waits for a stage still being written as long as it makes
 * progress at least this often. */
#define STAGE_STALL_MS 1000

struct cs_stage {
  cs_store *s;
  cs_stage *next;          /* in s->stages, under s->mu */
  atomic_int refs;         /* the list's and the writer's */
  _Atomic int64_t touched_ms; /* cmn_mono_ms() of the last sign of life */
  uint64_t handle, version, offset, len;
  pthread_mutex_t mu;
  pthread_cond_t cv;       /* progress, the writer's end, or the claim lost */
  /* --- under mu --- */
  int fd;                  /* -1 until opened */
  bool claim;              /* the tail is ours */
  bool good;               /* every byte so far written */
  bool writer_done;
  uint64_t written;
  uint32_t crc;            /* of the bytes written */
};

static void stage_unref(cs_stage *st) {
  if (atomic_fetch_sub(&st->refs, 1) != 1) return;
  if (st->fd >= 0) close(st->fd);
  pthread_cond_destroy(&st->cv);
  pthread_mutex_destroy(&st->mu);
  free(st);
}

/* Take the stage of `handle` out of the list (its list reference passes to
 * the caller), NULL when there is none. mu held. */
static cs_stage *unlist(cs_store *s, uint64_t handle) {
  for (cs_stage **pp = &s->stages; *pp; pp = &(*pp)->next) {
    if ((*pp)->handle != handle) continue;
    cs_stage *st = *pp;
    *pp = st->next;
    return st;
  }
  return NULL;
}

/* Revoke the claim of an unlisted stage and cut the file back to where the
 * stage began, unless `keep_to` says how far its bytes are to be kept
 * (they were taken by a prepare). Drops the caller's reference. Returns 0,
 * or the error of a cut that failed (staged bytes may then remain). */
static int stage_revoke(cs_stage *st, uint64_t keep_to) {
  int rc = 0;
  pthread_mutex_lock(&st->mu);
  if (st->claim && st->fd >= 0) {
    struct stat sb;
    uint64_t end = st->s->g.data_off + keep_to;
    if (fstat(st->fd, &sb) != 0 ||
        ((uint64_t)sb.st_size > end && ftruncate(st->fd, (off_t)end) != 0)) {
      rc = cs__io_err(errno);
      CMN_WARN(CS__MOD, "cannot cut staged bytes handle=%016" PRIx64 ": %s", st->handle,
               strerror(errno));
    }
  }
  st->claim = false;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  stage_unref(st);
  return rc;
}

int cs_store_stage_begin(cs_store *s, uint64_t handle, uint64_t version, uint64_t offset,
                         uint64_t len, cs_stage **out) {
  if (!s || !out || handle == CS__NO_HANDLE || version == 0 || len == 0) return CAIRN_EINVAL;
  if (cs__crashed(s)) return CAIRN_EIO;
  cs_stage *st = cmn_calloc(1, sizeof *st);
  pthread_mutex_init(&st->mu, NULL);
  pthread_cond_init(&st->cv, NULL);
  st->s = s;
  st->handle = handle;
  st->version = version;
  st->len = len;
  st->fd = -1;
  st->claim = st->good = true;
  atomic_init(&st->touched_ms, cmn_mono_ms());
  atomic_init(&st->refs, 2);

  pthread_mutex_lock(&s->mu);
  cs__entry *e = cs__index_find(&s->index, handle);
  int rc = 0;
  if (!e) rc = CAIRN_ENOENT;
  else if (s->dirs[e->dir].state != CS_STORE_DIR_OK) rc = CAIRN_EREADONLY;
  else if (e->version != version) rc = CAIRN_ESTALE;
  else if (e->flags & (CS__F_CORRUPT | CS__F_BADHDR)) rc = CAIRN_ECORRUPT;
  else if (e->flags & (CS__F_PENDING | CS__F_PREPARING)) rc = CAIRN_EBUSY;
  else if (offset != CS_STORE_STAGE_END && offset != e->length) rc = CAIRN_ECONFLICT;
  else if (len > s->g.chunk_size - e->length) rc = CAIRN_ERANGE;
  unsigned dir = 0;
  if (rc == 0) {
    for (cs_stage *o = s->stages; o && rc == 0; o = o->next)
      if (o->handle == handle) rc = CAIRN_EBUSY; /* first come, first staged */
  }
  if (rc == 0) {
    st->offset = e->length;
    dir = e->dir;
    st->next = s->stages;
    s->stages = st;
  }
  pthread_mutex_unlock(&s->mu);
  if (rc != 0) {
    atomic_store(&st->refs, 1);
    stage_unref(st);
    return rc;
  }

  char path[PATH_MAX];
  cs__chunk_path(s, dir, handle, version, path);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  pthread_mutex_lock(&st->mu);
  if (fd < 0) {
    rc = errno == ENOENT ? CAIRN_ENOENT : cs__io_err(errno);
    st->good = false;
  } else {
    st->fd = fd;
  }
  pthread_mutex_unlock(&st->mu);
  if (rc != 0) {
    /* Nothing was written: leave the list at once (unless a prepare took
     * the stage meanwhile), so the chunk can be staged again. */
    pthread_mutex_lock(&s->mu);
    cs_stage **pp = &s->stages;
    while (*pp && *pp != st) pp = &(*pp)->next;
    bool listed = *pp != NULL;
    if (listed) *pp = st->next;
    pthread_mutex_unlock(&s->mu);
    if (listed) stage_unref(st);
    cs_store_stage_end(st);
    return rc;
  }
  *out = st;
  return 0;
}

uint64_t cs_store_stage_offset(const cs_stage *st) { return st->offset; }

int cs_store_stage_write(cs_stage *st, const void *data, size_t len) {
  if (!st || (!data && len)) return CAIRN_EINVAL;
  cs_store *s = st->s;
  pthread_mutex_lock(&st->mu);
  int rc = 0;
  if (!st->claim) rc = CAIRN_ECANCELED;
  else if (!st->good || cs__crashed(s)) rc = CAIRN_EIO;
  else if (len > st->len - st->written) rc = CAIRN_ERANGE;
  if (rc == 0 && len > 0) {
    uint64_t base = s->g.data_off + st->offset;
    rc = cs__pwrite_bulk(st->fd, data, len, base + st->written, base);
    if (rc == 0) {
      st->crc = cmn_crc32c(st->crc, data, len);
      st->written += len;
    } else {
      st->good = false; /* the prepare writes the bytes itself, and reports */
    }
    atomic_store(&st->touched_ms, cmn_mono_ms());
    pthread_cond_broadcast(&st->cv);
  }
  pthread_mutex_unlock(&st->mu);
  return rc;
}

int cs_store_stage_sync(cs_stage *st) {
  if (!st) return CAIRN_EINVAL;
  /* The fd stays open without the lock: it closes with the last
   * reference, and the writer's lasts until end, which the caller does
   * not call meanwhile. */
  pthread_mutex_lock(&st->mu);
  int fd = st->fd, rc = !st->claim                                 ? CAIRN_ECANCELED
                        : !st->good || fd < 0 || cs__crashed(st->s) ? CAIRN_EIO
                                                                    : 0;
  pthread_mutex_unlock(&st->mu);
  if (rc != 0) return rc;
  if ((rc = cs__fdatasync(fd)) != 0) {
    pthread_mutex_lock(&st->mu);
    st->good = false; /* the prepare writes the bytes itself, and reports */
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
  }
  return rc;
}

void cs_store_stage_end(cs_stage *st) {
  if (!st) return;
  pthread_mutex_lock(&st->mu);
  st->writer_done = true;
  atomic_store(&st->touched_ms, cmn_mono_ms());
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  stage_unref(st);
}

/* Wait (st->mu held) until every byte is written, the writer gave up or
 * the claim is gone, or no byte arrived for STAGE_STALL_MS. */
static void wait_written(cs_stage *st) {
  while (st->claim && st->good && !st->writer_done && st->written < st->len) {
    uint64_t before = st->written;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += STAGE_STALL_MS / 1000;
    ts.tv_nsec += (long)(STAGE_STALL_MS % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    if (pthread_cond_timedwait(&st->cv, &st->mu, &ts) != 0 && st->written == before) return;
  }
}

int cs__stage_take(cs_store *s, const cs__pending *p, int fd) {
  pthread_mutex_lock(&s->mu);
  cs_stage *st = unlist(s, p->handle);
  pthread_mutex_unlock(&s->mu);
  if (!st) return 0;
  bool used = false;
  if (p->kind == CS_STORE_KIND_APPEND && st->version == p->version &&
      st->offset == p->offset && st->len == p->length) {
    pthread_mutex_lock(&st->mu);
    wait_written(st);
    struct stat a, b;
    used = st->claim && st->good && st->written == st->len && st->crc == p->crc &&
           fstat(st->fd, &a) == 0 && fstat(fd, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
    pthread_mutex_unlock(&st->mu);
  }
  int rc = stage_revoke(st, used ? st->offset + st->len : st->offset);
  return rc < 0 ? rc : used;
}

/*
 * The reaper cuts a stage off only while the chunk is idle, and marks it
 * busy (CS__F_PREPARING) for the time of the cut, so no prepare writes
 * between the stage leaving the list and the ftruncate (a prepare waits for
 * the mark to clear). A chunk with a mutation under way is left for the
 * next tick; its prepare takes the stage anyway.
 */
int cs_store_stage_reap(cs_store *s, int64_t idle_ms) {
  if (!s) return 0;
  int64_t now = cmn_mono_ms();
  cs_stage *gone = NULL;
  pthread_mutex_lock(&s->mu);
  for (cs_stage **pp = &s->stages; *pp;) {
    cs_stage *st = *pp;
    cs__entry *e = cs__index_find(&s->index, st->handle);
    if (now - atomic_load(&st->touched_ms) > idle_ms &&
        !(e && (e->flags & (CS__F_PENDING | CS__F_PREPARING)))) {
      if (e) e->flags |= CS__F_PREPARING;
      *pp = st->next;
      st->next = gone;
      gone = st;
    } else {
      pp = &st->next;
    }
  }
  pthread_mutex_unlock(&s->mu);
  int n = 0;
  while (gone) {
    cs_stage *st = gone;
    gone = st->next;
    uint64_t handle = st->handle;
    (void)stage_revoke(st, st->offset); /* logged; start-up cuts what remains */
    pthread_mutex_lock(&s->mu);
    cs__entry *e = cs__index_find(&s->index, handle);
    if (e) e->flags &= (uint8_t)~CS__F_PREPARING;
    pthread_cond_broadcast(&s->stable_cv);
    pthread_mutex_unlock(&s->mu);
    n++;
  }
  return n;
}

void cs__stage_free_all(cs_store *s) {
  while (s->stages) {
    cs_stage *st = s->stages;
    s->stages = st->next;
    stage_unref(st);
  }
}
