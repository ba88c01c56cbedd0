#!/usr/bin/env bash
# The durable store (the default) next to the pure in-memory broker (--durable false), on the
# same binary, in one run: the scenarios and targets of issue 14 (bench/README.md, "The durable
# store"). One JSON line per measurement, machine info first; each has "store" (memory or
# durable) and "case":
#
#   starts_while_streaming  initiate: C connections start 8-token jobs for S seconds while the
#                           earlier ones still stream at 20 ms/token: starts/s, CPU per start.
#   concurrent_jobs         jobs: 1,000 jobs x 100 tokens at 20 ms/token, one observer each.
#   full_speed_jobs         jobs: 200 x 250 tokens, no token delay.
#   fanout                  fanout: one job, 1,000 observers, 500 tokens at 20 ms/token.
#   retention               20,000 finished, unobserved jobs x 200 tokens: RSS per stream over
#                           the same server just started; durable: disk bytes / frame bytes.
#   restart                 durable: SIGTERM, restart on that data dir (20,000 streams, 4.1 M
#                           events): exec to listening, RSS then, the same bytes as before.
#   replay                  one late joiner reads a finished 100,000-event stream: memory;
#                           durable after a restart, cold (its segment files dropped from the
#                           page cache) and warm (page cache).
#   idle                    10,000 live jobs producing nothing, one idle observer each: RSS per
#                           job and per observer.
#   ratio                   durable/memory for each, and which targets of issue 14 are met.
#
#   bench/durable.sh [--quick] [--out FILE]
#
# SPOOL_BIN and SPOOL_BENCH_BIN: other builds of the server and the client (defaults
# build/spool and build/bench/spool_bench, from scripts/build.sh). Needs curl. Data directories
# are fresh ones under the bench's temporary directory. Exit status 1 when a run failed (a
# missed target is not a failure: the ratio line says which).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
spool=${SPOOL_BIN:-$root/build/spool}  # SPOOL_BIN: another build of the server, to compare two
bench=${SPOOL_BENCH_BIN:-$root/build/bench/spool_bench}
out=""
name=durable.sh
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
quick_out_setup "$@"
command -v curl >/dev/null || { log "needs curl"; exit 2; }

# Sizes: the issue's, or a smoke run well under a minute.
init_s=10 init_conns=32 init_tokens=8
cj_jobs=1000 cj_tokens=100
jobs=200 job_tokens=250
observers=1000 tokens=500
ret_streams=20000 ret_tokens=200 sample=200
replay_tokens=99995 replay_min_s=2
idle=10000
T=300
if ((quick)); then
  init_s=2 init_conns=8 cj_jobs=100 cj_tokens=20 jobs=20 job_tokens=50 observers=50 tokens=50
  ret_streams=1000 sample=50 replay_tokens=5000 replay_min_s=0.2 idle=300 T=30
fi
linger_s=3  # finished logs stay in memory up to ~2 s before they leave it
failures=0
nstart=0

paced=(--mock-token-delay-ms 20)
fast=(--mock-token-delay-ms 0 --max-active-streams 100000)
raised=(--max-active-streams 100000 --max-retained-streams 1000000)
# Starts while jobs stream: on 2 cores the starts outrun the jobs they start, whose timers wait
# behind them, so memory passes 100,000 active streams in 10 s (and answered 529): no limit.
unlimited=(--max-active-streams 10000000 --max-retained-streams 10000000)
idle_args=(--mock-token-delay-ms 600000 --max-active-streams 100000)
replay_args=(--mock-token-delay-ms 0 --maximum-stream-length 1000000)

# alive PID: the process exists and is not a zombie (kill -0 succeeds on an unreaped child).
alive() {
  local st
  st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z ]]
}
# status_kib PID FIELD: VmRSS or VmHWM (peak) of PID in KiB.
status_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null; }
usec() { local t=$EPOCHREALTIME; echo "${t//[.,]/}"; }  # microseconds, no fork of date

