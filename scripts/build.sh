#!/usr/bin/env bash
# Builds Spool. Usage: scripts/build.sh [release|asan]  (release → build/, asan → build-asan/)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
case "$kind" in
  release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
  # llama.cpp is not instrumented: the ASan build shares the release build's llama.cpp tree.
  asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPOOL_SANITIZE=ON -DSPOOL_BUILD_BENCH=OFF
                               "-DSPOOL_LLAMA_DIR=$PWD/build/_deps/llama") ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)"
