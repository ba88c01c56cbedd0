#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` and `llama-batched-bench` in the llama.cpp build tree of a
# Spool build (cmake/llama.cmake configured it: same flags, same libraries as Spool's engine).
# They are the real upstream of the upstream-engine tests and the reference of bench/llama.sh;
# Spool itself does not need them.
# Usage: scripts/build-llama-tools.sh [SPOOL_BUILD_DIR]   (default: build; configure it first)
# Prints the directory holding both binaries on stdout. No network: the web UI is neither
# downloaded nor built.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
llama_dir=$(sed -n 's/^SPOOL_LLAMA_DIR:PATH=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
tree=$llama_dir/build
if [ -z "$llama_dir" ] || [ ! -f "$tree/build.ninja" ]; then
  echo "build-llama-tools: no llama.cpp build tree for $build (scripts/build.sh release makes one)" >&2
  exit 1
fi
start=$SECONDS
echo "build-llama-tools: building llama-server llama-batched-bench in $tree" >&2
nice cmake --build "$tree" -j "${SPOOL_JOBS:-$(nproc)}" --target llama-server llama-batched-bench >"$tree.tools.log" 2>&1 ||
  { tail -50 "$tree.tools.log" >&2; exit 1; }
echo "build-llama-tools: done in $((SECONDS - start)) s" >&2
echo "$tree/bin"
