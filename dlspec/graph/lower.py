"""Lowering: the spec's layers -> a Graph of ops, with shapes inferred on the way."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dlspec.errors import Diagnostics, Location, ShapeError, SpecError
from dlspec.graph.ir import Graph, GraphBuilder
from dlspec.graph.layers import LAYERS

INPUT_NAME = "features"


def lower(layers: Sequence, input_shape: int | tuple[int, ...],
          locate: Callable[[tuple, bool], Location] | None = None) -> Graph:
    """Build the graph of a sequential model.

    Args:
        layers: ``LayerSpec`` items (type, name, params with defaults filled).
        input_shape: one example's shape without the batch axis: the number of
            features of a table, or (height, width, channels) of an image (NHWC).
        locate: maps a spec path to a location, for shape errors.

    Raises:
        Diagnostics: a layer that cannot take its input's shape, located at the layer.
    """
    gb = GraphBuilder()
    shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
    x = gb.input(INPUT_NAME, (None, *shape))
    for i, layer in enumerate(layers):
        gb.begin_layer(layer.name)
        try:
            x = LAYERS[layer.type].lower(gb, x, dict(layer.params))
        except ShapeError as e:
            loc = locate(("model", "layers", i), False) if locate else None
            raise Diagnostics([SpecError(str(e), loc, path=f"model.layers[{i}]",
                                         code="semantic-shape")]) from None
        gb.end_layer(layer.type, x)
    gb.graph.output = x
    return gb.graph


def output_activation(graph: Graph) -> str | None:
    """The op producing the graph's output (e.g. 'sigmoid'), or None for an input."""
    node = graph.output.producer
    while node is not None and node.op.train_only:
        node = node.inputs[0].producer
    return node.op.name if node is not None else None
