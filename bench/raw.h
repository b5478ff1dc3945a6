/*
 * raw.h - the disk's raw write limit, measured in the same run and the same
 * shape as the figure it is compared with: `streams` concurrent writers,
 * each writing `bytes` to a new file in 1 MiB writes and fsync'ing it, as
 * `dd if=/dev/zero bs=1M count=N conv=fsync` run `streams` times at once.
 *
 * Benchmarks call it right before (and after) each measurement of the same
 * size, so that the disk's drift over a run (large on shared or virtual
 * disks) weighs on the limit and the figure alike.
 *
 * Not thread-safe: one measurement at a time.
 */
#ifndef CAIRN_BENCH_RAW_H
#define CAIRN_BENCH_RAW_H

#include <stddef.h>

/* Seconds from the first write to the last fsync's return; the files are
 * removed afterwards, outside the time. Negative when a write, fsync or
 * file creation in `dir` fails (said on stderr). */
double bench_raw_fsync_s(const char *dir, size_t bytes, int streams);

/* The raw read limit: write `n` bytes of `data` to `path` with fsync (0 or
 * -1), then later, after bench_drop_caches, read them back in 1 MiB reads
 * as `dd bs=1M` does (seconds, or negative on a failure or short file). */
int bench_raw_write_file(const char *path, const void *data, size_t n);
double bench_raw_read_s(const char *path, size_t n);

/* sync, then drop the page cache (needs root): 1 when dropped, else 0. */
int bench_drop_caches(void);

#endif
