/*
 * main.c - cairn-master: parse the configuration, create a cluster
 * (--init) or start one: lock the data directory, recover the metadata,
 * serve cairn.v1.Master and /metrics, /healthz, /status, run background
 * work, and shut down in reverse order on SIGINT/SIGTERM.
 */
#include "mst_master.h"

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "cmn_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- start-up table ---------------------------------------------------------- */

static int start_lock(void *ctx) {
  mst_master *m = ctx;
  int fd = cmn_daemon_lock_dir(m->cfg.dir);
  if (fd == CAIRN_EBUSY) CMN_ERROR("main", "another master is running in dir=%s", m->cfg.dir);
  if (fd < 0) return fd;
  m->lock_fd = fd;
  return 0;
}

static void stop_lock(void *ctx) {
  mst_master *m = ctx;
  close(m->lock_fd);
  m->lock_fd = -1;
}

static int start_secret(void *ctx) {
  mst_master *m = ctx;
  char *path = *m->cfg.secret_file ? cmn_strdup(m->cfg.secret_file)
                                    : cmn_sprintf("%s/secret", m->cfg.dir);
  int rc = cmn_rpc_load_secret(path, &m->secret);
  if (rc != 0)
    CMN_ERROR("main", "cannot load the cluster secret file=%s error=%s", path, cairn_strerror(rc));
  free(path);
  return rc;
}

static int start_metadata(void *ctx) {
  mst_master *m = ctx;
  char err[512] = "";
  int rc = mst_recover(m, err, sizeof err);
  if (rc != 0) CMN_ERROR("main", "cannot load metadata: %s (%s)", err, cairn_strerror(rc));
  return rc;
}

static void stop_metadata(void *ctx) {
  mst_master *m = ctx;
  int rc = mst_oplog_close(m->log);
  if (rc != 0) CMN_ERROR("main", "closing the operation log failed error=%s", cairn_err_name(rc));
  m->log = NULL;
}

static int start_peers(void *ctx) {
  mst_master *m = ctx;
  cmn_rpc_client_config cc = {.secret = m->secret};
  return cmn_rpc_pool_create(&cc, &m->peers);
}

static void stop_peers(void *ctx) {
  mst_master *m = ctx;
  cmn_rpc_pool_destroy(m->peers);
  m->peers = NULL;
}

static int start_rpc(void *ctx) {
  mst_master *m = ctx;
  cmn_rpc_server_config rc = {
      .addr = m->cfg.listen,
      .secret = m->secret,
      .workers = (int)m->cfg.workers,
      .service = &cairn__v1__master__descriptor,
      .methods = mst_master_methods,
      .n_methods = mst_master_nmethods,
      .ctx = m,
      .metrics = m->metrics,
  };
  return cmn_rpc_server_start(&rc, &m->rpc);
}

static void stop_rpc(void *ctx) {
  mst_master *m = ctx;
  cmn_rpc_server_stop(m->rpc);
  m->rpc = NULL;
}

static int health(void *arg, cmn_buf *reason) {
  mst_master *m = arg;
  mst_oplog_stats st;
  mst_oplog_stats_get(m->log, &st);
  if (st.failed) {
    cmn_buf_appendf(reason, "operation log failed");
    return CAIRN_EIO;
  }
  return 0;
}

static double gauge_files(void *arg) {
  mst_master *m = arg;
  mst_ns_counts c;
  pthread_rwlock_rdlock(&m->lock);
  mst_ns_get_counts(m->ns, &c);
  pthread_rwlock_unlock(&m->lock);
  return (double)c.files;
}

static double chunk_stat(mst_master *m, int which) {
  mst_chunks_stats st;
  pthread_rwlock_rdlock(&m->lock);
  mst_chunks_get_stats(m->chunks, &st);
  pthread_rwlock_unlock(&m->lock);
  return (double)(which == 0 ? st.chunks : which == 1 ? st.under_replicated : which == 2 ? st.missing
                                                                                          : st.queued);
}
static double gauge_chunks(void *arg) { return chunk_stat(arg, 0); }
static double gauge_under(void *arg) { return chunk_stat(arg, 1); }
static double gauge_missing(void *arg) { return chunk_stat(arg, 2); }
static double gauge_queue(void *arg) { return chunk_stat(arg, 3); }

static double gauge_alive(void *arg) {
  mst_master *m = arg;
  mst_servers_totals t;
  pthread_rwlock_rdlock(&m->lock);
  mst_servers_get_totals(m->servers, &t);
  pthread_rwlock_unlock(&m->lock);
  return (double)t.by_state[MST_SERVER_ALIVE];
}

