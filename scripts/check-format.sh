#!/usr/bin/env bash
# Fails when a C++ file differs from .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cpp' 'src/*.hpp' 'bench/*.cpp' 'bench/*.hpp' 'fuzz/*.cpp')
[ -z "$files" ] && exit 0
bad=$(clang-format --dry-run $files 2>&1 | grep -c "warning:" || true)
if [ "$bad" != "0" ]; then
  clang-format --dry-run $files 2>&1 | grep "warning:" | cut -d: -f1 | sort -u >&2
  echo "clang-format: $bad places differ from .clang-format (run: clang-format -i \$(git ls-files 'src/*.[ch]pp' 'bench/*.[ch]pp'))" >&2
  exit 1
fi
echo "clang-format: ok"
