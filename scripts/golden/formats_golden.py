#!/usr/bin/env python3
"""Golden references for formats/ (GPTQ, AWQ, compressed-tensors, GGUF) -> testdata/formats/.

Runs the formats tests with LLMOPT_GOLDEN_OUT so they write their files (and our own dequantization of
them) to a scratch dir, then checks every file with the upstream readers:
  * GPTQ: AutoGPTQ's unpacking (qlinear_cuda_old: shifts by wf, zeros + 1 & mask, the 3-bit cross-word
    recombination) and scales[g_idx] * (q - zeros[g_idx]), in numpy (float32).
  * AWQ: AutoAWQ's unpack_awq + reverse_awq_order ([0,4,1,5,2,6,3,7]) and (q - z) * s, in numpy.
  * compressed-tensors: the package's own compressor (registry by the config's "format") decompresses
    the state dict; the quantization_config is validated by its pydantic QuantizationConfig.
  * GGUF: gguf.GGUFReader reads the files; gguf.quants.quantize re-encodes the same floats (bytes must be
    equal), gguf.quants.dequantize decodes ours; the stories260K export is rebuilt with gguf.GGUFWriter
    the way convert_hf_to_gguf.py does (sentencepiece vocab, SpecialVocab, LlamaModel.permute) and the
    two files must be byte-identical; the permutation is also checked against llama2.c's original wq.
Small files are committed; large ones are recorded by size and FNV-1a 64 hash.
Usage: python3 scripts/golden/formats_golden.py [--build build-fmt]
Needs: numpy, safetensors, torch, compressed-tensors, gguf, sentencepiece.
"""
import argparse, json, os, shutil, struct, subprocess, sys, tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "formats"
STORIES = ROOT.parent / "shared" / "models" / "stories260K"
COMMIT_LIMIT = 64 * 1024  # files above this are recorded by hash only


def fnv1a64(b: bytes) -> str:
    h = 0xcbf29ce484222325
    arr = np.frombuffer(b, dtype=np.uint8)
    for x in arr.tolist():
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def f32_fnv(a: np.ndarray) -> str:
    return fnv1a64(np.ascontiguousarray(a, dtype=np.float32).tobytes())


def st_meta(path):
    with safe_open(str(path), "np") as f:
        return f.metadata()


