#!/usr/bin/env python3
"""Reference data for lib/prune (magnitude, Wanda, SparseGPT) -> testdata/prune/.

References (llm-compressor 0.14.0.1's own implementations, run on CPU in float32):
  * SparseGPT: llmcompressor.modifiers.pruning.sparsegpt.sgpt_sparsify (accumulate_hessian +
    sparsify_weight: OBS reconstruction, mask per block of 128 columns over all rows by
    w^2/[H^-1]_jj^2, N:M chosen every M columns), blocksize 128, dampening 0.01.
  * Wanda: llmcompressor.modifiers.pruning.wanda.wanda_sparsify (accumulate_row_scalars +
    sparsify_weight: score |W_ij| * ||X_j||, per output row; N:M by the top of every M inputs).
  * Magnitude: the mask creator llm-compressor's MagnitudePruningModifier uses
    (modifiers.pruning.utils.pytorch.mask_factory.unstructured_pruning, one threshold per matrix),
    and a numpy per-row transcription.
llm-compressor's "n:m" means n PRUNED of every m (prune_n); lib/prune's SparsityPattern{n, m} keeps n.
For 2:4 they coincide; the 3:4 Wanda case (llm-compressor prune_n = 1) pins the convention.

Install (no dependencies pulled):
  pip install --no-deps --target /tmp/quantpy llmcompressor==0.14.0.1 compressed-tensors==0.20.0
  PYTHONPATH=/tmp/quantpy python3 scripts/golden/prune_golden.py
(Only the pruning modules are imported; their parent packages are registered as bare namespaces.)

Files (raw little-endian, row-major): W.f32 [48,172], X.f16 [256,172] (fp16-exact activations, input
channel 100 never active: a dead column), H.f32 [172,172] (accumulate_hessian over X as 8 sequences of
32 tokens, 4 batches of 2), S.f32 [172] (accumulate_row_scalars: sum_t x^2 / 8).
Cases on W[:, :cols] with H[:cols, :cols] (cols 128 and the ragged 172 = 128 + 44):
<case>.W.f32 [48,cols] the reference's pruned weight (SparseGPT), <case>.mask.u1 (np.packbits of the
[48,cols] mask, 1 = pruned; Wanda and magnitude, whose output is W * ~mask). prune_golden.json lists
the cases with tr((W - W')H(W - W')^T).
"""
import json
import os
import sys
import types
from importlib.util import find_spec

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "testdata", "prune")
ROWS, COLS, TOKENS, SEQS, DEAD = 48, 172, 256, 8, 100


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


bare_packages("llmcompressor", "llmcompressor.modifiers", "llmcompressor.modifiers.pruning",
              "llmcompressor.modifiers.pruning.sparsegpt", "llmcompressor.modifiers.pruning.wanda",
              "llmcompressor.modifiers.pruning.utils", "llmcompressor.modifiers.pruning.utils.pytorch")
from llmcompressor.modifiers.pruning.sparsegpt import sgpt_sparsify  # noqa: E402
from llmcompressor.modifiers.pruning.wanda import wanda_sparsify  # noqa: E402
from llmcompressor.modifiers.pruning.utils.pytorch.mask_factory import (  # noqa: E402
    PruningMaskCreatorArgs, unstructured_pruning)


def save(name, arr):
    np.ascontiguousarray(arr).tofile(os.path.join(OUT, name))
    return name


def objective(W, Wp, H):
    D = W.astype(np.float64) - Wp.astype(np.float64)
    return float(np.sum((D @ H.astype(np.float64)) * D))


# ---- inputs -----------------------------------------------------------------------------------
torch.manual_seed(4321)
W = (torch.randn(ROWS, COLS) * 0.02).float()
W[:, 7] *= 8  # outlier input channels and rows, as real weights have
W[3, :] *= 3
mix = torch.eye(COLS) + 0.3 * torch.randn(COLS, COLS) / COLS**0.5
chan = torch.exp(0.7 * torch.randn(COLS))
X = ((torch.randn(TOKENS, COLS) @ mix) * chan).half().float()
X[:, DEAD] = 0  # an input that is never active: diag H = 0, ||X|| = 0

layer = torch.nn.Linear(COLS, ROWS, bias=False)
layer.weight.data = W.clone()
H = sgpt_sparsify.make_empty_hessian(layer)
S = wanda_sparsify.make_empty_row_scalars(layer)
nh = ns = 0
for b in range(4):
    batch = X[b * 64:(b + 1) * 64].reshape(2, 32, COLS)
    H, nh = sgpt_sparsify.accumulate_hessian(batch, layer, H, nh)
    S, ns = wanda_sparsify.accumulate_row_scalars(batch, layer, S, ns)
