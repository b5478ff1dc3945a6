/*
 * cluster.c - start and drive a real cluster for integration tests.
 */
#include "cluster.h"

#include "cairn_error.h"
#include "chunkserver.pb-c.h"
#include "cmn_crc32c.h"
#include "cmn_dpclient.h"
#include "cmn_util.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CALL_TIMEOUT_MS 15000

static int read_ready(const char *file, const char *key, char *out, size_t n) {
  return it_read_kv(file, key, out, n);
}

int it_master_start(it_cluster *c) {
  char bin[512];
  it_bin(bin, sizeof bin, "cairn-master");
  unlink(c->master_ready);
  char *argv[] = {bin, "--dir", c->master_dir, "--listen", "127.0.0.1:0", "--http-listen",
                  "127.0.0.1:0", "--ready-file", c->master_ready, "--heartbeat-interval", "200ms",
                  "--dead-after", "2s", "--lease", "5s", "--rebalance-moves", "0", NULL};
  char log[sizeof c->master.log];
  snprintf(log, sizeof log, "%s/master.log", c->dir);
  memcpy(c->master.log, log, sizeof log);
  if (it_spawn(&c->master, argv) != 0) return -1;
  if (it_wait_file(c->master_ready, &c->master, 20000) != 0) return -1;
  if (read_ready(c->master_ready, "rpc", c->master_rpc, sizeof c->master_rpc) != 0) return -1;
  if (read_ready(c->master_ready, "http", c->master_http, sizeof c->master_http) != 0) return -1;
  cmn_rpc_channel_close(c->m);
  c->m = NULL;
  cmn_rpc_client_config cc = {.secret = c->secret};
  return cmn_rpc_channel_open(c->master_rpc, &cc, &c->m);
}

int it_cs_start(it_cluster *c, int i) {
  it_cs *s = &c->cs[i];
  char bin[512];
  it_bin(bin, sizeof bin, "cairn-chunkserver");
  unlink(s->ready);
  char *argv[] = {bin, "--data-dirs", s->dir, "--master", c->master_rpc, "--secret-file",
                  c->secret_file, "--zone", s->zone, "--listen",
                  "127.0.0.1:0", "--data-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                  "--advertise-host", "127.0.0.1", "--ready-file", s->ready, "--chunk-size",
                  c->chunk_size, "--scrub-rate", c->scrub_rate, "--push-budget", c->push_budget,
                  "--rpc-timeout", "2s", NULL};
  char log[sizeof s->proc.log];
  snprintf(log, sizeof log, "%s/chunkserver-%d.log", c->dir, i + 1);
  memcpy(s->proc.log, log, sizeof log);
  if (it_spawn(&s->proc, argv) != 0) return -1;
  if (it_wait_file(s->ready, &s->proc, 20000) != 0) return -1;
  if (read_ready(s->ready, "rpc", s->rpc, sizeof s->rpc) != 0 ||
      read_ready(s->ready, "data", s->data, sizeof s->data) != 0 ||
      read_ready(s->ready, "http", s->http, sizeof s->http) != 0 ||
      read_ready(s->ready, "id", s->id, sizeof s->id) != 0)
    return -1;
  return 0;
}

void it_cs_kill(it_cluster *c, int i) { it_stop(&c->cs[i].proc, SIGKILL, 5000); }

int it_master_call(it_cluster *c, const char *method, const ProtobufCMessage *req,
                   ProtobufCMessage **reply) {
  ProtobufCMessage *r = NULL;
  cmn_rpc_status st;
  int rc = cmn_rpc_call_unary(c->m, &cairn__v1__master__descriptor, method, req, &r,
                              CALL_TIMEOUT_MS, &st);
  if (rc != 0) fprintf(stderr, "master %s: %s (%s)\n", method, cairn_err_name(rc), st.message);
  if (reply) *reply = r;
  else if (r) protobuf_c_message_free_unpacked(r, NULL);
  return rc;
}

struct alive_arg {
  int want;
};

