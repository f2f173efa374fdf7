"""What lowering reads: a model as named inputs, nodes, outputs and blocks.

These records are the graph's own input language; the spec loader builds them from a
spec (the sequential ``layers:`` form is a chain of nodes), tests and tools build them
directly. Each node and block carries ``where``, its path in the spec as written, so
lowering can point a shape error at the node's own line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class InputDef:
    """A named input: one example's shape (without the batch axis)."""

    name: str
    shape: tuple[int, ...]
    where: tuple = ()


@dataclass(frozen=True)
class NodeDef:
    """One node: a layer applied to ``inputs`` (names of inputs or earlier nodes).

    ``share``: apply that node's layer with its weights (one set of parameters);
    ``call``: apply that block. ``weights``: arrays given for the node's parameters, by
    their name within the layer (``kernel``).
    """

    name: str
    layer: str | None
    params: Mapping
    inputs: tuple[str, ...]
    share: str | None = None
    call: str | None = None
    weights: Mapping[str, np.ndarray] = field(default_factory=dict)
    where: tuple = ()


@dataclass(frozen=True)
class BlockDef:
    """A named sub-graph with its own inputs, nodes and outputs; every call of it applies
    the same parameters (named ``block.node.param``)."""

    name: str
    inputs: tuple[str, ...]
    nodes: tuple[NodeDef, ...]
    outputs: tuple[str, ...]
    where: tuple = ()


@dataclass(frozen=True)
class ModelDef:
    inputs: tuple[InputDef, ...]
    nodes: tuple[NodeDef, ...]
    outputs: tuple[str, ...]
    blocks: Mapping[str, BlockDef] = field(default_factory=dict)


class CycleError(ValueError):
    """Nodes that read each other; ``path`` names them in order, the first again last."""

    def __init__(self, path: list[str]) -> None:
        super().__init__(" -> ".join(path))
        self.path = path


def topological_order(nodes: Iterable[NodeDef], known: Iterable[str]) -> list[NodeDef]:
    """``nodes`` in an order where each comes after the nodes it reads, keeping the written
    order wherever it already is one (iterative: no recursion limit). Names in ``known``
    (inputs) and names that are not nodes are taken as available.

    Raises:
        CycleError: nodes that read each other.
    """
    nodes = list(nodes)
    by_name = {n.name: n for n in nodes}
    done = set(known) - set(by_name)
    order: list[NodeDef] = []
    state: dict[str, int] = {}   # 1: on the stack, 2: placed
    for root in nodes:
        if state.get(root.name) == 2:
            continue
        stack = [(root, 0)]
        state[root.name] = 1
        while stack:
            node, i = stack[-1]
            deps = [d.split(".")[0] if d not in by_name else d for d in node.inputs]
            if i < len(deps):
                stack[-1] = (node, i + 1)
                dep = deps[i]
                if dep in done or dep not in by_name or state.get(dep) == 2:
                    continue
                if state.get(dep) == 1:
                    names = [n.name for n, _ in stack]
                    raise CycleError(names[names.index(dep):] + [dep])
                state[dep] = 1
                stack.append((by_name[dep], 0))
                continue
            stack.pop()
            state[node.name] = 2
            order.append(node)
    return order
