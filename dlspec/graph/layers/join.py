"""Joins: layers that read two or more inputs (``from: [a, b]``).

``add`` and ``multiply`` need inputs of exactly one shape: they never broadcast, so a
branch of the wrong width is an error naming both shapes rather than a silent stretch.
``concat`` joins along one axis of an example (default the last: features, or channels of
images), the other axes equal.
"""

from __future__ import annotations

from dlspec.errors import ShapeError
from dlspec.graph.layers import COMMON, LayerDef, register_layer
from dlspec.ops.registry import fmt_shape


def _same_shapes(layer: str):
    def build(shapes: tuple, p: dict) -> list:
        if any(tuple(s) != tuple(shapes[0]) for s in shapes[1:]):
            raise ShapeError(f"{layer} needs inputs of one shape, got "
                             f"{' and '.join(fmt_shape(s) for s in shapes)}; make the branches"
                             " agree (e.g. a dense layer of the same width on one of them),"
                             " or join them with concat")
        return []
    return build


def _fold(op: str):
    def apply(gb, xs, w, p):
        y = xs[0]
        for x in xs[1:]:
            y = gb.op(op, y, x)
        return y
    return apply


def _concat_build(shapes: tuple, p: dict) -> list:
    from dlspec.ops import get_op

    get_op("concat").shape(*shapes, axis=p["axis"])  # a ShapeError names every shape
    return []


register_layer(LayerDef(
    "add", "the elementwise sum of its inputs, which must have one shape (a residual"
    " connection: from: [block_input, block_output])",
    params=dict(COMMON), required=(), shorthand=None, arity=None,
    build=_same_shapes("add"), apply=_fold("add")))

register_layer(LayerDef(
    "multiply", "the elementwise product of its inputs, which must have one shape (gating)",
    params=dict(COMMON), required=(), shorthand=None, arity=None,
    build=_same_shapes("multiply"), apply=_fold("mul")))

register_layer(LayerDef(
    "concat", "its inputs side by side along one axis of an example (default the last:"
    " features of tables, channels of images); the other axes must agree",
    params={**COMMON,
            "axis": {"type": "integer", "minimum": -8, "maximum": 8, "not": {"const": 0},
                     "default": -1, "examples": [-1],
                     "description": "the axis to join along, counted without the batch axis"
                     " from 1 (or from the end, -1 being the last)"}},
    required=(), shorthand="axis", arity=None, build=_concat_build,
    apply=lambda gb, xs, w, p: gb.op("concat", *xs, axis=p["axis"])))