# start_on DIR ARGS...: `spool serve` on a free loopback port with data dir DIR (kept as it is,
# so a restart finds its streams); sets pid, port and listen_ms, the time from exec to the
# "spool listening" line (polled every 5 ms, at most 30 s).
start_on() {
  local dir=$1 n=$((++nstart)) logf t0 line
  shift
  logf="$work/spool.$n.log"
  t0=$(usec)
  "$spool" serve --host 127.0.0.1 --port 0 --log-level warn --data-dir "$dir" "$@" >"$logf" 2>&1 &
  pid=$!
  pids+=("$pid")
  port="" listen_ms=""
  for _ in $(seq 1 6000); do
    line=$(grep -m1 -oE 'spool listening on http://[0-9.]+:[0-9]+' "$logf" 2>/dev/null)
    if [[ -n "$line" ]]; then
      listen_ms=$((($(usec) - t0) / 1000))
      port=${line##*:}
      return 0
    fi
    alive "$pid" || break
    sleep 0.005
  done
  log "server did not start ($logf):"; tail -n 20 "$logf" >&2
  return 1
}
# fresh STORE ARGS...: a new server with an empty data dir (--durable false for memory); sets
# dir too. A server that does not start ends the run.
fresh() {
  local store=$1
  shift
  dir="$work/data.$((nstart + 1))"
  [[ $store == memory ]] && set -- --durable false "$@"
  start_on "$dir" "$@" || { fail "{\"scenario\":\"start\",\"store\":\"$store\"}" "server did not start"; exit 1; }
}
# stop_within PID: SIGTERM, up to 60 s for a clean stop, then SIGKILL (counted as a failure).
stop_within() {
  kill -TERM "$1" 2>/dev/null
  for _ in $(seq 1 600); do alive "$1" || break; sleep 0.1; done
  if alive "$1"; then
    log "pid $1 still running 60 s after SIGTERM: SIGKILL"
    kill -KILL "$1" 2>/dev/null
    failures=$((failures + 1))
  fi
  wait "$1" 2>/dev/null
}
# fail JSON MESSAGE: emits JSON (an object) with "ok": false and the error; counts a failure.
fail() {
  emit "${1%\}},\"ok\":false,\"error\":\"$2\"}"
  failures=$((failures + 1))
}

# run_case STORE CASE ARGS...: spool_bench ARGS against the current server; emits its line with
# "store", "case", $extra and what the function named by $post prints (fields read from the
# server just after the run) added; keeps it in $last; counts a failed run.
run_case() {
  local store=$1 case=$2 line more=""
  shift 2
  log "$case on $store: $*"
  line=$("$bench" --port "$port" --server-pid "$pid" --timeout-s "$T" "$@") || failures=$((failures + 1))
  [[ "$line" == "{"*"}" ]] || { line="{\"scenario\":\"$case\",\"ok\":false,\"error\":\"spool_bench printed no line\"}"; failures=$((failures + 1)); }
  [[ -n "${post:-}" ]] && more=$("$post")
  line="${line%\}},\"store\":\"$store\",\"case\":\"$case\"${extra:-}$more}"
  emit "$line"
  last=$line
}

# completed: the server's count of completed streams (spool_streams in /metrics).
completed() {
  curl -s --max-time 5 "http://127.0.0.1:$port/metrics" |
    awk '$1 == "spool_streams{status=\"completed\"}" { print $2 }'
}
# wait_completed N SECONDS: until N streams are completed, polling /metrics; 1 after SECONDS.
wait_completed() {
  local until=$((SECONDS + $2))
  while [[ "$(completed)" != "$1" ]]; do
    ((SECONDS < until)) || return 1
    sleep 0.2
  done
}
# stream_counts: the active and the completed streams now, as JSON fields.
stream_counts() {
  curl -s --max-time 5 "http://127.0.0.1:$port/metrics" | awk '
    $1 == "spool_active_jobs" { a = $2 }
    $1 == "spool_streams{status=\"completed\"}" { c = $2 }
    END { printf ",\"active_streams_after\":%s,\"completed_streams_after\":%s", a == "" ? "null" : a, c == "" ? "null" : c }'
}
stream_url() { echo "http://127.0.0.1:$port/v1/messages/async/$1/stream"; }
# paced_disk: (durable) the data dir's bytes over the frame bytes of every stream there (up to
# 1,000, read whole): the disk cost of jobs written token by token, as a paced server writes.
paced_disk() {
  [[ $store == durable ]] || return 0
  local ids args sizes frames disk
  mapfile -t ids < <(curl -s --max-time 10 "http://127.0.0.1:$port/v1/messages/async?limit=1000" |
    grep -o '"message_id":"[^"]*"' | cut -d'"' -f4)
  args=()
  for id in "${ids[@]}"; do args+=(-o /dev/null "$(stream_url "$id")"); done
  sizes=$( ((${#args[@]})) && curl -s --max-time 120 -w '%{size_download}\n' "${args[@]}")
  frames=$(awk 'NF { s += $1 } END { print s + 0 }' <<<"$sizes")
  disk=$(du -sb "$dir" | cut -f1)
  printf ',"streams_read":%s,"frame_bytes":%s,"disk_bytes":%s,"disk_over_frame_bytes":%s' \
    "${#ids[@]}" "$frames" "$disk" "$(div "$disk" "$frames")"
}
# json_or_null VALUE: VALUE, or null when empty.
json_or_null() { if [[ -n "$1" ]]; then echo "$1"; else echo null; fi; }
# div A B [DIGITS]: A/B, null when either is missing or B is 0.
div() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN{ if (a == "" || b == "" || b == 0) print "null"; else printf "%.*f", d, a/b }'; }
ratio() { div "$1" "$2"; }
# at_most / at_least VALUE BOUND: true, false, or null without a value.
at_most() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || a == "null") print "null"; else print (a + 0 <= b + 0) ? "true" : "false" }'; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == "" || a == "null") print "null"; else print (a + 0 >= b + 0) ? "true" : "false" }'; }

# retention STORE: 4. RAM (and disk) per finished, unobserved stream; for the durable store
# also 5., the restart with them.
retention() {
  local store=$1 data fresh_ms rss0 rss1 t0 hdr done_s ids args sizes n_sample sum_sample min_sample max_sample
  local frame_bytes sha_before sha_after line ok disk hwm_listen rss_listen rss2 hwm n_after same
  fresh "$store" --mock-token-delay-ms 0 "${raised[@]}"
  data=$dir
  fresh_ms=$listen_ms
  sleep 0.5
  rss0=$(status_kib "$pid" VmRSS)
  run_case "$store" retention_starts --scenario initiate --requests "$ret_streams" --tokens "$ret_tokens" \
    --connections 32
  t0=$(usec)
  hdr="{\"scenario\":\"retention\",\"store\":\"$store\",\"case\":\"retention\",\"params\":{\"streams\":$ret_streams,\"tokens\":$ret_tokens,\"linger_wait_s\":$linger_s}"
  if ! wait_completed "$ret_streams" "$T"; then
    fail "$hdr,\"completed\":$(json_or_null "$(completed)")}" "not all streams completed within $T s"
    stop_within "$pid"
    return
  fi
  done_s=$(div $(($(usec) - t0)) 1000000)
  sleep "$linger_s"
  rss1=$(status_kib "$pid" VmRSS)
  hwm=$(status_kib "$pid" VmHWM)
  # Frame bytes: the stream route's exact bytes for the newest $sample streams (every stream
  # has the same shape), times the count.
  mapfile -t ids < <(curl -s --max-time 10 "http://127.0.0.1:$port/v1/messages/async?limit=$sample" |
    grep -o '"message_id":"[^"]*"' | cut -d'"' -f4)
  args=()
  for id in "${ids[@]}"; do args+=(-o /dev/null "$(stream_url "$id")"); done
  sizes=$( ((${#args[@]})) && curl -s --max-time 60 -w '%{size_download}\n' "${args[@]}")
  read -r n_sample sum_sample min_sample max_sample < <(awk 'NF { n++; s += $1; if (n == 1 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
    END { print n + 0, s + 0, lo + 0, hi + 0 }' <<<"$sizes")
  frame_bytes=$(awk -v s="$sum_sample" -v n="$n_sample" -v c="$ret_streams" 'BEGIN{ if (n) printf "%.0f", s / n * c }')
  sha_before=""
  ((${#ids[@]})) && sha_before=$(curl -s --max-time 10 "$(stream_url "${ids[0]}")" | sha256sum | cut -c1-64)
  line="$hdr,\"rss_empty_kib\":$(json_or_null "$rss0"),\"rss_after_kib\":$(json_or_null "$rss1"),\"rss_peak_kib\":$(json_or_null "$hwm")"
  line+=",\"kib_per_stream\":$(div "$((rss1 - rss0))" "$ret_streams"),\"mib_added\":$(div "$((rss1 - rss0))" 1024 1)"
  line+=",\"completed_after_starts_s\":$done_s"
  line+=",\"frame_bytes\":$(json_or_null "$frame_bytes"),\"frame_bytes_method\":\"GET .../stream of the newest $n_sample streams (each $min_sample..$max_sample bytes), mean x $ret_streams\""
  stop_within "$pid"
  ok=true
  ((n_sample > 0)) || { ok=false; failures=$((failures + 1)); }
  if [[ $store == durable ]]; then
    disk=$(du -sb "$data" | cut -f1)
    line+=",\"disk_bytes\":$disk,\"disk_over_frame_bytes\":$(div "$disk" "$frame_bytes")"
  fi
  retention_line[$store]="$line,\"ok\":$ok}"
  emit "${retention_line[$store]}"
  if [[ $store == memory ]]; then rm -rf "$data"; return; fi

  # 5. Restart on the same data dir: the 20,000 streams / 4 M events of the restart target.
  hdr="{\"scenario\":\"restart\",\"store\":\"durable\",\"case\":\"restart\",\"params\":{\"streams\":$ret_streams,\"events\":$((ret_streams * (ret_tokens + 5)))},\"note\":\"on the retention run's data dir: one restart serves the retention and the restart targets\""
  if ! start_on "$data" --mock-token-delay-ms 0 "${raised[@]}"; then
    fail "$hdr}" "the restart did not listen"
    rm -rf "$data"
    return
  fi
  hwm_listen=$(status_kib "$pid" VmHWM)
  rss_listen=$(status_kib "$pid" VmRSS)
  sleep 1
  rss2=$(status_kib "$pid" VmRSS)
  hwm=$(status_kib "$pid" VmHWM)
  n_after=$(completed)
  sha_after=""
  ((${#ids[@]})) && sha_after=$(curl -s --max-time 10 "$(stream_url "${ids[0]}")" | sha256sum | cut -c1-64)
  same=false
  [[ -n "$sha_before" && "$sha_before" == "$sha_after" ]] && same=true
  line="$hdr,\"listen_ms\":$listen_ms,\"listen_ms_empty\":$fresh_ms,\"rss_at_listen_kib\":$rss_listen"
  line+=",\"rss_peak_at_listen_kib\":$hwm_listen,\"rss_after_kib\":$rss2,\"rss_peak_kib\":$hwm,\"rss_empty_kib\":$rss0"
  line+=",\"kib_per_stream\":$(div "$((rss2 - rss0))" "$ret_streams"),\"mib_added\":$(div "$((rss2 - rss0))" 1024 1)"
  line+=",\"peak_over_empty_mib\":$(div "$((hwm - rss0))" 1024 1)"
  line+=",\"streams_after\":$(json_or_null "$n_after"),\"same_bytes_after\":$same"
  if [[ "$n_after" == "$ret_streams" && $same == true ]]; then
    restart_line="$line,\"ok\":true}"
    emit "$restart_line"
  else
    fail "$line}" "streams or bytes differ after the restart"
  fi
  stop_within "$pid"
  rm -rf "$data"
}

# replay STORE: 6. one late joiner on a finished 100,000-event stream. Memory reads it from
# memory; the durable store after a restart, from disk: cold (written back and dropped from the
# page cache, so the first read comes from the device), then warm (page cache).
replay() {
  local store=$1 data id cached f
  fresh "$store" "${replay_args[@]}"
  data=$dir
  if [[ $store == memory ]]; then
    run_case memory replay --scenario replay --tokens "$replay_tokens" --min-seconds "$replay_min_s" --max-rounds 50
    replay_line[memory]=$last
    stop_within "$pid"
    rm -rf "$data"
    return
  fi
  run_case durable replay_before_restart --scenario replay --tokens "$replay_tokens" --max-rounds 1
  id=$(grep -o '"id":"[^"]*"' <<<"$last" | head -n 1 | cut -d'"' -f4)
  stop_within "$pid"
  if [[ -z "$id" ]]; then
    fail '{"scenario":"replay","store":"durable","case":"replay_cold"}' "no stream to read"
  elif start_on "$data" "${replay_args[@]}"; then
    sync "$data"/segments/* 2>/dev/null
    for f in "$data"/segments/*; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null; done
    cached=""
    command -v fincore >/dev/null &&
      cached=$(fincore -bno RES "$data"/segments/* 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
    extra=",\"page_cache_bytes_before\":$(json_or_null "$cached")"
    run_case durable replay_cold --scenario replay --id "$id" --tokens "$replay_tokens" --max-rounds 1
    extra=""
    replay_cold=$last
    run_case durable replay_disk --scenario replay --id "$id" --tokens "$replay_tokens" \
      --min-seconds "$replay_min_s" --max-rounds 50
    replay_line[durable]=$last
    stop_within "$pid"
  else
    fail '{"scenario":"replay","store":"durable","case":"replay_cold"}' "the restart did not listen"
  fi
  rm -rf "$data"
}

if ((quick)); then mode=quick; else mode=full; fi
emit "$("$bench" --scenario machine --mode "$mode")"
declare -A starts cjobs fjobs fanout retention_line replay_line idle_line
restart_line="" replay_cold="" extra="" post=""

for store in memory durable; do
  # 1. Starts while earlier jobs stream.
  fresh "$store" "${paced[@]}" "${unlimited[@]}"
  post=stream_counts
  run_case "$store" starts_while_streaming --scenario initiate --duration-s "$init_s" \
    --connections "$init_conns" --tokens "$init_tokens"
  post=""
  starts[$store]=$last
  stop_within "$pid"

  # 2. Many concurrent paced jobs, one observer each.
  fresh "$store" "${paced[@]}"
  post=paced_disk
  run_case "$store" concurrent_jobs --scenario jobs --jobs "$cj_jobs" --tokens "$cj_tokens" --token-delay-ms 20
  post=""
  cjobs[$store]=$last
  stop_within "$pid"

  # 3. Jobs at full speed, and fan-out.
  fresh "$store" "${fast[@]}"
  run_case "$store" full_speed_jobs --scenario jobs --jobs "$jobs" --tokens "$job_tokens" --token-delay-ms 0
  fjobs[$store]=$last
  stop_within "$pid"
  fresh "$store" "${paced[@]}"
  run_case "$store" fanout --scenario fanout --observers "$observers" --tokens "$tokens"
  fanout[$store]=$last
  stop_within "$pid"

  retention "$store"  # 4. and 5.
  replay "$store"     # 6.

  # 7. Idle live jobs and idle observers, one observer per job.
  fresh "$store" "${idle_args[@]}"
  run_case "$store" idle --scenario idle --observers "$idle" --jobs "$idle"
  idle_line[$store]=$last
  stop_within "$pid"
  rm -rf "$dir"
done

# 8. durable/memory, and the targets of issue 14 (bench/README.md).
# pair DURABLE_LINE MEMORY_LINE KEY: durable/memory of KEY's values.
pair() { ratio "$(num "$1" "$3")" "$(num "$2" "$3")"; }
starts_r=$(pair "${starts[durable]:-}" "${starts[memory]:-}" requests_per_s)
starts_cpu_r=$(pair "${starts[durable]:-}" "${starts[memory]:-}" server_cpu_us_per_request)
cj_r=$(pair "${cjobs[durable]:-}" "${cjobs[memory]:-}" events_per_s)
cj_cpu_r=$(pair "${cjobs[durable]:-}" "${cjobs[memory]:-}" server_cpu_us_per_event)
fj_r=$(pair "${fjobs[durable]:-}" "${fjobs[memory]:-}" events_per_s)
fj_cpu_r=$(pair "${fjobs[durable]:-}" "${fjobs[memory]:-}" server_cpu_us_per_event)
fo_r=$(pair "${fanout[durable]:-}" "${fanout[memory]:-}" events_per_s)
fo_cpu_r=$(pair "${fanout[durable]:-}" "${fanout[memory]:-}" server_cpu_us_per_event)
kib_stream=$(num "${retention_line[durable]:-}" kib_per_stream)
kib_restart=$(num "$restart_line" kib_per_stream)
peak_mib=$(num "$restart_line" peak_over_empty_mib)
cold_eps=$(num "$replay_cold" events_per_s)
job_kib=$(num "${idle_line[durable]:-}" rss_per_job_kib)
obs_kib=$(num "${idle_line[durable]:-}" rss_per_observer_kib)
line="{\"scenario\":\"ratio\",\"mode\":\"$mode\""
line+=",\"starts_per_s_durable_over_memory\":$starts_r,\"cpu_us_per_start_durable_over_memory\":$starts_cpu_r"
line+=",\"concurrent_jobs_events_per_s_durable_over_memory\":$cj_r,\"concurrent_jobs_cpu_us_per_event_durable_over_memory\":$cj_cpu_r"
line+=",\"full_speed_jobs_events_per_s_durable_over_memory\":$fj_r,\"full_speed_jobs_cpu_us_per_event_durable_over_memory\":$fj_cpu_r"
line+=",\"fanout_events_per_s_durable_over_memory\":$fo_r,\"fanout_cpu_us_per_event_durable_over_memory\":$fo_cpu_r"
line+=",\"kib_per_finished_stream_durable_over_memory\":$(ratio "$kib_stream" "$(num "${retention_line[memory]:-}" kib_per_stream)")"
line+=",\"kib_per_finished_stream_after_restart_durable_over_memory\":$(ratio "$kib_restart" "$(num "${retention_line[memory]:-}" kib_per_stream)")"
line+=",\"replay_cold_events_per_s_durable_over_memory\":$(ratio "$cold_eps" "$(num "${replay_line[memory]:-}" events_per_s)")"
line+=",\"replay_disk_events_per_s_durable_over_memory\":$(pair "${replay_line[durable]:-}" "${replay_line[memory]:-}" events_per_s)"
line+=",\"idle_kib_per_job_durable_over_memory\":$(pair "${idle_line[durable]:-}" "${idle_line[memory]:-}" rss_per_job_kib)"
line+=",\"idle_kib_per_observer_durable_over_memory\":$(pair "${idle_line[durable]:-}" "${idle_line[memory]:-}" rss_per_observer_kib)"
line+=",\"targets_met\":{\"starts_per_s_ge_0.8x\":$(at_least "$starts_r" 0.8),\"cpu_per_start_le_1.25x\":$(at_most "$starts_cpu_r" 1.25)"
line+=",\"concurrent_jobs_events_per_s_ge_0.8x\":$(at_least "$cj_r" 0.8),\"concurrent_jobs_cpu_per_event_le_1.25x\":$(at_most "$cj_cpu_r" 1.25)"
line+=",\"full_speed_jobs_events_per_s_ge_0.8x\":$(at_least "$fj_r" 0.8),\"full_speed_jobs_cpu_per_event_le_1.25x\":$(at_most "$fj_cpu_r" 1.25)"
line+=",\"finished_stream_le_1_kib\":$(at_most "$kib_stream" 1),\"finished_stream_after_restart_le_1_kib\":$(at_most "$kib_restart" 1)"
line+=",\"finished_streams_add_le_40_mib\":$(at_most "$(num "${retention_line[durable]:-}" mib_added)" 40)"
line+=",\"finished_streams_after_restart_add_le_40_mib\":$(at_most "$(num "$restart_line" mib_added)" 40)"
line+=",\"restart_listening_le_1000_ms\":$(at_most "$(num "$restart_line" listen_ms)" 1000),\"restart_peak_le_40_mib_over_empty\":$(at_most "$peak_mib" 40)"
line+=",\"cold_late_joiner_ge_2M_events_per_s\":$(at_least "$cold_eps" 2000000)"
line+=",\"idle_job_le_4_kib\":$(at_most "$job_kib" 4),\"idle_observer_le_4_kib\":$(at_most "$obs_kib" 4)"
line+=",\"disk_le_1.2x_frame_bytes\":$(at_most "$(num "${retention_line[durable]:-}" disk_over_frame_bytes)" 1.2)"
line+=",\"paced_disk_le_1.2x_frame_bytes\":$(at_most "$(num "${cjobs[durable]:-}" disk_over_frame_bytes)" 1.2)}}"
emit "$line"
((failures == 0))
