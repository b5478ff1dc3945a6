/*
 * cairn-master with real processes on 127.0.0.1: a cluster is created with
 * --init, the master is started, driven over gRPC, stopped or killed, and
 * restarted; what it acknowledged must still be there.
 */
#include "test_main.h"

#include "cairn_error.h"
#include "cmn_rpc.h"
#include "cmn_util.h"
#include "harness.h"
#include "chunkserver.pb-c.h"
#include "master.pb-c.h"

#include <dirent.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cluster {
  char dir[256];
  char data[300];
  char ready[300];
  char log[300];
  it_proc master;
  char rpc[128];
  char http[128];
  char *secret;
  cmn_rpc_channel *ch;
};

static int master_start(struct cluster *c, const char *ckpt_records) {
  char bin[512];
  it_bin(bin, sizeof bin, "cairn-master");
  unlink(c->ready);
  char *argv[] = {bin, "--dir", c->data, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                  "--ready-file", c->ready, "--checkpoint-records", (char *)ckpt_records, NULL};
  if (it_spawn(&c->master, argv) != 0) return -1;
  if (it_wait_file(c->ready, &c->master, 20000) != 0) return -1;
  if (it_read_kv(c->ready, "rpc", c->rpc, sizeof c->rpc) != 0) return -1;
  if (it_read_kv(c->ready, "http", c->http, sizeof c->http) != 0) return -1;
  cmn_rpc_channel_close(c->ch);
  c->ch = NULL;
  cmn_rpc_client_config cc = {.secret = c->secret};
  return cmn_rpc_channel_open(c->rpc, &cc, &c->ch);
}

static int setup(void **state) {
  struct cluster *c = cmn_calloc(1, sizeof *c);
  *state = c;
  if (it_tmpdir(c->dir, sizeof c->dir, "master") != 0) return -1;
  snprintf(c->data, sizeof c->data, "%s/data", c->dir);
  snprintf(c->ready, sizeof c->ready, "%s/ready", c->dir);
  snprintf(c->log, sizeof c->log, "%s/master.log", c->dir);
  snprintf(c->master.log, sizeof c->master.log, "%s", c->log);
  char bin[512];
  it_bin(bin, sizeof bin, "cairn-master");
  char *init[] = {bin, "--init", "--dir", c->data, "--chunk-size", "1M", NULL};
  if (it_run(init, c->log, 20000) != 0) return -1;
  char *secret_path = cmn_sprintf("%s/secret", c->data);
  int rc = cmn_rpc_load_secret(secret_path, &c->secret);
  free(secret_path);
  if (rc != 0) return -1;
  return master_start(c, "1000000");
}

static int teardown(void **state) {
  struct cluster *c = *state;
  cmn_rpc_channel_close(c->ch);
  if (c->master.pid > 0) it_stop(&c->master, SIGTERM, 10000);
  if (getenv("CAIRN_KEEP_TEST_DIRS")) fprintf(stderr, "kept %s\n", c->dir);
  else it_rm_rf(c->dir);
  free(c->secret);
  free(c);
  return 0;
}

/* ---- small RPC helpers ------------------------------------------------------ */

static ProtobufCBinaryData bin_of(const char *s) {
  ProtobufCBinaryData b = {strlen(s), (uint8_t *)s};
  return b;
}

static int call(cmn_rpc_channel *ch, const char *method, const ProtobufCMessage *req,
                ProtobufCMessage **reply) {
  ProtobufCMessage *r = NULL;
  cmn_rpc_status st;
  int rc = cmn_rpc_call_unary(ch, &cairn__v1__master__descriptor, method, req, &r, 10000, &st);
  if (rc != 0) fprintf(stderr, "%s: %s (%s)\n", method, cairn_err_name(rc), st.message);
  if (reply) *reply = r;
  else if (r) protobuf_c_message_free_unpacked(r, NULL);
  return rc;
}

static int do_mkdir(cmn_rpc_channel *ch, const char *path) {
  Cairn__V1__MkdirRequest req = CAIRN__V1__MKDIR_REQUEST__INIT;
  req.path = bin_of(path);
  req.parents = 1;
  return call(ch, "Mkdir", &req.base, NULL);
}

