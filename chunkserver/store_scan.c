/*
 * store_scan.c - the start-up scan of cs_store_open: server ids, subfolders,
 * temp files, duplicate versions, header validation, intent resolution, and
 * the index. It runs before the store is shared, on the opening thread.
 *
 * Resolution of each replica's intent page (see store_internal.h):
 *   - a commit record for an OVERWRITE above the last committed serial: the
 *     commit was decided; redo it from the side file (copy + header), or mark
 *     the replica corrupt when the side file is gone or bad;
 *   - else a prepare record above the last committed serial whose data
 *     verifies (bytes past the committed length, or the side file): pending,
 *     for the 2PC layer to resolve (cs_store_pending);
 *   - else: the records are obsolete (already committed), torn, or describe
 *     data that never became durable: cleared, the file cut back to the
 *     committed length, side files removed.
 * A replica without a valid header slot is kept, marked corrupt (reported to
 * the master, never served), rather than deleted: the master decides, and the
 * bytes stay available for inspection.
 */
#include "store_internal.h"

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct scan_file {
  uint64_t handle, version, serial;
  uint8_t dir;
  uint8_t type; /* cs__file_type */
} scan_file;

typedef struct scan_list {
  scan_file *v;
  size_t n, cap;
} scan_list;

typedef struct scan_counts {
  size_t replicas, corrupt, pending, redone, dropped, cleared, tmp, stale, orphans, renamed,
      truncated, unknown;
} scan_counts;

static void list_push(scan_list *l, const scan_file *f) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 64;
    l->v = cmn_realloc(l->v, l->cap * sizeof *l->v);
  }
  l->v[l->n++] = *f;
}

static void fail_dir(cs_store *s, unsigned dir, const char *what, int err) {
  if (s->dirs[dir].state == CS_STORE_DIR_FAILED) return;
  s->dirs[dir].state = CS_STORE_DIR_FAILED;
  CMN_ERROR(CS__MOD, "data dir failed at start dir=%s step=%s errno=\"%s\"", s->dirs[dir].path,
            what, strerror(err));
}

/* ---- server id ---- */

/*
 * Create each dir if missing, refuse duplicates (same inode), read every ID
 * file, refuse two different or malformed ids, and give the dirs without one
 * the common id (a fresh UUID on the very first start).
 */
static int load_ids(cs_store *s) {
  char ids[CS_STORE_MAX_DIRS][37];
  bool have[CS_STORE_MAX_DIRS] = {false};
  int first = -1;
  for (size_t i = 0; i < s->ndirs; i++) {
    cs__dir *d = &s->dirs[i];
    if (mkdir(d->path, 0755) != 0 && errno != EEXIST) {
      fail_dir(s, (unsigned)i, "mkdir", errno);
      continue;
    }
    struct stat st;
    if (stat(d->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
      CMN_ERROR(CS__MOD, "data dir is not a directory dir=%s", d->path);
      return CAIRN_EINVAL;
    }
    d->dev = st.st_dev;
    for (size_t j = 0; j < i; j++) {
      struct stat o;
      if (s->dirs[j].state != CS_STORE_DIR_FAILED && stat(s->dirs[j].path, &o) == 0 &&
          o.st_dev == st.st_dev && o.st_ino == st.st_ino) {
        CMN_ERROR(CS__MOD, "data dir listed twice dir=%s same_as=%s", d->path, s->dirs[j].path);
        return CAIRN_EINVAL;
      }
    }
    char *path = cmn_sprintf("%s/ID", d->path), *buf = NULL;
    size_t len = 0;
    int rc = cmn_read_file(path, 256, &buf, &len);
    free(path);
    if (rc == CAIRN_ENOENT) continue;
    if (rc != 0) {
      fail_dir(s, (unsigned)i, "read ID", EIO);
      continue;
    }
    while (len > 0 && isspace((unsigned char)buf[len - 1])) buf[--len] = '\0';
    if (!cmn_uuid_valid(buf)) {
      CMN_ERROR(CS__MOD, "malformed server id dir=%s", d->path);
      free(buf);
      return CAIRN_ECONFIG;
    }
    memcpy(ids[i], buf, 37);
    free(buf);
    have[i] = true;
    if (first < 0) {
      first = (int)i;
    } else if (strcasecmp(ids[i], ids[first]) != 0) {
      CMN_ERROR(CS__MOD, "data dirs belong to different servers dir=%s id=%s dir=%s id=%s",
                s->dirs[first].path, ids[first], d->path, ids[i]);
      return CAIRN_ECONFIG;
    }
  }
  if (first >= 0) {
    memcpy(s->id, ids[first], 37);
  } else {
    int rc = cmn_uuid_v4(s->id);
    if (rc != 0) return rc;
    CMN_INFO(CS__MOD, "new server id id=%s", s->id);
  }
  char line[40];
  snprintf(line, sizeof line, "%s\n", s->id);
  for (size_t i = 0; i < s->ndirs; i++) {
    if (have[i] || s->dirs[i].state == CS_STORE_DIR_FAILED) continue;
    char *path = cmn_sprintf("%s/ID", s->dirs[i].path);
    int rc = cmn_write_file_atomic(path, line, strlen(line), 0644);
    free(path);
    if (rc != 0) fail_dir(s, (unsigned)i, "write ID", EIO);
  }
  return 0;
}

/* ---- listing ---- */

/* Create the 256 subfolders of a dir, remove temp files, and collect the
 * replica and side files. Unknown names are left alone (and counted). */
static int list_dir(cs_store *s, unsigned dir, scan_list *files, scan_counts *c) {
  char sub[PATH_MAX], path[PATH_MAX + 256];
  for (unsigned x = 0; x < 256; x++) {
    snprintf(sub, sizeof sub, "%s/%02x", s->dirs[dir].path, x);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST) {
      fail_dir(s, dir, "mkdir subfolder", errno);
      return CAIRN_EIO;
    }
    DIR *d = opendir(sub);
    if (!d) {
      fail_dir(s, dir, "opendir", errno);
      return CAIRN_EIO;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
      if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
        continue;
      scan_file f = {.dir = (uint8_t)dir};
      f.type = (uint8_t)cs__parse_name(de->d_name, &f.handle, &f.version, &f.serial);
      snprintf(path, sizeof path, "%s/%s", sub, de->d_name);
      if (f.type == CS__FILE_TMP) {
        if (unlink(path) == 0) c->tmp++;
        continue;
      }
      if ((f.type == CS__FILE_CHUNK || f.type == CS__FILE_SIDE) && (f.handle & 0xff) != x)
        f.type = CS__FILE_OTHER; /* misplaced: not ours to interpret */
      if (f.type == CS__FILE_OTHER) {
        CMN_DEBUG(CS__MOD, "unknown file left alone path=%s", path);
        c->unknown++;
        continue;
      }
      list_push(files, &f);
    }
    closedir(d);
  }
  return 0;
}

