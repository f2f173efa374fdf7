"""Linear-algebra ops."""

from __future__ import annotations

import numpy as np

from dlspec.ops.registry import OpDef, f32, register, shape_error


def _matmul_shape(x, w):
    if len(x) != 2 or len(w) != 2:
        raise shape_error("matmul", "expects a matrix (batch, features) and a weight matrix", x, w)
    if x[1] != w[0]:
        raise shape_error("matmul", f"inner dimensions differ ({x[1]} vs {w[0]})", x, w)
    return (x[0], w[1])


register(OpDef(
    "matmul", 2, _matmul_shape, np.matmul,
    vjp=lambda g, y, x, w: (g @ w.T, x.T @ g),
    emit=lambda b, names: b.node("MatMul", names, "matmul"),
    sample=lambda rng: ([f32(rng, 4, 3), f32(rng, 3, 5)], {}),
))
