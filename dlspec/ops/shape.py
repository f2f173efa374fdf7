"""Ops that only change a tensor's shape: flatten and reshape. The batch axis always stays.

Flattening a channels-last image (N, H, W, C) orders the features (H, W, C), which is
what ONNX's Flatten(axis=1) does to the same NHWC tensor, so no transpose is emitted.
"""

from __future__ import annotations

import numpy as np

from dlspec.ops.registry import OpDef, f32, register, shape_error


def _flatten_shape(x):
    if len(x) < 2:
        raise shape_error("flatten", "expects a batch (N, ...) with at least one more axis", x)
    return (x[0], int(np.prod(x[1:], dtype=np.int64)))


register(OpDef(
    "flatten", 1, _flatten_shape,
    forward=lambda x: x.reshape(x.shape[0], -1),
    vjp=lambda g, y, x: (g.reshape(x.shape),),
    emit=lambda b, names: b.node("Flatten", names, "flatten", axis=1),
    sample=lambda rng: ([f32(rng, 2, 3, 5, 4)], {}),
))


def resolve_shape(op: str, x: tuple, shape) -> tuple[int, ...]:
    """``shape`` (without the batch axis, at most one -1) with the -1 worked out from ``x``."""
    shape = tuple(int(d) for d in shape)
    size = int(np.prod(x[1:], dtype=np.int64))
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    unknown = shape.count(-1)
    if any(d < 1 and d != -1 for d in shape) or unknown > 1:
        raise shape_error(op, f"target shape {shape} needs positive sizes and at most one -1", x)
    if unknown:
        if size % known:
            raise shape_error(op, f"cannot fill the -1 of {shape}: {size} values per example "
                              f"do not divide by {known}", x)
        shape = tuple(size // known if d == -1 else d for d in shape)
    elif known != size:
        raise shape_error(op, f"target shape {shape} holds {known} values per example, the "
                          f"input {size}", x)
    return shape


register(OpDef(
    "reshape", 1, lambda x, shape: (x[0], *resolve_shape("reshape", x, shape)),
    forward=lambda x, shape: x.reshape(x.shape[0], *shape),
    vjp=lambda g, y, x, shape: (g.reshape(x.shape),),
    # 0 copies the input's first dimension (allowzero=0, the default): the batch stays dynamic.
    emit=lambda b, names, shape: b.node(
        "Reshape", [names[0], b.const(np.array([0, *shape], dtype=np.int64), "shape")],
        "reshape"),
    sample=lambda rng: ([f32(rng, 2, 3, 4, 5)], {"shape": (6, -1)}),
))


def _concat_axis(op: str, shapes: tuple, axis: int) -> int:
    """``axis`` as a non-negative index; the batch axis (0) is never joined along."""
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes):
        raise shape_error(op, "inputs have different ranks", *shapes)
    ax = axis + rank if axis < 0 else axis
    if not 1 <= ax < rank:
        raise shape_error(op, f"axis {axis} is not an axis of one example (1..{rank - 1}, "
                          "or negative from the end)", *shapes)
    return ax


def _concat_shape(*shapes, axis=-1):
    if not shapes:
        raise shape_error("concat", "needs at least one input")
    ax = _concat_axis("concat", shapes, axis)
    for s in shapes[1:]:
        if any(a != b for i, (a, b) in enumerate(zip(s, shapes[0], strict=True)) if i != ax):
            raise shape_error("concat", f"shapes differ outside axis {axis}", *shapes)
    return (*shapes[0][:ax], sum(s[ax] for s in shapes), *shapes[0][ax + 1:])


def _concat_vjp(g, y, *xs, axis=-1):
    ax = axis % g.ndim
    cuts = np.cumsum([x.shape[ax] for x in xs])[:-1]
    return tuple(np.ascontiguousarray(p) for p in np.split(g, cuts, axis=ax))


register(OpDef(
    "concat", None, _concat_shape,
    forward=lambda *xs, axis=-1: np.concatenate(xs, axis=axis),
    vjp=_concat_vjp,
    emit=lambda b, names, axis=-1: b.node("Concat", names, "concat", axis=axis),
    sample=lambda rng: ([f32(rng, 3, 2, 4), f32(rng, 3, 2, 1), f32(rng, 3, 2, 3)],
                        {"axis": -1}),
))
