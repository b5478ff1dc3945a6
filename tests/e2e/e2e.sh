#!/usr/bin/env bash
# End-to-end stories: a real local cluster (scripts/cluster.sh) driven with
# the `cairn` CLI, crashed and corrupted on purpose.
#
#   tests/e2e/e2e.sh CASE        (CTest runs each case as its own test)
#
# Every case works in its own temporary directory, stops every process it
# started (by PID, through cluster.sh down) on any exit, and bounds every
# wait in count and time. Binaries come from $CAIRN_BIN_DIR.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${CAIRN_BIN_DIR:-$repo/build/bin}
export CAIRN_BIN_DIR=$bin
cluster="$repo/scripts/cluster.sh"
# Short intervals so failures are noticed and repaired within the tests'
# bounds (production defaults: 3 s heartbeats, 15 s dead-after, 60 s leases).
export CAIRN_MASTER_FLAGS="--heartbeat-interval 300ms --dead-after 3s --lease 5s"
export CAIRN_CHUNKSERVER_FLAGS="--rpc-timeout 2s --scrub-rate 64M"
case_name=${1:?usage: e2e.sh CASE}

work=$(mktemp -d "${TMPDIR:-/tmp}/cairn-e2e-$case_name-XXXXXX")
cleanup() {
  local rc=$?
  "$cluster" down --dir "$work/c" >/dev/null 2>&1 || true
  if [ $rc -ne 0 ]; then
    echo "--- $case_name failed (rc=$rc); last log lines:" >&2
    for f in "$work"/c/logs/*.log; do [ -f "$f" ] && { echo "== $f" >&2; tail -n 15 "$f" >&2; }; done
  fi
  if [ -n "${CAIRN_KEEP_TEST_DIRS:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
  exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
cairn() { "$bin/cairn" "$@"; }

up() { # chunkservers chunk-size [gateway]
  local gw=--no-gateway
  [ "${3:-}" = gateway ] && gw=""
  "$cluster" up --dir "$work/c" --chunkservers "$1" --chunk-size "$2" $gw >/dev/null
  # shellcheck disable=SC1091
  source "$work/c/cluster.env"
  wait_until 30 "servers_alive $1" || fail "chunkservers did not register"
}

# wait_until SECONDS COMMAND...: poll every 0.2 s until the command succeeds.
wait_until() {
  local secs=$1 i
  shift
  for i in $(seq 1 $(( secs * 5 ))); do
    if eval "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

json_field() { # json key
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"
}

servers_alive() {
  local n
  n=$(cairn status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(1 for s in d["servers"] if s["state"]=="alive"))')
  [ "$n" -ge "$1" ]
}

# The cluster is healthy: nothing under-replicated, missing or corrupt.
healthy() {
  local j
  j=$(cairn fsck --json) || return 1
  [ "$(json_field "$j" under_replicated)" = 0 ] && [ "$(json_field "$j" missing)" = 0 ] &&
    [ "$(json_field "$j" corrupt)" = 0 ]
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- cases ------------------------------------------------------------------------

put_get_200mib() {
  up 3 16M
  head -c $((200 * 1024 * 1024)) /dev/urandom > "$work/big"
  cairn put "$work/big" /big.bin
  cairn get /big.bin "$work/big.out"
  [ "$(sha "$work/big")" = "$(sha "$work/big.out")" ] || fail "sha256 differs"
  wait_until 30 healthy || fail "fsck: $(cairn fsck --json)"
  local j
  j=$(cairn fsck --json)
  [ "$(json_field "$j" files)" -ge 1 ] || fail "fsck files: $j"
  [ "$(json_field "$j" chunks)" -ge 13 ] || fail "fsck chunks (200 MiB / 16 MiB): $j"
}

eight_appenders() {
  up 3 1M
  cairn mkdir -p /logs
  local w r
  for w in $(seq 1 8); do
    (
      for r in $(seq 1 25); do
        printf 'record writer=%d seq=%d %s\n' "$w" "$r" "$(head -c 300 /dev/urandom | base64 -w0)" > "$work/rec.$w"
        cp "$work/rec.$w" "$work/want.$w.$r"
        cairn append /logs/app.log "$work/rec.$w" >/dev/null || exit 1
      done
    ) &
  done
  wait || true
  cairn cat /logs/app.log | tr '\0' '\n' > "$work/log.out"
  local missing=0
  for w in $(seq 1 8); do
    for r in $(seq 1 25); do
      grep -qxF -f "$work/want.$w.$r" "$work/log.out" || missing=$((missing + 1))
    done
  done
  [ "$missing" = 0 ] || fail "$missing records missing or damaged"
}

# Writers keep putting files; returns when told to stop. Each writer logs
# the files whose put succeeded.
writers() { # count files-each
  local w i
  for w in $(seq 1 "$1"); do
    (
      for i in $(seq 1 "$2"); do
        head -c $((1024 * 1024 + w * 1000 + i)) /dev/urandom > "$work/src.$w.$i"
        if cairn put "$work/src.$w.$i" "/load/w$w-$i" >/dev/null 2>&1; then
          echo "$w.$i" >> "$work/acked.$w"
        fi
      done
    ) &
  done
}

check_acked() {
  local f k bad=0 n=0
  for f in "$work"/acked.*; do
    [ -f "$f" ] || continue
    while read -r k; do
      n=$((n + 1))
      if ! cairn get "/load/w${k%%.*}-${k#*.}" "$work/got" >/dev/null 2>"$work/get.err"; then
        echo "acknowledged /load/w${k%%.*}-${k#*.} unreadable: $(cat "$work/get.err")" >&2
        bad=$((bad + 1))
        continue
      fi
      if [ "$(sha "$work/got")" != "$(sha "$work/src.$k")" ]; then
        echo "acknowledged /load/w${k%%.*}-${k#*.} differs" >&2
        bad=$((bad + 1))
      fi
    done < "$f"
  done
  echo "acknowledged files: $n, bad: $bad" >&2
  [ "$n" -gt 0 ] || fail "no write was acknowledged"
  [ "$bad" = 0 ] || fail "$bad acknowledged files are missing or differ"
}

kill_chunkserver_during_writes() {
  up 4 1M
  cairn mkdir -p /load
  writers 4 12
  sleep 2
  "$cluster" kill chunkserver-2 --dir "$work/c" >/dev/null
  wait || true
  check_acked
  wait_until 60 healthy || fail "not back to 3 copies within 60 s: $(cairn fsck --json)"
}

corrupt_one_byte() {
  up 3 1M
  head -c $((3 * 1024 * 1024)) /dev/urandom > "$work/f"
  cairn put "$work/f" /f.bin
  local replica
  replica=$(find "$work/c/chunkserver-1" -name '*.chunk' | head -n 1)
  [ -n "$replica" ] || fail "no replica on chunkserver-1"
  local size
  size=$(stat -c %s "$replica")
  printf '\x5a' | dd of="$replica" bs=1 seek=$((size - 100)) conv=notrunc status=none
  # Reads still return the right bytes (another replica serves them) ...
  cairn get /f.bin "$work/f.out"
  [ "$(sha "$work/f")" = "$(sha "$work/f.out")" ] || fail "read returned wrong bytes"
  # ... and the bad replica is found (a read of it, or the scrubber) and
  # replaced: keep reading until the cluster is healthy.
  wait_until 60 "cairn get /f.bin $work/f.out2 && healthy" || fail "bad replica not replaced"
  [ "$(sha "$work/f")" = "$(sha "$work/f.out2")" ] || fail "read after repair differs"
}

kill_master_during_writes() {
  up 3 1M
  cairn mkdir -p /load
  writers 4 10
  sleep 2
  "$cluster" kill master --dir "$work/c" >/dev/null
  sleep 1
  "$cluster" start master --dir "$work/c" >/dev/null
  wait || true
  wait_until 30 "servers_alive 3" || fail "chunkservers did not come back to the master"
  check_acked
}

stale_chunkserver() {
  up 3 1M
  head -c $((300 * 1024)) /dev/urandom > "$work/v1"
  cairn put "$work/v1" /s.bin
  local old
  old=$(find "$work/c/chunkserver-3" -name '*.chunk' | head -n 1)
  [ -n "$old" ] || fail "no replica on chunkserver-3"
  "$cluster" kill chunkserver-3 --dir "$work/c" >/dev/null
  # A write to the same chunk while chunkserver-3 is down: its replica
  # misses it, is reported, and the version moves on without it.
  head -c 1000 /dev/urandom > "$work/rec"
  cairn append /s.bin "$work/rec" >/dev/null
  cat "$work/v1" "$work/rec" > "$work/v2"
  "$cluster" start chunkserver-3 --dir "$work/c" >/dev/null
  # Its stale replica is deleted, never served: the file reads as v2
  # whatever replica answers, and the old file goes away.
  local i
  for i in 1 2 3 4 5 6; do
    cairn get /s.bin "$work/s.out"
    [ "$(sha "$work/v2")" = "$(sha "$work/s.out")" ] || fail "read returned stale bytes"
  done
  wait_until 60 "[ ! -e '$old' ]" || fail "stale replica $old still on disk"
  wait_until 60 healthy || fail "cluster not healthy: $(cairn fsck --json)"
  cairn get /s.bin "$work/s.out2"
  [ "$(sha "$work/v2")" = "$(sha "$work/s.out2")" ] || fail "read after repair differs"
}

# The local cluster's gateway: a document round trip with curl, then the
# gateway and PostgreSQL restarted by the cluster script, the document still
# there and /healthz following PostgreSQL's state.
gateway_round_trip() {
  up 3 1M gateway
  [ -n "${CAIRN_GATEWAY_URL:-}" ] || fail "cluster.env has no CAIRN_GATEWAY_URL"
  api() { curl -sS --max-time 30 --cacert "$CAIRN_GATEWAY_CA" "$@"; }
  local json=(-H 'Content-Type: application/json') token auth
  api "${json[@]}" -d '{"username":"eve","password":"eve-password"}' \
    "$CAIRN_GATEWAY_URL/v1/auth/register" >/dev/null
  token=$(api "${json[@]}" -d '{"username":"eve","password":"eve-password"}' \
    "$CAIRN_GATEWAY_URL/v1/auth/token" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || fail "no access token"
  auth=(-H "Authorization: Bearer $token")
  api "${auth[@]}" "${json[@]}" -d '{"name":"e2e"}' "$CAIRN_GATEWAY_URL/v1/namespaces" >/dev/null
  head -c $((3 * 1024 * 1024 + 5)) /dev/urandom > "$work/doc"
  local code
  code=$(api "${auth[@]}" -T "$work/doc" -o /dev/null -w '%{http_code}' \
    "$CAIRN_GATEWAY_URL/v1/ns/e2e/doc.bin")
  [ "$code" = 201 ] || fail "upload answered $code"
  "$cluster" kill gateway --dir "$work/c" >/dev/null
  "$cluster" start gateway --dir "$work/c" >/dev/null
  source "$work/c/cluster.env"
  api "${auth[@]}" -o "$work/doc.out" "$CAIRN_GATEWAY_URL/v1/ns/e2e/doc.bin"
  [ "$(sha "$work/doc")" = "$(sha "$work/doc.out")" ] || fail "download differs"
  "$cluster" kill postgres --dir "$work/c" >/dev/null
  code=$(api -o /dev/null -w '%{http_code}' "$CAIRN_GATEWAY_URL/healthz")
  [ "$code" = 503 ] || fail "healthz with PostgreSQL down answered $code"
  "$cluster" start postgres --dir "$work/c" >/dev/null
  wait_until 30 "[ \"\$(api -o /dev/null -w '%{http_code}' '$CAIRN_GATEWAY_URL/healthz')\" = 200 ]" ||
    fail "healthz did not recover"
  api "${auth[@]}" -o "$work/doc.out2" "$CAIRN_GATEWAY_URL/v1/ns/e2e/doc.bin"
  [ "$(sha "$work/doc")" = "$(sha "$work/doc.out2")" ] || fail "download after restarts differs"
}

case "$case_name" in
  gateway_round_trip | put_get_200mib | eight_appenders | kill_chunkserver_during_writes | corrupt_one_byte | \
    kill_master_during_writes | stale_chunkserver)
    "$case_name"
    echo "1 passed, 0 failed: $case_name"
    ;;
  *) echo "e2e.sh: unknown case '$case_name'" >&2; exit 2 ;;
esac
