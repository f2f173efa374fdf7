#!/usr/bin/env python
"""Training throughput of a small CNN: dlspec's NumPy engine vs PyTorch CPU eager.

    python benchmarks/cnn_bench.py [--quick] [--repeats N] [--json OUT.json]

The network is the tutorial's MNIST CNN without dropout: conv32 (3x3 valid, relu) -
maxpool 2 - conv64 (3x3 valid, relu) - maxpool 2 - flatten - dense128 (relu) - dense10
(softmax + categorical cross-entropy), on 28x28x1 images, batch 64, Adam(lr=1e-3,
eps=1e-7). The data are synthetic N(0, 1) images with random labels (throughput does
not depend on their meaning). dlspec runs ``fit()``'s inner loop (a shuffled batch gathered
into a reused buffer; plan.forward, loss, isfinite, plan.backward, opt.step) and PyTorch the
idiomatic loop over the same shuffled batches (one gather per epoch, then slices), NCHW as
PyTorch prefers.
Repetitions are interleaved in one process after a warm-up, each after a short
settle gap (OpenBLAS's threads spin ~0.1 s after numpy's last GEMM); peak RSS is
measured per side in a child process, so neither side's memory hides the other's.
benchmarks/run.py runs it with the other workloads; loops.py holds what they share.
"""

from __future__ import annotations

import sys

import loops
import numpy as np
from loops import DlspecLoop, TorchLoop, load_spec_text

KEY, BATCH = "cnn", 64
LABEL = "CNN conv32-pool-conv64-pool-dense128-dense10, 28x28x1, batch 64"

CNN_SPEC = """\
dlspec: 1
name: cnn_bench
data: {source: mnist}
model:
  layers:
    - conv2d: {filters: 32, kernel_size: 3, activation: relu}
    - max_pool2d: 2
    - conv2d: {filters: 64, kernel_size: 3, activation: relu}
    - max_pool2d: 2
    - flatten:
    - dense: {units: 128, activation: relu}
    - dense: {units: 10, activation: softmax}
train:
  loss: categorical_crossentropy
  optimizer: {adam: {lr: 0.001, epsilon: 1.0e-7}}
  batch_size: 64
  epochs: 1
"""


def cnn_spec():
    return load_spec_text(CNN_SPEC, "cnn")


def synthetic(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, 28, 28, 1), dtype=np.float32),
            rng.integers(0, 10, rows).astype(np.int64))


def _torch_model():
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))


def dlspec_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> DlspecLoop:
    return DlspecLoop(cnn_spec(), x, y, seed)


def torch_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> TorchLoop:
    import torch
    from torch import nn

    return TorchLoop(_torch_model, nn.CrossEntropyLoss(),
                     torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))),
                     torch.from_numpy(y), BATCH, seed)


def parity(steps: int = 5) -> float:
    """Max |dlspec - torch| over all weights after ``steps`` identical steps from the same
    weights: evidence that both sides train the same model, loss and optimizer."""
    import torch

    x, y = synthetic(BATCH * steps, seed=7)
    d, t = dlspec_loop(x, y, seed=3), torch_loop(x, y)
    views = loops.param_views(d)
    convs = [m for m in t.model if isinstance(m, torch.nn.Conv2d)]
    denses = [m for m in t.model if isinstance(m, torch.nn.Linear)]
    # dlspec: kernels [KH, KW, C, O], images NHWC (flatten in h, w, c order); torch: OIHW,
    # NCHW (flatten in c, h, w order).
    pairs = [(convs[0].weight, views["conv2d_1.kernel"], lambda k: k.transpose(3, 2, 0, 1)),
             (convs[1].weight, views["conv2d_2.kernel"], lambda k: k.transpose(3, 2, 0, 1)),
             (denses[0].weight, views["dense_1.kernel"],
              lambda k: k.reshape(5, 5, 64, 128).transpose(3, 2, 0, 1).reshape(128, 1600)),
             (denses[1].weight, views["dense_2.kernel"], lambda k: k.T)]
    pairs += [(m.bias, views[f"{name}.bias"], lambda b: b) for m, name in
              zip(convs + denses, ["conv2d_1", "conv2d_2", "dense_1", "dense_2"], strict=True)]
    loops.copy_to_torch(pairs)
    return loops.lockstep(d, t, pairs, x, y, steps, BATCH)


if __name__ == "__main__":
    sys.exit(loops.main(sys.modules[__name__]))
