/*
 * cli_json.c - the JSON documents `cairn ... --json` prints, built with
 * jansson from the library's structs (see cli_util.h for their fields).
 *
 * Field names are part of the tool's interface for scripts: add fields,
 * never rename or retype one.
 */
#include "cli_util.h"

#include "cairn_error.h"

#include <stdlib.h>
#include <string.h>

/* jansson integers are signed 64-bit; nothing in a cluster reaches 2^63. */
static json_t *ju64(uint64_t v) {
  return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static void set_u64(json_t *o, const char *key, uint64_t v) { json_object_set_new(o, key, ju64(v)); }

static void set_str(json_t *o, const char *key, const char *v) {
  json_object_set_new(o, key, json_string(v ? v : ""));
}

json_t *cli_json_stat(const char *path, const cairn_stat *st) {
  json_t *o = json_object();
  char when[40];
  char *name = cli_basename(path);
  set_str(o, "path", path);
  set_str(o, "name", name);
  free(name);
  set_u64(o, "id", st->id);
  set_str(o, "type", st->type == CAIRN_TYPE_DIR ? "dir" : "file");
  set_u64(o, "size", st->size);
  set_u64(o, "chunks", st->chunks);
  set_u64(o, "goal", st->goal);
  json_object_set_new(o, "mtime_ms", json_integer(st->mtime_ms));
  cli_fmt_time(st->mtime_ms, when, sizeof when);
  set_str(o, "mtime", when);
  if (st->trashed_ms > 0) json_object_set_new(o, "trashed_ms", json_integer(st->trashed_ms));
  return o;
}

/* Servers by state, for the summaries. */
static size_t count_state(const cairn_cluster_status *s, const char *state) {
  size_t n = 0;
  for (size_t i = 0; i < s->nservers; i++)
    if (strcmp(s->servers[i].state, state) == 0) n++;
  return n;
}

json_t *cli_json_status(const cairn_cluster_status *s) {
  json_t *o = json_object(), *servers = json_array();
  set_str(o, "cluster_id", s->cluster_id);
  set_u64(o, "files", s->files);
  set_u64(o, "directories", s->directories);
  set_u64(o, "chunks", s->chunks);
  set_u64(o, "under_replicated", s->under_replicated);
  set_u64(o, "missing", s->missing);
  set_u64(o, "corrupt", s->corrupt);
  set_u64(o, "repair_queue", s->repair_queue);
  set_u64(o, "clones_in_flight", s->clones_in_flight);
  set_u64(o, "capacity", s->capacity);
  set_u64(o, "free", s->free);
  set_u64(o, "used", s->capacity > s->free ? s->capacity - s->free : 0);
  json_object_set_new(o, "healthy", json_boolean(cli_fsck_healthy(s)));
  for (size_t i = 0; i < s->nservers; i++) {
    const cairn_server_status *v = &s->servers[i];
    json_t *e = json_object();
    set_str(e, "id", v->id);
    set_str(e, "state", v->state);
    set_str(e, "zone", v->zone);
    set_str(e, "data_addr", v->data_addr);
    set_u64(e, "capacity", v->capacity);
    set_u64(e, "free", v->free);
    set_u64(e, "used", v->capacity > v->free ? v->capacity - v->free : 0);
    set_u64(e, "chunks", v->chunks);
    json_object_set_new(e, "last_heartbeat_ms", json_integer(v->last_heartbeat_ms));
    json_array_append_new(servers, e);
  }
  json_object_set_new(o, "servers", servers);
  return o;
}

int cli_fsck_healthy(const cairn_cluster_status *s) {
  return s->missing == 0 && s->corrupt == 0 && s->under_replicated == 0;
}

json_t *cli_json_fsck(const cairn_cluster_status *s) {
  json_t *o = json_object();
  json_object_set_new(o, "healthy", json_boolean(cli_fsck_healthy(s)));
  set_u64(o, "files", s->files);
  set_u64(o, "directories", s->directories);
  set_u64(o, "chunks", s->chunks);
  set_u64(o, "under_replicated", s->under_replicated);
  set_u64(o, "missing", s->missing);
  set_u64(o, "corrupt", s->corrupt);
  set_u64(o, "repair_queue", s->repair_queue);
  set_u64(o, "clones_in_flight", s->clones_in_flight);
  set_u64(o, "servers", s->nservers);
  set_u64(o, "servers_alive", count_state(s, "alive"));
  set_u64(o, "servers_dead", count_state(s, "dead"));
  set_u64(o, "servers_draining", count_state(s, "draining"));
  set_u64(o, "capacity", s->capacity);
  set_u64(o, "free", s->free);
  return o;
}

int cli_json_print(FILE *f, json_t *j) {
  int rc = json_dumpf(j, f, JSON_INDENT(2)) == 0 && fputc('\n', f) != EOF ? 0 : CAIRN_EIO;
  json_decref(j);
  if (rc == 0 && fflush(f) != 0) rc = CAIRN_EIO;
  return rc;
}
