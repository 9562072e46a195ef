#!/usr/bin/env bash
# Serving benchmarks of the scheduler (BENCHMARKS.md "Continuous batching"):
#  1. `llmopt bench` batched table (llama-batched-bench's shape) at B = 1..32, plus the KV waste of each row;
#  2. a shared prefix across 16 requests: offline throughput with and without prefix caching (prefill time);
#  3. llama.cpp's llama-batched-bench on GGUF=... in the same run when LLAMA_BATCHED_BENCH is set.
#   scripts/bench/bench_serving.sh LLMOPT_BIN MODEL_DIR [PP] [TG] [PREFIX_TOKENS] [THREADS]
# env: LLAMA_BATCHED_BENCH=path/to/llama-batched-bench GGUF=model.gguf (optional); TOKENIZER_DIR (default
# MODEL_DIR; a .gguf MODEL needs a directory with the same tokenizer.json to cut the shared prefix's ids)
set -euo pipefail
BIN=$1 M=$2 PP=${3:-128} TG=${4:-128} PREFIX=${5:-256} T=${6:-2}
NPL=${NPL:-1,2,4,8,16,32}
TEXT=$(dirname "$0")/../../../shared/data/tinystories/tinystories_valid_excerpt.txt
echo "## machine: $(lscpu | sed -n 's/Model name: *//p'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%F' '%H:%M) UTC"
echo "## llmopt -t $T bench $M --npp $PP --ntg $TG --npl $NPL"
"$BIN" -q -t "$T" bench "$M" --npp "$PP" --ntg "$TG" --npl "$NPL" --json > /tmp/bench_serving_rows.jsonl
python3 - /tmp/bench_serving_rows.jsonl <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| PP | TG | B | N_KV | T_PP s | S_PP t/s | T_TG s | S_TG t/s | T s | S t/s | S_TG / S_TG(B=1) | KV waste |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
base = {}
for r in rows:
    if r["pl"] == 1: base[(r["pp"], r["tg"])] = r["speed_tg"]
    b = base.get((r["pp"], r["tg"]))
    print(f'| {r["pp"]} | {r["tg"]} | {r["pl"]} | {r["n_kv"]} | {r["t_pp"]:.3f} | {r["speed_pp"]:.1f} | {r["t_tg"]:.3f} | '
          f'{r["speed_tg"]:.1f} | {r["t"]:.3f} | {r["speed"]:.1f} | {r["speed_tg"] / b if b else float("nan"):.2f} | '
          f'{100 * r["kv_waste"]:.2f}% |')
PY

# 16 requests: BOS and the same PREFIX - 1 TinyStories token ids, then 8 ids of their own
"$BIN" -q tokenize "${TOKENIZER_DIR:-$M}" < "$TEXT" > /tmp/bench_serving_ids.txt
python3 - "$PREFIX" /tmp/bench_serving_ids.txt > /tmp/bench_serving_prefix.jsonl <<'PY'
import json, re, sys
n = int(sys.argv[1])
ids = [int(x) for x in re.findall(r"-?\d+", open(sys.argv[2]).read())]
if len(ids) < n + 16 * 8: sys.exit("not enough token ids from `llmopt tokenize`")
pre = [1] + ids[:n - 1]
for i in range(16):
    print(json.dumps({"id": i, "ids": pre + ids[n + 8 * i: n + 8 * i + 8], "max_new_tokens": 16}))
PY
echo
echo "## shared ${PREFIX}-token prefix, 16 requests of ${PREFIX}+8 tokens, 16 new each: llmopt -t $T bench --prompts-file"
echo "| prefix caching | prefill s | prefix hit tokens | wall s | output tokens/s | TTFT p50 ms |"
echo "|---|---:|---:|---:|---:|---:|"
for mode in on off; do
  flag=(); [[ $mode == off ]] && flag=(--no-prefix-caching)
  "$BIN" -q -t "$T" bench "$M" --prompts-file /tmp/bench_serving_prefix.jsonl --json "${flag[@]}" |
    python3 -c "import json,sys; j=json.load(sys.stdin); print(f'| $mode | {j[\"prefill_s\"]:.3f} | {j[\"prefix_hit_tokens\"]} | {j[\"wall_s\"]:.3f} | {j[\"output_tokens_per_s\"]:.1f} | {1e3*j[\"ttft_s\"][\"p50\"]:.1f} |')"
done

if [[ -n "${LLAMA_BATCHED_BENCH:-}" && -n "${GGUF:-}" ]]; then
  echo
  echo "## $LLAMA_BATCHED_BENCH -m $GGUF -t $T -npp $PP -ntg $TG -npl $NPL"
  "$LLAMA_BATCHED_BENCH" -m "$GGUF" -t "$T" -tb "$T" -c $(( 32 * (PP + TG) + 64 )) -b 4096 -ub 512 \
    -npp "$PP" -ntg "$TG" -npl "$NPL" 2>/dev/null | grep '^|'
fi
