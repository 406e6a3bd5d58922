#!/usr/bin/env bash
# install_test.sh BUILD_DIR SOURCE_DIR CC
set -euo pipefail
build="$1" src="$2" cc="$3"
work="$(mktemp -d "${TMPDIR:-/tmp}/lw-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cmake --build "$build" --target lwmalloc lwmalloc-static >/dev/null
cmake --install "$build" --prefix "$work/prefix" >/dev/null
# 1. CMake package, static library
cmake -S "$src/consumer" -B "$work/b" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/b" >/dev/null
[ "$("$work/b/consumer")" = ok ] || { echo "find_package consumer failed"; exit 1; }
# 2. pkg-config, shared library (which also replaces malloc)
libdir="$(dirname "$(find "$work/prefix" -name lwmalloc.pc)")"
flags="$(PKG_CONFIG_PATH="$libdir" pkg-config --cflags --libs lwmalloc)"
"$cc" -o "$work/pc" "$src/consumer/consumer.c" $flags
[ "$(LD_LIBRARY_PATH="$(dirname "$libdir")" "$work/pc")" = ok ] || { echo "pkg-config consumer failed"; exit 1; }
echo "install: find_package and pkg-config consumers built and ran"
