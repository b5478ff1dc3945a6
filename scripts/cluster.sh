#!/usr/bin/env bash
# A local cairn cluster on 127.0.0.1, for trying cairn out and for tests.
#
#   scripts/cluster.sh up     --dir D [--chunkservers N] [--chunk-size SIZE]
#   scripts/cluster.sh down   --dir D
#   scripts/cluster.sh status --dir D
#   scripts/cluster.sh kill   NAME --dir D     (SIGKILL: a crash)
#   scripts/cluster.sh start  NAME --dir D     (again, with its same ports and data)
#
# NAME is master or chunkserver-N. Everything lives under D: data in
# D/master and D/chunkserver-N, logs in D/logs, pid files in D/pids, the
# ports each process got in D/ports, and D/cluster.env, a shell file with
# CAIRN_MASTER and CAIRN_SECRET_FILE for the `cairn` CLI and the library.
# Free ports are picked by the processes themselves at their first start and
# kept for every later start. `down` stops exactly the processes it started
# (by the PIDs in D/pids). Binaries come from $CAIRN_BIN_DIR, else build/bin.
# Extra daemon flags (e.g. short heartbeats for tests) may be given in
# $CAIRN_MASTER_FLAGS and $CAIRN_CHUNKSERVER_FLAGS.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${CAIRN_BIN_DIR:-$repo/build/bin}

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
name=""
case "$cmd" in
  kill|start) name=${1:-}; [ -n "$name" ] || usage; shift ;;
  up|down|status) ;;
  -h|--help|help) usage 0 ;;
  *) echo "cluster.sh: unknown command '$cmd'" >&2; usage ;;
esac

dir="" ; n=3 ; chunk_size=64M
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift ;;
    --chunkservers) n=$2; shift ;;
    --chunk-size) chunk_size=$2; shift ;;
    -h|--help) usage 0 ;;
    *) echo "cluster.sh: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
[ -n "$dir" ] || { echo "cluster.sh: --dir is required" >&2; exit 2; }
case "$n" in ''|*[!0-9]*) echo "cluster.sh: --chunkservers needs a number" >&2; exit 2 ;; esac
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/pids" "$dir/logs" "$dir/ports"

pidfile() { echo "$dir/pids/$1.pid"; }

running() { # name
  local p
  p=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null
}

