"""Reverse-mode differentiation over the IR.

``backward_schedule`` decides, once per graph, which nodes take part in the
backward pass and, for every gradient they produce, whether it is the first
contribution to that value (assign) or a later one (accumulate). A value used
by two nodes therefore receives the sum of both gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlspec.graph.ir import Graph, Node, Value


@dataclass(frozen=True)
class GradTarget:
    index: int          # which input of the node
    value: Value        # the input value receiving the gradient
    first: bool         # True: the first contribution (assign); False: accumulate


@dataclass(frozen=True)
class BackwardStep:
    node: Node
    targets: tuple[GradTarget, ...]


def ancestors(seed: Value) -> list[Node]:
    """Nodes ``seed`` depends on, in topological order (iterative: no recursion limit)."""
    seen: set[int] = set()
    order: list[Node] = []
    stack: list[tuple[Node, bool]] = [(seed.producer, False)] if seed.producer else []
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for v in node.inputs:
            if v.producer is not None and id(v.producer) not in seen:
                stack.append((v.producer, False))
    return order


def backward_schedule(graph: Graph, seed: Value, wrt: list[Value]) -> list[BackwardStep]:
    """The backward pass from ``seed`` to the values in ``wrt``, in execution order."""
    nodes = ancestors(seed)
    needs = {v.id for v in wrt}
    for node in nodes:  # forward sweep: which values depend on something in wrt
        if any(v.id in needs for v in node.inputs):
            needs.add(node.output.id)
    contributed: set[int] = set()
    steps: list[BackwardStep] = []
    for node in reversed(nodes):
        if node.output.id not in needs:
            continue
        targets = []
        for i, v in enumerate(node.inputs):
            if v.id in needs:
                targets.append(GradTarget(i, v, v.id not in contributed))
                contributed.add(v.id)
        steps.append(BackwardStep(node, tuple(targets)))
    missing = [v.name for v in wrt if v.id not in contributed]
    if missing:
        raise ValueError(f"no gradient reaches {', '.join(missing)}")
    return steps
