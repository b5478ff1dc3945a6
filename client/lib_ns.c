/*
 * lib_ns.c - the namespace through the master: mkdir, stat, rename,
 * remove, undelete, set goal, directory listings; and the administration
 * calls (cluster status, drain).
 *
 * Every path is checked here with the master's own rules before anything
 * is sent, so bad input fails at once with CAIRN_EBADPATH or
 * CAIRN_ENAMETOOLONG and changes nothing. Reads and idempotent changes
 * are retried on retryable errors; other changes are not repeated after a
 * timeout (see cairn__master_call).
 */
#include "lib_internal.h"

#include "cairn_error.h"
#include "cmn_util.h"
#include "master.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ProtobufCBinaryData bytes_of(const char *s) {
  ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
  return b;
}

void cairn__stat_from_pb(const Cairn__V1__FileInfo *fi, cairn_stat *out) {
  memset(out, 0, sizeof *out);
  out->id = fi->file_id;
  out->type = fi->type == CAIRN__V1__FILE_TYPE__FILE_TYPE_DIR ? CAIRN_TYPE_DIR : CAIRN_TYPE_FILE;
  out->size = fi->size;
  out->mtime_ms = fi->mtime_ms;
  out->goal = fi->goal;
  out->chunks = fi->chunk_count;
  out->trashed_ms = fi->trashed_ms;
}

