"""Activations inside recurrent cells, each with the three forms the recurrent ops and the
engine's recurrent kernels need, and its name in the ONNX LSTM/GRU/RNN ``activations``.

- ``inplace(v)``: ``v`` holds ``prescale * x``; overwrite it with f(x). The kernels fold
  ``prescale`` into the gate's weights, so sigmoid is one tanh and an affine step
  (sigmoid(x) = 0.5 tanh(x / 2) + 0.5, stable and float32 throughout).
- ``deriv(y, out)``: f'(x) written into ``out``, computed from the output y = f(x) alone
  (backward passes keep outputs, not pre-activations).
- ``__call__(x)``: the pure form, a new array of x's dtype.

softmax is not among them: it is not elementwise, and ONNX's recurrent ops cannot use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RecurrentActivation:
    name: str
    inplace: Callable[[np.ndarray], None]
    deriv: Callable[[np.ndarray, np.ndarray], None]
    onnx: str
    description: str
    prescale: float = 1.0
    onnx_attrs: dict = field(default_factory=dict)   # ONNX activation_alpha / _beta
    # onnxruntime's recurrent ops compute some activations by their textbook formula
    # (``onnx_formula``), infinite in float32 past ``onnx_overflow``, where the engine's
    # stable form stays finite: an exported model then disagrees with the engine.
    onnx_overflow: float | None = None
    onnx_formula: str = ""

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x * x.dtype.type(self.prescale) if self.prescale != 1 else x.copy()
        self.inplace(y)
        return y

    def into(self, x: np.ndarray, out: np.ndarray) -> None:
        """out = f(x)."""
        if self.name == "tanh":
            np.tanh(x, out=out)
            return
        if self.prescale != 1:
            np.multiply(x, self.prescale, out=out)
        elif out is not x:
            np.copyto(out, x)
        self.inplace(out)

    def grad(self, y: np.ndarray) -> np.ndarray:
        """f'(x) from y = f(x), as a new array."""
        out = np.empty_like(y)
        self.deriv(y, out)
        return out


def _sigmoid(v):
    np.tanh(v, out=v)
    v *= 0.5
    v += 0.5


def _sigmoid_deriv(y, out):
    np.subtract(1, y, out=out)
    out *= y


def _tanh_deriv(y, out):
    np.multiply(y, y, out=out)
    np.subtract(1, out, out=out)


def _leaky_deriv(y, out):
    # 1 where the output is positive, else 0.2 (at 0 too, as the leaky_relu op)
    np.greater(y, 0, out=out)
    out *= 0.8
    out += 0.2


def _elu(v):
    np.copyto(v, np.where(v > 0, v, np.expm1(np.minimum(v, 0))))


def _elu_deriv(y, out):
    np.minimum(y, 0, out=out)   # y > 0: 1; otherwise exp(x) = y + 1
    out += 1


def _softplus_deriv(y, out):
    np.negative(y, out=out)     # sigmoid(x) = 1 - exp(-softplus(x))
    np.expm1(out, out=out)
    np.negative(out, out=out)


def _linear_deriv(y, out):
    out[...] = 1


def _relu_deriv(y, out):
    np.sign(y, out=out)         # y >= 0: 1 where positive, 0 at 0 (the relu op's rule)


RNN_ACTIVATIONS: dict[str, RecurrentActivation] = {a.name: a for a in [
    RecurrentActivation("tanh", lambda v: np.tanh(v, out=v), _tanh_deriv, "Tanh",
                        "hyperbolic tangent"),
    RecurrentActivation("sigmoid", _sigmoid, _sigmoid_deriv, "Sigmoid",
                        "1 / (1 + exp(-x))", prescale=0.5),
    RecurrentActivation("relu", lambda v: np.maximum(v, 0, out=v), _relu_deriv, "Relu",
                        "max(x, 0)"),
    RecurrentActivation("linear", lambda v: None, _linear_deriv, "Affine", "the identity",
                        onnx_attrs={"alpha": 1.0, "beta": 0.0}),
    RecurrentActivation("leaky_relu", lambda v: np.maximum(v, v * 0.2, out=v), _leaky_deriv,
                        "LeakyRelu", "x if x > 0 else 0.2 x", onnx_attrs={"alpha": 0.2}),
    RecurrentActivation("elu", _elu, _elu_deriv, "Elu", "x if x > 0 else exp(x) - 1",
                        onnx_attrs={"alpha": 1.0}),
    RecurrentActivation("softplus", lambda v: np.logaddexp(v, 0, out=v), _softplus_deriv,
                        "Softplus", "log(1 + exp(x))", onnx_overflow=88.72,
                        onnx_formula="log(1 + exp(x))"),
]}


def onnx_activation_attrs(acts: list[RecurrentActivation]) -> dict:
    """``activations`` (and alpha/beta lists) of an ONNX recurrent node. onnxruntime reads
    the alpha and beta lists in order, one entry per activation that takes one."""
    attrs: dict = {"activations": [a.onnx for a in acts]}
    for key in ("alpha", "beta"):
        values = [float(a.onnx_attrs[key]) for a in acts if key in a.onnx_attrs]
        if values:
            attrs[f"activation_{key}"] = values
    return attrs
