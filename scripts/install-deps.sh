#!/usr/bin/env bash
# Install every Debian package that building, testing and running cairn needs.
#
# Idempotent: packages already installed are skipped, and when nothing is
# missing apt is not touched at all. Works as root or through sudo. Debian 12
# (bookworm) is the reference; Raspberry Pi OS (arm64, bookworm) works the same.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake pkg-config git
  # control plane: gRPC C core + protobuf-c
  libgrpc-dev protobuf-c-compiler libprotobuf-c-dev
  # event loops, data plane, thread pool
  libuv1-dev
  # crypto, hashes, TLS of cluster links
  libssl-dev
  # HTTP listeners (metrics, health, gateway)
  libmicrohttpd-dev
  # gateway: PostgreSQL client + a private server for the local cluster and tests
  libpq-dev postgresql
  # JSON bodies and status documents
  libjansson-dev
  # password hashing (argon2id)
  libargon2-dev
  # gateway outbound fetches (async jobs, webhooks)
  libcurl4-openssl-dev
  # unit test framework
  libcmocka-dev
  # tests and tools used by the suite
  valgrind curl openssl python3 procps iproute2 xxd
)

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: need root or sudo to install packages" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
