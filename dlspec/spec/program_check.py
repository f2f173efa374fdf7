"""Semantic checks of training written as data, on the canonical spec: every name a loss,
optimizer, step or phase uses must exist, and each part must be one thing.

What needs the lowered graph (which parameters an optimizer owns, whether its loss
reaches them) is checked when the graph is compiled (``dlspec.spec.objectives``).
"""

from __future__ import annotations

from collections.abc import Callable

from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.errors import Location, SpecError
from dlspec.spec.diagnose import did_you_mean
from dlspec.spec.diagnose import spec_error as _err

Locate = Callable[[tuple, bool], Location]


def graph_names(spec: dict) -> list[str]:
    """Every name a loss may read: the model's inputs and nodes."""
    return [*spec["model"]["inputs"], *spec["model"]["nodes"]]


def _scopes(t: dict):
    """(where, losses, optimizers, step) of train and of each phase that sets its own."""
    yield ("train",), t.get("losses"), t.get("optimizers"), t.get("step")
    for i, p in enumerate(t.get("phases") or ()):
        if p.get("losses") or p.get("optimizers") or p.get("step"):
            yield (("train", "phases", i), p.get("losses") or t.get("losses"),
                   p.get("optimizers") or t.get("optimizers"), p.get("step")
                   or list(p.get("optimizers") or t.get("optimizers") or {}))


def check_program(spec: dict, locate: Locate) -> list[SpecError]:
    t = spec["train"]
    if t is None:
        return []
    out: list[SpecError] = []
    phases = t.get("phases") or []
    supervised_phase = any(not p.get("rbm") and not p.get("losses") for p in phases)
    if not t.get("loss") and not t.get("losses") and (not phases or supervised_phase):
        return [_err(locate, ("train",), "missing required key 'loss' (one loss on the "
                     "model's output), or train.losses (named losses), or a train.recipe",
                     "semantic-loss", key=True)]
    if t.get("loss") and t.get("losses"):
        out.append(_err(locate, ("train", "losses"), "train.loss (one loss on the first "
                        "output) and train.losses (named losses) cannot both be given; "
                        "write the supervised loss as one of the named losses",
                        "semantic-loss", key=True))
    names = graph_names(spec)
    for where, losses, optimizers, step in _scopes(t):
        out += _check_losses(where, losses or {}, names, locate)
        out += _check_optimizers(where, optimizers or {}, list(losses or {}), locate)
        known = list(optimizers or {})
        for i, s in enumerate(step or ()):
            if s not in known:
                out.append(_err(locate, (*where, "step", i), f"no optimizer named '{s}'"
                                f"{did_you_mean(s, known)}; optimizers: "
                                f"{', '.join(known) or 'none'}", "semantic-step"))
    for i, p in enumerate(phases):
        out += _check_phase(spec, i, p, locate)
    return out


def _check_losses(where: tuple, losses: dict, names: list[str], locate) -> list[SpecError]:
    out = []
    for name, e in losses.items():
        path = (*where, "losses", name)
        if e["output"] not in names:
            out.append(_err(locate, (*path, "output"), f"loss '{name}' reads '{e['output']}',"
                            f" which is no node or input{did_you_mean(e['output'], names)}",
                            "semantic-loss"))
        target = e.get("target")
        if isinstance(target, str) and target not in names:
            out.append(_err(locate, (*path, "target"), f"loss '{name}' compares with "
                            f"'{target}', which is no node or input"
                            f"{did_you_mean(target, names)} (a number is a constant target;"
                            " leave target out for the data's)", "semantic-loss"))
    return out


def _check_optimizers(where: tuple, optimizers: dict, losses: list[str],
                      locate) -> list[SpecError]:
    out = []
    for name, e in optimizers.items():
        path = (*where, "optimizers", name)
        kinds = [k for k in e if k in OPTIMIZERS]
        if len(kinds) > 1:
            out.append(_err(locate, path, f"optimizer '{name}' names {' and '.join(kinds)}; "
                            "give one", "semantic-optimizer", key=True))
        for i, loss in enumerate(e.get("minimize") or ()):
            if loss not in losses:
                out.append(_err(locate, (*path, "minimize", i) if len(e["minimize"]) > 1
                                else (*path, "minimize"),
                                f"optimizer '{name}' minimizes '{loss}', which is no loss"
                                f"{did_you_mean(loss, losses)}; losses: "
                                f"{', '.join(losses) or 'none'}", "semantic-optimizer"))
    return out


def _check_phase(spec: dict, i: int, p: dict, locate) -> list[SpecError]:
    where = ("train", "phases", i)
    rbm = p.get("rbm")
    if rbm is None:
        return []
    out = []
    if p.get("losses") or p.get("optimizers") or p.get("step"):
        out.append(_err(locate, (*where, "rbm"), "an rbm phase trains by contrastive "
                        "divergence alone; give its optimizer (optimizer: {sgd: ...}), not "
                        "losses, optimizers or step", "semantic-rbm", key=True))
    nodes = spec["model"]["nodes"]
    layer = rbm["layer"]
    node = nodes.get(layer)
    if node is None:
        out.append(_err(locate, (*where, "rbm", "layer"), f"no node named '{layer}'"
                        f"{did_you_mean(layer, list(nodes))}", "semantic-rbm"))
    elif "dense" not in node:
        kind = next((k for k in node if k not in ("from", "share", "call", "weights")),
                    "a call")
        out.append(_err(locate, (*where, "rbm", "layer"), f"'{layer}' is {kind}; an RBM "
                        "pretrains a dense node (its kernel and bias)", "semantic-rbm"))
    elif node["dense"]["activation"] != "sigmoid":
        out.append(_err(locate, (*where, "rbm", "layer"), f"'{layer}' has activation "
                        f"{node['dense']['activation']}; an RBM's hidden units are binary, "
                        "their mean a sigmoid: set activation: sigmoid on it",
                        "semantic-rbm"))
    elif not node["dense"].get("bias", True):
        out.append(_err(locate, (*where, "rbm", "layer"), f"'{layer}' has no bias; an RBM "
                        "needs its hidden bias", "semantic-rbm"))
    return out
