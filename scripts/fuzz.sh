#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/, clang) and runs each for SECONDS (default 60) on a
# copy of its seed corpus (fuzz/corpus/<name>). A crash, leak or sanitizer report fails the run
# and leaves the input in build-fuzz/artifacts/; add it to the unit tests as a regression test
# and to fuzz/corpus/. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
command -v clang++ >/dev/null || { echo "fuzz.sh: clang++ is missing (scripts/deps.sh test)" >&2; exit 2; }
cmake -S fuzz -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice ninja -C build-fuzz
mkdir -p build-fuzz/artifacts
status=0
for corpus in fuzz/corpus/*/; do
  name=$(basename "$corpus")
  work=build-fuzz/corpus/$name
  rm -rf "$work" && mkdir -p "$work" && cp "$corpus"/* "$work"/
  echo "fuzz.sh: $name for ${seconds}s" >&2
  if ! build-fuzz/fuzz_"$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix=build-fuzz/artifacts/"$name"- "$work" 2>build-fuzz/"$name".log; then
    echo "fuzz.sh: $name FAILED; the input is in build-fuzz/artifacts/:" >&2
    tail -n 40 build-fuzz/"$name".log >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" build-fuzz/"$name".log | tail -n 2 >&2 || true
  fi
done
exit $status
