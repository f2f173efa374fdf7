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
``cnn_workload(repeats, quick)`` returns every number, for benchmarks/run.py to merge.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BATCH = 64
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
    from dlspec.spec.load import resolve
    from dlspec.spec.yamlload import load_yaml

    return resolve(load_yaml(CNN_SPEC, "<benchmark cnn>"), base=ROOT, check_data=False)


def synthetic(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, 28, 28, 1), dtype=np.float32),
            rng.integers(0, 10, rows).astype(np.int64))


class DlspecLoop:
    """fit()'s inner loop, step for step, over a persistent network and optimizer."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int = 0) -> None:
        from dlspec.engine.network import Network
        from dlspec.engine.optimizers import OPTIMIZERS

        spec = cnn_spec()
        self.net = Network(spec.layers, x.shape[1:], spec.train.loss)
        self.net.buffer.initialize(np.random.default_rng([seed, 1]))
        self.opt = OPTIMIZERS[spec.train.optimizer].make(self.net.buffer.flat.size,
                                                        dict(spec.train.optimizer_params))
        self.x, self.y, self.bs = x, y, spec.train.batch_size
        self.rng = np.random.default_rng([seed, 2])

    def run(self, steps: int) -> float:
        net, buf, opt, bs = self.net, self.net.buffer, self.opt, self.bs
        plan, loss_fn = net.train_plan, net.loss.fn
        in_slot, seed_slot = plan.input_slots[0], plan.seed_slot
        slots = plan.new_slots()
        batch = np.empty((bs, *self.x.shape[1:]), np.float32)
        n, done, total = len(self.x), 0, 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            while done < steps:
                order = self.rng.permutation(n)
                ye = self.y[order]
                for start in range(0, n, bs):
                    if done == steps:
                        break
                    idx = order[start:start + bs]
                    xb = batch[:len(idx)]
                    np.take(self.x, idx, axis=0, out=xb, mode="clip")  # as fit() gathers
                    slots[in_slot] = xb
                    plan.forward(slots)
                    loss, g = loss_fn(slots[seed_slot], ye[start:start + bs])
                    if not np.isfinite(loss):
                        raise RuntimeError("diverged")
                    plan.backward(slots, g)
                    opt.step(buf.flat, buf.grad)
                    total += loss
                    done += 1
        return total / steps


class TorchLoop:
    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int = 0) -> None:
        import torch
        from torch import nn

        torch.manual_seed(seed)
        self.torch = torch
        self.model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 5 * 5, 128), nn.ReLU(), nn.Linear(128, 10))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                    eps=1e-7)
        self.loss_fn = nn.CrossEntropyLoss()
        self.x = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        self.y = torch.from_numpy(y)
        self.gen = torch.Generator().manual_seed(seed)

    def run(self, steps: int) -> float:
        model, opt, loss_fn, bs = self.model, self.opt, self.loss_fn, BATCH
        n, done, total = len(self.x), 0, 0.0
        while done < steps:
            perm = self.torch.randperm(n, generator=self.gen)
            xe, ye = self.x[perm], self.y[perm]
            for start in range(0, n, bs):
                if done == steps:
                    break
                opt.zero_grad()
                loss = loss_fn(model(xe[start:start + bs]), ye[start:start + bs])
                loss.backward()
                opt.step()
                total += loss.item()
                done += 1
        return total / steps


def parity(steps: int = 5) -> float:
    """Max |dlspec - torch| over all weights after ``steps`` identical steps from the same
    weights: evidence that both sides train the same model, loss and optimizer."""
    import torch

    x, y = synthetic(BATCH * steps, seed=7)
    d, t = DlspecLoop(x, y, seed=3), TorchLoop(x, y)
    views = {p.value.name: v for p, v in zip(d.net.buffer.params, d.net.buffer.views,
                                                strict=True)}
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
    with torch.no_grad():
        for tp, view, to_torch in pairs:
            tp.copy_(torch.from_numpy(np.ascontiguousarray(to_torch(view))))
    plan, buf = d.net.train_plan, d.net.buffer
    s = plan.new_slots()
    for i in range(steps):
        xb, yb = x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]
        s[plan.input_slots[0]] = xb
        plan.forward(s)
        _, g = d.net.loss.fn(s[plan.seed_slot], yb)
        plan.backward(s, g)
        d.opt.step(buf.flat, buf.grad)
        t.opt.zero_grad()
        t.loss_fn(t.model(t.x[i * BATCH:(i + 1) * BATCH]), t.y[i * BATCH:(i + 1) * BATCH]
                  ).backward()
        t.opt.step()
    return max(float(np.abs(to_torch(view) - tp.detach().numpy()).max())
               for tp, view, to_torch in pairs)


def interleave(runners: dict, steps: int, repeats: int, gap: float = 0.25) -> dict:
    """ms/step of each runner: one warm-up, then ``repeats`` interleaved repetitions."""
    for r in runners.values():
        r.run(min(steps, 5))
    ms: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for k, r in runners.items():
            time.sleep(gap)
            gc.collect()
            t = time.perf_counter()
            r.run(steps)
            ms[k].append((time.perf_counter() - t) / steps * 1e3)
    return ms


def summary(ms: dict[str, list[float]], base: str = "torch") -> dict:
    out = {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "reps": v}
           for k, v in ms.items()}
    for k, d in out.items():
        if k != base:  # > 1: dlspec is faster; rep i of torch ran right after rep i of k
            d["speedup_median"] = out[base]["median"] / d["median"]
            d["speedup_min"] = out[base]["min"] / d["min"]
            d["speedup_paired"] = statistics.median(
                t / s for t, s in zip(ms[base], ms[k], strict=True))
    return out


# A small launcher runs the child: a process forked from this (large) one would inherit its
# peak RSS, since Linux carries the pre-exec high-water mark into ru_maxrss.
_LAUNCHER = """\
import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:])
_, status, ru = os.wait4(p.pid, 0)
print(ru.ru_maxrss if os.waitstatus_to_exitcode(status) == 0 else -1)
"""


def peak_rss_mib(side: str, steps: int) -> float:
    """Peak RSS of a child process that trains ``steps`` steps on one side only."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, __file__, "--only",
                          side, "--steps", str(steps)], capture_output=True, text=True,
                         check=True).stdout
    kib = int(out.strip().splitlines()[-1])
    if kib < 0:
        raise RuntimeError(f"the {side} child failed")
    return kib / 1024


