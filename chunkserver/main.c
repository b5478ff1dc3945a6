/*
 * main.c - cairn-chunkserver: parse the configuration, lock and open the
 * data directories, and start the parts in order — push buffer, two-phase
 * commit state, RPC service, data plane (its libuv loop on a thread of its
 * own), recovery of undecided mutations, heartbeats, scrubber, HTTP — then
 * wait for SIGINT/SIGTERM and stop them in reverse order.
 */
#include "cs_server.h"

#include "cairn_error.h"
#include "cmn_daemon.h"
#include "cmn_log.h"
#include "cmn_util.h"
#include "cs_dataplane.h"
#include "cs_heartbeat.h"
#include "cs_scrub.h"
#include "cs_service.h"
#include "cs_twopc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

/* What main() keeps beside the shared context. */
struct daemon {
  cs_server s;
  char **dirs;
  size_t ndirs;
  uv_loop_t loop;
  uv_async_t stop_async;
  pthread_t loop_thread;
  bool loop_running;
  pthread_t recover_thread;
  bool recovering;
  char host[256];
};

/* ---- helpers ----------------------------------------------------------------------- */

/* Split "a,b,c" into a NULL-terminated array of trimmed, non-empty parts. */
static int split_dirs(const char *list, char ***out, size_t *n) {
  char *copy = cmn_strdup(list), *save = NULL;
  char **v = NULL;
  size_t k = 0;
  for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ') t++;
    size_t l = strlen(t);
    while (l > 0 && t[l - 1] == ' ') t[--l] = '\0';
    if (!*t) continue;
    v = cmn_realloc(v, (k + 2) * sizeof *v);
    v[k++] = cmn_strdup(t);
  }
  free(copy);
  if (k == 0) {
    free(v);
    return CAIRN_ECONFIG;
  }
  v[k] = NULL;
  *out = v;
  *n = k;
  return 0;
}

/* The host others use to reach us: --advertise-host, else the listen host
 * unless it is a wildcard, else this machine's name. */
static void advertise_host(const cs_config *cfg, char *out, size_t n) {
  if (cfg->advertise_host && *cfg->advertise_host) {
    snprintf(out, n, "%s", cfg->advertise_host);
    return;
  }
  const char *colon = strrchr(cfg->listen, ':');
  int hlen = colon ? (int)(colon - cfg->listen) : (int)strlen(cfg->listen);
  if (strncmp(cfg->listen, "0.0.0.0", (size_t)hlen) != 0 &&
      strncmp(cfg->listen, "[::]", (size_t)hlen) != 0) {
    snprintf(out, n, "%.*s", hlen, cfg->listen);
    return;
  }
  if (gethostname(out, n) != 0) snprintf(out, n, "127.0.0.1");
}

/* The store's events reach the master with the next heartbeat, at once. */
static void on_store_event(void *arg, const cs_store_event *ev) {
  cs_server *s = arg;
  cs_heartbeat *hb = __atomic_load_n(&s->hb, __ATOMIC_ACQUIRE);
  if (ev->kind == CS_STORE_EV_CORRUPT)
    CMN_WARN("store", "replica corrupt handle=%llu version=%llu", (unsigned long long)ev->handle,
             (unsigned long long)ev->version);
  if (!hb) return; /* not registered yet: the full report will carry it */
  if (ev->kind == CS_STORE_EV_CORRUPT)
    cs_heartbeat_report_added(hb, ev->handle, ev->version, 0, true);
  cs_heartbeat_kick(hb);
}

/* ---- start-up table ------------------------------------------------------------------ */

static int start_dirs(void *ctx) {
  struct daemon *d = ctx;
  int rc = split_dirs(d->s.cfg.data_dirs, &d->dirs, &d->ndirs);
  if (rc != 0 || d->ndirs > CS_STORE_MAX_DIRS) {
    CMN_ERROR("main", "--data-dirs needs 1 to %d directories", CS_STORE_MAX_DIRS);
    return CAIRN_ECONFIG;
  }
  for (size_t i = 0; i < d->ndirs; i++) {
    if (mkdir(d->dirs[i], 0755) != 0 && errno != EEXIST) {
      CMN_ERROR("main", "cannot create data dir=%s error=\"%s\"", d->dirs[i], strerror(errno));
      return cmn_errno_to_cairn(errno);
    }
    int fd = cmn_daemon_lock_dir(d->dirs[i]);
    if (fd == CAIRN_EBUSY) CMN_ERROR("main", "another chunkserver uses dir=%s", d->dirs[i]);
    if (fd < 0) return fd;
    d->s.lock_fds[d->s.n_lock_fds++] = fd;
  }
  return 0;
}

