#!/usr/bin/env python3
"""Reference data for lib/quant (grid, RTN, Hessian, GPTQ) -> testdata/quant/.

References (run on CPU):
  * llm-compressor's GPTQ: llmcompressor.modifiers.gptq.gptq_quantize.quantize_weight, with the
    qparams from its weight observer (MemorylessMinMaxObserver -> compressed_tensors calculate_qparams),
    exactly as GPTQModifier.compress_module_list calls it. llm-compressor computes every group's
    scale/zero from the ORIGINAL weight up front (= our static_groups) and rejects group sizes that do
    not divide the columns, so it runs on W[:, :128] with H[:128, :128].
  * AutoGPTQ 0.7.1's GPTQ class (auto_gptq/quantization/gptq.py: add_batch + fasterquant), the classic
    GPTQ reference: dynamic groups (scale/zero when a group starts), act-order, static_groups, and
    ragged last groups (172 = 5*32 + 12) -> runs on the full W [48, 172].
  * RTN: a numpy float32 transcription of the grid documented in lib/quant/grid.h.

Install (no dependencies pulled, so the system torch/transformers stay as they are):
  pip install --no-deps --target /tmp/quantpy llmcompressor==0.14.0.1 compressed-tensors==0.20.0 auto-gptq==0.7.1
  PYTHONPATH=/tmp/quantpy python3 scripts/golden/quant_golden.py
(The packages' top-level __init__ pulls in datasets/peft/...; we import only the GPTQ modules by
registering their parent packages as bare namespaces.)

Files (raw little-endian, row-major): W.f32 [48,172], X.f16 [256,172] (fp16-exact activations),
H.f32 [172,172] (AutoGPTQ add_batch over X as 8 sequences x 32 tokens, 4 batches of 2 sequences),
W_rtn.f32 [48,172] (W with an all-zero and an all-positive group), and per case
<case>.codes.u8 [48,cols] (unsigned codes, grid.h convention), .scales.f32 / .zeros.i32 [48,n_groups],
.gidx.i32 [cols]; quant_golden.json lists the cases with the reference's objective tr((W-Q)H(W-Q)^T).
"""
import json
import os
import sys
import types
from importlib.util import find_spec

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "quant")
ROWS, COLS, TOKENS, SEQS = 48, 172, 256, 8


def bare_packages(*names):
    """Register packages without running their __init__ (which imports the whole toolkit)."""
    roots = {}
    for top in {n.split(".")[0] for n in names}:
        spec = find_spec(top)
        if spec is None:
            sys.exit(f"{top} is not installed (see the docstring)")
        roots[top] = os.path.dirname(spec.origin)
    for name in names:
        parts = name.split(".")
        m = types.ModuleType(name)
        m.__path__ = [os.path.join(roots[parts[0]], *parts[1:])]
        sys.modules[name] = m


bare_packages("llmcompressor", "llmcompressor.modifiers", "llmcompressor.modifiers.gptq",
              "llmcompressor.observers", "auto_gptq", "auto_gptq.quantization")
from compressed_tensors.quantization import QuantizationArgs  # noqa: E402
from llmcompressor.modifiers.gptq.gptq_quantize import quantize_weight  # noqa: E402
from llmcompressor.observers.min_max import MemorylessMinMaxObserver  # noqa: E402
from auto_gptq.quantization.gptq import GPTQ  # noqa: E402

torch.cuda.synchronize = lambda *a, **k: None  # fasterquant calls it unconditionally


def save(name, arr):
    arr = np.ascontiguousarray(arr)
    arr.tofile(os.path.join(OUT, name))
    return name


def objective(W, Q, H):
    D = (W.astype(np.float64) - Q.astype(np.float64))
    return float(np.sum((D @ H.astype(np.float64)) * D))


def codes_from(Q, scale, zero, g_idx, maxq):
    """Recover the integer codes from a dequantized Q = scale*(q-zero); check they reproduce Q exactly."""
    s = scale[:, g_idx]
    z = zero[:, g_idx]
    q = np.rint(Q / s) + z
    assert q.min() >= 0 and q.max() <= maxq, (q.min(), q.max())
    back = (s * (q - z).astype(np.float32)).astype(np.float32)
    err = float(np.max(np.abs(back - Q)))
    assert err <= 1e-6 * float(np.max(np.abs(Q))) + 1e-12, err
    return q.astype(np.uint8)


