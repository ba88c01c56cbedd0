#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the server sources; fails on any finding, and when
# clang-tidy itself fails (a crash, a file it cannot compile). Needs a configured build/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
status=0
git ls-files 'src/*.cpp' | grep -v '_test\.cpp$' |
  xargs -P "$(nproc)" -n 1 clang-tidy -p build --quiet >"$out" 2>"$err" || status=$?
findings=$(grep -E "(warning|error):" "$out" | sort -u || true)
if [ -n "$findings" ]; then
  echo "$findings" >&2
  echo "clang-tidy: $(echo "$findings" | wc -l) findings" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Use -system-headers' "$err" >&2 || true
  echo "clang-tidy failed (exit $status)" >&2
  exit 1
fi
echo "clang-tidy: ok"
