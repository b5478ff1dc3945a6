/*
 * store.c - the replica store's life cycle and replica-level operations:
 * open/close, data-dir states and placement, create, set_version, delete,
 * info/foreach/stats, and the helpers the other store files share (fault
 * steps, pending list, generations, corruption marking).
 *
 * Prepare/commit/abort live in store_txn.c, reads, scrubbing and import in
 * store_read.c, the start-up scan in store_scan.c, formats in store_format.c.
 */
#include "store_internal.h"

#include "cairn_error.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

static const char *state_name(cs_store_dir_state st) {
  return st == CS_STORE_DIR_OK ? "ok" : st == CS_STORE_DIR_READ_ONLY ? "read-only" : "failed";
}

/* ---- shared helpers ---- */

int cs__step(cs_store *s, const char *name) {
  if (!s->opts.fault) return 0;
  int r = s->opts.fault(s->opts.fault_arg, name);
  if (r == 0) return 0;
  if (r > 0) {
    atomic_store(&s->dead, 1);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->stable_cv);
    pthread_mutex_unlock(&s->mu);
    CMN_WARN(CS__MOD, "simulated crash step=%s", name);
    return CAIRN_EIO;
  }
  return r;
}

static void notify(cs_store *s, const cs_store_event *ev) {
  if (s->opts.notify) s->opts.notify(s->opts.notify_arg, ev);
}

/* Move dir to state `to` (only ever worse, unless `recover`); logs and
 * notifies once per change. */
static void set_dir_state(cs_store *s, unsigned dir, cs_store_dir_state to, bool recover,
                          const char *why) {
  pthread_mutex_lock(&s->mu);
  cs_store_dir_state from = s->dirs[dir].state;
  bool changed = recover ? (from == CS_STORE_DIR_READ_ONLY && to == CS_STORE_DIR_OK) : to > from;
  if (changed) {
    s->dirs[dir].state = to;
    s->dirs[dir].readonly_since_ms = cmn_mono_ms();
  }
  pthread_mutex_unlock(&s->mu);
  if (!changed) return;
  if (to == CS_STORE_DIR_FAILED)
    CMN_ERROR(CS__MOD, "data dir failed dir=%s reason=\"%s\"", s->dirs[dir].path, why);
  else
    CMN_WARN(CS__MOD, "data dir %s dir=%s reason=\"%s\"", state_name(to), s->dirs[dir].path, why);
  cs_store_event ev = {.kind = CS_STORE_EV_DIR_STATE, .dir = dir, .state = to};
  notify(s, &ev);
}

void cs__dir_error(cs_store *s, unsigned dir, int rc, const char *what, uint64_t handle) {
  if (cs__crashed(s)) return;
  cs_store_dir_state to;
  if (rc == CAIRN_ENOSPC || rc == CAIRN_EREADONLY) to = CS_STORE_DIR_READ_ONLY;
  else if (rc == CAIRN_EIO) to = CS_STORE_DIR_FAILED;
  else return;
  char why[160];
  snprintf(why, sizeof why, "%s handle=%016" PRIx64 ": %s", what, handle, cairn_strerror(rc));
  set_dir_state(s, dir, to, false, why);
}

static uint64_t dir_free(cs_store *s, unsigned dir, uint64_t *capacity, int *err) {
  struct statvfs v;
  if (statvfs(s->dirs[dir].path, &v) != 0) {
    *err = errno;
    return 0;
  }
  *err = 0;
  if (capacity) *capacity = (uint64_t)v.f_blocks * v.f_frsize;
  return (uint64_t)v.f_bavail * v.f_frsize;
}

/*
 * Placement: the ok dir with the most free space, at least the reserve.
 * A dir found below the reserve is marked read-only on the way (it takes no
 * new replica until cs_store_stats sees room again).
 */
