#!/usr/bin/env python3
"""llm-compressor's GPTQ / AWQ / SmoothQuant+GPTQ W8A8 on stories260K, for the BENCHMARKS.md comparison.

Runs llm-compressor's own oneshot pipeline (sequential, layer by layer, on CPU) on the same model and calibration
text as scripts/bench/bench_quant.sh: 128 windows of 512 tokens from tinystories_train_excerpt.txt (drawn
GPTQ-style, random starts, numpy seed 0: the same distribution as llmopt's calibration runner, not the same
windows), block 128, dampening 0.01, the decoder linears, lm_head ignored.

Schemes (the llmopt side of scripts/bench/bench_quant.sh LLMC=1 uses the same ones):
  gptq-w4 / gptq-w3 / awq-w4  int4 / int3 asymmetric, group 32 for q/k/v/o/gate/up; down_proj (172 input
                              features, which 32 does not divide and llm-compressor's group strategy rejects)
                              per output channel, as llmopt's --format compressed-tensors --ragged-per-channel
  w8a8                        SmoothQuantModifier (smoothing strength 0.5, llm-compressor's Llama mappings) then
                              GPTQ with the W8A8 preset: int8 symmetric per-channel weights, dynamic per-token int8
                              activations
Writes OUT_DIR/dense: the fake-quant weights (every quantized linear's weight through compressed-tensors'
fake_quantize with the scales llm-compressor computed) as a plain fp32 HF directory, for `llmopt eval`; with
--compressed also OUT_DIR/compressed, llm-compressor's own save_pretrained(save_compressed=True) checkpoint
(for w8a8 this is the int-quantized W8A8 checkpoint llmopt's runtime kind loads, activations included).

Install (llm-compressor without its dependencies, then the pipeline's own):
  pip install --no-deps --target /tmp/quantpy llmcompressor==0.14.0.1 compressed-tensors==0.20.0
  pip install --target /tmp/quantpy2 datasets accelerate loguru
Usage:
  PYTHONPATH=/tmp/quantpy2:/tmp/quantpy python3 scripts/bench/bench_quant_llmcompressor.py \\
      MODEL_DIR CALIB_TXT OUT_DIR gptq-w4|gptq-w3|awq-w4|w8a8 [--compressed]
  python3 scripts/bench/bench_quant_llmcompressor.py --ppl MODEL_DIR VALID_TXT [--ctx 512] [--max-windows 40]
      (transformers' own perplexity of a dense directory, gptq protocol: non-overlapping windows of the text
      tokenized without BOS, every prediction in a window scored; the check on `llmopt eval`)
  python3 scripts/bench/bench_quant_llmcompressor.py --gguf-q4_1 LLMOPT MODEL_DIR VALID_TXT [--ctx 128]
      [--max-windows 100]
      (llama.cpp's perplexity on llmopt's Q4_1 GGUF (RTN, asymmetric, group 32) against llmopt's on the GGUF's
      dense twin: scripts/bench/bench_gguf_ppl.py's procedure and functions, for the type that script does not
      list; needs gguf and llama-cpp-python)
Prints one JSON line.
"""
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch


def group_scheme(bits):
    from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
    w = dict(num_bits=bits, type="int", symmetric=False)
    return {
        "group_0": QuantizationScheme(targets=["re:.*(q|k|v|o|gate|up)_proj$"],
                                      weights=QuantizationArgs(strategy="group", group_size=32, **w)),
        "group_1": QuantizationScheme(targets=["re:.*down_proj$"], weights=QuantizationArgs(strategy="channel", **w)),
    }


def recipe(kind):
    from llmcompressor.modifiers.awq import AWQModifier
    from llmcompressor.modifiers.quantization import GPTQModifier
    from llmcompressor.modifiers.smoothquant import SmoothQuantModifier
    gptq = dict(block_size=128, dampening_frac=0.01, ignore=["lm_head"])
    if kind in ("gptq-w4", "gptq-w3"):
        return [GPTQModifier(config_groups=group_scheme(int(kind[-1])), **gptq)]
    if kind == "awq-w4":
        return [AWQModifier(config_groups=group_scheme(4), ignore=["lm_head"])]
    if kind == "w8a8":
        return [SmoothQuantModifier(smoothing_strength=0.5),
                GPTQModifier(targets="Linear", scheme="W8A8", **gptq)]
    raise SystemExit(f"unknown scheme {kind}")


def copy_side_files(model_dir, out):
    for f in os.listdir(model_dir):
        if not f.endswith(".safetensors") and f != "config.json":
            shutil.copy(os.path.join(model_dir, f), os.path.join(out, f))