/* Replica files by handle, highest version first; side files after. */
static int cmp_files(const void *a, const void *b) {
  const scan_file *x = a, *y = b;
  if (x->type != y->type) return x->type < y->type ? -1 : 1;
  if (x->handle != y->handle) return x->handle < y->handle ? -1 : 1;
  if (x->version != y->version) return x->version > y->version ? -1 : 1;
  return x->dir < y->dir ? -1 : x->dir > y->dir;
}

/* ---- one replica ---- */

static bool rec_applies(const cs__intent_rec *r, int rc, const cs__header *h, uint64_t chunk) {
  return rc == 0 && r->handle == h->handle && r->version == h->version &&
         r->serial > h->last_serial && r->old_len == h->committed && r->new_len <= chunk &&
         r->offset <= r->old_len &&
         (r->kind == CS_STORE_KIND_OVERWRITE || r->offset == r->old_len);
}

/* Does the data of prepared mutation p verify (so the yes vote it backed can
 * be honoured)? */
static bool prepared_ok(cs_store *s, unsigned dir, int fd, uint64_t size, const cs__pending *p,
                        unsigned char *scratch) {
  if (p->kind == CS_STORE_KIND_OVERWRITE) return cs__side_walk(s, dir, p, -1, NULL, scratch) == 0;
  if (p->new_len - p->old_len != p->length || size < s->g.data_off + p->new_len) return false;
  uint32_t crc;
  if (cs__range_crc(fd, s->g.data_off + p->old_len, p->length, scratch, &crc) != 0) return false;
  return crc == p->crc;
}

/*
 * Resolve the intent page of a replica with a valid current header `h`
 * (slot `cur`, bytes in `slot`): redo a decided commit, keep a verified
 * prepare pending, or clear what is left and cut the file back to the
 * committed length. Updates *e (length, slot, flags). 0 or CAIRN_EIO.
 */
