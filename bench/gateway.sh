#!/usr/bin/env bash
# The gateway's figures against the limits of this machine, in one run:
#
#   1. a 4 KiB document downloaded over HTTPS with wrk (keep-alive) from
#      the gateway and from nginx serving the same bytes from disk with the
#      same certificate;
#   2. a 1 GiB document uploaded and downloaded through the gateway (curl)
#      and through the client library (the cairn CLI) on the same cluster,
#      each download twice (the first after dropping the page cache when
#      allowed, the second warm), sha256 checked; the gateway's peak RSS;
#   3. permission checks per second on one core, cached and from the
#      database (bench_gw_perm);
#   4. logins per second at the default argon2id cost and at the minimal
#      one (a second gateway on the same database).
#
#   bench/gateway.sh [BIN_DIR [BENCH_DIR]]   (default build-bench/bin, build-bench/bench)
#
# Prints one "name value" line per figure, then the ratios and the goals.
# wrk and nginx are installed with apt-get when missing (no service is
# started). Everything runs on 127.0.0.1 in a temporary directory under
# $TMPDIR that is removed at the end; every process started is stopped by
# PID. Takes about two minutes (plus the installs, the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
bin=$(cd "${1:-build-bench/bin}" && pwd)
bench=$(cd "${2:-build-bench/bench}" && pwd)
for b in "$bin/cairn-master" "$bin/cairn-gateway" "$bin/cairn" "$bench/bench_gw_perm"; do
  [ -x "$b" ] || { echo "gateway.sh: no $b (build first: bench/run.sh gateway)" >&2; exit 1; }
done

SMALL_SECS=10      # wrk duration of each small-download run
LOGIN_SECS=5       # wrk duration of each login run
BIG_MIB=1024       # size of the large document
PERM_SECS=3        # bench_gw_perm seconds per figure

# ---- tools --------------------------------------------------------------------------

# wrk and nginx from Debian when missing. A policy-rc.d that forbids
# starts keeps the nginx package from starting its service; it is removed
# again unless one was there before.
install_tools() {
  local need=()
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
  [ ${#need[@]} -gt 0 ] || return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "gateway.sh: need root or sudo to install ${need[*]}" >&2; return 1; }
    sudo=(sudo)
  fi
  echo "# gateway: installing ${need[*]}" >&2
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  local rc=0
  { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      --no-install-recommends "${need[@]}"; } >&2 || rc=$?
  [ "$own_policy" -eq 0 ] || "${sudo[@]}" rm -f "$policy"
  return "$rc"
}
install_tools
nginx_bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)

# ---- work dir, processes, cleanup ---------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-gwbench-XXXXXX")
cluster="$work/cluster"
pids=()
cluster_up=0
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$cluster_up" -eq 1 ]; then
    CAIRN_BIN_DIR="$bin" bash "$repo/scripts/cluster.sh" down --dir "$cluster" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "gateway.sh: $*" >&2; exit 1; }

# Remove a started PID from the list once it has been stopped.
stop_pid() { # pid
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]+"${keep[@]}"}")
}

