#!/usr/bin/env bash
# Old vs new binary on the same model, same machine, same run, alternating: prefill tokens/s (a ~400-token
# prompt) and decode tokens/s (a 100-token prompt, 32 new tokens), at 1 and 2 threads. Prints the median
# of REPS runs of each and the new/old ratio (markdown rows for BENCHMARKS.md).
#   scripts/bench/bench_engine_core.sh OLD_BIN NEW_BIN MODEL_DIR [REPS]
set -euo pipefail
OLD=$1 NEW=$2 M=$3 REPS=${4:-5}
TEXT=$(dirname "$0")/../../../shared/data/wikitext-2-raw/wiki.test.raw
long=$(head -c 1800 "$TEXT" | tr '\n' ' ')
short=$(head -c 450 "$TEXT" | tr '\n' ' ')
# "prefill: N tokens in S s (R tokens/s); decode: N tokens in S s (R tokens/s)" on stderr
rates() { "$1" -t "$2" generate "$M" --prompt "$3" --max-new-tokens "$4" 2>&1 >/dev/null |
          sed -n 's/.*prefill: .*(\([0-9.]*\) tokens\/s); decode: .*(\([0-9.]*\) tokens\/s).*/\1 \2/p'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "| threads | prefill old | prefill new | ratio | decode old | decode new | ratio |"
echo "|---|---|---|---|---|---|---|"
for t in 1 2; do
  : > /tmp/b_po; : > /tmp/b_pn; : > /tmp/b_do; : > /tmp/b_dn
  for ((i = 0; i < REPS; i++)); do
    rates "$OLD" $t "$long" 1 | cut -d' ' -f1 >> /tmp/b_po
    rates "$NEW" $t "$long" 1 | cut -d' ' -f1 >> /tmp/b_pn
    rates "$OLD" $t "$short" 32 | cut -d' ' -f2 >> /tmp/b_do
    rates "$NEW" $t "$short" 32 | cut -d' ' -f2 >> /tmp/b_dn
  done
  po=$(median < /tmp/b_po); pn=$(median < /tmp/b_pn); do_=$(median < /tmp/b_do); dn=$(median < /tmp/b_dn)
  echo "| $t | $po | $pn | $(awk "BEGIN {printf \"%.2f\", $pn / $po}") | $do_ | $dn | $(awk "BEGIN {printf \"%.2f\", $dn / $do_}") |"
done
