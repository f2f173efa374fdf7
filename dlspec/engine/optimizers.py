"""Optimizers: in-place updates over one flat parameter buffer.

The update rules follow PyTorch's definitions (tested against torch.optim),
with Keras' defaults for hyperparameters where the two differ (epsilon 1e-7,
AdaGrad's initial accumulator 0.1), since the tutorial dlspec grew from uses Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_TINY = np.finfo(np.float32).tiny
_FLUSH_EVERY = 128


def _flush_denormals(*bufs: np.ndarray) -> None:
    # Decaying moments sink into float32 denormals, which make every later op on
    # them tens of times slower; zero them now and then (as flush-to-zero would).
    for b in bufs:
        b[np.abs(b) < _TINY] = 0


def _num(description, default, minimum=None, exclusive_min=None, maximum=None, exclusive_max=None):
    s = {"type": "number", "default": default, "description": description, "examples": [default]}
    for key, v in (("minimum", minimum), ("exclusiveMinimum", exclusive_min),
                   ("maximum", maximum), ("exclusiveMaximum", exclusive_max)):
        if v is not None:
            s[key] = v
    return s


def _lr(default):
    return _num("learning rate", default, exclusive_min=0, maximum=1e3)


def _eps():
    return _num("added to denominators for numerical stability", 1e-7, exclusive_min=0, maximum=1)


class Optimizer:
    """Base: ``step(params, grads)`` updates ``params`` in place."""

    def __init__(self, n: int, **hyper) -> None:
        self.hyper = hyper
        self.t = 0
        self.buffers: dict[str, np.ndarray] = {}
        self.tmp = np.empty(n, dtype=np.float32)
        self.scale: np.ndarray | None = None  # per element, a factor on the learning rate

    def _buf(self, name: str, n: int, fill: float = 0.0) -> np.ndarray:
        self.buffers[name] = np.full(n, fill, dtype=np.float32)
        return self.buffers[name]

    def step(self, p: np.ndarray, g: np.ndarray) -> None:
        self.t += 1
        self._update(p, g, self.tmp, **self.hyper)
        if self.t % _FLUSH_EVERY == 0:
            _flush_denormals(*self.buffers.values())

    def _update(self, p, g, tmp, **hyper) -> None:
        raise NotImplementedError

    def _descend(self, p: np.ndarray, step: np.ndarray) -> None:
        """p -= step, each element's step scaled by its learning-rate factor if any."""
        if self.scale is not None:
            step *= self.scale
        p -= step

    def state(self) -> dict[str, np.ndarray]:
        return {"t": np.array(self.t, dtype=np.int64),
                **{k: b.copy() for k, b in self.buffers.items()}}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        for k, buf in self.buffers.items():
            buf[...] = state[k]


class SGD(Optimizer):
    def __init__(self, n, lr, momentum, nesterov):
        super().__init__(n, lr=lr, momentum=momentum, nesterov=nesterov)
        self.v = self._buf("momentum", n) if momentum else None

    def _update(self, p, g, tmp, lr, momentum, nesterov):
        if not momentum:
            np.multiply(g, lr, out=tmp)
        else:
            v = self.v
            if self.t == 1:  # PyTorch starts the buffer at the first gradient
                np.copyto(v, g)
            else:
                v *= momentum
                v += g
            if nesterov:
                np.multiply(v, momentum, out=tmp)
                tmp += g
                tmp *= lr
            else:
                np.multiply(v, lr, out=tmp)
        self._descend(p, tmp)


