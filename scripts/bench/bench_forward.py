#!/usr/bin/env python3
"""CPU forward speed: llmopt vs llama.cpp on the same ~100M-parameter random Llama.

Builds scripts/bench/bench_forward_make.cpp against BUILD's static libraries, writes the checkpoint in f32 and
bf16 with llmopt's safetensors Writer (+ the Llama-2 32k tokenizer from ../shared), then measures
  llmopt generate: prefill and decode tokens/s at batch 1 and batch 8 (stderr stats line),
  llama.cpp llama-bench: pp<N> and tg64 on the same model converted with llama.cpp's convert_hf_to_gguf.py,
with the same thread count, and prints a markdown table.

Usage: python3 scripts/bench/bench_forward.py --build build-fwd --llama-bench PATH --convert PATH [--threads N]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOK = os.path.join(ROOT, "..", "shared", "models", "llama2-tokenizer-32k")
STORY = os.path.join(ROOT, "..", "shared", "data", "tinystories", "tinystories_valid_excerpt.txt")


def sh(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def make_models(build, work):
    exe = os.path.join(work, "bench_forward_make")
    sh(["g++", "-O2", "-std=c++20", "-I", ROOT, os.path.join(ROOT, "scripts/bench/bench_forward_make.cpp"),
        os.path.join(build, "libllmopt_formats.a"), os.path.join(build, "libllmopt_core.a"), "-lfmt", "-o", exe])
    dirs = {}
    for dt in ("f32", "bf16"):
        d = os.path.join(work, f"llama100m-{dt}")
        if not os.path.exists(os.path.join(d, "model.safetensors")):
            print(sh([exe, d, dt]).stdout.strip(), file=sys.stderr)
        for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(os.path.join(TOK, f), d)
        dirs[dt] = d
    return dirs


STATS = re.compile(r"prefill: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\); decode: (\d+) tokens in ([\d.]+) s \(([\d.]+) tokens/s\)")


def llmopt_run(llmopt, model, prompts, threads, new_tokens, repeats):
    """Best of `repeats` runs (the machine may be shared)."""
    args = [llmopt, "-t", str(threads), "generate", model, "--max-new-tokens", str(new_tokens),
            "--json", "--prompts-file", "-"]
    best = None
    for _ in range(repeats):
        r = subprocess.run(args, input="\n".join(prompts) + "\n", capture_output=True, text=True, check=True)
        m = STATS.search(r.stderr)
        s = {"prefill_tokens": int(m[1]), "prefill_tps": float(m[3]), "decode_tokens": int(m[4]), "decode_tps": float(m[6])}
        if best is None:
            best = s
        best["prefill_tps"] = max(best["prefill_tps"], s["prefill_tps"])
        best["decode_tps"] = max(best["decode_tps"], s["decode_tps"])
    return best


def llama_cpp(llama_bench, convert, model, dt, threads, n_prompt, work, repeats):
    gguf = os.path.join(work, f"llama100m-{dt}.gguf")
    if not os.path.exists(gguf):
        sh([sys.executable, convert, model, "--outtype", dt, "--outfile", gguf])
    r = sh([llama_bench, "-m", gguf, "-p", str(n_prompt), "-n", "64", "-t", str(threads), "-r", str(repeats), "-o", "json"])
    res = {}
    for row in json.loads(r.stdout):  # best sample, like llmopt's best of `repeats`
        key = "prefill_tps" if row["n_prompt"] > 0 else "decode_tps"
        res[key] = max(row.get("samples_ts") or [row["avg_ts"]])
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--convert", required=True, help="llama.cpp's convert_hf_to_gguf.py")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--work", default="/tmp/llmopt-bench")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--llmopt", help="llmopt binary (default BUILD/llmopt)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    dirs = make_models(a.build, a.work)
    text = open(STORY).read().split("\n")
    # ~256-token prompts: first lines of 8 different stories
    prompts, cur = [], ""
    for line in text:
        cur += (" " if cur else "") + line.strip()
        if len(cur) > 1000:
            prompts.append(cur[:1000])
            cur = ""
        if len(prompts) == 8:
            break
    rows = []
    for dt, d in dirs.items():
        exe = a.llmopt or os.path.join(a.build, "llmopt")
        b1 = llmopt_run(exe, d, prompts[:1], a.threads, a.new_tokens, a.repeats)
        b8 = llmopt_run(exe, d, prompts, a.threads, a.new_tokens, a.repeats)
        lc = llama_cpp(a.llama_bench, a.convert, d, dt, a.threads, b1["prefill_tokens"], a.work, a.repeats)
        rows.append((dt, b1, b8, lc))
    print(f"threads {a.threads}; prompt {rows[0][1]['prefill_tokens']} tokens, {a.new_tokens} new tokens\n")
    print("| weights | llmopt prefill b1 | llama.cpp pp | ratio | llmopt decode b1 | llama.cpp tg | ratio | "
          "llmopt prefill b8 | llmopt decode b8 | b8/b1 decode |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dt, b1, b8, lc in rows:
        print(f"| {dt} | {b1['prefill_tps']:.1f} | {lc['prefill_tps']:.1f} | {b1['prefill_tps'] / lc['prefill_tps']:.2f} | "
              f"{b1['decode_tps']:.1f} | {lc['decode_tps']:.1f} | {b1['decode_tps'] / lc['decode_tps']:.2f} | "
              f"{b8['prefill_tps']:.1f} | {b8['decode_tps']:.1f} | {b8['decode_tps'] / b1['decode_tps']:.2f} |")


if __name__ == "__main__":
    main()
