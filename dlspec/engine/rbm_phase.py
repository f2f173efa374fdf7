"""A phase that pretrains one dense node as a restricted Boltzmann machine.

The RBM's visible units are what the node reads: the training examples as the nodes
before it transform them (computed once per phase, since nothing before it trains
meanwhile); its hidden units are the node's outputs, its weights the node's kernel and
bias, plus a visible bias used only here. Each batch, contrastive divergence gives the
gradient the phase's optimizer applies; at the end the kernel and bias go back into the
network (the visible bias stays in the result, for pictures and for the next phase).

Checkpoints are written at the end of the phase, not inside it (its chains and visible
bias live here alone): Ctrl-C inside it stops at once, and a resume repeats the phase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from dlspec.engine.loop import diverged
from dlspec.engine.network import Network
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.engine.plan import Plan
from dlspec.engine.program import Phase, Program
from dlspec.engine.rbm import RBM
from dlspec.engine.state import GIBBS_STREAM, SHUFFLE_STREAM, FitResult, TrainState
from dlspec.errors import TrainingInterrupted


def visible_data(net: Network, value, x: dict) -> np.ndarray:
    """``value`` (what a node reads) for every example of ``x``, float32."""
    n = len(next(iter(x.values())))
    if value.kind == "input":
        return np.ascontiguousarray(x[value.name].reshape(n, -1), dtype=np.float32)
    plan = Plan(net.graph, net.buffer, wanted=[value])
    out = np.empty((n, *value.shape[1:]), dtype=np.float32)
    for start in range(0, n, net.eval_batch):
        s = plan.new_slots()
        for name, slot in plan.inputs.items():
            if name in x:
                s[slot] = x[name][start:start + net.eval_batch]
        plan.forward(s)
        out[start:start + net.eval_batch] = s[plan.slot_of(value)]
    return out.reshape(n, -1)


def run_rbm_phase(net: Network, phase: Phase, program: Program, train_spec, x: dict,
                  pretrain: dict | None, state: TrainState, result: FitResult,
                  on_epoch: Callable | None) -> None:
    spec = phase.rbm
    buf = net.buffer
    views = {p.name: v for p, v in zip(buf.params, buf.views, strict=True)}
    rows = pretrain if spec.all_rows and pretrain is not None else x["train"]
    v = visible_data(net, spec.visible, rows)
    rbm = RBM(views[spec.kernel.name], views[spec.bias.name], visible=spec.kind,
              cd_k=spec.cd_k, persistent=spec.persistent, rng=state.stream(GIBBS_STREAM))
    if spec.kind == "binary":
        rbm.init_visible_bias(v)
    name, hyper = phase.optimizer
    opt = OPTIMIZERS[name].make(rbm.flat.size, dict(hyper))
    shuffle_rng = state.stream(SHUFFLE_STREAM)
    n, bs = len(v), phase.batch_size
    batch = np.empty((min(bs, n), v.shape[1]), dtype=np.float32)
    start_epoch = len(result.history)
    for e in range(1, phase.epochs + 1):
        epoch = start_epoch + e
        order = shuffle_rng.permutation(n) if train_spec.shuffle else np.arange(n)
        total = 0.0
        for start in range(0, n, bs):
            idx = order[start:start + bs]
            vb = batch[:len(idx)]
            np.take(v, idx, axis=0, out=vb)
            err = rbm.gradients(vb)
            if not math.isfinite(err):
                raise diverged(net, epoch, result.steps + 1, err,
                               f"reconstruction error of RBM '{spec.layer}'")
            opt.step(rbm.flat, rbm.grad)
            total += err * len(idx)
            result.steps += 1
            if state.stop:  # no snapshot inside an RBM phase: resumed from before it
                raise TrainingInterrupted("interrupted", epoch, result.steps)
        logs = {"epoch": epoch, "phase": phase.name, "recon": total / max(n, 1)}
        if not np.isfinite(rbm.flat).all():
            raise diverged(net, epoch, result.steps, float("nan"),
                           f"weights of RBM '{spec.layer}'")
        logs["seconds"] = time.perf_counter() - state.t0
        result.history.append(logs)
        if on_epoch:
            on_epoch(epoch, logs)
    views[spec.kernel.name][...] = rbm.kernel
    views[spec.bias.name][...] = rbm.bias
    result.rbm[spec.layer] = rbm