int cs__pick_dir(cs_store *s, unsigned *dir) {
  cs_store_dir_state st[CS_STORE_MAX_DIRS];
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->ndirs; i++) st[i] = s->dirs[i].state;
  pthread_mutex_unlock(&s->mu);
  int best = -1;
  uint64_t best_free = 0;
  bool usable = false;
  for (size_t i = 0; i < s->ndirs; i++) {
    if (st[i] == CS_STORE_DIR_FAILED) continue;
    usable = true;
    if (st[i] != CS_STORE_DIR_OK) continue;
    int err;
    uint64_t fr = dir_free(s, (unsigned)i, NULL, &err);
    if (err) {
      set_dir_state(s, (unsigned)i, CS_STORE_DIR_FAILED, false, strerror(err));
      continue;
    }
    if (fr < s->opts.reserve_bytes) {
      set_dir_state(s, (unsigned)i, CS_STORE_DIR_READ_ONLY, false, "free space below reserve");
      continue;
    }
    if (best < 0 || fr > best_free) {
      best = (int)i;
      best_free = fr;
    }
  }
  if (best < 0) return usable ? CAIRN_ENOSPC : CAIRN_EIO;
  *dir = (unsigned)best;
  return 0;
}

cs__pending *cs__pending_find(cs_store *s, uint64_t handle) {
  for (size_t i = 0; i < s->npend; i++)
    if (s->pend[i].handle == handle) return &s->pend[i];
  return NULL;
}

void cs__pending_add(cs_store *s, const cs__pending *p) {
  cs__pending *old = cs__pending_find(s, p->handle);
  if (old) {
    if (old->blk != p->blk) free(old->blk);
    *old = *p;
    return;
  }
  if (s->npend == s->cap_pend) {
    s->cap_pend = s->cap_pend ? s->cap_pend * 2 : 16;
    s->pend = cmn_realloc(s->pend, s->cap_pend * sizeof *s->pend);
  }
  s->pend[s->npend++] = *p;
}

void cs__pending_del(cs_store *s, uint64_t handle) {
  cs__pending *p = cs__pending_find(s, handle);
  if (!p) return;
  free(p->blk);
  *p = s->pend[--s->npend];
}

void cs__change_begin(cs_store *s, cs__entry *e) {
  (void)s;
  if (!(e->gen & 1)) e->gen++;
}

void cs__change_end(cs_store *s, uint64_t handle) {
  cs__entry *e = cs__index_find(&s->index, handle);
  if (e && (e->gen & 1)) e->gen++;
  pthread_cond_broadcast(&s->stable_cv);
}

void cs__mark_corrupt(cs_store *s, uint64_t handle, uint64_t version, uint16_t gen,
                      const char *why) {
  bool newly = false;
  unsigned dir = 0;
  pthread_mutex_lock(&s->mu);
  cs__entry *e = cs__index_find(&s->index, handle);
  if (e && e->version == version && e->gen == gen && !(e->flags & CS__F_CORRUPT)) {
    e->flags |= CS__F_CORRUPT;
    dir = e->dir;
    newly = true;
  }
  pthread_mutex_unlock(&s->mu);
  if (!newly) return;
  CMN_WARN(CS__MOD, "replica corrupt handle=%016" PRIx64 " version=%" PRIu64 " dir=%s reason=\"%s\"",
           handle, version, s->dirs[dir].path, why);
  cs_store_event ev = {.kind = CS_STORE_EV_CORRUPT, .handle = handle, .version = version,
                       .dir = dir};
  notify(s, &ev);
}

/* ---- open / close ---- */

