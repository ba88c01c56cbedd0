# Shared by bench/llama.sh, bench/redis.sh and bench/durable.sh (sourced, not run). Before sourcing, set:
#   name   the script's name for messages      spool  the spool binary
#   out    a file that also gets every line (or "")
# Gives: log, emit, num, a work directory $work and process list $pids cleaned up on exit,
# wait_listening, start_spool, stop.

log() { echo "$name: $*" >&2; }
# One JSON line to stdout (and to $out).
emit() { echo "$1"; [[ -n "$out" ]] && echo "$1" >>"$out"; return 0; }
# num JSON KEY: the number after "KEY": in a JSON line.
num() { grep -o "\"$2\": *[0-9.]*" <<<"$1" | head -1 | grep -o '[0-9.]*$'; }

work=$(mktemp -d "/tmp/spool-$name.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_listening LOGFILE REGEX PID: prints the port of the first REGEX match (…:PORT) in LOGFILE.
wait_listening() {
  local line
  for _ in $(seq 1 300); do
    kill -0 "$3" 2>/dev/null || { log "server exited at start-up:"; tail -n 20 "$1" >&2; return 1; }
    line=$(grep -m1 -oE "$2" "$1" 2>/dev/null || true)
    if [[ -n "$line" ]]; then echo "${line##*:}"; return 0; fi
    sleep 0.1
  done
  log "server did not start: $1"; return 1
}

# start_spool ARGS...: a fresh `spool serve` on a free loopback port (and, for the durable
# store, a fresh data directory); sets pid and port.
start_spool() {
  local n=${#pids[@]}
  "$spool" serve --host 127.0.0.1 --port 0 --log-level warn --data-dir "$work/data.$n" "$@" >"$work/spool.$n.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=$(wait_listening "$work/spool.$n.log" 'spool listening on http://[0-9.]+:[0-9]+' "$pid")
}

# run_tagged KEY VALUE ARGS...: runs "$bench" ARGS, emits its JSON line with "KEY": VALUE added,
# keeps the line in $last and counts a failed run in $failures.
run_tagged() {
  local key=$1 value=$2 line
  shift 2
  line=$("$bench" "$@") || failures=$((failures + 1))
  emit "${line%\}},\"$key\":\"$value\"}"
  last=$line
}

# quick_out_setup "$@": the options of redis.sh and durable.sh (--quick, --out FILE, -h for the
# script's header comment), then checks $spool and $bench exist and raises the open-files limit.
quick_out_setup() {
  quick=0
  while (($#)); do
    case "$1" in
      --quick) quick=1 ;;
      --out) out="$2"; shift ;;
      -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
      *) log "unknown option $1"; exit 2 ;;
    esac
    shift
  done
  for f in "$spool" "$bench"; do [[ -x "$f" ]] || { log "missing $f (scripts/build.sh)"; exit 2; }; done
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# stop PID...: SIGTERM and wait.
stop() { for p in "$@"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
