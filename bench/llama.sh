#!/usr/bin/env bash
# Real-model throughput, one JSON line per measurement (machine info first):
#
#   llama   Spool's in-process llama engine, N parallel jobs, next to llama.cpp alone on the same
#           model, batch, threads and libraries: llama-batched-bench (decoding only: no sampling,
#           no detokenizing, no HTTP) and llama-server doing the same streamed replies.
#   proxy   Spool's openai engine in front of llama-server vs llama-server alone: output tokens/s
#           and time to first token of streamed /v1/chat/completions-equivalent replies.
#
#   bench/llama.sh [--quick] [--jobs "1 4"] [--threads 1] [--models "tiny small"] [--out FILE]
#
# Models are random-weight llama GGUFs written by make_tiny_gguf with the phi-3 vocabulary:
# `tiny` is the test model (64 wide, 2 layers: the 32k-token output layer dominates, so any
# per-token overhead shows); `small` is 512 wide with 8 layers (closer to a real model's balance).
# Needs build/spool, build/bench/spool_bench and build/make_tiny_gguf (scripts/build.sh release);
# builds llama-server and llama-batched-bench itself in the same llama.cpp tree
# (scripts/build-llama-tools.sh, ~1 min the first time). Exit status 1 when a run failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=$root/build
spool=$build/spool
bench=$build/bench/spool_bench
maker=$build/make_tiny_gguf
vocab=$build/_deps/llama/src/models/ggml-vocab-phi-3.gguf
jobs_list="1 4"
threads=1
models="tiny small"
out=""
quick=0
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --jobs) jobs_list="$2"; shift ;;
    --threads) threads="$2"; shift ;;
    --models) models="$2"; shift ;;
    --out) out="$2"; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "llama.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

name=llama.sh
# shellcheck source=bench/lib.sh
source "$here/lib.sh"
for f in "$spool" "$bench" "$maker" "$vocab"; do
  [[ -e "$f" ]] || { log "missing $f (scripts/build.sh release builds it)"; exit 2; }
done
tools=$("$root/scripts/build-llama-tools.sh" "$build") || { log "could not build llama-server"; exit 2; }
llama_server=$tools/llama-server
batched_bench=$tools/llama-batched-bench

failures=0

prompt_words=100
tokens=128
if ((quick)); then tokens=32; fi

# rounds MODEL: enough rounds for a stable figure, fewer on the slower model
rounds() { if [[ $1 == tiny ]]; then ((quick)) && echo 2 || echo 10; else ((quick)) && echo 1 || echo 3; fi; }

make_model() {  # make_model NAME → path
  local f=$work/$1.gguf
  case "$1" in
    tiny) "$maker" --vocab "$vocab" --out "$f" --ctx 4096 2>/dev/null ;;
    small) "$maker" --vocab "$vocab" --out "$f" --embd 512 --layers 8 --ff 1536 --ctx 4096 2>/dev/null ;;
    *) log "unknown model $1"; return 1 ;;
  esac
  echo "$f"
}