wait_file() { # file seconds pid
  for _ in $(seq 1 $(( $2 * 20 ))); do
    [ -s "$1" ] && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

now() { date +%s.%N; }

results="$work/results"
: > "$results"
fig() { # name value: print a figure and keep it for the ratios
  echo "$1 $2"
  echo "$1 $2" >> "$results"
}
val() { awk -v k="$1" '$1 == k { print $2 }' "$results" | tail -n 1; }
ratio() { # name numerator denominator (figures printed above)
  local a b
  a=$(val "$2"); b=$(val "$3")
  if [ -n "$a" ] && [ -n "$b" ]; then
    awk -v n="$1" -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%s %.2f\n", n, a / b }'
  fi
}
mbps() { awk -v s="$1" -v e="$2" -v m="$3" 'BEGIN { printf "%.1f", m / (e - s) }'; }

# A field of a JSON document on stdin ("user.id" walks into objects).
jget() {
  python3 -c 'import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[k]
print(v)' "$1"
}

# ---- the cluster and the gateway's users ---------------------------------------------

# The access log is off (warn level), as for nginx below.
cluster_up=1
CAIRN_GATEWAY_FLAGS="--log-level warn" CAIRN_BIN_DIR="$bin" \
  bash "$repo/scripts/cluster.sh" up --dir "$cluster" >"$work/cluster.out" 2>&1 ||
  { cat "$work/cluster.out" >&2; die "the cluster did not start"; }
# shellcheck disable=SC1091
source "$cluster/cluster.env"
[ -n "${CAIRN_GATEWAY_URL:-}" ] || die "the cluster has no gateway"
gw_url=$CAIRN_GATEWAY_URL
ca=$CAIRN_GATEWAY_CA
gw_pid=$(cat "$cluster/pids/gateway.pid")

# curl against a gateway; fails (with the body shown) on an HTTP error.
gcurl() { curl -sS --fail-with-body --max-time 600 --cacert "$ca" "$@"; }

register() { # url user password -> user id
  gcurl -H 'Content-Type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"$3\"}" "$1/v1/auth/register" | jget id
}
login() { # url user password -> the token reply
  gcurl -H 'Content-Type: application/json' \
    -d "{\"username\":\"$2\",\"password\":\"$3\"}" "$1/v1/auth/token"
}

password="bench-password-1"
owner_id=$(register "$gw_url" bench-owner "$password")
other_id=$(register "$gw_url" bench-other "$password")
token=$(login "$gw_url" bench-owner "$password" | jget access_token)
auth="Authorization: Bearer $token"
gcurl -H "$auth" -H 'Content-Type: application/json' -d '{"name":"bench"}' \
  "$gw_url/v1/namespaces" >/dev/null

head -c 4096 /dev/urandom > "$work/small.bin"
small_id=$(gcurl -H "$auth" -T "$work/small.bin" "$gw_url/v1/ns/bench/small.bin" | jget id)
small_url="$gw_url/v1/document/$small_id/download"
gcurl -H "$auth" -o "$work/small.check" "$small_url"
cmp -s "$work/small.bin" "$work/small.check" || die "the 4 KiB document came back different"

# ---- 3. permission checks (first, on a quiet machine) -------------------------------

echo "# gateway: permission checks on one core (cached, and one SQL query each)"
perm_cpu=$(( $(nproc) > 1 ? 1 : 0 ))
CAIRN_PG="$CAIRN_PG" taskset -c "$perm_cpu" "$bench/bench_gw_perm" "$small_id" "$owner_id" "$other_id" \
  "$PERM_SECS" > "$work/perm.out" || die "bench_gw_perm failed"
while read -r k v; do fig "$k" "$v"; done < "$work/perm.out"

# ---- 1. small downloads: the gateway and nginx ---------------------------------------

# wrk's "Requests/sec" and the 99% latency in ms, as "rps p99"; fails when
# any response was not 2xx/3xx or a socket error happened.
wrk_run() { # out-file wrk-args...
  local out=$1
  shift
  timeout $(( SMALL_SECS + 30 )) wrk "$@" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  if grep -q 'Non-2xx or 3xx responses\|Socket errors' "$out"; then
    cat "$out" >&2
    die "wrk saw failed requests"
  fi
  awk '/^Requests\/sec:/ { rps = $2 }
       $1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                     p99 = u == "us" ? v / 1000 : u == "s" ? v * 1000 : u == "m" ? v * 60000 : v }
       END { if (rps == "" || p99 == "") exit 1; printf "%.0f %.2f\n", rps, p99 }' "$out" ||
    { cat "$out" >&2; die "cannot read wrk's output"; }
}

# Each server is warmed up first with the same load. The gateway's warm-up
# outlasts its cache TTL (10 s by default): the first expiry under load is
# when its PostgreSQL pool opens its connections (lazily, all at once),
# which stalls a few dozen requests for up to seconds once per process;
# the figures are for the steady state after it.
wrk_small=(-t2 -c32 -d"${SMALL_SECS}s" --latency --timeout 5s)
warm_up() { # seconds wrk-args...
  local d=$1
  shift
  timeout $(( d + 30 )) wrk -t2 -c32 -d"${d}s" "$@" >/dev/null 2>&1 || die "wrk warm-up failed"
}
echo "# gateway: 4 KiB downloads, wrk ${wrk_small[*]} over HTTPS (keep-alive)"
warm_up 12 -H "$auth" "$small_url"
res=$(wrk_run "$work/wrk-gw.txt" "${wrk_small[@]}" -H "$auth" "$small_url")
read -r rps p99 <<< "$res"
fig gw_small_rps "$rps"
fig gw_small_p99_ms "$p99"

