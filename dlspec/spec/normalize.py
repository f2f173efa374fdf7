"""Canonical form of a schema-valid spec: shorthands expanded, every default filled.

The result is what ``spec.lock.yaml`` records and what the typed ``Spec`` is
built from. It keeps the user's paths wherever it can (layer indices, keys),
so diagnostics found later still point at the right line.
"""

from __future__ import annotations

import copy
from pathlib import Path

from dlspec.data.sources import infer_format
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.graph.layers import LAYERS
from dlspec.onnx.versions import DEFAULT_OPSET


def _defaults(props: dict) -> dict:
    return {k: copy.deepcopy(s["default"]) for k, s in props.items() if "default" in s}


def layer_names(layers: list) -> list[str]:
    """Each layer's name: its own, else its type and per-type index (dense_1, dense_2, ...)."""
    counts: dict[str, int] = {}
    names = []
    for item in layers:
        (type_, params), = item.items()
        counts[type_] = counts.get(type_, 0) + 1
        own = params.get("name") if isinstance(params, dict) else None
        names.append(own or f"{type_}_{counts[type_]}")
    return names


def _layer(item: dict, name: str) -> dict:
    (type_, params), = item.items()
    layer = LAYERS[type_]
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        params = {layer.shorthand: params}
    full = {"name": name, **_defaults(layer.params), **params}
    full["name"] = name
    return {type_: full}


def _step(item: dict) -> dict:
    (kind, arg), = item.items()
    if kind in ("scale", "normalize"):
        return {kind: arg}
    if kind in ("standardize", "minmax"):
        cols = arg["columns"] if isinstance(arg, dict) else arg
        return {kind: {"columns": cols}}
    full = {"columns": arg} if isinstance(arg, list) else dict(arg)
    if kind == "onehot":
        full.setdefault("drop_first", False)
    return {kind: full}


def _optimizer(opt) -> dict:
    if isinstance(opt, str):
        name, params = opt, {}
    else:
        (name, params), = opt.items()
    return {name: {**_defaults(OPTIMIZERS[name].params), **(params or {})}}


def normalize(raw: dict, base: Path | None = None) -> dict:
    """The canonical spec (a new dict); ``raw`` must already satisfy the schema.

    ``base`` (the spec's folder) lets data formats be inferred from file names.
    """
    d = copy.deepcopy(raw)
    d.setdefault("seed", 0)
    data = d["data"]
    base = base or Path(".")
    data["format"] = infer_format(data["source"], base, data.get("format", "auto"))
    if "test" in data:
        t = data["test"]
        t["format"] = infer_format(t["source"], base, t.get("format", "auto"))
    data.setdefault("augment", [])
    data.setdefault("drop", [])
    data.setdefault("features", None)
    data["preprocess"] = [_step(s) for s in data.get("preprocess", [])]
    sequence = data.get("sequence")
    if sequence is not None:
        data["sequence"] = {"horizon": 1, **sequence}
    # A time series is split in time order, never stratified (check_sequence refuses true).
    data["split"] = {"test": 0.2, "validation": 0.0, "stratify": sequence is None,
                     **data.get("split", {})}
    layers = d["model"]["layers"]
    d["model"]["layers"] = [_layer(item, n)
                            for item, n in zip(layers, layer_names(layers), strict=True)]
    t = d["train"]
    t["optimizer"] = _optimizer(t.get("optimizer", "adam"))
    for key, default in (("batch_size", 32), ("epochs", 10), ("metrics", []),
                         ("early_stopping", None), ("shuffle", True), ("seed", None)):
        t.setdefault(key, default)
    if t["seed"] is None:
        t["seed"] = d["seed"]
    if t["early_stopping"] is not None:
        t["early_stopping"] = {"monitor": "val_loss", "patience": 5, "min_delta": 0.0,
                               "restore_best": True, **t["early_stopping"]}
    d["export"] = {"opset": DEFAULT_OPSET, **(d.get("export") or {})}
    return d