def cnn_workload(repeats: int = 7, quick: bool = False) -> dict:
    """dlspec vs PyTorch on the CNN: ms/step (median, min, max), speedups, peak RSS."""
    steps = 20 if quick else 50
    x, y = synthetic(BATCH * steps)
    ms = interleave({"dlspec": DlspecLoop(x, y), "torch": TorchLoop(x, y)}, steps, repeats)
    out = {"key": "cnn", "label": LABEL, "steps_per_rep": steps, "repeats": repeats,
           "ms_per_step": summary(ms), "parity_max_abs_diff_after_5_steps": parity()}
    out["peak_rss_mib"] = {side: peak_rss_mib(side, steps) for side in ("dlspec", "torch")}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 reps of 20 steps")
    ap.add_argument("--repeats", type=int, help="interleaved repetitions (default 7, quick 3)")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--only", choices=("dlspec", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=20, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.only:  # a child measured for peak RSS
        x, y = synthetic(BATCH * a.steps)
        (DlspecLoop if a.only == "dlspec" else TorchLoop)(x, y).run(a.steps)
        return 0
    res = cnn_workload(a.repeats or (3 if a.quick else 7), a.quick)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    m = res["ms_per_step"]
    print(f"{res['label']}: ms/step over {res['repeats']} interleaved reps of "
          f"{res['steps_per_rep']} steps")
    print(f"{'':8} {'median':>8} {'min':>8} {'max':>8} {'peak RSS MiB':>13}")
    for k in ("dlspec", "torch"):
        print(f"{k:8} {m[k]['median']:8.2f} {m[k]['min']:8.2f} {m[k]['max']:8.2f} "
              f"{res['peak_rss_mib'][k]:13.0f}")
    d = m["dlspec"]
    print(f"speedup torch/dlspec: median {d['speedup_median']:.2f}x, min {d['speedup_min']:.2f}x,"
          f" paired {d['speedup_paired']:.2f}x")
    print(f"dlspec vs torch, max |weight difference| after 5 identical steps from the same "
          f"weights: {res['parity_max_abs_diff_after_5_steps']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
