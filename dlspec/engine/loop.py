"""One phase of training: epochs of seeded batches, each batch one step of every optimizer
the phase's step lists, its losses logged, early stopping watched.

A step gathers the batch once into reused buffers (it stays in cache for the first layer),
fills the plan's inputs, noise and targets, runs the plan forward and backward, and lets
its optimizer update the slice of the flat parameter buffer it owns.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlspec.autodiff import ancestors
from dlspec.engine import metrics as M
from dlspec.engine.kernels import aligned
from dlspec.engine.network import Network
from dlspec.engine.optimizers import OPTIMIZERS, Optimizer
from dlspec.engine.plan import Plan
from dlspec.engine.program import LossTerm, Objective, Phase, Program, constant_target
from dlspec.engine.snapshot import (
    check_progress,
    damaged,
    load_optimizers,
    optimizer_arrays,
    save,
)
from dlspec.engine.state import (
    AUGMENT_STREAM,
    EVAL_STREAM,
    LATENT_STREAM,
    NOISE_STREAM,
    SHUFFLE_STREAM,
    FitResult,
    Snapshot,
    TrainState,
    rng,
)
from dlspec.errors import TrainingDiverged, TrainingInterrupted
from dlspec.tasks import TASKS


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


def _rows(x) -> int:
    """How many examples ``x`` holds (an array, or a dict of arrays by input name)."""
    return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


class Monitor:
    """Early stopping: remembers the best epoch and its weights."""

    def __init__(self, cfg, flat: np.ndarray) -> None:
        self.cfg = cfg
        name = cfg.monitor.removeprefix("val_")
        self.higher = name in M.METRICS and M.METRICS[name].higher_is_better
        self.best = -np.inf if self.higher else np.inf
        self.best_epoch = 0
        self.wait = 0
        self.best_weights = flat.copy()

    def state(self) -> dict:
        return {"best": float(self.best), "best_epoch": self.best_epoch, "wait": self.wait}

    def load(self, state: dict, best_weights: np.ndarray) -> None:
        """Raises ValueError, KeyError or TypeError on a state that is not one."""
        if best_weights.shape != self.best_weights.shape:
            raise ValueError(f"best_weights has shape {best_weights.shape}, expected "
                             f"{self.best_weights.shape}")
        self.best, self.best_epoch, self.wait = (float(state["best"]),
                                                 int(state["best_epoch"]), int(state["wait"]))
        np.copyto(self.best_weights, best_weights)

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


@dataclass
class _Step:
    """One optimizer's compiled step."""

    objective: Objective
    plan: Plan
    opt: Optimizer
    params: np.ndarray                 # its slice of the flat parameters ...
    grads: np.ndarray                  # ... and of their gradients
    slots: list
    noise: list                        # (slot, rate) of the dropout masks it reads
    terms: list[tuple[str, int]]       # (loss name, slot) of the losses it computes


def _noise_inputs(net: Network, program: Program, plan: Plan) -> list:
    return [(plan.inputs[name], dist) for name, dist in program.noise.items()
            if name in plan.inputs]


def draw_noise(dist, shape: tuple, gen: np.random.Generator) -> np.ndarray:
    """A batch of a noise input: ``dist`` is its canonical spec (normal or uniform)."""
    if "normal" in dist:
        z = gen.standard_normal(shape, dtype=np.float32)
        if dist["std"] != 1.0:
            z *= np.float32(dist["std"])
        if dist["mean"] != 0.0:
            z += np.float32(dist["mean"])
        return z
    low, high = np.float32(dist["low"]), np.float32(dist["high"])
    return gen.random(shape, dtype=np.float32) * (high - low) + low


