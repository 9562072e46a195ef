#!/usr/bin/env python3
"""A GPTQ/AWQ-layout-compatible small model for tests/cli/test_quantized_run_cli.cpp.

stories260K cannot be stored in the GPTQ layout (intermediate 172 is not a multiple of 32). This keeps the
first 128 MLP neurons (gate/up rows, down columns) of each of its 5 layers, fp32, tied embeddings:
testdata/models/stories260K-i128/{config.json, model.safetensors}. Every linear is then [64|32|128] x
[64|128], which GPTQ (multiples of 32) and AWQ (out % 8, in % group) can hold. The tokenizer is stories260K's
(tests copy it from ../shared/models/stories260K into a temporary directory). Trained weights, so GPTQ's
calibration and the perplexity are meaningful (TinyStories valid, ctx 128, 6 windows: 22.1, against 4.26
for stories260K; keeping only 2 of the 5 layers gives ~5700, worse than uniform).
Requires: numpy, safetensors.  Usage: python3 scripts/golden/quantized_run_golden.py  (from the repo root)
"""
import json
import os

import numpy as np
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SRC = os.path.join(ROOT, "..", "shared", "models", "stories260K")
DST = os.path.join(ROOT, "testdata", "models", "stories260K-i128")
LAYERS, INTER = 5, 128


def main():
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    w = load_file(os.path.join(SRC, "model.safetensors"))
    out = {}
    for name, t in w.items():
        if name.startswith("model.layers."):
            layer = int(name.split(".")[2])
            if layer >= LAYERS:
                continue
            if "gate_proj" in name or "up_proj" in name:
                t = t[:INTER, :]
            elif "down_proj" in name:
                t = t[:, :INTER]
        out[name] = np.ascontiguousarray(t.astype(np.float32))
    cfg["num_hidden_layers"] = LAYERS
    cfg["intermediate_size"] = INTER
    os.makedirs(DST, exist_ok=True)
    save_file(out, os.path.join(DST, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(DST, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    print(f"wrote {DST}: {sum(t.size for t in out.values())} parameters")


if __name__ == "__main__":
    main()
