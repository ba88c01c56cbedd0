#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: unit and end-to-end, on the release
# build and again under AddressSanitizer + UndefinedBehaviorSanitizer; the bench smoke runs; the
# fuzz harnesses for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh test
scripts/check-format.sh
scripts/check-includes.sh
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

run_suite() {  # $1 = build dir
  local dir=$1
  echo "== unit tests ($dir)"
  ctest --test-dir "$dir" --output-on-failure -j "$(nproc)"
  echo "== end-to-end tests ($dir)"
  (cd tests/e2e && SPOOL_BIN="$PWD/../../$dir/spool" node --test --test-concurrency=2 --test-timeout=300000)
}

scripts/build.sh release
scripts/check-tidy.sh
# llama.cpp's own llama-server (same bundle) is the real upstream of the openai/anthropic e2e tests.
SPOOL_LLAMA_SERVER="$(scripts/build-llama-tools.sh build)/llama-server"
export SPOOL_LLAMA_SERVER SPOOL_REQUIRE_LLAMA=1 SPOOL_REQUIRE_REDIS=1
run_suite build
echo "== browser tests (the playground in Debian's Chromium; screenshots in tests/browser/artifacts)"
(cd tests/browser && SPOOL_BIN="$PWD/../../build/spool" node --test --test-concurrency=1 --test-timeout=300000)
echo "== benchmark smoke run (small sizes; figures are not asserted)"
scripts/deps.sh bench || echo "nginx/nchan could not be installed; the nchan lines will say skipped" >&2
bash bench/run.sh --quick build/spool build/bench/spool_bench
bash bench/llama.sh --quick --models tiny --jobs 2
bash bench/redis.sh --quick
bash bench/durable.sh --quick
echo "== fuzzing (libFuzzer, ASan+UBSan; 45 s per harness)"
scripts/fuzz.sh 45
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
scripts/build.sh asan
run_suite build-asan
