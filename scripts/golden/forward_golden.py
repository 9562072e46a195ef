#!/usr/bin/env python3
"""Reference logits for the CPU forward pass (tests/model/test_forward.cpp).

Makes tiny random-initialised checkpoints with Hugging Face `transformers` (saved in
testdata/models/<name>/: config.json + model.safetensors), and runs HF on CPU in float32 over a
64-token prompt for those and for ../shared/models/stories260K{,-mha}. Writes, per model,
testdata/forward/<name>.bin (float32 little-endian logits [64, vocab]) and <name>.json (ids, shape).

bf16 checkpoints are run in float32 on the bf16-rounded weights (what llmopt computes).
Requires: pip install torch transformers safetensors numpy.
Usage: python3 scripts/golden/forward_golden.py   (from the repository root)

With --llama-perplexity BIN --convert convert_hf_to_gguf.py (both from a llama.cpp checkout), also runs
llama.cpp's llama-perplexity on stories260K (converted to GGUF f32) over the first 40000 bytes of the TinyStories
validation excerpt, ctx 128, and writes testdata/forward/llamacpp_ppl.json (the `--protocol llamacpp` oracle).
"""
import argparse
import re
import subprocess
import tempfile
import json
import os
import sys

import numpy as np
import torch
import transformers
from transformers import (AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "testdata", "models")
OUT = os.path.join(ROOT, "testdata", "forward")
SHARED = os.path.join(ROOT, "..", "shared", "models")
T = 64

# Small shapes: hidden 48, 4 query heads, 2 layers, vocab 256 keep each checkpoint < 300 KB.
BASE = dict(hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=256, max_position_embeddings=512, bos_token_id=1,
            eos_token_id=2, rms_norm_eps=1e-5)


def tiny_models():
    # name -> (config, stored dtype)
    return {
        # llama3 rope scaling with all three frequency regimes inside head_dim 12 (wavelengths 6..13600 vs 16/64)
        "tiny-llama3": (LlamaConfig(**BASE, rope_theta=500000.0, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64}), torch.float32),
        # linear rope scaling, tied embeddings, multi-query (1 kv head), weights stored in bf16
        "tiny-llama-linear-bf16": (LlamaConfig(**{**BASE, "num_key_value_heads": 1}, rope_theta=10000.0,
            tie_word_embeddings=True, rope_scaling={"rope_type": "linear", "factor": 2.0}), torch.bfloat16),
        "tiny-qwen2": (Qwen2Config(**BASE, rope_theta=1000000.0, tie_word_embeddings=False,
                                   use_sliding_window=False), torch.float32),
        # qwen3: q/k RMSNorm per head, explicit head_dim 16 (q_proj out 64 != hidden 48)
        "tiny-qwen3": (Qwen3Config(**BASE, head_dim=16, rope_theta=1000000.0, tie_word_embeddings=True,
                                   use_sliding_window=False), torch.float32),
        "tiny-mistral": (MistralConfig(**BASE, rope_theta=10000.0, sliding_window=4096,
                                       tie_word_embeddings=False), torch.float32),
    }


def legacy_rope_keys(path, cfg):
    """transformers 5 writes `rope_parameters`; real checkpoints carry rope_theta + rope_scaling. Write both."""
    with open(path) as f:
        j = json.load(f)
    rp = j.get("rope_parameters") or {}
    if "rope_theta" in rp:
        j["rope_theta"] = rp["rope_theta"]
    if rp.get("rope_type", "default") != "default":
        rs = {k: v for k, v in rp.items() if k != "rope_theta"}
        rs["type"] = rs["rope_type"]
        j["rope_scaling"] = rs
    else:
        j["rope_scaling"] = None
    if "dtype" in j:  # transformers 5 spelling; older readers look for torch_dtype
        j["torch_dtype"] = j["dtype"]
    with open(path, "w") as f:
        json.dump(j, f, indent=2, sort_keys=True)


def make_tiny(name, cfg, dtype):
    torch.manual_seed(sum(map(ord, name)))
    cfg.torch_dtype = "float32"
    model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.float32)
    with torch.no_grad():  # HF init std 0.02 gives near-uniform logits; widen so the test sees real signal
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif n.endswith("bias"):
                p.copy_(0.5 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[-1] ** 0.5)
    model = model.to(dtype)
    d = os.path.join(MODELS, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d, safe_serialization=True)
    for extra in ("generation_config.json",):
        p = os.path.join(d, extra)
        if os.path.exists(p):
            os.remove(p)
    legacy_rope_keys(os.path.join(d, "config.json"), cfg)
    return d


def run(d, ids, name):
    model = AutoModelForCausalLM.from_pretrained(d, torch_dtype=torch.float32, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
    assert logits.shape == (len(ids), model.config.vocab_size)
    logits.astype("<f4").tofile(os.path.join(OUT, name + ".bin"))
    meta = {"model": os.path.relpath(d, ROOT), "ids": ids, "shape": list(logits.shape),
            "max_abs_logit": float(np.abs(logits).max()), "transformers": transformers.__version__,
            "torch": torch.__version__}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(meta, f)
    print(f"{name}: {logits.shape} max|logit| {meta['max_abs_logit']:.3f} "
          f"size {sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d)) if d.startswith(MODELS) else 0}")


def llamacpp_ppl(llama_perplexity, convert):
    with tempfile.TemporaryDirectory() as tmp:
        gguf = os.path.join(tmp, "stories260K-f32.gguf")
        subprocess.run([sys.executable, convert, os.path.join(SHARED, "stories260K"), "--outtype", "f32",
                        "--outfile", gguf], check=True, capture_output=True)
        text = os.path.join(tmp, "text.txt")
        src = os.path.join(ROOT, "..", "shared", "data", "tinystories", "tinystories_valid_excerpt.txt")
        with open(src, "rb") as f, open(text, "wb") as g:
            g.write(f.read()[:40000])
        r = subprocess.run([llama_perplexity, "-m", gguf, "-f", text, "-c", "128", "-b", "128", "-t", "2"],
                           check=True, capture_output=True, text=True)
        log = r.stdout + r.stderr
        ppl = float(re.search(r"Final estimate: PPL = ([0-9.]+)", log)[1])
        chunks = int(re.search(r"calculating perplexity over (\d+) chunks", log)[1])
    meta = {"model": "../shared/models/stories260K", "text": "data/tinystories/tinystories_valid_excerpt.txt",
            "bytes": 40000, "ctx": 128, "chunks": chunks, "ppl": ppl,
            "command": "llama-perplexity -m stories260K-f32.gguf -f text.txt -c 128 -b 128"}
    with open(os.path.join(OUT, "llamacpp_ppl.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print("llama.cpp perplexity:", meta)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-perplexity")
    ap.add_argument("--convert")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    if a.llama_perplexity:
        llamacpp_ppl(a.llama_perplexity, a.convert)
        return
    torch.set_num_threads(2)
    ref = json.load(open(os.path.join(SHARED, "reference", "stories260K_reference.json")))
    story_ids = ref["greedy_from_bos"]["token_ids_including_bos"][:T]
    for name in ("stories260K", "stories260K-mha"):
        run(os.path.join(SHARED, name), story_ids, name)
    rng = np.random.default_rng(1234)
    for name, (cfg, dtype) in tiny_models().items():
        d = make_tiny(name, cfg, dtype)
        ids = [1] + rng.integers(0, cfg.vocab_size, T - 1).tolist()
        run(d, ids, name)


if __name__ == "__main__":
    sys.exit(main())