static int resolve_intent(cs_store *s, const scan_file *f, int fd, cs__header *h, int cur,
                          unsigned char *slot, unsigned char *scratch, cs__entry *e,
                          scan_counts *c) {
  unsigned char page[CS__REC_DECIDED_OFF + CS__REC_SIZE] = {0};
  struct stat st;
  if (fstat(fd, &st) != 0 || cs__pread(fd, page, sizeof page, s->g.intent_off) < 0)
    return CAIRN_EIO;
  uint64_t size = (uint64_t)st.st_size;
  cs__intent_rec pr, dr;
  int prc = cs__intent_decode(page, &pr), drc = cs__intent_decode(page + CS__REC_DECIDED_OFF, &dr);
  bool have = false, decided = false, changed = false;
  if (rec_applies(&dr, drc, h, s->g.chunk_size) && dr.state == CS__REC_DECIDED &&
      dr.kind == CS_STORE_KIND_OVERWRITE) {
    have = decided = true;
    pr = dr;
  } else if (rec_applies(&pr, prc, h, s->g.chunk_size) && pr.state == CS__REC_PREPARED) {
    have = true;
  }
  cs__pending p = {0};
  if (have)
    p = (cs__pending){.handle = pr.handle, .version = pr.version, .serial = pr.serial,
                      .offset = pr.offset, .length = pr.length, .old_len = pr.old_len,
                      .new_len = pr.new_len, .crc = pr.crc, .kind = (uint8_t)pr.kind};
  if (decided) {
    int rc = cs__apply_side(s, f->dir, fd, &p, cur, h, slot, scratch);
    if (rc == CAIRN_EIO) return rc;
    if (rc == 0) {
      char side[PATH_MAX];
      e->length = (uint32_t)p.new_len;
      e->flags ^= CS__F_SLOTB;
      cs__clear_intent(s, fd);
      changed = true;
      cs__side_path(s, f->dir, f->handle, h->version, p.serial, side);
      unlink(side);
      c->redone++;
      CMN_INFO(CS__MOD, "finished interrupted commit handle=%016" PRIx64 " serial=%" PRIu64,
               f->handle, p.serial);
    } else {
      /* The records stay, as evidence; the master replaces the replica. */
      CMN_ERROR(CS__MOD, "decided commit cannot be redone, replica corrupt handle=%016" PRIx64
                " serial=%" PRIu64 " error=%s", f->handle, p.serial, cairn_err_name(rc));
      e->flags |= CS__F_CORRUPT;
      c->corrupt++;
    }
  } else if (have && prepared_ok(s, f->dir, fd, size, &p, scratch)) {
    if (p.kind != CS_STORE_KIND_OVERWRITE && size > s->g.data_off + p.new_len) {
      if (cs__truncate_to(s, fd, p.new_len) != 0) return CAIRN_EIO;
      changed = true;
    }
    cs__pending_add(s, &p);
    e->flags |= CS__F_PENDING;
    c->pending++;
    CMN_INFO(CS__MOD, "prepared mutation pending handle=%016" PRIx64 " version=%" PRIu64
             " serial=%" PRIu64 " offset=%" PRIu64 " length=%" PRIu64, f->handle, h->version,
             p.serial, p.offset, p.length);
  } else {
    if (have) {
      CMN_WARN(CS__MOD, "prepared mutation dropped: its data does not verify handle=%016" PRIx64
               " serial=%" PRIu64, f->handle, p.serial);
      c->dropped++;
    } else if (prc != CAIRN_ENOENT || drc != CAIRN_ENOENT) {
      c->cleared++; /* obsolete (already committed) or torn records */
    }
    if (have || prc != CAIRN_ENOENT || drc != CAIRN_ENOENT) {
      if (cs__clear_intent(s, fd) != 0) return CAIRN_EIO;
      changed = true;
    }
    if (size > s->g.data_off + h->committed) {
      if (cs__truncate_to(s, fd, h->committed) != 0) return CAIRN_EIO;
      c->truncated++;
      changed = true;
    }
  }
  if (changed && cs__fdatasync(fd) != 0) return CAIRN_EIO;
  if (fstat(fd, &st) != 0) return CAIRN_EIO;
  if ((uint64_t)st.st_size < s->g.data_off + e->length && !(e->flags & CS__F_CORRUPT)) {
    CMN_WARN(CS__MOD, "replica shorter than its committed length, corrupt handle=%016" PRIx64,
             f->handle);
    e->flags |= CS__F_CORRUPT;
    c->corrupt++;
  }
  return 0;
}

/*
 * Validate one replica file (pick the current header slot, finish an
 * interrupted version change), resolve its intent, and index it. Returns 0
 * (also when the file is skipped or found corrupt) or CAIRN_EIO (the dir is
 * failing).
 */
