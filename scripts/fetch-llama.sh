#!/usr/bin/env bash
# Fetches llama.cpp for the in-process engine, from npm (nothing is committed to this repository):
#   node-llama-cpp@3.22.1             → llama.cpp source as a git bundle  → DEST/src  (headers, vocab GGUFs)
#   @node-llama-cpp/linux-x64@3.22.1  → prebuilt CPU shared libraries       → DEST/lib
# Usage: scripts/fetch-llama.sh [DEST]   (default: build/_deps/llama under the repository root)
# Idempotent: does nothing when DEST/.stamp already names the pinned version.
set -euo pipefail

NLC_VERSION=3.22.1
# npm's "integrity" of the two tarballs (sha512, as `npm pack --json` reports it): a changed tarball fails.
NLC_INTEGRITY="sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=="
NLC_BINS_INTEGRITY="sha512-5uCCDNqWCNfaAm8aR/Uzxbo4HBpKgNF91kCHPepKhgMgV2OAmatoefbOlMihsqCiH2Od35E/eUHQCFbfRBJuOg=="
STAMP="node-llama-cpp@${NLC_VERSION} linux-x64 fetch-v1"

log() { echo "fetch-llama: $*" >&2; }
die() { echo "fetch-llama: error: $*" >&2; exit 1; }

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/build/_deps/llama}
mkdir -p "$(dirname "$dest")"
dest=$(cd "$(dirname "$dest")" && pwd)/$(basename "$dest")

if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$STAMP" ] &&
   [ -f "$dest/src/include/llama.h" ] && [ -e "$dest/lib/libllama.so" ]; then
  log "up to date: $dest ($STAMP)"
  exit 0
fi

[ "$(uname -s)" = Linux ] && [ "$(uname -m)" = x86_64 ] ||
  die "the prebuilt llama.cpp libraries are linux-x64 only (this is $(uname -s) $(uname -m)); configure with -DSPOOL_WITH_LLAMA=OFF"
for tool in npm tar git readelf; do
  command -v "$tool" >/dev/null || die "'$tool' is required (scripts/deps.sh installs it)"
done

# Only replace a directory this script made (it has a .stamp) or an empty one.
if [ -e "$dest" ] && [ ! -f "$dest/.stamp" ] && [ -n "$(ls -A "$dest" 2>/dev/null)" ]; then
  die "$dest exists and was not made by this script; remove it or pass another DEST"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fetch-llama.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

log "npm pack node-llama-cpp@$NLC_VERSION @node-llama-cpp/linux-x64@$NLC_VERSION"
(cd "$tmp" && npm pack --json --loglevel=error "node-llama-cpp@$NLC_VERSION" "@node-llama-cpp/linux-x64@$NLC_VERSION" \
  >pack.json 2>pack.err) || { cat "$tmp/pack.err" >&2; die "npm pack failed (is the npm registry reachable?)"; }
main_tgz=$tmp/node-llama-cpp-$NLC_VERSION.tgz
bins_tgz=$tmp/node-llama-cpp-linux-x64-$NLC_VERSION.tgz
[ -f "$main_tgz" ] && [ -f "$bins_tgz" ] || die "npm pack did not produce the expected tarballs: $(ls "$tmp")"
grep -qF "\"$NLC_INTEGRITY\"" "$tmp/pack.json" || die "integrity of node-llama-cpp@$NLC_VERSION does not match the pin"
grep -qF "\"$NLC_BINS_INTEGRITY\"" "$tmp/pack.json" ||
  die "integrity of @node-llama-cpp/linux-x64@$NLC_VERSION does not match the pin"

log "extracting"
mkdir -p "$tmp/main" "$tmp/bins"
tar -xzf "$main_tgz" -C "$tmp/main" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json ||
  die "node-llama-cpp tarball lacks package/llama/gitRelease.bundle"
tar -xzf "$bins_tgz" -C "$tmp/bins" package/bins/linux-x64 || die "linux-x64 tarball lacks package/bins/linux-x64"
tag=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$tmp/main/package/llama/llama.cpp.info.json")
[ -n "$tag" ] || die "no release tag in llama.cpp.info.json"

partial=$dest.partial
rm -rf "$partial"
mkdir -p "$partial/lib"

log "git clone gitRelease.bundle (llama.cpp $tag) → $dest/src"
git clone --quiet "$tmp/main/package/llama/gitRelease.bundle" "$partial/src" 2>"$tmp/clone.err" ||
  { cat "$tmp/clone.err" >&2; die "git clone of the bundle failed"; }
git -C "$partial/src" remote remove origin  # it points at the deleted temp bundle
[ -f "$partial/src/include/llama.h" ] && [ -f "$partial/src/ggml/include/gguf.h" ] || die "bundle lacks include/llama.h"
cp "$tmp/main/package/llama/llama.cpp.info.json" "$partial/"

bins=$tmp/bins/package/bins/linux-x64
cp -p "$bins"/*.so "$partial/lib/"
cp -p "$bins"/_nlcBuildMetadata.json "$partial/lib/" 2>/dev/null || true
chmod 0755 "$partial"/lib/*.so
lib_llama=libllama.$tag.so
lib_ggml=libggml.$tag.so
for f in "$lib_llama" "$lib_ggml" libggml-base.so; do
  [ -f "$partial/lib/$f" ] || die "prebuilt package lacks $f (have: $(cd "$partial/lib" && echo *.so))"
done
ls "$partial"/lib/libggml-cpu-*.so >/dev/null 2>&1 || die "prebuilt package has no libggml-cpu-*.so backend"

# The runtime loader looks for each NEEDED entry by its SONAME: every SONAME must be a file here.
for f in "$partial"/lib/*.so; do
  soname=$(readelf -d "$f" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
  if [ -n "$soname" ] && [ ! -e "$partial/lib/$soname" ]; then
    ln -s "$(basename "$f")" "$partial/lib/$soname"
    log "symlink $soname → $(basename "$f")"
  fi
done
for f in "$partial/lib/$lib_llama" "$partial/lib/$lib_ggml"; do
  for needed in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(lib\(llama\|ggml\)[^]]*\)\]/\1/p'); do
    [ -e "$partial/lib/$needed" ] || die "$(basename "$f") needs $needed, which the package lacks"
  done
done
# Unversioned names so that a plain `-L DEST/lib -lllama -lggml -lggml-base` links too (CMake links full paths).
ln -sf "$lib_llama" "$partial/lib/libllama.so"
ln -sf "$lib_ggml" "$partial/lib/libggml.so"

echo "$STAMP" >"$partial/.stamp"
rm -rf "$dest"
mv "$partial" "$dest"
log "done in $((SECONDS - start)) s: llama.cpp $tag, headers in $dest/src, libraries in $dest/lib:"
(cd "$dest/lib" && ls -- *.so) | tr '\n' ' ' | fold -s -w 110 | sed 's/^/  /' >&2
echo >&2
