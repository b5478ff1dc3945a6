/*
 * status.c - what the master tells operators: the GetClusterStatus RPC (for
 * `cairn status` and `cairn fsck`) and /status over HTTP, as JSON or, when a
 * browser asks for HTML, as a small page. Both come from one snapshot taken
 * under the shared lock.
 */
#include "mst_master.h"

#include "cairn_error.h"
#include "cmn_util.h"
#include "mst_background.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A copy of everything shown, taken under the lock so the answer can be
 * rendered without it. */
struct srv_row {
  char id[MST_SERVER_ID_MAX + 1];
  char data_addr[MST_SERVER_ADDR_MAX + 1];
  char rpc_addr[MST_SERVER_ADDR_MAX + 1];
  char zone[MST_SERVER_ZONE_MAX + 1];
  const char *state;
  bool read_only;
  uint64_t capacity, free;
  uint32_t chunks;
  int64_t last_hb_ms;
};

struct snapshot {
  char cluster_id[37];
  mst_ns_counts ns;
  mst_chunks_stats ch;
  mst_servers_totals tot;
  struct srv_row *rows;
  size_t nrows;
  mst_bg_stats bg;
  uint64_t corrupt;
  uint64_t ckpt_lsn, last_lsn, durable_lsn;
  int64_t now_ms;
  uint64_t chunk_size;
};

static int count_corrupt(void *arg, const mst_chunk_info *ci) {
  if (ci->flags & MST_CHUNK_F_CORRUPT) (*(uint64_t *)arg)++;
  return 0;
}

static void take_snapshot(mst_master *m, struct snapshot *s) {
  memset(s, 0, sizeof *s);
  s->now_ms = mst_now_ms();
  pthread_rwlock_rdlock(&m->lock);
  snprintf(s->cluster_id, sizeof s->cluster_id, "%s", m->cluster_id);
  mst_ns_get_counts(m->ns, &s->ns);
  mst_chunks_get_stats(m->chunks, &s->ch);
  mst_servers_get_totals(m->servers, &s->tot);
  mst_background_stats(m, &s->bg);
  /* O(chunks), but only when someone asks for status. */
  mst_chunks_iterate(m->chunks, count_corrupt, &s->corrupt);
  s->chunk_size = m->cfg.chunk_size;
  size_t n = mst_servers_count(m->servers);
  s->rows = cmn_calloc(n + 1, sizeof *s->rows);
  for (size_t i = 0; i < n; i++) {
    const mst_server *sv = mst_servers_get(m->servers, (uint16_t)i);
    if (!sv) continue;
    struct srv_row *r = &s->rows[s->nrows++];
    snprintf(r->id, sizeof r->id, "%s", sv->id);
    snprintf(r->data_addr, sizeof r->data_addr, "%s", sv->data_addr);
    snprintf(r->rpc_addr, sizeof r->rpc_addr, "%s", sv->rpc_addr);
    snprintf(r->zone, sizeof r->zone, "%s", sv->zone);
    r->state = mst_server_state_name(mst_server_state_of(sv));
    r->read_only = sv->read_only;
    r->capacity = sv->capacity_bytes;
    r->free = sv->free_bytes;
    r->chunks = sv->chunk_count;
    r->last_hb_ms = sv->last_heartbeat_ms;
  }
  s->ckpt_lsn = m->ckpt_lsn;
  pthread_rwlock_unlock(&m->lock);
  if (m->log) {
    mst_oplog_stats st;
    mst_oplog_stats_get(m->log, &st);
    s->last_lsn = st.last_lsn;
    s->durable_lsn = st.durable_lsn;
  }
}

/* ---- RPC ------------------------------------------------------------------- */

void mst_svc_cluster_status(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  (void)msg;
  mst_master *m = ctx;
  struct snapshot s;
  take_snapshot(m, &s);
  Cairn__V1__ServerStatus *st = cmn_calloc(s.nrows + 1, sizeof *st);
  Cairn__V1__ServerAddress *ad = cmn_calloc(s.nrows + 1, sizeof *ad);
  Cairn__V1__ServerStatus **ptrs = cmn_calloc(s.nrows + 1, sizeof *ptrs);
  for (size_t i = 0; i < s.nrows; i++) {
    struct srv_row *r = &s.rows[i];
    cairn__v1__server_address__init(&ad[i]);
    ad[i].id = r->id;
    ad[i].data_addr = r->data_addr;
    ad[i].rpc_addr = r->rpc_addr;
    ad[i].zone = r->zone;
    cairn__v1__server_status__init(&st[i]);
    st[i].addr = &ad[i];
    st[i].state = (char *)(r->read_only && strcmp(r->state, "dead") != 0 ? "read-only" : r->state);
    st[i].capacity_bytes = r->capacity;
    st[i].free_bytes = r->free;
    st[i].chunk_count = r->chunks;
    st[i].last_heartbeat_ms = r->last_hb_ms;
    ptrs[i] = &st[i];
  }
  Cairn__V1__ClusterStatusReply rep = CAIRN__V1__CLUSTER_STATUS_REPLY__INIT;
  rep.cluster_id = s.cluster_id;
  rep.n_servers = s.nrows;
  rep.servers = ptrs;
  rep.files = s.ns.files;
  rep.directories = s.ns.dirs;
  rep.chunks = s.ch.chunks;
  rep.under_replicated = s.ch.under_replicated;
  rep.missing = s.ch.missing;
  rep.repair_queue = s.ch.queued;
  rep.corrupt = s.corrupt;
  rep.clones_in_flight = s.bg.clones_in_flight;
  rep.chunk_size = s.chunk_size;
  rep.capacity_bytes = s.tot.capacity_bytes;
  rep.free_bytes = s.tot.free_bytes;
  cmn_rpc_reply(call, &rep.base);
  free(st);
  free(ad);
  free(ptrs);
  free(s.rows);
}