# nginx with the cluster's certificate, serving small.bin from disk.
free_port() {
  python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
ngx="$work/nginx"
mkdir -p "$ngx/html" "$ngx/tmp" "$ngx/logs"
cp "$work/small.bin" "$ngx/html/small.bin"
ngx_port=$(free_port)
{
  echo "daemon off;"
  echo "master_process on;"
  echo "pid $ngx/nginx.pid;"
  echo "worker_processes auto;"
  [ "$(id -u)" -ne 0 ] || echo "user root;"
  echo "error_log $ngx/logs/error.log warn;"
  echo "events { worker_connections 1024; }"
  echo "http {"
  echo "  access_log off;"
  echo "  default_type application/octet-stream;"
  echo "  sendfile on;"
  echo "  keepalive_requests 1000000;"
  for t in client_body proxy fastcgi uwsgi scgi; do echo "  ${t}_temp_path $ngx/tmp/$t;"; done
  echo "  server {"
  echo "    listen 127.0.0.1:$ngx_port ssl;"
  echo "    ssl_certificate $cluster/gateway/tls.crt;"
  echo "    ssl_certificate_key $cluster/gateway/tls.key;"
  echo "    root $ngx/html;"
  echo "  }"
  echo "}"
} > "$ngx/nginx.conf"
"$nginx_bin" -p "$ngx" -e "$ngx/logs/error.log" -c "$ngx/nginx.conf" &
ngx_pid=$!
pids+=("$ngx_pid")
ok=0
for _ in $(seq 1 100); do
  if curl -s --max-time 2 --cacert "$ca" -o "$work/small.ngx" "https://127.0.0.1:$ngx_port/small.bin"; then ok=1; break; fi
  kill -0 "$ngx_pid" 2>/dev/null || break
  sleep 0.1
done
[ "$ok" -eq 1 ] || { cat "$ngx/logs/error.log" >&2 || true; die "nginx did not start"; }
cmp -s "$work/small.bin" "$work/small.ngx" || die "nginx served other bytes"
warm_up 2 "https://127.0.0.1:$ngx_port/small.bin"
res=$(wrk_run "$work/wrk-nginx.txt" "${wrk_small[@]}" "https://127.0.0.1:$ngx_port/small.bin")
read -r rps p99 <<< "$res"
fig nginx_small_rps "$rps"
fig nginx_small_p99_ms "$p99"
stop_pid "$ngx_pid"

# ---- 2. 1 GiB through the gateway and through the library --------------------------

echo "# gateway: ${BIG_MIB} MiB upload and download, gateway (curl over HTTPS) vs library (cairn CLI)"
head -c $(( BIG_MIB << 20 )) /dev/urandom > "$work/big.bin"
big_sha=$(sha256sum "$work/big.bin" | cut -d' ' -f1)
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; }
drop_caches && dropped=1 || dropped=0

t0=$(now)
gcurl -H "$auth" -T "$work/big.bin" "$gw_url/v1/ns/bench/big.bin" > "$work/big.put"
t1=$(now)
fig gw_upload_mbps "$(mbps "$t0" "$t1" "$BIG_MIB")"
gw_sha=$(jget sha256 < "$work/big.put" 2>/dev/null || echo "")

"$bin/cairn" --quiet mkdir /bench
t0=$(now)
"$bin/cairn" --quiet put "$work/big.bin" /bench/big.bin
t1=$(now)
fig lib_upload_mbps "$(mbps "$t0" "$t1" "$BIG_MIB")"

# First (after dropping the page cache, when allowed) and second (warm).
for pass in first warm; do
  [ "$pass" = warm ] || drop_caches || true
  t0=$(now)
  gcurl -H "$auth" -o /dev/null "$gw_url/v1/ns/bench/big.bin"
  t1=$(now)
  name=gw_download_mbps
  [ "$pass" = first ] || name=gw_download_warm_mbps
  fig "$name" "$(mbps "$t0" "$t1" "$BIG_MIB")"
