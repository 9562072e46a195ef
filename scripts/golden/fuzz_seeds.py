#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (fuzz/targets), written to testdata/fuzz/seeds/<target>/.

Every seed is a valid input made by the reference implementation of its format, so the fuzzer starts from
inputs that reach deep into each parser:
  safetensors     files written by `safetensors.numpy` (every dtype numpy has, empty and scalar tensors, metadata)
  st_index        model.safetensors.index.json files for testdata/safetensors/py_sharded's two shards
  config          config.json of each supported family, written by `transformers` config classes
  tokenizer_json  small tokenizers trained with `tokenizers` (byte-level BPE with a Split regex, SentencePiece-
                  style BPE with byte fallback), with added tokens and a TemplateProcessing post-processor
  encode          byte 0 picks the real tokenizer (stories260K, llama2-32k, llama3, qwen3, deepseek-v3), the rest
                  is text: the tokenizer golden's hand-picked strings
  detokenize      byte 0 picks the tokenizer, the rest is id lines: HF's encodings of those strings
The replay test (tests/fuzz) runs every seed through its harness.

Usage: python3 scripts/golden/fuzz_seeds.py   (from the repository root; numpy, safetensors, tokenizers, transformers)
"""
import json
import pathlib
import shutil
import sys

import numpy as np
from safetensors.numpy import save
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers, Regex

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
OUT = ROOT / "testdata" / "fuzz" / "seeds"
sys.path.insert(0, str(ROOT / "scripts" / "golden"))
from tokenizer_golden import CASES  # noqa: E402

REAL = ["models/stories260K", "models/llama2-tokenizer-32k", "models/tokenizers/llama3", "models/tokenizers/qwen3",
        "models/tokenizers/deepseek-v3"]  # the order of fuzz/targets/tokenizer.cpp


def put(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def safetensors_seeds():
    rng = np.random.default_rng(0)
    put("safetensors", "f32_pair.safetensors",
        save({"a": rng.standard_normal((4, 8)).astype(np.float32), "b": np.arange(6, dtype=np.float32)}))
    put("safetensors", "all_dtypes.safetensors",
        save({f"t_{t}": (rng.standard_normal(5) * 10).astype(t) for t in
              ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]}))
    put("safetensors", "empty_and_scalar.safetensors",
        save({"empty": np.zeros((0, 3), np.float32), "scalar": np.array(3.5, np.float32)}))
    put("safetensors", "metadata.safetensors",
        save({"w": np.ones((2, 2), np.float16)}, metadata={"format": "pt"}))
    put("safetensors", "no_tensors.safetensors", save({}))


def index_seeds():
    shards = ROOT / "testdata" / "safetensors" / "py_sharded"
    idx = json.loads((shards / "model.safetensors.index.json").read_text())
    put("st_index", "index.json", json.dumps(idx, indent=2))
    sub = dict(idx, weight_map={k: v for i, (k, v) in enumerate(idx["weight_map"].items()) if i % 2 == 0})
    put("st_index", "index_subset.json", json.dumps(sub))
    put("st_index", "index_no_metadata.json", json.dumps({"weight_map": idx["weight_map"]}))


def config_seeds():
    import transformers as tf
    small = dict(vocab_size=256, hidden_size=48, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=512)
    cfgs = {
        "llama": tf.LlamaConfig(**small, head_dim=12),
        "llama3_rope": tf.LlamaConfig(**small, head_dim=12, rope_scaling={
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64}),
        "mistral": tf.MistralConfig(**small, head_dim=12, sliding_window=128),
        "qwen2": tf.Qwen2Config(**small, tie_word_embeddings=True),
        "qwen3": tf.Qwen3Config(**small, head_dim=12),
        "deepseek_v2": tf.DeepseekV2Config(vocab_size=256, hidden_size=48, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=4, kv_lora_rank=16,
                                           q_lora_rank=24, qk_rope_head_dim=8, qk_nope_head_dim=8, v_head_dim=8,
                                           first_k_dense_replace=2),
    }
    for name, c in cfgs.items():
        put("config", f"{name}.json", c.to_json_string(use_diff=False))


def train(model, pre, normalizer, decoder, added):
    t = Tokenizer(model)
    if normalizer is not None:
        t.normalizer = normalizer
    t.pre_tokenizer = pre
    t.decoder = decoder
    trainer = trainers.BpeTrainer(vocab_size=200, special_tokens=added, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if pre is not None else [])
    t.train_from_iterator([c for c in CASES if c] * 3, trainer)
    return t


def tokenizer_seeds():
    bl = train(models.BPE(),
               pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+|\s+"),
                                                             "isolated"),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
               None, decoders.ByteLevel(), ["<|begin|>", "<|end|>"])
    bl.post_processor = processors.TemplateProcessing(single="<|begin|> $A", pair="<|begin|> $A <|end|> $B:1",
                                                      special_tokens=[("<|begin|>", bl.token_to_id("<|begin|>")),
                                                                      ("<|end|>", bl.token_to_id("<|end|>"))])
    put("tokenizer_json", "byte_level.json", bl.to_str())
    sp = train(models.BPE(byte_fallback=True, unk_token="<unk>"), None,
               normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]),
               decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                  decoders.Strip(" ", 1, 0)]), ["<unk>", "<s>", "</s>"])
    j = json.loads(sp.to_str())
    vocab = j["model"]["vocab"]
    for b in range(256):  # byte-fallback pieces, as SentencePiece conversions have
        vocab.setdefault(f"<0x{b:02X}>", len(vocab))
    put("tokenizer_json", "sentencepiece_bpe.json", json.dumps(j))
    nfc = json.loads(bl.to_str())
    nfc["normalizer"] = {"type": "NFC"}
    put("tokenizer_json", "byte_level_nfc.json", json.dumps(nfc))


def text_seeds():
    for k, path in enumerate(REAL):
        t = Tokenizer.from_file(str(SHARED / path / "tokenizer.json"))
        for i, s in enumerate(CASES[::3] if k else CASES):
            put("encode", f"{k}_{i:02d}.txt", bytes([k + 8 * (i % 8)]) + s.encode())
        lines = [" ".join(map(str, t.encode(s, add_special_tokens=True).ids)) for s in CASES[:12]]
        put("detokenize", f"{k}_ids.txt", bytes([k]) + "\n".join(lines).encode() + b"\n")
        put("detokenize", f"{k}_skip.txt", bytes([k + 8]) + lines[-1].encode() + b"\n")


if __name__ == "__main__":
    shutil.rmtree(OUT, ignore_errors=True)
    safetensors_seeds()
    index_seeds()
    config_seeds()
    tokenizer_seeds()
    text_seeds()
    for d in sorted(OUT.iterdir()):
        print(f"{d.name}: {len(list(d.iterdir()))} seeds")
