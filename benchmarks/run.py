#!/usr/bin/env python
"""Training throughput of dlspec's NumPy engine vs PyTorch CPU eager.

    python benchmarks/run.py [--quick] [--json OUT.json] [--repeats N] [--markdown] [--profile]
                             [--workloads churn,mlp784,cnn,lstm,residual,residual_dense,rbm]

Workloads (identical shapes, batch size, Adam(lr=1e-3, eps=1e-7), loss, steps):
  1. churn MLP 11-6-6-1 (relu, relu, sigmoid + binary cross-entropy), batch 10, one
     epoch (800 steps) per repetition, on the real churn data through dlspec's spec +
     dataset pipeline when the CSV exists, else on synthetic 8000x11 data;
  2. MLP 784-256-128-10 (relu, relu, softmax + categorical cross-entropy), batch 128,
     synthetic float32 data, one epoch of 12,800 rows (100 steps) per repetition;
  3. the CNN of cnn_bench.py, 4. the LSTM of lstm_bench.py and 5. the residual block of
     residual_bench.py (a graph spec: a conv block added to its input) and its dense twin
     residual_dense_bench.py, 50 steps (quick: 20) per repetition, as step loops; the
     same for rbm_bench.py (a CD-1 step of an RBM 784-500 on MNIST, batch 100, and SGD);
  6. the whole 50-epoch churn training: `dlspec train specs/churn.yaml` as a subprocess
     vs benchmarks/torch_churn.py (wall time, one run each), when the data exists.
Every process runs with glibc's malloc thresholds of a long training run (see
loops.steady_allocator), and the report names numpy's BLAS kernels.

The MLPs are timed two ways: `dlspec.engine.trainer.fit` itself for one
epoch (which also initializes, builds the optimizer, computes the epoch's metrics and
validates), and a raw step loop that replicates fit's inner loop (per epoch a shuffled
order, per batch one gather into a reused buffer; plan.forward (the loss included), isfinite,
plan.backward, opt.step; the loss is a kernel of the plan). fit() minus the raw loop is the
training loop's own overhead.
PyTorch runs the idiomatic loop (zero_grad, forward, loss, backward, step) over
per-epoch gather-then-slice batches. Every repetition starts from fresh weights and optimizer
state (reset outside the timed region), so each one times the same first epoch.
Repetitions are interleaved in one process (dlspec fit, dlspec loop, torch, dlspec
fit, ...) after a warm-up; see Timer for the settle gap and the contention checks, and
benchmarks/README.md for results.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import io
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cnn_bench
import loops
import lstm_bench
import numpy as np
import rbm_bench
import residual_bench
import residual_dense_bench

from dlspec.engine.kernels import aligned
from dlspec.engine.network import Network
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.engine.trainer import fit
from dlspec.spec.load import load_spec, resolve
from dlspec.spec.yamlload import load_yaml

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "churn" / "Churn_Modelling.csv"
CHURN_SPEC = ROOT / "specs" / "churn.yaml"
ADAM = {"lr": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}

MLP_SPEC = """\
dlspec: 1
name: mlp_784
data: {source: synthetic.csv, target: label}
model:
  layers:
    - dense: {units: 256, activation: relu}
    - dense: {units: 128, activation: relu}
    - dense: {units: 10, activation: softmax}
train:
  loss: categorical_crossentropy
  optimizer: {adam: {lr: 0.001, epsilon: 1.0e-7}}
  batch_size: 128
  epochs: 1
  metrics: [accuracy]
"""


# --------------------------------------------------------------------------- dlspec side

class DlspecRaw:
    """fit()'s inner loop, step for step (the network and optimizer reset per repetition)."""

    def __init__(self, net: Network, train_spec, x: np.ndarray, y: np.ndarray, seed: int = 0):
        self.net, self.x, self.y, self.spec, self.seed = net, x, y, train_spec, seed
        self.bs = train_spec.batch_size
        self.buf = net.buffer
        self.plan = net.train_plan
        assert not self.plan.noise_slots, "benchmark models have no dropout"
        self.shuffle = True
        self.reset()

    def reset(self) -> None:
        """Fresh weights, optimizer and shuffling: every repetition is the same first epoch
        (as in fit()); a network trained on for many epochs on random labels memorizes
        them, and its steps change speed as it does."""
        self.buf.initialize(np.random.default_rng([self.seed, 1]))
        self.opt = OPTIMIZERS[self.spec.optimizer].make(self.buf.train_size,
                                                        dict(self.spec.optimizer_params))
        self.rng = np.random.default_rng([self.seed, 2])

    def run(self, steps: int) -> float:
        plan, buf, opt, bs = self.plan, self.buf, self.opt, self.bs
        in_slot, (target_slot,), loss_slot = plan.input_slots[0], plan.target_slots, \
            plan.seed_slot
        params, grads = buf.train_flat, buf.train_grad
        state_updates = getattr(plan, "state_updates", None)
        slots = plan.new_slots()
        batch = aligned((bs, *self.x.shape[1:]))
        n, done, total = len(self.x), 0, 0.0
        while done < steps:
            order = self.rng.permutation(n) if self.shuffle else np.arange(n)
            ye = self.y[order]
            for start in range(0, n, bs):
                if done == steps:
                    break
                idx = order[start:start + bs]  # one gather per batch into a reused buffer,
                xb = batch[:len(idx)]          # as fit() does
                np.take(self.x, idx, axis=0, out=xb, mode="clip")
                slots[in_slot] = xb
                slots[target_slot] = ye[start:start + bs]
                plan.forward(slots)
                if state_updates:  # e.g. batch-norm moving statistics
                    plan.update_state(slots)
                loss = slots[loss_slot]
                if not np.isfinite(loss):
                    raise RuntimeError("diverged")
                plan.backward(slots)
                opt.step(params, grads)
                total += loss * len(xb)
                done += 1
        return total


