#!/usr/bin/env python3
"""Logits of the real SmolLM2-135M-Instruct Q4_1 GGUF under Hugging Face transformers -> testdata/gguf/.

transformers loads the .gguf itself (AutoModelForCausalLM.from_pretrained(dir, gguf_file=...)): it dequantizes
every tensor with gguf-py and undoes llama.cpp's q/k row permutation, then runs its own fp32 Llama forward.
Fed 128 token ids (the start of wiki.test.raw through the GGUF's own tokenizer as transformers converts it; the
ids are only an input here, any ids would do), it gives the logits at positions 15, 31, ..., 127 (all 49152
entries each). Written: smollm2_logits_ids.json (ids, positions, versions) and smollm2_logits.f32 (positions x
vocab, little-endian fp32). tests/model/test_gguf_model.cpp runs llmopt on the same file and ids.
Usage: python3 scripts/golden/gguf_logits_golden.py      Needs: torch, transformers, accelerate, gguf, numpy.
"""
import json
from pathlib import Path

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "gguf"
DIR = ROOT.parent / "shared" / "models" / "smollm2-135m-instruct-gguf"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT = ROOT.parent / "shared" / "data" / "wikitext-2-raw" / "wiki.test.raw"
N, EVERY = 128, 16


def main():
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(DIR, gguf_file=FILE)
    ids = tok(TEXT.read_text(encoding="utf-8")[:4000], add_special_tokens=False)["input_ids"][:N]
    assert len(ids) == N
    model = AutoModelForCausalLM.from_pretrained(DIR, gguf_file=FILE, dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float().numpy()
    pos = list(range(EVERY - 1, N, EVERY))
    sel = logits[pos].astype("<f4")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "smollm2_logits.f32").write_bytes(sel.tobytes())
    meta = {"file": FILE, "ids": ids, "positions": pos, "vocab": int(sel.shape[1]),
            "argmax": [int(a) for a in sel.argmax(axis=1)],
            "transformers": transformers.__version__, "torch": torch.__version__}
    (OUT / "smollm2_logits_ids.json").write_text(json.dumps(meta) + "\n")
    print(f"wrote {len(pos)} positions x {sel.shape[1]} logits; argmax {meta['argmax']}")


if __name__ == "__main__":
    main()
