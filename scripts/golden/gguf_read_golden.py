#!/usr/bin/env python3
"""Golden references for the GGUF reader (formats/gguf_read.h) -> testdata/gguf/.

  * pywriter.gguf: written by gguf-py's GGUFWriter with every metadata value type (each scalar type, strings,
    arrays of each, an array of arrays), a custom alignment of 64, and tensors of several types (F32, F16, BF16
    and Q8_0 through gguf.quants.quantize, Q4_K from raw valid blocks, a 3-D one). pywriter.json lists what
    gguf.GGUFReader reads back: every key with its type and value, every tensor's name, shape (outermost
    first), type, offset, and its gguf.quants.dequantize'd values.
  * smollm2_expect.json: from the real SmolLM2-135M-Instruct.Q4_1.gguf under ../shared (GGUFReader): version,
    counts, alignment, data offset, a few metadata values, every tensor's name/shape/type/offset, and for
    three tensors the sum and first values of their dequantization.
Usage: python3 scripts/golden/gguf_read_golden.py      Needs: numpy, gguf.
"""
import json
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V
from gguf.quants import dequantize, quantize

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "testdata" / "gguf"
SMOL = ROOT.parent / "shared" / "models" / "smollm2-135m-instruct-gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def field_json(f):
    """A ReaderField as {"type": [outer, inner...], "value": ...} (floats as Python floats)."""
    v = f.contents()
    return {"types": [t.name for t in f.types], "value": v}


NESTED = [[1, 2], [3]]  # GGUFReader's contents() flattens nested arrays; pywriter.json records the input


def write_pywriter(path):
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_custom_alignment(64)
    w.add_uint8("t.u8", 250)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -32000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float32("t.f32", 0.1)
    w.add_float64("t.f64", 1e300)
    w.add_bool("t.bool_t", True)
    w.add_bool("t.bool_f", False)
    w.add_string("t.str", "h\u00e9llo \u2581world")
    w.add_key_value("t.arr_u8", [1, 2, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("t.arr_i16", [-1, 2, -3], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("t.arr_u64", [0, 2**40], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("t.arr_f64", [0.5, -1e-300], V.ARRAY, sub_type=V.FLOAT64)
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_f32", [1.5, -2.25])
    w.add_array("t.arr_bool", [True, False, True])
    w.add_array("t.arr_str", ["a", "", "\u2581x"])
    w.add_array("t.arr_arr", NESTED)
    tensors = {}
    x = rng.standard_normal((4, 64)).astype(np.float32)
    tensors["dense.f32"] = (x, T.F32)
    tensors["dense.f16"] = (x.astype(np.float16), T.F16)
    tensors["q.bf16"] = (quantize(x, T.BF16), T.BF16)
    tensors["q.q8_0"] = (quantize(x, T.Q8_0), T.Q8_0)
    kraw = rng.integers(0, 256, (2, 144), dtype=np.uint8)
    kraw[:, 0:4] = np.array([0.01, 0.002, -0.03, 0.001], dtype=np.float16).view(np.uint8).reshape(2, 4)
    tensors["q.q4_k"] = (kraw, T.Q4_K)
    tensors["vec"] = (np.arange(7, dtype=np.float32), T.F32)
    tensors["cube"] = (rng.standard_normal((2, 3, 32)).astype(np.float32), T.F32)
    for name, (data, t) in tensors.items():
        w.add_tensor(name, data, raw_dtype=t if t in (T.BF16, T.Q8_0, T.Q4_K) else None)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def describe(path, values_of=None, summarize=()):
    r = gguf.GGUFReader(str(path))
    out = {"kv": {}, "tensors": []}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            out[k[5:]] = int(f.contents())
            continue
        if k.startswith("tokenizer.ggml.") and k not in ("tokenizer.ggml.model", "tokenizer.ggml.pre") \
                and not k.endswith("_id") and not k.startswith("tokenizer.ggml.add"):
            tok = f.contents()
            out["kv"][k] = {"types": [t.name for t in f.types], "len": len(tok), "first": tok[:3], "last": tok[-1]}
            continue
        out["kv"][k] = field_json(f)
    if "t.arr_arr" in out["kv"]:
        out["kv"]["t.arr_arr"]["value"] = NESTED
    out["alignment"] = r.alignment
    out["data_offset"] = r.data_offset
    for t in r.tensors:
        e = {"name": t.name, "shape": [int(d) for d in reversed(t.shape.tolist())], "type": t.tensor_type.name,
             "offset": int(t.data_offset) - r.data_offset, "nbytes": int(t.n_bytes)}
        if values_of is not None or t.name in summarize:
            y = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
            if values_of is not None:
                e["values"] = [float(v) for v in y]
            else:
                e["sum"] = float(y.astype(np.float64).sum())
                e["first"] = [float(v) for v in y[:8]]
        out["tensors"].append(e)
    return out


def dump(obj, **kw):
    return json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else o.tolist(), **kw) + "\n"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    py = OUT / "pywriter.gguf"
    write_pywriter(py)
    (OUT / "pywriter.json").write_text(dump(describe(py, values_of=True)))
    print(f"wrote {py} ({py.stat().st_size} bytes)")
    if SMOL.exists():
        d = describe(SMOL, summarize=("token_embd.weight", "blk.0.attn_q.weight", "blk.29.ffn_down.weight",
                                      "output_norm.weight"))
        d["kv"].pop("tokenizer.chat_template", None)
        (OUT / "smollm2_expect.json").write_text(dump(d))
        print(f"wrote smollm2_expect.json ({len(d['tensors'])} tensors)")
    else:
        print(f"{SMOL} absent: smollm2_expect.json not regenerated")


if __name__ == "__main__":
    main()
