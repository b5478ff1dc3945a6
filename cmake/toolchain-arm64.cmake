# Cross-compile cairn for arm64 (Raspberry Pi 3/4/5 running 64-bit Debian or
# Raspberry Pi OS) on an amd64 Debian host.
#
#   scripts/cross-arm64.sh                      does everything below for you
#   cmake -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-arm64.cmake \
#         [-DCAIRN_SYSROOT=<dir>]
#
# Needs the host packages crossbuild-essential-arm64 (compiler), qemu-user
# (to run tests) and protobuf-c-compiler (the host's protoc-c generates the
# code), plus an arm64 sysroot: a folder holding Debian's arm64 -dev packages
# and their dependencies unpacked with `dpkg-deb -x`.
#
# The sysroot is taken, in this order, from -DCAIRN_SYSROOT, the environment
# variable CAIRN_SYSROOT, or build-arm64/sysroot at the top of the source
# tree, which is where scripts/cross-arm64.sh builds it.
#
# Tests and try_run() programs run through qemu-aarch64 (CTest does this by
# itself through CMAKE_CROSSCOMPILING_EMULATOR). The emulated CPU is a
# Cortex-A72 (Raspberry Pi 4) by default, which has the ARMv8 CRC32
# instructions; -DCAIRN_QEMU_CPU=cortex-a53 (Pi 3) or cortex-a76 (Pi 5)
# picks another.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# This file is read again inside every try_compile() project, where cache
# variables of the main project are not visible unless listed here.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES CAIRN_SYSROOT CAIRN_QEMU_CPU)

if(NOT CAIRN_SYSROOT)
  if(DEFINED ENV{CAIRN_SYSROOT} AND NOT "$ENV{CAIRN_SYSROOT}" STREQUAL "")
    set(CAIRN_SYSROOT "$ENV{CAIRN_SYSROOT}")
  else()
    set(CAIRN_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-arm64/sysroot")
  endif()
endif()
get_filename_component(CAIRN_SYSROOT "${CAIRN_SYSROOT}" ABSOLUTE)
set(CAIRN_SYSROOT "${CAIRN_SYSROOT}" CACHE PATH "arm64 sysroot (unpacked Debian arm64 packages)" FORCE)
if(NOT EXISTS "${CAIRN_SYSROOT}/usr/include/stdio.h"
   OR NOT EXISTS "${CAIRN_SYSROOT}/usr/lib/aarch64-linux-gnu/libc.so")
  message(FATAL_ERROR
    "no arm64 sysroot at ${CAIRN_SYSROOT}: run scripts/cross-arm64.sh, "
    "or pass -DCAIRN_SYSROOT=<dir> (or set CAIRN_SYSROOT in the environment)")
endif()

# Note: Debian's cross gcc searches its own glibc (libc6-dev-arm64-cross in
# /usr/aarch64-linux-gnu) before the sysroot's, for headers and for libc.so.
# Both are glibc 2.36 of bookworm, so this is harmless; the sysroot's glibc
# is what qemu runs the programs with.
set(CMAKE_SYSROOT "${CAIRN_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${CAIRN_SYSROOT}")
# Programs (protoc-c) come from the host, everything linked from the sysroot.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The host's pkg-config reads only the sysroot's .pc files and prefixes the
# paths it prints with the sysroot. The system directories are given with
# the prefix too, so that pkgconf still drops -I/usr/include and
# -L/usr/lib/... (an explicit -I<sysroot>/usr/include would break the
# compiler's #include_next chain).
set(ENV{PKG_CONFIG_PATH} "")
set(ENV{PKG_CONFIG_LIBDIR}
    "${CAIRN_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${CAIRN_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${CAIRN_SYSROOT}")
set(ENV{PKG_CONFIG_SYSTEM_INCLUDE_PATH} "${CAIRN_SYSROOT}/usr/include")
set(ENV{PKG_CONFIG_SYSTEM_LIBRARY_PATH}
    "${CAIRN_SYSROOT}/usr/lib/aarch64-linux-gnu:${CAIRN_SYSROOT}/usr/lib:${CAIRN_SYSROOT}/lib/aarch64-linux-gnu:${CAIRN_SYSROOT}/lib")

# qemu-aarch64 -L <sysroot> loads the sysroot's own ld.so and glibc; do not
# add LD_LIBRARY_PATH on top (two ld.so versions mixed hang at start-up).
set(CAIRN_QEMU_CPU "cortex-a72" CACHE STRING "CPU model qemu emulates for tests (cortex-a53, cortex-a72, cortex-a76)")
find_program(CAIRN_QEMU qemu-aarch64)
if(CAIRN_QEMU)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CAIRN_QEMU};-cpu;${CAIRN_QEMU_CPU};-L;${CAIRN_SYSROOT}")
else()
  message(WARNING "qemu-aarch64 not found (Debian package qemu-user): "
                  "the build works, but tests cannot run on this host")
endif()
