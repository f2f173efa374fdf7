"""Losses as ops: a prediction and a target in, the batch's mean loss (a 0-d float32) out.

The target is data: its gradient is never taken (``no_grad``). The cross-entropies read
logits (the input of the model's final sigmoid or softmax), so they are stable for any
logit and their gradient is simply ``(p - y) / n``; which output a loss reads is decided
once, when the loss is attached to the lowered graph (``dlspec.graph.heads``). The engine
computes a loss and its gradient in one pass (``dlspec.engine.losses``), with the same
float32 arithmetic as these rules; the ONNX emissions give a model that reports its loss.
"""

from __future__ import annotations

import numpy as np

from dlspec.ops.registry import OpDef, f32, register, shape_error


def _sigmoid(z):
    return (np.tanh(z * 0.5) + 1) * 0.5


def _same_size(op: str, p, y) -> tuple:
    """A loss over predictions (N, ...) and targets holding as many values."""
    known = [d for d in (*p[1:], *y[1:]) if d is not None]
    if len(p) < 1 or len(y) < 1 or int(np.prod(p[1:], dtype=np.int64)) != \
            int(np.prod(y[1:], dtype=np.int64)) or None in known:
        raise shape_error(op, "prediction and target hold different numbers of values per "
                          "example", p, y)
    return ()


def _labels_shape(op: str, z, y) -> tuple:
    if len(z) != 2 or z[1] is None or z[1] < 2:
        raise shape_error(op, "expects class scores (N, K) with K >= 2", z, y)
    if tuple(y[1:]) not in ((), (z[1],)):
        raise shape_error(op, "expects class indices (N,) or one-hot targets (N, K)", z, y)
    return ()


def _as(y, z):
    return y.reshape(z.shape).astype(z.dtype, copy=False)


def onehot(y: np.ndarray, k: int, dtype=np.float32) -> np.ndarray:
    """One-hot rows (N, k) of class indices (N,), or ``y`` itself when it is one-hot."""
    if y.ndim == 2 and y.shape[1] == k:
        return y.astype(dtype, copy=False)
    out = np.zeros((y.shape[0], k), dtype=dtype)
    out[np.arange(y.shape[0]), y.reshape(-1).astype(np.int64)] = 1
    return out


def _bce(z, y):
    y = _as(y, z)
    return (np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean()


def _cce(z, y):
    t = onehot(y, z.shape[1], z.dtype)
    m = z.max(axis=1, keepdims=True)
    return -(t * (z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True)))).sum() / \
        z.dtype.type(z.shape[0])


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _reduce_mean(b, x: str, hint: str) -> str:
    return b.node("ReduceMean", [x], hint, keepdims=0)


def _emit_bce(b, names):
    z, y = names
    y = b.node("Reshape", [y, b.node("Shape", [z], "z_shape")], "bce_target")
    per = b.node("Add", [b.node("Sub", [b.node("Relu", [z], "bce_pos"),
                                        b.node("Mul", [z, y], "bce_zy")], "bce_lin"),
                         b.node("Log", [b.node("Add", [
                             b.const(np.array(1.0, np.float32), "one"),
                             b.node("Exp", [b.node("Neg", [b.node("Abs", [z], "bce_abs")],
                                                   "bce_neg")], "bce_exp")],
                             "bce_1p")], "bce_log")], "bce_per")
    return _reduce_mean(b, per, "bce")


def _emit_cce(b, names):
    # Class indices: ONNX's own loss. (One-hot targets are not emitted; the engine's
    # targets are indices.)
    z, y = names
    return b.node("SoftmaxCrossEntropyLoss", [z, y], "cce", reduction="mean")


def _emit_error(square: bool):
    def emit(b, names):
        p, y = names
        d = b.node("Sub", [p, b.node("Reshape", [y, b.node("Shape", [p], "p_shape")],
                                     "target")], "error")
        d = b.node("Mul", [d, d], "sq_error") if square else b.node("Abs", [d], "abs_error")
        return _reduce_mean(b, d, "mse" if square else "mae")
    return emit


def _labels(rng, n, k):
    return rng.integers(0, k, size=n).astype(np.int64)


register(OpDef(
    "bce_logits", 2, lambda z, y: _same_size("bce_logits", z, y), _bce,
    vjp=lambda g, out, z, y: (g * (_sigmoid(z) - _as(y, z)) * z.dtype.type(1.0 / z.size),
                              None),
    emit=_emit_bce,
    sample=lambda rng: ([f32(rng, 6, 1, low=-4, high=4),
                         (rng.random((6, 1)) < 0.5).astype(np.float32)], {}),
    no_grad=(1,)))

register(OpDef(
    "cce_logits", 2, lambda z, y: _labels_shape("cce_logits", z, y), _cce,
    vjp=lambda g, out, z, y: (g * (_softmax(z) - onehot(y, z.shape[1], z.dtype)) *
                              z.dtype.type(1.0 / z.shape[0]), None),
    emit=_emit_cce,
    sample=lambda rng: ([f32(rng, 5, 4, low=-3, high=3), _labels(rng, 5, 4)], {}),
    no_grad=(1,)))

register(OpDef(
    "mse", 2, lambda p, y: _same_size("mse", p, y),
    lambda p, y: np.square(p - _as(y, p)).mean(),
    vjp=lambda g, out, p, y: (g * (p - _as(y, p)) * p.dtype.type(2.0 / p.size), None),
    emit=_emit_error(True),
    sample=lambda rng: ([f32(rng, 5, 2), f32(rng, 5, 2)], {}),
    no_grad=(1,)))

register(OpDef(
    "mae", 2, lambda p, y: _same_size("mae", p, y),
    lambda p, y: np.abs(p - _as(y, p)).mean(),
    # NOTE: the subgradient 0 where prediction equals target; samples stay away from it.
    vjp=lambda g, out, p, y: (g * np.sign(p - _as(y, p)) * p.dtype.type(1.0 / p.size),
                              None),
    emit=_emit_error(False),
    sample=lambda rng: ([f32(rng, 5, 2, low=0.5, high=2), f32(rng, 5, 2, low=-2,
                                                               high=-0.5)], {}),
    no_grad=(1,)))


def _sum_shape(*shapes, weights=()) -> tuple:
    if any(tuple(s) != () for s in shapes):
        raise shape_error("loss_sum", "adds losses, each one number", *shapes)
    return ()


def _emit_sum(b, names, weights):
    out = None
    for name, w in zip(names, weights, strict=True):
        term = name if w == 1.0 else b.node("Mul", [name, b.const(np.array(w, np.float32),
                                                                   "weight")], "weighted")
        out = term if out is None else b.node("Add", [out, term], "loss_sum")
    return out


# What one optimizer minimises when it is given several losses: their weighted sum.
register(OpDef(
    "loss_sum", None, _sum_shape,
    lambda *xs, weights: sum(np.float32(w) * x for w, x in zip(weights, xs, strict=True)),
    vjp=lambda g, y, *xs, weights: tuple(g * np.float32(w) for w in weights),
    emit=_emit_sum,
    sample=lambda rng: ([np.array(rng.random(), np.float32), np.array(rng.random(), np.float32)],
                        {"weights": (1.0, 0.5)}),
))
