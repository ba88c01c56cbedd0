#!/usr/bin/env bash
# Fails when a C++ file differs from .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cpp' 'src/*.hpp' 'bench/*.cpp' 'bench/*.hpp' 'fuzz/*.cpp')
[ -z "$files" ] && exit 0
# clang-format itself failing (a crash, a file it cannot read) fails the check; its findings are warnings.
if ! out=$(clang-format --dry-run $files 2>&1); then
  echo "$out" >&2
  echo "clang-format failed" >&2
  exit 1
fi
bad=$(grep -c "warning:" <<<"$out" || true)  # grep -c exits 1 when it counts 0
if [ "$bad" != "0" ]; then
  grep "warning:" <<<"$out" | cut -d: -f1 | sort -u >&2
  echo "clang-format: $bad places differ from .clang-format (run: clang-format -i \$(git ls-files 'src/*.[ch]pp' 'bench/*.[ch]pp'))" >&2
  exit 1
fi
echo "clang-format: ok"
