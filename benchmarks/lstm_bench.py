#!/usr/bin/env python
"""Training throughput of an LSTM: dlspec's NumPy engine vs PyTorch CPU eager.

    python benchmarks/lstm_bench.py [--quick] [--repeats N] [--json OUT.json]

The network: an LSTM of 64 units over sequences of 50 steps with 8 features, its last
hidden state into a dense layer of one unit (mean squared error), batch 32,
Adam(lr=1e-3, eps=1e-7): a sequence regressor like the tutorial's stock-price model. The
data are synthetic N(0, 1) sequences with N(0, 1) targets (throughput does not depend on
their meaning). dlspec runs ``fit()``'s inner loop, PyTorch the idiomatic loop with
``nn.LSTM(batch_first=True)`` + ``nn.Linear`` over the same kind of shuffled batches.
Repetitions are interleaved in one process after a warm-up, each from fresh weights and
after a short settle gap; peak RSS is measured per side in a child process.
benchmarks/run.py runs it with the other workloads; loops.py holds what they share.
"""

from __future__ import annotations

import sys

import loops
import numpy as np
from loops import DlspecLoop, TorchLoop, load_spec_text

KEY = "lstm"
BATCH, TIME, FEATURES, UNITS = 32, 50, 8, 64
LABEL = f"LSTM {FEATURES}->{UNITS} over {TIME} steps + dense 1, batch {BATCH}"

LSTM_SPEC = f"""\
dlspec: 1
name: lstm_bench
data: {{source: sequences.csv, target: y, sequence: {{window: {TIME}}}}}
model:
  layers:
    - lstm: {{units: {UNITS}}}
    - dense: {{units: 1}}
train:
  loss: mse
  optimizer: {{adam: {{lr: 0.001, epsilon: 1.0e-7}}}}
  batch_size: {BATCH}
  epochs: 1
"""


def synthetic(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, TIME, FEATURES), dtype=np.float32),
            rng.standard_normal((rows, 1), dtype=np.float32))


class _Head:
    """nn.LSTM's last hidden state into a Linear layer (what Keras' LSTM + Dense does)."""

    def __new__(cls):
        from torch import nn

        class Head(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(FEATURES, UNITS, batch_first=True)
                self.dense = nn.Linear(UNITS, 1)

            def forward(self, x):
                _, (h, _) = self.lstm(x)
                return self.dense(h[0])

        return Head()


def dlspec_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> DlspecLoop:
    return DlspecLoop(load_spec_text(LSTM_SPEC, "lstm"), x, y, seed)


def torch_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> TorchLoop:
    import torch
    from torch import nn

    return TorchLoop(_Head, nn.MSELoss(), torch.from_numpy(x), torch.from_numpy(y), BATCH,
                     seed)


def parity(steps: int = 5) -> float:
    """Max |dlspec - torch| over all weights after ``steps`` identical steps from the same
    weights: evidence that both sides train the same model, loss and optimizer."""
    import torch

    x, y = synthetic(BATCH * steps, seed=7)
    d, t = dlspec_loop(x, y, seed=3), torch_loop(x, y)
    views = {name.split(".", 1)[1] if name.startswith("lstm") else
             "dense." + name.split(".", 1)[1]: v for name, v in loops.param_views(d).items()}
    lstm, dense = t.model.lstm, t.model.dense
    # Keras and PyTorch order the LSTM's gates alike (input, forget, cell, output);
    # dlspec keeps (in, out) matrices, PyTorch (out, in), and one bias where PyTorch has
    # two: its recurrent bias stays zero and frozen here, so the input bias is the one.
    pairs = [(lstm.weight_ih_l0, views["kernel"], lambda k: k.T),
             (lstm.weight_hh_l0, views["recurrent_kernel"], lambda k: k.T),
             (lstm.bias_ih_l0, views["bias"], lambda b: b),
             (dense.weight, views["dense.kernel"], lambda k: k.T),
             (dense.bias, views["dense.bias"], lambda b: b)]
    loops.copy_to_torch(pairs)
    with torch.no_grad():
        lstm.bias_hh_l0.zero_()
    lstm.bias_hh_l0.requires_grad_(False)
    t.opt = torch.optim.Adam([p for p in t.model.parameters() if p.requires_grad], lr=1e-3,
                             betas=(0.9, 0.999), eps=1e-7)
    return loops.lockstep(d, t, pairs, x, y, steps, BATCH)


if __name__ == "__main__":
    sys.exit(loops.main(sys.modules[__name__]))