start_llama_server() {  # start_llama_server MODEL PARALLEL CTX_PER_SEQ: sets lpid, lport
  local n=${#pids[@]}
  "$llama_server" -m "$1" --host 127.0.0.1 --port 0 -np "$2" -c $(($2 * $3)) -t "$threads" -tb "$threads" \
    >"$work/llama-server.$n.log" 2>&1 &
  lpid=$!
  pids+=("$lpid")
  lport=$(wait_listening "$work/llama-server.$n.log" 'listening on http://127.0.0.1:[0-9]+' "$lpid") || return 1
  for _ in $(seq 1 300); do  # listening comes before the model is loaded
    curl -fs "http://127.0.0.1:$lport/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "llama-server never became healthy"; return 1
}


generate() {  # generate PORT PID LABEL MODEL JOBS ROUNDS [extra spool_bench args] → JSON line
  local port=$1 pid=$2 label=$3 model=$4 jobs=$5 rounds=$6
  shift 6
  local line
  line=$("$bench" --scenario generate --port "$port" --server-pid "$pid" --label "$label" --model "$model" \
    --jobs "$jobs" --rounds "$rounds" --prompt-words "$prompt_words" --tokens "$tokens" "$@") || failures=$((failures + 1))
  echo "$line"
}


emit "$("$bench" --scenario machine --mode llama)"
for model in $models; do
  gguf=$(make_model "$model") || exit 2
  ctx=$((prompt_words + tokens + 64))
  for jobs in $jobs_list; do
    r=$(rounds "$model")
    # Spool, in-process llama engine
    cat >"$work/spool.toml" <<EOF
[[models]]
name = "$model"
engine = "llama"
target = "$gguf"
parallel = $jobs
context = $ctx
threads = $threads
EOF
    start_spool --config "$work/spool.toml" || exit 1
    # the prompt as the model sees it (chat template included; spool_bench's prompts start with a
    # tag like this one): batched-bench gets the same length
    prompt="0123abcd-0-0$(printf ' word%.0s' $(seq 2 "$prompt_words"))"
    npp=$(curl -fs "http://127.0.0.1:$port/v1/messages/count_tokens" -H 'content-type: application/json' \
      -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"$prompt\"}]}" |
      grep -o '"input_tokens":[0-9]*' | grep -o '[0-9]*$')
    [[ -n "$npp" ]] || { log "count_tokens failed"; exit 1; }
    generate "$port" "$pid" spool-llama "$model" "$jobs" 1 >/dev/null  # warm-up
    s=$(generate "$port" "$pid" spool-llama "$model" "$jobs" "$r")
    stop "$pid"
    emit "$s"
    # llama.cpp alone: npl sequences of npp prompt tokens then ntg tokens each, decoding only
    bb=$("$batched_bench" -m "$gguf" -c $((jobs * ctx)) -b 512 -ub 512 -npp "$npp" -ntg "$tokens" -npl "$jobs" \
      -t "$threads" -tb "$threads" --output-format jsonl 2>/dev/null | grep '"speed_tg"' | tail -1)
    bb_t=$(num "$bb" t)
    if [[ -n "$bb_t" ]]; then
      emit "{\"scenario\":\"generate\",\"target\":\"llama-batched-bench\",\"model\":\"$model\",\"jobs\":$jobs,\"prompt_tokens\":$npp,\"tokens\":$tokens,\"threads\":$threads,\"seconds_per_round\":$bb_t,\"tokens_per_s\":$(awk -v n=$((jobs * tokens)) -v t="$bb_t" 'BEGIN{printf "%.1f", n/t}'),\"decode_tokens_per_s\":$(num "$bb" speed_tg)}"
    else
      log "llama-batched-bench gave no figures"; failures=$((failures + 1))
    fi
    # llama-server: the same streamed replies, and Spool's openai engine in front of it
    start_llama_server "$gguf" "$jobs" "$ctx" || exit 1
    generate "$lport" "$lpid" llama-server "$model" "$jobs" 1 --api openai >/dev/null  # warm-up
    direct=$(generate "$lport" "$lpid" llama-server "$model" "$jobs" "$r" --api openai)
    emit "$direct"
    spool_tps=$(num "$s" tokens_per_s) direct_tps=$(num "$direct" tokens_per_s)
    if [[ -n "$spool_tps" && -n "$direct_tps" && -n "$bb_t" ]]; then
      emit "{\"scenario\":\"llama-overhead\",\"model\":\"$model\",\"jobs\":$jobs,\"threads\":$threads,\"spool_vs_llama_server\":$(awk -v a="$spool_tps" -v b="$direct_tps" 'BEGIN{printf "%.3f", a/b}'),\"spool_vs_batched_bench\":$(awk -v a="$spool_tps" -v n=$((jobs * tokens)) -v t="$bb_t" 'BEGIN{printf "%.3f", a/(n/t)}')}"
    fi
    cat >"$work/proxy.toml" <<EOF
[[models]]
name = "$model"
engine = "openai"
target = "http://127.0.0.1:$lport/v1"
EOF
    start_spool --config "$work/proxy.toml" || exit 1
    proxy=$(generate "$port" "$pid" spool-openai-proxy "$model" "$jobs" "$r")
    stop "$pid"
    stop "$lpid"
    emit "$proxy"
    a=$(num "$proxy" tokens_per_s) b=$(num "$direct" tokens_per_s)
    ta=$(num "$proxy" ttft_p50_ms) tb=$(num "$direct" ttft_p50_ms)
    if [[ -n "$a" && -n "$b" && -n "$ta" && -n "$tb" ]]; then
      emit "{\"scenario\":\"proxy-overhead\",\"model\":\"$model\",\"jobs\":$jobs,\"tokens_per_s_ratio\":$(awk -v a="$a" -v b="$b" 'BEGIN{printf "%.3f", a/b}'),\"ttft_p50_added_ms\":$(awk -v a="$ta" -v b="$tb" 'BEGIN{printf "%.3f", a-b}')}"
    fi
  done
done
((failures == 0))
