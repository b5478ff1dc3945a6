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

#endif