done
for pass in first warm; do
  [ "$pass" = warm ] || drop_caches || true
  t0=$(now)
  "$bin/cairn" --quiet get /bench/big.bin - >/dev/null
  t1=$(now)
  name=lib_download_mbps
  [ "$pass" = first ] || name=lib_download_warm_mbps
  fig "$name" "$(mbps "$t0" "$t1" "$BIG_MIB")"
done
fig download_first_caches_dropped "$dropped"

# The bytes, once each way (not timed).
got=$(gcurl -H "$auth" "$gw_url/v1/ns/bench/big.bin" | sha256sum | cut -d' ' -f1)
[ "$got" = "$big_sha" ] || die "sha256 of the gateway download $got != $big_sha"
[ -z "$gw_sha" ] || [ "$gw_sha" = "$big_sha" ] || die "the gateway recorded sha256 $gw_sha != $big_sha"
got=$("$bin/cairn" --quiet get /bench/big.bin - | sha256sum | cut -d' ' -f1)
[ "$got" = "$big_sha" ] || die "sha256 of the library download $got != $big_sha"
fig big_sha256_verified 1
rm -f "$work/big.bin"

hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$gw_pid/status")
fig gw_peak_rss_mb "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')"

# ---- 4. logins ---------------------------------------------------------------------

cat > "$work/login.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = os.getenv("LOGIN_BODY")
EOF

# Logins per second of `user` against `url` (every reply must be 200).
logins() { # url user
  local out="$work/wrk-login.txt"
  LOGIN_BODY="{\"username\":\"$2\",\"password\":\"$password\"}" \
    timeout $(( LOGIN_SECS + 30 )) wrk -t2 -c8 -d"${LOGIN_SECS}s" --timeout 10s \
    -s "$work/login.lua" "$1/v1/auth/token" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed"; }
  if grep -q 'Non-2xx or 3xx responses\|Socket errors' "$out"; then
    cat "$out" >&2
    die "logins failed"
  fi
  awk '/^Requests\/sec:/ { printf "%.1f\n", $2 }' "$out"
}

echo "# gateway: logins/s (POST /v1/auth/token, wrk -t2 -c8), default argon2id cost and minimal cost"
register "$gw_url" bench-login-default "$password" >/dev/null
res=$(logins "$gw_url" bench-login-default)
fig gw_logins_per_s_default "$res"

# A second gateway on the same database with the minimal cost; the user is
# registered through it so its hash carries that cost.
mkdir -p "$work/gw-min"
"$bin/cairn-gateway" --listen 127.0.0.1:0 \
  --tls-cert "$cluster/gateway/tls.crt" --tls-key "$cluster/gateway/tls.key" \
  --master "$CAIRN_MASTER" --secret-file "$CAIRN_SECRET_FILE" --db "$CAIRN_PG" \
  --key-file "$cluster/gateway/key" --ready-file "$work/gw-min/ready" --log-level warn \
  --argon2-memory 8KiB --argon2-time 1 2>"$work/gw-min/log" &
min_pid=$!
pids+=("$min_pid")
wait_file "$work/gw-min/ready" 30 "$min_pid" || { cat "$work/gw-min/log" >&2; die "the second gateway did not start"; }
min_url=$(sed -n 's/^url=//p' "$work/gw-min/ready")
register "$min_url" bench-login-min "$password" >/dev/null
res=$(logins "$min_url" bench-login-min)
fig gw_logins_per_s_min "$res"
stop_pid "$min_pid"

# ---- ratios and goals ----------------------------------------------------------------

echo "# gateway: ratios (first downloads; warm ones labelled)"
ratio gw_small_vs_nginx gw_small_rps nginx_small_rps
ratio gw_upload_vs_lib gw_upload_mbps lib_upload_mbps
ratio gw_download_vs_lib gw_download_mbps lib_download_mbps
ratio gw_download_warm_vs_lib_warm gw_download_warm_mbps lib_download_warm_mbps
echo "goal_gw_small_vs_nginx 0.50"
echo "goal_gw_upload_vs_lib 0.70 goal_gw_download_vs_lib 0.70"
echo "goal_gw_perm_checks_per_s_cached 50000"
