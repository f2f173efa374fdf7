"""Lowering: a model's named nodes -> a Graph of ops, with shapes inferred on the way.

Lowering is an environment from names to values: each input is a value, and each node,
in an order where it comes after what it reads, applies its layer to the values it names
and binds its own name to the result. A layer's weights are built once, under the name of
the node that owns them (``node.param``); a node that shares them and every call of a
block applies the same weights again, so their gradients add up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from dlspec.errors import Diagnostics, Location, ShapeError, SpecError, path_str
from dlspec.graph.ir import Graph, GraphBuilder, Value
from dlspec.graph.layers import LAYERS, Weight
from dlspec.graph.program import (
    BlockDef,
    CycleError,
    InputDef,
    ModelDef,
    NodeDef,
    topological_order,
)
from dlspec.ops.registry import fmt_shape

INPUT_NAME = "features"
Locate = Callable[[tuple, bool], Location]


def _dims(shape: tuple) -> str:
    return "x".join(map(str, shape)) or "a scalar"


class _Lowering:
    def __init__(self, model: ModelDef, locate: Locate | None) -> None:
        self.model, self.locate = model, locate
        self.gb = GraphBuilder()
        self.weights: dict[str, tuple[list[Weight], dict[str, Value]]] = {}  # owner -> built

    def fail(self, where: tuple, message: str, code: str = "semantic-shape") -> Diagnostics:
        loc = self.locate(where, False) if self.locate and where else None
        return Diagnostics([SpecError(message, loc, path=path_str(where), code=code)])

    # -- one node ------------------------------------------------------------------------
    def weights_of(self, owner: str, built: list[Weight],
                   given: Mapping[str, np.ndarray]) -> tuple[dict[str, Value], bool]:
        """The owner's parameters, checked against ``built`` (the weights this application
        of the layer needs), and whether this application made them (the first does)."""
        if owner in self.weights:
            first, values = self.weights[owner]
            if [w.shape for w in first] != [w.shape for w in built]:
                want = ", ".join(f"{owner}.{w.name} {_dims(w.shape)}" for w in first)
                got = ", ".join(f"{_dims(w.shape)}" for w in built)
                raise ShapeError(f"applies the parameters of '{owner.split('.')[-1]}' ({want}) "
                                 f"to inputs that would need {got}; a shared layer needs "
                                 "inputs of one shape wherever it is applied")
            return values, False
        names = {w.name for w in built}
        unknown = sorted(set(given) - names)
        if unknown:
            raise _GivenError(f"the layer has no parameter '{unknown[0]}'; its parameters are"
                              f" {', '.join(sorted(names)) or 'none'}", (unknown[0],))
        values = {}
        for w in built:
            array = given.get(w.name)
            if array is not None and tuple(array.shape) != tuple(w.shape):
                raise _GivenError(f"{owner}.{w.name}: expected {w.describe()}, got "
                                  f"{_dims(array.shape)}", (w.name,))
            values[w.name] = self.gb.param(w.name, w.shape, w.init, w.trainable, owner=owner,
                                           given=array)
        self.weights[owner] = (built, values)
        return values, True

    def apply(self, node: NodeDef, layer_node: NodeDef, owner: str, scope: str,
              xs: list[Value], given: Mapping[str, np.ndarray]) -> Value:
        layer = LAYERS[layer_node.layer]
        gb = self.gb
        gb.begin_layer(scope)
        built = layer.build(tuple(x.shape for x in xs), dict(layer_node.params))
        values, made = self.weights_of(owner, built, given)
        y = layer.apply(gb, xs, values, dict(layer_node.params))
        n_params = sum(int(np.prod(w.shape, dtype=np.int64)) for w in built) if made else 0
        gb.end_layer(layer_node.layer, y, node.inputs,
                     share=None if made or owner == scope else owner,
                     params=tuple(v.name for v in values.values()), n_params=n_params)
        return y

    def node(self, node: NodeDef, env: dict[str, Value], nodes: Mapping[str, NodeDef],
             prefix: str = "", block: str | None = None) -> None:
        xs = [env[name] for name in node.inputs]
        scope = prefix + node.name
        try:
            if node.call is not None:
                self.call(self.model.blocks[node.call], node, xs, env, scope)
                return
            layer_node = node
            while layer_node.share is not None:
                layer_node = nodes[layer_node.share]
            owner = (f"{block}." if block else "") + layer_node.name
            given = node.weights if node.share is None else {}
            env[node.name] = self.apply(node, layer_node, owner, scope, xs, given)
            self.gb.graph.node_values[scope] = env[node.name]  # a block's: call.node
        except _GivenError as e:
            raise self.fail((*node.where, "weights", *e.where), str(e), "semantic-weights") \
                from None
        except ShapeError as e:
            text = str(e)
            if not text.startswith("layer '"):
                what = f" (shares '{node.share}')" if node.share else ""
                text = f"layer '{scope}'{what}: {text}"
            raise self.fail(node.where, text) from None

    def call(self, block: BlockDef, node: NodeDef, xs: list[Value], env: dict[str, Value],
             scope: str) -> None:
        if len(xs) != len(block.inputs):
            raise ShapeError(f"block '{block.name}' takes {len(block.inputs)} input(s) "
                             f"({', '.join(block.inputs)}), got {len(xs)}")
        local = dict(zip(block.inputs, xs, strict=True))
        nodes = {n.name: n for n in block.nodes}
        for inner in _order(block.nodes, block.inputs):
            self.node(inner, local, nodes, prefix=f"{scope}.", block=block.name)
        for out in block.outputs:
            env[f"{node.name}.{out}"] = local[out]
            self.gb.graph.node_values[f"{scope}.{out}"] = local[out]
        if len(block.outputs) == 1:
            env[node.name] = local[block.outputs[0]]
            self.gb.graph.node_values[scope] = env[node.name]

    def run(self) -> Graph:
        env = {}
        for inp in self.model.inputs:
            env[inp.name] = self.gb.input(inp.name, (None, *inp.shape))
        nodes = {n.name: n for n in self.model.nodes}
        problems: list = []
        for node in _order(self.model.nodes, env):
            # A node downstream of one that failed has no inputs to check: skipped, so
            # that each independent mistake is reported once.
            if not all(name in env for name in node.inputs):
                continue
            try:
                self.node(node, env, nodes)
            except Diagnostics as d:
                problems.extend(d.items)
        if problems:
            raise Diagnostics(problems)
        graph = self.gb.graph
        graph.outputs = {name: env[name] for name in self.model.outputs}
        return graph


class _GivenError(ValueError):
    def __init__(self, message: str, where: tuple) -> None:
        super().__init__(message)
        self.where = where


def _order(nodes: Sequence[NodeDef], known) -> list[NodeDef]:
    try:
        return topological_order(nodes, known)
    except CycleError as e:  # the spec checks report cycles first, located; this is a guard
        raise ShapeError(f"nodes read each other in a cycle: {e}") from None


def lower_model(model: ModelDef, locate: Locate | None = None) -> Graph:
    """Build the graph of a model.

    Raises:
        Diagnostics: a node that cannot take its inputs' shapes, or given weights of the
            wrong shape, located at the node (at the array for weights).
    """
    return _Lowering(model, locate).run()


def chain(layers: Sequence, input_shape: int | tuple[int, ...],
          input_name: str = INPUT_NAME) -> ModelDef:
    """The sequential form: ``layers`` (LayerSpec: type, name, params) one after another
    from one input, the last one the output."""
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    nodes, prev = [], input_name
    for i, layer in enumerate(layers):
        params = {k: v for k, v in dict(layer.params).items() if k != "name"}
        nodes.append(NodeDef(layer.name, layer.type, params, (prev,),
                             where=("model", "layers", i)))
        prev = layer.name
    return ModelDef((InputDef(input_name, shape),), tuple(nodes), (prev,))


def lower(layers: Sequence, input_shape: int | tuple[int, ...],
          locate: Locate | None = None) -> Graph:
    """Build the graph of a sequential model (``chain`` of ``layers``)."""
    return lower_model(chain(layers, input_shape), locate)


def output_activation(graph: Graph, value: Value | None = None) -> str | None:
    """The op producing ``value`` (default the first output), train-only ops skipped (e.g.
    'sigmoid'), or None for an input."""
    node = (value or graph.output).producer
    while node is not None and node.op.train_only:
        node = node.inputs[0].producer
    return node.op.name if node is not None else None


__all__ = ["INPUT_NAME", "chain", "fmt_shape", "lower", "lower_model", "output_activation"]
