#!/usr/bin/env bash
# The durable store (the default) next to the pure in-memory broker (--durable false), in one
# run, one JSON line per measurement (machine info first):
#
#   fanout  one job, M observers: events/s and server CPU per event delivered.
#   jobs    J concurrent jobs at full speed (no token delay), one observer each: events/s.
#   ratio   durable/memory for each (the target: durable costs at most 20 %, i.e. ≥ 0.8×
#           throughput and ≤ 1.25× CPU per event).
#
#   bench/durable.sh [--quick] [--out FILE]
#
# Needs build/spool and build/bench/spool_bench (scripts/build.sh). The data directory is a
# fresh one under the bench's temporary directory. Exit status 1 when a run failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
spool=${SPOOL_BIN:-$root/build/spool}  # SPOOL_BIN: another build of the server, to compare two
bench=$root/build/bench/spool_bench
out=""
name=durable.sh
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
quick_out_setup "$@"

observers=1000 tokens=500 jobs=200 job_tokens=250
if ((quick)); then observers=50 tokens=50 jobs=20 job_tokens=50; fi
failures=0

run() { run_tagged store "$@"; }  # run LABEL ARGS...: a JSON line with "store": LABEL

emit "$("$bench" --scenario machine --mode durable)"
paced=(--mock-token-delay-ms 20)
fast=(--mock-token-delay-ms 0 --max-active-streams 100000)
declare -A fanout jobs_line
for store in memory durable; do
  extra=()
  [[ $store == memory ]] && extra=(--durable false)
  start_spool "${paced[@]}" "${extra[@]}" || exit 1
  run "$store" --scenario fanout --port "$port" --server-pid "$pid" --observers "$observers" --tokens "$tokens"
  fanout[$store]=$last
  stop "$pid"
  start_spool "${fast[@]}" "${extra[@]}" || exit 1
  run "$store" --scenario jobs --port "$port" --server-pid "$pid" --jobs "$jobs" --tokens "$job_tokens" \
    --token-delay-ms 0
  jobs_line[$store]=$last
  stop "$pid"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b == 0) print "null"; else printf "%.3f", a/b }'; }
emit "{\"scenario\":\"ratio\",\"fanout_events_per_s_durable_over_memory\":$(ratio "$(num "${fanout[durable]}" events_per_s)" "$(num "${fanout[memory]}" events_per_s)"),\"fanout_cpu_us_per_event_durable_over_memory\":$(ratio "$(num "${fanout[durable]}" server_cpu_us_per_event)" "$(num "${fanout[memory]}" server_cpu_us_per_event)"),\"jobs_events_per_s_durable_over_memory\":$(ratio "$(num "${jobs_line[durable]}" events_per_s)" "$(num "${jobs_line[memory]}" events_per_s)"),\"jobs_cpu_us_per_event_durable_over_memory\":$(ratio "$(num "${jobs_line[durable]}" server_cpu_us_per_event)" "$(num "${jobs_line[memory]}" server_cpu_us_per_event)")}"
((failures == 0))
