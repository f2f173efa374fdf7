"""What the step-loop benchmarks share (cnn_bench.py, lstm_bench.py, run.py).

- ``DlspecLoop``: fit()'s inner loop, step for step, over a network built from a spec.
- ``TorchLoop``: the idiomatic PyTorch loop over the same kind of batches.
- ``interleave`` / ``summary``: repetitions in one process, medians and paired ratios.
- ``peak_rss_mib``: one side's peak memory, measured in a child process.
"""

from __future__ import annotations

import gc
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def load_spec_text(text: str, name: str):
    from dlspec.spec.load import resolve
    from dlspec.spec.yamlload import load_yaml

    return resolve(load_yaml(text, f"<benchmark {name}>"), base=ROOT, check_data=False)


class DlspecLoop:
    """fit()'s inner loop, step for step: a shuffled batch gathered into a reused buffer;
    plan.forward, loss, isfinite, plan.backward, opt.step."""

    def __init__(self, spec, x: np.ndarray, y: np.ndarray, seed: int = 0) -> None:
        from dlspec.engine.network import Network
        from dlspec.engine.optimizers import OPTIMIZERS

        self.net = Network(spec.layers, x.shape[1:], spec.train.loss)
        self.make_opt = lambda: OPTIMIZERS[spec.train.optimizer].make(
            self.net.buffer.flat.size, dict(spec.train.optimizer_params))
        self.x, self.y, self.bs, self.seed = x, y, spec.train.batch_size, seed
        self.reset()

    def reset(self) -> None:
        """Fresh weights, optimizer and shuffling: every repetition times the same steps."""
        self.net.buffer.initialize(np.random.default_rng([self.seed, 1]))
        self.opt = self.make_opt()
        self.rng = np.random.default_rng([self.seed, 2])

    def step(self, slots: list, xb: np.ndarray, yb: np.ndarray) -> float:
        plan, buf = self.net.train_plan, self.net.buffer
        slots[plan.input_slots[0]] = xb
        plan.forward(slots)
        loss, g = self.net.loss.fn(slots[plan.seed_slot], yb)
        if not np.isfinite(loss):
            raise RuntimeError("diverged")
        plan.backward(slots, g)
        self.opt.step(buf.flat, buf.grad)
        return loss

    def run(self, steps: int) -> float:
        slots = self.net.train_plan.new_slots()
        batch = np.empty((self.bs, *self.x.shape[1:]), np.float32)
        n, done, total = len(self.x), 0, 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            while done < steps:
                order = self.rng.permutation(n)
                ye = self.y[order]
                for start in range(0, n, self.bs):
                    if done == steps:
                        break
                    idx = order[start:start + self.bs]
                    xb = batch[:len(idx)]
                    np.take(self.x, idx, axis=0, out=xb, mode="clip")  # as fit() gathers
                    total += self.step(slots, xb, ye[start:start + self.bs])
                    done += 1
        return total / steps


class TorchLoop:
    """zero_grad, forward, loss, backward, step over shuffled slices (one gather per epoch).

    ``build`` returns the model; ``x`` and ``y`` are already in PyTorch's layout."""

    def __init__(self, build: Callable, loss_fn, x, y, bs: int, seed: int = 0) -> None:
        import torch

        self.torch, self.seed, self.bs = torch, seed, bs
        torch.manual_seed(seed)
        self.model = build()
        self.loss_fn, self.x, self.y = loss_fn, x, y
        self.reset()

    def reset(self) -> None:
        """Fresh weights, optimizer and shuffling (see DlspecLoop.reset)."""
        torch = self.torch
        torch.manual_seed(self.seed)
        for m in self.model.modules():
            if m is not self.model and hasattr(m, "reset_parameters"):
                m.reset_parameters()
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                    eps=1e-7)
        self.gen = torch.Generator().manual_seed(self.seed)

    def run(self, steps: int) -> float:
        model, opt, loss_fn, bs = self.model, self.opt, self.loss_fn, self.bs
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


def interleave(runners: dict, steps: int, repeats: int, gap: float = 0.25) -> dict:
    """ms/step of each runner: one warm-up, then ``repeats`` interleaved repetitions, each
    from a fresh reset and after a settle gap (OpenBLAS's threads spin ~0.1 s after numpy's
    last GEMM)."""
    for r in runners.values():
        r.run(min(steps, 5))
    ms: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(repeats):
        for k, r in runners.items():
            r.reset()
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


def peak_rss_mib(script: str, side: str, steps: int) -> float:
    """Peak RSS of a child process that runs ``script --only SIDE --steps N``: one side
    alone, so neither side's memory hides the other's."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, sys.executable, script, "--only",
                          side, "--steps", str(steps)], capture_output=True, text=True,
                         check=True).stdout
    kib = int(out.strip().splitlines()[-1])
    if kib < 0:
        raise RuntimeError(f"the {side} child of {script} failed")
    return kib / 1024


def print_summary(res: dict) -> None:
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
