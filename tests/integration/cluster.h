/*
 * cluster.h - a whole cairn cluster for integration tests: a master and N
 * chunkservers started as real processes on 127.0.0.1 with free ports and
 * their own temporary directories, plus the few client steps a test needs
 * before the client library exists (create, write through push + 2PC,
 * read from one replica, lookup).
 *
 * Every process is stopped by PID in it_cluster_stop, also when a test
 * failed half-way (call it from the teardown).
 */
#ifndef CAIRN_IT_CLUSTER_H
#define CAIRN_IT_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmn_rpc.h"
#include "harness.h"
#include "master.pb-c.h"

#define IT_MAX_CS 6
#define IT_CHUNK_SIZE (1u << 20) /* small chunks: tests cross chunk boundaries cheaply */
#define IT_CHUNK_SIZE_TEXT "1M"

typedef struct it_cs {
  it_proc proc;
  char dir[300];
  char ready[320];
  char zone[16];
  char rpc[128], data[128], http[128], id[64];
} it_cs;

typedef struct it_cluster {
  char dir[256];
  char master_dir[300];
  char master_ready[320];
  it_proc master;
  char master_rpc[128], master_http[128];
  char secret_file[320];
  char *secret;
  int ncs;
  it_cs cs[IT_MAX_CS];
  cmn_rpc_channel *m;      /* channel to the master */
  cmn_rpc_pool *peers;     /* channels to chunkservers */
  char chunk_size[16];     /* as given to --chunk-size */
  char scrub_rate[16];     /* --scrub-rate of chunkservers started from now on ("0": off) */
  char push_budget[16];    /* --push-budget of chunkservers started from now on */
  uint64_t chunk_bytes;
} it_cluster;

/* Init a cluster directory and start the master and `ncs` chunkservers
 * (zones z1, z2, ... round robin over `zones`), wait until every
 * chunkserver registered. Short heartbeats (200 ms) and dead-after (2 s).
 * 0 or -1 (see the logs under c->dir). */
int it_cluster_start(it_cluster *c, const char *tag, int ncs, int zones);

/* The same with another chunk size ("64M" for benchmarks). */
int it_cluster_start_chunk(it_cluster *c, const char *tag, int ncs, int zones,
                           const char *chunk_size);
/* ... and another --push-budget for the chunkservers (default "256M"). */
int it_cluster_start_with(it_cluster *c, const char *tag, int ncs, int zones,
                          const char *chunk_size, const char *push_budget);

/* Stop everything still running (SIGTERM, then SIGKILL), free, and remove
 * the directory unless CAIRN_KEEP_TEST_DIRS is set. */
void it_cluster_stop(it_cluster *c);

/* Start / kill -9 / stop one chunkserver (same ports? no: new free ports,
 * same data dir and id). */
int it_cs_start(it_cluster *c, int i);
void it_cs_kill(it_cluster *c, int i);

/* Restart the master on its directory (after a kill or stop). */
int it_master_start(it_cluster *c);

/* Master RPC helper: returns the cairn code; *reply may be NULL. */
int it_master_call(it_cluster *c, const char *method, const ProtobufCMessage *req,
                   ProtobufCMessage **reply);

/* Create a file (exclusive), returning its id. */
int it_create(it_cluster *c, const char *path, uint64_t *file_id);

/* Write `len` bytes at `offset` of a file that lies within ONE chunk:
 * PrepareWrite, push along the replica chain, Write to the primary,
 * CompleteWrite. Retries retryable errors a few times. Returns the cairn
 * code; *version_out (may be NULL) gets the chunk version written at. */
int it_write(it_cluster *c, uint64_t file_id, uint64_t offset, const void *data, size_t len);

/* Record append of `len` bytes to the file's last chunk (moving on when
 * full). *offset_out gets the file offset of the record. */
int it_append(it_cluster *c, uint64_t file_id, const void *data, size_t len, uint64_t *offset_out);

/* Look up chunk `index` of a file: handle, version and replica data/rpc
 * addresses (caller frees with protobuf_c_message_free_unpacked). */
int it_lookup(it_cluster *c, uint64_t file_id, uint64_t index, Cairn__V1__LookupChunksReply **out);

/* Read from the replica at data address `data_addr`. Returns bytes or a
 * negative code. */
int64_t it_read_replica(it_cluster *c, const char *data_addr, uint64_t handle, uint64_t version,
                        uint64_t offset, void *buf, size_t len);

/* Index of the chunkserver whose id is `id`, or -1. */
int it_cs_by_id(it_cluster *c, const char *id);

/* Wait (bounded) until `pred(c, arg)` returns true; polls every 100 ms. */
bool it_wait_until(it_cluster *c, int timeout_ms, bool (*pred)(it_cluster *, void *), void *arg);

/* Path of the replica file of `handle` on chunkserver i (any version), or
 * "" when none. */
void it_replica_path(it_cluster *c, int i, uint64_t handle, char *out, size_t n);

#endif
