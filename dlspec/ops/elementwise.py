"""Elementwise ops: activations, broadcasting arithmetic and dropout."""

from __future__ import annotations

import numpy as np

from dlspec.ops.registry import OpDef, broadcast_shapes, f32, register, unbroadcast


def _same(x, **_):
    return tuple(x)


def _unary(name, forward, vjp, onnx_op, *, away=0.0, low=-3.0, high=3.0, **onnx_attrs):
    """Register an elementwise unary op whose ONNX form is one node."""

    def emit(b, names, **attrs):
        return b.node(onnx_op, names, name, **{k: attrs[k] for k in onnx_attrs})

    def sample(rng):
        return [f32(rng, 4, 5, low=low, high=high, away=away)], dict(onnx_attrs)

    return register(OpDef(name, 1, _same, forward, vjp, emit, sample))


# relu's derivative at 0 is taken as 0 (the subgradient every framework uses).
_unary("relu", lambda x: np.maximum(x, 0),
       lambda g, y, x: (g * (x > 0),), "Relu", away=0.05)


def _sigmoid(x):
    # tanh form: stable for large |x| and stays float32 (no exp overflow).
    return (np.tanh(x * 0.5) + 1) * 0.5


_unary("sigmoid", _sigmoid, lambda g, y, x: (g * y * (1 - y),), "Sigmoid")
_unary("tanh", np.tanh, lambda g, y, x: (g * (1 - y * y),), "Tanh")
_unary("softplus", lambda x: np.logaddexp(0, x),
       lambda g, y, x: (g * _sigmoid(x),), "Softplus")
_unary("leaky_relu", lambda x, alpha: np.where(x > 0, x, x * np.float32(alpha)),
       lambda g, y, x, alpha: (np.where(x > 0, g, g * np.float32(alpha)),),
       "LeakyRelu", away=0.05, alpha=0.2)
_unary("elu", lambda x, alpha: np.where(x > 0, x, np.expm1(np.minimum(x, 0)) * np.float32(alpha)),
       lambda g, y, x, alpha: (np.where(x > 0, g, g * (y + np.float32(alpha))),),
       "Elu", away=0.05, alpha=1.0)


def _softmax(x, axis=-1):
    if x.ndim == 2 and axis in (-1, 1) and x.shape[1] <= 64:
        # Short rows (class scores): reductions along them run one tiny loop per row, so
        # work on the transpose, where each reduction is a pass over long rows.
        e = x.T.copy()   # C order: rows of the transpose are contiguous
        e -= e.max(axis=0)
        np.exp(e, out=e)
        e /= e.sum(axis=0)
        return np.ascontiguousarray(e.T)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e


register(OpDef(
    "softmax", 1, _same, _softmax,
    vjp=lambda g, y, x, axis=-1: (y * (g - (g * y).sum(axis=axis, keepdims=True)),),
    emit=lambda b, names, axis=-1: b.node("Softmax", names, "softmax", axis=axis),
    sample=lambda rng: ([f32(rng, 4, 6, low=-3, high=3)], {"axis": -1}),
))


def _binary(name, forward, vjp, onnx_op):
    def shape(a, b):
        return broadcast_shapes(name, a, b)

    def sample(rng):
        return [f32(rng, 4, 5), f32(rng, 5)], {}

    return register(OpDef(name, 2, shape, forward, vjp,
                          lambda b, names: b.node(onnx_op, names, name), sample))


_binary("add", np.add,
        lambda g, y, a, b: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)), "Add")
_binary("mul", np.multiply,
        lambda g, y, a, b: (unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape)), "Mul")


# The mask (0 or 1/(1-rate)) is a noise input the engine draws per step, so the
# op itself stays pure. In the exported (inference) model dropout is the identity.
register(OpDef(
    "dropout", 2, lambda x, mask: tuple(x), np.multiply,
    vjp=lambda g, y, x, mask: (g * mask, None),
    emit=lambda b, names: b.node("Identity", names[:1], "dropout"),
    sample=lambda rng: ([f32(rng, 4, 5),
                         ((rng.random((4, 5)) >= 0.3) / np.float32(0.7)).astype(np.float32)], {}),
    train_only=True,
))


# stop_gradient: the identity whose gradient is zero (PyTorch's detach, TensorFlow's
# tf.stop_gradient). What reads it is not trained through it. Its input is marked no_grad:
# no gradient is defined to flow there, so the finite-difference walk skips it honestly.
register(OpDef(
    "stop_gradient", 1, lambda x: tuple(x), lambda x: x,
    vjp=lambda g, y, x: (None,),
    emit=lambda b, names: b.node("Identity", names, "stop_gradient"),
    sample=lambda rng: ([f32(rng, 3, 4)], {}),
    no_grad=(0,),
))
