#!/usr/bin/env bash
# Benchmarks. Builds a release tree in build-bench/, runs each benchmark and,
# in the same run, the raw limits of this machine, and prints one
# "name value" line per figure followed by the ratios.
#
#   bench/run.sh            every section
#   bench/run.sh master     only the master's
#   bench/run.sh gateway    only the gateway's (bench/gateway.sh)
#
# Everything runs on 127.0.0.1 in a temporary directory that is removed at
# the end; every process started is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
sections=${1:-all}

bash scripts/install-deps.sh >/dev/null
cmake -B build-bench -S . -DCMAKE_BUILD_TYPE=Release -DCAIRN_TESTS=OFF >/dev/null
cmake --build build-bench -j "$(nproc)" >/dev/null
bin=build-bench/bin
bench=build-bench/bench

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-bench-XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

results="$work/results"
: > "$results"
emit() { tee -a "$results"; }
val() { awk -v k="$1" '$1 == k { print $2 }' "$results" | tail -n 1; }
ratio() { # name numerator denominator
  local a b
  a=$(val "$2"); b=$(val "$3")
  if [ -n "$a" ] && [ -n "$b" ] && [ "$b" != 0 ]; then
    awk -v n="$1" -v a="$a" -v b="$b" 'BEGIN { printf "%s %.2f\n", n, a / b }' | emit
  fi
}

wait_file() { # file seconds
  for _ in $(seq 1 $(( $2 * 20 ))); do [ -s "$1" ] && return 0; sleep 0.05; done
  echo "bench: $1 did not appear" >&2; return 1
}

if [ "$sections" = all ] || [ "$sections" = master ]; then
  echo "# master: raw limit (small write + fdatasync on the disk under the master's dir)"
  "$bench/bench_fsync" "$work" 2 | emit
  echo "# master: memory at 1M files / 1M chunks"
  "$bench/bench_master_mem" 1000000 | emit
  echo "# master: metadata ops/s over gRPC on 127.0.0.1"
  "$bin/cairn-master" --init --dir "$work/master" --chunk-size 1M >/dev/null
  "$bin/cairn-master" --dir "$work/master" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --ready-file "$work/master.ready" --log-level warn 2>"$work/master.log" &
  pids+=($!)
  wait_file "$work/master.ready" 20
  rpc=$(sed -n 's/^rpc=//p' "$work/master.ready")
  "$bench/bench_master_ops" "$rpc" "$work/master/secret" 1000 | emit
  echo "# master: ratios"
  ratio ratio_durable_creates_16_clients_to_raw_fsync_1_thread master_create_per_s_16_clients raw_fsync_per_s_1_thread
  awk -v c="$(val master_create_per_s_16_clients)" 'BEGIN { printf "ratio_creates_16_clients_to_goal_10000 %.2f\n", c / 10000 }' | emit
  awk -v c="$(val master_stat_per_s_16_clients)" 'BEGIN { printf "ratio_stats_16_clients_to_goal_30000 %.2f\n", c / 30000 }' | emit
fi

# dd of `size` MiB with fsync, `n` streams at once; prints aggregate MB/s.
dd_rate() { # size_mib streams
  local start end
  start=$(date +%s.%N)
  for i in $(seq 1 "$2"); do
    dd if=/dev/zero of="$work/dd.$i" bs=1M count="$1" conv=fsync status=none &
  done
  wait
  end=$(date +%s.%N)
  rm -f "$work"/dd.*
  awk -v s="$start" -v e="$end" -v m="$1" -v n="$2" 'BEGIN { printf "%.1f", m * n / (e - s) }'
}

# Per-stream share of a 3-stream aggregate: name source.
per_stream() {
  local a
  a=$(val "$2")
  [ -n "$a" ] && awk -v n="$1" -v a="$a" 'BEGIN { printf "%s %.1f\n", n, a / 3 }' | emit
  return 0
}

