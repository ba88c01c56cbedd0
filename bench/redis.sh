#!/usr/bin/env bash
# The Redis broker next to the memory broker, in one run, one JSON line per measurement
# (machine info first):
#
#   fanout  one job on instance A, M observers: memory broker (all on A) vs Redis broker with
#           half the observers on a second instance B. Reports events/s, server CPU per event
#           (both instances), and the latency from delivery on A to delivery on B.
#   jobs    J concurrent jobs at full speed (no token delay), one observer each, on one instance:
#           memory vs Redis (every event also goes to Redis), events/s.
#   ratio   redis/memory for events/s and CPU per event.
#
#   bench/redis.sh [--quick] [--out FILE]
#
# Needs build/spool and build/bench/spool_bench (scripts/build.sh) and redis-server
# (scripts/deps.sh test). Redis runs without persistence here. Exit status 1 when a run failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
spool=${SPOOL_BIN:-$root/build/spool}  # SPOOL_BIN: another build of the server, to compare two
bench=$root/build/bench/spool_bench
out=""
name=redis.sh
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
quick_out_setup "$@"
command -v redis-server >/dev/null || { log "redis-server is not installed (scripts/deps.sh test)"; exit 2; }

observers=1000 tokens=500 jobs=200 job_tokens=250
if ((quick)); then observers=50 tokens=50 jobs=20 job_tokens=50; fi

failures=0

redis_port=$((20000 + RANDOM % 10000))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break
  sleep 0.05
done

run() { run_tagged broker "$@"; }  # run LABEL ARGS...: a JSON line with "broker": LABEL
redis_args=(--broker redis --redis-url "redis://127.0.0.1:$redis_port" --redis-prefix "bench$RANDOM:")

emit "$("$bench" --scenario machine --mode redis)"
paced=(--mock-token-delay-ms 20)
fast=(--mock-token-delay-ms 0 --max-active-streams 100000)

# fanout: memory, one instance
start_spool "${paced[@]}" || exit 1
run memory --scenario fanout --port "$port" --server-pid "$pid" --observers "$observers" --tokens "$tokens"
mem_fanout=$last
stop "$pid"
# fanout: redis, two instances, half the observers on each
start_spool "${paced[@]}" "${redis_args[@]}" || exit 1
a_pid=$pid a_port=$port
start_spool "${paced[@]}" "${redis_args[@]}" || exit 1
run redis --scenario fanout --port "$a_port" --server-pid "$a_pid" --port2 "$port" --server-pid2 "$pid" \
  --observers "$observers" --tokens "$tokens"
redis_fanout=$last
stop "$a_pid" "$pid"

# jobs at full speed: memory vs redis on one instance
start_spool "${fast[@]}" || exit 1
run memory --scenario jobs --port "$port" --server-pid "$pid" --jobs "$jobs" --tokens "$job_tokens" --token-delay-ms 0
mem_jobs=$last
stop "$pid"
start_spool "${fast[@]}" "${redis_args[@]}" || exit 1
run redis --scenario jobs --port "$port" --server-pid "$pid" --jobs "$jobs" --tokens "$job_tokens" --token-delay-ms 0
redis_jobs=$last
stop "$pid"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || b == "" || b == 0) print "null"; else printf "%.3f", a/b }'; }
emit "{\"scenario\":\"ratio\",\"fanout_cpu_us_per_event_redis_over_memory\":$(ratio "$(num "$redis_fanout" server_cpu_us_per_event)" "$(num "$mem_fanout" server_cpu_us_per_event)"),\"jobs_events_per_s_redis_over_memory\":$(ratio "$(num "$redis_jobs" events_per_s)" "$(num "$mem_jobs" events_per_s)"),\"jobs_cpu_us_per_event_redis_over_memory\":$(ratio "$(num "$redis_jobs" server_cpu_us_per_event)" "$(num "$mem_jobs" server_cpu_us_per_event)")}"
((failures == 0))
