#!/usr/bin/env bash
# Cross-build cairn for arm64 (Raspberry Pi) on an amd64 Debian 12 host and
# run the unit suite under qemu.
#
#   scripts/cross-arm64.sh              set up, build, run the unit tests
#   scripts/cross-arm64.sh --no-test    set up and build only
#   scripts/cross-arm64.sh -- -R crc    extra arguments after -- go to ctest
#
# Steps, each skipped when already done, so a second run only rebuilds what
# changed and reruns the tests:
#   1. host: add the arm64 architecture to dpkg (only so apt can download
#      arm64 packages), apt-get update, install crossbuild-essential-arm64,
#      qemu-user and the host tools the build runs (cmake, pkg-config,
#      protoc-c). Works as root or through sudo, like install-deps.sh.
#   2. sysroot in build-arm64/sysroot: the arm64 -dev packages cairn links
#      against and everything they depend on, downloaded into
#      build-arm64/debs and unpacked with dpkg-deb -x. Nothing arm64 is
#      installed on the host (libpq-dev is not Multi-Arch: same, so
#      installing libpq-dev:arm64 would remove the host's). Absolute symlinks
#      are made relative (else the linker silently falls back to a host path
#      or a static .a); a dangling link is an error. A stamp file records
#      the hash of the inputs (package names, apt's arm64 lists) and of the
#      exact package files: nothing is resolved again while the inputs are
#      unchanged, and the sysroot is rebuilt only when some package changed.
#   3. configure build-arm64 with cmake/toolchain-arm64.cmake, build.
#   4. ctest -L unit: every test runs through qemu-aarch64 (Cortex-A72).
set -euo pipefail

usage() {
  cat <<'EOF'
usage: scripts/cross-arm64.sh [--no-test] [--update] [-j N] [-- CTEST_ARGS...]
  --no-test   set up and build only, do not run the unit suite
  --update    run apt-get update even when the package lists look usable
  -j N        parallel build and test jobs (default: number of CPUs)
  -- ARGS     passed to ctest after the default arguments (-L unit ...)
EOF
}

RUN_TESTS=1
FORCE_UPDATE=0
JOBS=$(nproc)
CTEST_EXTRA=()
while [ $# -gt 0 ]; do
  case $1 in
    --no-test) RUN_TESTS=0 ;;
    --update) FORCE_UPDATE=1 ;;
    -j) [ $# -ge 2 ] || { usage >&2; exit 2; }; JOBS=$2; shift ;;
    -j*) JOBS=${1#-j} ;;
    -h|--help) usage; exit 0 ;;
    --) shift; CTEST_EXTRA=("$@"); break ;;
    *) echo "cross-arm64: unknown option '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
case $JOBS in ''|*[!0-9]*|0) echo "cross-arm64: -j needs a positive number" >&2; exit 2 ;; esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
BUILD_DIR=$ROOT/build-arm64
SYSROOT=$BUILD_DIR/sysroot
DEB_CACHE=$BUILD_DIR/debs
STAMP_NAME=.cairn-sysroot-stamp
# Bump when the way the sysroot is put together changes, to force a rebuild.
SYSROOT_RECIPE=1

HOST_PACKAGES=(crossbuild-essential-arm64 qemu-user cmake pkg-config protobuf-c-compiler file)

# arm64 development packages the build links against (keep in step with the
# library list of install-deps.sh). libatomic1 is the runtime of -latomic,
# which the compiler resolves from its own folder when a .pc file asks for it
# (abseil's do) but which qemu must find in the sysroot.
DEV_PACKAGES=(
  libc6-dev libgrpc-dev libprotobuf-c-dev libuv1-dev libpq-dev libssl-dev
  libmicrohttpd-dev libjansson-dev libargon2-dev libcurl4-openssl-dev
  libcmocka-dev zlib1g-dev libatomic1
)

# Programs some -dev package depends on that run on the build host, never on
# the target; they and whatever only they pull in stay out of the sysroot.
HOST_ONLY=(
  pkgconf pkgconf-bin pkg-config perl perl-base dpkg debconf
  install-info sensible-utils tar
)

START=$SECONDS
log() { echo "cross-arm64: $*"; }
die() { echo "cross-arm64: error: $*" >&2; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root or sudo to run: $*"
  fi
}

APT_UPDATED=0
apt_update() {
  log "apt-get update"
  as_root apt-get update -q
  APT_UPDATED=1
}

