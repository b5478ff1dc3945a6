#!/usr/bin/env bash
# A local cairn cluster on 127.0.0.1, for trying cairn out and for tests.
#
#   scripts/cluster.sh up     --dir D [--chunkservers N] [--chunk-size SIZE] [--no-gateway]
#   scripts/cluster.sh down   --dir D
#   scripts/cluster.sh status --dir D
#   scripts/cluster.sh kill   NAME --dir D     (SIGKILL: a crash)
#   scripts/cluster.sh start  NAME --dir D     (again, with its same ports and data)
#
# NAME is master, chunkserver-N, postgres or gateway. Everything lives under
# D: data in D/master and D/chunkserver-N, logs in D/logs, pid files in
# D/pids, the ports each process got in D/ports, and D/cluster.env, a shell
# file with CAIRN_MASTER and CAIRN_SECRET_FILE for the `cairn` CLI and the
# library (and CAIRN_GATEWAY_URL, CAIRN_GATEWAY_CA when the gateway runs).
# Free ports are picked by the processes themselves at their first start and
# kept for every later start. `down` stops exactly the processes it started
# (by the PIDs in D/pids). Binaries come from $CAIRN_BIN_DIR, else build/bin.
# Extra daemon flags (e.g. short heartbeats for tests) may be given in
# $CAIRN_MASTER_FLAGS, $CAIRN_CHUNKSERVER_FLAGS and $CAIRN_GATEWAY_FLAGS.
#
# When cairn-gateway is built, `up` also starts a private PostgreSQL
# (scripts/pg.sh: D/pgdata, socket in D/pgsock, log D/logs/postgres.log)
# and the gateway on https://127.0.0.1 with a self-signed certificate made
# once (D/gateway/tls.crt, the CA to trust; D/gateway/tls.key) and a token
# key made once (D/gateway/key). --no-gateway leaves both out.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${CAIRN_BIN_DIR:-$repo/build/bin}

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

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

dir="" ; n=3 ; chunk_size=64M ; gateway=1
while [ $# -gt 0 ]; do
  case "$1" in
    --no-gateway) gateway=0 ;;
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

# Is the process alive? A killed process whose parent has not reaped it yet
# (a zombie: the daemons are reparented to init) counts as gone.
alive() { # pid
  kill -0 "$1" 2>/dev/null || return 1
  case "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)" in Z|X) return 1 ;; esac
  return 0
}

running() { # name
  local p
  p=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [ -n "$p" ] && alive "$p"
}