static int do_create(cmn_rpc_channel *ch, const char *path, uint64_t *id) {
  Cairn__V1__CreateRequest req = CAIRN__V1__CREATE_REQUEST__INIT;
  req.path = bin_of(path);
  req.exclusive = 1;
  Cairn__V1__FileInfoReply *r = NULL;
  int rc = call(ch, "Create", &req.base, (ProtobufCMessage **)&r);
  if (rc == 0 && id) *id = r->info->file_id;
  if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
  return rc;
}

static int do_stat(cmn_rpc_channel *ch, const char *path, Cairn__V1__FileInfoReply **out) {
  Cairn__V1__PathRequest req = CAIRN__V1__PATH_REQUEST__INIT;
  req.path = bin_of(path);
  return call(ch, "Stat", &req.base, (ProtobufCMessage **)out);
}

/* Every entry of a directory as "name:id:size\n" lines, in order. */
static int list_all(cmn_rpc_channel *ch, const char *dir, cmn_buf *out) {
  char after[300] = "";
  for (int pages = 0; pages < 100000; pages++) {
    Cairn__V1__ListRequest req = CAIRN__V1__LIST_REQUEST__INIT;
    req.path = bin_of(dir);
    req.start_after = bin_of(after);
    req.limit = 700;
    Cairn__V1__ListReply *r = NULL;
    int rc = call(ch, "List", &req.base, (ProtobufCMessage **)&r);
    if (rc != 0) return rc;
    for (size_t i = 0; i < r->n_entries; i++) {
      const char *name = strrchr(r->entries[i]->path, '/');
      name = name ? name + 1 : r->entries[i]->path;
      cmn_buf_appendf(out, "%s:%llu:%llu\n", name, (unsigned long long)r->entries[i]->file_id,
                      (unsigned long long)r->entries[i]->size);
      snprintf(after, sizeof after, "%s", name);
    }
    int more = r->more;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    if (!more) return 0;
  }
  return CAIRN_EINTERNAL;
}

/* ---- creates from many threads --------------------------------------------- */

struct storm {
  struct cluster *c;
  int id;
  int count;           /* files to create; 0 = until stopped or failure */
  atomic_bool *stop;
  char (*acked)[64];   /* names acknowledged, in order */
  int nacked;
  int cap;
};

static void *storm_main(void *arg) {
  struct storm *s = arg;
  for (int i = 0; s->count == 0 || i < s->count; i++) {
    if (s->stop && atomic_load(s->stop)) break;
    char path[64];
    snprintf(path, sizeof path, "/d%d/f-%05d-%d", s->id % 10, i, s->id);
    if (do_create(s->c->ch, path, NULL) != 0) {
      if (s->count) fprintf(stderr, "create %s failed\n", path);
      break;
    }
    if (s->nacked < s->cap) snprintf(s->acked[s->nacked++], 64, "%s", path);
  }
  return NULL;
}

static void restart_keeps_10000_files(void **state) {
  struct cluster *c = *state;
  /* Checkpoints every 2,000 records: recovery = checkpoint + log replay. */
  it_stop(&c->master, SIGTERM, 10000);
  assert_int_equal(master_start(c, "2000"), 0);
  for (int d = 0; d < 10; d++) {
    char p[16];
    snprintf(p, sizeof p, "/d%d", d);
    assert_int_equal(do_mkdir(c->ch, p), 0);
  }
  pthread_t th[8];
  struct storm s[8];
  for (int i = 0; i < 8; i++) {
    s[i] = (struct storm){.c = c, .id = i, .count = 1250, .cap = 1250};
    s[i].acked = cmn_calloc(1250, 64);
    assert_int_equal(pthread_create(&th[i], NULL, storm_main, &s[i]), 0);
  }
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(s[i].nacked, 1250);
    free(s[i].acked);
  }
  cmn_buf before = {0}, after = {0};
  for (int d = 0; d < 10; d++) {
    char p[16];
    snprintf(p, sizeof p, "/d%d", d);
    assert_int_equal(list_all(c->ch, p, &before), 0);
  }
  int lines = 0;
  for (size_t i = 0; i < before.len; i++) lines += before.data[i] == '\n';
  assert_int_equal(lines, 10000);
  /* A checkpoint was written while the creates ran. */
  char json[65536];
  assert_int_equal(it_http_get(c->http, "/status", NULL, json, sizeof json), 200);
  assert_non_null(strstr(json, "\"files\":10000"));

  assert_true(WIFEXITED(it_stop(&c->master, SIGTERM, 10000)));
  assert_int_equal(master_start(c, "2000"), 0);
  for (int d = 0; d < 10; d++) {
    char p[16];
    snprintf(p, sizeof p, "/d%d", d);
    assert_int_equal(list_all(c->ch, p, &after), 0);
  }
  assert_int_equal(before.len, after.len);
  assert_memory_equal(before.data, after.data, before.len);
  assert_true(it_file_contains(c->log, "checkpoint: done"));
  cmn_buf_free(&before);
  cmn_buf_free(&after);
}