static bool servers_alive(it_cluster *c, void *arg) {
  struct alive_arg *a = arg;
  Cairn__V1__ClusterStatusRequest req = CAIRN__V1__CLUSTER_STATUS_REQUEST__INIT;
  Cairn__V1__ClusterStatusReply *r = NULL;
  ProtobufCMessage *reply = NULL;
  if (cmn_rpc_call_unary(c->m, &cairn__v1__master__descriptor, "GetClusterStatus", &req.base,
                         &reply, CALL_TIMEOUT_MS, NULL) != 0)
    return false;
  r = (Cairn__V1__ClusterStatusReply *)reply;
  int alive = 0;
  for (size_t i = 0; i < r->n_servers; i++) alive += strcmp(r->servers[i]->state, "alive") == 0;
  protobuf_c_message_free_unpacked(reply, NULL);
  return alive >= a->want;
}

bool it_wait_until(it_cluster *c, int timeout_ms, bool (*pred)(it_cluster *, void *), void *arg) {
  for (int waited = 0; waited <= timeout_ms; waited += 100) {
    if (pred(c, arg)) return true;
    usleep(100 * 1000);
  }
  return false;
}

int it_cluster_start(it_cluster *c, const char *tag, int ncs, int zones) {
  return it_cluster_start_chunk(c, tag, ncs, zones, IT_CHUNK_SIZE_TEXT);
}

int it_cluster_start_chunk(it_cluster *c, const char *tag, int ncs, int zones,
                           const char *chunk_size) {
  return it_cluster_start_with(c, tag, ncs, zones, chunk_size, "256M");
}

int it_cluster_start_with(it_cluster *c, const char *tag, int ncs, int zones,
                          const char *chunk_size, const char *push_budget) {
  memset(c, 0, sizeof *c);
  snprintf(c->chunk_size, sizeof c->chunk_size, "%s", chunk_size);
  snprintf(c->scrub_rate, sizeof c->scrub_rate, "0");
  snprintf(c->push_budget, sizeof c->push_budget, "%s", push_budget);
  c->chunk_bytes = strtoull(chunk_size, NULL, 10) << 20; /* "<n>M" */
  if (ncs > IT_MAX_CS) return -1;
  if (it_tmpdir(c->dir, sizeof c->dir, tag) != 0) return -1;
  snprintf(c->master_dir, sizeof c->master_dir, "%s/master", c->dir);
  snprintf(c->master_ready, sizeof c->master_ready, "%s/master.ready", c->dir);
  snprintf(c->secret_file, sizeof c->secret_file, "%s/secret", c->master_dir);
  char bin[512], log[320];
  it_bin(bin, sizeof bin, "cairn-master");
  snprintf(log, sizeof log, "%s/master.log", c->dir);
  char *init[] = {bin, "--init", "--dir", c->master_dir, "--chunk-size", c->chunk_size,
                  NULL};
  if (it_run(init, log, 20000) != 0) return -1;
  if (cmn_rpc_load_secret(c->secret_file, &c->secret) != 0) return -1;
  if (it_master_start(c) != 0) return -1;
  cmn_rpc_client_config cc = {.secret = c->secret};
  if (cmn_rpc_pool_create(&cc, &c->peers) != 0) return -1;
  c->ncs = ncs;
  for (int i = 0; i < ncs; i++) {
    snprintf(c->cs[i].dir, sizeof c->cs[i].dir, "%s/cs%d", c->dir, i + 1);
    snprintf(c->cs[i].ready, sizeof c->cs[i].ready, "%s/cs%d.ready", c->dir, i + 1);
    mkdir(c->cs[i].dir, 0755);
    snprintf(c->cs[i].zone, sizeof c->cs[i].zone, "z%d", i % (zones > 0 ? zones : 1) + 1);
    if (it_cs_start(c, i) != 0) return -1;
  }
  struct alive_arg a = {ncs};
  return it_wait_until(c, 20000, servers_alive, &a) ? 0 : -1;
}

