#!/usr/bin/env bash
# The quickstart: on a fresh Debian 12 machine, install the dependencies,
# build, start a local cluster on 127.0.0.1 (a master, three chunkservers,
# and, once cairn-gateway is built, a private PostgreSQL and the HTTPS
# gateway), store a demo file and read it back, show the gateway's document
# API with curl (register, token, namespace, upload, download), and print
# what to try next. Run it again at any time: it reuses the build, the
# cluster and the demo user.
#
#   scripts/quickstart.sh            cluster in ./cluster
#   CAIRN_CLUSTER_DIR=/tmp/c scripts/quickstart.sh
#
# Stop the cluster with: scripts/cluster.sh down --dir ./cluster
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/install-deps.sh
cmake -B build -S . >/dev/null
targets=(cairn-master cairn-chunkserver cairn_cli)
if cmake --build build --target help 2>/dev/null | grep -Eq '(^|[[:space:]])cairn-gateway(:|$)'; then
  targets+=(cairn-gateway)
fi
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target "${targets[@]}"

dir=${CAIRN_CLUSTER_DIR:-$repo/cluster}
export CAIRN_BIN_DIR="$repo/build/bin"
scripts/cluster.sh up --dir "$dir" --chunkservers 3
# shellcheck disable=SC1091
source "$dir/cluster.env"
cairn="$repo/build/bin/cairn"

# Wait (bounded) until the chunkservers have registered.
for _ in $(seq 1 100); do
  alive=$("$cairn" status --json 2>/dev/null | grep -o '"state": *"alive"' | wc -l || true)
  [ "${alive:-0}" -ge 3 ] && break
  sleep 0.1
done

demo="$dir/demo.bin"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom > "$demo"
"$cairn" mkdir -p /demo
"$cairn" put --overwrite "$demo" /demo/hello.bin
"$cairn" get /demo/hello.bin "$dir/demo.out"
if cmp -s "$demo" "$dir/demo.out"; then
  echo "stored and read back /demo/hello.bin: $(sha256sum < "$demo" | cut -c1-16)... identical"
else
  echo "quickstart: the file read back differs!" >&2
  exit 1
fi
"$cairn" ls -l /demo
"$cairn" status

# The gateway's document API, if the gateway runs: every command is printed
# before it runs ($TOKEN stands for the access token).
gateway_demo() {
  if [ -z "${CAIRN_GATEWAY_URL:-}" ] ||
     ! curl -sf --max-time 5 --cacert "$CAIRN_GATEWAY_CA" "$CAIRN_GATEWAY_URL/healthz" >/dev/null; then
    echo
    echo "(the gateway is not running: skipping the document API demo)"
    return 0
  fi
  local g=$dir/gateway pw out code token
  [ -s "$g/demo-password" ] || (umask 077 && head -c 12 /dev/urandom | xxd -p > "$g/demo-password")
  pw=$(cat "$g/demo-password")
  out=$(mktemp)
  # api EXPECTED-CODES DISPLAY curl-args...: print DISPLAY, run curl, check the status.
  api() {
    local want=$1 shown=$2
    shift 2
    echo "\$ $shown"
    code=$(curl -s --max-time 30 --cacert "$CAIRN_GATEWAY_CA" -o "$out" -w '%{http_code}' "$@") || code=000
    case " $want " in
      *" $code "*) ;;
      *) echo "quickstart: got HTTP $code: $(head -c 300 "$out")" >&2; rm -f "$out"; exit 1 ;;
    esac
  }
  local json=(-H 'Content-Type: application/json')
  echo
  echo "The gateway's document API at $CAIRN_GATEWAY_URL (CA: $CAIRN_GATEWAY_CA):"
  api "201 409" "curl --cacert \$CAIRN_GATEWAY_CA -H 'Content-Type: application/json' -d '{\"username\":\"demo\",\"password\":\"...\"}' \$CAIRN_GATEWAY_URL/v1/auth/register" \
    "${json[@]}" -d "{\"username\":\"demo\",\"password\":\"$pw\"}" "$CAIRN_GATEWAY_URL/v1/auth/register"
  [ "$code" = 201 ] && echo "  registered user demo (password in $g/demo-password)" || echo "  user demo exists already"
  api 200 "curl --cacert \$CAIRN_GATEWAY_CA -H 'Content-Type: application/json' -d '{\"username\":\"demo\",\"password\":\"...\"}' \$CAIRN_GATEWAY_URL/v1/auth/token" \
    "${json[@]}" -d "{\"username\":\"demo\",\"password\":\"$pw\"}" "$CAIRN_GATEWAY_URL/v1/auth/token"
  token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$out")
  echo "  TOKEN=<access_token from the reply>"
  local auth=(-H "Authorization: Bearer $token")
  api "201 409" "curl --cacert \$CAIRN_GATEWAY_CA -H \"Authorization: Bearer \$TOKEN\" -H 'Content-Type: application/json' -d '{\"name\":\"demo\",\"visibility\":\"private\"}' \$CAIRN_GATEWAY_URL/v1/namespaces" \
    "${auth[@]}" "${json[@]}" -d '{"name":"demo","visibility":"private"}' "$CAIRN_GATEWAY_URL/v1/namespaces"
  printf 'hello from cairn at %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$dir/hello.txt"
  # overwrite=true: a second run replaces the document of the first.
  api "200 201" "curl --cacert \$CAIRN_GATEWAY_CA -H \"Authorization: Bearer \$TOKEN\" -H 'Content-Type: text/plain' -T $dir/hello.txt \"\$CAIRN_GATEWAY_URL/v1/ns/demo/hello.txt?overwrite=true\"" \
    "${auth[@]}" -H 'Content-Type: text/plain' -T "$dir/hello.txt" "$CAIRN_GATEWAY_URL/v1/ns/demo/hello.txt?overwrite=true"
  echo "  $(head -c 400 "$out")"
  api 200 "curl --cacert \$CAIRN_GATEWAY_CA -H \"Authorization: Bearer \$TOKEN\" \$CAIRN_GATEWAY_URL/v1/ns/demo/hello.txt" \
    "${auth[@]}" "$CAIRN_GATEWAY_URL/v1/ns/demo/hello.txt"
  if cmp -s "$dir/hello.txt" "$out"; then
    echo "  downloaded /v1/ns/demo/hello.txt: identical ($(cat "$out"))"
  else
    echo "quickstart: the document read back through the gateway differs!" >&2
    rm -f "$out"
    exit 1
  fi
  rm -f "$out"
}
gateway_demo

cat <<TXT

The cluster runs in $dir. Try:
  source $dir/cluster.env
  build/bin/cairn put /etc/services /etc/services     # store a file
  build/bin/cairn cat /etc/services | head            # read it
  build/bin/cairn fsck --json                         # replication health
  scripts/cluster.sh kill chunkserver-2 --dir $dir    # crash a chunkserver, watch repair:
  curl -s \$CAIRN_MASTER_HTTP/status                   # the master's view (JSON)
  curl --cacert \$CAIRN_GATEWAY_CA \$CAIRN_GATEWAY_URL/healthz   # the gateway (when it runs)
  scripts/cluster.sh down --dir $dir                  # stop everything
TXT
