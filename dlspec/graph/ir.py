"""Graph / Node / Value: the intermediate representation every later stage reads.

A ``Graph`` is a list of nodes in topological (construction) order, with named inputs
and outputs. Shapes are inferred while the graph is built, with ``None`` for the dynamic
batch axis, so a shape error surfaces at lowering time and names the layer that caused it.
A trained graph also holds its loss: a node reading an output and a target input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlspec.errors import ShapeError
from dlspec.ops import OpDef, get_op


@dataclass(eq=False)
class Value:
    """One tensor in the graph. ``kind``: input, target, param, noise or op (a node's
    output)."""

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
    """A learnable tensor: its value, the layer that owns it, how it starts, and the
    array the spec gives for it (inline weights), if any. ``trainable``: it gets a
    gradient; ``frozen``: nothing changes it, not even a state update (train.params)."""

    value: Value
    layer: str
    init: Callable[[np.random.Generator, tuple], np.ndarray]
    trainable: bool = True
    given: np.ndarray | None = None
    frozen: bool = False
    lr_mult: float = 1.0
    group: int = 0           # the optimizer that trains it (train.optimizers, in order)

    @property
    def shape(self) -> tuple:
        return self.value.shape

    @property
    def size(self) -> int:
        return int(np.prod(self.value.shape, dtype=np.int64))

    @property
    def name(self) -> str:
        return self.value.name


@dataclass(eq=False)
class Noise:
    """A random tensor the engine draws each training step (e.g. a dropout mask)."""

    value: Value
    rate: float


@dataclass
class LayerInfo:
    """What ``inspect`` shows per node: its layer, inputs, ops, output shape, parameters."""

    name: str
    type: str
    ops: list[str]
    shape: tuple
    n_params: int
    inputs: tuple[str, ...] = ()
    share: str | None = None      # the node whose parameters this one applies again
    params: tuple[str, ...] = ()  # the parameters it reads


@dataclass
class Graph:
    inputs: list[Value] = field(default_factory=list)
    params: list[Param] = field(default_factory=list)
    noises: list[Noise] = field(default_factory=list)
    nodes: list[Node] = field(default_factory=list)
    outputs: dict[str, Value] = field(default_factory=dict)
    layers: list[LayerInfo] = field(default_factory=list)
    node_values: dict[str, Value] = field(default_factory=dict)  # spec node -> its output
    targets: list[Value] = field(default_factory=list)
    loss: Value | None = None
    losses: dict[str, Value] = field(default_factory=dict)  # train.losses by name

    @property
    def output(self) -> Value | None:
        """The first output: the one a loss trains and predictions decode."""
        return next(iter(self.outputs.values()), None)

    @output.setter
    def output(self, value: Value) -> None:
        self.outputs = {value.name: value}

    @property
    def input_map(self) -> dict[str, Value]:
        return {v.name: v for v in self.inputs}

    @property
    def n_params(self) -> int:
        return sum(p.size for p in self.params)

    @property
    def values(self) -> list[Value]:
        vals = [*self.inputs, *self.targets, *(p.value for p in self.params),
                *(n.value for n in self.noises)]
        return vals + [n.output for n in self.nodes]

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


class GraphBuilder:
    """Builds a Graph op by op, inferring shapes and remembering which layer is lowering."""

    def __init__(self) -> None:
        self.graph = Graph()
        self._next = 0
        self.layer = ""
        self._layer_ops: list[str] = []
        self._layer_params = 0

    @classmethod
    def extend(cls, graph: Graph) -> GraphBuilder:
        """A builder adding to an existing graph (its values' ids stay unique)."""
        gb = cls()
        gb.graph = graph
        gb._next = 1 + max((v.id for v in graph.values), default=-1)
        return gb

    def _value(self, name: str, shape: tuple, kind: str) -> Value:
        v = Value(self._next, name, tuple(shape), kind)
        self._next += 1
        return v

    def input(self, name: str, shape: tuple, kind: str = "input") -> Value:
        v = self._value(name, shape, kind)
        (self.graph.targets if kind == "target" else self.graph.inputs).append(v)
        return v

    def param(self, name: str, shape: tuple, init, trainable: bool = True, *,
              owner: str | None = None, given: np.ndarray | None = None) -> Value:
        """A new parameter ``owner.name`` (owner: the layer lowering now, by default)."""
        owner = self.layer if owner is None else owner
        v = self._value(f"{owner}.{name}", shape, "param")
        self.graph.params.append(Param(v, owner, init, trainable, given))
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

    def end_layer(self, type_: str, out: Value, inputs: tuple[str, ...] = (),
                  share: str | None = None, params: tuple[str, ...] = (),
                  n_params: int = 0) -> None:
        self.graph.layers.append(LayerInfo(self.layer, type_, self._layer_ops, out.shape,
                                           n_params, tuple(inputs), share, tuple(params)))
