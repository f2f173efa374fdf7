#!/usr/bin/env python
"""A CD-1 step of an RBM 784 -> 500 on MNIST: dlspec's RBM engine vs the same arithmetic in
PyTorch CPU eager.

    python benchmarks/rbm_bench.py [--batch 100] [--threads N] [--quick] [--repeats N]
                                   [--json OUT.json]

One step: p(h|v0) = sigmoid(v0 W + b), hidden states sampled (uniforms compared with the
probabilities), the reconstruction's probabilities p(v|h0) = sigmoid(h0 W^T + c),
p(h|v1), the three CD-1 gradients, the batch's squared reconstruction error (a Python
float, as a training loop reports it), and plain SGD (lr 0.1). dlspec runs
``dlspec.engine.rbm.RBM.gradients`` and its SGD optimizer over the flat buffer; PyTorch runs
the textbook tensor code (torch.sigmoid, matmul, rand < p, the weight gradient as two
products fused by addmm, torch.optim.SGD over W, b, c). The data: MNIST's training images
as pixels in [0, 1] (../shared/data/mnist), or uniform random pixels if absent; the batches
are consecutive slices of the first ``batch * steps`` images. Interleaved repetitions in
one process (loops.py), each from fresh weights.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import loops
import numpy as np

from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.engine.rbm import RBM

KEY, N_VISIBLE, N_HIDDEN, LR = "rbm", 784, 500, 0.1
BATCH = int(os.environ.get("DLSPEC_RBM_BATCH", "100"))
LABEL = f"RBM 784-500, CD-1 + SGD, batch {BATCH}"
MNIST = Path(os.environ.get("DLSPEC_SHARED_DATA", loops.ROOT.parent / "shared" / "data")) \
    / "mnist" / "train-images-idx3-ubyte.gz"
DATA = "MNIST training images in [0, 1]" if MNIST.is_file() else "uniform random pixels"


def synthetic(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(pixels in [0, 1], float32 (rows, 784); no labels): MNIST's first ``rows`` training
    images when the file is there, else uniform noise."""
    if MNIST.is_file():
        from dlspec.data.images import read_idx

        x = read_idx(MNIST)[:rows].reshape(-1, N_VISIBLE).astype(np.float32) / np.float32(255)
        reps = -(-rows // len(x))
        x = np.tile(x, (reps, 1))[:rows]
    else:
        x = np.random.default_rng(seed).random((rows, N_VISIBLE), dtype=np.float32)
    return np.ascontiguousarray(x), np.zeros(rows, np.int64)


def initial(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.random.default_rng([seed, 1])
    return (r.normal(0, 0.01, (N_VISIBLE, N_HIDDEN)).astype(np.float32),
            np.zeros(N_HIDDEN, np.float32), np.zeros(N_VISIBLE, np.float32))


class DlspecRBMLoop:
    """``rbm.gradients(batch)``, then ``opt.step(rbm.flat, rbm.grad)`` per step."""

    def __init__(self, x: np.ndarray, bs: int = BATCH, seed: int = 0) -> None:
        self.x, self.bs, self.seed = x, bs, seed
        self.reset()

    def reset(self) -> None:
        W, b, c = initial(self.seed)
        self.rbm = RBM(W, b, visible_bias=c, rng=np.random.default_rng([self.seed, 2]))
        self.opt = OPTIMIZERS["sgd"].make(self.rbm.flat.size, {"lr": LR})

    def step(self, v0: np.ndarray) -> float:
        err = self.rbm.gradients(v0)
        self.opt.step(self.rbm.flat, self.rbm.grad)
        return err

    def run(self, steps: int) -> float:
        total, n = 0.0, len(self.x) // self.bs
        for i in range(steps):
            j = i % n
            total += self.step(self.x[j * self.bs:(j + 1) * self.bs])
        return total / steps


class TorchRBMLoop:
    """The same CD-1 step in PyTorch tensors (see the module's docstring)."""

    def __init__(self, x: np.ndarray, bs: int = BATCH, seed: int = 0) -> None:
        import torch

        self.torch, self.x, self.bs, self.seed = torch, torch.from_numpy(x), bs, seed
        self.reset()

    def reset(self) -> None:
        torch = self.torch
        self.W, self.b, self.c = (torch.from_numpy(a.copy()) for a in initial(self.seed))
        self.opt = torch.optim.SGD([self.W, self.b, self.c], lr=LR)
        self.gen = torch.Generator().manual_seed(self.seed)

    def step(self, v0, uniforms=None) -> float:
        torch, W, b, c = self.torch, self.W, self.b, self.c
        n = len(v0)
        ph0 = torch.sigmoid(torch.addmm(b, v0, W))
        u = torch.rand(ph0.shape, generator=self.gen) if uniforms is None else uniforms
        h0 = (u < ph0).float()
        pv1 = torch.sigmoid(torch.addmm(c, h0, W.T))
        ph1 = torch.sigmoid(torch.addmm(b, pv1, W))
        W.grad = torch.addmm(v0.T @ ph0, pv1.T, ph1, beta=-1 / n, alpha=1 / n)
        b.grad = (ph1.sum(0) - ph0.sum(0)) / n
        c.grad = (pv1.sum(0) - v0.sum(0)) / n
        self.opt.step()
        return torch.mean((v0 - pv1) ** 2).item()

    def run(self, steps: int) -> float:
        total, n = 0.0, len(self.x) // self.bs
        for i in range(steps):
            j = i % n
            total += self.step(self.x[j * self.bs:(j + 1) * self.bs])
        return total / steps


def dlspec_loop(x: np.ndarray, y: np.ndarray | None = None, seed: int = 0) -> DlspecRBMLoop:
    return DlspecRBMLoop(x, BATCH, seed)


def torch_loop(x: np.ndarray, y: np.ndarray | None = None, seed: int = 0) -> TorchRBMLoop:
    return TorchRBMLoop(x, BATCH, seed)


def parity(steps: int = 5) -> float:
    """Max |dlspec - torch| over W, b, c after ``steps`` identical CD-1 + SGD steps from the
    same weights, torch given the same uniforms as dlspec's generator draws."""
    import torch

    x, _ = synthetic(BATCH * steps, seed=7)
    d, t = dlspec_loop(x), torch_loop(x)
    draws = np.random.default_rng([d.seed, 2])  # the stream d.rbm draws from, replayed
    for i in range(steps):
        v0 = x[i * BATCH:(i + 1) * BATCH]
        d.step(v0)
        u = torch.from_numpy(draws.random((BATCH, N_HIDDEN), dtype=np.float32))
        t.step(torch.from_numpy(v0), uniforms=u)
    return max(float(np.abs(view - tp.numpy()).max())
               for view, tp in ((d.rbm.kernel, t.W), (d.rbm.bias, t.b),
                                (d.rbm.visible_bias, t.c)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=BATCH, help="rows per step (default 100)")
    ap.add_argument("--threads", type=int, help="BLAS / OpenMP threads of both sides (default: "
                    "each library's own, one per CPU)")
    ap.add_argument("--quick", action="store_true", help="3 reps of 20 steps")
    ap.add_argument("--repeats", type=int, help="interleaved repetitions (default 7, quick 3)")
    ap.add_argument("--json", type=Path, help="write every number here")
    ap.add_argument("--only", choices=("dlspec", "torch"), help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, default=20, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    # BATCH (and LABEL) follow the environment, and the libraries read their thread counts
    # from it when they load: a new process with it set
    env = {} if a.batch == BATCH else {"DLSPEC_RBM_BATCH": str(a.batch)}
    if a.threads:
        env |= {k: str(a.threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                             "MKL_NUM_THREADS")}
    if any(os.environ.get(k) != v for k, v in env.items()):
        return subprocess.call([sys.executable, __file__, *(argv or sys.argv[1:])],
                               env={**os.environ, **env})
    loops.steady_allocator()
    if a.only:  # a child measured for peak RSS
        x, y = synthetic(BATCH * a.steps)
        (dlspec_loop if a.only == "dlspec" else torch_loop)(x, y).run(a.steps)
        return 0
    import torch

    res = loops.workload(sys.modules[__name__], a.repeats or (3 if a.quick else 7), a.quick)
    res["data"] = DATA
    from dlspec import blas

    res["torch_threads"] = torch.get_num_threads()
    res["openblas"] = {"kernels": blas.describe(), "threads": blas.describe_threads()}
    print(f"threads: torch {res['torch_threads']}, OpenBLAS {res['openblas']['threads']} "
          f"({res['openblas']['kernels']})")
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    loops.print_summary(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
