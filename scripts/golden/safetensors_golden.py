#!/usr/bin/env python3
"""Golden data for formats/safetensors and lib/core/dtype, made with the upstream `safetensors` package.

Steps (from the repository root):
  1. python3 scripts/golden/safetensors_golden.py make
       testdata/safetensors/py_all_dtypes.safetensors   every dtype, 0-d scalars, empty tensors, __metadata__
       testdata/safetensors/py_sharded/                  two shards + model.safetensors.index.json
       testdata/safetensors/py_manifest.json             per tensor: dtype, shape, offsets, sha256, hex bytes,
                                                         and the float32 value bits (numpy / torch conversions)
       testdata/safetensors/dtype_conversions.json       f32->f16 (numpy), f32->bf16 (torch), full f16/bf16
                                                         ->f32 table checksums, f8 -> f32 tables (torch)
  2. LLMOPT_WRITE_TESTDATA=1 build/tests/formats_test_safetensors
       our Writer re-writes the tensors of py_all_dtypes (other order, other metadata) to
       testdata/safetensors/ours_all_dtypes.safetensors
  3. python3 scripts/golden/safetensors_golden.py verify
       reads ours_all_dtypes.safetensors with `safetensors` and records, per tensor, that its bytes have the
       sha256 of the Python-made tensor of the same name -> testdata/safetensors/ours_verify.json
Needs numpy, safetensors and torch (for bfloat16 / float8 reference conversions).
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import torch
from safetensors import TensorSpec, safe_open, serialize_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "testdata", "safetensors")

NP_DTYPE = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16, "I64": np.int64,
            "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_,
            "F8_E4M3": np.uint8, "F8_E5M2": np.uint8}
SPEC_NAME = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64",
             "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
             "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}
TORCH_DTYPE = {"BF16": torch.bfloat16, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2}


def f32_bits(x):
    return [int(v) for v in np.asarray(x, dtype=np.float32).reshape(-1).view(np.uint32)]


def to_f32(dtype, arr):
    """Reference float32 value of every element: numpy casts, torch for bf16/f8 (held as raw bits)."""
    if dtype in TORCH_DTYPE:
        flat = arr.reshape(-1)
        raw = torch.from_numpy((flat.view(np.int16) if dtype == "BF16" else flat).copy())
        return raw.view(TORCH_DTYPE[dtype]).float().numpy()
    return arr.reshape(-1).astype(np.float32)


def tensors_all_dtypes():
    """name -> (dtype, array); bf16 and f8 tensors are their raw bit patterns."""
    nan, inf = float("nan"), float("inf")
    t = {}
    t["f64.values"] = ("F64", np.array([[0.0, -0.0, 1.5, -2.25, inf], [-inf, nan, 1e-310, 1e300, np.pi]]))
    t["f32.values"] = ("F32", np.array([[0, -0.0, 1, -1], [3.14159, 1e-40, 3.4e38, inf], [-inf, nan, 1e-3, -7.5]],
                                       dtype=np.float32))
    t["f16.values"] = ("F16", np.array([65504, -65504, 6e-8, 6.1e-5, 1, -0.0, 0.333, nan, inf, -inf, 2.5, 1024],
                                       dtype=np.float16).reshape(2, 2, 3))
    t["bf16.values"] = ("BF16", np.array([0x3F80, 0xBF80, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x4049, 0x0000, 0x8000,
                                          0x7F7F, 0x3EAB, 0xC2F7], dtype=np.uint16).reshape(3, 4))
    t["i64.values"] = ("I64", np.array([-2**63, 2**63 - 1, -1, 0, 1, 12345678901234], dtype=np.int64))
    t["i32.values"] = ("I32", np.array([[-2**31, 2**31 - 1, -1], [0, 16777217, -123456]], dtype=np.int32))
    t["i16.values"] = ("I16", np.array([-32768, 32767, -1, 0, 1, 300], dtype=np.int16).reshape(3, 2))
    t["i8.values"] = ("I8", np.array([-128, 127, -1, 0, 1, 42, -42], dtype=np.int8))
    t["u8.all"] = ("U8", np.arange(256, dtype=np.uint8).reshape(16, 16))
    t["bool.values"] = ("BOOL", np.array([True, False, True, True, False]))
    t["f8_e4m3.all"] = ("F8_E4M3", np.arange(256, dtype=np.uint8))
    t["f8_e5m2.all"] = ("F8_E5M2", np.arange(256, dtype=np.uint8).reshape(16, 16))
    t["scalar.f32"] = ("F32", np.array(3.5, dtype=np.float32))  # 0-d
    t["scalar.i64"] = ("I64", np.array(-7, dtype=np.int64))
    t["empty.f16"] = ("F16", np.zeros((0,), dtype=np.float16))
    t["empty.bf16"] = ("BF16", np.zeros((3, 0), dtype=np.uint16))
    t["empty.u8"] = ("U8", np.zeros((0, 4), dtype=np.uint8))
    return t


def save(path, tensors, metadata):
    specs, alive = {}, []
    for name, (dtype, arr) in tensors.items():
        arr = np.require(arr, requirements="C")  # keeps 0-d arrays 0-d, unlike np.ascontiguousarray
        alive.append(arr)
        specs[name] = TensorSpec(dtype=SPEC_NAME[dtype], shape=list(arr.shape), data_ptr=arr.ctypes.data,
                                 data_len=arr.nbytes)
    serialize_file(specs, path, metadata=metadata)  # `alive` holds the buffers until here


def describe(path, tensors):
    """Manifest entry of a Python-made file: header facts from the file, bytes and values from the arrays."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    meta = header.pop("__metadata__", {})
    out = {"metadata": meta, "header_len": n, "tensors": {},
           "order": sorted(header, key=lambda k: tuple(header[k]["data_offsets"]))}
    for name, info in header.items():
        dtype, arr = tensors[name]
        raw = arr.tobytes()  # C order
        assert info["dtype"] == dtype and info["shape"] == list(arr.shape)
        out["tensors"][name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": info["data_offsets"],
                                "sha256": hashlib.sha256(raw).hexdigest(), "hex": raw.hex(),
                                "f32_bits": f32_bits(to_f32(dtype, np.require(arr, requirements="C")))}
    # Read back with the package itself: every tensor must have the bytes we gave it.
    with safe_open(path, framework="pt") as f:
        assert f.metadata() == (meta or None), (f.metadata(), meta)
        for name in f.keys():
            got = f.get_tensor(name).contiguous().view(-1).view(torch.uint8).numpy().tobytes()
            assert hashlib.sha256(got).hexdigest() == out["tensors"][name]["sha256"], name
    return out


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for x in b:
        h = ((h ^ x) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fnv1a64_np(b):  # the same, fast enough for 256 KiB
    return fnv1a64(memoryview(b).cast("B"))


def tricky_f32():
    s = lambda v: struct.unpack("<I", struct.pack("<f", v))[0]
    vals = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 3.0, 65504.0, 65505.0, 65519.99, 65520.0, 65536.0, 1e10, -1e10,
            float("inf"), float("-inf"), 2**-14, 2**-14 * (1 - 2**-11), 2**-24, 2**-25, 2**-25 * 1.0001,
            3 * 2**-25, 2**-26, 1e-8, 1023 * 2**-24, 1023.5 * 2**-24, 1 + 2**-11, 1 + 3 * 2**-11,
            1 + 2**-11 + 2**-23, np.pi, np.e, 1 / 3, 0.1, -0.1, 1e-3, 1e38, 3.4e38, 1.17549435e-38, -2.5, 100.0,
            -65504.0, 0.999, 1.001, 7e-5, 6.09e-5, 3e-7, -3e-7, 12345.678, -0.0001]
    bits = [s(np.float32(v)) for v in vals]
    bits += [0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0x7F7FFFFF, 0x7F7F7FFF, 0x7F7F8000, 0x00000001,
             0x00008000, 0x00018000, 0x807FFFFF, 0xFF7FFFFF, 0x477FEFFF, 0x477FF000,
             0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF]  # bf16 ties, f32 denormals, f16 max edge, NaNs
    rng = np.random.default_rng(1234)
    exps = rng.integers(100, 150, size=160)  # exponents around the f16 range, random mantissas and signs
    bits += [int((int(rng.integers(0, 2)) << 31) | (int(e) << 23) | int(rng.integers(0, 1 << 23))) for e in exps]
    return bits


