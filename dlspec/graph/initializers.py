"""Weight initialisers: name -> function of (rng, shape) giving float32 values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InitDef:
    name: str
    fn: Callable[[np.random.Generator, tuple], np.ndarray]
    description: str


INITIALIZERS: dict[str, InitDef] = {}


def _fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: (in, out) for dense; receptive field times channels later."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = int(np.prod(shape[:-2], dtype=np.int64)) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def _register(name: str, description: str):
    def deco(fn):
        INITIALIZERS[name] = InitDef(name, lambda rng, shape: fn(rng, shape).astype(np.float32),
                                     description)
        return fn
    return deco


@_register("glorot_uniform", "uniform in ±sqrt(6 / (fan_in + fan_out)) (Keras' default)")
def _glorot_uniform(rng, shape):
    fi, fo = _fans(shape)
    lim = np.sqrt(6.0 / (fi + fo))
    return rng.uniform(-lim, lim, shape)


@_register("glorot_normal", "truncated-free normal with std sqrt(2 / (fan_in + fan_out))")
def _glorot_normal(rng, shape):
    fi, fo = _fans(shape)
    return rng.normal(0.0, np.sqrt(2.0 / (fi + fo)), shape)


@_register("he_uniform", "uniform in ±sqrt(6 / fan_in), for ReLU networks")
def _he_uniform(rng, shape):
    lim = np.sqrt(6.0 / _fans(shape)[0])
    return rng.uniform(-lim, lim, shape)


@_register("he_normal", "normal with std sqrt(2 / fan_in), for ReLU networks")
def _he_normal(rng, shape):
    return rng.normal(0.0, np.sqrt(2.0 / _fans(shape)[0]), shape)


@_register("uniform", "uniform in ±0.05 (Keras' RandomUniform, the churn tutorial's 'uniform')")
def _uniform(rng, shape):
    return rng.uniform(-0.05, 0.05, shape)


@_register("normal", "normal with std 0.05 (Keras' RandomNormal)")
def _normal(rng, shape):
    return rng.normal(0.0, 0.05, shape)


@_register("orthogonal", "a random orthogonal matrix (Keras' Orthogonal, gain 1): orthonormal"
          " rows or columns, whichever are fewer; the recurrent kernels' default")
def _orthogonal(rng, shape):
    # Keras' recipe: QR of a normal matrix with more rows than columns, the signs of R's
    # diagonal moved into Q (so Q is uniform over orthogonal matrices), then transposed
    # back when the weight has fewer rows than columns.
    rows = int(np.prod(shape[:-1], dtype=np.int64)) if len(shape) > 1 else 1
    cols = shape[-1]
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    q *= np.sign(np.diag(r))
    return (q.T if rows < cols else q).reshape(shape)


@_register("zeros", "all zeros")
def _zeros(rng, shape):
    return np.zeros(shape)


@_register("ones", "all ones")
def _ones(rng, shape):
    return np.ones(shape)
