#!/usr/bin/env python3
"""Golden block codecs for formats/gguf_blocks.cpp -> testdata/gguf/blocks/.

For every ggml type the reader knows, random but valid blocks: random bytes everywhere, with the fp16 scale
and min fields overwritten by finite values of moderate size (random sign, magnitude 1e-4..3, some zeros).
<TYPE>.blocks holds the raw bytes, <TYPE>.f32 gguf.quants.dequantize of them (little-endian fp32), and
blocks.json the element counts. tests/formats/test_gguf_blocks.cpp asserts our dequantize_row equals the
floats bit for bit.
Usage: python3 scripts/golden/gguf_blocks_golden.py      Needs: numpy, gguf.
"""
import json
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T, GGML_QUANT_SIZES
from gguf.quants import dequantize

OUT = Path(__file__).resolve().parents[2] / "testdata" / "gguf" / "blocks"
# type -> (number of blocks, byte offsets of the fp16 fields within a block)
TYPES = {
    T.Q8_0: (192, [0]), T.Q4_0: (192, [0]), T.Q4_1: (192, [0, 2]), T.Q5_0: (192, [0]), T.Q5_1: (192, [0, 2]),
    T.Q2_K: (40, [80, 82]), T.Q3_K: (40, [108]), T.Q4_K: (40, [0, 2]), T.Q5_K: (40, [0, 2]), T.Q6_K: (40, [208]),
}


def moderate_f16(rng, n):
    v = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-4, 0.5, n)
    v[rng.random(n) < 0.05] = 0.0
    return v.astype(np.float16)


def main():
    rng = np.random.default_rng(20261202)
    OUT.mkdir(parents=True, exist_ok=True)
    index = {}
    for t, (n_blocks, f16_at) in TYPES.items():
        elems, nbytes = GGML_QUANT_SIZES[t]
        raw = rng.integers(0, 256, (n_blocks, nbytes), dtype=np.uint8)
        for off in f16_at:
            raw[:, off:off + 2] = moderate_f16(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
        y = dequantize(raw.reshape(-1), t).astype("<f4")
        assert y.size == n_blocks * elems and np.isfinite(y).all()
        index[t.name] = {"ggml_type": int(t), "n_elems": int(y.size)}
        (OUT / f"{t.name}.blocks").write_bytes(raw.tobytes())
        (OUT / f"{t.name}.f32").write_bytes(y.tobytes())
    # The float types: finite values only (NaN payloads are not what this checks).
    x = (rng.standard_normal(2048) * 3).astype(np.float32)
    for t, enc in [(T.F32, x), (T.F16, x.astype(np.float16)),
                   (T.BF16, (x.view(np.uint32) >> 16).astype(np.uint16))]:
        raw = np.frombuffer(enc.tobytes(), dtype=np.uint8)
        y = dequantize(raw, t).astype("<f4").reshape(-1)
        index[t.name] = {"ggml_type": int(t), "n_elems": int(y.size)}
        (OUT / f"{t.name}.blocks").write_bytes(raw.tobytes())
        (OUT / f"{t.name}.f32").write_bytes(y.tobytes())
    (OUT / "blocks.json").write_text(json.dumps(index, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(index)} types to {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