void it_cluster_stop(it_cluster *c) {
  cmn_rpc_channel_close(c->m);
  c->m = NULL;
  cmn_rpc_pool_destroy(c->peers);
  c->peers = NULL;
  for (int i = 0; i < c->ncs; i++)
    if (c->cs[i].proc.pid > 0) it_stop(&c->cs[i].proc, SIGTERM, 10000);
  if (c->master.pid > 0) it_stop(&c->master, SIGTERM, 10000);
  free(c->secret);
  c->secret = NULL;
  if (!c->dir[0]) return;
  if (getenv("CAIRN_KEEP_TEST_DIRS")) fprintf(stderr, "kept %s\n", c->dir);
  else it_rm_rf(c->dir);
}

int it_cs_by_id(it_cluster *c, const char *id) {
  for (int i = 0; i < c->ncs; i++)
    if (strcmp(c->cs[i].id, id) == 0) return i;
  return -1;
}

int it_create(it_cluster *c, const char *path, uint64_t *file_id) {
  Cairn__V1__CreateRequest req = CAIRN__V1__CREATE_REQUEST__INIT;
  req.path.data = (uint8_t *)path;
  req.path.len = strlen(path);
  req.exclusive = 1;
  req.parents = 1;
  Cairn__V1__FileInfoReply *r = NULL;
  int rc = it_master_call(c, "Create", &req.base, (ProtobufCMessage **)&r);
  if (rc == 0) *file_id = r->info->file_id;
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

int it_lookup(it_cluster *c, uint64_t file_id, uint64_t index, Cairn__V1__LookupChunksReply **out) {
  Cairn__V1__LookupChunksRequest req = CAIRN__V1__LOOKUP_CHUNKS_REQUEST__INIT;
  req.file_id = file_id;
  req.first_index = index;
  req.count = 1;
  return it_master_call(c, "LookupChunks", &req.base, (ProtobufCMessage **)out);
}

int64_t it_read_replica(it_cluster *c, const char *data_addr, uint64_t handle, uint64_t version,
                        uint64_t offset, void *buf, size_t len) {
  cmn_dp_conn *conn;
  int rc = cmn_dp_connect(data_addr, c->secret, 10000, &conn);
  if (rc != 0) return rc;
  int64_t n = cmn_dp_read(conn, handle, version, offset, len, buf);
  cmn_dp_close(conn);
  return n;
}

/* Push `data` into the chain of the chunk's replicas (the first one
 * forwards to the others as bytes arrive), then ask the primary to write. */
static int write_once(it_cluster *c, const Cairn__V1__ChunkLocation *loc, const char *method,
                      uint64_t offset, const void *data, size_t len, Cairn__V1__WriteReply **out) {
  uint8_t id[16];
  cmn_random_bytes(id, sizeof id);
  const char *chain[16];
  size_t nchain = 0;
  for (size_t i = 1; i < loc->n_replicas && nchain < 16; i++) chain[nchain++] = loc->replicas[i]->data_addr;
  cmn_dp_conn *conn;
  int rc = cmn_dp_connect(loc->replicas[0]->data_addr, c->secret, 10000, &conn);
  if (rc != 0) return rc;
  /* Where the bytes go, so the servers can stage them while they arrive. */
  cmn_frame_place place = {.handle = loc->handle, .version = loc->version,
                           .offset = strcmp(method, "Append") == 0 ? CMN_FRAME_PLACE_END : offset};
  rc = cmn_dp_push_at(conn, id, data, len, chain, nchain, &place);
  cmn_dp_close(conn);
  if (rc != 0) return rc;
  cmn_rpc_channel *ch;
  rc = cmn_rpc_pool_get(c->peers, loc->replicas[0]->rpc_addr, &ch);
  if (rc != 0) return rc;
  Cairn__V1__WriteRequest req = CAIRN__V1__WRITE_REQUEST__INIT;
  req.handle = loc->handle;
  req.version = loc->version;
  req.offset = offset;
  req.data_id.data = id;
  req.data_id.len = sizeof id;
  req.length = (uint32_t)len;
  req.crc32c = cmn_crc32c(0, data, len);
  req.n_replicas = loc->n_replicas;
  req.replicas = loc->replicas;
  ProtobufCMessage *reply = NULL;
  cmn_rpc_status st;
  rc = cmn_rpc_call_unary(ch, &cairn__v1__chunkserver__descriptor, method, &req.base, &reply,
                          CALL_TIMEOUT_MS, &st);
  if (rc != 0 && rc != CAIRN_ECHUNKFULL)
    fprintf(stderr, "%s: %s (%s)\n", method, cairn_err_name(rc), st.message);
  *out = (Cairn__V1__WriteReply *)reply;
  return rc;
}

static int prepare(it_cluster *c, uint64_t file_id, uint64_t index, bool append, uint64_t min_index,
                   Cairn__V1__PrepareWriteReply **out) {
  Cairn__V1__PrepareWriteRequest req = CAIRN__V1__PREPARE_WRITE_REQUEST__INIT;
  req.file_id = file_id;
  req.chunk_index = index;
  req.append = append;
  req.min_index = min_index;
  return it_master_call(c, "PrepareWrite", &req.base, (ProtobufCMessage **)out);
}

static int complete(it_cluster *c, uint64_t file_id, uint64_t end) {
  Cairn__V1__CompleteWriteRequest req = CAIRN__V1__COMPLETE_WRITE_REQUEST__INIT;
  req.file_id = file_id;
  req.end_offset = end;
  return it_master_call(c, "CompleteWrite", &req.base, NULL);
}

int it_write(it_cluster *c, uint64_t file_id, uint64_t offset, const void *data, size_t len) {
  const uint64_t cs = c->chunk_bytes;
  uint64_t index = offset / cs;
  int rc = CAIRN_EUNKNOWN;
  for (int attempt = 0; attempt < 20; attempt++) {
    Cairn__V1__PrepareWriteReply *p = NULL;
    rc = prepare(c, file_id, index, false, 0, &p);
    if (rc == 0) {
      Cairn__V1__WriteReply *w = NULL;
      rc = write_once(c, p->chunk, "Write", offset - index * cs, data, len, &w);
      if (w) protobuf_c_message_free_unpacked(&w->base, NULL);
    }
    if (p) protobuf_c_message_free_unpacked(&p->base, NULL);
    if (rc == 0) return complete(c, file_id, offset + len);
    if (!cairn_err_retryable(rc)) return rc;
    usleep((useconds_t)(50000 * (attempt + 1)));
  }
  return rc;
}

int it_append(it_cluster *c, uint64_t file_id, const void *data, size_t len, uint64_t *offset_out) {
  uint64_t min_index = 0;
  int rc = CAIRN_EUNKNOWN;
  for (int attempt = 0; attempt < 40; attempt++) {
    Cairn__V1__PrepareWriteReply *p = NULL;
    rc = prepare(c, file_id, 0, true, min_index, &p);
    uint64_t index = 0, chunk_size = 0;
    Cairn__V1__WriteReply *w = NULL;
    if (rc == 0) {
      index = p->chunk->index;
      chunk_size = p->chunk_size;
      rc = write_once(c, p->chunk, "Append", 0, data, len, &w);
    }
    if (p) protobuf_c_message_free_unpacked(&p->base, NULL);
    if (rc == 0) {
      *offset_out = index * chunk_size + w->offset;
      protobuf_c_message_free_unpacked(&w->base, NULL);
      return complete(c, file_id, *offset_out + len);
    }
    if (w) protobuf_c_message_free_unpacked(&w->base, NULL);
    if (rc == CAIRN_ECHUNKFULL) {
      min_index = index + 1;
      continue;
    }
    if (!cairn_err_retryable(rc)) return rc;
    usleep((useconds_t)(20000 * (attempt + 1)));
  }
  return rc;
}

void it_replica_path(it_cluster *c, int i, uint64_t handle, char *out, size_t n) {
  char sub[400], prefix[32];
  snprintf(sub, sizeof sub, "%s/%02x", c->cs[i].dir, (unsigned)(handle & 0xff));
  snprintf(prefix, sizeof prefix, "%016llx_", (unsigned long long)handle);
  out[0] = '\0';
  DIR *d = opendir(sub);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t l = strlen(e->d_name);
    if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && l > 6 &&
        strcmp(e->d_name + l - 6, ".chunk") == 0) {
      snprintf(out, n, "%s/%s", sub, e->d_name);
      break;
    }
  }
  closedir(d);
}