static void kill9_during_create_storm_loses_nothing_acknowledged(void **state) {
  struct cluster *c = *state;
  for (int d = 0; d < 10; d++) {
    char p[16];
    snprintf(p, sizeof p, "/d%d", d);
    assert_int_equal(do_mkdir(c->ch, p), 0);
  }
  atomic_bool stop = false;
  pthread_t th[8];
  struct storm s[8];
  for (int i = 0; i < 8; i++) {
    s[i] = (struct storm){.c = c, .id = i, .stop = &stop, .cap = 200000};
    s[i].acked = cmn_calloc(200000, 64);
    assert_int_equal(pthread_create(&th[i], NULL, storm_main, &s[i]), 0);
  }
  usleep(1500 * 1000);
  it_stop(&c->master, SIGKILL, 5000); /* in the middle of the storm */
  atomic_store(&stop, true);
  int total = 0;
  for (int i = 0; i < 8; i++) {
    pthread_join(th[i], NULL);
    total += s[i].nacked;
  }
  assert_true(total > 100);
  assert_int_equal(master_start(c, "1000000"), 0);
  int missing = 0;
  for (int i = 0; i < 8; i++) {
    for (int k = 0; k < s[i].nacked; k++) {
      Cairn__V1__FileInfoReply *r = NULL;
      if (do_stat(c->ch, s[i].acked[k], &r) != 0) missing++;
      if (r) protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    free(s[i].acked);
  }
  fprintf(stderr, "acknowledged creates before kill -9: %d, missing after restart: %d\n", total,
          missing);
  assert_int_equal(missing, 0);
}

/* Path of the newest oplog segment in the meta directory. */
static int last_segment(const struct cluster *c, char *out, size_t n, int first) {
  char meta[400];
  snprintf(meta, sizeof meta, "%s/meta", c->data);
  DIR *d = opendir(meta);
  if (!d) return -1;
  char best[256] = "";
  struct dirent *e;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "oplog.", 6) != 0 || strstr(e->d_name, ".tmp")) continue;
    if (!best[0] || (first ? strcmp(e->d_name, best) < 0 : strcmp(e->d_name, best) > 0))
      snprintf(best, sizeof best, "%s", e->d_name);
  }
  closedir(d);
  if (!best[0]) return -1;
  snprintf(out, n, "%s/%s", meta, best);
  return 0;
}

static void torn_tail_cut_and_mid_log_corruption_refused(void **state) {
  struct cluster *c = *state;
  assert_int_equal(do_mkdir(c->ch, "/t"), 0);
  for (int i = 0; i < 200; i++) {
    char p[32];
    snprintf(p, sizeof p, "/t/f%03d", i);
    assert_int_equal(do_create(c->ch, p, NULL), 0);
  }
  it_stop(&c->master, SIGKILL, 5000);
  /* A torn tail: half a record's worth of junk after the last record. */
  char seg[600];
  assert_int_equal(last_segment(c, seg, sizeof seg, 0), 0);
  int fd = open(seg, O_WRONLY | O_APPEND);
  assert_true(fd >= 0);
  const char junk[] = "\x30\x00\x00\x00garbage-from-a-crash";
  assert_int_equal(write(fd, junk, sizeof junk - 1), (ssize_t)(sizeof junk - 1));
  close(fd);
  assert_int_equal(master_start(c, "1000000"), 0);
  cmn_buf list = {0};
  assert_int_equal(list_all(c->ch, "/t", &list), 0);
  int lines = 0;
  for (size_t i = 0; i < list.len; i++) lines += list.data[i] == '\n';
  assert_int_equal(lines, 200);
  cmn_buf_free(&list);
  it_stop(&c->master, SIGTERM, 10000);

  /* Corruption in the middle of the log: the master must refuse to start. */
  struct stat st;
  assert_int_equal(stat(seg, &st), 0);
  fd = open(seg, O_RDWR);
  assert_true(fd >= 0);
  off_t mid = st.st_size / 2;
  unsigned char b;
  assert_int_equal(pread(fd, &b, 1, mid), 1);
  b ^= 0x5a;
  assert_int_equal(pwrite(fd, &b, 1, mid), 1);
  close(fd);
  char bin[512];
  it_bin(bin, sizeof bin, "cairn-master");
  char *argv[] = {bin, "--dir", c->data, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                  NULL};
  int code = it_run(argv, c->log, 20000);
  assert_int_not_equal(code, 0);
  assert_true(it_file_contains(c->log, "corrupt"));
}

