/*
 * cs_server.h - the cairn-chunkserver process: its configuration and the
 * context every part of it (store, push buffer, data plane, two-phase
 * commit, control RPCs, heartbeats, scrubber) receives.
 *
 * Threads: main() owns the libuv loop of the data plane (cs_dataplane);
 * gRPC worker threads run cairn.v1.Chunkserver handlers (cs_service); one
 * thread talks to the master (cs_heartbeat); one scrubs (cs_scrub). Disk work
 * never runs on the loop thread. Shared state is in the modules, each with
 * its own rules (see their headers); this struct is filled at start-up and
 * read-only afterwards except where a field says otherwise.
 */
#ifndef CS_SERVER_H
#define CS_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmn_config.h"
#include "cmn_http.h"
#include "cmn_metrics.h"
#include "cmn_rpc.h"
#include "cs_pushbuf.h"
#include "cs_store.h"

typedef struct cs_config {
  char *data_dirs;        /* comma-separated data directories (disks) */
  char *master;           /* host:port of cairn.v1.Master */
  char *secret_file;      /* cluster secret */
  char *zone;             /* zone / rack label for placement */
  char *listen;           /* cairn.v1.Chunkserver gRPC */
  char *data_listen;      /* data plane (TCP) */
  char *http_listen;      /* /metrics, /healthz */
  char *advertise_host;   /* host the master and peers should use to reach us */
  char *ready_file;       /* written once serving: rpc=, data=, http=, id= */
  int64_t workers;        /* gRPC worker threads */
  uint64_t chunk_size;    /* must match the cluster's (the master says so at registration) */
  uint64_t push_budget;   /* bytes of push buffer */
  int64_t push_ttl_ms;    /* unused pushes expire after this */
  int64_t rpc_timeout_ms; /* deadline of 2PC calls between chunkservers */
  uint64_t scrub_rate;    /* bytes per second the scrubber verifies (0: off) */
  uint64_t reserve;       /* free bytes kept on every data dir */
  int log_level;
} cs_config;

extern const cmn_config_spec cs_config_spec;

struct cs_leases;
struct cs_dataplane;
struct cs_heartbeat;
struct cs_scrub;

typedef struct cs_server {
  cs_config cfg;
  char *secret;
  const char *id;             /* server UUID (owned by the store) */
  char rpc_addr[300];         /* advertised host:port of our gRPC service */
  char data_addr[300];        /* advertised host:port of our data plane */
  int lock_fds[CS_STORE_MAX_DIRS];
  int n_lock_fds;

  cs_store *store;
  cs_pushbuf *push;
  struct cs_leases *leases;   /* leases, per-chunk order, 2PC outcomes (twopc.c) */
  cmn_metrics *metrics;
  cmn_rpc_server *rpc;
  cmn_rpc_pool *peers;        /* channels to other chunkservers */
  cmn_rpc_channel *master;    /* channel to the master */
  cmn_http_server *http;
  cmn_http_health health;
  struct cs_dataplane *dp;
  struct cs_heartbeat *hb;
  struct cs_scrub *scrub;
} cs_server;

#endif /* CS_SERVER_H */
