"""torch.optim optimizers configured from a spec: the same hyperparameters (Adam's and
RMSprop's epsilon, AdaGrad's initial accumulator, Nesterov momentum) and defaults as
dlspec's own (dlspec.engine.optimizers), and one parameter group per learning-rate
multiplier (train.params lr_mult), so several optimizers over named groups plug in as
more calls to ``make_optimizer``."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from dlspec.torchengine import full_hyper


def _torch_kwargs(name: str, h: dict) -> tuple[type, dict]:
    if name == "sgd":
        return torch.optim.SGD, {"momentum": h["momentum"], "nesterov": h["nesterov"]}
    if name == "adam":
        return torch.optim.Adam, {"betas": (h["beta_1"], h["beta_2"]), "eps": h["epsilon"]}
    if name == "adagrad":
        return torch.optim.Adagrad, {"eps": h["epsilon"],
                                     "initial_accumulator_value": h["initial_accumulator"]}
    if name == "rmsprop":
        return torch.optim.RMSprop, {"alpha": h["rho"], "eps": h["epsilon"],
                                     "momentum": h["momentum"]}
    raise KeyError(name)


SUPPORTED = ("sgd", "adam", "adagrad", "rmsprop")


def make_optimizer(name: str, hyper: Mapping, params: list) -> torch.optim.Optimizer:
    """``params``: (torch parameter, lr_mult) pairs; one group per multiplier."""
    h = full_hyper(name, hyper)
    cls, kwargs = _torch_kwargs(name, h)
    groups: dict[float, list] = {}
    for t, mult in params:
        groups.setdefault(float(mult), []).append(t)
    return cls([{"params": ts, "lr": h["lr"] * mult} for mult, ts in groups.items()],
               lr=h["lr"], foreach=False, **kwargs)


def optimizer_state(opt: torch.optim.Optimizer, names: dict) -> dict[str, np.ndarray]:
    """The optimizer's state per parameter name (``names``: id(tensor) -> name), as
    ``optimizer.npz`` holds it for the torch engine: ``<param>/<buffer>`` arrays."""
    out: dict[str, np.ndarray] = {}
    for t, state in opt.state.items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                out[f"{names[id(t)]}/{key}"] = value.detach().cpu().numpy().copy()
    return out
