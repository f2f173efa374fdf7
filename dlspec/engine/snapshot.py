"""Snapshots of a training run, taken and restored by the loop: what every phase shares
(weights, history, counters, RNG states), every optimizer's state under its own name, and
the checks a snapshot passes before a resume trusts it (its arrays were read as untrusted
input: right dtypes and sizes, but not necessarily this run's)."""

from __future__ import annotations

import numpy as np

from dlspec.engine.optimizers import Optimizer
from dlspec.engine.state import FitResult, Snapshot, TrainState
from dlspec.errors import ModelError


def check_progress(snap: Snapshot, n: int, bs: int, shuffle: bool, seen,
                   sums: list | None) -> None:
    """A snapshot inside an epoch: its batch, data order, metrics buffer and the losses
    summed so far (``sums``: their names, None for one supervised loss) fit the run."""
    order = snap.arrays.get("order")
    if not 0 < snap.batch <= -(-n // bs):
        raise ValueError(f"batch {snap.batch} is outside an epoch of {n} rows")
    if shuffle and (order is None or order.shape != (n,) or
                    not np.array_equal(np.sort(order), np.arange(n))):
        raise ValueError("its data order is not an order of the training rows")
    if seen is not None and snap.arrays["seen"].shape != (min(snap.batch * bs, n),
                                                          *seen.shape[1:]):
        raise ValueError("its training outputs do not fit the batches done")
    total, summed = snap.info["total"], snap.info["sums"]
    if not isinstance(total, int | float) or (sums is None) != (summed is None) or (
            sums is not None and (not isinstance(summed, dict) or set(summed) != set(sums)
                                  or not all(isinstance(v, int | float)
                                             for v in summed.values()))):
        raise ValueError("its losses summed so far do not fit the run's losses")


def damaged(e: Exception) -> ModelError:
    """A snapshot that does not fit the run (located by the caller, who knows the file)."""
    what = f"its state lacks {e}" if isinstance(e, KeyError) else str(e)
    return ModelError(f"damaged checkpoint: {what}", code="checkpoint")


def save(state: TrainState, result: FitResult, flat: np.ndarray, snap: Snapshot) -> None:
    """Complete ``snap`` with what every phase shares (weights, history, RNG states) and
    hand it to the run's saver."""
    snap.info.update(history=result.history, steps=result.steps,
                     best_epoch=result.best_epoch, stopped_early=result.stopped_early,
                     seconds=state.elapsed(), rng=state.rng_states())
    snap.arrays["flat"] = flat
    for layer, rbm in result.rbm.items():
        snap.arrays[f"rbm/{layer}"] = rbm.kernel
    state.saver.save(snap)


def optimizer_arrays(opts: dict[str, Optimizer]) -> dict[str, np.ndarray]:
    """Every optimizer's state, its keys namespaced ``opt/<optimizer>/<buffer>``."""
    return {f"opt/{name}/{k}": v for name, opt in opts.items()
            for k, v in opt.state().items()}


def load_optimizers(opts: dict[str, Optimizer], arrays: dict) -> None:
    """Each optimizer's state from ``arrays`` (``optimizer_arrays``' keys), shapes checked.

    Raises:
        ValueError: a missing buffer or one of another size.
    """
    for name, opt in opts.items():
        own = opt.state()
        found = {k: arrays.get(f"opt/{name}/{k}") for k in own}
        for k, v in found.items():
            if v is None or v.shape != own[k].shape:
                raise ValueError(f"optimizer '{name}': its state '{k}' is missing or has "
                                 f"another shape than {own[k].shape}")
        opt.load_state(found)
