/*
 * start.c - bring the gateway up and down: keys, certificate, database and
 * migrations, the cluster client, caches, limiters and the listener, in
 * that order, undone in reverse.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cairn_error.h"
#include "cmn_log.h"
#include "gw.h"
#include "gw_internal.h"

#include <openssl/crypto.h>

/* Keys for access tokens and links are derived from the key file, so one
 * file configures every gateway of a deployment alike. */
static int load_keys(gw_ctx *gw, char *err, size_t errlen) {
  char *data = NULL;
  size_t len = 0;
  int rc = cmn_read_file(gw->cfg.key_file, 4096, &data, &len);
  if (rc < 0) {
    snprintf(err, errlen, "cannot read key_file %s: %s", gw->cfg.key_file, cairn_strerror(rc));
    return CAIRN_ECONFIG;
  }
  if (len < 32) {
    snprintf(err, errlen, "key_file %s holds %zu bytes; at least 32 are needed",
             gw->cfg.key_file, len);
    free(data);
    return CAIRN_ECONFIG;
  }
  gw_derive_key(data, len, "cairn-gateway access token v1", gw->jwt_key);
  gw_derive_key(data, len, "cairn-gateway presigned link v1", gw->link_key);
  OPENSSL_cleanse(data, len);
  free(data);
  return 0;
}

static int read_pem(const char *path, const char *what, char **out, char *err, size_t errlen) {
  size_t len;
  int rc = cmn_read_file(path, 1 << 20, out, &len);
  if (rc < 0) {
    snprintf(err, errlen, "cannot read %s %s: %s", what, path, cairn_strerror(rc));
    return CAIRN_ECONFIG;
  }
  if (strstr(*out, "-----BEGIN ") == NULL) {
    snprintf(err, errlen, "%s %s is not a PEM file", what, path);
    free(*out);
    *out = NULL;
    return CAIRN_ECONFIG;
  }
  return 0;
}

int gw_start(gw_ctx *gw, char *err, size_t errlen) {
  const gw_config *cfg = &gw->cfg;
  char *cert = NULL, *key = NULL;
  gw->started_ms = cmn_wall_ms();
  gw_ring_budget_init(&gw->ring_budget, (int64_t)cfg->transfer_memory);
  gw->argon2 = (gw_argon2_params){(uint32_t)(cfg->argon2_memory >> 10),
                                  (uint32_t)cfg->argon2_time, (uint32_t)cfg->argon2_lanes};
  int rc = load_keys(gw, err, errlen);
  if (rc == 0 && !cfg->plain_http) {
    rc = read_pem(cfg->tls_cert, "tls_cert", &cert, err, errlen);
    if (rc == 0) {
      rc = read_pem(cfg->tls_key, "tls_key", &key, err, errlen);
    }
  }
  if (rc == 0) {
    rc = gw_db_open(cfg->db, (int)cfg->db_pool, cfg->db_wait_ms, &gw->db);
    if (rc < 0) {
      snprintf(err, errlen, "bad db connection string");
    }
  }
  if (rc == 0) {
    rc = gw_db_migrate(gw->db, err, errlen);
  }
  if (rc == 0) {
    gw_db_warm(gw->db);
  }
  if (rc == 0) {
    cairn_options o;
    cairn_options_init(&o);
    o.master = cfg->master;
    o.secret_file = cfg->secret_file;
    o.op_timeout_ms = cfg->cluster_timeout_ms;
    o.rpc_timeout_ms = cfg->cluster_timeout_ms < 10000 ? cfg->cluster_timeout_ms : 10000;
    rc = cairn_connect(&o, &gw->cluster);
    if (rc == 0) {
      o.op_timeout_ms = 2000;
      o.rpc_timeout_ms = 1000;
      o.max_retries = 1;
      rc = cairn_connect(&o, &gw->probe);
    }
    if (rc < 0) {
      snprintf(err, errlen, "cannot set up the cluster client: %s", cairn_strerror(rc));
    }
  }
  if (rc == 0) {
    rc = cmn_metrics_create(&gw->metrics);
  }
  if (rc == 0) {
    rc = gw_metrics_init(gw);
  }
  if (rc == 0 && cfg->rate_ip > 0) {
    rc = gw_ratelimit_new((double)cfg->rate_ip, (double)cfg->rate_burst, 100000, &gw->rl_ip);
  }
  if (rc == 0 && cfg->rate_user > 0) {
    rc = gw_ratelimit_new((double)cfg->rate_user, (double)cfg->rate_burst, 100000,
                          &gw->rl_user);
  }
  if (rc == 0) {
    rc = gw_cache_new(65536, cfg->cache_ttl_ms, &gw->perm_cache);
  }
  if (rc == 0) {
    rc = gw_cache_new(16384, cfg->cache_ttl_ms, &gw->auth_cache);
  }
  if (rc == 0 && cfg->small_cache > 0) {
    rc = gw_small_cache_new(cfg->small_cache, &gw->small);
  }
  if (rc == 0) {
    rc = gw_http_start(gw, cert, key, err, errlen);
  }
  if (key) {
    OPENSSL_cleanse(key, strlen(key));
  }
  free(cert);
  free(key);
  if (rc < 0) {
    if (err[0] == '\0') {
      snprintf(err, errlen, "start-up failed: %s", cairn_strerror(rc));
    }
    gw_stop(gw);
    return rc;
  }
  CMN_INFO("gw", "serving port=%u tls=%d", gw->port, !cfg->plain_http);
  return 0;
}

typedef struct reap_job {
  gw_ctx *gw;
  void (*fn)(void *);
  void *arg;
} reap_job;

static void *reap_main(void *p) {
  reap_job *j = p;
  j->fn(j->arg);
  __atomic_sub_fetch(&j->gw->reapers, 1, __ATOMIC_SEQ_CST);
  free(j);
  return NULL;
}

void gw_reap(gw_ctx *gw, void (*fn)(void *), void *arg) {
  reap_job *j = cmn_malloc(sizeof *j);
  *j = (reap_job){gw, fn, arg};
  __atomic_add_fetch(&gw->reapers, 1, __ATOMIC_SEQ_CST);
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  pthread_t t;
  int rc = pthread_create(&t, &a, reap_main, j);
  pthread_attr_destroy(&a);
  if (rc != 0) {
    reap_main(j);
  }
}

void gw_stop(gw_ctx *gw) {
  gw_http_stop(gw);
  /* Background clean-ups use the database and the cluster: let them end
   * (each is bounded by the cluster and database timeouts). */
  for (int i = 0; i < 1200 && __atomic_load_n(&gw->reapers, __ATOMIC_SEQ_CST) > 0; i++) {
    usleep(50 * 1000);
  }
  gw_small_cache_free(gw->small);
  gw_cache_free(gw->auth_cache);
  gw_cache_free(gw->perm_cache);
  gw_ratelimit_free(gw->rl_user);
  gw_ratelimit_free(gw->rl_ip);
  gw_metrics_free(gw);
  cmn_metrics_destroy(gw->metrics);
  cairn_disconnect(gw->probe);
  cairn_disconnect(gw->cluster);
  gw_db_close(gw->db);
  gw->small = NULL;
  gw->auth_cache = gw->perm_cache = NULL;
  gw->rl_user = gw->rl_ip = NULL;
  gw->metrics = NULL;
  gw->cluster = NULL;
  gw->probe = NULL;
  gw->db = NULL;
  gw_ring_budget_destroy(&gw->ring_budget);
}
