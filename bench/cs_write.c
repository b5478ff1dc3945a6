/*
 * cs_write.c - the chunkserver write path against its raw limits.
 *
 * Starts a master and three chunkservers (64 MiB chunks) on 127.0.0.1 in
 * a temporary directory under $TMPDIR, then measures, in one run:
 *   - loopback TCP throughput (one stream, 1 MiB writes): the network limit;
 *   - push throughput through a chain of three servers (the pipelined data
 *     plane alone);
 *   - full writes (allocation/lease, push along the chain, two-phase commit
 *     with fsync on every replica) of 1, 8 and 64 MiB: MB/s, p50 and p99,
 *     each write preceded by the disk's raw limit at the same size (raw.h:
 *     fsync'd writes from 3 streams and from 1), measured in RAWDIR, which
 *     should be on the cluster's disk (default: $TMPDIR, where the cluster
 *     lives).
 * Prints one "name value" line per figure; bench/run.sh adds the ratios.
 *
 *   CAIRN_BIN_DIR=build-bench/bin bench_cs_write [RAWDIR]
 */
#include "cairn_error.h"
#include "cluster.h"
#include "cmn_dpclient.h"
#include "cmn_util.h"
#include "raw.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MiB (1024.0 * 1024.0)

/* ---- loopback TCP ---------------------------------------------------------------- */

struct sink {
  int fd;
  uint64_t got;
};

static void *sink_main(void *arg) {
  struct sink *k = arg;
  int c = accept(k->fd, NULL, NULL);
  char *buf = cmn_malloc(1 << 20);
  ssize_t r;
  while (c >= 0 && (r = read(c, buf, 1 << 20)) > 0) k->got += (uint64_t)r;
  if (c >= 0) close(c);
  free(buf);
  return NULL;
}

static double loopback_mbps(uint64_t total) {
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t sl = sizeof sa;
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 1) != 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) != 0)
    return -1;
  struct sink k = {ls, 0};
  pthread_t th;
  pthread_create(&th, NULL, sink_main, &k);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
  char *buf = cmn_malloc(1 << 20);
  memset(buf, 'x', 1 << 20);
  int64_t t0 = cmn_mono_ns();
  for (uint64_t sent = 0; sent < total;) {
    ssize_t w = write(fd, buf, 1 << 20);
    if (w <= 0) break;
    sent += (uint64_t)w;
  }
  close(fd);
  pthread_join(th, NULL);
  double s = (double)(cmn_mono_ns() - t0) / 1e9;
  close(ls);
  free(buf);
  return (double)k.got / MiB / s;
}

/* ---- pushes and writes --------------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static double push_chain_mbps(it_cluster *c, const uint8_t *data, size_t len, int n) {
  const char *chain[2] = {c->cs[1].data, c->cs[2].data};
  int64_t t0 = cmn_mono_ns();
  for (int i = 0; i < n; i++) {
    uint8_t id[16];
    cmn_random_bytes(id, sizeof id);
    cmn_dp_conn *conn;
    if (cmn_dp_connect(c->cs[0].data, c->secret, 30000, &conn) != 0) return -1;
    int rc = cmn_dp_push(conn, id, data, len, chain, 2);
    cmn_dp_close(conn);
    if (rc != 0) {
      fprintf(stderr, "push failed: %s\n", cairn_err_name(rc));
      return -1;
    }
  }
  double s = (double)(cmn_mono_ns() - t0) / 1e9;
  return (double)len * n / MiB / s;
}

/*
 * `n` writes of `len` bytes, each right after the raw limit of the same
 * size (raw.h: 3 fsync'd streams, then 1), so that both see the disk as it
 * is at that moment of the run.
 */
