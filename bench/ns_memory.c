/*
 * ns_memory.c - memory and speed of the master's namespace at scale.
 *
 * Creates N files (default 1,000,000) with 40-byte names spread over 1,000
 * directories, each with one chunk handle, and prints the resident-memory
 * growth per file (RSS delta / N, read from /proc/self/statm: nodes, names,
 * chunk lists, indexes and allocator overhead all included). Then times
 * N creates in a single directory, stats and a paged listing, to show that
 * a huge directory costs O(log n) per operation.
 *
 * Not part of the CMake build; from the source tree:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Imaster -Icommon -o /tmp/ns_memory \
 *      bench/ns_memory.c master/namespace.c master/ns_*.c \
 *      common/util.c common/log.c common/error.c
 *   /tmp/ns_memory [N]
 */
#include "cmn_util.h"
#include "mst_ns.h"

#include <inttypes.h>
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

/* A 40-byte name unique for i: a fixed prefix and the number. */
static int name40(char *buf, size_t cap, const char *dir, uint64_t i) {
  return snprintf(buf, cap, "%s/file-with-a-forty-byte-name-%012" PRIu64, dir, i);
}

static int fill_dirs(uint64_t n) {
  mst_ns *ns;
  mst_ns_new(&ns);
  uint64_t id = MST_NS_FIRST_ID;
  char dir[32], path[128];
  long before = rss_bytes();
  int64_t t0 = cmn_mono_ns();
  for (int d = 0; d < 1000; d++) {
    snprintf(dir, sizeof dir, "/dir%04d", d);
    if (mst_ns_mkdir(ns, dir, strlen(dir), false, id++, 1, NULL) != 1) return 1;
  }
  for (uint64_t i = 0; i < n; i++) {
    snprintf(dir, sizeof dir, "/dir%04d", (int)(i % 1000));
    int len = name40(path, sizeof path, dir, i);
    uint64_t fid = id++;
    if (mst_ns_create(ns, path, (size_t)len, MST_NS_EXCLUSIVE, 0, fid, 2, NULL) != 1) return 1;
    if (mst_ns_chunk_append(ns, fid, 0, 1000000 + i) != 0) return 1;
  }
  double secs = (double)(cmn_mono_ns() - t0) / 1e9;
  long after = rss_bytes();
  mst_ns_counts c;
  mst_ns_get_counts(ns, &c);
  printf("%" PRIu64 " files (40-byte names, 1 chunk each) in 1000 dirs: %.2f s, %.0f creates/s\n",
         c.files, secs, (double)n / secs);
  printf("RSS delta %.1f MiB = %.1f bytes per file\n", (double)(after - before) / 1048576.0,
         (double)(after - before) / (double)n);
  t0 = cmn_mono_ns();
  uint64_t digest = mst_ns_digest(ns);
  printf("digest %016" PRIx64 " in %.2f s\n", digest, (double)(cmn_mono_ns() - t0) / 1e9);
  mst_ns_free(ns);
  return 0;
}

static int one_dir(uint64_t n) {
  mst_ns *ns;
  mst_ns_new(&ns);
  char path[128];
  mst_ns_mkdir(ns, "/big", 4, false, MST_NS_FIRST_ID, 1, NULL);
  int64_t t0 = cmn_mono_ns();
  for (uint64_t i = 0; i < n; i++) {
    /* Scrambled so arrival order is not name order. */
    int len = name40(path, sizeof path, "/big", i * UINT64_C(0x9E3779B97F4A7C15) % 1000000000000);
    if (mst_ns_create(ns, path, (size_t)len, 0, 0, MST_NS_FIRST_ID + 1 + i, 2, NULL) < 0) return 1;
    if ((i + 1) % (n / 4) == 0)
      printf("  %8" PRIu64 " files in one dir after %.2f s\n", i + 1,
             (double)(cmn_mono_ns() - t0) / 1e9);
  }
  t0 = cmn_mono_ns();
  mst_ns_info info;
  for (uint64_t i = 0; i < n; i++) {
    int len = name40(path, sizeof path, "/big", i * UINT64_C(0x9E3779B97F4A7C15) % 1000000000000);
    if (mst_ns_stat(ns, path, (size_t)len, &info) != 0) return 1;
  }
  double stat_s = (double)(cmn_mono_ns() - t0) / 1e9;
  static mst_ns_info page[1000];
  bool more = true;
  char last[64] = "";
  size_t last_len = 0, seen = 0;
  t0 = cmn_mono_ns();
  while (more) {
    int got = mst_ns_list(ns, "/big", 4, last, last_len, page, 1000, &more);
    if (got <= 0) break;
    memcpy(last, page[got - 1].name, page[got - 1].name_len);
    last_len = page[got - 1].name_len;
    seen += (size_t)got;
  }
  double list_s = (double)(cmn_mono_ns() - t0) / 1e9;
  printf("one dir: %" PRIu64 " stats %.2f s (%.0f/s); listed %zu in pages of 1000: %.2f s\n", n,
         stat_s, (double)n / stat_s, seen, list_s);
  mst_ns_free(ns);
  return 0;
}

int main(int argc, char **argv) {
  uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
  if (n < 4) n = 4;
  if (fill_dirs(n) != 0 || one_dir(n) != 0) {
    fprintf(stderr, "ns_memory: unexpected error\n");
    return 1;
  }
  return 0;
}