int cs_store_open(const char *const *dirs, size_t n, const cs_store_opts *opts,
                  cs_store **out) {
  if (!dirs || !out || n == 0 || n > CS_STORE_MAX_DIRS) return CAIRN_EINVAL;
  cs_store_opts o = {0};
  if (opts) o = *opts;
  if (o.chunk_size == 0) o.chunk_size = CS_STORE_DEFAULT_CHUNK_SIZE;
  if (o.chunk_size % CS_STORE_BLOCK_SIZE != 0 || o.chunk_size > CS_STORE_MAX_CHUNK_SIZE) {
    CMN_ERROR(CS__MOD, "bad chunk size chunk_size=%" PRIu64 " (a multiple of 64 KiB up to 1 GiB)",
              o.chunk_size);
    return CAIRN_EINVAL;
  }
  if (o.reserve_bytes == 0) o.reserve_bytes = o.chunk_size;
  if (o.readonly_retry_ms <= 0) o.readonly_retry_ms = 60000;
  for (size_t i = 0; i < n; i++) {
    if (!dirs[i] || !dirs[i][0]) return CAIRN_EINVAL;
    if (strlen(dirs[i]) > PATH_MAX - 64) return CAIRN_ENAMETOOLONG;
  }
  cs_store *s = cmn_calloc(1, sizeof *s);
  s->opts = o;
  cs__geom_init(&s->g, o.chunk_size);
  s->ndirs = n;
  s->dirs = cmn_calloc(n, sizeof *s->dirs);
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(dirs[i]);
    while (len > 1 && dirs[i][len - 1] == '/') len--;
    s->dirs[i].path = cmn_strndup(dirs[i], len);
  }
  atomic_init(&s->dead, 0);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->stable_cv, NULL);
  int rc = cs__scan(s);
  if (rc != 0) goto fail;
  *out = s;
  return 0;
fail:
  cs_store_close(s);
  return rc;
}