static void write_size(it_cluster *c, const char *raw_dir, const uint8_t *data, size_t len, int n,
                       const char *name) {
  char path[64];
  snprintf(path, sizeof path, "/bench/%s", name);
  uint64_t id;
  if (it_create(c, path, &id) != 0) return;
  int64_t *lat = cmn_calloc((size_t)n, sizeof *lat);
  double raw3 = 0, raw1 = 0, total_s = 0;
  int done = 0;
  for (int i = 0; i < n; i++) {
    double r3 = bench_raw_fsync_s(raw_dir, len, 3), r1 = bench_raw_fsync_s(raw_dir, len, 1);
    if (r3 < 0 || r1 < 0) break;
    raw3 += r3;
    raw1 += r1;
    int64_t s = cmn_mono_ns();
    if (it_write(c, id, (uint64_t)i * len, data, len) != 0)
      break;
    lat[done++] = cmn_mono_ns() - s;
    total_s += (double)lat[done - 1] / 1e9;
  }
  if (done == 0) {
    free(lat);
    return;
  }
  qsort(lat, (size_t)done, sizeof *lat, cmp_i64);
  printf("raw_fsync_1_stream_%s_mb_per_s %.1f\n", name, (double)len * done / MiB / raw1);
  printf("raw_fsync_3_streams_%s_mb_per_s %.1f\n", name, 3.0 * (double)len * done / MiB / raw3);
  printf("cs_write_%s_mb_per_s %.1f\n", name, (double)len * done / MiB / total_s);
  printf("cs_write_%s_p50_ms %.1f\n", name, (double)lat[done / 2] / 1e6);
  printf("cs_write_%s_p99_ms %.1f\n", name, (double)lat[(done * 99) / 100 < done ? (done * 99) / 100 : done - 1] / 1e6);
  fflush(stdout);
  free(lat);
}

/* Two writers, each with its own file: how far overlapping one write's push
 * with another's commit takes a single client (the client library keeps
 * several chunks in flight for large transfers). */
struct par {
  it_cluster *c;
  const uint8_t *data;
  int id, n, ok;
};

static void *par_main(void *arg) {
  struct par *p = arg;
  char path[64];
  snprintf(path, sizeof path, "/bench/par-%d", p->id);
  uint64_t fid;
  if (it_create(p->c, path, &fid) != 0) return NULL;
  for (int i = 0; i < p->n; i++) {
    if (it_write(p->c, fid, (uint64_t)i * (64u << 20), p->data, 64u << 20) != 0) break;
    p->ok++;
  }
  return NULL;
}

static void write_parallel(it_cluster *c, const uint8_t *data, int writers, int n) {
  pthread_t th[4];
  struct par ps[4];
  int64_t t0 = cmn_mono_ns();
  for (int i = 0; i < writers; i++) {
    ps[i] = (struct par){c, data, i, n, 0};
    pthread_create(&th[i], NULL, par_main, &ps[i]);
  }
  int ok = 0;
  for (int i = 0; i < writers; i++) {
    pthread_join(th[i], NULL);
    ok += ps[i].ok;
  }
  double s = (double)(cmn_mono_ns() - t0) / 1e9;
  printf("cs_write_64mib_%d_in_flight_mb_per_s %.1f\n", writers, ok * 64.0 / s);
}

int main(int argc, char **argv) {
  const char *raw_dir = argc > 1 ? argv[1] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  it_cluster c;
  if (it_cluster_start_chunk(&c, "bench", 3, 3, "64M") != 0) {
    fprintf(stderr, "cannot start the cluster (logs kept with CAIRN_KEEP_TEST_DIRS=1)\n");
    it_cluster_stop(&c);
    return 1;
  }
  size_t max = 64u << 20;
  uint8_t *data = cmn_malloc(max);
  cmn_random_bytes(data, max);
  printf("raw_loopback_tcp_mb_per_s %.1f\n", loopback_mbps(2ull << 30));
  /* Two pushes: unused pushed bytes stay in the servers' push buffers
   * until they expire, and the writes below need room there too. */
  printf("cs_push_chain3_mb_per_s %.1f\n", push_chain_mbps(&c, data, max, 2));
  fflush(stdout);
  sleep(1);
  write_size(&c, raw_dir, data, 1u << 20, 32, "1mib");
  write_size(&c, raw_dir, data, 8u << 20, 12, "8mib");
  write_size(&c, raw_dir, data, 64u << 20, 6, "64mib");
  write_parallel(&c, data, 2, 3);
  free(data);
  it_cluster_stop(&c);
  return 0;
}
