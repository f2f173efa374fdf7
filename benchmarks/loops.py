"""What the step-loop benchmarks share (cnn_bench.py, lstm_bench.py, run.py).

- ``DlspecLoop``: fit()'s inner loop, step for step, over a network built from a spec.
- ``TorchLoop``: the idiomatic PyTorch loop over the same kind of batches.
- ``interleave`` / ``summary``: repetitions in one process, medians and paired ratios.
- ``peak_rss_mib``: one side's peak memory, measured in a child process.
- ``steady_allocator``: glibc's malloc settings of a long training run, for PyTorch's sake.
- ``workload`` / ``main``: a benchmark module's numbers and its command line. The module
  gives ``KEY``, ``LABEL``, ``BATCH``, ``synthetic(rows)``, ``dlspec_loop(x, y)``,
  ``torch_loop(x, y)`` and ``parity()``.
- ``param_views`` / ``copy_to_torch`` / ``lockstep``: what every ``parity()`` does: the
  same weights on both sides, identical steps, the largest parameter difference.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


# glibc serves allocations above a threshold (128 KiB at first) with fresh mmap()s and
# gives the top of the heap back to the OS past another: every step, PyTorch's new
# activation tensors then cost page faults again. The thresholds rise by themselves when
# big blocks are freed (e.g. a per-epoch shuffle of a 60,000-image set), which is where a
# real training run sits; a benchmark on a small data set stays below them. Measured on
# the CNN: torch 10-12 ms/step with the defaults in a fresh process, 6.8-7.1 ms with
# these settings (dlspec, whose step allocates nothing, is unaffected). So every
# benchmark process starts with them, and the subprocesses get them through the
# environment.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}


def steady_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds in this process (False where not glibc)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_mmap_threshold, int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]))
                and mallopt(m_trim_threshold, int(MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"])))


def load_spec_text(text: str, name: str):
    from dlspec.spec.load import resolve
    from dlspec.spec.yamlload import load_yaml

    return resolve(load_yaml(text, f"<benchmark {name}>"), base=ROOT, check_data=False)


def network_of(spec, shape: tuple):
    """A spec's network compiled at one input's example ``shape``, its loss attached."""
    from dlspec.engine.network import Network
    from dlspec.spec.compile import compile_graph

    return Network(compile_graph(spec, {spec.model.inputs[0].name: tuple(shape)}).graph)


class DlspecLoop:
    """fit()'s inner loop, step for step: a shuffled batch gathered into a reused buffer;
    plan.forward, loss, isfinite, plan.backward, opt.step."""

    def __init__(self, spec, x: np.ndarray, y: np.ndarray, seed: int = 0) -> None:
        from dlspec.engine.network import Network
        from dlspec.engine.optimizers import OPTIMIZERS

        self.net = Network.chain(spec.layers, x.shape[1:], spec.train.loss) \
            if spec.model.inputs[0].shape is None else network_of(spec, x.shape[1:])
        self.make_opt = lambda: OPTIMIZERS[spec.train.optimizer].make(
            self.net.buffer.train_size, dict(spec.train.optimizer_params))
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
        slots[plan.target_slots[0]] = yb
        plan.forward(slots)
        loss = slots[plan.seed_slot]
        if not np.isfinite(loss):
            raise RuntimeError("diverged")
        plan.backward(slots)
        self.opt.step(buf.train_flat, buf.train_grad)
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


def param_views(loop: DlspecLoop) -> dict[str, np.ndarray]:
    """Each parameter of a DlspecLoop's network (``node.param``) as a view of its buffer."""
    buf = loop.net.buffer
    return {p.value.name: v for p, v in zip(buf.params, buf.views, strict=True)}


def copy_to_torch(pairs: list) -> None:
    """Copy dlspec's weights into PyTorch's: ``pairs`` of (torch parameter, dlspec view,
    a function from dlspec's layout to torch's)."""
    import torch

    with torch.no_grad():
        for tp, view, to_torch in pairs:
            tp.copy_(torch.from_numpy(np.ascontiguousarray(to_torch(view))))


def lockstep(d: DlspecLoop, t: TorchLoop, pairs: list, x, y, steps: int, batch: int) -> float:
    """``steps`` identical steps on both sides (batches of ``batch`` rows in order); the
    largest |dlspec - torch| over the ``pairs``' parameters after them."""
    slots = d.net.train_plan.new_slots()
    for i in range(steps):
        rows = slice(i * batch, (i + 1) * batch)
        d.step(slots, x[rows], y[rows])
        t.opt.zero_grad()
        t.loss_fn(t.model(t.x[rows]), t.y[rows]).backward()
        t.opt.step()
    return max(float(np.abs(to_torch(view) - tp.detach().numpy()).max())
               for tp, view, to_torch in pairs)


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
                         check=True, env={**os.environ, **MALLOC_ENV}).stdout
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


def workload(bench: ModuleType, repeats: int = 7, quick: bool = False) -> dict:
    """dlspec vs PyTorch on one benchmark module's network: ms/step (median, min, max),
    speedups, parity, peak RSS per side."""
    steps = 20 if quick else 50
    x, y = bench.synthetic(bench.BATCH * steps)
    ms = interleave({"dlspec": bench.dlspec_loop(x, y), "torch": bench.torch_loop(x, y)},
                    steps, repeats)
    out = {"key": bench.KEY, "label": bench.LABEL, "steps_per_rep": steps, "repeats": repeats,
           "ms_per_step": summary(ms), "parity_max_abs_diff_after_5_steps": bench.parity()}
    out["peak_rss_mib"] = {side: peak_rss_mib(bench.__file__, side, steps)
                           for side in ("dlspec", "torch")}
    return out


def main(bench: ModuleType, argv: list[str] | None = None) -> int:
    """The command line of a benchmark module (``--only`` runs one side, for peak RSS)."""
    ap = argparse.ArgumentParser(description=bench.__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 reps of 20 steps")
    ap.add_argument("--repeats", type=int, help="interleaved repetitions (default 7, quick 3)")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--only", choices=("dlspec", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=20, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    steady_allocator()
    if a.only:  # a child measured for peak RSS
        x, y = bench.synthetic(bench.BATCH * a.steps)
        (bench.dlspec_loop if a.only == "dlspec" else bench.torch_loop)(x, y).run(a.steps)
        return 0
    res = workload(bench, a.repeats or (3 if a.quick else 7), a.quick)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    print_summary(res)
    return 0
