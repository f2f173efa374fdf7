"""Losses: name -> value and gradient, computed from logits where they fuse with the output.

Binary cross-entropy is computed from the logits feeding the final sigmoid,
and categorical cross-entropy from those feeding the final softmax: stable for
any logit, and the gradient is simply ``(p - y) / n``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlspec.engine.kernels import Kernel


@dataclass(frozen=True)
class LossDef:
    """One loss.

    Attributes:
        fuses: the output activation whose input (the logits) the loss reads,
            or None when it reads the network's output itself.
        task: what the loss trains: binary, multiclass or regression.
        fn: ``(z, y) -> (mean loss as float, dL/dz as float32)``: the engine's one pass.
        op: the loss's op in the graph (same arithmetic, as a forward and a vjp).
    """

    name: str
    description: str
    task: str
    fuses: str | None
    fn: Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]
    op: str


LOSSES: dict[str, LossDef] = {}


def _register(loss: LossDef) -> None:
    LOSSES[loss.name] = loss


def _sigmoid(z):
    return (np.tanh(z * 0.5) + 1) * 0.5


# Values are float32 throughout; the means use NumPy's pairwise summation.

def _bce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    y = y.reshape(z.shape).astype(np.float32, copy=False)
    per = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(per.mean()), (_sigmoid(z) - y) * np.float32(1.0 / z.size)


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == k:
        return y.astype(np.float32, copy=False)
    out = np.zeros((y.shape[0], k), dtype=np.float32)
    out[np.arange(y.shape[0]), y.reshape(-1).astype(np.int64)] = 1
    return out


def _cce(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    n, k = z.shape
    t = _onehot(y, k)
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    loss = -(t * (z - m - np.log(s))).sum() / n
    e /= s   # the probabilities
    e -= t
    e *= np.float32(1.0 / n)
    return float(loss), e


def _mse(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    d = z - y.reshape(z.shape).astype(np.float32, copy=False)
    return float(np.mean(d * d)), d * np.float32(2.0 / z.size)


def _mae(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    d = z - y.reshape(z.shape).astype(np.float32, copy=False)
    return float(np.mean(np.abs(d))), np.sign(d) * np.float32(1.0 / z.size)


_register(LossDef("binary_crossentropy",
                  "log loss of a sigmoid output against 0/1 labels (two classes)",
                  "binary", "sigmoid", _bce, "bce_logits"))
_register(LossDef("categorical_crossentropy",
                  "log loss of a softmax output against class labels (integer or one-hot)",
                  "multiclass", "softmax", _cce, "cce_logits"))
_register(LossDef("mse", "mean squared error (regression)", "regression", None, _mse, "mse"))
_register(LossDef("mae", "mean absolute error (regression)", "regression", None, _mae, "mae"))


class LossKernel(Kernel):
    """A loss node, its value and its gradient in one pass (``LossDef.fn``, the same float32
    arithmetic as the loss op's forward and vjp): the forward pass leaves the mean loss in
    the loss's slot, and the backward pass hands the gradient it kept to the prediction."""

    def __init__(self, node, slot: dict, fn) -> None:
        self.nodes = (node,)
        self.fn = fn
        self.z, self.y = slot[node.inputs[0].id], slot[node.inputs[1].id]
        self.out = slot[node.output.id]
        self.sinks = {}

    def forward(self, s, b):
        s[self.out], b.grad = self.fn(s[self.z], s[self.y])

    def backward(self, s, g, b):
        sink = self.sinks.get(0)
        if sink is not None:
            scale = g[self.out]  # 1 when this loss is what is minimised, else its weight
            sink.give(g, b.grad if scale == 1 else b.grad * scale)
