"""Canonical form of a schema-valid spec: shorthands expanded, every default filled, and
the model written as a named graph.

The result is what ``spec.lock.yaml`` records and what the typed ``Spec`` is built from.
The sequential ``model.layers`` list becomes a chain of ``model.nodes`` named as the
layers are (``dense_1``, ...), so parameter names (``dense_1.kernel``) do not change.
``normalize`` also returns where each canonical place was written (``written``: canonical
path prefix -> path in the file), so diagnostics found later point at the user's line.
"""

from __future__ import annotations

import copy
from pathlib import Path

from dlspec.data.sources import IMAGE_FORMATS, infer_format
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.graph.layers import LAYERS
from dlspec.opsets import DEFAULT_OPSET, TEXT_OPSET
from dlspec.spec.dialect import normalize_source
from dlspec.spec.program import normalize_program

# The input a spec's data feeds when the model does not name its inputs: the names the
# exported model has always given them.
DEFAULT_INPUTS = {"table": "features", "image": "image", "sequence": "window"}
TEXT_DEFAULTS = {"lowercase": True, "tokenizer": "words", "max_length": 50}
NODE_KEYS = ("from", "share", "call", "weights")


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


def layer_params(type_: str, params) -> dict:
    """A layer's parameters with the shorthand expanded and every default filled."""
    layer = LAYERS[type_]
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        params = {layer.shorthand: params}
    full = {**_defaults(layer.params), **params}
    full.pop("name", None)
    return full


def node_layer(node: dict) -> str | None:
    """The layer type a node is written with (its one key that is not a node key)."""
    return next((k for k in node if k not in NODE_KEYS), None)


def data_kind(data: dict | None) -> str | None:
    """What the spec's data feeds: a table, images or sequences (None: no data)."""
    if data is None:
        return None
    if data.get("sequence") is not None:
        return "sequence"
    if data.get("text"):
        return "text"
    return "image" if data["format"] in IMAGE_FORMATS else "table"


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


class _Model:
    """Builds the canonical model section and the map of where each part was written."""

    def __init__(self, written: dict) -> None:
        self.written = written

    def nodes(self, nodes: dict, first_from: list[str], where: tuple) -> dict:
        out, prev = {}, first_from
        for name, node in nodes.items():
            node = dict(node or {})
            canon: dict = {}
            layer = node_layer(node)
            if layer is not None:
                canon[layer] = layer_params(layer, node[layer])
            for key in ("share", "call"):
                if key in node:
                    canon[key] = node[key]
            src = node.get("from", prev)
            if isinstance(src, str):
                if "from" in node:
                    self.written[(*where, name, "from", 0)] = (*where, name, "from")
                src = [src]
            canon["from"] = list(src)
            if "weights" in node:
                canon["weights"] = node["weights"]
            out[name] = canon
            prev = [name]
        return out

    def chain(self, layers: list, input_name: str) -> dict:
        nodes, prev = {}, [input_name]
        for i, (item, name) in enumerate(zip(layers, layer_names(layers), strict=True)):
            (type_, params), = item.items()
            nodes[name] = {type_: layer_params(type_, params), "from": prev}
            self.written[("model", "nodes", name)] = ("model", "layers", i)
            prev = [name]
        return nodes


def _inputs(model: dict, kind: str | None, data: dict | None = None) -> dict:
    written = model.get("inputs")
    if not written:
        # a text column is the model's one input, named as the column
        default = next(iter(data["text"])) if kind == "text" else DEFAULT_INPUTS.get(kind)
        written = {default: {"kind": kind}} if kind else {}
    out = {}
    for name, entry in written.items():
        entry = dict(entry or {})
        if entry.get("noise") is not None:
            out[name] = {"kind": "noise", **_noise(entry["noise"])}
            continue
        k = entry.get("kind", kind or "tensor")
        canon = {"kind": k}
        if k == "table":
            canon["columns"] = entry.get("columns")
        if "shape" in entry or k != "table":
            canon["shape"] = entry.get("shape")
        out[name] = canon
    return out


def _noise(noise: dict) -> dict:
    """A noise input's shape and distribution, every default filled."""
    if "normal" in noise:
        return {"shape": list(noise["normal"]),
                "noise": {"normal": list(noise["normal"]), "mean": noise.get("mean", 0.0),
                          "std": noise.get("std", 1.0)}}
    return {"shape": list(noise["uniform"]),
            "noise": {"uniform": list(noise["uniform"]), "low": noise.get("low", -1.0),
                      "high": noise.get("high", 1.0)}}