def quantize(model_dir, calib, out, kind, compressed):
    nsamples, seqlen = 128, 512
    import uuid

    import datasets.fingerprint
    from datasets import Dataset
    # datasets 5.2 + dill 0.4.1 cannot pickle pyarrow's MonthDayNano while fingerprinting; the fingerprints only
    # name cache entries, so any unique string will do
    datasets.fingerprint.Hasher.hash = classmethod(lambda cls, value: uuid.uuid4().hex)
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize
    from llmcompressor import oneshot
    from llmcompressor.pipelines.cache import IntermediatesCache
    if not torch.cuda.is_available():
        # AWQModifier pins its cached activations for faster host-to-GPU copies, which needs a CUDA driver;
        # pinning is only a transfer optimization, so on a CPU-only machine it is skipped
        IntermediatesCache.pin_memory = lambda self, batch_index, input_names=None: None
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    t_all = time.time()
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(open(calib, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    rng = np.random.default_rng(0)
    starts = rng.integers(0, len(ids) - seqlen, size=nsamples)
    windows = [ids[s:s + seqlen] for s in starts]
    ds = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * seqlen for _ in windows]})
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    original = set(model.state_dict())
    t0 = time.time()
    oneshot(model=model, dataset=ds, recipe=recipe(kind), num_calibration_samples=nsamples, max_seq_length=seqlen,
            pipeline="sequential")
    secs = time.time() - t0
    secs_all = time.time() - t_all

    # dense fake-quant weights: Q(W) with llm-compressor's own scales / zero points
    nq = 0
    with torch.no_grad():
        for name, m in model.named_modules():
            scheme = getattr(m, "quantization_scheme", None)
            if scheme is None or scheme.weights is None or not hasattr(m, "weight_scale"):
                continue
            zp = getattr(m, "weight_zero_point", None)
            m.weight.data = fake_quantize(m.weight.data, m.weight_scale.data, zp.data if zp is not None else None,
                                          scheme.weights)
            nq += 1
    dense = os.path.join(out, "dense")
    os.makedirs(dense, exist_ok=True)
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items() if k in original}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file(sd, os.path.join(dense, "model.safetensors"), metadata={"format": "pt"})
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    json.dump(cfg, open(os.path.join(dense, "config.json"), "w"), indent=2)
    copy_side_files(model_dir, dense)
    if compressed:
        comp = os.path.join(out, "compressed")
        model.save_pretrained(comp, save_compressed=True)
        copy_side_files(model_dir, comp)  # the original tokenizer files (save_pretrained's rewrite differs)
    print(json.dumps({"scheme": kind, "quantized_linears": nq, "oneshot_seconds": secs,
                      "seconds_with_tokenize_and_load": secs_all}))


def hf_ppl(model_dir, text_file, ctx, max_windows):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(model_dir)
    ids = tok(open(text_file, encoding="utf-8").read(), add_special_tokens=False)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    windows = len(ids) // ctx
    if max_windows:
        windows = min(windows, max_windows)
    nll, n = 0.0, 0
    with torch.no_grad():
        for w in range(windows):
            x = torch.tensor([ids[w * ctx:(w + 1) * ctx]])
            logp = torch.log_softmax(model(x).logits[0].double(), -1)
            nll -= logp[torch.arange(ctx - 1), x[0, 1:]].sum().item()
            n += ctx - 1
    print(json.dumps({"ppl": math.exp(nll / n), "tokens_scored": n, "windows": windows}))


def gguf_q4_1(llmopt, model_dir, text_file, ctx, max_windows):
    import subprocess
    import tempfile
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_gguf_ppl import Llama, gguf_to_hf, llama_cpp_ppl
    text = open(text_file, encoding="utf-8").read()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "q4_1.gguf")
        subprocess.run([llmopt, "-q", "quantize", model_dir, "-o", path, "--method", "rtn", "--bits", "4",
                        "--group-size", "32", "--asym", "--format", "gguf"], check=True)
        twin = os.path.join(tmp, "q4_1_dense")
        types = gguf_to_hf(path, model_dir, twin)
        ours = json.loads(subprocess.run(
            [llmopt, "-q", "eval", twin, "--ppl", text_file, "--ctx", str(ctx), "--protocol", "llamacpp",
             "--max-windows", str(max_windows), "--json"], check=True, capture_output=True, text=True).stdout)
        probe = Llama(model_path=path, n_ctx=ctx, verbose=False, vocab_only=True)
        tokens = probe.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        ppl, scored, windows, _ = llama_cpp_ppl(path, tokens, ctx, max_windows, probe.token_bos())
        tt = ", ".join(f"{k}×{v}" for k, v in sorted(types.items()))
        print(f"| Q4_1 | {os.path.getsize(path)} | {tt} | {ours['ppl']:.4f} | {ours['text_tokens']} | {ppl:.4f} "
              f"| {len(tokens)} | {scored} / {windows} (ours {ours['tokens_scored']} / {ours['windows']}) "
              f"| {100 * abs(ppl - ours['ppl']) / ours['ppl']:.3f}% |")


def main():
    a = sys.argv[1:]
    if a and a[0] == "--gguf-q4_1":
        ctx = int(a[a.index("--ctx") + 1]) if "--ctx" in a else 128
        mw = int(a[a.index("--max-windows") + 1]) if "--max-windows" in a else 100
        return gguf_q4_1(a[1], a[2], a[3], ctx, mw)
    if a and a[0] == "--ppl":
        ctx = int(a[a.index("--ctx") + 1]) if "--ctx" in a else 512
        mw = int(a[a.index("--max-windows") + 1]) if "--max-windows" in a else 0
        hf_ppl(a[1], a[2], ctx, mw)
    else:
        quantize(a[0], a[1], a[2], a[3], "--compressed" in a[4:])


if __name__ == "__main__":
    main()