/* Call a method answering FileInfoReply; *st (may be NULL) gets the info. */
static int info_call(cairn_client *c, const char *method, const ProtobufCMessage *req,
                     cairn__call_kind kind, cairn_stat *st) {
  Cairn__V1__FileInfoReply *r = NULL;
  int rc = cairn__master_call(c, method, req, (ProtobufCMessage **)&r, kind);
  if (rc == 0 && st) {
    if (r->info) cairn__stat_from_pb(r->info, st);
    else rc = CAIRN_EPROTO;
  }
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

int cairn_mkdir(cairn_client *c, const char *path, int parents) {
  if (!c) return CAIRN_EINVAL;
  int rc = cairn__path_check(path);
  if (rc != 0) return rc;
  Cairn__V1__MkdirRequest req = CAIRN__V1__MKDIR_REQUEST__INIT;
  req.path = bytes_of(path);
  req.parents = parents != 0;
  return info_call(c, "Mkdir", &req.base, parents ? CAIRN__IDEMPOTENT : CAIRN__MUTATION, NULL);
}

int cairn_stat_path(cairn_client *c, const char *path, cairn_stat *out) {
  if (!c || !out) return CAIRN_EINVAL;
  int rc = cairn__path_check(path);
  if (rc != 0) return rc;
  Cairn__V1__PathRequest req = CAIRN__V1__PATH_REQUEST__INIT;
  req.path = bytes_of(path);
  return info_call(c, "Stat", &req.base, CAIRN__IDEMPOTENT, out);
}

int cairn_rename(cairn_client *c, const char *from, const char *to, int overwrite) {
  if (!c) return CAIRN_EINVAL;
  int rc = cairn__path_check(from);
  if (rc == 0) rc = cairn__path_check(to);
  if (rc != 0) return rc;
  Cairn__V1__RenameRequest req = CAIRN__V1__RENAME_REQUEST__INIT;
  req.from = bytes_of(from);
  req.to = bytes_of(to);
  req.overwrite = overwrite != 0;
  Cairn__V1__Empty *r = NULL;
  rc = cairn__master_call(c, "Rename", &req.base, (ProtobufCMessage **)&r, CAIRN__MUTATION);
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

int cairn_remove(cairn_client *c, const char *path, int recursive, char *trash_path, size_t n) {
  if (!c || (trash_path && n == 0)) return CAIRN_EINVAL;
  int rc = cairn__path_check(path);
  if (rc != 0) return rc;
  Cairn__V1__DeleteRequest req = CAIRN__V1__DELETE_REQUEST__INIT;
  req.path = bytes_of(path);
  req.recursive = recursive != 0;
  Cairn__V1__DeleteReply *r = NULL;
  rc = cairn__master_call(c, "Delete", &req.base, (ProtobufCMessage **)&r, CAIRN__MUTATION);
  if (rc == 0 && trash_path) snprintf(trash_path, n, "%s", r->trash_path ? r->trash_path : "");
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

int cairn_undelete(cairn_client *c, const char *trash_path, const char *restore_to) {
  if (!c) return CAIRN_EINVAL;
  int rc = cairn__path_check(trash_path);
  if (rc == 0 && restore_to) rc = cairn__path_check(restore_to);
  if (rc != 0) return rc;
  Cairn__V1__UndeleteRequest req = CAIRN__V1__UNDELETE_REQUEST__INIT;
  req.trash_path = bytes_of(trash_path);
  if (restore_to) req.restore_to = bytes_of(restore_to);
  return info_call(c, "Undelete", &req.base, CAIRN__MUTATION, NULL);
}

int cairn_set_goal(cairn_client *c, const char *path, uint32_t goal) {
  if (!c || goal < 1 || goal > 9) return CAIRN_EINVAL;
  int rc = cairn__path_check(path);
  if (rc != 0) return rc;
  Cairn__V1__SetGoalRequest req = CAIRN__V1__SET_GOAL_REQUEST__INIT;
  req.path = bytes_of(path);
  req.goal = goal;
  return info_call(c, "SetGoal", &req.base, CAIRN__IDEMPOTENT, NULL);
}

/* ---- listing ------------------------------------------------------------------------- */

struct cairn_list {
  cairn_client *c;
  char *path;
  Cairn__V1__ListReply *page; /* the current page, NULL before the first */
  size_t next;                /* entry of the page to hand out next */
  char *after;                /* the last name handed out (paging) */
  bool done;                  /* no page after this one */
};

int cairn_list_open(cairn_client *c, const char *path, cairn_list **out) {
  if (!c || !out) return CAIRN_EINVAL;
  int rc = cairn__path_check(path);
  if (rc != 0) return rc;
  cairn_list *l = cmn_calloc(1, sizeof *l);
  l->c = c;
  l->path = cmn_strdup(path);
  /* fetch the first page now, so a missing directory fails here */
  Cairn__V1__ListRequest req = CAIRN__V1__LIST_REQUEST__INIT;
  req.path = bytes_of(path);
  rc = cairn__master_call(c, "List", &req.base, (ProtobufCMessage **)&l->page, CAIRN__IDEMPOTENT);
  if (rc != 0) {
    cairn_list_close(l);
    return rc;
  }
  l->done = !l->page->more;
  *out = l;
  return 0;
}

int cairn_list_next(cairn_list *l, cairn_dirent *ent) {
  if (!l || !ent) return CAIRN_EINVAL;
  while (l->next >= l->page->n_entries) {
    if (l->done || l->page->n_entries == 0) return 0;
    const Cairn__V1__FileInfo *last = l->page->entries[l->page->n_entries - 1];
    free(l->after);
    l->after = cmn_strdup(last->path ? last->path : "");
    Cairn__V1__ListRequest req = CAIRN__V1__LIST_REQUEST__INIT;
    req.path = bytes_of(l->path);
    req.start_after = bytes_of(l->after);
    Cairn__V1__ListReply *page = NULL;
    int rc = cairn__master_call(l->c, "List", &req.base, (ProtobufCMessage **)&page,
                                CAIRN__IDEMPOTENT);
    if (rc != 0) return rc;
    protobuf_c_message_free_unpacked(&l->page->base, NULL);
    l->page = page;
    l->next = 0;
    l->done = !page->more;
  }
  const Cairn__V1__FileInfo *fi = l->page->entries[l->next++];
  ent->name = fi->path ? fi->path : "";
  cairn__stat_from_pb(fi, &ent->st);
  return 1;
}

void cairn_list_close(cairn_list *l) {
  if (!l) return;
  if (l->page) protobuf_c_message_free_unpacked(&l->page->base, NULL);
  free(l->after);
  free(l->path);
  free(l);
}

/* ---- administration ---------------------------------------------------------------- */

static void copy_str(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src ? src : "");
}

int cairn_cluster_status_get(cairn_client *c, cairn_cluster_status *out) {
  if (!c || !out) return CAIRN_EINVAL;
  Cairn__V1__ClusterStatusRequest req = CAIRN__V1__CLUSTER_STATUS_REQUEST__INIT;
  Cairn__V1__ClusterStatusReply *r = NULL;
  int rc = cairn__master_call(c, "GetClusterStatus", &req.base, (ProtobufCMessage **)&r,
                              CAIRN__IDEMPOTENT);
  if (rc != 0) return rc;
  memset(out, 0, sizeof *out);
  copy_str(out->cluster_id, sizeof out->cluster_id, r->cluster_id);
  out->files = r->files;
  out->directories = r->directories;
  out->chunks = r->chunks;
  out->under_replicated = r->under_replicated;
  out->missing = r->missing;
  out->corrupt = r->corrupt;
  out->repair_queue = r->repair_queue;
  out->clones_in_flight = r->clones_in_flight;
  out->capacity = r->capacity_bytes;
  out->free = r->free_bytes;
  out->nservers = r->n_servers;
  out->servers = cmn_calloc(r->n_servers ? r->n_servers : 1, sizeof *out->servers);
  for (size_t i = 0; i < r->n_servers; i++) {
    const Cairn__V1__ServerStatus *s = r->servers[i];
    cairn_server_status *d = &out->servers[i];
    if (s->addr) {
      copy_str(d->id, sizeof d->id, s->addr->id);
      copy_str(d->data_addr, sizeof d->data_addr, s->addr->data_addr);
      copy_str(d->zone, sizeof d->zone, s->addr->zone);
    }
    copy_str(d->state, sizeof d->state, s->state);
    d->capacity = s->capacity_bytes;
    d->free = s->free_bytes;
    d->chunks = s->chunk_count;
    d->last_heartbeat_ms = s->last_heartbeat_ms;
  }
  protobuf_c_message_free_unpacked(&r->base, NULL);
  return 0;
}

void cairn_cluster_status_free(cairn_cluster_status *s) {
  if (!s) return;
  free(s->servers);
  s->servers = NULL;
  s->nservers = 0;
}

int cairn_drain(cairn_client *c, const char *server_id, int cancel) {
  if (!c || !server_id || !*server_id || strlen(server_id) >= 64) return CAIRN_EINVAL;
  Cairn__V1__DrainRequest req = CAIRN__V1__DRAIN_REQUEST__INIT;
  req.server_id = (char *)server_id;
  req.cancel = cancel != 0;
  Cairn__V1__Empty *r = NULL;
  int rc = cairn__master_call(c, "Drain", &req.base, (ProtobufCMessage **)&r, CAIRN__IDEMPOTENT);
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}
