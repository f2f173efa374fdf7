"""What the training loop runs: phases of epochs, each batch a list of optimizer steps.

The spec's compiler (``dlspec.spec.objectives``) builds these from train.losses,
optimizers, step and phases; a supervised spec is the program of one phase, one loss and
one optimizer over every trainable parameter (``supervised``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from dlspec.graph.ir import Graph, Param, Value


@dataclass
class LossTerm:
    """A named loss in the graph and what fills its target each step."""

    name: str
    value: Value                      # the loss node's output (a 0-d mean)
    target: Value | None = None       # its target input, when the trainer fills one
    constant: float | None = None     # ... with this number (else: the data's target)


@dataclass
class Objective:
    """One optimizer: what it minimises (``seed``, a loss or a weighted sum of losses),
    the parameters it owns, and how it updates them."""

    name: str
    seed: Value
    params: list[Param]
    optimizer: str
    hyper: Mapping
    losses: tuple[str, ...]


@dataclass
class RBMPhase:
    """Pretraining of one dense node as an RBM."""

    layer: str
    visible: Value                    # what the node reads: the RBM's visible units
    kernel: Param
    bias: Param
    cd_k: int = 1
    persistent: bool = False
    kind: str = "binary"
    all_rows: bool = False


@dataclass
class Phase:
    name: str
    epochs: int
    batch_size: int
    objectives: dict[str, Objective] = field(default_factory=dict)
    step: list[str] = field(default_factory=list)
    rbm: RBMPhase | None = None
    optimizer: tuple[str, Mapping] | None = None   # an rbm phase's optimizer
    early_stopping: object | None = None
    frozen: frozenset[str] = frozenset()            # parameters this phase does not train
    supervised: bool = False          # train.loss by train.optimizer: logged as it always was


@dataclass
class Program:
    phases: list[Phase]
    losses: dict[str, LossTerm]
    supervised: bool = True           # the one loss of train.loss: history as it always was
    noise: dict[str, Mapping] = field(default_factory=dict)  # noise input -> distribution

    @property
    def multi_phase(self) -> bool:
        return len(self.phases) > 1


def supervised(graph: Graph, train_spec) -> Program:
    """train.loss minimised by train.optimizer over every trainable parameter."""
    objective = Objective("optimizer", graph.loss,
                          [p for p in graph.params if p.trainable], train_spec.optimizer,
                          train_spec.optimizer_params, ("loss",))
    phase = Phase("train", train_spec.epochs, train_spec.batch_size,
                  {"optimizer": objective}, ["optimizer"],
                  early_stopping=train_spec.early_stopping, supervised=True)
    return Program([phase], {"loss": LossTerm("loss", graph.loss)}, supervised=True)


def constant_target(term: LossTerm, rows: int, cache: dict) -> np.ndarray:
    """The constant target of ``term`` for a batch of ``rows`` (built once per size)."""
    key = (term.name, rows)
    found = cache.get(key)
    if found is None:
        shape = (rows, *term.target.shape[1:])
        found = cache[key] = np.full(shape, term.constant, dtype=np.float32)
    return found
