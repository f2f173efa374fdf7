"""The training loop: seeded shuffling, the compiled plan, the optimizer, early stopping.

``fit`` never prints: it reports each finished epoch to an optional callback,
so the CLI can draw a progress bar and a test can stay silent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlspec.engine import metrics as M
from dlspec.engine.kernels import aligned
from dlspec.engine.network import Network
from dlspec.engine.optimizers import OPTIMIZERS, Optimizer
from dlspec.errors import TrainingDiverged
from dlspec.tasks import TASKS

# Independent random streams, all derived from train.seed.
INIT_STREAM, SHUFFLE_STREAM, NOISE_STREAM, AUGMENT_STREAM = 1, 2, 3, 4


def rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    steps: int = 0


def _rows(x) -> int:
    """How many examples ``x`` holds (an array, or a dict of arrays by input name)."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _by_input(net: Network, x) -> dict:
    return x if isinstance(x, dict) else {net.input_names[0]: x}


def evaluate(net: Network, x, y: np.ndarray, task: str,
             names: tuple[str, ...]) -> dict[str, float]:
    """Loss and metrics of ``net`` on one split (empty dict for an empty split); outputs
    that overflow give an infinite or NaN loss, reported rather than warned about."""
    if _rows(x) == 0:
        return {}
    with np.errstate(over="ignore", invalid="ignore"):
        z, out = net.forward(x)
        loss, _ = net.loss.fn(z, y)
        t = TASKS[task]
        return {"loss": loss, **M.compute(names, task, t.truth(y, out), t.scores(out))}


def predict_classes(net: Network, x) -> np.ndarray:
    _, out = net.forward(x)
    return np.argmax(net.probabilities(out), axis=1)


class _Monitor:
    """Early stopping: remembers the best epoch and its weights."""

    def __init__(self, cfg, flat: np.ndarray) -> None:
        self.cfg = cfg
        name = cfg.monitor.removeprefix("val_")
        self.higher = name != "loss" and M.METRICS[name].higher_is_better
        self.best = -np.inf if self.higher else np.inf
        self.best_epoch = 0
        self.wait = 0
        self.best_weights = flat.copy()

    def update(self, epoch: int, logs: dict, flat: np.ndarray) -> bool:
        """Record one epoch; True when training should stop."""
        value = logs[self.cfg.monitor]
        delta = (value - self.best) if self.higher else (self.best - value)
        if delta > self.cfg.min_delta or self.best_epoch == 0:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            np.copyto(self.best_weights, flat)
            return False
        self.wait += 1
        return self.wait > self.cfg.patience


def fit(net: Network, train_spec, task: str, x: dict, y: dict,
        on_epoch: Callable[[int, dict], None] | None = None,
        augment: Callable | None = None, init: dict | None = None,
        lr_scale: np.ndarray | None = None) -> tuple[FitResult, Optimizer]:
    """Train ``net`` in place.

    Args:
        train_spec: the spec's ``TrainSpec``.
        x, y: per split ("train", "validation") float32 examples (a dict by input name)
            and targets.
        on_epoch: called as ``on_epoch(epoch, logs)`` after every epoch.
        augment: ``(batch, rng) -> batch`` applied to each training batch (of the first
            input).
        init: parameters to start from by name (another run's), after initializing.
        lr_scale: per trainable element, a factor on the learning rate (train.params'
            lr_mult), or None.

    Raises:
        TrainingDiverged: a non-finite loss or gradient.
    """
    # Overflow on the way to a divergence is detected and reported, not warned about.
    with np.errstate(over="ignore", invalid="ignore"):
        return _fit(net, train_spec, task, x, y, on_epoch, augment, init, lr_scale)