def normalize_model(model: dict, kind: str | None, written: dict,
                    data: dict | None = None) -> dict:
    m = _Model(written)
    inputs = _inputs(model, kind, data)
    first = list(inputs)[:1] if len(inputs) == 1 else []
    if model.get("inputs") and len(inputs) > 1:  # a data input and noise: nodes read the data
        data = [n for n, e in inputs.items() if e["kind"] != "noise"]
        first = data[:1] if len(data) == 1 and "layers" in model else first
    if "layers" in model:
        nodes = m.chain(model["layers"], next(iter(inputs), DEFAULT_INPUTS["table"]))
    else:
        nodes = m.nodes(model.get("nodes") or {}, first, ("model", "nodes"))
    blocks = {}
    for name, block in (model.get("blocks") or {}).items():
        where = ("model", "blocks", name, "nodes")
        b_first = list(block["inputs"])[:1] if len(block["inputs"]) == 1 else []
        b_nodes = m.nodes(block["nodes"], b_first, where)
        blocks[name] = {"inputs": list(block["inputs"]), "nodes": b_nodes,
                        "outputs": list(block.get("outputs") or list(b_nodes)[-1:])}
    out = {"inputs": inputs, "nodes": nodes,
           "outputs": list(model.get("outputs") or list(nodes)[-1:])}
    if blocks:
        out["blocks"] = blocks
    if model.get("init_from"):
        init = model["init_from"]
        out["init_from"] = {"run": init["run"], "rename": dict(init.get("rename") or {}),
                            "skip": list(init.get("skip") or [])}
    return out


def normalize(raw: dict, base: Path | None = None) -> tuple[dict, dict]:
    """The canonical spec (a new dict) and where its parts were written; ``raw`` must
    already satisfy the schema.

    ``base`` (the spec's folder) lets data formats be inferred from file names.
    """
    d = copy.deepcopy(raw)
    written: dict[tuple, tuple] = {}
    d.setdefault("seed", 0)
    data = d.get("data")
    base = base or Path(".")
    if data is not None:
        for src in (data, data.get("test")):
            if src is not None:
                normalize_source(src)  # an object format: csv, with its dialect under csv
                src["format"] = infer_format(src["source"], base,
                                             "csv" if "csv" in src else src.get("format", "auto"))
        data.setdefault("augment", [])
        data.setdefault("drop", [])
        data.setdefault("features", None)
        data["preprocess"] = [_step(s) for s in data.get("preprocess", [])]
        if data.get("text"):
            data["text"] = {col: {**TEXT_DEFAULTS, **(entry or {}),
                                  "vocab": {"max_size": None, "min_count": 1,
                                            **((entry or {}).get("vocab") or {})}}
                            for col, entry in data["text"].items()}
        sequence = data.get("sequence")
        if sequence is not None:
            data["sequence"] = {"horizon": 1, **sequence}
        # A time series is split in time order, never stratified (check_sequence refuses true).
        data["split"] = {"test": 0.2, "validation": 0.0, "stratify": sequence is None,
                         **data.get("split", {})}
    else:
        d["data"] = None
    d["model"] = normalize_model(d["model"], data_kind(data), written, data)
    t = d.get("train")
    if t is not None:
        t["optimizer"] = _optimizer(t.get("optimizer", "adam"))
        for key, default in (("batch_size", 32), ("epochs", 10), ("metrics", []),
                             ("early_stopping", None), ("shuffle", True), ("seed", None),
                             ("params", [])):
            t.setdefault(key, default)
        if t["seed"] is None:
            t["seed"] = d["seed"]
        t["checkpoint"] = {"every": 1, "every_steps": 0, "keep": 2, **(t.get("checkpoint") or {})}
        if t["early_stopping"] is not None:
            t["early_stopping"] = {"monitor": "val_loss", "patience": 5, "min_delta": 0.0,
                                   "restore_best": True, **t["early_stopping"]}
        normalize_program(t, d["model"])
    else:
        d["train"] = None
    # Text features are exported with StringSplit, from opset 20 (dlspec.onnx.text).
    opset = TEXT_OPSET if data is not None and data.get("text") else DEFAULT_OPSET
    d["export"] = {"opset": opset, **(d.get("export") or {})}
    return d, written