/* ---- HTTP ------------------------------------------------------------------ */

static void render_json(const struct snapshot *s, cmn_buf *b) {
  cmn_buf_appendf(b, "{\"cluster_id\":\"%s\",\"chunk_size\":%llu,", s->cluster_id,
                  (unsigned long long)s->chunk_size);
  cmn_buf_appendf(b,
                  "\"namespace\":{\"files\":%llu,\"directories\":%llu,\"trash_entries\":%llu},",
                  (unsigned long long)s->ns.files, (unsigned long long)s->ns.dirs,
                  (unsigned long long)s->ns.trash_entries);
  cmn_buf_appendf(b,
                  "\"chunks\":{\"total\":%llu,\"under_replicated\":%llu,\"missing\":%llu,"
                  "\"repair_queue\":%llu,\"waiting_for_a_replica\":%llu,\"leases\":%llu},",
                  (unsigned long long)s->ch.chunks, (unsigned long long)s->ch.under_replicated,
                  (unsigned long long)s->ch.missing, (unsigned long long)s->ch.queued,
                  (unsigned long long)s->ch.queued_missing, (unsigned long long)s->ch.leases);
  cmn_buf_appendf(b,
                  "\"repair\":{\"corrupt_chunks\":%llu,\"clones_in_flight\":%llu,"
                  "\"moves_in_flight\":%llu,\"clones_started\":%llu,\"clones_done\":%llu,"
                  "\"clones_failed\":%llu,\"clones_abandoned\":%llu,\"moves_done\":%llu,"
                  "\"deletes_ordered\":%llu,\"extra_copies_trimmed\":%llu,\"trash_purged\":%llu,"
                  "\"watched\":%llu,\"servers_died\":%llu,\"instructions_pending\":%llu},",
                  (unsigned long long)s->corrupt, (unsigned long long)s->bg.clones_in_flight,
                  (unsigned long long)s->bg.moves_in_flight, (unsigned long long)s->bg.clones_started,
                  (unsigned long long)s->bg.clones_done, (unsigned long long)s->bg.clones_failed,
                  (unsigned long long)s->bg.clones_abandoned, (unsigned long long)s->bg.moves_done,
                  (unsigned long long)s->bg.deletes_ordered, (unsigned long long)s->bg.trimmed,
                  (unsigned long long)s->bg.purged, (unsigned long long)s->bg.watched,
                  (unsigned long long)s->bg.servers_died, (unsigned long long)s->tot.pending);
  cmn_buf_appendf(b,
                  "\"space\":{\"capacity_bytes\":%llu,\"free_bytes\":%llu,\"average_use\":%.4f},",
                  (unsigned long long)s->tot.capacity_bytes, (unsigned long long)s->tot.free_bytes,
                  s->tot.avg_util);
  cmn_buf_appendf(b, "\"oplog\":{\"last_lsn\":%llu,\"durable_lsn\":%llu,\"checkpoint_lsn\":%llu},",
                  (unsigned long long)s->last_lsn, (unsigned long long)s->durable_lsn,
                  (unsigned long long)s->ckpt_lsn);
  cmn_buf_append(b, "\"servers\":[", 11);
  for (size_t i = 0; i < s->nrows; i++) {
    const struct srv_row *r = &s->rows[i];
    if (i) cmn_buf_append(b, ",", 1);
    cmn_buf_append(b, "{\"id\":", 6);
    cmn_buf_append_json_str(b, r->id);
    cmn_buf_append(b, ",\"data_addr\":", 13);
    cmn_buf_append_json_str(b, r->data_addr);
    cmn_buf_append(b, ",\"rpc_addr\":", 12);
    cmn_buf_append_json_str(b, r->rpc_addr);
    cmn_buf_append(b, ",\"zone\":", 8);
    cmn_buf_append_json_str(b, r->zone);
    cmn_buf_appendf(b,
                    ",\"state\":\"%s\",\"read_only\":%s,\"capacity_bytes\":%llu,\"free_bytes\":%llu,"
                    "\"chunks\":%u,\"last_heartbeat_age_ms\":%lld}",
                    r->state, r->read_only ? "true" : "false", (unsigned long long)r->capacity,
                    (unsigned long long)r->free, r->chunks,
                    (long long)(r->last_hb_ms ? s->now_ms - r->last_hb_ms : -1));
  }
  cmn_buf_append(b, "]}\n", 3);
}