assert nh == ns == SEQS

Wn, Hn, Sn = W.numpy(), H.numpy(), S.numpy()
os.makedirs(OUT, exist_ok=True)
for f in os.listdir(OUT):
    os.remove(os.path.join(OUT, f))
save("W.f32", Wn)
save("X.f16", X.half().numpy())
save("H.f32", Hn)
save("S.f32", Sn)

cases = []


def record(name, method, cols, n, m, sparsity, Wp, mask, save_weight, scope="row"):
    c = dict(name=name, method=method, cols=cols, n=n, m=m, sparsity=sparsity, scope=scope,
             pruned=int(mask.sum()), objective=objective(Wn[:, :cols], Wp, Hn[:cols, :cols]))
    if save_weight:
        c["weight"] = save(f"{name}.W.f32", Wp.astype(np.float32))
    else:
        assert np.array_equal(Wp, np.where(mask, 0, Wn[:, :cols]))
    c["mask"] = save(f"{name}.mask.u1", np.packbits(mask.astype(np.uint8).reshape(-1)))
    cases.append(c)
    print(f"{name:24s} pruned {mask.mean() * 100:6.2f}%  objective {c['objective']:.6g}")


def sparsegpt(cols, n, m, sparsity):
    lin = torch.nn.Linear(cols, ROWS, bias=False)
    lin.weight.data = W[:, :cols].clone()
    prune_n = m - n if m else 0  # llm-compressor counts the pruned ones
    loss, Wp = sgpt_sparsify.sparsify_weight(lin, {lin: H[:cols, :cols].clone()}, sparsity, prune_n, m, 128, 0.01,
                                             False)
    Wp = Wp.detach().numpy()
    tag = f"{n}_{m}" if m else f"{int(sparsity * 100)}"
    record(f"sgpt_{tag}_c{cols}", "sparsegpt", cols, n, m, sparsity, Wp, Wp == 0, True, scope="block")


def wanda(cols, n, m, sparsity):
    lin = torch.nn.Linear(cols, ROWS, bias=False)
    lin.weight.data = W[:, :cols].clone()
    prune_n = m - n if m else 0
    Wp = wanda_sparsify.sparsify_weight(lin, {lin: S[:cols].clone()}, sparsity, prune_n, m).detach().numpy()
    assert np.all(Wn != 0)
    mask = Wp == 0
    tag = f"{n}_{m}" if m else f"{int(sparsity * 100)}"
    record(f"wanda_{tag}_c{cols}", "wanda", cols, n, m, sparsity, Wp, mask, False)


def magnitude_matrix(cols, sparsity):
    w = W[:, :cols].clone()
    keep = unstructured_pruning("unstructured")(PruningMaskCreatorArgs(torch.nn.Parameter(w), sparsity, w.abs()))
    mask = ~keep.numpy()
    record(f"mag_{int(sparsity * 100)}_matrix_c{cols}", "magnitude", cols, 0, 0, sparsity, np.where(mask, 0, w.numpy()),
           mask, False, scope="matrix")


def magnitude_rows(cols, sparsity):
    w = Wn[:, :cols]
    k = int(cols * sparsity)
    order = np.argsort(np.abs(w), axis=1, kind="stable")[:, :k]
    mask = np.zeros_like(w, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    record(f"mag_{int(sparsity * 100)}_row_c{cols}", "magnitude", cols, 0, 0, sparsity, np.where(mask, 0, w), mask, False)


for cols in (128, COLS):
    sparsegpt(cols, 0, 0, 0.5)
    sparsegpt(cols, 2, 4, 0.5)
    wanda(cols, 0, 0, 0.5)
    wanda(cols, 2, 4, 0.5)
wanda(COLS, 3, 4, 0.25)
wanda(COLS, 0, 0, 0.7)
magnitude_matrix(COLS, 0.5)
magnitude_rows(COLS, 0.6)

with open(os.path.join(OUT, "prune_golden.json"), "w") as f:
    json.dump(dict(rows=ROWS, cols=COLS, tokens=TOKENS, sequences=SEQS, dead_column=DEAD, block_size=128, damp=0.01,
                   files=dict(W="W.f32", X="X.f16", H="H.f32", S="S.f32"), cases=cases), f, indent=1)
total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
print(f"wrote {len(cases)} cases, {total / 1024:.0f} KiB to {os.path.normpath(OUT)}")