# ---- inputs -----------------------------------------------------------------------------------
torch.manual_seed(1234)
W = (torch.randn(ROWS, COLS) * 0.02).float()
W[:, 7] *= 8  # a few outlier input channels, as real weights have
W[3, :] *= 3
# correlated activations with uneven channel scales (so act-order matters)
mix = torch.eye(COLS) + 0.3 * torch.randn(COLS, COLS) / COLS**0.5
chan = torch.exp(0.7 * torch.randn(COLS))
X = ((torch.randn(TOKENS, COLS) @ mix) * chan).half().float()  # fp16-exact so the file can be fp16

# H as the GPTQ reference accumulates it: 4 batches of [2 sequences, 32 tokens, cols]
layer = torch.nn.Linear(COLS, ROWS, bias=False)
layer.weight.data = W.clone()
acc = GPTQ(layer)
for b in range(4):
    acc.add_batch(X[b * 64:(b + 1) * 64].reshape(2, 32, COLS), None)
H = acc.H.clone()
assert acc.nsamples == SEQS

Wn, Hn = W.numpy(), H.numpy()
os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))
save("W.f32", Wn)
save("X.f16", X.half().numpy())
save("H.f32", Hn)

cases = []


def record(name, ref, cols, bits, G, sym, actorder, static_groups, Q, scale, zero, g_idx):
    maxq = 2**bits - 1
    codes = codes_from(Q, scale, zero, g_idx, maxq)
    cases.append(dict(
        name=name, reference=ref, cols=cols, bits=bits, group_size=G, sym=sym, act_order=actorder,
        static_groups=static_groups, n_groups=int(scale.shape[1]),
        codes=save(f"{name}.codes.u8", codes), scales=save(f"{name}.scales.f32", scale.astype(np.float32)),
        zeros=save(f"{name}.zeros.i32", zero.astype(np.int32)), g_idx=save(f"{name}.gidx.i32", g_idx.astype(np.int32)),
        objective=objective(Wn[:, :cols], Q, Hn[:cols, :cols])))
    print(f"{name:28s} {ref:14s} objective {cases[-1]['objective']:.6g}")


