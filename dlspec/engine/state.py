"""A training run's state: its random streams, clock and results so far.

Every random stream derives from train.seed and a stream number, so one stream's draws
never shift another's: the weights' initial values, the data order, dropout masks,
augmentation, noise inputs (a GAN's latent code) and an RBM's Gibbs samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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


class TrainState:
    """The streams of one run, created on first use (so a run that never draws from a
    stream leaves the others exactly as they were)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.t0 = time.perf_counter()
        self._streams: dict[int, np.random.Generator] = {}

    def stream(self, number: int) -> np.random.Generator:
        found = self._streams.get(number)
        if found is None:
            found = self._streams[number] = rng(self.seed, number)
        return found
