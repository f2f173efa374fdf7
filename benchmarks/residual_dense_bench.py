#!/usr/bin/env python
"""Training throughput of a dense residual block: dlspec's NumPy engine vs PyTorch CPU eager.

    python benchmarks/residual_dense_bench.py [--quick] [--repeats N] [--json OUT.json]

A spec of the graph form: dense256 (relu) - [dense256 (relu) - dense256] + the first
layer's output (the shortcut) - relu - dense10 (softmax + categorical cross-entropy), on
784 features, batch 128, Adam(lr=1e-3, eps=1e-7); PyTorch runs the same arithmetic as
an nn.Module whose forward adds the shortcut. Synthetic N(0, 1) features and random
labels; as the other step-loop benchmarks, in the loops of loops.py.
"""

from __future__ import annotations

import sys

import loops
import numpy as np
from loops import DlspecLoop, TorchLoop, load_spec_text

KEY, BATCH = "residual_dense", 128
LABEL = "dense residual block 784-256-[256-256]+shortcut-10, batch 128"

SPEC = """\
dlspec: 1
name: residual_dense_bench
data: {source: mnist}
model:
  inputs:
    x: {shape: [784]}
  nodes:
    h: {dense: {units: 256, activation: relu}}
    a: {dense: {units: 256, activation: relu}}
    b: {dense: {units: 256}}
    shortcut: {add: {}, from: [h, b]}
    merged: {activation: relu}
    out: {dense: {units: 10, activation: softmax}}
train:
  loss: categorical_crossentropy
  optimizer: {adam: {lr: 0.001, epsilon: 1.0e-7}}
  batch_size: 128
  epochs: 1
"""


def synthetic(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, 784), dtype=np.float32),
            rng.integers(0, 10, rows).astype(np.int64))


def _torch_model():
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.h, self.a = nn.Linear(784, 256), nn.Linear(256, 256)
            self.b, self.out = nn.Linear(256, 256), nn.Linear(256, 10)

        def forward(self, x):
            h = torch.relu(self.h(x))
            return self.out(torch.relu(h + self.b(torch.relu(self.a(h)))))

    return Residual()


def dlspec_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> DlspecLoop:
    return DlspecLoop(load_spec_text(SPEC, "residual_dense"), x, y, seed)


def torch_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> TorchLoop:
    import torch
    from torch import nn

    return TorchLoop(_torch_model, nn.CrossEntropyLoss(), torch.from_numpy(x),
                     torch.from_numpy(y), BATCH, seed)


def parity(steps: int = 5) -> float:
    """Max |dlspec - torch| over all weights after ``steps`` identical steps from the same
    weights."""
    x, y = synthetic(BATCH * steps, seed=7)
    d, t = dlspec_loop(x, y, seed=3), torch_loop(x, y)
    views = loops.param_views(d)
    pairs = [(getattr(t.model, n).weight, views[f"{n}.kernel"], lambda k: k.T)
             for n in ("h", "a", "b", "out")]
    pairs += [(getattr(t.model, n).bias, views[f"{n}.bias"], lambda b: b)
              for n in ("h", "a", "b", "out")]
    loops.copy_to_torch(pairs)
    return loops.lockstep(d, t, pairs, x, y, steps, BATCH)


if __name__ == "__main__":
    sys.exit(loops.main(sys.modules[__name__]))