def dtype_conversions():
    bits = np.array(tricky_f32(), dtype=np.uint32)
    f = bits.view(np.float32)
    f16 = f.astype(np.float16).view(np.uint16)
    bf16 = torch.from_numpy(f.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    all16 = np.arange(65536, dtype=np.uint16)
    f16_table = all16.view(np.float16).astype(np.float32)
    bf16_table = torch.from_numpy(all16.view(np.int16).copy()).view(torch.bfloat16).float().numpy()
    all8 = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    return {
        "f32_to_f16": [[int(a), int(b)] for a, b in zip(bits, f16)],    # numpy astype(float16)
        "f32_to_bf16": [[int(a), int(b)] for a, b in zip(bits, bf16)],  # torch .to(bfloat16)
        "f16_to_f32_table_fnv1a64": str(fnv1a64_np(f16_table.astype("<f4").tobytes())),  # numpy, all 65536
        "bf16_to_f32_table_fnv1a64": str(fnv1a64_np(bf16_table.astype("<f4").tobytes())),  # torch, all 65536
        "f8e4m3_to_f32": f32_bits(all8.view(torch.float8_e4m3fn).float().numpy()),  # torch
        "f8e5m2_to_f32": f32_bits(all8.view(torch.float8_e5m2).float().numpy()),
    }


def make():
    os.makedirs(os.path.join(OUT, "py_sharded"), exist_ok=True)
    manifest = {"safetensors_version": __import__("safetensors").__version__, "files": {}}
    # One metadata key: the Rust writer orders metadata keys randomly (HashMap), so the file is reproducible.
    t = tensors_all_dtypes()
    path = os.path.join(OUT, "py_all_dtypes.safetensors")
    save(path, t, {"format": "pt"})
    manifest["files"]["py_all_dtypes.safetensors"] = describe(path, t)

    # A sharded checkpoint the way transformers names it.
    rng = np.random.default_rng(7)
    layers = {f"model.layers.{i}.mlp.weight": ("F32", rng.standard_normal((4, 6)).astype(np.float32))
              for i in range(3)}
    layers["model.embed_tokens.weight"] = ("BF16", rng.integers(0, 65536, (5, 4)).astype(np.uint16))
    layers["model.norm.weight"] = ("F16", rng.standard_normal(4).astype(np.float16))
    shards = {"model-00001-of-00002.safetensors": ["model.embed_tokens.weight", "model.layers.0.mlp.weight",
                                                   "model.layers.1.mlp.weight"],
              "model-00002-of-00002.safetensors": ["model.layers.2.mlp.weight", "model.norm.weight"]}
    weight_map, total = {}, 0
    for fname, names in shards.items():
        part = {n: layers[n] for n in names}
        p = os.path.join(OUT, "py_sharded", fname)
        save(p, part, {"format": "pt"})
        manifest["files"]["py_sharded/" + fname] = describe(p, part)
        for n in names:
            weight_map[n] = fname
            total += layers[n][1].nbytes
    with open(os.path.join(OUT, "py_sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")
    manifest["sharded_weight_map"] = weight_map

    with open(os.path.join(OUT, "py_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    with open(os.path.join(OUT, "dtype_conversions.json"), "w") as f:
        json.dump(dtype_conversions(), f)
        f.write("\n")


def verify():
    manifest = json.load(open(os.path.join(OUT, "py_manifest.json")))
    want = manifest["files"]["py_all_dtypes.safetensors"]["tensors"]
    path = os.path.join(OUT, "ours_all_dtypes.safetensors")
    raw = open(path, "rb").read()
    result = {"file": "ours_all_dtypes.safetensors", "file_size": len(raw),
              "file_sha256": hashlib.sha256(raw).hexdigest(), "file_fnv1a64": str(fnv1a64_np(raw)),
              "safetensors_version": __import__("safetensors").__version__, "tensors": {}}
    with safe_open(path, framework="pt") as f:
        result["metadata"] = dict(sorted((f.metadata() or {}).items()))  # the Rust side orders keys at random
        names = set(f.keys())
        for name in sorted(names):
            x = f.get_tensor(name)
            got = x.contiguous().view(-1).view(torch.uint8).numpy().tobytes()
            dtype = {v: k for k, v in SPEC_NAME.items()}[str(x.dtype).removeprefix("torch.")]
            ok = (hashlib.sha256(got).hexdigest() == want[name]["sha256"] and dtype == want[name]["dtype"]
                  and list(x.shape) == want[name]["shape"])
            result["tensors"][name] = {"dtype": dtype, "shape": list(x.shape),
                                       "sha256": hashlib.sha256(got).hexdigest(), "bit_exact": ok}
    result["same_tensor_names"] = names == set(want)
    result["all_bit_exact"] = result["same_tensor_names"] and all(v["bit_exact"] for v in result["tensors"].values())
    with open(os.path.join(OUT, "ours_verify.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print("all_bit_exact:", result["all_bit_exact"], "tensors:", len(result["tensors"]))
    return 0 if result["all_bit_exact"] else 1


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "make"
    if cmd == "make":
        make()
    elif cmd == "verify":
        sys.exit(verify())
    else:
        sys.exit(f"usage: {sys.argv[0]} make|verify")
