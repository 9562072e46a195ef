#!/usr/bin/env python3
"""Checks `llmopt convert SmolLM2.gguf -o DIR` with Hugging Face transformers (an external check, not a golden).

Runs the given llmopt binary to write the HF directory, loads it with AutoModelForCausalLM / AutoTokenizer,
and compares its fp32 logits on the ids of testdata/gguf/smollm2_logits_ids.json with transformers' logits of
the .gguf itself (testdata/gguf/smollm2_logits.f32). Prints the largest difference and whether the tokenizer
loaded by transformers from our tokenizer.json splits digits as llama.cpp's smollm pre-tokenizer does.
Usage: python3 scripts/golden/gguf_convert_check.py build/llmopt [--dtype f32|bf16]
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
G = ROOT / "testdata" / "gguf"
GGUF = ROOT.parent / "shared" / "models" / "smollm2-135m-instruct-gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main():
    binary = sys.argv[1]
    dtype = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--dtype" else "f32"
    meta = json.loads((G / "smollm2_logits_ids.json").read_text())
    want = np.frombuffer((G / "smollm2_logits.f32").read_bytes(), dtype="<f4").reshape(len(meta["positions"]), -1)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "hf"
        subprocess.run([binary, "-q", "convert", str(GGUF), "-o", str(out), "--dtype", dtype], check=True)
        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        with torch.no_grad():
            logits = model(torch.tensor([meta["ids"]])).logits[0].float().numpy()
        d = float(np.abs(logits[meta["positions"]] - want).max())
        tok = AutoTokenizer.from_pretrained(out)
        digits = tok("In 1998, 12345 people", add_special_tokens=False)["input_ids"]
        pieces = tok.convert_ids_to_tokens(digits)
    print(json.dumps({"dtype": dtype, "max_abs_logit_diff_vs_transformers_gguf": d,
                      "pieces_of 'In 1998, 12345 people'": pieces}, ensure_ascii=False))


if __name__ == "__main__":
    main()
