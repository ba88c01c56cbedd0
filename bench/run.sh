#!/usr/bin/env bash
# Runs the Spool benchmark scenarios against Spool and against nginx + nchan, printing one
# JSON line per scenario and target to stdout (machine info first). See bench/README.md.
#
#   bench/run.sh [--quick] [--spool PATH] [--bench PATH] [--only s1,s2] [--targets spool,nchan]
#                [--out FILE] [SPOOL_BINARY [SPOOL_BENCH_BINARY]]
#
# It builds nothing: pass the binaries (default build/spool and build/bench/spool_bench).
# Each scenario gets a fresh server process (clean CPU and RSS baselines), on 127.0.0.1 only.
# Exit status: 0 when every scenario that ran reported "ok": true, 1 otherwise.
#
# Environment:
#   SPOOL_SERVE_ARGS  extra arguments for every `spool serve` (e.g. limits), appended
#   NCHAN_WORKERS     nginx worker processes (default: nproc)
#   BENCH_ARGS        extra arguments for every spool_bench run
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
spool="$root/build/spool"
bench="$root/build/bench/spool_bench"
quick=0
only=""
targets="spool,nchan"
out=""
positional=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --spool) spool="$2"; shift ;;
    --bench) bench="$2"; shift ;;
    --only) only="$2"; shift ;;
    --targets) targets="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    *) positional+=("$1") ;;
  esac
  shift
