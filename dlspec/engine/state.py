"""A training run's state: its random streams, clock and results so far.

Every random stream derives from train.seed and a stream number, so one stream's draws
never shift another's: the weights' initial values, the data order, dropout masks,
augmentation, noise inputs (a GAN's latent code) and an RBM's Gibbs samples.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

INIT_STREAM, SHUFFLE_STREAM, NOISE_STREAM, AUGMENT_STREAM = 1, 2, 3, 4
LATENT_STREAM, GIBBS_STREAM, EVAL_STREAM = 5, 6, 7


def rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


@dataclass
class FitResult:
    history: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    steps: int = 0
    rbm: dict = field(default_factory=dict)   # layer -> its trained RBM (visible bias, ...)


@dataclass
class Snapshot:
    """Everything the next step of a run depends on, at one position: the loop writes
    these (``Saver.save``) and resumes from one (``TrainState.resume``).

    ``phase`` is the index of the phase in progress (the number of phases: training is
    over), ``epoch`` how many of its epochs are done, ``batch`` how many batches of the
    next epoch are done (0: at an epoch's boundary, its data order not drawn yet);
    ``stopped``: the phase stopped early at ``epoch``. ``info`` is JSON (history, counters,
    RNG states, sums of the epoch so far), ``arrays`` the arrays by name (``flat``: every
    parameter; ``opt/<optimizer>/<buffer>``; ``best_weights``; ``order``; ``seen``)."""

    phase: int
    epoch: int
    batch: int
    stopped: bool
    info: dict
    arrays: dict[str, np.ndarray]

    @property
    def position(self) -> tuple[int, int, int]:
        return self.phase, self.epoch, self.batch


class Saver(Protocol):
    """Where snapshots go, and how often: every ``every`` epochs, every ``every_steps``
    steps (0: never mid-epoch)."""

    every: int
    every_steps: int

    def save(self, snapshot: Snapshot) -> None: ...


class TrainState:
    """The streams of one run, created on first use (so a run that never draws from a
    stream leaves the others exactly as they were), its clock, and its checkpointing:
    ``saver`` (None: no checkpoints), ``stop`` (set by a first Ctrl-C: checkpoint after
    this step, then stop) and ``resume`` (the snapshot to continue from)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.t0 = time.perf_counter()
        self._streams: dict[int, np.random.Generator] = {}
        self.saver: Saver | None = None
        self.stop = False
        self.resume: Snapshot | None = None

    def stream(self, number: int) -> np.random.Generator:
        found = self._streams.get(number)
        if found is None:
            found = self._streams[number] = rng(self.seed, number)
        return found

    def rng_states(self) -> dict[str, dict]:
        """Every stream drawn from so far: its bit generator's state (JSON)."""
        return {str(n): g.bit_generator.state for n, g in self._streams.items()}

    def set_rng_states(self, states: Mapping[str, dict]) -> None:
        """Raises ValueError, TypeError or KeyError on a state that is not one."""
        for number, st in states.items():
            self.stream(int(number)).bit_generator.state = dict(st)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0
