#!/usr/bin/env bash
# Installs the Debian 12 packages Spool needs. Usage: scripts/deps.sh [build|test|bench]
set -euo pipefail
what=${1:-build}
# git, nodejs, npm, binutils (readelf): scripts/fetch-llama.sh gets llama.cpp from npm at configure time.
pkgs=(g++ cmake ninja-build pkg-config libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
      libhiredis-dev libsqlite3-dev libssl-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev libgtest-dev
      git nodejs npm binutils ca-certificates)
case "$what" in
  # chromium: the browser tests of the playground (tests/browser) drive Debian's own Chromium.
  test) pkgs+=(redis-server clang-format clang-tidy clang libclang-rt-14-dev curl chromium fonts-dejavu-core) ;;
  bench) pkgs+=(nginx-extras libnginx-mod-nchan curl) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# nodejs may come from elsewhere (a newer node with its own npm): only install if absent.
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || filtered+=("$p"); done
  missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  # Chromium comes with its recommended packages (fonts, GL): the set the browser tests run with.
  with_recommends=(); others=()
  for p in "${missing[@]}"; do [[ $p == chromium ]] && with_recommends+=("$p") || others+=("$p"); done
  if ((${#others[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${others[@]}" >/dev/null
  fi
  if ((${#with_recommends[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${with_recommends[@]}" >/dev/null
  fi
fi