class Adam(Optimizer):
    def __init__(self, n, lr, beta_1, beta_2, epsilon):
        super().__init__(n, lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
        self.m = self._buf("m", n)
        self.v = self._buf("v", n)

    def _update(self, p, g, tmp, lr, beta_1, beta_2, epsilon):
        m, v, t = self.m, self.v, self.t
        m *= beta_1
        np.multiply(g, 1 - beta_1, out=tmp)
        m += tmp
        v *= beta_2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - beta_2
        v += tmp
        # p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps), as torch.optim.Adam, with sqrt(bc2)
        # moved out of the denominator: one pass fewer. Constants are float32 scalars (a
        # float64 one would run the pass in float64).
        root = np.sqrt(1 - beta_2 ** t)
        np.sqrt(v, out=tmp)
        tmp += np.float32(epsilon * root)
        np.divide(m, tmp, out=tmp)
        tmp *= np.float32(lr * root / (1 - beta_1 ** t))
        self._descend(p, tmp)


class AdaGrad(Optimizer):
    def __init__(self, n, lr, initial_accumulator, epsilon):
        super().__init__(n, lr=lr, epsilon=epsilon)
        self.acc = self._buf("accumulator", n, initial_accumulator)

    def _update(self, p, g, tmp, lr, epsilon):
        np.multiply(g, g, out=tmp)
        self.acc += tmp
        np.sqrt(self.acc, out=tmp)
        tmp += epsilon
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        self._descend(p, tmp)


class RMSprop(Optimizer):
    def __init__(self, n, lr, rho, epsilon, momentum):
        super().__init__(n, lr=lr, rho=rho, epsilon=epsilon, momentum=momentum)
        self.sq = self._buf("square_avg", n)
        self.buf = self._buf("momentum", n) if momentum else None

    def _update(self, p, g, tmp, lr, rho, epsilon, momentum):
        self.sq *= rho
        np.multiply(g, g, out=tmp)
        tmp *= 1 - rho
        self.sq += tmp
        np.sqrt(self.sq, out=tmp)
        tmp += epsilon
        np.divide(g, tmp, out=tmp)
        if momentum:
            self.buf *= momentum
            self.buf += tmp
            np.multiply(self.buf, lr, out=tmp)
        else:
            tmp *= lr
        self._descend(p, tmp)


@dataclass(frozen=True)
class OptimizerDef:
    name: str
    description: str
    params: dict          # JSON Schema properties, each with a default
    cls: type[Optimizer]
    buffers: Callable[[dict], int]   # full hyperparameters -> state buffers it keeps

    def state_per_param(self, hyper: dict) -> int:
        """How many float32 buffers of the parameters' size the optimizer keeps."""
        return self.buffers({k: s["default"] for k, s in self.params.items()} | dict(hyper))

    def make(self, n: int, hyper: dict) -> Optimizer:
        full = {k: s["default"] for k, s in self.params.items()}
        full.update(hyper)
        return self.cls(n, **full)


_MOMENTUM = _num("momentum factor (0: none)", 0.0, minimum=0, exclusive_max=1)

OPTIMIZERS: dict[str, OptimizerDef] = {o.name: o for o in [
    OptimizerDef("sgd", "stochastic gradient descent, with optional (Nesterov) momentum",
                 {"lr": _lr(0.01), "momentum": _MOMENTUM,
                  "nesterov": {"type": "boolean", "default": False, "examples": [True],
                               "description": "use Nesterov momentum (needs momentum > 0)"}},
                 SGD, lambda h: int(h["momentum"] > 0)),
    OptimizerDef("adam", "Adam (Kingma & Ba), bias-corrected first and second moments",
                 {"lr": _lr(0.001),
                  "beta_1": _num("decay of the first moment", 0.9, minimum=0, exclusive_max=1),
                  "beta_2": _num("decay of the second moment", 0.999, minimum=0, exclusive_max=1),
                  "epsilon": _eps()}, Adam, lambda h: 2),
    OptimizerDef("adagrad", "AdaGrad: per-parameter rates from the sum of squared gradients",
                 {"lr": _lr(0.001),
                  "initial_accumulator": _num("starting value of the accumulator", 0.1, minimum=0),
                  "epsilon": _eps()}, AdaGrad, lambda h: 1),
    OptimizerDef("rmsprop", "RMSprop: rates from a moving average of squared gradients",
                 {"lr": _lr(0.001),
                  "rho": _num("decay of the moving average", 0.9, minimum=0, exclusive_max=1),
                  "epsilon": _eps(), "momentum": _MOMENTUM}, RMSprop,
                 lambda h: 1 + int(h["momentum"] > 0)),
]}
