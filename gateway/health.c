/*
 * health.c - /healthz (is PostgreSQL answering, is the master answering)
 * and /metrics (Prometheus text).
 */
#include <stdlib.h>
#include <string.h>

#include "cairn_error.h"
#include "gw.h"
#include "gw_handlers.h"

void gw_h_health(gw_req *r) {
  gw_ctx *gw = r->gw;
  int db = gw_db_ping(gw->db);
  cairn_stat st;
  int master = cairn_stat_path(gw->probe, "/", &st);
  int ok = db == 0 && master == 0;
  json_t *body = json_pack("{s:s,s:s,s:s}", "status", ok ? "ok" : "unavailable", "postgres",
                           db == 0 ? "ok" : cairn_strerror(db), "master",
                           master == 0 ? "ok" : cairn_strerror(master));
  gw_reply_json(r, ok ? 200 : 503, body);
}

void gw_h_metrics(gw_req *r) {
  cmn_buf b = {0};
  cmn_metrics_render(r->gw->metrics, &b);
  size_t n = b.len;
  /* The buffer's memory (malloc'd) goes to the response as it is. */
  struct MHD_Response *resp = MHD_create_response_from_buffer(n, b.data, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    cmn_buf_free(&b);
    gw_reply_error(r, 500, "internal", "cannot build the reply");
    return;
  }
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; version=0.0.4");
  gw_reply_mhd(r, 200, resp, n);
}
