"""Batch normalisation over the last (channel) axis, as two pure ops.

``batchnorm(x, gamma, beta, mean, var)`` normalises with given statistics: the inference
form, exported to ONNX. ``batchnorm_train(a, x, gamma, beta, mean, var)`` normalises with
the batch's own statistics (over every axis but the last); it is train-only, so at
inference and in the exported model it passes ``a`` through. A batch-norm layer lowers to

    a = batchnorm(x, gamma, beta, moving_mean, moving_var)
    y = batchnorm_train(a, x, gamma, beta, moving_mean, moving_var)

which is ``a`` at inference and the batch-statistics form in training. The op's
``update`` rule moves the moving statistics towards each training batch's (Keras'
convention: ``moving = momentum * moving + (1 - momentum) * batch``, biased variance).
"""

from __future__ import annotations

import numpy as np

from dlspec.ops.registry import OpDef, f32, register, shape_error


def _channels(op: str, x: tuple, *vectors: tuple) -> None:
    if len(x) < 2:
        raise shape_error(op, "expects a batch (N, ..., C)", x, *vectors)
    if any(tuple(v) != (x[-1],) for v in vectors):
        raise shape_error(op, f"needs one value per channel ({x[-1]},) for each of gamma, beta"
                          " (and mean, var)", x, *vectors)


def _bn_shape(x, gamma, beta, mean, var, epsilon=1e-5):
    _channels("batchnorm", x, gamma, beta, mean, var)
    return tuple(x)


def _batchnorm(x, gamma, beta, mean, var, epsilon=1e-5):
    scale = gamma / np.sqrt(var + x.dtype.type(epsilon))
    return x * scale + (beta - mean * scale)


def _batchnorm_vjp(g, y, x, gamma, beta, mean, var, epsilon=1e-5):
    axes = tuple(range(x.ndim - 1))
    inv = 1 / np.sqrt(var + x.dtype.type(epsilon))
    dbeta = g.sum(axis=axes)
    g_xc = (g * (x - mean)).sum(axis=axes)          # sum of g * (x - mean) per channel
    dgamma = g_xc * inv
    dmean = -dbeta * gamma * inv
    dvar = g_xc * gamma * (-0.5 * inv ** 3)
    return g * (gamma * inv), dgamma, dbeta, dmean, dvar


def _emit_batchnorm(b, names, epsilon=1e-5):
    # y = x * scale + shift, broadcast over the last axis: right for any rank without
    # knowing it (BatchNormalization is channels-first), and folded to two constants
    # by onnxruntime when the statistics are initializers.
    x, gamma, beta, mean, var = names
    eps = b.const(np.array(epsilon, dtype=np.float32), "epsilon")
    scale = b.node("Div", [gamma, b.node("Sqrt", [b.node("Add", [var, eps], "var_eps")],
                                         "std")], "bn_scale")
    shift = b.node("Sub", [beta, b.node("Mul", [mean, scale], "mean_scaled")], "bn_shift")
    return b.node("Add", [b.node("Mul", [x, scale], "x_scaled"), shift], "batchnorm")


def _sample_bn(rng):
    c = 3
    return [f32(rng, 4, 3, 5, c), f32(rng, c, low=0.5, high=1.5), f32(rng, c),
            f32(rng, c, low=-0.5, high=0.5), f32(rng, c, low=0.5, high=1.5)], {"epsilon": 1e-3}


register(OpDef("batchnorm", 5, _bn_shape, _batchnorm, _batchnorm_vjp, _emit_batchnorm,
               _sample_bn))


def _bn_train_shape(a, x, gamma, beta, mean, var, epsilon=1e-5, momentum=0.99):
    _channels("batchnorm_train", x, gamma, beta, mean, var)
    if len(a) != len(x) or any(p != q and None not in (p, q) for p, q in zip(a, x, strict=True)):
        raise shape_error("batchnorm_train", "the inference form and x differ in shape", a, x)
    return tuple(a)


def _batch_normalised(x, epsilon):
    axes = tuple(range(x.ndim - 1))
    xc = x - x.mean(axis=axes)
    inv = 1 / np.sqrt((xc * xc).mean(axis=axes) + x.dtype.type(epsilon))
    return xc * inv, inv


def _batchnorm_train(a, x, gamma, beta, mean, var, epsilon=1e-5, momentum=0.99):
    xhat, _ = _batch_normalised(x, epsilon)
    return xhat * gamma + beta


def _batchnorm_update(y, a, x, gamma, beta, mean, var, epsilon=1e-5, momentum=0.99):
    axes = tuple(range(x.ndim - 1))
    m = x.dtype.type(momentum)
    return {4: mean * m + x.mean(axis=axes) * (1 - m), 5: var * m + x.var(axis=axes) * (1 - m)}


def _batchnorm_train_vjp(g, y, a, x, gamma, beta, mean, var, epsilon=1e-5, momentum=0.99):
    axes = tuple(range(x.ndim - 1))
    xhat, inv = _batch_normalised(x, epsilon)
    dbeta = g.sum(axis=axes)
    dgamma = (g * xhat).sum(axis=axes)
    m = x.size // x.shape[-1]
    # The batch statistics depend on x too: the textbook three-term form.
    dx = (gamma * inv / m) * (m * g - dbeta - xhat * dgamma)
    # In training the output depends on neither the inference form a nor the moving
    # statistics (those are state, moved by the update rule).
    return None, dx, dgamma, dbeta, None, None


def _sample_bn_train(rng):
    xs, attrs = _sample_bn(rng)
    x, gamma, beta, mean, var = xs
    return [_batchnorm(*xs, **attrs), x, gamma, beta, mean, var], {**attrs, "momentum": 0.9}


register(OpDef(
    "batchnorm_train", 6, _bn_train_shape, _batchnorm_train, _batchnorm_train_vjp,
    emit=lambda b, names, **_: b.node("Identity", names[:1], "batchnorm_train"),
    sample=_sample_bn_train, train_only=True, update=_batchnorm_update,
))
