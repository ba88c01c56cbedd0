#!/usr/bin/env bash
# Builds llama.cpp's own `llama-server` and `llama-batched-bench` from the same source bundle the
# llama engine uses (scripts/fetch-llama.sh → build/_deps/llama/src). They are the reference the
# upstream-engine tests talk to and the bench compares against; Spool itself does not need them.
# Usage: scripts/build-llama-tools.sh [BUILD_DIR]   (default: build)
# Prints the directory holding both binaries on stdout. Idempotent (ninja rebuilds nothing when
# nothing changed). No network: the web UI is neither downloaded nor built.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
mkdir -p "$build"
build=$(cd "$build" && pwd)
llama=$build/_deps/llama
out=$llama/build

log() { echo "build-llama-tools: $*" >&2; }

"$root/scripts/fetch-llama.sh" "$llama"

jobs=${SPOOL_JOBS:-$(nproc)}
start=$SECONDS
if [ ! -f "$out/build.ninja" ]; then
  log "configuring $out"
  # Static, CPU-only, native instructions; only what the two tools need.
  cmake -S "$llama/src" -B "$out" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=ON -DGGML_BACKEND_DL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_LLGUIDANCE=OFF >"$out.configure.log" 2>&1 || { cat "$out.configure.log" >&2; exit 1; }
fi
log "building llama-server llama-batched-bench (-j$jobs)"
nice cmake --build "$out" -j "$jobs" --target llama-server llama-batched-bench >"$out.build.log" 2>&1 ||
  { tail -50 "$out.build.log" >&2; exit 1; }
log "done in $((SECONDS - start)) s"
echo "$out/bin"