void cs_store_close(cs_store *s) {
  if (!s) return;
  cs__stage_free_all(s);
  cs__index_free(&s->index);
  for (size_t i = 0; i < s->npend; i++) free(s->pend[i].blk);
  free(s->pend);
  for (size_t i = 0; i < s->ndirs; i++) free(s->dirs[i].path);
  free(s->dirs);
  pthread_cond_destroy(&s->stable_cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

const char *cs_store_server_id(const cs_store *s) { return s->id; }

uint64_t cs_store_chunk_size(const cs_store *s) { return s->g.chunk_size; }

static bool usable_entry(const cs_store *s, const cs__entry *e) {
  return e && s->dirs[e->dir].state != CS_STORE_DIR_FAILED;
}

/* ---- create ---- */

/*
 * Write an empty replica: slot A (sequence 1, no data), slot B, the intent
 * page all zeros (written, not sparse, so later header and intent writes
 * never need new disk blocks), into a temp file; fsync, rename, dir fsync,
 * index it.
 */
static int create_file(cs_store *s, uint64_t handle, uint64_t version) {
  unsigned dir = 0;
  int rc = cs__pick_dir(s, &dir);
  if (rc != 0) return rc;
  char path[PATH_MAX], tmp[PATH_MAX + 8];
  cs__chunk_path(s, dir, handle, version, path);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  unsigned char *buf = cmn_calloc(1, s->g.data_off);
  cs__header h = {.handle = handle, .version = version, .chunk_size = s->g.chunk_size, .seq = 1};
  cs__header_encode(&s->g, &h, buf);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  if ((rc = cs__step(s, "create.write")) != 0) goto fail;
  if ((rc = cs__pwrite(fd, buf, s->g.data_off, 0)) != 0) goto fail;
  if ((rc = cs__step(s, "create.sync")) != 0) goto fail;
  if ((rc = cs__fdatasync(fd)) != 0) goto fail;
  close(fd);
  fd = -1;
  if ((rc = cs__step(s, "create.rename")) != 0) goto fail;
  if (rename(tmp, path) != 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  if ((rc = cs__step(s, "create.dirsync")) != 0) goto fail;
  if ((rc = cs__fsync_dir_of(path)) != 0) goto fail;
  free(buf);
  cs__entry e = {.handle = handle, .version = version, .dir = (uint8_t)dir};
  pthread_mutex_lock(&s->mu);
  cs__index_put(&s->index, &e); /* replaces an entry left on a failed dir */
  cs__pending_del(s, handle);
  pthread_mutex_unlock(&s->mu);
  CMN_DEBUG(CS__MOD, "created handle=%016" PRIx64 " version=%" PRIu64 " dir=%s", handle, version,
            s->dirs[dir].path);
  return 0;
fail:
  if (fd >= 0) close(fd);
  free(buf);
  if (!cs__crashed(s)) {
    unlink(tmp);
    unlink(path);
    cs__dir_error(s, dir, rc, "create", handle);
  }
  return rc;
}

int cs_store_create(cs_store *s, uint64_t handle, uint64_t version) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (handle == CS__NO_HANDLE || version == 0) return CAIRN_EINVAL;
  pthread_mutex_lock(&s->mu);
  bool exists = usable_entry(s, cs__index_find(&s->index, handle));
  pthread_mutex_unlock(&s->mu);
  if (exists) return CAIRN_EEXIST;
  return create_file(s, handle, version);
}

/* ---- set_version ---- */

/*
 * New version: header with the new version (serial record reset) into the
 * other slot, fdatasync, then rename to the new name and fsync the dir. The
 * open-time scan finishes a rename a crash interrupted (header version above
 * the name's).
 */
int cs_store_set_version(cs_store *s, uint64_t handle, uint64_t old_version,
                         uint64_t new_version) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (handle == CS__NO_HANDLE || old_version == 0 || new_version <= old_version)
    return CAIRN_EINVAL;
  pthread_mutex_lock(&s->mu);
  cs__entry *e = cs__index_find(&s->index, handle);
  if (!usable_entry(s, e)) {
    pthread_mutex_unlock(&s->mu);
    /* The rule for never-written chunks: version 1 was never leased. */
    return old_version == 1 ? create_file(s, handle, new_version) : CAIRN_ENOENT;
  }
  int rc = 0;
  if (e->version == new_version) rc = 0;
  else if (e->version != old_version) rc = CAIRN_ESTALE;
  else if (e->flags & CS__F_PENDING) rc = CAIRN_EBUSY;
  else if (e->flags & (CS__F_CORRUPT | CS__F_BADHDR)) rc = CAIRN_ECORRUPT;
  else rc = 1;
  if (rc != 1) {
    pthread_mutex_unlock(&s->mu);
    return rc;
  }
  cs__change_begin(s, e);
  unsigned dir = e->dir;
  uint16_t gen = e->gen;
  int cur = (e->flags & CS__F_SLOTB) ? 1 : 0;
  pthread_mutex_unlock(&s->mu);

  char path[PATH_MAX], npath[PATH_MAX];
  cs__chunk_path(s, dir, handle, old_version, path);
  cs__chunk_path(s, dir, handle, new_version, npath);
  unsigned char *slot = cmn_malloc(cs__slot_used(&s->g));
  bool renamed = false;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  cs__header h;
  if ((rc = cs__read_slot(&s->g, fd, cur, slot, &h)) != 0) goto fail;
  if (h.handle != handle || h.version != old_version) {
    rc = CAIRN_ECORRUPT;
    goto fail;
  }
  h.version = new_version;
  h.last_serial = 0;
  h.seq++;
  cs__header_encode(&s->g, &h, slot);
  if ((rc = cs__step(s, "setver.header")) != 0) goto fail;
  if ((rc = cs__pwrite(fd, slot, cs__slot_used(&s->g), cs__slot_off(&s->g, 1 - cur))) != 0)
    goto fail;
  if ((rc = cs__step(s, "setver.sync")) != 0) goto fail;
  if ((rc = cs__fdatasync(fd)) != 0) goto fail;
  if ((rc = cs__step(s, "setver.rename")) != 0) goto fail;
  if (rename(path, npath) != 0) {
    rc = cs__io_err(errno);
    goto fail;
  }
  renamed = true;
  if ((rc = cs__step(s, "setver.dirsync")) != 0) goto fail;
  if ((rc = cs__fsync_dir_of(npath)) != 0) goto fail;
  close(fd);
  free(slot);
  pthread_mutex_lock(&s->mu);
  e = cs__index_find(&s->index, handle);
  e->version = new_version;
  e->flags ^= CS__F_SLOTB;
  cs__change_end(s, handle);
  pthread_mutex_unlock(&s->mu);
  CMN_DEBUG(CS__MOD, "version set handle=%016" PRIx64 " old=%" PRIu64 " new=%" PRIu64, handle,
            old_version, new_version);
  return 0;
fail:
  if (fd >= 0) close(fd);
  free(slot);
  if (cs__crashed(s)) return rc;
  if (rc == CAIRN_ECORRUPT) cs__mark_corrupt(s, handle, old_version, gen, "bad header");
  pthread_mutex_lock(&s->mu);
  if (renamed) {
    /* The file carries the new name and header; only its dir fsync failed. */
    e = cs__index_find(&s->index, handle);
    e->version = new_version;
    e->flags ^= CS__F_SLOTB;
  }
  cs__change_end(s, handle);
  pthread_mutex_unlock(&s->mu);
  cs__dir_error(s, dir, rc, "set version", handle);
  return rc;
}

/* ---- delete ---- */

int cs_store_delete(cs_store *s, uint64_t handle, uint64_t version) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (handle == CS__NO_HANDLE) return CAIRN_EINVAL;
  pthread_mutex_lock(&s->mu);
  cs__entry *e = cs__index_find(&s->index, handle);
  if (!usable_entry(s, e)) {
    pthread_mutex_unlock(&s->mu);
    return CAIRN_ENOENT;
  }
  if (version != 0 && e->version != version) {
    pthread_mutex_unlock(&s->mu);
    return CAIRN_ESTALE;
  }
  cs__pending *p = cs__pending_find(s, handle);
  uint64_t side_serial = p && p->kind == CS_STORE_KIND_OVERWRITE ? p->serial : 0;
  unsigned dir = e->dir;
  uint64_t ver = e->version;
  cs__change_begin(s, e);
  pthread_mutex_unlock(&s->mu);

  char path[PATH_MAX];
  int rc = cs__step(s, "delete.unlink");
  if (rc != 0) goto fail;
  if (side_serial) {
    cs__side_path(s, dir, handle, ver, side_serial, path);
    if (unlink(path) != 0 && errno != ENOENT) CMN_WARN(CS__MOD, "cannot remove side file path=%s", path);
  }
  cs__chunk_path(s, dir, handle, ver, path);
  if (unlink(path) != 0 && errno != ENOENT) {
    rc = cs__io_err(errno);
    goto fail;
  }
  pthread_mutex_lock(&s->mu);
  cs__index_del(&s->index, handle);
  cs__pending_del(s, handle);
  pthread_cond_broadcast(&s->stable_cv);
  pthread_mutex_unlock(&s->mu);
  if ((rc = cs__step(s, "delete.dirsync")) != 0) return rc;
  rc = cs__fsync_dir_of(path);
  if (rc != 0) cs__dir_error(s, dir, rc, "delete", handle);
  CMN_DEBUG(CS__MOD, "deleted handle=%016" PRIx64 " version=%" PRIu64, handle, ver);
  return rc;
fail:
  if (cs__crashed(s)) return rc;
  pthread_mutex_lock(&s->mu);
  cs__change_end(s, handle);
  pthread_mutex_unlock(&s->mu);
  cs__dir_error(s, dir, rc, "delete", handle);
  return rc;
}