def _compile_steps(net: Network, phase: Phase, program: Program,
                   lr_scale: np.ndarray | None) -> dict[str, _Step]:
    buf = net.buffer
    steps = {}
    for name, obj in phase.objectives.items():
        if phase.supervised and not phase.frozen:   # the plan of every trainable parameter
            plan, part = net.train_plan, slice(0, buf.train_size)
            scale = lr_scale
        else:
            owned = [p for p in obj.params if p.name not in phase.frozen]
            plan = Plan(net.graph, buf, seed=obj.seed, wrt=owned)
            part = _span(buf, owned)
            scale = _scale(buf, owned, part)
        opt = OPTIMIZERS[obj.optimizer].make(part.stop - part.start, dict(obj.hyper))
        if scale is not None:
            opt.scale = scale
        if phase.supervised:
            noise = plan.noise_slots
        else:
            used = {n.output.id for n in ancestors(obj.seed)} | \
                {v.id for n in ancestors(obj.seed) for v in n.inputs}
            noise = [(slot, rate) for (slot, rate), nz in
                     zip(plan.noise_slots, net.graph.noises, strict=True) if nz.value.id in used]
        terms = [(t, plan.slot[program.losses[t].value.id]) for t in obj.losses]
        steps[name] = _Step(obj, plan, opt, buf.flat[part], buf.grad[part], plan.new_slots(),
                            noise, terms)
    return steps


def _span(buf, owned: list) -> slice:
    index = {id(p): i for i, p in enumerate(buf.params)}
    spans = [buf.offsets[index[id(p)]] for p in owned]
    if not spans:
        return slice(0, 0)
    return slice(min(a for a, _ in spans), max(a + n for a, n in spans))


def _scale(buf, owned: list, part: slice) -> np.ndarray | None:
    """Per element of the slice: the learning-rate factor (lr_mult), 0 where a parameter
    lying inside the slice belongs to another optimizer (or is frozen in this phase)."""
    scale = np.zeros(part.stop - part.start, dtype=np.float32)
    mine = {id(p) for p in owned}
    for p, (start, size) in zip(buf.params, buf.offsets, strict=True):
        if id(p) in mine:
            scale[start - part.start:start - part.start + size] = p.lr_mult
    return None if np.all(scale == 1) else scale