# ---------------------------------------------------------------- GPTQ (AutoGPTQ qlinear_cuda_old)
def gptq_ref(t, bits):
    qweight = t["qweight"].view(np.uint32).astype(np.int64)
    qzeros = t["qzeros"].view(np.uint32).astype(np.int64)
    scales = t["scales"].astype(np.float32)
    g_idx = t["g_idx"].astype(np.int64)
    mask = (1 << bits) - 1
    if bits in (2, 4, 8):
        wf = np.arange(0, 32, bits, dtype=np.int64)
        zeros = (qzeros[:, :, None] >> wf[None, None, :]) & mask
        zeros = ((zeros + 1) & mask).reshape(scales.shape)
        weight = ((qweight[:, None, :] >> wf[None, :, None]) & mask).reshape(-1, qweight.shape[1])
    elif bits == 3:
        wf = np.array([[0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0],
                       [0, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31],
                       [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0]], dtype=np.int64)
        z = np.broadcast_to(qzeros.reshape(qzeros.shape[0], qzeros.shape[1] // 3, 3, 1), (qzeros.shape[0], qzeros.shape[1] // 3, 3, 12))
        z = (z >> wf[None, None]).copy()
        z[:, :, 0, 10] = (z[:, :, 0, 10] & 0x3) | ((z[:, :, 1, 0] << 2) & 0x4)
        z[:, :, 1, 11] = (z[:, :, 1, 11] & 0x1) | ((z[:, :, 2, 0] << 1) & 0x6)
        z = z & 0x7
        z = np.concatenate([z[:, :, 0, :11], z[:, :, 1, 1:12], z[:, :, 2, 1:11]], axis=2)
        zeros = ((z + 1) & mask).reshape(scales.shape)
        w = np.broadcast_to(qweight.reshape(qweight.shape[0] // 3, 3, 1, qweight.shape[1]), (qweight.shape[0] // 3, 3, 12, qweight.shape[1]))
        w = (w >> wf[None, :, :, None]).copy()
        w[:, 0, 10] = (w[:, 0, 10] & 0x3) | ((w[:, 1, 0] << 2) & 0x4)
        w[:, 1, 11] = (w[:, 1, 11] & 0x1) | ((w[:, 2, 0] << 1) & 0x6)
        w = w & 0x7
        w = np.concatenate([w[:, 0, :11], w[:, 1, 1:12], w[:, 2, 1:11]], axis=1)
        weight = w.reshape(-1, w.shape[2])
    else:
        raise ValueError(bits)
    W = scales[g_idx] * (weight - zeros[g_idx]).astype(np.float32)  # [in, out]
    return W.T.astype(np.float32)


# ---------------------------------------------------------------- AWQ (AutoAWQ utils/packing_utils.py)
AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]


def awq_unpack(q):
    shifts = np.arange(0, 32, 4, dtype=np.int64)
    v = (q.view(np.uint32).astype(np.int64)[:, :, None] >> shifts[None, None, :]).reshape(q.shape[0], -1)
    rev = np.arange(v.shape[-1]).reshape(-1, 8)[:, AWQ_REVERSE_ORDER].reshape(-1)
    return v[:, rev] & 0xF


def awq_ref(t, group_size):
    iw, iz = awq_unpack(t["qweight"]), awq_unpack(t["qzeros"])
    scales = t["scales"].astype(np.float32)
    iz = np.repeat(iz, group_size, axis=0)
    s = np.repeat(scales, group_size, axis=0)
    return ((iw - iz).astype(np.float32) * s).T.astype(np.float32)


# ---------------------------------------------------------------- compressed-tensors
def ct_ref(t, cfg, prefix):
    import torch
    from compressed_tensors.compressors.base import BaseCompressor
    from compressed_tensors.quantization import QuantizationConfig, QuantizationScheme
    known = {k: v for k, v in cfg.items() if k not in ("version", "sparsity_config", "transform_config")}
    QuantizationConfig.model_validate(known)  # raises on a wrong field or value
    scheme = QuantizationScheme.model_validate(cfg["config_groups"]["group_0"])
    comp = BaseCompressor.get_value_from_registry(cfg["format"])
    sd = {k[len(prefix):]: v for k, v in t.items()}
    out = comp.decompress(sd, scheme)["weight"]
    return out.to(torch.float32).numpy()


def ct_config_matches_package(cfg):
    """Our config vs the package's own dump of an equivalent QuantizationConfig (ignoring the version)."""
    from compressed_tensors.quantization import QuantizationConfig, QuantizationScheme
    g = cfg["config_groups"]["group_0"]
    qc = QuantizationConfig(config_groups={"group_0": QuantizationScheme.model_validate(g)}, format=cfg["format"],
                            ignore=cfg["ignore"], quantization_status="compressed")
    ref = qc.model_dump(exclude=["quant_method"])
    mine = {k: v for k, v in cfg.items() if k not in ("quant_method", "version", "sparsity_config", "transform_config")}
    diffs = [k for k in set(ref) | set(mine) if ref.get(k) != mine.get(k)]
    return diffs


# ---------------------------------------------------------------- GGUF
def gguf_field(reader, key):
    return reader.fields[key].contents()


def check_blocks(path, ours_path):
    import gguf
    r = gguf.GGUFReader(str(path))
    ours = load_file(str(ours_path))
    meta_want = {"general.architecture": "llama", "test.u32": 5, "test.i32": -7, "test.u64": 1 << 40,
                 "test.bool": True, "test.str": "h\u00e9llo", "test.str_arr": ["a", "", "\u2581x"],
                 "test.f32_arr": [1.5, -2.0], "test.i32_arr": [1, -2, 3], "general.alignment": 32}
    meta_ok = all(gguf_field(r, k) == v for k, v in meta_want.items())
    meta_ok &= abs(gguf_field(r, "test.f32") - 0.1) < 1e-7
    meta_ok &= list(r.fields.keys())[:3] == ["GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"]
    meta_ok &= [k for k in r.fields.keys() if not k.startswith("GGUF.")] == [
        "general.architecture", "test.u32", "test.i32", "test.u64", "test.f32", "test.bool", "test.str",
        "test.str_arr", "test.f32_arr", "test.i32_arr", "general.alignment"]
    tensors = {t.name: t for t in r.tensors}
    res = {}
    for name in ["F32", "F16", "Q8_0", "Q4_0", "Q4_1"]:
        t = tensors[name]
        src = np.asarray(tensors["src." + name].data, dtype=np.float32).reshape(8, 256)
        qt = gguf.GGMLQuantizationType[name]
        assert t.tensor_type == qt and list(t.shape) == [256, 8], (name, t.tensor_type, t.shape)
        want = gguf.quants.quantize(src, qt)
        same = np.asarray(want).tobytes() == np.asarray(t.data).tobytes()
        deq = gguf.quants.dequantize(np.asarray(t.data), qt).reshape(8, 256).astype(np.float32)
        d = float(np.max(np.abs(deq - ours[name].reshape(8, 256))))
        res[name] = {"bytes_equal_gguf_py_quantize": bool(same), "max_abs_diff": d, "ref_dequant_fnv": f32_fnv(deq)}
        print(f"  gguf_blocks {name}: bytes equal gguf.quants.quantize: {same}, max|d| vs ours {d:g}")
    print(f"  gguf_blocks metadata ok: {meta_ok}")
    return {"metadata_ok": bool(meta_ok), "tensors": res}


def permute(w, n_head, n_head_kv):  # convert_hf_to_gguf LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def stories_choice(g):
    for key, t in [("token_embd.weight", "Q8_0"), ("attn_q.", "Q4_0"), ("attn_k.", "Q4_1"), ("attn_v.", "Q8_0"),
                   ("attn_output.", "F16"), ("ffn_up.", "Q4_1")]:
        if key in g:
            return t
    return "Q4_0"


HF2GGUF = {"input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
           "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
           "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
           "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
           "mlp.down_proj.weight": "ffn_down.weight"}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    _, _, n, rest = hf.split(".", 3)
    return f"blk.{n}.{HF2GGUF[rest]}"


def build_reference_stories(path):
    """stories260K -> GGUF with gguf.GGUFWriter, following convert_hf_to_gguf.py for LlamaForCausalLM."""
    import gguf
    from sentencepiece import SentencePieceProcessor
    hp = json.loads((STORIES / "config.json").read_text())
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_type("model")
    w.add_name("stories260K")
    w.add_block_count(hp["num_hidden_layers"])
    w.add_context_length(hp["max_position_embeddings"])
    w.add_embedding_length(hp["hidden_size"])
    w.add_feed_forward_length(hp["intermediate_size"])
    w.add_head_count(hp["num_attention_heads"])
    w.add_head_count_kv(hp["num_key_value_heads"])
    w.add_rope_freq_base(hp["rope_theta"])
    w.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    w.add_key_length(hp["head_dim"])
    w.add_value_length(hp["head_dim"])
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_vocab_size(hp["vocab_size"])
    w.add_rope_dimension_count(hp["head_dim"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    w.add_custom_alignment(32)
    # _set_vocab_sentencepiece / _create_vocab_sentencepiece
    sp = SentencePieceProcessor()
    sp.LoadFromFile(str(STORIES / "tokenizer.model"))
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        t = gguf.TokenType.NORMAL
        if sp.IsUnknown(i): t = gguf.TokenType.UNKNOWN
        elif sp.IsControl(i): t = gguf.TokenType.CONTROL
        elif sp.IsUnused(i): t = gguf.TokenType.UNUSED
        elif sp.IsByte(i): t = gguf.TokenType.BYTE
        tokens.append(sp.IdToPiece(i).encode("utf-8")); scores.append(sp.GetScore(i)); types.append(t)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    gguf.SpecialVocab(STORIES, n_vocab=len(tokens)).add_to_gguf(w)
    # tensors
    sd = load_file(str(STORIES / "model.safetensors"))
    floats = {}
    for hf in sorted(sd):
        x = sd[hf].astype(np.float32)
        if hf.endswith("q_proj.weight"):
            x = permute(x, hp["num_attention_heads"], hp["num_attention_heads"])
        if hf.endswith("k_proj.weight"):
            x = permute(x, hp["num_attention_heads"], hp["num_key_value_heads"])
        g = gguf_name(hf)
        qt = gguf.GGMLQuantizationType[stories_choice(g)]
        if x.ndim == 1:
            qt = gguf.GGMLQuantizationType.F32
        elif x.shape[-1] % 32 != 0 and qt not in (gguf.GGMLQuantizationType.F16,):
            qt = gguf.GGMLQuantizationType.F16  # convert_hf_to_gguf: QuantError -> fallback to F16
        data = gguf.quants.quantize(x, qt)
        w.add_tensor(g, data, raw_dtype=qt)
        floats[g] = x
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return floats, tokens, scores, types


def check_stories(path, ours_path, tmp):
    import gguf
    ref_path = tmp / "stories260K.gguf-py.gguf"
    floats, tokens, scores, types = build_reference_stories(ref_path)
    ours_bytes, ref_bytes = path.read_bytes(), ref_path.read_bytes()
    same = ours_bytes == ref_bytes
    if not same:
        n = min(len(ours_bytes), len(ref_bytes))
        first = next((i for i in range(n) if ours_bytes[i] != ref_bytes[i]), n)
        print(f"  stories260K: differs from gguf-py's file at byte {first} (sizes {len(ours_bytes)} vs {len(ref_bytes)})")
    r = gguf.GGUFReader(str(path))
    hp = json.loads((STORIES / "config.json").read_text())
    meta_ok = (gguf_field(r, "general.architecture") == "llama" and gguf_field(r, "llama.block_count") == 5
               and gguf_field(r, "llama.embedding_length") == 64 and gguf_field(r, "llama.feed_forward_length") == 172
               and gguf_field(r, "llama.attention.head_count") == 8 and gguf_field(r, "llama.attention.head_count_kv") == 4
               and gguf_field(r, "llama.context_length") == 512 and gguf_field(r, "llama.rope.dimension_count") == 8
               and abs(gguf_field(r, "llama.attention.layer_norm_rms_epsilon") - 1e-5) < 1e-12
               and gguf_field(r, "llama.rope.freq_base") == 10000.0
               and gguf_field(r, "tokenizer.ggml.model") == "llama"
               and [t.encode() for t in gguf_field(r, "tokenizer.ggml.tokens")] == tokens
               and np.allclose(gguf_field(r, "tokenizer.ggml.scores"), scores, atol=0)
               and gguf_field(r, "tokenizer.ggml.token_type") == [int(t) for t in types]
               and gguf_field(r, "tokenizer.ggml.bos_token_id") == 1 and gguf_field(r, "tokenizer.ggml.eos_token_id") == 2
               and gguf_field(r, "tokenizer.ggml.unknown_token_id") == 0
               and gguf_field(r, "tokenizer.ggml.add_bos_token") is True
               and gguf_field(r, "general.alignment") == 32)
    ours = load_file(str(ours_path))
    res = {}
    for t in r.tensors:
        deq = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).astype(np.float32).reshape(floats[t.name].shape)
        res[t.name] = {"type": t.tensor_type.name, "max_abs_diff": float(np.max(np.abs(deq - ours[t.name].reshape(deq.shape)))),
                       "ref_dequant_fnv": f32_fnv(deq),
                       "max_abs_err_vs_fp32": float(np.max(np.abs(deq - floats[t.name])))}
    # The q permutation is the inverse of HF's: layer 0 wq must equal llama2.c's original (interleaved) wq.
    raw = (ROOT.parent / "shared" / "models" / "llama2c-format" / "stories260K.bin").read_bytes()
    dim, hidden, nl, nh, nkv, vocab, seq = struct.unpack("7i", raw[:28])
    off = 28 + 4 * (abs(vocab) * dim + nl * dim)
    wq0 = np.frombuffer(raw, dtype=np.float32, count=dim * dim, offset=off).reshape(dim, dim)
    llama2c_ok = bool(np.array_equal(wq0, floats["blk.0.attn_q.weight"]))
    print(f"  stories260K: bytes equal gguf-py writer: {same}; metadata ok: {meta_ok}; permuted q == llama2.c wq: {llama2c_ok}; "
          f"max|d| vs ours {max(v['max_abs_diff'] for v in res.values()):g}")
    return {"size": len(ours_bytes), "file_fnv": fnv1a64(ours_bytes), "bytes_equal_gguf_py_writer": bool(same),
            "metadata_ok": bool(meta_ok), "permuted_q_equals_llama2c_wq": llama2c_ok, "tensors": res}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build-fmt"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="formats-golden-"))
    env = dict(os.environ, LLMOPT_GOLDEN_OUT=str(tmp))
    for t in ["formats_test_gptq_awq_pack", "formats_test_compressed_tensors", "formats_test_gguf"]:
        subprocess.run([str(Path(args.build) / "tests" / t)], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    OUT.mkdir(parents=True, exist_ok=True)
    for f in OUT.glob("*.safetensors"):
        f.unlink()
    golden = {"cases": {}, "gguf": {}}
    for f in sorted(tmp.glob("*.safetensors")):
        if f.name.endswith(".ours.safetensors"):
            continue
        name = f.stem
        if name.startswith("gguf_") or name.startswith("stories"):
            continue
        from safetensors.torch import load_file as load_torch
        tt = load_torch(str(f))  # torch: the compressed-tensors cases may hold bf16 scales
        t = {k: (v.numpy() if v.dtype != __import__("torch").bfloat16 else None) for k, v in tt.items()}
        cfg = json.loads(st_meta(f)["quantization_config"])
        prefix = next(iter(t)).rsplit(".", 1)[0] + "."
        loc = {k[len(prefix):]: v for k, v in t.items()}
        entry = {"file": f.name, "quantization_config": cfg}
        if cfg["quant_method"] == "gptq":
            ref = gptq_ref(loc, cfg["bits"])
        elif cfg["quant_method"] == "awq":
            ref = awq_ref(loc, cfg["group_size"])
        else:
            ref = ct_ref(tt, cfg, prefix)
            entry["config_fields_differing_from_package_dump"] = ct_config_matches_package(cfg)
        ours = load_file(str(tmp / f"{name}.ours.safetensors"))["weight"]
        if cfg["quant_method"] == "compressed-tensors":
            # the package multiplies in the scales' dtype; compare with ours rounded the same way
            import torch
            sdt = tt[prefix + "weight_scale"].dtype
            entry["max_abs_diff_before_rounding_to_scale_dtype"] = float(np.max(np.abs(ref - ours)))
            ours = torch.from_numpy(ours).to(sdt).float().numpy()
        d = float(np.max(np.abs(ref - ours)))
        entry.update({"max_abs_diff": d, "ref_dequant_fnv": f32_fnv(ref), "file_fnv": fnv1a64(f.read_bytes())})
        golden["cases"][name] = entry
        print(f"  {name}: max|d| reference reader vs ours = {d:g}" +
              (f", config diffs vs package: {entry.get('config_fields_differing_from_package_dump')}" if "config_fields_differing_from_package_dump" in entry else ""))
        shutil.copy(f, OUT / f.name)
    golden["gguf"]["gguf_blocks"] = check_blocks(tmp / "gguf_blocks.gguf", tmp / "gguf_blocks.ours.safetensors")
    bl = tmp / "gguf_blocks.gguf"
    golden["gguf"]["gguf_blocks"].update({"size": bl.stat().st_size, "file_fnv": fnv1a64(bl.read_bytes())})
    shutil.copy(bl, OUT / bl.name)
    golden["gguf"]["stories260K"] = check_stories(tmp / "stories260K.gguf", tmp / "stories260K.ours.safetensors", tmp)
    import gguf, compressed_tensors
    golden["versions"] = {"gguf": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0",
                          "compressed_tensors": compressed_tensors.__version__, "numpy": np.__version__}
    (OUT / "formats_golden.json").write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(tmp)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