/* ---- queries ---- */

static void to_replica(const cs__entry *e, cs_store_replica *r) {
  r->handle = e->handle;
  r->version = e->version;
  r->length = e->length;
  r->corrupt = (e->flags & (CS__F_CORRUPT | CS__F_BADHDR)) != 0;
  r->pending = (e->flags & CS__F_PENDING) != 0;
  r->dir = e->dir;
}

int cs_store_info(cs_store *s, uint64_t handle, cs_store_replica *out) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (!out) return CAIRN_EINVAL;
  int rc = CAIRN_ENOENT;
  pthread_mutex_lock(&s->mu);
  cs__entry *e = cs__index_find(&s->index, handle);
  if (usable_entry(s, e)) {
    to_replica(e, out);
    rc = 0;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int cs_store_foreach(cs_store *s, cs_store_replica_fn cb, void *arg) {
  if (cs__crashed(s)) return CAIRN_EIO;
  if (!cb) return CAIRN_EINVAL;
  pthread_mutex_lock(&s->mu);
  size_t n = 0;
  cs_store_replica *snap = cmn_malloc((s->index.n ? s->index.n : 1) * sizeof *snap);
  for (size_t i = 0; i < s->index.cap; i++) {
    const cs__entry *e = &s->index.slots[i];
    if (e->handle != CS__NO_HANDLE && usable_entry(s, e)) to_replica(e, &snap[n++]);
  }
  pthread_mutex_unlock(&s->mu);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) rc = cb(arg, &snap[i]);
  free(snap);
  return rc;
}

