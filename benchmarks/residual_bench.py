#!/usr/bin/env python
"""Training throughput of a residual block: dlspec's NumPy engine vs PyTorch CPU eager.

    python benchmarks/residual_bench.py [--quick] [--repeats N] [--json OUT.json]

A spec of the graph form, a residual block as ResNets place them (after a stem that
halves the image): stem conv32 (3x3 valid, relu) - maxpool 2 - [conv32 (3x3 same, relu) -
conv32 (3x3 same)] + the stem's output (the shortcut) - relu - maxpool 2 - flatten -
dense10 (softmax + categorical cross-entropy), on 28x28x1 images, batch 64,
Adam(lr=1e-3, eps=1e-7). PyTorch runs the same arithmetic as an nn.Module whose forward
adds the shortcut. Synthetic N(0, 1) images and random labels; as cnn_bench.py, in the
loops of loops.py.
"""

from __future__ import annotations

import sys

import loops
import numpy as np
from loops import DlspecLoop, TorchLoop, load_spec_text

KEY, BATCH = "residual", 64
LABEL = "residual block conv32-pool-[conv32-conv32]+shortcut-pool-dense10, 28x28x1, batch 64"

RESIDUAL_SPEC = """\
dlspec: 1
name: residual_bench
data: {source: mnist}
model:
  inputs:
    image: {shape: [28, 28, 1]}
  nodes:
    stem: {conv2d: {filters: 32, kernel_size: 3, activation: relu}}
    pool0: {max_pool2d: 2}
    branch_a: {conv2d: {filters: 32, kernel_size: 3, padding: same, activation: relu}}
    branch_b: {conv2d: {filters: 32, kernel_size: 3, padding: same}}
    shortcut: {add: {}, from: [pool0, branch_b]}
    merged: {activation: relu}
    pool: {max_pool2d: 2}
    flat: {flatten: }
    out: {dense: {units: 10, activation: softmax}}
train:
  loss: categorical_crossentropy
  optimizer: {adam: {lr: 0.001, epsilon: 1.0e-7}}
  batch_size: 64
  epochs: 1
"""


def synthetic(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, 28, 28, 1), dtype=np.float32),
            rng.integers(0, 10, rows).astype(np.int64))


def _torch_model():
    import torch
    from torch import nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 32, 3)
            self.branch_a = nn.Conv2d(32, 32, 3, padding=1)
            self.branch_b = nn.Conv2d(32, 32, 3, padding=1)
            self.head = nn.Linear(32 * 6 * 6, 10)

        def forward(self, x):
            s = nn.functional.max_pool2d(torch.relu(self.stem(x)), 2)
            h = torch.relu(s + self.branch_b(torch.relu(self.branch_a(s))))
            return self.head(torch.flatten(nn.functional.max_pool2d(h, 2), 1))

    return Residual()


def dlspec_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> DlspecLoop:
    return DlspecLoop(load_spec_text(RESIDUAL_SPEC, "residual"), x, y, seed)


def torch_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> TorchLoop:
    import torch
    from torch import nn

    return TorchLoop(_torch_model, nn.CrossEntropyLoss(),
                     torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
                     torch.from_numpy(y), BATCH, seed)


def parity(steps: int = 5) -> float:
    """Max |dlspec - torch| over all weights after ``steps`` identical steps from the same
    weights: evidence that both sides train the same model, loss and optimizer."""
    x, y = synthetic(BATCH * steps, seed=7)
    d, t = dlspec_loop(x, y, seed=3), torch_loop(x, y)
    views = loops.param_views(d)
    m = t.model
    conv = lambda k: k.transpose(3, 2, 0, 1)  # noqa: E731 - [KH, KW, C, O] -> OIHW
    pairs = [(m.stem.weight, views["stem.kernel"], conv),
             (m.branch_a.weight, views["branch_a.kernel"], conv),
             (m.branch_b.weight, views["branch_b.kernel"], conv),
             # flatten order: dlspec (h, w, c), torch (c, h, w)
             (m.head.weight, views["out.kernel"],
              lambda k: k.reshape(6, 6, 32, 10).transpose(3, 2, 0, 1).reshape(10, -1)),
             (m.stem.bias, views["stem.bias"], lambda b: b),
             (m.branch_a.bias, views["branch_a.bias"], lambda b: b),
             (m.branch_b.bias, views["branch_b.bias"], lambda b: b),
             (m.head.bias, views["out.bias"], lambda b: b)]
    loops.copy_to_torch(pairs)
    return loops.lockstep(d, t, pairs, x, y, steps, BATCH)


if __name__ == "__main__":
    sys.exit(loops.main(sys.modules[__name__]))