wait_file() { # file seconds pid
  local i
  for i in $(seq 1 $(( $2 * 10 ))); do
    [ -s "$1" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

kv() { sed -n "s/^$2=//p" "$1" | head -n 1; } # file key

port_of() { # name key -> saved port or 0
  local f="$dir/ports/$1.env"
  if [ -s "$f" ]; then kv "$f" "$2"; else echo 0; fi
}

save_ports() { # name ready-file keys...
  local name=$1 ready=$2 out="" k
  shift 2
  for k in "$@"; do out+="$k=$(kv "$ready" "$k" | sed 's/.*://')"$'\n'; done
  printf '%s' "$out" > "$dir/ports/$name.env"
}

launch() { # name ready-file command...
  local name=$1 ready=$2
  shift 2
  if running "$name"; then echo "cluster.sh: $name is already running (pid $(cat "$(pidfile "$name")"))"; return 0; fi
  rm -f "$ready"
  nohup "$@" >>"$dir/logs/$name.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" > "$(pidfile "$name")"
  if ! wait_file "$ready" 30 "$pid"; then
    echo "cluster.sh: $name did not start; see $dir/logs/$name.log" >&2
    tail -n 5 "$dir/logs/$name.log" >&2 || true
    return 1
  fi
}

start_master() {
  if [ ! -f "$dir/master/cluster_id" ]; then
    "$bin/cairn-master" --init --dir "$dir/master" --chunk-size "$chunk_size" >>"$dir/logs/master.log" 2>&1
  fi
  launch master "$dir/master.ready" "$bin/cairn-master" --dir "$dir/master" \
    --listen "127.0.0.1:$(port_of master rpc)" --http-listen "127.0.0.1:$(port_of master http)" \
    --ready-file "$dir/master.ready" ${CAIRN_MASTER_FLAGS:-}
  save_ports master "$dir/master.ready" rpc http
}

start_chunkserver() { # index
  local i=$1 name="chunkserver-$1"
  local rpc
  rpc=$(kv "$dir/master.ready" rpc)
  [ -n "$rpc" ] || { echo "cluster.sh: the master has not started" >&2; return 1; }
  local cs
  cs=$(cat "$dir/chunk_size" 2>/dev/null || echo "$chunk_size")
  launch "$name" "$dir/$name.ready" "$bin/cairn-chunkserver" --data-dirs "$dir/$name" \
    --master "$rpc" --secret-file "$dir/master/secret" --zone "zone-$i" --chunk-size "$cs" \
    --listen "127.0.0.1:$(port_of "$name" rpc)" --data-listen "127.0.0.1:$(port_of "$name" data)" \
    --http-listen "127.0.0.1:$(port_of "$name" http)" --advertise-host 127.0.0.1 \
    --ready-file "$dir/$name.ready" ${CAIRN_CHUNKSERVER_FLAGS:-}
  save_ports "$name" "$dir/$name.ready" rpc data http
}

write_env() {
  {
    echo "# cairn local cluster in $dir (source this file)"
    echo "export CAIRN_MASTER=$(kv "$dir/master.ready" rpc)"
    echo "export CAIRN_SECRET_FILE=$dir/master/secret"
    echo "export CAIRN_MASTER_HTTP=http://$(kv "$dir/master.ready" http)"
    if [ -s "$dir/gateway.ready" ]; then echo "export CAIRN_GATEWAY_URL=$(kv "$dir/gateway.ready" url)"; fi
  } > "$dir/cluster.env"
}

stop_one() { # name signal
  local name=$1 sig=$2 p i
  p=$(cat "$(pidfile "$name")" 2>/dev/null) || return 0
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill "-$sig" "$p" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
  fi
  rm -f "$(pidfile "$name")"
}

names() { # every process this cluster has pid files or data for, chunkservers first
  local f
  for f in "$dir"/chunkserver-*.ready "$dir"/pids/chunkserver-*.pid; do
    [ -e "$f" ] || continue
    basename "$f" | sed 's/\.\(ready\|pid\)$//'
  done | sort -u -V
  echo master
}

case "$cmd" in
  up)
    [ -x "$bin/cairn-master" ] || { echo "cluster.sh: no binaries in $bin (build first)" >&2; exit 1; }
    [ -f "$dir/chunk_size" ] || echo "$chunk_size" > "$dir/chunk_size"
    chunk_size=$(cat "$dir/chunk_size")
    start_master
    for i in $(seq 1 "$n"); do start_chunkserver "$i"; done
    write_env
    echo "cluster up in $dir: master $(kv "$dir/master.ready" rpc), $n chunkservers"
    echo "  source $dir/cluster.env"
    ;;
  down)
    for p in $(names); do stop_one "$p" TERM; done
    echo "cluster in $dir stopped"
    ;;
  status)
    for p in $(names); do
      if running "$p"; then echo "$p running pid=$(cat "$(pidfile "$p")")"; else echo "$p stopped"; fi
    done
    ;;
  kill)
    running "$name" || { echo "cluster.sh: $name is not running" >&2; exit 1; }
    stop_one "$name" KILL
    echo "$name killed"
    ;;
  start)
    chunk_size=$(cat "$dir/chunk_size" 2>/dev/null || echo "$chunk_size")
    case "$name" in
      master) start_master ;;
      chunkserver-[0-9]*) start_chunkserver "${name#chunkserver-}" ;;
      *) echo "cluster.sh: unknown process '$name'" >&2; exit 2 ;;
    esac
    write_env
    echo "$name started"
    ;;
esac
