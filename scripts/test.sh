#!/usr/bin/env bash
# The test command: on a fresh Debian 12 machine, install the dependencies,
# configure, build and run the whole suite through CTest.
#
#   scripts/test.sh              normal build in build/
#   scripts/test.sh --sanitize   AddressSanitizer + UBSan build in build-san/
#   scripts/test.sh -R REGEX     only the CTest entries matching REGEX
#
# Exit status is CTest's: 0 when every test passed.
set -euo pipefail
cd "$(dirname "$0")/.."

sanitize=0
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --sanitize) sanitize=1 ;;
    -R|-L|-E) ctest_args+=("$1" "$2"); shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "test.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done

bash scripts/install-deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
if [ "$sanitize" -eq 1 ]; then
  dir=build-san
  cmake_args=(-DCAIRN_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  # Fail on the first report; leaks are reported at exit of every test program.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
else
  dir=build
  cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi

start=$(date +%s)
cmake -B "$dir" -S . "${cmake_args[@]}"
cmake --build "$dir" -j "$jobs"
built=$(date +%s)
echo "test.sh: build took $((built - start)) s"
ctest --test-dir "$dir" -j "$jobs" --output-on-failure --timeout 900 "${ctest_args[@]}"
echo "test.sh: tests took $(( $(date +%s) - built )) s"
