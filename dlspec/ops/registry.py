"""``OpDef`` and the registry that holds one entry per op."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlspec.errors import ShapeError

Shape = tuple  # dimensions are ints, or None for the (dynamic) batch axis


@dataclass(frozen=True)
class OpDef:
    """Everything that must agree about one op, in one record.

    Attributes:
        name: registry key.
        arity: number of inputs (None: one or more, as a join's).
        shape: ``(*in_shapes, **attrs) -> out_shape``; raises ShapeError naming op and shapes.
        forward: ``(*xs, **attrs) -> y``; pure, keeps the float32 dtype.
        vjp: ``(g, y, *xs, **attrs) -> tuple`` with one gradient (or None) per input.
        emit: ``(builder, input_names, **attrs) -> output_name`` in ONNX.
        sample: ``(rng) -> (xs, attrs)`` test inputs kept away from kinks.
        train_only: the op acts only in training (dropout); at inference and in
            the exported model it passes its first input through unchanged.
        update: for ops that carry state (batch norm's moving statistics):
            ``(y, *xs, **attrs) -> {input index: new value}``, applied to those
            (non-trainable) parameter inputs after each training step's forward pass.
        no_grad: inputs that are data, not functions of anything to learn (a loss's
            target): the vjp gives None for them, always.
        index_inputs: inputs that hold int64 indices (token ids, sequence lengths): they
            are integers, so no gradient exists for them (the vjp gives None, always), and
            like the first input they carry the batch axis.
        integer_output: the op's output is int64 data (the lengths of padded token ids):
            no gradient flows through it, so its vjp gives None for every input.
    """

    name: str
    arity: int | None
    shape: Callable
    forward: Callable
    vjp: Callable
    emit: Callable
    sample: Callable
    train_only: bool = False
    update: Callable | None = None
    no_grad: tuple[int, ...] = ()
    index_inputs: tuple[int, ...] = ()
    integer_output: bool = False


OPS: dict[str, OpDef] = {}


def register(op: OpDef) -> OpDef:
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is registered twice")
    OPS[op.name] = op
    return op


def get_op(name: str) -> OpDef:
    try:
        return OPS[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; known: {', '.join(sorted(OPS))}") from None


def fmt_shape(shape: Shape) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def shape_error(op: str, message: str, *shapes: Shape) -> ShapeError:
    got = " and ".join(fmt_shape(s) for s in shapes)
    return ShapeError(f"{op}: {message} (got {got})")


def broadcast_shapes(op: str, a: Shape, b: Shape) -> Shape:
    """NumPy broadcasting of two shapes where None (batch) matches None or 1."""
    out = []
    for da, db in zip(_pad(a, len(b)), _pad(b, len(a)), strict=True):
        if da == db or db == 1:
            out.append(da)
        elif da == 1:
            out.append(db)
        else:
            raise shape_error(op, "shapes do not broadcast", a, b)
    return tuple(out)


def _pad(s: Shape, n: int) -> Shape:
    return (1,) * (n - len(s)) + tuple(s)


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``g`` down to ``shape``, undoing NumPy broadcasting (one helper for every op)."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, d in enumerate(shape) if d == 1 and g.shape[i + lead] != 1
    )
    return g.sum(axis=axes, keepdims=False).reshape(shape) if axes else g.reshape(shape)


def f32(rng: np.random.Generator, *shape: int, low: float = -1.0, high: float = 1.0,
        away: float = 0.0) -> np.ndarray:
    """A float32 sample in [low, high) with |x| >= away (keeps kinks out of gradient checks)."""
    x = rng.uniform(low, high, size=shape)
    if away:
        x = np.where(np.abs(x) < away, np.sign(x + 1e-12) * (away + np.abs(x)), x)
    return x.astype(np.float32)
