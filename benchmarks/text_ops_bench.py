#!/usr/bin/env python
"""Forward + backward of embedding + masked LSTM over padded token ids: dlspec's op rules
(``embedding``, ``lstm_masked``; the unfused rules, recomputing the forward pass in the
vjp, which is what the engine runs for an op without a fused training kernel) vs PyTorch's
nn.Embedding + nn.LSTM over packed sequences, in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/text_ops_bench.py [--quick]

Shapes: a vocabulary of 4,000 ids, 32-dimensional embeddings, an LSTM of 32 units, batch
32, 50 steps, lengths drawn from 1..50 (SMS messages have 1 to 190 tokens, median 12);
the last real state into one logit, the sum as the loss. No optimizer on either side: only
the gradients. Before timing, both sides get the same weights and their table and kernel
gradients are compared. Ratios: PyTorch time / dlspec time, median over interleaved reps
(paired: each round's torch rep over its dlspec rep).
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from dlspec.ops import OPS

VOCAB, DIM, UNITS, BATCH, TIME = 4000, 32, 32, 32, 50


def data(seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, TIME + 1, size=BATCH).astype(np.int64)
    ids = rng.integers(2, VOCAB, size=(BATCH, TIME)).astype(np.int64)
    ids[np.arange(TIME)[None, :] >= lengths[:, None]] = 0
    table = rng.uniform(-0.05, 0.05, (VOCAB, DIM)).astype(np.float32)
    w = rng.uniform(-0.2, 0.2, (DIM, 4 * UNITS)).astype(np.float32)
    u = rng.uniform(-0.2, 0.2, (UNITS, 4 * UNITS)).astype(np.float32)
    b = np.zeros(4 * UNITS, np.float32)
    return ids, lengths, table, w, u, b


def dlspec_step(ids, lengths, table, w, u, b):
    emb, lstm = OPS["embedding"], OPS["lstm_masked"]
    x = emb.forward(ids, table)
    h = lstm.forward(x, lengths, w, u, b, units=UNITS)
    g = np.ones_like(h)
    dx, _, dw, du, db = lstm.vjp(g, h, x, lengths, w, u, b, units=UNITS)
    _, dtable = emb.vjp(dx, x, ids, table)
    return dtable, dw


def torch_side(table, w, u, b):
    import torch
    from torch import nn

    e = nn.Embedding(VOCAB, DIM)
    lstm = nn.LSTM(DIM, UNITS, batch_first=True)
    keras_to_torch = np.concatenate([np.arange(k * UNITS, (k + 1) * UNITS)
                                     for k in (0, 1, 2, 3)])  # i, f, c(g), o: the same order
    with torch.no_grad():
        e.weight.copy_(torch.from_numpy(table))
        lstm.weight_ih_l0.copy_(torch.from_numpy(w.T[keras_to_torch]))
        lstm.weight_hh_l0.copy_(torch.from_numpy(u.T[keras_to_torch]))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b))
        lstm.bias_hh_l0.zero_()

    def step(ids, lengths):
        e.zero_grad()
        lstm.zero_grad()
        x = e(ids)
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (h, _) = lstm(packed)
        h[0].sum().backward()
        return e.weight.grad, lstm.weight_ih_l0.grad
    return step


def main(argv: list[str]) -> int:
    import torch

    quick = "--quick" in argv
    reps, steps = (5, 10) if quick else (11, 30)
    ids, lengths, table, w, u, b = data()
    tstep = torch_side(table, w, u, b)
    tids, tlen = torch.from_numpy(ids), torch.from_numpy(lengths)
    dt, dw = dlspec_step(ids, lengths, table, w, u, b)
    gt, gw = tstep(tids, tlen)
    print(f"check: table gradient max |diff| {np.abs(dt - gt.numpy()).max():.2e}, "
          f"kernel gradient max |diff| {np.abs(dw - gw.numpy().T).max():.2e}")
    times: dict[str, list[float]] = {"dlspec": [], "torch": []}
    for _ in range(2):  # warm-up
        dlspec_step(ids, lengths, table, w, u, b)
        tstep(tids, tlen)
    for _ in range(reps):
        for side in ("dlspec", "torch"):
            time.sleep(0.25)  # let BLAS threads settle (benchmarks/README.md)
            t0 = time.perf_counter()
            for _ in range(steps):
                if side == "dlspec":
                    dlspec_step(ids, lengths, table, w, u, b)
                else:
                    tstep(tids, tlen)
            times[side].append((time.perf_counter() - t0) / steps * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    paired = statistics.median(t / d for t, d in zip(times["torch"], times["dlspec"],
                                                     strict=True))
    print(f"embedding {VOCAB}x{DIM} + masked LSTM {UNITS}, batch {BATCH}, {TIME} steps, "
          f"forward + backward: dlspec {med['dlspec']:.2f} ms/step, torch "
          f"{med['torch']:.2f} ms/step (threads {torch.get_num_threads()}); "
          f"ratio torch/dlspec {med['torch'] / med['dlspec']:.2f}, paired {paired:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