def run_phase(net: Network, phase: Phase, program: Program, train_spec, task: str,
              x: dict, y: dict, state: TrainState, result: FitResult,
              on_epoch: Callable | None, augment: Callable | None,
              lr_scale: np.ndarray | None, index: int = 0) -> dict[str, Optimizer]:
    """Run phase number ``index`` (from ``state.resume`` where that is inside it), writing
    snapshots to ``state.saver`` as it asks; returns the phase's optimizers by name."""
    buf = net.buffer
    steps = _compile_steps(net, phase, program, lr_scale)
    order_of = [steps[name] for name in phase.step]
    shuffle_rng, noise_rng = state.stream(SHUFFLE_STREAM), state.stream(NOISE_STREAM)
    augment_rng = state.stream(AUGMENT_STREAM)
    latent_rng = state.stream(LATENT_STREAM)
    first = order_of[0]
    data_names = [n for n in first.plan.inputs if n not in program.noise]
    xt = {name: x["train"][name] for name in data_names}
    yt = y["train"]
    n, bs = len(yt), phase.batch_size
    es = phase.early_stopping
    monitor = Monitor(es, buf.flat) if es else None
    inputs = [(first.plan.inputs[name], xt[name],
               aligned((min(bs, n), *xt[name].shape[1:]), xt[name].dtype))  # gathered, reused
              for name in data_names]
    target_slots = _targets(first.plan, program)
    latent = {name: _noise_inputs(net, program, st.plan) for name, st in steps.items()}
    sup = phase.supervised
    seen = None
    if sup:
        loss_slot, z_slot = first.plan.seed_slot, first.plan.slot[net.loss_input.id]
        seen = aligned((n, *net.loss_input.shape[1:])) if train_spec.metrics else None
    consts: dict = {}
    label = program.multi_phase
    # an optimizer of several losses: their weighted sum is logged too, as <name>_loss
    sums_of = {f"{name}_loss": st for name, st in steps.items()
               if len(st.objective.losses) > 1}
    saver = state.saver
    every_steps = saver.every_steps if saver is not None else 0
    snap = state.resume if state.resume is not None and state.resume.phase == index else None
    done, stopped, start_epoch = 0, False, len(result.history)
    if snap is not None:
        try:
            done, stopped = snap.epoch, snap.stopped
            start_epoch = int(snap.info["phase_start"])
            load_optimizers({name: st.opt for name, st in steps.items()}, snap.arrays)
            if monitor:
                monitor.load(snap.info["monitor"], snap.arrays["best_weights"])
            if snap.batch:
                check_progress(snap, n, bs, train_spec.shuffle, seen,
                               None if sup else [*program.losses, *sums_of])
        except (KeyError, TypeError, ValueError) as e:
            raise damaged(e) from None

    def snapshot(epoch_done: int, batch: int, order, total: float, sums) -> Snapshot:
        info = {"phase_start": start_epoch}
        arrays = optimizer_arrays({name: st.opt for name, st in steps.items()})
        if monitor:
            info["monitor"] = monitor.state()
            arrays["best_weights"] = monitor.best_weights
        if batch:  # inside an epoch: its data order and what it has summed so far
            info["total"], info["sums"] = total, sums
            if order is not None:
                arrays["order"] = order
            if seen is not None:
                arrays["seen"] = seen[:min(batch * bs, n)]
        return Snapshot(index, epoch_done, batch, stopped, info, arrays)

    for e in range(done + 1, phase.epochs + 1):
        if stopped:
            break
        epoch = start_epoch + e
        first_batch = 0
        if snap is not None and snap.batch:  # resumed inside this epoch
            first_batch = snap.batch
            order = snap.arrays.get("order") if train_spec.shuffle else None
            total, sums = snap.info["total"], snap.info["sums"]
            if seen is not None:
                seen[:len(snap.arrays["seen"])] = snap.arrays["seen"]
        else:
            order = shuffle_rng.permutation(n) if train_spec.shuffle else None
            total = 0.0
            sums = dict.fromkeys([*program.losses, *sums_of], 0.0) if not sup else None
        snap = None
        ye = yt[order] if order is not None else yt
        for batch_no, start in enumerate(range(first_batch * bs, n, bs), first_batch + 1):
            rows = min(bs, n - start)
            batch = []
            if order is None:
                for slot, xs, _ in inputs:
                    batch.append((slot, xs[start:start + bs]))
            else:
                idx = order[start:start + bs]
                for slot, xs, gathered in inputs:
                    xb = gathered[:len(idx)]
                    np.take(xs, idx, axis=0, out=xb, mode="clip")
                    batch.append((slot, xb))
            if augment is not None:
                slot, xb = batch[0]
                batch[0] = (slot, augment(xb, augment_rng))
            logged: set[str] = set()
            for st in order_of:
                s = st.slots
                for slot, xb in batch:
                    s[slot] = xb
                for slot, dist in latent[st.objective.name]:
                    s[slot] = draw_noise(dist, (rows, *net.graph.values[slot].shape[1:]),
                                         latent_rng)
                for slot, term in target_slots:
                    s[slot] = ye[start:start + bs] if term is None else \
                        constant_target(term, rows, consts)
                for slot, rate in st.noise:
                    shape = (rows,) + tuple(net.graph.values[slot].shape[1:])
                    keep = noise_rng.random(shape, dtype=np.float32) >= rate
                    s[slot] = keep * np.float32(1 / (1 - rate))
                st.plan.forward(s)
                if st.plan.state_updates:
                    st.plan.update_state(s)
                if sup:
                    if seen is not None:  # the loss inputs: training metrics, no other pass
                        seen[start:start + rows] = s[z_slot]
                    loss = s[loss_slot]
                    if not math.isfinite(loss):
                        raise diverged(net, epoch, result.steps + 1, loss)
                    total += loss * rows
                else:
                    for name, slot in st.terms:
                        value = float(s[slot])
                        if not math.isfinite(value):
                            raise diverged(net, epoch, result.steps + 1, value,
                                           f"loss '{name}'")
                        if name not in logged:
                            sums[name] += value * rows
                            logged.add(name)
                    total_name = f"{st.objective.name}_loss"
                    if total_name in sums_of and total_name not in logged:
                        sums[total_name] += float(s[st.plan.seed_slot]) * rows
                        logged.add(total_name)
                st.plan.backward(s)
                st.opt.step(st.params, st.grads)
            result.steps += 1
            # off the hot path: one flag and one counter test per step
            if state.stop or (every_steps and result.steps % every_steps == 0):
                if not np.isfinite(buf.flat).all():
                    raise diverged(net, epoch, result.steps, float("nan"))
                save(state, result, buf.flat, snapshot(e - 1, batch_no, order, total, sums))
                if state.stop:
                    raise TrainingInterrupted("interrupted", epoch, result.steps)
        logs = {"epoch": epoch}
        if label:
            logs["phase"] = phase.name
        if sup:
            logs["loss"] = total / max(n, 1)
            if seen is not None:  # as Keras reports them: over the epoch's batches, as trained
                out = net.output_from_loss_input(seen)
                t = TASKS[task]
                logs.update(M.compute(train_spec.metrics, task, t.truth(ye, out),
                                      t.scores(out)))
            scores = evaluate(net, x["validation"], y["validation"], task, train_spec.metrics)
        else:
            logs.update({name: v / max(n, 1) for name, v in sums.items()})
            scores = evaluate_losses(net, program, x["validation"], y["validation"],
                                     state.seed, {n: st.objective.seed
                                                  for n, st in sums_of.items()})
        bad = next((k for k, v in scores.items() if k in program.losses and
                    not math.isfinite(v)), None)
        if bad is not None:  # the outputs overflow there
            raise diverged(net, epoch, None, scores[bad], f"validation {bad}")
        logs.update({f"val_{k}": v for k, v in scores.items()})
        logs["seconds"] = _seconds(state)
        result.history.append(logs)
        if not np.isfinite(buf.flat).all():
            raise diverged(net, epoch, result.steps, float("nan"))
        if on_epoch:
            on_epoch(epoch, logs)
        if monitor and monitor.update(epoch, logs, buf.flat):
            result.stopped_early = stopped = True
        if saver is not None and (state.stop or stopped or epoch % saver.every == 0):
            save(state, result, buf.flat, snapshot(e, 0, None, 0.0, None))
            if state.stop:
                raise TrainingInterrupted("interrupted", epoch, result.steps)
    for st in steps.values():
        st.plan.release()  # the step buffers: evaluation and export do not need them
    if monitor and es.restore_best:
        np.copyto(buf.flat, monitor.best_weights)
    result.best_epoch = monitor.best_epoch if monitor else len(result.history)
    return {name: st.opt for name, st in steps.items()}


