#!/usr/bin/env python3
"""llama.cpp runs llmopt's GGUF exports: perplexity of llama.cpp (llama-cpp-python) on our Q8_0 / Q4_0 GGUF of
a model against llmopt's own perplexity on the same weights.

For each type: `llmopt quantize --method rtn --format gguf` writes the GGUF; the `gguf` package dequantizes
every tensor of that file (un-permuting q/k rows back to HF's rotate_half order) into an HF safetensors
directory, the dense twin with exactly the GGUF's weights; `llmopt eval --protocol llamacpp` scores the twin
and llama-cpp-python scores the GGUF itself over the same windows (llama-perplexity's protocol: window i is
tokens [i*ctx, (i+1)*ctx) with BOS first, the predictions at positions ctx/2 .. ctx-2 scored), on llama.cpp's
own tokenization of the text (reported against ours).

Usage (repo root): python3 scripts/bench/bench_gguf_ppl.py --llmopt build/llmopt [--ctx 128] [--types q8_0,q4_0]
Prints a markdown table (BENCHMARKS.md). Requires numpy, safetensors, gguf, llama-cpp-python.
"""
import argparse
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile

import numpy as np
import gguf
from llama_cpp import Llama
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LAYER = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
         "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
         "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
TOP = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
       "output.weight": "lm_head.weight"}


def hf_name(name):
    if name in TOP:
        return TOP[name]
    blk, i, kind, suffix = name.split(".")
    assert blk == "blk", name
    return f"model.layers.{i}.{LAYER[kind]}.{suffix}"


def unpermute(w, n_head):
    # gguf row h*hd + 2j + t  <-  HF row h*hd + t*hd/2 + j   (inverse of convert_hf_to_gguf's permute)
    rows = w.shape[0]
    hd = rows // n_head
    return w.reshape(n_head, hd // 2, 2, -1).transpose(0, 2, 1, 3).reshape(rows, -1)


def gguf_to_hf(gguf_path, model_dir, out_dir):
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    reader = gguf.GGUFReader(gguf_path)
    tensors, types = {}, {}
    for t in reader.tensors:
        w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        w = w.reshape([int(d) for d in reversed(t.shape)])
        name = hf_name(t.name)
        if name.endswith("q_proj.weight"):
            w = unpermute(w, cfg["num_attention_heads"])
        elif name.endswith("k_proj.weight"):
            w = unpermute(w, cfg["num_key_value_heads"])
        tensors[name] = np.ascontiguousarray(w)
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg["torch_dtype"] = "float32"
    json.dump(cfg, open(os.path.join(out_dir, "config.json"), "w"), indent=2)
    for f in os.listdir(model_dir):
        if f.startswith("tokenizer") or f in ("special_tokens_map.json", "generation_config.json"):
            shutil.copy(os.path.join(model_dir, f), out_dir)
    return types


def llama_cpp_ppl(gguf_path, tokens, ctx, max_windows, bos):
    llm = Llama(model_path=gguf_path, n_ctx=ctx, n_batch=ctx, logits_all=True, verbose=False, seed=0)
    windows = len(tokens) // ctx
    if max_windows:
        windows = min(windows, max_windows)
    nll, scored = 0.0, 0
    for w in range(windows):
        win = list(tokens[w * ctx:(w + 1) * ctx])
        win[0] = bos
        llm.reset()
        llm.eval(win)
        logits = np.array(llm.scores[:ctx], dtype=np.float64)
        for j in range(ctx // 2, ctx - 1):
            l = logits[j]
            m = l.max()
            lse = m + math.log(np.exp(l - m).sum())
            nll += lse - l[tokens[w * ctx + j + 1]]
            scored += 1
    return math.exp(nll / scored), scored, windows, llm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llmopt", default=os.path.join(ROOT, "build", "llmopt"))
    ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "models", "stories260K"))
    ap.add_argument("--text", default=os.path.join(ROOT, "..", "shared", "data", "tinystories",
                                                   "tinystories_valid_excerpt.txt"))
    ap.add_argument("--ctx", type=int, default=128)
    ap.add_argument("--max-windows", type=int, default=0)
    ap.add_argument("--types", default="q8_0,q4_0")
    args = ap.parse_args()
    text = open(args.text, encoding="utf-8").read()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in args.types.split(","):
            bits = {"q8_0": "8", "q4_0": "4"}[t]
            path = os.path.join(tmp, f"{t}.gguf")
            subprocess.run([args.llmopt, "-q", "quantize", args.model, "-o", path, "--method", "rtn", "--bits", bits,
                            "--group-size", "32", "--sym", "--format", "gguf"], check=True)
            twin = os.path.join(tmp, f"{t}_dense")
            types = gguf_to_hf(path, args.model, twin)
            ours = json.loads(subprocess.run(
                [args.llmopt, "-q", "eval", twin, "--ppl", args.text, "--ctx", str(args.ctx), "--protocol", "llamacpp",
                 "--max-windows", str(args.max_windows), "--json"], check=True, capture_output=True, text=True).stdout)
            probe = Llama(model_path=path, n_ctx=args.ctx, verbose=False, vocab_only=True)
            tokens = probe.tokenize(text.encode("utf-8"), add_bos=True, special=True)
            ppl, scored, windows, _ = llama_cpp_ppl(path, tokens, args.ctx, args.max_windows, probe.token_bos())
            rel = abs(ppl - ours["ppl"]) / ours["ppl"]
            rows.append((t, os.path.getsize(path), types, ours, len(tokens), ppl, scored, windows, rel))
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print("## GGUF export: llama.cpp perplexity vs llmopt on the same weights\n")
    print(f"Command: `python3 scripts/bench/bench_gguf_ppl.py --llmopt {os.path.relpath(args.llmopt, ROOT)} "
          f"--ctx {args.ctx}{' --max-windows %d' % args.max_windows if args.max_windows else ''}`  ")
    print(f"Machine: {cpu}, {os.cpu_count()} threads; llama-cpp-python {__import__('llama_cpp').__version__}, "
          f"gguf {importlib.metadata.version('gguf')}; date {datetime.date.today().isoformat()}  ")
    print(f"Model: {os.path.relpath(args.model, ROOT)}; text: {os.path.relpath(args.text, ROOT)} (ctx {args.ctx}, "
          "llama-perplexity protocol)\n")
    print("| type | GGUF bytes | tensor types | llmopt ppl (dense twin) | llmopt tokens | llama.cpp ppl (GGUF) "
          "| llama.cpp tokens | scored / windows | rel. diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t, size, types, ours, ntok, ppl, scored, windows, rel in rows:
        tt = ", ".join(f"{k}×{v}" for k, v in sorted(types.items()))
        print(f"| {t.upper()} | {size} | {tt} | {ours['ppl']:.4f} | {ours['text_tokens']} | {ppl:.4f} | {ntok} "
              f"| {scored} / {windows} (ours {ours['tokens_scored']} / {ours['windows']}) | {100 * rel:.3f}% |")


if __name__ == "__main__":
    main()