wait_file() { # file seconds pid
  local i
  for i in $(seq 1 $(( $2 * 10 ))); do
    [ -s "$1" ] && return 0
    alive "$3" || return 1
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

# PostgreSQL through scripts/pg.sh; the postmaster's pid goes into D/pids
# like the others' (for status and kill), but it is stopped by pg.sh.
start_postgres() {
  if running postgres; then echo "cluster.sh: postgres is already running (pid $(cat "$(pidfile postgres)"))"; return 0; fi
  if ! bash "$repo/scripts/pg.sh" start --dir "$dir" >/dev/null; then
    echo "cluster.sh: PostgreSQL did not start; see $dir/logs/postgres.log" >&2
    return 1
  fi
  head -n 1 "$dir/pgdata/postmaster.pid" > "$(pidfile postgres)"
}

stop_postgres() {
  [ -d "$dir/pgdata" ] || return 0
  bash "$repo/scripts/pg.sh" stop --dir "$dir" || true
  rm -f "$(pidfile postgres)"
}

# The certificate and the token key are made once and kept, so clients that
# trust D/gateway/tls.crt and tokens already handed out stay valid across
# restarts.
gateway_files() {
  local g="$dir/gateway"
  mkdir -p "$g"
  if [ ! -s "$g/tls.crt" ] || [ ! -s "$g/tls.key" ]; then
    command -v openssl >/dev/null 2>&1 || { echo "cluster.sh: openssl is needed for the gateway's certificate" >&2; return 1; }
    (umask 077 && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -days 825 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -keyout "$g/tls.key.tmp" -out "$g/tls.crt.tmp" >>"$dir/logs/gateway.log" 2>&1) ||
      { echo "cluster.sh: openssl could not make a certificate; see $dir/logs/gateway.log" >&2; return 1; }
    mv "$g/tls.key.tmp" "$g/tls.key"
    mv "$g/tls.crt.tmp" "$g/tls.crt"
  fi
  if [ ! -s "$g/key" ]; then
    (umask 077 && head -c 32 /dev/urandom > "$g/key.tmp") && chmod 600 "$g/key.tmp" && mv "$g/key.tmp" "$g/key"
  fi
}

start_gateway() {
  local rpc
  rpc=$(kv "$dir/master.ready" rpc)
  [ -n "$rpc" ] || { echo "cluster.sh: the master has not started" >&2; return 1; }
  running postgres || { echo "cluster.sh: postgres is not running (cluster.sh start postgres --dir $dir)" >&2; return 1; }
  [ -s "$dir/pg.conninfo" ] || { echo "cluster.sh: no $dir/pg.conninfo" >&2; return 1; }
  gateway_files
  launch gateway "$dir/gateway.ready" "$bin/cairn-gateway" \
    --listen "127.0.0.1:$(port_of gateway port)" \
    --tls-cert "$dir/gateway/tls.crt" --tls-key "$dir/gateway/tls.key" \
    --master "$rpc" --secret-file "$dir/master/secret" --db "$(cat "$dir/pg.conninfo")" \
    --key-file "$dir/gateway/key" --ready-file "$dir/gateway.ready" ${CAIRN_GATEWAY_FLAGS:-}
  printf 'port=%s\n' "$(kv "$dir/gateway.ready" url | sed 's/.*://')" > "$dir/ports/gateway.env"
}

# Whether `up` brings PostgreSQL and the gateway (says why not when it won't).
want_gateway() {
  if [ "$gateway" -eq 0 ]; then
    echo "cluster.sh: --no-gateway: not starting PostgreSQL and the gateway"
    return 1
  fi
  if [ ! -x "$bin/cairn-gateway" ]; then
    echo "cluster.sh: no $bin/cairn-gateway (not built): not starting PostgreSQL and the gateway"
    return 1
  fi
  return 0
}

write_env() {
  {
    echo "# cairn local cluster in $dir (source this file)"
    echo "export CAIRN_MASTER=$(kv "$dir/master.ready" rpc)"
    echo "export CAIRN_SECRET_FILE=$dir/master/secret"
    echo "export CAIRN_MASTER_HTTP=http://$(kv "$dir/master.ready" http)"
    if running gateway && [ -s "$dir/gateway.ready" ]; then
      echo "export CAIRN_GATEWAY_URL=$(kv "$dir/gateway.ready" url)"
      echo "export CAIRN_GATEWAY_CA=$dir/gateway/tls.crt"
    fi
    if running postgres && [ -s "$dir/pg.conninfo" ]; then echo "export CAIRN_PG=\"$(cat "$dir/pg.conninfo")\""; fi
  } > "$dir/cluster.env"
}

stop_one() { # name signal
  local name=$1 sig=$2 p i
  p=$(cat "$(pidfile "$name")" 2>/dev/null) || return 0
  if [ -n "$p" ] && alive "$p"; then
    kill "-$sig" "$p" 2>/dev/null || true
    for i in $(seq 1 100); do alive "$p" || break; sleep 0.1; done
    if alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
  fi
  rm -f "$(pidfile "$name")"
}

names() { # every process this cluster has pid files or data for: gateway, chunkservers, master
  local f
  if [ -e "$dir/gateway.ready" ] || [ -e "$dir/pids/gateway.pid" ]; then echo gateway; fi
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
    gw_text=""
    if want_gateway; then
      start_postgres
      start_gateway
      gw_text=", gateway $(kv "$dir/gateway.ready" url)"
    fi
    write_env
    echo "cluster up in $dir: master $(kv "$dir/master.ready" rpc), $n chunkservers$gw_text"
    echo "  source $dir/cluster.env"
    ;;
  down)
    # The gateway first (it uses everything else), then PostgreSQL.
    stop_one gateway TERM
    stop_postgres
    for p in $(names); do stop_one "$p" TERM; done
    echo "cluster in $dir stopped"
    ;;
  status)
    if [ -d "$dir/pgdata" ]; then
      if running postgres; then echo "postgres running pid=$(cat "$(pidfile postgres)")"; else echo "postgres stopped"; fi
    fi
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
      postgres) start_postgres ;;
      gateway)
        [ -x "$bin/cairn-gateway" ] || { echo "cluster.sh: no $bin/cairn-gateway (not built)" >&2; exit 1; }
        start_gateway ;;
      *) echo "cluster.sh: unknown process '$name'" >&2; exit 2 ;;
    esac
    write_env
    echo "$name started"
    ;;
esac