if [ "$sections" = all ] || [ "$sections" = chunkserver ]; then
  echo "# chunkserver: raw limits (dd with fsync, 1 and 3 streams of 64 MiB; loopback TCP below)"
  echo "raw_dd_fsync_1_stream_64mib_mb_per_s $(dd_rate 64 1)" | emit
  echo "raw_dd_fsync_3_streams_64mib_mb_per_s $(dd_rate 64 3)" | emit
  echo "# chunkserver: push chain and 2PC writes (master + 3 chunkservers on 127.0.0.1);"
  echo "# each write follows the raw limit at its size (fsync'd writes, 3 streams and 1)"
  TMPDIR="$work" CAIRN_BIN_DIR="$bin" "$bench/bench_cs_write" "$work" | emit
  echo "# chunkserver: ratios (each write size to the 3-stream raw limit of the same size, per stream)"
  for s in 1mib 8mib 64mib; do
    per_stream "raw_fsync_3_streams_per_stream_${s}_mb_per_s" "raw_fsync_3_streams_${s}_mb_per_s"
  done
  ratio ratio_push_chain_to_loopback cs_push_chain3_mb_per_s raw_loopback_tcp_mb_per_s
  for s in 1mib 8mib 64mib; do
    ratio "ratio_write_${s}_to_fsync_per_stream" "cs_write_${s}_mb_per_s" "raw_fsync_3_streams_per_stream_${s}_mb_per_s"
  done
  ratio ratio_write_64mib_2_in_flight_to_fsync_per_stream cs_write_64mib_2_in_flight_mb_per_s raw_fsync_3_streams_per_stream_64mib_mb_per_s
  echo "goal_ratio_write_to_fsync_per_stream 0.80"
fi

if [ "$sections" = all ] || [ "$sections" = client ]; then
  echo "# client: raw limits (dd with fsync, 1 and 3 streams of 64 MiB; dd cold read of a 1 GiB"
  echo "# file just written, which a virtual machine's host may still cache)"
  [ -n "$(val raw_dd_fsync_1_stream_64mib_mb_per_s)" ] || echo "raw_dd_fsync_1_stream_64mib_mb_per_s $(dd_rate 64 1)" | emit
  [ -n "$(val raw_dd_fsync_3_streams_64mib_mb_per_s)" ] || echo "raw_dd_fsync_3_streams_64mib_mb_per_s $(dd_rate 64 3)" | emit
  dd if=/dev/urandom of="$work/cold" bs=1M count=1024 conv=fsync status=none
  sync
  if echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then cold=1; else cold=0; fi
  start=$(date +%s.%N)
  dd if="$work/cold" of=/dev/null bs=1M status=none
  end=$(date +%s.%N)
  rm -f "$work/cold"
  awk -v s="$start" -v e="$end" 'BEGIN { printf "raw_dd_cold_read_fresh_1gib_mb_per_s %.1f\n", 1024 / (e - s) }' | emit
  echo "raw_cold_read_caches_dropped $cold" | emit
  echo "# client: library against a local cluster (master + 3 chunkservers, 64 MiB chunks);"
  echo "# the 1 GiB write sits between two raw limits of its size (fsync'd writes, 3 streams and 1);"
  echo "# the raw read limit's file is written right after it, and read cold right before the library"
  CAIRN_BIN_DIR="$bin" "$PWD/scripts/cluster.sh" up --dir "$work/cluster" --chunkservers 3 >/dev/null
  pids+=($(cat "$work"/cluster/pids/*.pid))
  # shellcheck disable=SC1091
  source "$work/cluster/cluster.env"
  sleep 1
  "$bench/bench_client" 1024 5000 "$work" | emit
  CAIRN_BIN_DIR="$bin" "$PWD/scripts/cluster.sh" down --dir "$work/cluster" >/dev/null
  echo "# client: ratios (the write to the 3-stream raw limit of its size, per stream)"
  per_stream raw_fsync_3_streams_per_stream_1024mib_mb_per_s raw_fsync_3_streams_1024mib_mb_per_s
  ratio ratio_client_write_to_fsync_per_stream client_seq_write_1024mib_mb_per_s raw_fsync_3_streams_per_stream_1024mib_mb_per_s
  ratio ratio_client_read_to_cold_read client_seq_read_1024mib_mb_per_s raw_cold_read_1024mib_mb_per_s
  echo "goal_ratio_client_write_to_fsync_per_stream 0.80"
  echo "goal_ratio_client_read_to_cold_read 0.70"
  echo "goal_client_read_4k_p50_ms 1 goal_client_read_4k_p99_ms 5"
fi

if [ "$sections" = all ] || [ "$sections" = gateway ]; then
  echo "# gateway: 4 KiB downloads vs nginx, 1 GiB via gateway vs library, permission checks, logins"
  TMPDIR="$work" bash bench/gateway.sh "$bin" "$bench" | emit
fi
