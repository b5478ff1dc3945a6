/*
 * master_mem.c - master memory per file and per chunk at scale.
 *
 * Drives the master's own state machine (mst_apply, the code that runs live
 * and at replay) to build N files with 40-byte names in 1,000 directories,
 * then N chunks (one per file, each with 3 replicas), and prints the
 * resident-memory growth per file and per chunk (RSS delta / N from
 * /proc/self/statm: namespace nodes, names, indexes, chunk table, replica
 * sets and allocator overhead all included).
 *
 *   bench_master_mem [N]        (default 1000000)
 */
#include "cmn_log.h"
#include "cmn_util.h"
#include "mst_master.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long rss_bytes(void) {
  long size = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 1000000;
  if (n < 1000) n = 1000;
  cmn_log_set_level(CMN_LOG_WARN);
  mst_config cfg;
  memset(&cfg, 0, sizeof cfg);
  char err[256];
  if (cmn_config_defaults(&mst_config_spec, &cfg, err, sizeof err) != 0) return 1;
  mst_master m;
  if (mst_master_init(&m, &cfg) != 0) return 1;
  int64_t now = 1700000000000;
  Cairn__V1__OplogRecord rec = CAIRN__V1__OPLOG_RECORD__INIT;
  Cairn__V1__OpMkdir mk = CAIRN__V1__OP_MKDIR__INIT;
  for (int d = 0; d < 1000; d++) {
    char path[32];
    snprintf(path, sizeof path, "/dir%04d", d);
    mk.path = path;
    mk.first_id = m.next_file_id;
    mk.now_ms = now;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_MKDIR;
    rec.mkdir = &mk;
    if (mst_apply(&m, &rec) != 0) return 1;
  }
  uint64_t first_file = m.next_file_id;
  long base = rss_bytes();
  int64_t t0 = cmn_mono_ns();
  Cairn__V1__OpCreate cr = CAIRN__V1__OP_CREATE__INIT;
  for (long i = 0; i < n; i++) {
    char path[64];
    snprintf(path, sizeof path, "/dir%04ld/file-%035ld", i % 1000, i); /* 40-byte name */
    cr.path = path;
    cr.first_id = m.next_file_id;
    cr.exclusive = 1;
    cr.now_ms = now;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_CREATE;
    rec.create = &cr;
    if (mst_apply(&m, &rec) != 0) return 1;
  }
  double create_s = (double)(cmn_mono_ns() - t0) / 1e9;
  long files = rss_bytes();
  Cairn__V1__OpAddChunk ac = CAIRN__V1__OP_ADD_CHUNK__INIT;
  for (long i = 0; i < n; i++) {
    ac.file_id = first_file + (uint64_t)i;
    ac.index = 0;
    ac.handle = m.next_handle;
    ac.version = 1;
    rec.op_case = CAIRN__V1__OPLOG_RECORD__OP_ADD_CHUNK;
    rec.add_chunk = &ac;
    if (mst_apply(&m, &rec) != 0) return 1;
    for (uint16_t r = 0; r < 3; r++) mst_chunks_add_replica(m.chunks, ac.handle, (uint16_t)((i + r) % 12));
  }
  long chunks = rss_bytes();
  printf("master_files %ld\n", n);
  printf("master_bytes_per_file %.1f\n", (double)(files - base) / (double)n);
  printf("master_bytes_per_chunk %.1f\n", (double)(chunks - files) / (double)n);
  printf("master_apply_creates_per_s %.0f\n", (double)n / create_s);
  printf("ratio_bytes_per_file_to_goal_200 %.2f\n", (double)(files - base) / (double)n / 200.0);
  printf("ratio_bytes_per_chunk_to_goal_64 %.2f\n", (double)(chunks - files) / (double)n / 64.0);
  mst_master_destroy(&m);
  cmn_config_free(&mst_config_spec, &cfg);
  return 0;
}