size_t cs_store_count(cs_store *s) {
  size_t n = 0;
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->index.cap; i++) {
    const cs__entry *e = &s->index.slots[i];
    if (e->handle != CS__NO_HANDLE && usable_entry(s, e)) n++;
  }
  pthread_mutex_unlock(&s->mu);
  return n;
}

/*
 * Space and health. statvfs runs without the lock; a read-only dir whose
 * retry interval has passed and that has room again is returned to service,
 * an ok dir below the reserve becomes read-only. Capacity and free space are
 * summed once per filesystem (several dirs may share one).
 */
int cs_store_stats(cs_store *s, cs_store_usage *out) {
  if (!out) return CAIRN_EINVAL;
  memset(out, 0, sizeof *out);
  out->ndirs = s->ndirs;
  int64_t now = cmn_mono_ms();
  for (size_t i = 0; i < s->ndirs; i++) {
    cs_store_dir_usage *d = &out->dirs[i];
    d->path = s->dirs[i].path;
    pthread_mutex_lock(&s->mu);
    cs_store_dir_state st = s->dirs[i].state;
    int64_t since = s->dirs[i].readonly_since_ms;
    pthread_mutex_unlock(&s->mu);
    if (st == CS_STORE_DIR_FAILED) continue;
    int err;
    d->free = dir_free(s, (unsigned)i, &d->capacity, &err);
    if (err) {
      set_dir_state(s, (unsigned)i, CS_STORE_DIR_FAILED, false, strerror(err));
      d->free = d->capacity = 0;
      continue;
    }
    if (st == CS_STORE_DIR_READ_ONLY && now - since >= s->opts.readonly_retry_ms &&
        d->free >= s->opts.reserve_bytes)
      set_dir_state(s, (unsigned)i, CS_STORE_DIR_OK, true, "free space available again");
    else if (st == CS_STORE_DIR_OK && d->free < s->opts.reserve_bytes)
      set_dir_state(s, (unsigned)i, CS_STORE_DIR_READ_ONLY, false, "free space below reserve");
    bool seen = false;
    for (size_t j = 0; j < i; j++)
      if (s->dirs[j].dev == s->dirs[i].dev && out->dirs[j].capacity) seen = true;
    if (!seen) {
      out->capacity += d->capacity;
      out->free += d->free;
    }
  }
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < s->ndirs; i++) out->dirs[i].state = s->dirs[i].state;
  for (size_t i = 0; i < s->index.cap; i++) {
    const cs__entry *e = &s->index.slots[i];
    if (e->handle == CS__NO_HANDLE || !usable_entry(s, e)) continue;
    out->dirs[e->dir].chunks++;
    out->chunks++;
    if (e->flags & (CS__F_CORRUPT | CS__F_BADHDR)) out->corrupt++;
    if (e->flags & CS__F_PENDING) out->pending++;
  }
  pthread_mutex_unlock(&s->mu);
  return 0;
}