static void html_text(cmn_buf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '<': cmn_buf_append(b, "&lt;", 4); break;
    case '>': cmn_buf_append(b, "&gt;", 4); break;
    case '&': cmn_buf_append(b, "&amp;", 5); break;
    case '"': cmn_buf_append(b, "&quot;", 6); break;
    default: cmn_buf_append(b, s, 1);
    }
  }
}

static void render_html(const struct snapshot *s, cmn_buf *b) {
  cmn_buf_appendf(b,
                  "<!doctype html><html><head><meta charset=\"utf-8\"><title>cairn master</title>"
                  "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
                  "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
                  "th{background:#eee}.l{text-align:left}</style></head><body>"
                  "<h1>cairn master</h1><p>cluster %s &middot; chunk size %llu MiB</p>",
                  s->cluster_id, (unsigned long long)(s->chunk_size >> 20));
  cmn_buf_appendf(b,
                  "<table><tr><th>files</th><th>directories</th><th>chunks</th>"
                  "<th>under-replicated</th><th>missing</th><th>repair queue</th>"
                  "<th>clones in flight</th></tr><tr><td>%llu</td><td>%llu</td><td>%llu</td>"
                  "<td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td></tr></table>",
                  (unsigned long long)s->ns.files, (unsigned long long)s->ns.dirs,
                  (unsigned long long)s->ch.chunks, (unsigned long long)s->ch.under_replicated,
                  (unsigned long long)s->ch.missing, (unsigned long long)s->ch.queued,
                  (unsigned long long)s->bg.clones_in_flight);
  cmn_buf_append(b,
                 "<h2>chunkservers</h2><table><tr><th class=l>id</th><th class=l>data</th>"
                 "<th class=l>zone</th><th class=l>state</th><th>used</th><th>capacity</th>"
                 "<th>chunks</th><th>heartbeat</th></tr>",
                 strlen("<h2>chunkservers</h2><table><tr><th class=l>id</th><th class=l>data</th>"
                        "<th class=l>zone</th><th class=l>state</th><th>used</th><th>capacity</th>"
                        "<th>chunks</th><th>heartbeat</th></tr>"));
  for (size_t i = 0; i < s->nrows; i++) {
    const struct srv_row *r = &s->rows[i];
    cmn_buf_append(b, "<tr><td class=l>", 16);
    html_text(b, r->id);
    cmn_buf_append(b, "</td><td class=l>", 17);
    html_text(b, r->data_addr);
    cmn_buf_append(b, "</td><td class=l>", 17);
    html_text(b, r->zone);
    double used = r->capacity ? 100.0 * (double)(r->capacity - r->free) / (double)r->capacity : 0;
    cmn_buf_appendf(b,
                    "</td><td class=l>%s%s</td><td>%.1f%%</td><td>%llu GiB</td><td>%u</td>"
                    "<td>%.1f s ago</td></tr>",
                    r->state, r->read_only ? " (read-only)" : "", used,
                    (unsigned long long)(r->capacity >> 30), r->chunks,
                    r->last_hb_ms ? (double)(s->now_ms - r->last_hb_ms) / 1000.0 : -1.0);
  }
  cmn_buf_appendf(b, "</table><p>log: lsn %llu (durable %llu), checkpoint at %llu</p></body></html>\n",
                  (unsigned long long)s->last_lsn, (unsigned long long)s->durable_lsn,
                  (unsigned long long)s->ckpt_lsn);
}

void mst_status_http(const cmn_http_request *req, cmn_http_response *resp, void *arg) {
  mst_master *m = arg;
  struct snapshot s;
  take_snapshot(m, &s);
  const char *accept = cmn_http_req_header(req, "Accept");
  const char *fmt = cmn_http_req_query(req, "format");
  bool html = (accept && strstr(accept, "text/html")) && !(fmt && strcmp(fmt, "json") == 0);
  if (html) {
    cmn_http_resp_content_type(resp, "text/html; charset=utf-8");
    render_html(&s, cmn_http_resp_body(resp));
  } else {
    cmn_http_resp_content_type(resp, "application/json");
    render_json(&s, cmn_http_resp_body(resp));
  }
  free(s.rows);
}
