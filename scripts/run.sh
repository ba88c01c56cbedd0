#!/usr/bin/env bash
# Installs what is missing, builds, and starts the server with embedded defaults
# (memory broker, mock engine, 127.0.0.1:8080). Extra arguments go to `spool serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh build
scripts/build.sh release
exec build/spool serve "$@"
