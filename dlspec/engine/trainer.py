"""The training loop's entry point: a network, the spec's training and its data in; the
phases of its program run one after another (``dlspec.engine.loop``, and
``dlspec.engine.rbm_phase`` for RBM pretraining).

``fit`` never prints: it reports each finished epoch to an optional callback,
so the CLI can draw a progress bar and a test can stay silent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import SimpleNamespace

import numpy as np

from dlspec.engine.loop import diverged, evaluate, evaluate_losses, run_phase
from dlspec.engine.network import Network
from dlspec.engine.program import Program, supervised
from dlspec.engine.snapshot import damaged, optimizer_arrays, save
from dlspec.engine.state import INIT_STREAM, FitResult, Snapshot, TrainState, rng

__all__ = ["INIT_STREAM", "FitResult", "TrainState", "diverged", "evaluate",
           "evaluate_losses", "fit", "predict_classes", "rng"]


def _by_input(net: Network, x) -> dict:
    return x if isinstance(x, dict) else {net.input_names[0]: x}


def predict_classes(net: Network, x) -> np.ndarray:
    _, out = net.forward(x)
    return np.argmax(net.probabilities(out), axis=1)


def fit(net: Network, train_spec, task: str, x: dict, y: dict,
        on_epoch: Callable[[int, dict], None] | None = None,
        augment: Callable | None = None, init: dict | None = None,
        lr_scale: np.ndarray | None = None, *, program: Program | None = None,
        pretrain: dict | None = None, state: TrainState | None = None,
        ) -> tuple[FitResult, dict[str, np.ndarray]]:
    """Train ``net`` in place: the phases of ``program`` (default: train.loss minimised by
    train.optimizer, the supervised program), each epoch's batches in a seeded order, each
    batch one step of every optimizer the phase's step lists.

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
        pretrain: examples by input name for phases that pretrain on every training row
            (an RBM's ``all_rows``), where ``x["train"]`` holds fewer.
        state: the run's random streams and clock (default: fresh from train.seed), and
            its checkpointing: where snapshots go, and the one to resume from.

    Returns:
        The result, and the state of every optimizer of the last supervised or program
        phase (``<optimizer>/<buffer>``).

    Raises:
        TrainingDiverged: a non-finite loss or gradient.
        TrainingInterrupted: ``state.stop`` was set (after a snapshot of where).
        ModelError: a resume snapshot that does not fit this run.
    """
    # Overflow on the way to a divergence is detected and reported, not warned about.
    with np.errstate(over="ignore", invalid="ignore"):
        program = program or supervised(net.graph, train_spec)
        state = state or TrainState(train_spec.seed)
        buf = net.buffer
        buf.initialize(state.stream(INIT_STREAM))
        if init is not None:
            buf.load(init)
        x = {split: _by_input(net, v) for split, v in x.items()}
        result = FitResult()
        snap = state.resume
        last: dict[str, np.ndarray] = {}   # the state of the last phase's optimizers
        if snap is not None:
            try:
                _check_position(snap, program)
                last = _restore(state, snap, buf, result)
            except (KeyError, TypeError, ValueError) as e:
                raise damaged(e) from None
        for index, phase in enumerate(program.phases):
            if snap is not None and index < snap.phase:
                continue
            if phase.rbm is not None:
                from dlspec.engine.rbm_phase import run_rbm_phase

                run_rbm_phase(net, phase, program, train_spec, x, pretrain, state, result,
                              on_epoch)
                if state.saver is not None:  # RBM phases checkpoint at their end only
                    save(state, result, buf.flat, Snapshot(
                        index + 1, 0, 0, False, {"phase_start": len(result.history)},
                        dict(last)))
            else:
                last = optimizer_arrays(run_phase(net, phase, program, train_spec, task, x,
                                                  y, state, result, on_epoch, augment,
                                                  lr_scale, index))
        state.resume = None
        if state.saver is not None and (snap is None or snap.phase < len(program.phases)):
            save(state, result, buf.flat, Snapshot(len(program.phases), 0, 0, False,
                                                   {"phase_start": len(result.history)},
                                                   dict(last)))
        result.seconds = state.elapsed()
        return result, {k.removeprefix("opt/"): v for k, v in last.items()}


def _check_position(snap: Snapshot, program: Program) -> None:
    """Raises ValueError for a position that is not one of ``program``'s."""
    phases = program.phases
    # epochs done in the phase, and the next one begun (batch > 0) only if there is one
    epochs = phases[snap.phase].epochs if 0 <= snap.phase < len(phases) else 0
    if not 0 <= snap.phase <= len(phases) or not 0 <= snap.epoch <= epochs or \
            snap.batch < 0 or (snap.batch and snap.epoch == epochs):
        raise ValueError(f"its position (phase {snap.phase}, epoch {snap.epoch}, batch "
                         f"{snap.batch}) is not one of this run's")


def _restore(state: TrainState, snap: Snapshot, buf, result: FitResult) -> dict:
    """Weights, results so far, RNG states and clock of ``snap``; returns the optimizer
    arrays it holds.

    Raises:
        ValueError, KeyError, TypeError: a snapshot that does not fit this run.
    """
    flat = snap.arrays["flat"]
    if flat.shape != buf.flat.shape:
        raise ValueError(f"its weights hold {flat.size} numbers, the spec's parameters "
                         f"{buf.flat.size}")
    np.copyto(buf.flat, flat)
    info = snap.info
    result.history = [dict(row) for row in info["history"]]
    result.steps, result.best_epoch = int(info["steps"]), int(info["best_epoch"])
    result.stopped_early = bool(info["stopped_early"])
    result.rbm = {k.removeprefix("rbm/"): SimpleNamespace(kernel=v)
                  for k, v in snap.arrays.items() if k.startswith("rbm/")}
    state.set_rng_states(info["rng"])
    state.t0 = time.perf_counter() - float(info["seconds"])
    return {k: v for k, v in snap.arrays.items() if k.startswith("opt/")}
