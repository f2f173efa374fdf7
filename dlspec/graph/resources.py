"""How much memory training a graph needs, computed from shapes before anything is allocated.

Exact integers (Python ints never overflow), so a spec asking for 10**15 bytes
is refused in microseconds rather than discovered by the allocator.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dlspec.graph.ir import Graph

FLOAT = 4  # bytes per float32
DEFAULT_LIMIT = 8 << 30
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "p": 10**15, "pb": 10**15,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50}


@dataclass(frozen=True)
class Estimate:
    """Bytes needed by one training step at ``batch_size`` rows."""

    batch_size: int
    parameters: int
    gradients: int
    optimizer_state: int
    activations: int

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer_state + self.activations

    def describe(self) -> str:
        return (f"{human(self.total)} (parameters {human(self.parameters)}, gradients "
                f"{human(self.gradients)}, optimizer state {human(self.optimizer_state)}, "
                f"activations at batch size {self.batch_size} {human(self.activations)})")


def human(n: int) -> str:
    for unit, size in (("PiB", 1 << 50), ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20),
                       ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def parse_size(text: str) -> int:
    """'8GiB', '512 MB', '1e9' -> bytes; ValueError otherwise."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if not m or m.group(2) not in _UNITS:
        raise ValueError(f"cannot read {text!r} as a size (e.g. 8GiB, 512MB)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _numel(shape: tuple, batch: int) -> int:
    return math.prod(batch if d is None else d for d in shape)


def estimate(graph: Graph, batch_size: int, state_per_param: int) -> Estimate:
    """Parameters, their gradients, ``state_per_param`` optimizer buffers per parameter
    (plus one scratch buffer), and every activation with its gradient at ``batch_size``."""
    n = sum(_numel(p.shape, batch_size) for p in graph.params)
    acts = sum(_numel(v.shape, batch_size) for v in graph.values if v.kind != "param")
    return Estimate(batch_size, n * FLOAT, n * FLOAT, n * FLOAT * (state_per_param + 1),
                    2 * acts * FLOAT)


def largest_layer(graph: Graph) -> int:
    """Index of the layer with the most parameters (where a too-big spec is located)."""
    sizes = [info.n_params for info in graph.layers]
    return max(range(len(sizes)), key=sizes.__getitem__) if sizes else 0