static void http_endpoints(void **state) {
  struct cluster *c = *state;
  assert_int_equal(do_mkdir(c->ch, "/web"), 0);
  char body[65536];
  assert_int_equal(it_http_get(c->http, "/healthz", NULL, body, sizeof body), 200);
  assert_int_equal(it_http_get(c->http, "/status", NULL, body, sizeof body), 200);
  assert_non_null(strstr(body, "\"directories\":1"));
  assert_non_null(strstr(body, "\"servers\":[]"));
  assert_non_null(strstr(body, "\"repair\":{\"corrupt_chunks\":0,\"clones_in_flight\":0"));
  assert_int_equal(it_http_get(c->http, "/status", "text/html", body, sizeof body), 200);
  assert_non_null(strstr(body, "<table"));
  assert_int_equal(it_http_get(c->http, "/metrics", NULL, body, sizeof body), 200);
  assert_non_null(strstr(body, "cairn_master_files 0"));
  assert_non_null(strstr(body, "cairn_rpc_calls_total{service=\"cairn.v1.Master\",method=\"Mkdir\",code=\"ok\"} 1"));
  assert_int_equal(it_http_get(c->http, "/nope", NULL, body, sizeof body), 404);
}

static void namespace_errors_over_rpc(void **state) {
  struct cluster *c = *state;
  assert_int_equal(do_mkdir(c->ch, "/a/b"), 0);
  assert_int_equal(do_create(c->ch, "/a/b/file", NULL), 0);
  assert_int_equal(do_create(c->ch, "/a/b/file", NULL), CAIRN_EEXIST);
  assert_int_equal(do_create(c->ch, "/a/../x", NULL), CAIRN_EBADPATH);
  assert_int_equal(do_create(c->ch, "relative", NULL), CAIRN_EBADPATH);
  assert_int_equal(do_create(c->ch, "/missing/dir/f", NULL), CAIRN_ENOENT);
  assert_int_equal(do_create(c->ch, "/a/b/file/under", NULL), CAIRN_ENOTDIR);
  assert_int_equal(do_create(c->ch, "/.trash/x", NULL), CAIRN_EPERM);
  /* A NUL inside a path reaches the master whole and is refused. */
  Cairn__V1__CreateRequest req = CAIRN__V1__CREATE_REQUEST__INIT;
  req.path.data = (uint8_t *)"/a/x\0y";
  req.path.len = 6;
  assert_int_equal(call(c->ch, "Create", &req.base, NULL), CAIRN_EBADPATH);
  Cairn__V1__FileInfoReply *r = NULL;
  assert_int_equal(do_stat(c->ch, "/a/x", &r), CAIRN_ENOENT);
  Cairn__V1__DeleteRequest del = CAIRN__V1__DELETE_REQUEST__INIT;
  del.path = bin_of("/a");
  assert_int_equal(call(c->ch, "Delete", &del.base, NULL), CAIRN_ENOTEMPTY);
  del.recursive = 1;
  Cairn__V1__DeleteReply *dr = NULL;
  assert_int_equal(call(c->ch, "Delete", &del.base, (ProtobufCMessage **)&dr), 0);
  assert_non_null(strstr(dr->trash_path, "/.trash/"));
  /* Undelete brings it back where it was. */
  Cairn__V1__UndeleteRequest un = CAIRN__V1__UNDELETE_REQUEST__INIT;
  un.trash_path = bin_of(dr->trash_path);
  assert_int_equal(call(c->ch, "Undelete", &un.base, NULL), 0);
  protobuf_c_message_free_unpacked(&dr->base, NULL);
  assert_int_equal(do_stat(c->ch, "/a/b/file", &r), 0);
  assert_int_equal(r->info->type, CAIRN__V1__FILE_TYPE__FILE_TYPE_FILE);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  /* Rename is atomic and keeps the file id. */
  Cairn__V1__RenameRequest rn = CAIRN__V1__RENAME_REQUEST__INIT;
  rn.from = bin_of("/a/b");
  rn.to = bin_of("/c");
  assert_int_equal(call(c->ch, "Rename", &rn.base, NULL), 0);
  assert_int_equal(do_stat(c->ch, "/c/file", &r), 0);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  /* Writes need chunkservers: none are registered. */
  uint64_t id;
  assert_int_equal(do_create(c->ch, "/c/new", &id), 0);
  Cairn__V1__PrepareWriteRequest pw = CAIRN__V1__PREPARE_WRITE_REQUEST__INIT;
  pw.file_id = id;
  assert_int_equal(call(c->ch, "PrepareWrite", &pw.base, NULL), CAIRN_ENOSERVERS);
  /* The wrong secret is refused. */
  cmn_rpc_client_config cc = {.secret = "not-the-cluster-secret-at-all"};
  cmn_rpc_channel *bad;
  assert_int_equal(cmn_rpc_channel_open(c->rpc, &cc, &bad), 0);
  assert_int_equal(do_mkdir(bad, "/intruder"), CAIRN_EAUTH);
  cmn_rpc_channel_close(bad);
}