# ---- llm-compressor (static qparams from the original W), W[:, :128] ----------------------------
def llmc(name, bits, G, sym, actorder=None):
    cols = 128
    strategy = "group" if G > 0 else "channel"
    qa = QuantizationArgs(num_bits=bits, type="int", symmetric=sym, strategy=strategy,
                          group_size=G if G > 0 else None, actorder=actorder)
    w = W[:, :cols].clone()
    obs = MemorylessMinMaxObserver(base_name="weight", args=qa)
    obs(w)
    qp = obs.get_qparams()
    scale, zp = qp["scale"], qp["zero_point"]
    Q, _, fallback = quantize_weight(w[None].clone(), H[None, :cols, :cols].clone(), scale[None], zp[None], None, qa,
                                     blocksize=128, percdamp=0.01)
    assert not fallback.any()
    half = 2 ** (bits - 1)  # compressed-tensors codes are signed: shift to our unsigned convention
    zero = zp.numpy().astype(np.int64) + half
    g_idx = (np.arange(cols) // (G if G > 0 else cols)).astype(np.int64)
    record(name, "llmcompressor", cols, bits, G, sym, actorder is not None, True, Q[0].numpy(),
           scale.float().numpy(), zero, g_idx)


llmc("llmc_w4_g32_asym", 4, 32, False)
llmc("llmc_w4_g32_sym", 4, 32, True)
llmc("llmc_w3_pc_asym", 3, -1, False)
llmc("llmc_w8_pc_sym", 8, -1, True)
llmc("llmc_w4_g32_asym_actorder", 4, 32, False, "weight")


# ---- AutoGPTQ (classic GPTQ reference), ragged W [48, 172] --------------------------------------
def autogptq(name, bits, G, sym, actorder=False, static_groups=False):
    layer = torch.nn.Linear(COLS, ROWS, bias=False)
    layer.weight.data = W.clone()
    g = GPTQ(layer)
    g.quantizer.configure(bits, perchannel=True, sym=sym, mse=False)
    g.H = H.clone()
    g.nsamples = SEQS
    scale, zero, g_idx = g.fasterquant(blocksize=128, percdamp=0.01, group_size=G, actorder=actorder,
                                       static_groups=static_groups)
    record(name, "auto-gptq", COLS, bits, G, sym, actorder, static_groups, layer.weight.data.numpy().copy(),
           scale.numpy(), np.rint(zero.numpy()).astype(np.int64), g_idx.numpy().astype(np.int64))


autogptq("agptq_w4_g32_asym", 4, 32, False)
autogptq("agptq_w4_g32_sym", 4, 32, True)
autogptq("agptq_w3_pc_asym", 3, -1, False)
autogptq("agptq_w8_pc_sym", 8, -1, True)
autogptq("agptq_w2_g32_asym", 2, 32, False)
autogptq("agptq_w4_g32_asym_actorder", 4, 32, False, actorder=True)
autogptq("agptq_w4_g32_sym_actorder_static", 4, 32, True, actorder=True, static_groups=True)


# ---- RTN: numpy transcription of grid.h ---------------------------------------------------------
Wr = Wn.copy()
Wr[0, 0:32] = 0.0                    # an all-zero group: scale = FLT_EPSILON
Wr[1, 32:64] = np.abs(Wr[1, 32:64])  # an all-positive group (min clamps to 0)
save("W_rtn.f32", Wr)


def rtn_np(w, bits, G, sym):
    maxq = 2**bits - 1
    rows, cols = w.shape
    G = G if G > 0 else cols
    ng = -(-cols // G)
    scale = np.zeros((rows, ng), np.float32)
    zero = np.zeros((rows, ng), np.int64)
    codes = np.zeros((rows, cols), np.int64)
    for g in range(ng):
        x = w[:, g * G:(g + 1) * G]  # the last group is whatever is left (ragged)
        lo = np.minimum(x.min(1), np.float32(0))
        hi = np.maximum(x.max(1), np.float32(0))
        if sym:
            s = (np.maximum(-lo, hi) / np.float32(maxq / 2)).astype(np.float32)
            z = np.full(rows, (maxq + 1) // 2)
        else:
            s = ((hi - lo) / np.float32(maxq)).astype(np.float32)
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.where(s != 0, np.rint(-lo / s), 0).astype(np.int64)
        s = np.where(s == 0, np.finfo(np.float32).eps, s).astype(np.float32)
        z = np.clip(z, 0, maxq)
        q = np.clip(np.rint(x / s[:, None]) + z[:, None], 0, maxq)
        scale[:, g], zero[:, g], codes[:, g * G:(g + 1) * G] = s, z, q
    g_idx = np.arange(cols) // G
    return codes, scale, zero, g_idx


for name, bits, G, sym in [("rtn_w4_g32_asym", 4, 32, False), ("rtn_w4_g32_sym", 4, 32, True),
                           ("rtn_w3_pc_asym", 3, -1, False), ("rtn_w2_g32_asym", 2, 32, False),
                           ("rtn_w8_g64_sym", 8, 64, True)]:
    codes, scale, zero, g_idx = rtn_np(Wr, bits, G, sym)
    cases.append(dict(name=name, reference="numpy-rtn", cols=COLS, bits=bits, group_size=G, sym=sym,
                      act_order=False, static_groups=False, n_groups=int(scale.shape[1]),
                      codes=save(f"{name}.codes.u8", codes.astype(np.uint8)), scales=save(f"{name}.scales.f32", scale),
                      zeros=save(f"{name}.zeros.i32", zero.astype(np.int32)),
                      g_idx=save(f"{name}.gidx.i32", g_idx.astype(np.int32))))

with open(os.path.join(OUT, "quant_golden.json"), "w") as f:
    json.dump(dict(rows=ROWS, cols=COLS, tokens=TOKENS, sequences=SEQS, block_size=128, damp=0.01,
                   files=dict(W="W.f32", X="X.f16", H="H.f32", W_rtn="W_rtn.f32"), cases=cases), f, indent=1)
total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
print(f"wrote {len(cases)} cases, {total / 1024:.0f} KiB to {os.path.normpath(OUT)}")
