#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the server sources; fails on any finding. Needs a configured build/.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files 'src/*.cpp' | grep -v '_test\.cpp$' |
  xargs -P "$(nproc)" -n 1 clang-tidy -p build --quiet 2>/dev/null | grep -E "(warning|error):" | sort -u > /tmp/spool-tidy.txt || true
if [ -s /tmp/spool-tidy.txt ]; then
  cat /tmp/spool-tidy.txt >&2
  echo "clang-tidy: $(wc -l < /tmp/spool-tidy.txt) findings" >&2
  exit 1
fi
echo "clang-tidy: ok"