static void stop_dirs(void *ctx) {
  struct daemon *d = ctx;
  for (int i = 0; i < d->s.n_lock_fds; i++) close(d->s.lock_fds[i]);
  d->s.n_lock_fds = 0;
  for (size_t i = 0; i < d->ndirs; i++) free(d->dirs[i]);
  free(d->dirs);
  d->dirs = NULL;
}

static int start_secret(void *ctx) {
  struct daemon *d = ctx;
  int rc = cmn_rpc_load_secret(d->s.cfg.secret_file, &d->s.secret);
  if (rc != 0)
    CMN_ERROR("main", "cannot load the cluster secret file=%s error=%s", d->s.cfg.secret_file,
              cairn_strerror(rc));
  return rc;
}

static void stop_secret(void *ctx) {
  struct daemon *d = ctx;
  free(d->s.secret);
  d->s.secret = NULL;
}

static int start_store(void *ctx) {
  struct daemon *d = ctx;
  cs_store_opts o = {.chunk_size = d->s.cfg.chunk_size,
                     .reserve_bytes = d->s.cfg.reserve,
                     .notify = on_store_event,
                     .notify_arg = &d->s};
  int rc = cs_store_open((const char *const *)d->dirs, d->ndirs, &o, &d->s.store);
  if (rc != 0) {
    CMN_ERROR("main", "cannot open the store error=%s", cairn_err_name(rc));
    return rc;
  }
  d->s.id = cs_store_server_id(d->s.store);
  return 0;
}

static void stop_store(void *ctx) {
  struct daemon *d = ctx;
  cs_store_close(d->s.store);
  d->s.store = NULL;
}

static int start_push(void *ctx) {
  struct daemon *d = ctx;
  return cs_pushbuf_new(d->s.cfg.push_budget, d->s.cfg.push_ttl_ms, &d->s.push);
}

static void stop_push(void *ctx) {
  struct daemon *d = ctx;
  cs_pushbuf_free(d->s.push);
  d->s.push = NULL;
}

static int start_twopc(void *ctx) {
  struct daemon *d = ctx;
  return cs_twopc_init(&d->s, NULL);
}

static void stop_twopc(void *ctx) {
  struct daemon *d = ctx;
  cs_twopc_fini(&d->s);
}

static int start_peers(void *ctx) {
  struct daemon *d = ctx;
  cmn_rpc_client_config cc = {.secret = d->s.secret};
  int rc = cmn_rpc_pool_create(&cc, &d->s.peers);
  if (rc == 0) rc = cmn_rpc_channel_open(d->s.cfg.master, &cc, &d->s.master);
  return rc;
}

static void stop_peers(void *ctx) {
  struct daemon *d = ctx;
  cmn_rpc_channel_close(d->s.master);
  cmn_rpc_pool_destroy(d->s.peers);
  d->s.master = NULL;
  d->s.peers = NULL;
}

static int start_rpc(void *ctx) {
  struct daemon *d = ctx;
  cmn_rpc_server_config rc = {
      .addr = d->s.cfg.listen,
      .secret = d->s.secret,
      .workers = (int)d->s.cfg.workers,
      .service = &cairn__v1__chunkserver__descriptor,
      .methods = cs_methods,
      .n_methods = cs_nmethods,
      .ctx = &d->s,
      .metrics = d->s.metrics,
  };
  int r = cmn_rpc_server_start(&rc, &d->s.rpc);
  if (r == 0) snprintf(d->s.rpc_addr, sizeof d->s.rpc_addr, "%s:%d", d->host, cmn_rpc_server_port(d->s.rpc));
  return r;
}

static void stop_rpc(void *ctx) {
  struct daemon *d = ctx;
  cmn_rpc_server_stop(d->s.rpc);
  d->s.rpc = NULL;
}

/* ---- the data plane's loop ------------------------------------------------------------ */