/* ---- lease grants against stand-in chunkserver control endpoints ------------ */

/* A chunkserver's control plane reduced to SetVersion: records what the
 * master pushes and refuses when told to. */
struct endpoint {
  cmn_rpc_server *srv;
  char addr[64];
  char id[40];
  int refuse;
  int delay_ms;               /* answer this late */
  atomic_int calls;
  atomic_int leases;          /* calls that made this server primary */
  uint64_t last_old, last_new;
};

/* SetVersion calls being answered at once, across every endpoint, and the
 * most seen together. */
static atomic_int ep_in_flight, ep_max_in_flight;

static void ep_set_version(cmn_rpc_call *call, const ProtobufCMessage *msg, void *ctx) {
  struct endpoint *e = ctx;
  const Cairn__V1__SetVersionRequest *r = (const Cairn__V1__SetVersionRequest *)msg;
  atomic_fetch_add(&e->calls, 1);
  int now = atomic_fetch_add(&ep_in_flight, 1) + 1;
  for (int seen = atomic_load(&ep_max_in_flight);
       now > seen && !atomic_compare_exchange_weak(&ep_max_in_flight, &seen, now);) {
  }
  if (e->delay_ms > 0) usleep((useconds_t)e->delay_ms * 1000);
  atomic_fetch_sub(&ep_in_flight, 1);
  if (e->refuse) {
    cmn_rpc_fail(call, CAIRN_EIO, "disk failed");
    return;
  }
  e->last_old = r->old_version;
  e->last_new = r->new_version;
  if (r->lease_expiry_ms > 0) atomic_fetch_add(&e->leases, 1);
  Cairn__V1__Empty rep = CAIRN__V1__EMPTY__INIT;
  cmn_rpc_reply(call, &rep.base);
}

static const cmn_rpc_method ep_methods[] = {{"SetVersion", ep_set_version}};

static void register_endpoint(struct cluster *c, struct endpoint *e, int n, const char *zone) {
  cmn_rpc_server_config cfg = {.addr = "127.0.0.1:0", .secret = c->secret, .workers = 1,
                               .service = &cairn__v1__chunkserver__descriptor,
                               .methods = ep_methods, .n_methods = 1, .ctx = e};
  assert_int_equal(cmn_rpc_server_start(&cfg, &e->srv), 0);
  snprintf(e->addr, sizeof e->addr, "127.0.0.1:%d", cmn_rpc_server_port(e->srv));
  snprintf(e->id, sizeof e->id, "00000000-0000-4000-8000-%012d", n);
  char cid[64] = "";
  char *path = cmn_sprintf("%s/cluster_id", c->data);
  char *text = NULL;
  assert_int_equal(cmn_read_file(path, 4096, &text, NULL), 0);
  snprintf(cid, sizeof cid, "%.36s", text);
  free(text);
  free(path);
  Cairn__V1__ServerAddress a = CAIRN__V1__SERVER_ADDRESS__INIT;
  a.id = e->id;
  a.data_addr = e->addr; /* not used by these tests */
  a.rpc_addr = e->addr;
  a.zone = (char *)zone;
  Cairn__V1__RegisterRequest req = CAIRN__V1__REGISTER_REQUEST__INIT;
  req.addr = &a;
  req.capacity_bytes = 100ull << 30;
  req.free_bytes = 90ull << 30;
  req.cluster_id = cid;
  assert_int_equal(call(c->ch, "RegisterServer", &req.base, NULL), 0);
}

