#!/usr/bin/env python3
"""qwen2 and qwen3 GGUF files for the GGUF model loader -> testdata/gguf/tiny-{qwen2,qwen3}.gguf.

The committed tiny random checkpoints testdata/models/tiny-qwen2 and tiny-qwen3 written as GGUF the way
llama.cpp's convert_hf_to_gguf.py writes Qwen2/Qwen3 models: gguf-py's GGUFWriter, its own tensor-name map
(gguf.get_tensor_name_map), the <arch>.* hyper-parameter keys, no q/k row permutation (these architectures
rotate in HF order), F32 tensors, no output.weight when the embeddings are tied. As a check that the files
are real GGUF models, transformers loads each one and its logits on the ids of testdata/forward/<model>.json
must equal the transformers logits committed in testdata/forward/<model>.bin (qwen2 only: transformers' GGUF
loader ignores qwen3.attention.key_length, and tiny-qwen3's head_dim 16 is not hidden/heads) (which tests/model/
test_gguf_model.cpp compares llmopt's logits of the .gguf with).
Usage: python3 scripts/golden/gguf_arch_golden.py      Needs: numpy, safetensors, gguf (torch, transformers for the check).
"""
import json
from pathlib import Path

import numpy as np
import gguf
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "gguf"
ARCH = {"qwen2": gguf.MODEL_ARCH.QWEN2, "qwen3": gguf.MODEL_ARCH.QWEN3}


def write(model: str) -> Path:
    src = ROOT / "testdata" / "models" / model
    cfg = json.loads((src / "config.json").read_text())
    arch = cfg["model_type"]
    tensors = load_file(str(src / "model.safetensors"))
    names = gguf.get_tensor_name_map(ARCH[arch], cfg["num_hidden_layers"])
    out = OUT / f"{model}.gguf"
    w = gguf.GGUFWriter(str(out), arch=arch)
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    w.add_name(model)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_token_list([f"<t{i}>" for i in range(cfg["vocab_size"])])  # transformers takes vocab_size from here
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    for hf in sorted(tensors):
        name = names.get_name(hf, try_suffixes=(".weight", ".bias"))
        assert name, hf
        w.add_tensor(name, np.ascontiguousarray(tensors[hf].astype(np.float32)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def check(model: str, path: Path):
    try:
        import torch
        from transformers import AutoModelForCausalLM
    except ImportError:
        print("torch/transformers absent: transformers check skipped")
        return
    g = json.loads((ROOT / "testdata" / "forward" / f"{model}.json").read_text())
    want = np.frombuffer((ROOT / "testdata" / "forward" / f"{model}.bin").read_bytes(), dtype="<f4").reshape(g["shape"])
    try:
        m = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    except RuntimeError as e:  # transformers 5.x maps no qwen3.attention.key_length: head_dim 16 != 48/4 breaks it
        print(f"{model}: transformers cannot load it ({str(e)[:60]}...); check skipped")
        return
    with torch.no_grad():
        got = m(torch.tensor([g["ids"]])).logits[0].numpy()
    d = float(np.abs(got - want).max())
    print(f"{model}: transformers on the .gguf vs on the HF checkpoint: max |dlogit| = {d:.3g}")
    assert d < 1e-4


def main():
    for model in ("tiny-qwen2", "tiny-qwen3"):
        p = write(model)
        print(f"wrote {p} ({p.stat().st_size} bytes)")
        check(model, p)


if __name__ == "__main__":
    main()