static void on_stop_async(uv_async_t *a) {
  struct daemon *d = a->data;
  cs_dataplane_stop(d->s.dp);
  d->s.dp = NULL;
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  struct daemon *d = arg;
  uv_run(&d->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int start_dataplane(void *ctx) {
  struct daemon *d = ctx;
  if (uv_loop_init(&d->loop) != 0) return CAIRN_EIO;
  uv_async_init(&d->loop, &d->stop_async, on_stop_async);
  d->stop_async.data = d;
  cs_dataplane_config dc = {.listen = d->s.cfg.data_listen,
                            .secret = d->s.secret,
                            .server_id = d->s.id,
                            .store = d->s.store,
                            .push = d->s.push,
                            .metrics = d->s.metrics};
  int rc = cs_dataplane_start(&d->loop, &dc, &d->s.dp);
  if (rc != 0) {
    uv_close((uv_handle_t *)&d->stop_async, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
    return rc;
  }
  snprintf(d->s.data_addr, sizeof d->s.data_addr, "%s:%d", d->host, cs_dataplane_port(d->s.dp));
  if (pthread_create(&d->loop_thread, NULL, loop_main, d) != 0) return CAIRN_ENOMEM;
  d->loop_running = true;
  return 0;
}

static void stop_dataplane(void *ctx) {
  struct daemon *d = ctx;
  if (!d->loop_running) return;
  uv_async_send(&d->stop_async);
  pthread_join(d->loop_thread, NULL);
  d->loop_running = false;
  if (uv_loop_close(&d->loop) != 0) CMN_WARN("main", "data plane loop closed with handles open");
}

/* ---- recovery, heartbeats, scrubbing, HTTP ---------------------------------------------- */

static void *recover_main(void *arg) {
  struct daemon *d = arg;
  int n = cs_twopc_recover(&d->s);
  if (n > 0) CMN_INFO("main", "undecided mutations resolved count=%d", n);
  else if (n < 0 && n != CAIRN_ECANCELED) CMN_ERROR("main", "recovery failed error=%s", cairn_err_name(n));
  return NULL;
}

static int start_recover(void *ctx) {
  struct daemon *d = ctx;
  if (pthread_create(&d->recover_thread, NULL, recover_main, d) != 0) return CAIRN_ENOMEM;
  d->recovering = true;
  return 0;
}

static void stop_recover(void *ctx) {
  struct daemon *d = ctx;
  if (!d->recovering) return;
  cs_twopc_stop(&d->s);
  pthread_join(d->recover_thread, NULL);
  d->recovering = false;
}

static int start_heartbeat(void *ctx) {
  struct daemon *d = ctx;
  cs_heartbeat *hb;
  int rc = cs_heartbeat_start(&d->s, &hb);
  if (rc == 0) __atomic_store_n(&d->s.hb, hb, __ATOMIC_RELEASE);
  return rc;
}

static void stop_heartbeat(void *ctx) {
  struct daemon *d = ctx;
  cs_heartbeat *hb = d->s.hb;
  __atomic_store_n(&d->s.hb, NULL, __ATOMIC_RELEASE);
  cs_heartbeat_stop(hb);
}

static int start_scrub(void *ctx) {
  struct daemon *d = ctx;
  return cs_scrub_start(d->s.store, d->s.cfg.scrub_rate, &d->s.scrub);
}

static void stop_scrub(void *ctx) {
  struct daemon *d = ctx;
  cs_scrub_stop(d->s.scrub);
  d->s.scrub = NULL;
}

static int health(void *arg, cmn_buf *reason) {
  cs_server *s = arg;
  cs_store_usage u;
  cs_store_stats(s->store, &u);
  size_t ok = 0;
  for (size_t i = 0; i < u.ndirs; i++) ok += u.dirs[i].state != CS_STORE_DIR_FAILED;
  if (ok == 0) {
    cmn_buf_appendf(reason, "every data dir failed");
    return CAIRN_EIO;
  }
  if (!s->hb || !cs_heartbeat_connected(s->hb)) {
    cmn_buf_appendf(reason, "not registered with the master");
    return CAIRN_EUNAVAIL;
  }
  return 0;
}

static int start_http(void *ctx) {
  struct daemon *d = ctx;
  d->s.health.fn = health;
  d->s.health.arg = &d->s;
  cmn_http_route routes[] = {cmn_http_metrics_route(d->s.metrics),
                             cmn_http_health_route(&d->s.health)};
  cmn_http_config hc = {.bind = d->s.cfg.http_listen,
                        .routes = routes,
                        .nroutes = CMN_ARRAY_LEN(routes),
                        .metrics = d->s.metrics};
  return cmn_http_server_start(&d->s.http, &hc);
}

static void stop_http(void *ctx) {
  struct daemon *d = ctx;
  cmn_http_server_stop(d->s.http);
  d->s.http = NULL;
}

static int start_ready(void *ctx) {
  struct daemon *d = ctx;
  char http[300];
  snprintf(http, sizeof http, "%s:%d", d->host, cmn_http_server_port(d->s.http));
  CMN_INFO("main", "chunkserver ready id=%s rpc=%s data=%s http=%s zone=%s", d->s.id,
           d->s.rpc_addr, d->s.data_addr, http, d->s.cfg.zone);
  if (!*d->s.cfg.ready_file) return 0;
  char *text = cmn_sprintf("rpc=%s\ndata=%s\nhttp=%s\nid=%s\npid=%ld\n", d->s.rpc_addr,
                           d->s.data_addr, http, d->s.id, (long)getpid());
  int rc = cmn_write_file_atomic(d->s.cfg.ready_file, text, strlen(text), 0644);
  free(text);
  return rc;
}

static int start_metrics(void *ctx) {
  struct daemon *d = ctx;
  return cmn_metrics_create(&d->s.metrics);
}

static void stop_metrics(void *ctx) {
  struct daemon *d = ctx;
  cmn_metrics_destroy(d->s.metrics);
  d->s.metrics = NULL;
}

static const cmn_daemon_module modules[] = {
    {"dirs", start_dirs, stop_dirs},
    {"secret", start_secret, stop_secret},
    {"store", start_store, stop_store},
    {"metrics", start_metrics, stop_metrics},
    {"push", start_push, stop_push},
    {"twopc", start_twopc, stop_twopc},
    {"peers", start_peers, stop_peers},
    {"rpc", start_rpc, stop_rpc},
    {"dataplane", start_dataplane, stop_dataplane},
    {"recover", start_recover, stop_recover},
    {"heartbeat", start_heartbeat, stop_heartbeat},
    {"scrub", start_scrub, stop_scrub},
    {"http", start_http, stop_http},
    {"ready", start_ready, NULL},
};

int main(int argc, char **argv) {
  cmn_log_init("chunkserver");
  cmn_daemon_block_signals();
  static struct daemon d;
  cs_config *cfg = &d.s.cfg;
  char err[512];
  int rc = cmn_config_defaults(&cs_config_spec, cfg, err, sizeof err);
  if (rc == 0) rc = cmn_config_parse_args(&cs_config_spec, cfg, argc, argv, NULL, err, sizeof err);
  if (rc == CMN_CONFIG_HELP) {
    char *help = cmn_config_help(&cs_config_spec);
    fputs(help, stdout);
    free(help);
    cmn_config_free(&cs_config_spec, cfg);
    return 0;
  }
  if (rc == 0 && !*cfg->data_dirs) {
    snprintf(err, sizeof err, "--data-dirs is required");
    rc = CAIRN_ECONFIG;
  }
  if (rc == 0 && !*cfg->secret_file) {
    snprintf(err, sizeof err, "--secret-file is required");
    rc = CAIRN_ECONFIG;
  }
  if (rc != 0) {
    fprintf(stderr, "cairn-chunkserver: %s\n", err);
    cmn_config_free(&cs_config_spec, cfg);
    return 2;
  }
  cmn_log_set_level((cmn_log_level)cfg->log_level);
  advertise_host(cfg, d.host, sizeof d.host);
  rc = cmn_daemon_start_all(modules, CMN_ARRAY_LEN(modules), &d);
  if (rc == 0) {
    int sig = cmn_daemon_wait_signal();
    CMN_INFO("main", "stopping signal=%d", sig);
    cmn_daemon_stop_all(modules, CMN_ARRAY_LEN(modules), &d);
    CMN_INFO("main", "stopped");
  }
  cmn_config_free(&cs_config_spec, cfg);
  return rc == 0 ? 0 : 1;
}
