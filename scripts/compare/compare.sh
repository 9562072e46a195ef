#!/usr/bin/env bash
# Compares two llmopt source trees, each built into its build/ with the same flags (e.g. the last release
# and a refactor that must not change results): logits bit for bit on every golden model (prefill, decode,
# ragged batch), greedy generations, perplexities and KL, and the bytes of every quantize/prune/convert
# output. Prints one line per check and exits non-zero on any difference.
#   scripts/compare/compare.sh OLD_TREE NEW_TREE
set -uo pipefail
OLD=$(realpath "$1"); NEW=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd)
M=$(realpath "$NEW/../shared/models"); D=$(realpath "$NEW/../shared/data/tinystories")
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fails=0
report() { if [ "$1" = 0 ]; then echo "same  $2"; else echo "DIFF  $2"; fails=$((fails + 1)); fi; }

# ---- logits -------------------------------------------------------------------------------------------
for side in OLD NEW; do
  tree=${!side}; api=""; [ -f "$tree/lib/kv/kv_cache.h" ] && api=-DLLMOPT_OLD_API
  libs=$(find "$tree/build" -maxdepth 1 -name 'libllmopt_*.a' | tr '\n' ' ')
  g++ -std=c++20 -O2 $api -I"$tree" "$HERE/dump_logits.cpp" -Wl,--start-group $libs -Wl,--end-group \
    -lfmt -lpcre2-8 -lutf8proc -lpthread -o "$T/dump_$side" || { echo "cannot build the logits dumper for $tree"; exit 2; }
done
for j in "$NEW"/testdata/forward/*.json; do
  name=$(basename "$j" .json)
  python3 -c "import json,sys; sys.exit(0 if 'ids' in json.load(open('$j')) else 1)" || continue
  (cd "$OLD" && "$T/dump_OLD" "$NEW" "$name") > "$T/l_old" 2>&1
  (cd "$NEW" && "$T/dump_NEW" "$NEW" "$name") > "$T/l_new" 2>&1
  cmp -s "$T/l_old" "$T/l_new"; report $? "logits $name ($(tr '\n' ' ' < "$T/l_new"))"
done

# ---- CLI results (stdout with timings removed, and output files) --------------------------------------
strip() { python3 -c '
import json, re, sys
def clean(o):
    if isinstance(o, dict): return {k: clean(v) for k, v in o.items() if not re.search(r"second|_s$|per_s|tok_s|time|output", k)}
    if isinstance(o, list): return [clean(v) for v in o]
    return o
for line in sys.stdin.read().split("\n}"):
    line = line.strip()
    if not line: continue
    for part in ([line + "}"] if not line.endswith("}") else [line]):
        try: print(json.dumps(clean(json.loads(part)), sort_keys=True))
        except Exception: print(part)
'; }
run() {  # run NAME OUTPUT|- ARGS...: both binaries, compare stdout and (if given) the output path
  local name=$1 out=$2; shift 2
  for side in old new; do
    tree=$OLD; [ $side = new ] && tree=$NEW
    local o=""; [ "$out" != - ] && o="$T/$side/$out" && mkdir -p "$T/$side"
    "$tree/build/llmopt" --quiet "$@" ${o:+-o "$o"} 2>"$T/$side.err" | strip > "$T/$side.out"
    echo "rc=${PIPESTATUS[0]}" >> "$T/$side.out"
  done
  local r=0
  grep -q '^rc=0$' "$T/new.out" || { echo "      failed: $(head -c 300 "$T/new.err")"; r=1; }
  cmp -s "$T/old.out" "$T/new.out" || r=1
  [ "$out" != - ] && { [ -e "$T/new/$out" ] && diff -r "$T/old/$out" "$T/new/$out" > /dev/null || r=1; }
  report $r "$name"
}
S=$M/stories260K; MHA=$M/stories260K-mha
CAL=(--calib "$D/tinystories_train_excerpt.txt" --nsamples 16 --seqlen 128)
printf 'Once upon a time\nThe cat\n\nLily and Ben went to the park. They\n' > "$T/prompts.txt"
for m in "$S" "$MHA"; do
  run "generate greedy $(basename $m)" - generate "$m" --prompt "Once upon a time" --max-new-tokens 64 --json
  run "generate batch of 4 $(basename $m)" - generate "$m" --prompts-file "$T/prompts.txt" --max-new-tokens 48 --json
  run "generate sampled $(basename $m)" - generate "$m" --prompts-file "$T/prompts.txt" --max-new-tokens 32 --temperature 0.8 --top-p 0.9 --seed 7 --json
  for p in gptq llamacpp; do
    run "eval $p $(basename $m)" - eval "$m" --ppl "$D/tinystories_valid_excerpt.txt" --ctx 256 --max-windows 8 --protocol $p --json
  done
done
run "eval kl mha vs gqa" - eval "$MHA" --ppl "$D/tinystories_valid_excerpt.txt" --ctx 256 --max-windows 8 --kl-base "$S" --json
for f in compressed-tensors dense gguf; do
  run "quantize rtn $f" q_rtn_$f quantize "$S" --method rtn --bits 4 --group-size 32 --format $f $([ $f = gguf ] || echo --ragged-per-channel) --json
done
for f in compressed-tensors dense; do
  run "quantize gptq $f" q_gptq_$f quantize "$S" --method gptq --bits 4 --group-size 32 --format $f --ragged-per-channel "${CAL[@]}" --json
  run "quantize gptq act-order $f" q_gptqa_$f quantize "$S" --method gptq --bits 4 --group-size 32 --act-order --static-groups --format $f --ragged-per-channel "${CAL[@]}" --json
done
run "quantize awq dense" q_awq quantize "$S" --method awq --bits 4 --group-size 32 --format dense "${CAL[@]}" --json
run "quantize smoothquant" q_sq quantize "$S" --method smoothquant "${CAL[@]}" --json
for m in magnitude wanda sparsegpt; do
  run "prune $m 50%" p_${m} prune "$S" --method $m --sparsity 0.5 "${CAL[@]}" --json
  run "prune $m 2:4" p_${m}_24 prune "$S" --method $m --pattern 2:4 "${CAL[@]}" --json
done
run "prune sparsegpt 2:4 + 4-bit" p_sg_q4 prune "$S" --method sparsegpt --pattern 2:4 --bits 4 "${CAL[@]}" --json
run "convert mha->gqa adjacent" c_adj convert "$MHA" --kv-heads 4 --json
run "convert mha->gqa similarity" c_sim convert "$MHA" --kv-heads 2 --grouping similarity --calib "$D/tinystories_train_excerpt.txt" --json
echo "$fails difference(s)"
[ $fails = 0 ]
