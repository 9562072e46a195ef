#!/usr/bin/env python3
"""Convert a llama-architecture GGUF file into a Hugging Face Llama directory that llmopt loads.

Usage: python3 scripts/bench/gguf_to_hf.py IN.gguf OUT_DIR [--dtype f32|bf16]

Writes OUT_DIR/{config.json, generation_config.json, model.safetensors, tokenizer.json,
tokenizer_config.json, ...}. Every tensor is dequantized with the `gguf` package's own
gguf.quants.dequantize (Q4_1, Q8_0, F16, F32, ...), renamed to HF names and reshaped to HF's
[out, in] layout; the q_proj/k_proj row permutation that llama.cpp's converter applies for its
interleaved RoPE is undone so HF's rotate_half RoPE is correct. The tokenizer is rebuilt from the
GGUF metadata by transformers' GGUF tokenizer conversion (needs `transformers`, not torch).
The directory is written to OUT_DIR.tmp and renamed into place at the end.

Requires: numpy, gguf, transformers (tokenizer only).
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np
import gguf

LAYER = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}
TOP = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def hf_name(name):
    parts = name.split(".")
    if len(parts) == 2 and parts[0] in TOP:
        return f"{TOP[parts[0]]}.{parts[1]}"
    if len(parts) == 4 and parts[0] == "blk" and parts[2] in LAYER:
        return f"model.layers.{int(parts[1])}.{LAYER[parts[2]]}.{parts[3]}"
    return None


def undo_rope_permute(w, n_head):
    """Inverse of convert_hf_to_gguf's permute: within each head, GGUF row 2j+t holds HF row t*hd/2+j."""
    rows = w.shape[0]
    if rows % n_head or (rows // n_head) % 2:
        raise SystemExit(f"cannot un-permute {rows} rows over {n_head} heads")
    hd = rows // n_head
    return np.ascontiguousarray(w.reshape(n_head, hd // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns (round to nearest even; NaN kept NaN)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        rounded[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return rounded


def write_safetensors(path, tensors, dtype):
    """Minimal safetensors writer: 8-byte LE header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        arr = tensors[name]
        data = (to_bf16_bits(arr) if dtype == "bf16" else np.ascontiguousarray(arr, dtype="<f4")).tobytes()
        header[name] = {"dtype": "BF16" if dtype == "bf16" else "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    hbytes = json.dumps(header, separators=(",", ":")).encode()
    hbytes += b" " * (-len(hbytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gguf_file")
    ap.add_argument("out_dir")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    args = ap.parse_args()

    reader = gguf.GGUFReader(args.gguf_file)
    arch = field(reader, "general.architecture")
    if arch != "llama":
        raise SystemExit(f"{args.gguf_file}: architecture {arch!r} is not llama")
    meta = lambda k, d=None: field(reader, f"llama.{k}", d)
    n_layer = int(meta("block_count"))
    hidden = int(meta("embedding_length"))
    n_head = int(meta("attention.head_count"))
    n_kv = int(meta("attention.head_count_kv", n_head))
    head_dim = int(meta("attention.key_length", hidden // n_head))
    if int(meta("rope.dimension_count", head_dim)) != head_dim:
        raise SystemExit("partial rotary (rope.dimension_count != head_dim) is not supported")
    if field(reader, "llama.rope.scaling.type") not in (None, "none"):
        raise SystemExit("GGUF rope scaling metadata is not supported by this converter")

    tensors = {}
    for t in reader.tensors:
        name = hf_name(t.name)
        if name is None:
            if t.name == "rope_freqs.weight":
                raise SystemExit("rope_freqs (llama3 rope scaling) is not supported by this converter")
            print(f"skipping unknown tensor {t.name}", file=sys.stderr)
            continue
        w = np.asarray(gguf.quants.dequantize(t.data, t.tensor_type), dtype=np.float32)
        shape = tuple(int(d) for d in reversed(t.shape))  # GGUF lists dims innermost first
        w = w.reshape(shape)
        if t.name.endswith("attn_q.weight"):
            w = undo_rope_permute(w, n_head)
        elif t.name.endswith("attn_k.weight"):
            w = undo_rope_permute(w, n_kv)
        tensors[name] = w

    emb = tensors["model.embed_tokens.weight"]
    vocab = int(meta("vocab_size", emb.shape[0]))
    tied = "lm_head.weight" not in tensors
    inter = tensors["model.layers.0.mlp.gate_proj.weight"].shape[0]
    expect = {"model.embed_tokens.weight": (vocab, hidden), "model.norm.weight": (hidden,)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        expect.update({p + "self_attn.q_proj.weight": (n_head * head_dim, hidden),
                       p + "self_attn.k_proj.weight": (n_kv * head_dim, hidden),
                       p + "self_attn.v_proj.weight": (n_kv * head_dim, hidden),
                       p + "self_attn.o_proj.weight": (hidden, n_head * head_dim),
                       p + "mlp.gate_proj.weight": (inter, hidden), p + "mlp.up_proj.weight": (inter, hidden),
                       p + "mlp.down_proj.weight": (hidden, inter),
                       p + "input_layernorm.weight": (hidden,), p + "post_attention_layernorm.weight": (hidden,)})
    if not tied:
        expect["lm_head.weight"] = (vocab, hidden)
    for k, s in expect.items():
        if k not in tensors:
            raise SystemExit(f"missing tensor {k}")
        if tensors[k].shape != s:
            raise SystemExit(f"{k}: shape {tensors[k].shape}, expected {s}")

    bos = field(reader, "tokenizer.ggml.bos_token_id")
    eos = field(reader, "tokenizer.ggml.eos_token_id")
    pad = field(reader, "tokenizer.ggml.padding_token_id")
    torch_dtype = "bfloat16" if args.dtype == "bf16" else "float32"
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False, "hidden_act": "silu",
        "hidden_size": hidden, "intermediate_size": int(meta("feed_forward_length", inter)),
        "num_hidden_layers": n_layer, "num_attention_heads": n_head, "num_key_value_heads": n_kv,
        "head_dim": head_dim, "vocab_size": vocab,
        "max_position_embeddings": int(meta("context_length", 2048)),
        "rms_norm_eps": float(meta("attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": float(meta("rope.freq_base", 10000.0)), "rope_scaling": None,
        "tie_word_embeddings": tied, "torch_dtype": torch_dtype,
        "initializer_range": 0.02, "pretraining_tp": 1, "use_cache": True,
    }
    gen = {}
    if bos is not None:
        config["bos_token_id"] = gen["bos_token_id"] = int(bos)
    if eos is not None:
        config["eos_token_id"] = gen["eos_token_id"] = int(eos)
    if pad is not None:
        config["pad_token_id"] = gen["pad_token_id"] = int(pad)

    out = os.path.abspath(args.out_dir.rstrip("/"))
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        # Tokenizer first: it is the step most likely to fail (missing transformers).
        from transformers import AutoTokenizer
        gpath = os.path.abspath(args.gguf_file)
        tok = AutoTokenizer.from_pretrained(os.path.dirname(gpath), gguf_file=os.path.basename(gpath))
        tok.save_pretrained(tmp)
        if not os.path.exists(os.path.join(tmp, "tokenizer.json")):
            raise SystemExit("transformers did not write tokenizer.json")

        write_safetensors(os.path.join(tmp, "model.safetensors"), tensors, args.dtype)
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
            f.write("\n")
        with open(os.path.join(tmp, "generation_config.json"), "w") as f:
            json.dump(gen, f, indent=2)
            f.write("\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(out):
        old = out + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)
    else:
        os.rename(tmp, out)
    n_params = sum(int(np.prod(a.shape)) for a in tensors.values())
    print(f"wrote {out}: {len(tensors)} tensors, {n_params} parameters, {args.dtype}, "
          f"tie_word_embeddings={tied}")


if __name__ == "__main__":
    main()