/* Three stand-in servers in zones z1..z3, each refusing or answering late
 * as told. */
static void three_endpoints(struct cluster *c, struct endpoint ep[3], int refuse, int delay_ms) {
  memset(ep, 0, 3 * sizeof ep[0]);
  const char *zones[3] = {"z1", "z2", "z3"};
  for (int i = 0; i < 3; i++) {
    register_endpoint(c, &ep[i], i + 1, zones[i]);
    ep[i].refuse = refuse;
    ep[i].delay_ms = delay_ms;
  }
}

/* PrepareWrite of chunk 0 of a new file at `path`. */
static int prepare_new(struct cluster *c, const char *path, Cairn__V1__PrepareWriteReply **r) {
  uint64_t id;
  assert_int_equal(do_create(c->ch, path, &id), 0);
  Cairn__V1__PrepareWriteRequest pw = CAIRN__V1__PREPARE_WRITE_REQUEST__INIT;
  pw.file_id = id;
  return call(c->ch, "PrepareWrite", &pw.base, (ProtobufCMessage **)r);
}

static void lease_grant_bumps_version_durably(void **state) {
  struct cluster *c = *state;
  struct endpoint ep[3];
  three_endpoints(c, ep, 0, 0);
  ep[2].refuse = 1; /* this replica cannot take the new version */
  uint64_t id;
  assert_int_equal(do_create(c->ch, "/leased", &id), 0);
  Cairn__V1__PrepareWriteRequest pw = CAIRN__V1__PREPARE_WRITE_REQUEST__INIT;
  pw.file_id = id;
  Cairn__V1__PrepareWriteReply *r = NULL;
  assert_int_equal(call(c->ch, "PrepareWrite", &pw.base, (ProtobufCMessage **)&r), 0);
  /* Allocated at version 1, leased at 2; the refusing replica is left out. */
  assert_int_equal(r->chunk->version, 2);
  assert_int_equal(r->chunk->n_replicas, 2);
  assert_true(r->chunk->lease_expiry_ms > 0);
  assert_string_equal(r->chunk->primary_id, r->chunk->replicas[0]->id);
  uint64_t handle = r->chunk->handle;
  protobuf_c_message_free_unpacked(&r->base, NULL);
  /* Every replica was told once; when the refusing one had been chosen as
   * primary, one of the others was told again, with the lease. */
  int leases = 0, calls = 0;
  for (int i = 0; i < 3; i++) {
    calls += atomic_load(&ep[i].calls);
    leases += atomic_load(&ep[i].leases);
    if (i < 2) {
      assert_int_equal(ep[i].last_old, 1);
      assert_int_equal(ep[i].last_new, 2);
    }
  }
  assert_int_equal(atomic_load(&ep[2].calls) >= 1, 1);
  assert_true(calls == 3 || calls == 4);
  assert_int_equal(leases, 1);
  /* While the lease is valid the same primary is handed out, no new bump. */
  assert_int_equal(call(c->ch, "PrepareWrite", &pw.base, (ProtobufCMessage **)&r), 0);
  assert_int_equal(r->chunk->version, 2);
  assert_int_equal(r->chunk->handle, handle);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  int calls_after = 0;
  for (int i = 0; i < 3; i++) calls_after += atomic_load(&ep[i].calls);
  assert_int_equal(calls_after, calls);
  /* The bump is durable: after a restart the master still knows version 2. */
  assert_true(WIFEXITED(it_stop(&c->master, SIGTERM, 10000)));
  assert_int_equal(master_start(c, "1000000"), 0);
  Cairn__V1__LookupChunksRequest lk = CAIRN__V1__LOOKUP_CHUNKS_REQUEST__INIT;
  lk.file_id = id;
  lk.count = 4;
  Cairn__V1__LookupChunksReply *lr = NULL;
  assert_int_equal(call(c->ch, "LookupChunks", &lk.base, (ProtobufCMessage **)&lr), 0);
  assert_int_equal(lr->n_chunks, 1);
  assert_int_equal(lr->chunks[0]->handle, handle);
  assert_int_equal(lr->chunks[0]->version, 2);
  protobuf_c_message_free_unpacked(&lr->base, NULL);
  for (int i = 0; i < 3; i++) cmn_rpc_server_stop(ep[i].srv);
}

