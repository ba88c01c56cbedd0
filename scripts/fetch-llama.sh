#!/usr/bin/env bash
# Fetches llama.cpp's source for the in-process engine from npm (nothing is committed to this
# repository): node-llama-cpp@3.22.1 carries it as a git bundle, cloned to DEST/src.
# cmake/llama.cmake builds it into DEST/build.
# Usage: scripts/fetch-llama.sh [DEST]   (default: build/_deps/llama under the repository root)
# Idempotent: does nothing when DEST/.stamp already names the pinned version. A new version
# replaces DEST/src and discards DEST/build.
set -euo pipefail

NLC_VERSION=3.22.1
# npm's "integrity" of the tarball (sha512, as `npm pack --json` reports it): a changed tarball fails.
NLC_INTEGRITY="sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=="
STAMP="node-llama-cpp@${NLC_VERSION} source fetch-v2"

log() { echo "fetch-llama: $*" >&2; }
die() { echo "fetch-llama: error: $*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/build/_deps/llama}
mkdir -p "$(dirname "$dest")"
dest=$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")

if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$STAMP" ] && [ -f "$dest/src/include/llama.h" ]; then
  log "up to date: $dest ($STAMP)"
  exit 0
fi

for tool in npm tar git; do
  command -v "$tool" >/dev/null || die "'$tool' is required (scripts/deps.sh installs it)"
done

# Only replace a directory this script made (it has a .stamp) or an empty one.
if [ -e "$dest" ] && [ ! -f "$dest/.stamp" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
  die "$dest exists and was not made by this script; remove it or pass another DEST"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch-llama.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

log "npm pack node-llama-cpp@$NLC_VERSION"
(cd "$tmp" && npm pack --json --loglevel=error "node-llama-cpp@$NLC_VERSION" >pack.json 2>pack.err) ||
  { cat "$tmp/pack.err" >&2; die "npm pack failed (is the npm registry reachable?)"; }
main_tgz=$tmp/node-llama-cpp-$NLC_VERSION.tgz
[ -f "$main_tgz" ] || die "npm pack did not produce the expected tarball: $(ls "$tmp")"
grep -qF "\"$NLC_INTEGRITY\"" "$tmp/pack.json" || die "integrity of node-llama-cpp@$NLC_VERSION does not match the pin"

log "extracting"
mkdir -p "$tmp/main"
tar -xzf "$main_tgz" -C "$tmp/main" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json ||
  die "node-llama-cpp tarball lacks package/llama/gitRelease.bundle"
tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$tmp/main/package/llama/llama.cpp.info.json")
[ -n "$tag" ] || die "no release tag in llama.cpp.info.json"

partial=$dest.partial
rm -rf "$partial"
mkdir -p "$partial"
log "git clone gitRelease.bundle (llama.cpp $tag) → $dest/src"
git clone --quiet "$tmp/main/package/llama/gitRelease.bundle" "$partial/src" 2>"$tmp/clone.err" ||
  { cat "$tmp/clone.err" >&2; die "git clone of the bundle failed"; }
git -C "$partial/src" remote remove origin  # it points at the deleted temp bundle
[ -f "$partial/src/include/llama.h" ] && [ -f "$partial/src/ggml/include/gguf.h" ] || die "bundle lacks include/llama.h"
cp "$tmp/main/package/llama/llama.cpp.info.json" "$partial/"

echo "$STAMP" >"$partial/.stamp"
rm -rf "$dest"
mv "$partial" "$dest"
log "done in $((SECONDS - start)) s: llama.cpp $tag source in $dest/src"