static int start_http(void *ctx) {
  mst_master *m = ctx;
  static const struct {
    const char *name, *help;
    cmn_gauge_fn fn;
  } gauges[] = {
      {"cairn_master_files", "files in the namespace (trash included)", gauge_files},
      {"cairn_master_chunks", "chunks in the chunk table", gauge_chunks},
      {"cairn_master_chunks_under_replicated", "chunks below their goal", gauge_under},
      {"cairn_master_chunks_missing", "chunks with no live replica", gauge_missing},
      {"cairn_master_repair_queue", "chunks waiting for re-replication", gauge_queue},
      {"cairn_master_chunkservers_alive", "chunkservers alive", gauge_alive},
  };
  for (size_t i = 0; i < CMN_ARRAY_LEN(gauges); i++) {
    int rc = cmn_gauge_register_fn(m->metrics, gauges[i].name, gauges[i].help, NULL, 0,
                                   gauges[i].fn, m);
    if (rc != 0) return rc;
  }
  m->health.fn = health;
  m->health.arg = m;
  cmn_http_route routes[] = {
      cmn_http_metrics_route(m->metrics),
      cmn_http_health_route(&m->health),
      {"GET", "/status", 0, mst_status_http, m},
  };
  cmn_http_config hc = {.bind = m->cfg.http_listen,
                        .routes = routes,
                        .nroutes = CMN_ARRAY_LEN(routes),
                        .metrics = m->metrics};
  return cmn_http_server_start(&m->http, &hc);
}

static void stop_http(void *ctx) {
  mst_master *m = ctx;
  cmn_http_server_stop(m->http);
  m->http = NULL;
}

static int start_background(void *ctx) { return mst_background_start(ctx); }
static void stop_background(void *ctx) { mst_background_stop(ctx); }

/* host part of "host:port" with the actual port: what tests and scripts use. */
static void bound(char *out, size_t n, const char *addr, int port) {
  const char *colon = strrchr(addr, ':');
  int hlen = colon ? (int)(colon - addr) : (int)strlen(addr);
  snprintf(out, n, "%.*s:%d", hlen, addr, port);
}

static int start_ready(void *ctx) {
  mst_master *m = ctx;
  char rpc[300], http[300];
  bound(rpc, sizeof rpc, m->cfg.listen, cmn_rpc_server_port(m->rpc));
  bound(http, sizeof http, m->cfg.http_listen, cmn_http_server_port(m->http));
  CMN_INFO("main", "master ready cluster_id=%s rpc=%s http=%s", m->cluster_id, rpc, http);
  if (!*m->cfg.ready_file) return 0;
  char *text = cmn_sprintf("rpc=%s\nhttp=%s\npid=%ld\n", rpc, http, (long)getpid());
  int rc = cmn_write_file_atomic(m->cfg.ready_file, text, strlen(text), 0644);
  free(text);
  return rc;
}

static const cmn_daemon_module modules[] = {
    {"lock", start_lock, stop_lock},
    {"secret", start_secret, NULL},
    {"metadata", start_metadata, stop_metadata},
    {"peers", start_peers, stop_peers},
    {"rpc", start_rpc, stop_rpc},
    {"http", start_http, stop_http},
    {"background", start_background, stop_background},
    {"ready", start_ready, NULL},
};

/* ---- main ------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  cmn_log_init("master");
  cmn_daemon_block_signals();
  /* --init is an action, not a setting: take it out before parsing. */
  bool init = false;
  int n = 0;
  for (int i = 0; i < argc; i++) {
    if (i > 0 && strcmp(argv[i], "--init") == 0) init = true;
    else argv[n++] = argv[i];
  }
  argc = n;

  mst_config cfg;
  memset(&cfg, 0, sizeof cfg);
  char err[512];
  int rc = cmn_config_defaults(&mst_config_spec, &cfg, err, sizeof err);
  if (rc == 0) rc = cmn_config_parse_args(&mst_config_spec, &cfg, argc, argv, NULL, err, sizeof err);
  if (rc == CMN_CONFIG_HELP) {
    char *help = cmn_config_help(&mst_config_spec);
    fputs(help, stdout);
    free(help);
    cmn_config_free(&mst_config_spec, &cfg);
    return 0;
  }
  if (rc == 0 && !*cfg.dir) {
    snprintf(err, sizeof err, "--dir is required");
    rc = CAIRN_ECONFIG;
  }
  if (rc != 0) {
    fprintf(stderr, "cairn-master: %s\n", err);
    cmn_config_free(&mst_config_spec, &cfg);
    return 2;
  }
  cmn_log_set_level((cmn_log_level)cfg.log_level);

  if (init) {
    rc = mst_init_cluster(&cfg, err, sizeof err);
    if (rc != 0) fprintf(stderr, "cairn-master: %s\n", err);
    else printf("created a new cluster in %s\n", cfg.dir);
    cmn_config_free(&mst_config_spec, &cfg);
    return rc == 0 ? 0 : 1;
  }

  char *dump = cmn_config_dump(&mst_config_spec, &cfg);
  for (char *p = dump; *p; p++)
    if (*p == '\n') *p = ';';
  CMN_INFO("main", "starting config=\"%s\"", dump);
  free(dump);

  mst_master m;
  rc = mst_master_init(&m, &cfg);
  if (rc == 0) rc = cmn_daemon_start_all(modules, CMN_ARRAY_LEN(modules), &m);
  if (rc != 0) {
    mst_master_destroy(&m);
    cmn_config_free(&mst_config_spec, &cfg);
    return 1;
  }
  int sig = cmn_daemon_wait_signal();
  CMN_INFO("main", "stopping signal=%d", sig);
  cmn_daemon_stop_all(modules, CMN_ARRAY_LEN(modules), &m);
  mst_master_destroy(&m);
  cmn_config_free(&mst_config_spec, &cfg);
  CMN_INFO("main", "stopped");
  return 0;
}
