#!/bin/sh
# Install the build into a temporary prefix and build client/example.c
# against the installed libcairn with pkg-config, as a user would (compile
# and link only; running it needs a cluster).
#
#   test_install.sh BUILD_DIR EXAMPLE_C LIBDIR CC [extra compiler flags...]
set -eu
build=$1
example=$2
libdir=$3
cc=$4
shift 4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cairn-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log" >&2
  exit 1
}
export PKG_CONFIG_PATH="$tmp/prefix/$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs cairn)
echo "pkg-config --cflags --libs cairn: $flags"
# shellcheck disable=SC2086 # the flags are words
"$cc" "$@" -Wall -Werror -o "$tmp/example" "$example" $flags
test -x "$tmp/example"
# the program must find exactly the installed library
LD_LIBRARY_PATH="$tmp/prefix/$libdir" ldd "$tmp/example" | grep -q "$tmp/prefix/$libdir/libcairn.so.0"
echo "example built against $tmp/prefix"