done
((${#positional[@]} > 0)) && spool="${positional[0]}"
((${#positional[@]} > 1)) && bench="${positional[1]}"

log() { echo "run.sh: $*" >&2; }
[[ -x "$bench" ]] || { log "spool_bench not found at $bench (build it, or pass --bench)"; exit 2; }
if [[ ",$targets," == *",spool,"* && ! -x "$spool" ]]; then
  log "spool not found at $spool (build it, or pass --spool)"; exit 2
fi

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
work=$(mktemp -d /tmp/spool-bench.XXXXXX)
server_pid=""
server_port=""
bench_pid=""
failures=0

stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  server_pid=""
  server_port=""
}
cleanup() {
  if [[ -n "$bench_pid" ]] && kill -0 "$bench_pid" 2>/dev/null; then
    kill -TERM "$bench_pid" 2>/dev/null
    wait "$bench_pid" 2>/dev/null
  fi
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

emit() {  # one JSON line to stdout (and --out)
  echo "$1"
  [[ -n "$out" ]] && echo "$1" >>"$out"
  return 0
}

# --- servers ----------------------------------------------------------------------------------

# start_spool DELAY_MS: a fresh spool whose default model is a mock with that token delay.
# SCENARIO_SPOOL_ARGS (set per run_one call) adds scenario-specific flags.
start_spool() {
  local delay=$1 n=$((++started)) outf errf
  outf="$work/spool.$n.out"
  errf="$work/spool.$n.err"
  # shellcheck disable=SC2086
  "$spool" serve --host 127.0.0.1 --port 0 --log-level warn --data-dir "$work/data.$n" --model bench=mock: \
    --mock-token-delay-ms "$delay" ${SCENARIO_SPOOL_ARGS:-} ${SPOOL_SERVE_ARGS:-} >"$outf" 2>"$errf" &
  server_pid=$!
  for _ in $(seq 1 150); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
      log "spool exited at start-up:"; tail -n 20 "$errf" >&2; server_pid=""; return 1
    fi
    local line
    line=$(grep -m1 -o 'spool listening on http://[^ ]*' "$outf" 2>/dev/null || true)
    if [[ -n "$line" ]]; then
      server_port=${line##*:}
      server_port=${server_port%%/*}
      return 0
    fi
    sleep 0.1
  done
  log "spool did not print 'spool listening on http://HOST:PORT' within 15 s"; tail -n 20 "$errf" >&2
  stop_server
  return 1
}

http_ok() {  # http_ok PORT PATH: a 200 from 127.0.0.1
  local reply
  reply=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET %s HTTP/1.0\r\nHost: x\r\n\r\n' "$2" >&3 &&
            timeout 2 head -n1 <&3) 2>/dev/null) || return 1
  [[ "$reply" == *" 200 "* ]]
}

nchan_available() {
  command -v nginx >/dev/null 2>&1 && [[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]]
}

# start_nchan: a fresh nginx + nchan from bench/nchan.conf on a free loopback port.
start_nchan() {
  local n=$((++started)) dir port try
  dir="$work/nchan.$n"
  mkdir -p "$dir/tmp"
  for try in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 12000))  # below the ephemeral range (32768+)
    http_ok "$port" / && continue  # something answers there already
    sed -e "s/^\([[:space:]]*listen\) 127\.0\.0\.1:[0-9]*/\1 127.0.0.1:$port/" \
        -e "s/^worker_processes [0-9a-z]*;/worker_processes ${NCHAN_WORKERS:-$(nproc)};/" \
        "$here/nchan.conf" >"$dir/nchan.conf"
    nginx -e stderr -c "$dir/nchan.conf" -p "$dir/" >"$dir/out" 2>"$dir/err" &
    server_pid=$!
    for _ in $(seq 1 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      if http_ok "$port" /health; then server_port=$port; return 0; fi
      sleep 0.1
    done
    log "nginx did not come up on port $port (try $try):"; tail -n 5 "$dir/err" >&2
    stop_server
  done
  return 1
}

# --- scenarios --------------------------------------------------------------------------------

# run_one TARGET DELAY_MS SCENARIO ARGS...: fresh server, one spool_bench run, stop server.
run_one() {
  local target=$1 delay=$2 scenario=$3
  shift 3
  if [[ -n "$only" && ",$only," != *",$scenario,"* ]]; then return 0; fi
  if [[ ",$targets," != *",$target,"* ]]; then return 0; fi
  if [[ "$target" == nchan ]]; then
    case "$scenario" in jobs|initiate|cancel) return 0 ;; esac
    if ! nchan_available; then
      emit "{\"scenario\":\"$scenario\",\"target\":\"nchan\",\"skipped\":\"nginx with the nchan module is not installed\"}"
      return 0
    fi
    start_nchan || { emit "{\"scenario\":\"$scenario\",\"target\":\"nchan\",\"ok\":false,\"error\":\"nginx did not start\"}"; failures=$((failures + 1)); return 0; }
  else
    start_spool "$delay" || { emit "{\"scenario\":\"$scenario\",\"target\":\"spool\",\"ok\":false,\"error\":\"spool did not start\"}"; failures=$((failures + 1)); return 0; }
  fi
  log "$scenario on $target (port $server_port, pid $server_pid) $*"
  local line rc
  # In the background so that a signal to this script is handled at once (bash runs traps
  # only between foreground commands); cleanup() ends the client too.
  # shellcheck disable=SC2086
  "$bench" --scenario "$scenario" --target "$target" --host 127.0.0.1 --port "$server_port" \
    --server-pid "$server_pid" --token-delay-ms "$delay" "$@" ${BENCH_ARGS:-} >"$work/bench.out" 2>"$work/bench.err" &
  bench_pid=$!
  wait "$bench_pid"
  rc=$?
  bench_pid=""
  line=$(tail -n 1 "$work/bench.out")
  if [[ -z "$line" ]]; then
    line="{\"scenario\":\"$scenario\",\"target\":\"$target\",\"ok\":false,\"error\":\"spool_bench exited with status $rc and printed nothing\"}"
  fi
  emit "$line"
  if [[ $rc -ne 0 || "$line" == *'"ok":false'* ]]; then
    failures=$((failures + 1))
    tail -n 5 "$work/bench.err" >&2
  fi
  stop_server
}

started=0
if ((quick)); then mode=quick; else mode=full; fi
emit "$("$bench" --scenario machine --mode "$mode")"
if ((quick)); then
  line=$("$bench" --scenario selftest)
  emit "$line"
  [[ "$line" == *'"ok":true'* ]] || failures=$((failures + 1))
fi

# Scenario-specific server limits. replay: a log of exactly 100,000 events is the default
# maximum_stream_length, so leave headroom rather than depend on how the bound is counted.
# initiate: every POST starts a (tiny) job; the default max-active-streams (10,000) would
# answer 529 whenever creation outruns completion (and 100,000 kept streams is the default
# max-retained-streams), and this scenario measures the route.
replay_args="--maximum-stream-length 1000000"
initiate_args="--max-active-streams 10000000 --max-retained-streams 10000000"

# Token delays: 20 ms for paced scenarios, 0 for building finished logs fast, 10 min for
# jobs that must stay open without producing (idle).
if ((quick)); then
  T=20
  for t in spool nchan; do
    run_one "$t" 20 fanout --observers 50 --tokens 50 --timeout-s $T
    run_one "$t" 0 catchup --observers 100 --tokens 200 --min-seconds 0.2 --max-rounds 5 --timeout-s $T
    SCENARIO_SPOOL_ARGS="$replay_args" run_one "$t" 0 replay --tokens 5000 --min-seconds 0.2 --max-rounds 5 --timeout-s $T
    run_one "$t" 600000 idle --observers 300 --settle-ms 300 --hold-s 0.5 --timeout-s $T
  done
  run_one spool 20 cancel --observers 50 --tokens 1000 --pre-cancel-ms 300 --timeout-s $T
  run_one spool 20 jobs --jobs 20 --tokens 20 --timeout-s $T
  SCENARIO_SPOOL_ARGS="$initiate_args" run_one spool 0 initiate --requests 2000 --connections 8 --timeout-s $T
else
  T=300
  for t in spool nchan; do
    run_one "$t" 20 fanout --observers 1000 --tokens 1000 --timeout-s $T
    run_one "$t" 0 catchup --observers 1000 --tokens 1000 --min-seconds 2 --max-rounds 20 --timeout-s $T
    run_one "$t" 0 catchup --observers 5000 --tokens 1000 --min-seconds 2 --max-rounds 20 --timeout-s $T
    SCENARIO_SPOOL_ARGS="$replay_args" run_one "$t" 0 replay --tokens 99995 --min-seconds 2 --max-rounds 50 --timeout-s $T
    run_one "$t" 600000 idle --observers 10000 --jobs 10 --timeout-s $T
  done
  run_one spool 20 cancel --observers 1000 --tokens 3000 --timeout-s $T
  run_one spool 20 jobs --jobs 1000 --tokens 250 --timeout-s $T
  SCENARIO_SPOOL_ARGS="$initiate_args" run_one spool 0 initiate --requests 100000 --connections 64 --timeout-s $T
fi

if ((failures)); then
  log "$failures scenario(s) failed"
  exit 1
fi
exit 0