/* A grant tells its replicas all at once: it waits for the slowest, not
 * for the sum of them. */
static void grant_tells_replicas_at_once(void **state) {
  struct cluster *c = *state;
  struct endpoint ep[3];
  three_endpoints(c, ep, 0, 300);
  atomic_store(&ep_max_in_flight, 0);
  Cairn__V1__PrepareWriteReply *r = NULL;
  assert_int_equal(prepare_new(c, "/at-once", &r), 0);
  assert_int_equal(r->chunk->n_replicas, 3);
  protobuf_c_message_free_unpacked(&r->base, NULL);
  assert_int_equal(atomic_load(&ep_max_in_flight), 3);
  for (int i = 0; i < 3; i++) cmn_rpc_server_stop(ep[i].srv);
}

/* A grant that no replica takes leaves their copies alone: they are the
 * only copies there are, so no delete is ever ordered for them. */
static void grant_nobody_took_deletes_nothing(void **state) {
  struct cluster *c = *state;
  struct endpoint ep[3];
  three_endpoints(c, ep, 1, 0);
  Cairn__V1__PrepareWriteReply *pr = NULL;
  assert_true(prepare_new(c, "/refused", &pr) < 0);
  assert_null(pr);
  for (int i = 0; i < 3; i++) assert_true(atomic_load(&ep[i].calls) >= 1);
  /* Each server's next heartbeats carry no instruction to delete it. */
  for (int beat = 0; beat < 2; beat++) {
    for (int i = 0; i < 3; i++) {
      Cairn__V1__HeartbeatRequest hb = CAIRN__V1__HEARTBEAT_REQUEST__INIT;
      hb.server_id = ep[i].id;
      hb.capacity_bytes = 100ull << 30;
      hb.free_bytes = 90ull << 30;
      Cairn__V1__HeartbeatReply *r = NULL;
      assert_int_equal(call(c->ch, "Heartbeat", &hb.base, (ProtobufCMessage **)&r), 0);
      for (size_t k = 0; k < r->n_instructions; k++)
        assert_int_not_equal(r->instructions[k]->kind,
                             CAIRN__V1__SERVER_INSTRUCTION__KIND__KIND_DELETE);
      protobuf_c_message_free_unpacked(&r->base, NULL);
    }
  }
  for (int i = 0; i < 3; i++) cmn_rpc_server_stop(ep[i].srv);
}

static void init_refuses_existing_cluster(void **state) {
  struct cluster *c = *state;
  char bin[512];
  it_bin(bin, sizeof bin, "cairn-master");
  char *init[] = {bin, "--init", "--dir", c->data, NULL};
  assert_int_not_equal(it_run(init, c->log, 20000), 0);
  assert_true(it_file_contains(c->log, "refusing to overwrite"));
  /* A second master on the same directory is refused too. */
  char *second[] = {bin, "--dir", c->data, "--listen", "127.0.0.1:0", "--http-listen",
                    "127.0.0.1:0", NULL};
  assert_int_not_equal(it_run(second, c->log, 20000), 0);
  assert_true(it_file_contains(c->log, "another master is running"));
  char *bad[] = {bin, "--dir", c->data, "--chunk-sise", "1M", NULL};
  assert_int_equal(it_run(bad, c->log, 20000), 2);
}

CAIRN_TEST_MAIN(cmocka_unit_test_setup_teardown(restart_keeps_10000_files, setup, teardown),
                cmocka_unit_test_setup_teardown(kill9_during_create_storm_loses_nothing_acknowledged,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(torn_tail_cut_and_mid_log_corruption_refused, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(http_endpoints, setup, teardown),
                cmocka_unit_test_setup_teardown(namespace_errors_over_rpc, setup, teardown),
                cmocka_unit_test_setup_teardown(lease_grant_bumps_version_durably, setup, teardown),
                cmocka_unit_test_setup_teardown(grant_nobody_took_deletes_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(grant_tells_replicas_at_once, setup, teardown),
                cmocka_unit_test_setup_teardown(init_refuses_existing_cluster, setup, teardown))
