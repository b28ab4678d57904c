#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and builds a consumer
# against it three ways: pkg-config (shared), pkg-config --static, and
# CMake's find_package(q8) (shared and static targets).
set -euo pipefail
build_dir="$1" source_dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
libdir="$(ls -d "$work"/prefix/lib*/pkgconfig | head -1)"
export PKG_CONFIG_PATH="$libdir"
test -x "$work/prefix/bin/qbench"
test -f "$work/prefix/include/q8/q8.h"

cc -std=c17 -Wall -Wextra -Werror "$source_dir/tests/consumer/consumer.c" -o "$work/pc_shared" \
  $(pkg-config --cflags --libs q8)
LD_LIBRARY_PATH="$(dirname "$libdir")" "$work/pc_shared"

cc -std=c17 -Wall -Wextra -Werror "$source_dir/tests/consumer/consumer.c" -o "$work/pc_static" \
  $(pkg-config --cflags q8) -Wl,-Bstatic -lq8 -Wl,-Bdynamic $(pkg-config --static --libs q8 | sed "s/-lq8//")
"$work/pc_static"

cmake -S "$source_dir/tests/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake" >/dev/null
LD_LIBRARY_PATH="$(dirname "$libdir")" "$work/cmake/consumer_shared"
"$work/cmake/consumer_static"
echo "install: pkg-config shared/static and find_package shared/static consumers ok"
