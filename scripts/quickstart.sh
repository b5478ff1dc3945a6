#!/usr/bin/env bash
# The quickstart: on a fresh Debian 12 machine, install the dependencies,
# build, start a local cluster on 127.0.0.1 (a master and three
# chunkservers), store a demo file and read it back, and print what to try
# next. Run it again at any time: it reuses the build and the cluster.
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
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target cairn-master cairn-chunkserver cairn_cli

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

cat <<TXT

The cluster runs in $dir. Try:
  source $dir/cluster.env
  build/bin/cairn put /etc/services /etc/services     # store a file
  build/bin/cairn cat /etc/services | head            # read it
  build/bin/cairn fsck --json                         # replication health
  scripts/cluster.sh kill chunkserver-2 --dir $dir    # crash a chunkserver, watch repair:
  curl -s \$CAIRN_MASTER_HTTP/status                   # the master's view (JSON)
  scripts/cluster.sh down --dir $dir                  # stop everything
TXT