def _seconds(state: TrainState) -> float:
    return time.perf_counter() - state.t0


def _targets(plan: Plan, program: Program) -> list[tuple[int, LossTerm | None]]:
    """Each target slot and its filler: None for the data's target, else a constant's
    loss term."""
    by_value = {t.target.id: t for t in program.losses.values()
                if t.target is not None and t.constant is not None}
    return [(slot, by_value.get(v.id)) for slot, v in
            zip(plan.target_slots, plan.graph.targets, strict=True)]


def evaluate_losses(net: Network, program: Program, x: dict, y: np.ndarray,
                    seed: int, extra: dict | None = None) -> dict[str, float]:
    """Every named loss (and each value of ``extra``, by name) on one split (empty: an
    empty split), noise inputs drawn from a fixed stream, so epochs compare on the same
    draws."""
    if not x or _rows(x) == 0:
        return {}
    values = {name: t.value for name, t in program.losses.items()}
    values.update(extra or {})
    plan = Plan(net.graph, net.buffer, wanted=list(values.values()))
    gen = rng(seed, EVAL_STREAM)
    n = _rows(x)
    sums = dict.fromkeys(values, 0.0)
    consts: dict = {}
    targets = _targets(plan, program)
    for start in range(0, n, net.eval_batch):
        s = plan.new_slots()
        rows = min(net.eval_batch, n - start)
        for name, slot in plan.inputs.items():
            if name in program.noise:
                s[slot] = draw_noise(program.noise[name],
                                     (rows, *net.graph.values[slot].shape[1:]), gen)
            else:
                s[slot] = x[name][start:start + rows]
        for slot, term in targets:
            s[slot] = y[start:start + rows] if term is None else \
                constant_target(term, rows, consts)
        plan.forward(s)
        for name, value in values.items():
            sums[name] += float(s[plan.slot_of(value)]) * rows
    return {name: v / n for name, v in sums.items()}


def diverged(net: Network, epoch: int, step: int | None, loss: float,
             what: str = "loss") -> TrainingDiverged:
    buf = net.buffer
    bad = next((p.value.name for p, v, g in zip(buf.params, buf.views, buf.grad_views,
                                                  strict=True)
                if not (np.isfinite(v).all() and np.isfinite(g).all())), None)
    where = f"; first non-finite parameter or gradient: {bad}" if bad else ""
    at = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
    return TrainingDiverged(f"training diverged at {at}: the {what} is {loss}{where} (try a "
                            "smaller learning rate)")