# Print the apt package lists (Packages files) that describe arm64 packages.
arm64_lists() {
  local lists
  eval "$(apt-config shell lists Dir::State::lists/d)"
  find "${lists:-/var/lib/apt/lists/}" -maxdepth 1 -type f \
       \( -name '*_binary-arm64_Packages*' -o -name '*_binary-all_Packages*' \) | sort
}

# apt here may run without its binary cache (Docker images turn it off), and
# every apt-cache call then parses all the package lists again (about a second
# each). The resolver makes a dozen calls, so they share a private cache that
# lives as long as this script.
APT_TMP=$(mktemp -d)
# shellcheck disable=SC2317  # called through the trap
on_exit() {
  local rc=$?
  rm -rf "$APT_TMP"
  [ "$rc" -eq 0 ] || echo "cross-arm64: failed (exit $rc) after $((SECONDS - START)) s" >&2
}
trap on_exit EXIT
APT_OPTS=(-o "Dir::Cache::pkgcache=$APT_TMP/pkgcache.bin")

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# ---------------------------------------------------------------- 1. host
setup_host() {
  local need_update=$FORCE_UPDATE missing=() p
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "dpkg --add-architecture arm64"
    as_root dpkg --add-architecture arm64
    need_update=1
  fi
  for p in "${HOST_PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
  done
  # No arm64 package lists yet (architecture added elsewhere, lists cleaned).
  if [ -z "$(arm64_lists)" ]; then
    need_update=1
  fi
  if [ ${#missing[@]} -gt 0 ] || [ "$need_update" -eq 1 ]; then
    apt_update
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    log "host packages present (${HOST_PACKAGES[*]})"
  fi
}

# ------------------------------------------------------------- 2. sysroot

# Print, one a line and sorted, the arm64 packages the sysroot needs: the
# DEV_PACKAGES and the closure of their Depends/Pre-Depends. Walks the graph
# one level at a time (one apt-cache call per level) so that it does not
# descend into HOST_ONLY packages. A virtual package is satisfied by all the
# providers apt lists for it. Dependencies that apt resolves to host packages
# (Multi-Arch: foreign tools such as rpcsvc-proto, Architecture: all data
# such as libtirpc-common's /etc/netconfig) carry no :arm64 suffix in its
# output and are left out.
resolve_packages() {
  local -A seen=() skip=()
  local frontier=("${DEV_PACKAGES[@]}") next dep p
  for p in "${HOST_ONLY[@]}"; do skip[$p]=1; done
  for p in "${frontier[@]}"; do seen[$p]=1; done
  while [ ${#frontier[@]} -gt 0 ]; do
    next=()
    while IFS= read -r dep; do
      if [ -z "${seen[$dep]:-}" ] && [ -z "${skip[$dep]:-}" ]; then
        seen[$dep]=1
        next+=("$dep")
      fi
    done < <(apt-cache "${APT_OPTS[@]}" depends --no-recommends --no-suggests --no-conflicts \
               --no-breaks --no-replaces --no-enhances "${frontier[@]/%/:arm64}" |
             awk '/^[ |]/ { n = $NF; if (n ~ /^</) next;
                           if (sub(/:arm64$/, "", n)) print n }')
    frontier=("${next[@]}")
  done
  printf '%s\n' "${!seen[@]}" | sort
}

# Print "<file> <size> <hash>" for each package of resolve_packages, as the
# candidate versions apt would download now.
package_files() {
  local pkgs
  mapfile -t pkgs < <(resolve_packages)
  [ ${#pkgs[@]} -gt 0 ] || die "no arm64 packages resolved"
  apt-get "${APT_OPTS[@]}" download --print-uris "${pkgs[@]/%/:arm64}" |
    awk '{ print $2, $3, $4 }' | sort
}

# Download every file of the list ($1) that is not in DEB_CACHE yet with the
# right size. Downloads land in a partial folder first, so an interrupted
# run never leaves a truncated .deb in the cache. Returns non-zero when apt
# fails (stale package lists, typically).
fetch_debs() {
  local list=$1 file size name ver arch want=()
  mkdir -p "$DEB_CACHE/partial"
  while read -r file size _; do
    if [ -f "$DEB_CACHE/$file" ] && [ "$(stat -c %s "$DEB_CACHE/$file")" = "$size" ]; then
      continue
    fi
    name=${file%%_*}
    ver=${file#*_}; ver=${ver%_*}; ver=${ver//%3a/:}
    arch=${file##*_}; arch=${arch%.deb}
    want+=("$name:$arch=$ver")
  done <"$list"
  if [ ${#want[@]} -eq 0 ]; then
    log "all $(wc -l <"$list") packages in $(rel "$DEB_CACHE")"
    return 0
  fi
  log "downloading ${#want[@]} arm64 packages"
  local apt_opts=("${APT_OPTS[@]}" -q)
  # As root, apt would drop to the _apt user, who cannot write here.
  [ "$(id -u)" -ne 0 ] || apt_opts+=(-o APT::Sandbox::User=root)
  (cd "$DEB_CACHE/partial" && apt-get download "${apt_opts[@]}" "${want[@]}") || return 1
  mv -f "$DEB_CACHE/partial/"*.deb "$DEB_CACHE/" || return 1
  # Old versions left over from earlier runs.
  local keep
  keep=$(awk '{ print $1 }' "$list")
  for file in "$DEB_CACHE"/*.deb; do
    grep -qxF "$(basename "$file")" <<<"$keep" || rm -f "$file"
  done
}

rel() { echo "${1#"$ROOT"/}"; }

# Unpack the list ($1) into a fresh folder, repair and check its symlinks and
# swap it in place of SYSROOT with the stamp ($2) inside.
assemble_sysroot() {
  local list=$1 stamp=$2 new=$SYSROOT.new file link target n=0
  rm -rf "$new"
  mkdir -p "$new"
  while read -r file _; do
    dpkg-deb -x "$DEB_CACHE/$file" "$new"
  done <"$list"
  # Documentation is never needed to build and holds links into packages we
  # do not unpack.
  rm -rf "$new/usr/share/doc" "$new/usr/share/man" "$new/usr/share/info" \
         "$new/usr/share/lintian" "$new/usr/share/bug"

  # Absolute links point into the host's root: make them relative to the
  # sysroot, computed textually (-s) so nothing outside it is consulted.
  while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -s -m --relative-to="$(dirname "$link")" "$new$target")" "$link"
    n=$((n + 1))
  done < <(find "$new" -type l -lname '/*' -print0)
  log "made $n absolute symlinks relative"

  local dangling
  dangling=$(find "$new" -xtype l -printf '  %P -> %l\n')
  [ -z "$dangling" ] || die "dangling symlinks in the sysroot:"$'\n'"$dangling"
  local outside
  outside=$(find "$new" -type l -print0 | xargs -0 -r realpath -e -- |
            awk -v root="$new/" 'index($0, root) != 1')
  [ -z "$outside" ] || die "symlinks in the sysroot resolve outside it:"$'\n'"$outside"

  echo "$stamp" >"$new/$STAMP_NAME"
  rm -rf "$SYSROOT"
  mv "$new" "$SYSROOT"
}

# Fingerprint of everything the package list is computed from: the recipe,
# the package names and the arm64 package lists apt has (name, size, time).
# While it is unchanged, resolving again would give the same packages, so a
# run with a sysroot stamped with it does not call apt at all.
sysroot_inputs_key() {
  {
    echo "recipe=$SYSROOT_RECIPE"
    echo "dev=${DEV_PACKAGES[*]}"
    echo "host-only=${HOST_ONLY[*]}"
    arm64_lists | xargs -r stat -c '%n %s %Y'
  } | sha256sum | cut -d' ' -f1
}

# Make SYSROOT match the current package lists. The stamp inside it holds two
# lines: the inputs key (fast check, no apt) and the hash of the exact .deb
# files it was unpacked from (after apt-get update, rebuild only when some
# package really changed).
build_sysroot() {
  local list=$BUILD_DIR/sysroot-packages.txt stamp_file=$SYSROOT/$STAMP_NAME
  local inputs packages attempt
  inputs="inputs $(sysroot_inputs_key)"
  if [ -f "$stamp_file" ] && [ -f "$list" ] && grep -qxF "$inputs" "$stamp_file"; then
    log "sysroot up to date ($(wc -l <"$list") packages, $(du -sh "$SYSROOT" | cut -f1))"
    return 0
  fi
  for attempt in 1 2; do
    log "resolving the arm64 packages"
    package_files >"$list.tmp" || die "could not resolve the arm64 packages"
    mv "$list.tmp" "$list"
    packages="packages recipe=$SYSROOT_RECIPE $(sha256sum <"$list" | cut -d' ' -f1)"
    inputs="inputs $(sysroot_inputs_key)"
    if [ -f "$stamp_file" ] && grep -qxF "$packages" "$stamp_file"; then
      printf '%s\n%s\n' "$inputs" "$packages" >"$stamp_file"
      log "sysroot up to date ($(wc -l <"$list") packages unchanged)"
      return 0
    fi
    if fetch_debs "$list"; then
      break
    fi
    # Lists older than the archive: refresh once and resolve again.
    if [ "$attempt" -eq 2 ] || [ "$APT_UPDATED" -eq 1 ]; then
      die "downloading arm64 packages failed"
    fi
    apt_update
  done
  log "unpacking $(wc -l <"$list") packages into $(rel "$SYSROOT")"
  assemble_sysroot "$list" "$inputs"$'\n'"$packages"
  log "sysroot ready ($(du -sh "$SYSROOT" | cut -f1))"
}

# ------------------------------------------------------- 3. configure, build
configure_and_build() {
  local toolchain=$ROOT/cmake/toolchain-arm64.cmake
  if [ -f "$BUILD_DIR/CMakeCache.txt" ]; then
    grep -q '^CMAKE_TOOLCHAIN_FILE:.*toolchain-arm64\.cmake$' "$BUILD_DIR/CMakeCache.txt" ||
      die "$(rel "$BUILD_DIR") was configured without cmake/toolchain-arm64.cmake; remove $(rel "$BUILD_DIR")/CMakeCache.txt"
    cmake -B "$BUILD_DIR" -S "$ROOT" -DCAIRN_SYSROOT="$SYSROOT" >/dev/null
  else
    cmake -B "$BUILD_DIR" -S "$ROOT" -DCMAKE_TOOLCHAIN_FILE="$toolchain" \
          -DCAIRN_SYSROOT="$SYSROOT"
  fi
  cmake --build "$BUILD_DIR" -j "$JOBS"

  # Every program built must be an arm64 executable.
  local bins=() f bad=0
  while IFS= read -r -d '' f; do bins+=("$f"); done < <(
    find "$BUILD_DIR/bin" "$BUILD_DIR/tests" -maxdepth 1 -type f -perm -u+x -print0 2>/dev/null)
  for f in "${bins[@]}"; do
    if ! readelf -h "$f" 2>/dev/null | grep -q 'Machine:.*AArch64'; then
      echo "cross-arm64: not an arm64 ELF: $(rel "$f")" >&2
      bad=1
    fi
  done
  [ "$bad" -eq 0 ] || die "the build produced host binaries"
  log "${#bins[@]} programs built, all aarch64; for example:"
  [ ${#bins[@]} -eq 0 ] || file "${bins[0]}" | sed "s|$ROOT/||"
}

# ------------------------------------------------------------------ 4. test
run_tests() {
  command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 missing (package qemu-user)"
  local log_file=$BUILD_DIR/ctest-arm64.log rc t0=$SECONDS
  set +e
  ctest --test-dir "$BUILD_DIR" -L unit -j "$JOBS" --output-on-failure \
        --no-tests=error "${CTEST_EXTRA[@]}" 2>&1 | tee "$log_file"
  rc=${PIPESTATUS[0]}
  set -e
  echo
  log "unit suite under qemu-aarch64 ($(grep -m1 '^CAIRN_QEMU_CPU:' "$BUILD_DIR/CMakeCache.txt" | cut -d= -f2)):"
  grep -E 'tests passed|Total Test time|No tests were found' "$log_file" | sed 's/^/  /' || true
  log "tests took $((SECONDS - t0)) s"
  return "$rc"
}

t=$SECONDS; setup_host;          T_HOST=$((SECONDS - t))
mkdir -p "$BUILD_DIR"
exec 9>"$BUILD_DIR/.cross-arm64.lock"
flock -n 9 || die "another cross-arm64.sh is running on $(rel "$BUILD_DIR")"
t=$SECONDS; build_sysroot;       T_SYSROOT=$((SECONDS - t))
t=$SECONDS; configure_and_build; T_BUILD=$((SECONDS - t))
rc=0
if [ "$RUN_TESTS" -eq 1 ]; then
  run_tests || rc=$?
fi
log "elapsed $((SECONDS - START)) s (host ${T_HOST} s, sysroot ${T_SYSROOT} s, build ${T_BUILD} s)"
exit "$rc"