static int scan_replica(cs_store *s, scan_file *f, scan_counts *c) {
  char path[PATH_MAX], npath[PATH_MAX];
  cs__chunk_path(s, f->dir, f->handle, f->version, path);
  size_t su = cs__slot_used(&s->g);
  unsigned char *slots = cmn_malloc(2 * su), *scratch = cmn_malloc(CS_STORE_BLOCK_SIZE);
  cs__entry e = {.handle = f->handle, .version = f->version, .dir = f->dir};
  cs__header hs[2];
  int ok[2] = {CAIRN_ECORRUPT, CAIRN_ECORRUPT};
  int rc = 0;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    CMN_WARN(CS__MOD, "cannot open replica path=%s errno=\"%s\"", path, strerror(errno));
    rc = errno == EIO ? CAIRN_EIO : 0;
    goto fail;
  }
  for (int i = 0; i < 2; i++) {
    ok[i] = cs__read_slot(&s->g, fd, i, slots + i * su, &hs[i]);
    if (ok[i] == CAIRN_EIO) {
      rc = CAIRN_EIO;
      goto fail;
    }
    if (ok[i] == 0 && hs[i].handle != f->handle) ok[i] = CAIRN_ECORRUPT;
  }
  int cur = ok[0] == 0 && (ok[1] != 0 || !cs__seq_newer(hs[1].seq, hs[0].seq)) ? 0 : 1;
  if (ok[cur] != 0 || hs[cur].version < f->version) {
    CMN_WARN(CS__MOD, "replica without a valid header kept as corrupt path=%s", path);
    e.flags = CS__F_BADHDR | CS__F_CORRUPT;
    c->corrupt++;
  } else {
    cs__header *h = &hs[cur];
    if (h->version > f->version) {
      /* set_version wrote the header, a crash came before the rename. */
      cs__chunk_path(s, f->dir, f->handle, h->version, npath);
      if (rename(path, npath) != 0 || cs__fsync_dir_of(npath) != 0) {
        rc = CAIRN_EIO;
        goto fail;
      }
      CMN_INFO(CS__MOD, "finished version change handle=%016" PRIx64 " version=%" PRIu64,
               f->handle, h->version);
      f->version = h->version;
      c->renamed++;
    }
    e.version = h->version;
    e.length = (uint32_t)h->committed;
    if (cur == 1) e.flags |= CS__F_SLOTB;
    rc = resolve_intent(s, f, fd, h, cur, slots + cur * su, scratch, &e, c);
    if (rc != 0) goto fail;
  }
  cs__index_put(&s->index, &e);
  c->replicas++;
fail:
  if (fd >= 0) close(fd);
  free(slots);
  free(scratch);
  return rc;
}

/* Remove a side file unless a pending OVERWRITE on the same dir uses it. */
static void sweep_side(cs_store *s, const scan_file *f, scan_counts *c) {
  const cs__pending *p = cs__pending_find(s, f->handle);
  const cs__entry *e = cs__index_find(&s->index, f->handle);
  if (p && e && e->dir == f->dir && p->kind == CS_STORE_KIND_OVERWRITE &&
      p->version == f->version && p->serial == f->serial)
    return;
  char path[PATH_MAX];
  cs__side_path(s, f->dir, f->handle, f->version, f->serial, path);
  if (unlink(path) == 0) c->orphans++;
}

int cs__scan(cs_store *s) {
  int rc = load_ids(s);
  if (rc != 0) return rc;
  scan_list files = {0};
  scan_counts c = {0};
  for (size_t i = 0; i < s->ndirs; i++)
    if (s->dirs[i].state != CS_STORE_DIR_FAILED) list_dir(s, (unsigned)i, &files, &c);
  if (files.n) qsort(files.v, files.n, sizeof *files.v, cmp_files);
  for (size_t i = 0; i < files.n; i++) {
    scan_file *f = &files.v[i];
    if (s->dirs[f->dir].state == CS_STORE_DIR_FAILED) continue;
    if (f->type == CS__FILE_SIDE) {
      sweep_side(s, f, &c);
      continue;
    }
    if (i > 0 && files.v[i - 1].type == CS__FILE_CHUNK && files.v[i - 1].handle == f->handle) {
      /* A lower (or duplicate) version of a handle already kept. */
      char path[PATH_MAX];
      cs__chunk_path(s, f->dir, f->handle, f->version, path);
      CMN_INFO(CS__MOD, "removing superseded replica path=%s", path);
      if (unlink(path) == 0) c.stale++;
      continue;
    }
    if (scan_replica(s, f, &c) != 0) fail_dir(s, f->dir, "scan replica", EIO);
  }
  free(files.v);
  size_t usable = 0;
  for (size_t i = 0; i < s->ndirs; i++) usable += s->dirs[i].state != CS_STORE_DIR_FAILED;
  CMN_INFO(CS__MOD,
           "scan done id=%s dirs=%zu usable=%zu replicas=%zu corrupt=%zu pending=%zu "
           "commits_redone=%zu prepares_dropped=%zu records_cleared=%zu tmp_removed=%zu "
           "stale_removed=%zu side_removed=%zu renamed=%zu truncated=%zu unknown_files=%zu",
           s->id, s->ndirs, usable, c.replicas, c.corrupt, c.pending, c.redone, c.dropped,
           c.cleared, c.tmp, c.stale, c.orphans, c.renamed, c.truncated, c.unknown);
  return usable ? 0 : CAIRN_EIO;
}