def _fit(net: Network, train_spec, task: str, x: dict, y: dict,
         on_epoch: Callable[[int, dict], None] | None, augment: Callable | None,
         init: dict | None, lr_scale: np.ndarray | None) -> tuple[FitResult, Optimizer]:
    t0 = time.perf_counter()
    seed = train_spec.seed
    buf = net.buffer
    buf.initialize(rng(seed, INIT_STREAM))
    if init is not None:
        buf.load(init)
    plan = net.train_plan
    opt = OPTIMIZERS[train_spec.optimizer].make(buf.train_size, dict(train_spec.optimizer_params))
    if lr_scale is not None:
        opt.scale = lr_scale
    shuffle_rng, noise_rng = rng(seed, SHUFFLE_STREAM), rng(seed, NOISE_STREAM)
    augment_rng = rng(seed, AUGMENT_STREAM)
    x = {split: _by_input(net, v) for split, v in x.items()}
    xt = {name: x["train"][name] for name in plan.inputs}
    yt = y["train"]
    n, bs = len(yt), train_spec.batch_size
    es = train_spec.early_stopping
    monitor = _Monitor(es, buf.flat) if es else None
    result = FitResult()
    inputs = [(plan.inputs[name], xt[name],
               aligned((min(bs, n), *xt[name].shape[1:]), xt[name].dtype))  # gathered, reused
              for name in plan.inputs]
    (target_slot,), noise = plan.target_slots, plan.noise_slots
    loss_slot, z_slot = plan.seed_slot, plan.slot[net.loss_input.id]
    slots = plan.new_slots()
    params, grads = buf.train_flat, buf.train_grad
    seen = aligned((n, *net.loss_input.shape[1:])) if train_spec.metrics else None
    for epoch in range(1, train_spec.epochs + 1):
        # One gather per batch, into the reused buffer (it stays in cache for the first
        # layer); the labels, small, in one go.
        order = shuffle_rng.permutation(n) if train_spec.shuffle else None
        ye = yt[order] if order is not None else yt
        total = 0.0
        for start in range(0, n, bs):
            if order is None:
                for slot, xs, _ in inputs:
                    slots[slot] = xs[start:start + bs]
            else:
                idx = order[start:start + bs]
                for slot, xs, batch in inputs:
                    xb = batch[:len(idx)]
                    np.take(xs, idx, axis=0, out=xb, mode="clip")
                    slots[slot] = xb
            rows = min(bs, n - start)
            if augment is not None:
                slot = inputs[0][0]
                slots[slot] = augment(slots[slot], augment_rng)
            slots[target_slot] = ye[start:start + bs]
            for slot, rate in noise:
                shape = (rows,) + tuple(net.graph.values[slot].shape[1:])
                keep = noise_rng.random(shape, dtype=np.float32) >= rate
                slots[slot] = keep * np.float32(1 / (1 - rate))
            plan.forward(slots)
            if plan.state_updates:
                plan.update_state(slots)
            if seen is not None:  # the loss inputs: training metrics without another pass
                seen[start:start + rows] = slots[z_slot]
            loss = slots[loss_slot]
            if not math.isfinite(loss):
                raise _diverged(net, epoch, result.steps + 1, loss)
            plan.backward(slots)
            opt.step(params, grads)
            result.steps += 1
            total += loss * rows
        logs = {"epoch": epoch, "loss": total / max(n, 1)}
        if seen is not None:  # as Keras reports them: over the epoch's batches, as trained
            out = net.output_from_loss_input(seen)
            t = TASKS[task]
            logs.update(M.compute(train_spec.metrics, task, t.truth(ye, out), t.scores(out)))
        scores = evaluate(net, x["validation"], y["validation"], task, train_spec.metrics)
        if scores and not math.isfinite(scores["loss"]):  # the outputs overflow there
            raise _diverged(net, epoch, None, scores["loss"], "validation loss")
        logs.update({f"val_{k}": v for k, v in scores.items()})
        logs["seconds"] = time.perf_counter() - t0
        result.history.append(logs)
        if not np.isfinite(buf.flat).all():
            raise _diverged(net, epoch, result.steps, float("nan"))
        if on_epoch:
            on_epoch(epoch, logs)
        if monitor and monitor.update(epoch, logs, buf.flat):
            result.stopped_early = True
            break
    plan.release()  # the step buffers: evaluation and export do not need them
    if monitor and es.restore_best:
        np.copyto(buf.flat, monitor.best_weights)
    result.best_epoch = monitor.best_epoch if monitor else len(result.history)
    result.seconds = time.perf_counter() - t0
    return result, opt


def _diverged(net: Network, epoch: int, step: int | None, loss: float,
              what: str = "loss") -> TrainingDiverged:
    buf = net.buffer
    bad = next((p.value.name for p, v, g in zip(buf.params, buf.views, buf.grad_views,
                                                  strict=True)
                if not (np.isfinite(v).all() and np.isfinite(g).all())), None)
    where = f"; first non-finite parameter or gradient: {bad}" if bad else ""
    at = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
    return TrainingDiverged(f"training diverged at {at}: the {what} is {loss}{where} (try a "
                            "smaller learning rate)")
