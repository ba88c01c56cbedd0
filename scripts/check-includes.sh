#!/usr/bin/env bash
# Checks every include in src/ against the rooms' table (README "Layout"): a room includes only
# itself and the rooms listed for it, and a third-party header only in the room that owns it.
# The build enforces the room graph too (cmake/rooms.cmake); this check names each offending line,
# holds for the direct includes, and covers tests and third-party headers. A test-only header
# (`*_fixture.hpp`) counts as a test, and only tests may include one. Exits 1 on any offence.
set -euo pipefail
cd "$(dirname "$0")/.."

# room → the rooms its files may include (besides itself)
declare -A rooms=(
  [core]=""
  [stream]="core"
  [http]="core"
  [store]="core stream"
  [broker]="core stream"
  [engine]="core stream http"
  [jobs]="core stream broker engine"
  [web]=""
  [api]="core stream http jobs web"
  [cli]="core http"
  [app]="core stream http store broker engine jobs web api cli"
)
# Headers of a room outside a file's list that it may still name: the types the job layer's
# interface is made of (a cursor, a list query, the models table).
declare -A also=(
  [api]="broker/broker.hpp engine/registry.hpp"
)
# third-party header prefix → the only files (path regex) that may include it
declare -A owners=(
  ["boost/beast"]="^src/http/"
  ["openssl/"]="^src/http/"
  ["hiredis/"]="^src/broker/redis_connection"
  ["sqlite3.h"]="^src/store/sqlite_store\\.cpp$"
  ["llama.h"]="^src/engine/llama_"
  ["chat.h"]="^src/engine/llama_"
  ["json-schema-to-grammar.h"]="^src/engine/llama_"
  ["ggml"]="^src/engine/llama_"
  ["toml++/"]="^src/app/config"
  ["CLI/"]="^src/(app|cli)/"
)

offences=0
offend() {
  echo "$1: $2" >&2
  offences=$((offences + 1))
}

while IFS= read -r file; do
  room=${file#src/}
  room=${room%%/*}
  if [ -z "${rooms[$room]+set}" ]; then
    offend "$file" "room '$room' is not in scripts/check-includes.sh's table"
    continue
  fi
  is_test=0
  [[ $file == *_test.cpp || $file == *_fixture.hpp ]] && is_test=1
  while IFS= read -r line; do
    header=$(sed -E 's/^#include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<<"$line")
    for prefix in "${!owners[@]}"; do
      # tests may reach a third-party library to set up a case (a damaged SQLite file)
      if [[ $header == "$prefix"* ]] && ! [[ $file =~ ${owners[$prefix]} ]] && [ $is_test -eq 0 ]; then
        offend "$file" "includes <$header>, which only files matching ${owners[$prefix]} may"
      fi
    done
    [[ $line == *'"'* ]] || continue
    [[ $header == *_fixture.hpp && $is_test -eq 0 ]] && offend "$file" "includes \"$header\", which only tests may"
    target=${header%%/*}
    [[ $header == */* ]] || continue  # a test tool beside the tests (tests/tools)
    [ "$target" = "$room" ] && continue
    [ $is_test -eq 1 ] && continue  # tests sit beside their room and may build any part they test
    allowed=" ${rooms[$room]} "
    [[ $allowed == *" $target "* ]] && continue
    [[ " ${also[$room]-} " == *" $header "* ]] && continue
    offend "$file" "includes \"$header\"; $room may include only: ${rooms[$room]:-nothing} ${also[$room]-}"
  done < <(grep -E '^#include[[:space:]]*[<"]' "$file" || true)
done < <(git ls-files 'src/*.cpp' 'src/*.hpp')

if [ $offences -gt 0 ]; then
  echo "check-includes: $offences includes against the rooms' table" >&2
  exit 1
fi
echo "check-includes: ok"
