"""Graph / Node / Value: the intermediate representation every later stage reads.

A ``Graph`` is a list of nodes in topological (construction) order. Shapes are
inferred while the graph is built, with ``None`` for the dynamic batch axis,
so a shape error surfaces at lowering time and names the layer that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlspec.errors import ShapeError
from dlspec.ops import OpDef, get_op


@dataclass(eq=False)
class Value:
    """One tensor in the graph. ``kind``: input, param, noise or op (a node's output)."""

    id: int
    name: str
    shape: tuple
    kind: str
    producer: Node | None = None

    def __repr__(self) -> str:
        return f"Value({self.name}, {self.shape})"


@dataclass(eq=False)
class Node:
    op: OpDef
    inputs: tuple[Value, ...]
    attrs: dict
    output: Value
    layer: str


@dataclass(eq=False)
class Param:
    """A learnable tensor: its value, the layer that owns it and how it starts."""

    value: Value
    layer: str
    init: Callable[[np.random.Generator, tuple], np.ndarray]
    trainable: bool = True

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def size(self) -> int:
        return int(np.prod(self.value.shape, dtype=np.int64))


@dataclass(eq=False)
class Noise:
    """A random tensor the engine draws each training step (e.g. a dropout mask)."""

    value: Value
    rate: float


@dataclass
class Graph:
    inputs: list[Value] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    noises: list[Noise] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    output: Value | None = None
    layers: list[LayerInfo] = field(default_factory=list)

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params)

    @property
    def values(self) -> list[Value]:
        vals = list(self.inputs) + [p.value for p in self.params] + [n.value for n in self.noises]
        return vals + [n.output for n in self.nodes]


@dataclass
class LayerInfo:
    """What ``inspect`` shows per layer: its ops, output shape and parameter count."""

    name: str
    type: str
    ops: list[str]
    shape: tuple
    n_params: int


class GraphBuilder:
    """Builds a Graph op by op, inferring shapes and remembering which layer is lowering."""

    def __init__(self) -> None:
        self.graph = Graph()
        self._next = 0
        self.layer = ""
        self._layer_ops: list[str] = []
        self._layer_params = 0

    def _value(self, name: str, shape: tuple, kind: str) -> Value:
        v = Value(self._next, name, tuple(shape), kind)
        self._next += 1
        return v

    def input(self, name: str, shape: tuple) -> Value:
        v = self._value(name, shape, "input")
        self.graph.inputs.append(v)
        return v

    def param(self, name: str, shape: tuple, init, trainable: bool = True) -> Value:
        v = self._value(f"{self.layer}.{name}", shape, "param")
        self.graph.params.append(Param(v, self.layer, init, trainable))
        self._layer_params += int(np.prod(shape, dtype=np.int64))
        return v

    def noise(self, name: str, shape: tuple, rate: float) -> Value:
        v = self._value(f"{self.layer}.{name}", shape, "noise")
        self.graph.noises.append(Noise(v, rate))
        return v

    def op(self, name: str, *inputs: Value, **attrs) -> Value:
        op = get_op(name)
        if op.arity is not None and len(inputs) != op.arity:
            raise ValueError(f"op {name} takes {op.arity} inputs, got {len(inputs)}")
        try:
            shape = op.shape(*(v.shape for v in inputs), **attrs)
        except ShapeError as e:
            raise ShapeError(f"layer {self.layer!r}: {e}") from None
        out = self._value(f"{self.layer}.{name}", shape, "op")
        node = Node(op, tuple(inputs), dict(attrs), out, self.layer)
        out.producer = node
        self.graph.nodes.append(node)
        self._layer_ops.append(name)
        return out

    def begin_layer(self, name: str) -> None:
        self.layer, self._layer_ops, self._layer_params = name, [], 0

    def end_layer(self, type_: str, out: Value) -> None:
        self.graph.layers.append(
            LayerInfo(self.layer, type_, self._layer_ops, out.shape, self._layer_params))