class DlspecFit:
    """dlspec.engine.trainer.fit for one epoch (fresh init + optimizer, then evaluation)."""

    def __init__(self, net: Network, train_spec, task: str, x: dict, y: dict):
        self.net, self.task, self.x, self.y = net, task, x, y
        self.spec = dataclasses.replace(train_spec, epochs=1, early_stopping=None)
        self.steps = -(-len(x["train"]) // train_spec.batch_size)

    def run(self, steps: int) -> None:
        assert steps == self.steps
        result, _ = fit(self.net, self.spec, self.task, self.x, self.y)
        assert result.steps == steps

    def start_ms(self, repeats: int = 11) -> float:
        """fit()'s one-off start (initializing the weights, building the optimizer and the
        buffers), timed as a fit of zero epochs: median ms."""
        spec = dataclasses.replace(self.spec, epochs=0)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fit(self.net, spec, self.task, self.x, self.y)
            times.append((time.perf_counter() - t) * 1e3)
        return statistics.median(times)


# --------------------------------------------------------------------------- torch side

def TorchLoop(sizes: list[int], loss: str, x: np.ndarray, y: np.ndarray,  # noqa: N802
              bs: int) -> loops.TorchLoop:
    """PyTorch's loop over the MLP ``sizes`` (relu between Linear layers; the loss on the
    logits: BCEWithLogitsLoss or CrossEntropyLoss)."""
    import torch
    from torch import nn

    def build() -> nn.Module:
        mods: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            mods.append(nn.Linear(a, b))
            if i < len(sizes) - 2:
                mods.append(nn.ReLU())
        return nn.Sequential(*mods)

    loss_fn = nn.BCEWithLogitsLoss() if loss == "bce" else nn.CrossEntropyLoss()
    yt = (torch.from_numpy(y.astype(np.float32).reshape(-1, 1)) if loss == "bce"
          else torch.from_numpy(y.astype(np.int64)))
    return loops.TorchLoop(build, loss_fn, torch.from_numpy(x), yt, bs)


def parity_check(net: Network, train_spec, sizes: list[int], loss: str,
                 x: np.ndarray, y: np.ndarray, steps: int = 5) -> float:
    """Max |dlspec - torch| over all parameters after ``steps`` identical steps from the
    same weights: evidence that both sides run the same model, loss and optimizer."""
    import torch
    from torch import nn

    raw = DlspecRaw(net, train_spec, x, y, seed=123)
    tl = TorchLoop(sizes, loss, x, y, train_spec.batch_size)
    views = net.buffer.views
    lin = [m for m in tl.model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, m in enumerate(lin):
            m.weight.copy_(torch.from_numpy(views[2 * i].T.copy()))
            m.bias.copy_(torch.from_numpy(views[2 * i + 1].copy()))
    bs = train_spec.batch_size
    raw.shuffle = False  # same batches on both sides: the first `steps` slices
    raw.run(steps)
    for s in range(steps):
        xb, yb = tl.x[s * bs:(s + 1) * bs], tl.y[s * bs:(s + 1) * bs]
        tl.opt.zero_grad()
        tl.loss_fn(tl.model(xb), yb).backward()
        tl.opt.step()
    diff = 0.0
    for i, m in enumerate(lin):
        diff = max(diff, float(np.abs(views[2 * i] - m.weight.detach().numpy().T).max()),
                   float(np.abs(views[2 * i + 1] - m.bias.detach().numpy()).max()))
    return diff


# --------------------------------------------------------------------------- timing

def _psi_stall() -> float | None:
    """Seconds, since boot, that some runnable task waited for a CPU (Linux PSI)."""
    try:
        with open("/proc/pressure/cpu") as fh:
            return int(fh.readline().split("total=")[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return None


def _busy_cpu() -> float:
    """CPU seconds all processes ran, since boot (/proc/stat, 10 ms resolution)."""
    try:
        with open("/proc/stat") as fh:
            v = [int(f) for f in fh.readline().split()[1:9]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return float("nan")


def _own_cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class Timer:
    """Times one repetition and says whether CPU contention disturbed it.

    The machines this runs on are small (2 vCPUs) and shared, so every repetition
    records the CPU pressure stall (PSI: time some runnable task waited for a CPU)
    and the CPU time other processes used. A clean repetition has a stall of ~0-2 ms;
    a disturbed one is repeated once the other processes leave the CPUs alone (up to
    ``retries`` times, and only until ``deadline``, a time.perf_counter() value that
    keeps the whole run within its time limit), and otherwise kept and counted as
    disturbed.

    Before each repetition the timer sleeps ``gap`` seconds: after numpy's last BLAS
    call OpenBLAS's worker threads keep spinning for ~0.1 s, and a torch repetition
    started at once runs on one core less (measured: 2x slower for the 784 MLP).
    """

    def __init__(self, gap: float, retries: int, deadline: float) -> None:
        self.gap, self.retries, self.deadline = gap, retries, deadline
        self.ncpu = len(os.sched_getaffinity(0))
        self.retried = 0

    def disturbed(self, wall: float, stall: float | None, foreign: float, psi: bool) -> bool:
        if psi and stall is not None and stall > 0.002 + 0.02 * wall:
            return True
        return foreign > 0.03 + 0.1 * wall * self.ncpu

    def wait_quiet(self, max_s: float, window: float = 0.5) -> bool:
        """Sleep until other processes leave the CPUs alone for ``window`` seconds."""
        t_end = time.perf_counter() + max_s
        while time.perf_counter() < t_end:
            b0, o0 = _busy_cpu(), _own_cpu()
            time.sleep(window)
            if (_busy_cpu() - b0) - (_own_cpu() - o0) < 0.05 * window * self.ncpu:
                return True
        return False

    def once(self, fn, psi: bool = True, setup=None) -> dict:
        if setup is not None:
            setup()
        time.sleep(self.gap)
        gc.collect()
        p0, b0, o0 = _psi_stall(), _busy_cpu(), _own_cpu()
        t = time.perf_counter()
        fn()
        wall = time.perf_counter() - t
        p1, b1, o1 = _psi_stall(), _busy_cpu(), _own_cpu()
        stall = None if p0 is None or p1 is None else p1 - p0
        foreign = max(0.0, (b1 - b0) - (o1 - o0))
        return {"wall": wall, "stall": stall, "foreign": foreign,
                "disturbed": self.disturbed(wall, stall, foreign, psi)}

    def measure(self, fn, psi: bool = True, setup=None) -> dict:
        """One clean repetition if it can get one (else the least disturbed attempt).

        ``psi=False`` judges by other processes' CPU time alone (for subprocesses whose
        own thread pools may queue for the CPUs)."""
        best, tries = None, 0
        while True:
            r = dict(self.once(fn, psi, setup), attempt=tries)
            tries += 1
            if best is None or not r["disturbed"] or (
                    best["disturbed"] and r["foreign"] + (r["stall"] or 0)
                    < best["foreign"] + (best["stall"] or 0)):
                best = r
            left = self.deadline - time.perf_counter()
            if not r["disturbed"] or tries > self.retries or left < 2 * r["wall"]:
                break
            self.retried += 1
            self.wait_quiet(min(left - 2 * r["wall"], 15.0))
        return dict(best, attempts=tries)


# --------------------------------------------------------------------------- workloads

def churn_workload(data: Path | None) -> dict:
    if data is not None and data.is_file():
        from dlspec.inputs import load_dataset

        spec = load_spec(CHURN_SPEC, [f"data.source={data}"])
        ds = load_dataset(spec)
        x = {k: v["features"] for k, v in ds.x.items()}
        y, task = ds.y, ds.target.task
        source = f"real churn data ({data}, {len(x['train'])} training rows, via dlspec's pipeline)"
    else:
        spec = load_spec(CHURN_SPEC, [], check_data=False)
        rng = np.random.default_rng(0)
        xt = rng.standard_normal((8000, 11), dtype=np.float32)
        yt = rng.integers(0, 2, 8000).astype(np.int64)
        x, y, task = {"train": xt, "validation": xt[:0]}, {"train": yt, "validation": yt[:0]}, \
            "binary"
        source = "synthetic random data 8000x11 (churn CSV not found)"
    assert dict(spec.train.optimizer_params) == ADAM, spec.train.optimizer_params
    n_feat = x["train"].shape[1]
    return {"key": "churn", "label": f"churn MLP {n_feat}-6-6-1, batch {spec.train.batch_size}",
            "spec": spec, "task": task, "x": x, "y": y, "sizes": [n_feat, 6, 6, 1],
            "loss": "bce", "source": source}


def mlp_workload(rows: int) -> dict:
    spec = resolve(load_yaml(MLP_SPEC, "<benchmark mlp_784>"), base=ROOT, check_data=False)
    assert dict(spec.train.optimizer_params) == ADAM, spec.train.optimizer_params
    rng = np.random.default_rng(1)
    xt = rng.standard_normal((rows, 784), dtype=np.float32)  # standardized, like scaled pixels
    yt = rng.integers(0, 10, rows).astype(np.int64)
    return {"key": "mlp784", "label": "MLP 784-256-128-10, batch 128", "spec": spec,
            "task": "multiclass", "x": {"train": xt, "validation": xt[:0]},
            "y": {"train": yt, "validation": yt[:0]}, "sizes": [784, 256, 128, 10],
            "loss": "cce", "source": f"synthetic float32 N(0,1) data {rows}x784, 10 classes"}


def bench_workload(w: dict, repeats: int, raw_steps: int, profile: bool,
                   timer: Timer) -> dict:
    spec, x, y = w["spec"], w["x"], w["y"]
    n_feat = x["train"].shape[1]
    mk = lambda: Network.chain(spec.layers, n_feat, spec.train.loss)  # noqa: E731
    parity = parity_check(mk(), spec.train, w["sizes"], w["loss"], x["train"], y["train"])
    fitter = DlspecFit(mk(), spec.train, w["task"], x, y)
    raw = DlspecRaw(mk(), spec.train, x["train"], y["train"])
    tl = TorchLoop(w["sizes"], w["loss"], x["train"], y["train"], spec.train.batch_size)
    # (name, reset outside the timing, run, steps); fit() re-initializes by itself
    runners = [("dlspec_fit", None, fitter.run, fitter.steps),
               ("dlspec_loop", raw.reset, raw.run, raw_steps),
               ("torch", tl.reset, tl.run, raw_steps)]
    for _, _, fn, steps in runners:  # warm-up: one repetition each
        fn(steps)
    reps: dict[str, list[dict]] = {k: [] for k, _, _, _ in runners}
    for _ in range(repeats):
        for k, reset, fn, steps in runners:
            r = timer.measure(lambda fn=fn, steps=steps: fn(steps), setup=reset)
            reps[k].append(dict(r, us_per_step=r["wall"] / steps * 1e6))
    out = {"label": w["label"], "data": w["source"], "batch_size": spec.train.batch_size,
           "parity_max_abs_diff_after_5_steps": parity,
           "steps_per_rep": {k: s for k, _, _, s in runners}, "us_per_step": {}, "reps": reps}
    _summarize(out, reps, ("dlspec_fit", "dlspec_loop"))
    if fitter.steps == raw_steps:  # what fit() adds per epoch, paired by round
        extra = [(f["wall"] - r["wall"]) for f, r in zip(reps["dlspec_fit"],
                                                        reps["dlspec_loop"], strict=True)]
        out["fit_minus_loop_ms_per_epoch"] = statistics.median(extra) * 1e3
        # the training loop's own overhead (shuffling, batching, metrics, validation) as a
        # share of the steps it drives, less fit's one-off start (weights, optimizer)
        out["fit_start_ms"] = start = fitter.start_ms()
        out["loop_overhead_pct"] = statistics.median(
            (e - start / 1e3) / r["wall"] * 100
            for e, r in zip(extra, reps["dlspec_loop"], strict=True))
    out["peak_rss_mib"] = {side: _child_rss(w["key"], side, raw_steps)
                           for side in ("dlspec", "torch")}
    if profile:
        out["profile_dlspec_loop"] = _profile(raw, raw_steps, 18)
        out["profile_torch"] = _profile(tl, raw_steps, 12)
    return out


def _profile(runner, steps: int, lines: int) -> str:
    """cProfile of one repetition of ``runner`` from a fresh reset, its top ``lines``."""
    runner.reset()
    pr = cProfile.Profile()
    pr.enable()
    runner.run(steps)
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(lines)
    return s.getvalue()


def bench_loops(module, repeats: int, quick: bool, timer: Timer) -> dict:
    """A workload timed as step loops only (dlspec's fit() inner loop vs PyTorch's):
    the CNN (cnn_bench.py) and the LSTM (lstm_bench.py), with run.py's contention checks."""
    steps = 20 if quick else 50
    x, y = module.synthetic(module.BATCH * steps)
    runners = {"dlspec_loop": module.dlspec_loop(x, y), "torch": module.torch_loop(x, y)}
    for r in runners.values():  # warm-up
        r.run(min(steps, 5))
    reps: dict[str, list[dict]] = {k: [] for k in runners}
    for _ in range(repeats):
        for k, r in runners.items():
            m = timer.measure(lambda r=r: r.run(steps), setup=r.reset)
            reps[k].append(dict(m, us_per_step=m["wall"] / steps * 1e6))
    out = {"label": module.LABEL, "data": getattr(module, "DATA", "synthetic float32 N(0,1) data"),
           "batch_size": module.BATCH, "parity_max_abs_diff_after_5_steps": module.parity(),
           "steps_per_rep": {k: steps for k in runners}, "us_per_step": {}, "reps": reps}
    _summarize(out, reps, ("dlspec_loop",))
    script = str(Path(module.__file__).resolve())
    out["peak_rss_mib"] = {side: loops.peak_rss_mib(script, side, steps)
                           for side in ("dlspec", "torch")}
    return out


def _summarize(out: dict, reps: dict, dlspec_keys: tuple) -> None:
    for k, rs in reps.items():
        v = [r["us_per_step"] for r in rs]
        out["us_per_step"][k] = {"median": statistics.median(v), "min": min(v), "max": max(v),
                                 "disturbed_reps": sum(r["disturbed"] for r in rs),
                                 "retries": sum(r["attempts"] - 1 for r in rs)}
    tv = [r["us_per_step"] for r in reps["torch"]]
    for k in dlspec_keys:  # rep i of torch ran right after rep i of k
        ratios = [t / r["us_per_step"] for t, r in zip(tv, reps[k], strict=True)]
        out["us_per_step"][k]["paired_ratio"] = {"median": statistics.median(ratios),
                                                  "min": min(ratios), "max": max(ratios)}


# A small launcher measures the child: a process forked from this (large) one would
# inherit its peak RSS, since Linux carries the pre-exec high-water mark into ru_maxrss.
_LAUNCHER = """\
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:])
_, status, ru = os.wait4(p.pid, 0)
wall = time.perf_counter() - t
sys.stdout.flush()
print(f"__CHILD__ {wall} {ru.ru_maxrss}", flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _run_child(cmd: list[str], cwd: Path) -> tuple[float, str, int, float]:
    """(wall seconds, output, exit status, peak RSS MiB) of one subprocess."""
    p = subprocess.run([sys.executable, "-c", _LAUNCHER, *cmd], cwd=cwd, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env={**os.environ, **loops.MALLOC_ENV})
    lines = p.stdout.rstrip("\n").splitlines()
    tag = next(i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("__CHILD__"))
    _, wall, rss_kib = lines[tag].split()
    return float(wall), "\n".join(lines[:tag]), p.returncode, int(rss_kib) / 1024


def _child_rss(key: str, side: str, steps: int) -> float:
    """Peak RSS (MiB) of a child process that trains one side of workload ``key`` alone."""
    cmd = [sys.executable, __file__, "--child", key, "--side", side, "--steps", str(steps),
           "--data", str(_DATA[0])]
    wall, log, status, rss = _run_child(cmd, ROOT)
    if status != 0:
        raise RuntimeError(f"the {key}/{side} child failed ({status}):\n{log}")
    return rss


_DATA = [DEFAULT_DATA]  # the churn CSV this run uses (children load the same)


def child(key: str, side: str, steps: int, data: Path) -> int:
    """Train ``steps`` steps of one workload on one side, for a peak-memory measurement."""
    w = churn_workload(data) if key == "churn" else mlp_workload(steps * 128)
    spec, x, y = w["spec"], w["x"]["train"], w["y"]["train"]
    if side == "dlspec":
        net = Network.chain(spec.layers, x.shape[1], spec.train.loss)
        DlspecRaw(net, spec.train, x, y).run(steps)
    else:
        TorchLoop(w["sizes"], w["loss"], x, y, spec.train.batch_size).run(steps)
    return 0


def bench_end_to_end(data: Path, epochs: int, timer: Timer) -> dict:
    exe = Path(sys.executable).parent / "dlspec"
    cli = [str(exe)] if exe.is_file() else [sys.executable, "-m", "dlspec"]
    out: dict = {"epochs": epochs}
    with tempfile.TemporaryDirectory(prefix="dlspec-bench-") as tmp:
        box: dict = {}

        def cmd_for(run_dir: Path) -> list[str]:
            # --no-report: the same work as before report.html existed (writing the page
            # takes 15-60 ms, measured apart), so the comparison with PyTorch stays like
            # for like
            return cli + ["train", str(CHURN_SPEC), "--quiet", "--set", f"data.source={data}",
                          "--set", f"train.epochs={epochs}", "--run-dir", str(run_dir),
                          "--no-report"]

        def dl() -> None:  # a fresh run directory per attempt
            run_dir = Path(tempfile.mkdtemp(dir=tmp)) / "run"
            r = _run_child(cmd_for(run_dir), ROOT)
            if r[2] != 0:
                raise RuntimeError(f"dlspec train failed ({r[2]}):\n{r[1]}")
            box.setdefault("d", []).append((r, run_dir))

        t = timer.measure(dl, psi=False)
        (wall, _, _, rss), run_dir = box["d"][t["attempt"]]
        cmd = cmd_for(Path("RUN_DIR"))
        m = json.loads((run_dir / "metrics.json").read_text())
        out["steps"] = m["steps"]
        out["dlspec"] = {"command": " ".join(["dlspec"] + cmd[len(cli):]), "wall_s": wall,
                         "training_seconds": m["training_seconds"], "peak_rss_mib": rss,
                         "test_accuracy": m["test"].get("accuracy"), **_contention(t)}
    tcmd = [sys.executable, str(ROOT / "benchmarks" / "torch_churn.py"), str(data), str(epochs)]

    def tr() -> None:
        r = _run_child(tcmd, ROOT)
        if r[2] != 0:
            raise RuntimeError(f"torch_churn.py failed ({r[2]}):\n{r[1]}")
        box.setdefault("t", []).append(r)

    t = timer.measure(tr, psi=False)
    wall, log, _, rss = box["t"][t["attempt"]]
    tj = json.loads(log.strip().splitlines()[-1])
    out["torch"] = {"command": " ".join(["python"] + tcmd[1:]), "wall_s": wall,
                    "training_seconds": tj["train_s"], "import_s": tj["import_s"],
                    "data_s": tj["data_s"], "peak_rss_mib": rss,
                    "test_accuracy": tj["test_accuracy"], "steps": tj["steps"], **_contention(t)}
    return out


def _contention(t: dict) -> dict:
    return {"cpu_stall_s": t["stall"], "foreign_cpu_s": t["foreign"],
            "disturbed": t["disturbed"], "attempts": t["attempts"]}


# --------------------------------------------------------------------------- environment

def environment() -> dict:
    import torch

    from dlspec import blas

    env = {"python": platform.python_version(), "platform": platform.platform(),
           "numpy": np.__version__, "torch": torch.__version__,
           "torch_threads": torch.get_num_threads(),
           "torch_interop_threads": torch.get_num_interop_threads(),
           "torch_mkldnn": torch.backends.mkldnn.is_available(),
           "torch_mkl": torch.backends.mkl.is_available(),
           "cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
           "openblas_kernels": blas.corename(), "openblas_coretype_env": blas.pinned()}
    import dlspec

    src = Path(dlspec.__file__).resolve().parent.parent
    env["dlspec_source"] = str(src)
    try:
        git = ["git", "-C", str(src)]
        env["dlspec_commit"] = subprocess.run(git + ["rev-parse", "--short", "HEAD"], text=True,
                                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(git + ["status", "--porcelain", "--", "dlspec"], text=True,
                               capture_output=True, check=True).stdout.split("\n")
        env["dlspec_uncommitted"] = [ln[3:] for ln in dirty if ln.strip()]
    except (OSError, subprocess.CalledProcessError):
        env["dlspec_commit"], env["dlspec_uncommitted"] = "not a git checkout", []
    try:
        with open("/proc/cpuinfo") as fh:
            env["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in fh
                                     if ln.startswith("model name")), "?")
    except OSError:
        env["cpu_model"] = platform.processor() or "?"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        env["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
        simd = cfg.get("SIMD Extensions", {})
        env["numpy_simd_found"] = ",".join(simd.get("found", []))
    except Exception as e:  # noqa: BLE001 - old numpy: informative only
        env["numpy_blas"] = f"? ({e})"
    try:
        from threadpoolctl import threadpool_info

        env["threadpools"] = [{k: d.get(k) for k in ("internal_api", "prefix", "version",
                                                     "num_threads", "architecture")}
                              for d in threadpool_info()]
    except ImportError:
        env["threadpools"] = "threadpoolctl not installed"
    return env


# --------------------------------------------------------------------------- output

def _fmt(d: dict) -> str:
    flag = f" ({d['disturbed_reps']} disturbed)" if d.get("disturbed_reps") else ""
    return f"{d['median']:,.1f} [{d['min']:,.1f}–{d['max']:,.1f}]{flag}"


def print_report(res: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    con = Console(width=None if sys.stdout.isatty() else 150)
    env = res["environment"]
    t = Table(title=r"Training throughput, µs/step: median \[min–max] of "
              f"{res['repeats']} interleaved reps (lower is better)", title_justify="left",
              caption="speedup = torch median / dlspec median; paired = median over rounds of "
              "(torch rep / the dlspec rep of the same round), robust to drifting machine speed",
              caption_justify="left")
    for c in ("workload", "dlspec path", "steps/rep", "dlspec", "torch eager",
              "torch/dlspec (dlspec speedup)"):
        t.add_column(c, justify="left" if c in ("workload", "dlspec path") else "right")
    for w in res["workloads"].values():
        u, torch_med = w["us_per_step"], w["us_per_step"]["torch"]["median"]
        for k, path in (("dlspec_fit", "fit(), 1 epoch"),
                        ("dlspec_loop", "raw step loop")):
            if k not in u:
                continue
            t.add_row(escape(w["label"]), path, str(w["steps_per_rep"][k]), _fmt(u[k]),
                      _fmt(u["torch"]), f"{torch_med / u[k]['median']:.2f}× "
                      f"(paired {u[k]['paired_ratio']['median']:.2f}×)")
    con.print(t)
    for w in res["workloads"].values():
        rss = w["peak_rss_mib"]
        con.print(f"  {escape(w['label'])}: {w['data']}; dlspec-vs-torch max |Δparam| after 5 "
                  f"identical steps {w['parity_max_abs_diff_after_5_steps']:.1e}; peak RSS "
                  f"of training alone: dlspec {rss['dlspec']:.0f} MiB, torch "
                  f"{rss['torch']:.0f} MiB"
                  + (f"; fit() − loop (paired median) {w['fit_minus_loop_ms_per_epoch']:.1f} "
                     f"ms/epoch, of which {w['fit_start_ms']:.1f} ms fit's one-off start "
                     "(weights, optimizer); the rest, the training loop's own overhead "
                     "(shuffling, batching, metrics, validation): "
                     f"{w['loop_overhead_pct']:.1f} % of the steps' time"
                     if "fit_minus_loop_ms_per_epoch" in w else ""))
    e2e = res.get("end_to_end")
    if e2e:
        t2 = Table(title=f"Whole churn training, {e2e['epochs']} epochs ({e2e['steps']} steps), "
                   "one subprocess run each", title_justify="left")
        for c in ("", "wall s", "training-loop s", "µs/step (loop)", "peak RSS MiB",
                  "test acc", "CPU stall ms", "other procs' CPU s"):
            t2.add_column(c, justify="left" if not c else "right")
        for k in ("dlspec", "torch"):
            d = e2e[k]
            t2.add_row(k, f"{d['wall_s']:.2f}", f"{d['training_seconds']:.2f}",
                       f"{d['training_seconds'] / e2e['steps'] * 1e6:.1f}",
                       f"{d['peak_rss_mib']:.0f}", f"{d['test_accuracy']:.4f}",
                       "?" if d["cpu_stall_s"] is None else f"{d['cpu_stall_s'] * 1e3:.0f}",
                       f"{d['foreign_cpu_s']:.2f}" + (" (disturbed)" if d["disturbed"] else ""))
        con.print(t2)
        d, tt = e2e["dlspec"], e2e["torch"]
        con.print(f"  speedup (torch/dlspec): wall {tt['wall_s'] / d['wall_s']:.2f}×, training "
                  f"{tt['training_seconds'] / d['training_seconds']:.2f}×. dlspec's wall time "
                  "also covers ONNX export + parity check + run directory; its training time "
                  "includes the per-epoch metrics (accuracy, precision, recall, AUC)")
        con.print(f"  dlspec: {d['command']}\n  torch:  {tt['command']}")
    elif res.get("end_to_end_skipped"):
        con.print(f"  whole-training comparison skipped: {res['end_to_end_skipped']}")
    c = res["contention"]
    n_dist = sum(u["disturbed_reps"] for w in res["workloads"].values()
                 for u in w["us_per_step"].values())
    con.print(f"Contention: {c['gap_s']} s settle gap before each rep; {c['retried_reps']} "
              f"reps repeated because another task competed for the CPUs "
              f"({'PSI stall' if c['psi_available'] else 'other processes CPU time'}); "
              f"{n_dist} disturbed reps kept.")
    con.print(f"Peak RSS of this process (dlspec + torch side by side): "
              f"{res['peak_rss_mib']:.0f} MiB")
    pools = env["threadpools"]
    pools = "; ".join(f"{p['internal_api']} {p['version']} ({p['prefix']}, "
                      f"{p['num_threads']} threads, {p['architecture']})" for p in pools) \
        if isinstance(pools, list) else pools
    unc = env["dlspec_uncommitted"]
    con.print(f"dlspec: {env['dlspec_source']} at {env['dlspec_commit']}"
              + (f" + uncommitted changes in {', '.join(unc)}" if unc else " (clean)"))
    if env.get("openblas_coretype_env"):
        con.print(f"[bold yellow]OPENBLAS_CORETYPE={env['openblas_coretype_env']} pins numpy's "
                  f"BLAS kernels ({env['openblas_kernels']}); to measure what this CPU can do, "
                  "run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`[/bold yellow]")
    con.print(f"Environment: CPU {env['cpu_model']} ({env['cpu_affinity']} usable of "
              f"{env['cpu_count']}); Python {env['python']}; numpy {env['numpy']} "
              f"(BLAS {env['numpy_blas']}, {env['openblas_kernels']} kernels); "
              f"torch {env['torch']} "
              f"(threads {env['torch_threads']}, interop {env['torch_interop_threads']}, "
              f"MKL {env['torch_mkl']}, oneDNN {env['torch_mkldnn']}); thread pools: {pools}")
    for w in res["workloads"].values():
        if "profile_dlspec_loop" in w:
            con.print(f"\n[bold]cProfile, dlspec raw loop — {escape(w['label'])}[/bold]")
            con.print(w["profile_dlspec_loop"], markup=False, highlight=False)
            con.print(f"[bold]cProfile, torch loop — {escape(w['label'])}[/bold]")
            con.print(w["profile_torch"], markup=False, highlight=False)


def markdown(res: dict) -> str:
    """The results as Markdown tables (for benchmarks/README.md)."""
    def fmt(d: dict) -> str:
        return f"{d['median']:,.1f} [{d['min']:,.1f}–{d['max']:,.1f}]"

    lines = ["| workload | dlspec path | steps/rep | dlspec µs/step | torch µs/step "
             "| torch/dlspec (paired) |", "|---|---|--:|--:|--:|--:|"]
    for w in res["workloads"].values():
        u = w["us_per_step"]
        for k, path in (("dlspec_fit", "fit(), 1 epoch"), ("dlspec_loop", "raw step loop")):
            if k not in u:
                continue
            lines.append(f"| {w['label']} | {path} | {w['steps_per_rep'][k]} | {fmt(u[k])} | "
                         f"{fmt(u['torch'])} | {u['torch']['median'] / u[k]['median']:.2f}× "
                         f"({u[k]['paired_ratio']['median']:.2f}×) |")
    e2e = res.get("end_to_end")
    if e2e:
        lines += ["", f"| whole churn training, {e2e['epochs']} epochs | wall s | training-loop s "
                  "| µs/step | peak RSS MiB | test acc |", "|---|--:|--:|--:|--:|--:|"]
        for k, cmd in (("dlspec", "`dlspec train`"), ("torch", "torch_churn.py")):
            d = e2e[k]
            flag = " (disturbed)" if d["disturbed"] else ""
            lines.append(f"| {cmd}{flag} | {d['wall_s']:.2f} | {d['training_seconds']:.2f} | "
                         f"{d['training_seconds'] / e2e['steps'] * 1e6:.1f} | "
                         f"{d['peak_rss_mib']:.0f} | {d['test_accuracy']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="3 reps, a smaller MLP epoch, a 5-epoch end-to-end run (< 60 s)")
    ap.add_argument("--repeats", type=int, help="timed repetitions per runner (default 11, "
                    "quick 3)")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the churn CSV")
    ap.add_argument("--e2e-epochs", type=int, help="epochs of workload 3 (default 50, quick 5)")
    ap.add_argument("--gap", type=float, default=0.25,
                    help="seconds to settle before each timed repetition (default 0.25)")
    ap.add_argument("--retries", type=int, default=6,
                    help="repeat a repetition disturbed by CPU contention up to N times")
    ap.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    ap.add_argument("--profile", action="store_true",
                    help="also print a cProfile of each dlspec and torch loop")
    ap.add_argument("--workloads", default="churn,mlp784,cnn,lstm,residual,residual_dense,rbm",
                    help="which step-loop workloads to time (default: all seven)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--side", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    _DATA[0] = a.data
    allocator = loops.steady_allocator()
    if a.child:
        return child(a.child, a.side, a.steps, a.data)
    chosen = set(a.workloads.split(","))
    repeats = a.repeats or (3 if a.quick else 11)
    mlp_rows = 6_400 if a.quick else 12_800
    e2e_epochs = a.e2e_epochs or (5 if a.quick else 50)
    t0 = time.perf_counter()
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "quick": a.quick,
                 "malloc": loops.MALLOC_ENV if allocator else "glibc's defaults",
                 "repeats": repeats, "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
                 "environment": environment(), "workloads": {}}
    churn = churn_workload(a.data)
    print(f"churn: {churn['source']}", file=sys.stderr)
    # retries stop at the deadline, so a run stays within ~60 s (quick) or ~5 min even
    # on a busy machine; on a quiet one it takes ~15 s / ~70 s
    timer = Timer(a.gap, a.retries, t0 + (40.0 if a.quick else 230.0))
    if not timer.wait_quiet(5.0 if a.quick else 20.0):
        print("other processes are using the CPUs; measuring anyway", file=sys.stderr)
    if "churn" in chosen:
        res["workloads"]["churn"] = bench_workload(churn, repeats, 800, a.profile, timer)
    if "mlp784" in chosen:
        mlp = mlp_workload(mlp_rows)
        print(f"mlp784: {mlp['source']}", file=sys.stderr)
        res["workloads"]["mlp784"] = bench_workload(mlp, repeats, mlp_rows // 128, a.profile,
                                                 timer)
    for key, module in (("cnn", cnn_bench), ("lstm", lstm_bench),
                        ("residual", residual_bench), ("residual_dense", residual_dense_bench),
                        ("rbm", rbm_bench)):
        if key in chosen:
            print(f"{key}: {module.LABEL}", file=sys.stderr)
            res["workloads"][key] = bench_loops(module, repeats, a.quick, timer)
    if "churn" in chosen and a.data.is_file():
        print(f"end to end: {e2e_epochs} epochs, dlspec train and torch_churn.py",
              file=sys.stderr)
        res["end_to_end"] = bench_end_to_end(a.data.resolve(), e2e_epochs, timer)
    else:
        res["end_to_end_skipped"] = f"{a.data} not found"
    res["contention"] = {"gap_s": a.gap, "retried_reps": timer.retried,
                         "psi_available": _psi_stall() is not None}
    res["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["seconds"] = time.perf_counter() - t0
    print_report(res)
    print(f"({res['seconds']:.0f} s)")
    if a.markdown:
        print(markdown(res))
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
