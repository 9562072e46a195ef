#!/usr/bin/env python3
"""llm-compressor's SparseGPT / Wanda on stories260K, for the BENCHMARKS.md comparison.

Runs llm-compressor's own oneshot pipeline (sequential, layer by layer, on CPU) with SparseGPTModifier or
WandaPruningModifier on the same model and calibration text as scripts/bench/bench_prune.sh: 128 windows of 512
tokens from tinystories_train_excerpt.txt, block 128, dampening 0.01, targets the decoder linears, ignore lm_head.
The windows are drawn GPTQ-style (random starts, numpy seed 0), the same distribution as llmopt's calibration
runner, not the same windows. The pruned weights are written as a plain HF directory (model.safetensors + the
original's config/tokenizer files) for `llmopt eval`.

Install (llm-compressor without its dependencies, then the pipeline's own):
  pip install --no-deps --target /tmp/quantpy llmcompressor==0.14.0.1 compressed-tensors==0.20.0
  pip install --target /tmp/quantpy2 datasets accelerate loguru
Usage:
  PYTHONPATH=/tmp/quantpy:/tmp/quantpy2 python3 scripts/bench/bench_prune_llmcompressor.py \\
      MODEL_DIR CALIB_TXT OUT_DIR sparsegpt|wanda 0.5|2:4
Prints one JSON line: method, structure, measured linear sparsity, seconds.
"""
import json
import os
import shutil
import sys
import time

import numpy as np
import torch


def main():
    model_dir, calib, out, method, pattern = sys.argv[1:6]
    nsamples, seqlen = 128, 512
    import uuid

    import datasets.fingerprint
    from datasets import Dataset
    # datasets 5.2 + dill 0.4.1 cannot pickle pyarrow's MonthDayNano while fingerprinting; the fingerprints only
    # name cache entries, so any unique string will do
    datasets.fingerprint.Hasher.hash = classmethod(lambda cls, value: uuid.uuid4().hex)
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(open(calib, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(ids) - seqlen, size=nsamples)
    windows = [ids[s:s + seqlen] for s in starts]
    ds = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * seqlen for _ in windows]})

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    structure = "0:0" if pattern != "2:4" else "2:4"
    sparsity = 0.5
    common = dict(sparsity=sparsity, mask_structure=structure, targets=["re:.*_proj$"], ignore=["lm_head"])
    if method == "sparsegpt":
        mod = SparseGPTModifier(block_size=128, dampening_frac=0.01, **common)
    else:
        mod = WandaPruningModifier(**common)
    t0 = time.time()
    oneshot(model=model, dataset=ds, recipe=[mod], num_calibration_samples=nsamples, max_seq_length=seqlen,
            pipeline="sequential")
    secs = time.time() - t0

    os.makedirs(out, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    for f in os.listdir(model_dir):
        if not f.endswith(".safetensors"):
            shutil.copy(os.path.join(model_dir, f), os.path.join(out, f))
    z = n = 0
    for k, v in sd.items():
        if k.startswith("model.layers.") and k.endswith("_proj.weight"):
            z += int((v == 0).sum())
            n += v.numel()
    print(json.dumps({"method": method, "structure": pattern, "linear_sparsity": z / n, "seconds": secs}))


if __name__ == "__main__":
    main()
