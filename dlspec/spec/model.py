"""The typed, immutable Spec every later stage reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from dlspec.data.csvparse import CSV, Dialect
from dlspec.errors import Diagnostics, Location
from dlspec.graph.program import BlockDef, InputDef, ModelDef, NodeDef
from dlspec.spec.dialect import dialect_of
from dlspec.spec.normalize import node_layer


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class LayerSpec:
    """A layer of the sequential form: type, name, and its parameters (defaults filled)."""

    type: str
    name: str
    params: Mapping


@dataclass(frozen=True)
class SplitSpec:
    test: float
    validation: float
    stratify: bool


@dataclass(frozen=True)
class DataSpec:
    source: Path             # resolved against the spec file's folder (a built-in: its name)
    source_text: str         # as written in the spec
    format: str              # csv, idx, npz, image_folder or builtin
    target: str | None       # CSV only
    labels: Path | None      # IDX only
    test: Mapping | None     # a separate test set: source, format, labels (paths resolved)
    subset: Mapping | None
    augment: tuple[Mapping, ...]
    drop: tuple[str, ...]
    features: tuple[str, ...] | None
    preprocess: tuple[Mapping, ...]
    split: SplitSpec
    sequence: Mapping | None = None  # window, horizon: time-ordered data cut into windows
    classes: tuple | None = None     # only the examples of these classes, in this order
    dialect: Dialect = CSV           # how a delimited text source is written (data.format)
    text: Mapping | None = None      # column -> its text settings (data.text)


@dataclass(frozen=True)
class InputSpec:
    """A named input of the model. ``kind``: table, image, sequence or tensor; a table
    input reads ``columns`` (None: every feature column no other input names); ``shape``
    is one example's, as declared (None: taken from the data)."""

    name: str
    kind: str
    columns: tuple[str, ...] | None = None
    shape: tuple[int, ...] | None = None
    noise: Mapping | None = None     # a noise input's distribution (normal or uniform)


@dataclass(frozen=True)
class InitFrom:
    run: Path
    run_text: str
    rename: Mapping
    skip: tuple[str, ...]


@dataclass(frozen=True)
class ModelSpec:
    inputs: tuple[InputSpec, ...]
    nodes: tuple[NodeDef, ...]
    outputs: tuple[str, ...]
    blocks: Mapping[str, BlockDef]
    init_from: InitFrom | None

    def program(self, shapes: Mapping[str, tuple]) -> ModelDef:
        """The graph to lower, with each input's example shape from ``shapes``."""
        return ModelDef(tuple(InputDef(i.name, tuple(shapes[i.name] if i.kind != "noise"
                                                     else i.shape),
                                       ("model", "inputs", i.name)) for i in self.inputs),
                        self.nodes, self.outputs, self.blocks)

    @property
    def weighted_nodes(self) -> tuple[NodeDef, ...]:
        return tuple(n for n in self.nodes if n.weights)


@dataclass(frozen=True)
class ParamRule:
    match: str
    frozen: bool | None
    lr_mult: float | None
    index: int               # its place in train.params


@dataclass(frozen=True)
class EarlyStopping:
    monitor: str
    patience: int
    min_delta: float
    restore_best: bool


@dataclass(frozen=True)
class TrainSpec:
    loss: str | None         # the supervised loss (None: a program of named losses)
    optimizer: str
    optimizer_params: Mapping
    batch_size: int
    epochs: int
    metrics: tuple[str, ...]
    early_stopping: EarlyStopping | None
    shuffle: bool
    seed: int
    params: tuple[ParamRule, ...] = ()
    program: Mapping | None = None   # losses, optimizers, step, phases (canonical)
    engine: str = "numpy"   # what trains it: dlspec's NumPy engine, or torch
    checkpoint: Mapping = field(default_factory=lambda: {"every": 1, "every_steps": 0,
                                                         "keep": 2})

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole run: every phase's, or train.epochs."""
        phases = (self.program or {}).get("phases")
        return sum(p["epochs"] for p in phases) if phases else self.epochs

    @property
    def target_loss(self) -> str:
        """The loss whose task encodes the data's target: the supervised one, else the
        first named loss of the data's target, else class labels (categorical)."""
        if self.loss is not None:
            return self.loss
        for losses in _all_losses(self.program or {}):
            for e in losses.values():
                if e.get("target") is None:
                    return e["loss"]
        return "categorical_crossentropy"


def _all_losses(program: Mapping):
    if program.get("losses"):
        yield program["losses"]
    for phase in program.get("phases") or ():
        if phase.get("losses"):
            yield phase["losses"]


@dataclass(frozen=True)
class Spec:
    """A validated spec. ``resolved`` is the canonical dict (what spec.lock.yaml holds)."""

    name: str
    seed: int
    data: DataSpec | None
    model: ModelSpec
    train: TrainSpec | None
    opset: int
    file: str
    resolved: Mapping
    lock: Mapping | None
    locate: Callable[[tuple, bool], Location]
    export_outputs: tuple[str, ...] | None = None  # export.outputs: trim the ONNX model
    export_inputs: tuple[str, ...] | None = None   # export.inputs: the inputs it takes

    @property
    def sha256(self) -> str:
        """Hash of the resolved spec: --set overrides count, comments do not, and neither
        does where the data lives (any path: the data is identified by its own SHA-256)."""
        return spec_sha256(self.resolved)

    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        """The nodes as a list of layers (what a chain of them is written as)."""
        return tuple(LayerSpec(n.layer, n.name, n.params) for n in self.model.nodes)


def spec_sha256(resolved: Mapping) -> str:
    """The hash of what a spec trains: its resolved form without the lock, the paths, and
    train.checkpoint (how often a run is saved changes nothing it computes, so a run may
    be resumed with other checkpoint settings, and every spec kept its hash when
    checkpoints came)."""
    from dlspec.spec.paths import without_paths

    resolved = without_paths({k: v for k, v in thaw(resolved).items() if k != "lock"})
    if isinstance(resolved.get("train"), dict):
        resolved["train"] = {k: v for k, v in resolved["train"].items() if k != "checkpoint"}
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=dict)
    return hashlib.sha256(text.encode()).hexdigest()


def _nodes(nodes: dict, where: tuple, base: Path, locate, errors: list) -> tuple[NodeDef, ...]:
    from dlspec.spec.weights import node_weights

    out = []
    for name, node in nodes.items():
        path = (*where, name)
        weights, problems = node_weights(node, path, base, locate)
        errors += problems
        layer = node_layer(node)
        written = getattr(locate, "written", None)
        out.append(NodeDef(name, layer, _frozen(node[layer]) if layer else _frozen({}),
                           tuple(node["from"]), node.get("share"), node.get("call"),
                           _frozen(weights), written(path) if written else path))
    return tuple(out)


def _model(m: dict, base: Path, locate) -> ModelSpec:
    errors: list = []
    nodes = _nodes(m["nodes"], ("model", "nodes"), base, locate, errors)
    blocks = {name: BlockDef(name, tuple(b["inputs"]),
                             _nodes(b["nodes"], ("model", "blocks", name, "nodes"), base, locate,
                                    errors), tuple(b["outputs"]), ("model", "blocks", name))
              for name, b in m.get("blocks", {}).items()}
    if errors:
        raise Diagnostics(errors)
    inputs = tuple(InputSpec(name, e["kind"], tuple(e["columns"]) if e.get("columns") else None,
                             tuple(e["shape"]) if e.get("shape") is not None else None,
                             _frozen(e["noise"]) if e.get("noise") else None)
                   for name, e in m["inputs"].items())
    init = m.get("init_from")
    return ModelSpec(inputs, nodes, tuple(m["outputs"]), _frozen(blocks),
                     InitFrom((base / init["run"]).resolve(), init["run"],
                              _frozen(init["rename"]), tuple(init["skip"])) if init else None)


def _data(d: dict | None, base: Path) -> DataSpec | None:
    if d is None:
        return None
    return DataSpec(
        source=_source(base, d), source_text=d["source"], format=d["format"],
        target=d.get("target"),
        labels=(base / d["labels"]).resolve() if d.get("labels") else None,
        test=_frozen({"source": _source(base, d["test"]), "format": d["test"]["format"],
                      "dialect": dialect_of(d["test"]),
                      "labels": (base / d["test"]["labels"]).resolve()
                      if d["test"].get("labels") else None}) if d.get("test") else None,
        subset=_frozen(d["subset"]) if d.get("subset") else None,
        augment=tuple(_frozen(a) for a in d["augment"]),
        drop=tuple(d["drop"]),
        features=tuple(d["features"]) if d["features"] is not None else None,
        preprocess=tuple(_frozen(s) for s in d["preprocess"]),
        split=SplitSpec(**d["split"]),
        sequence=_frozen(d["sequence"]) if d.get("sequence") else None,
        classes=tuple(d["classes"]) if d.get("classes") else None,
        dialect=dialect_of(d),
        text=_frozen(d["text"]) if d.get("text") else None)


def _train(t: dict | None) -> TrainSpec | None:
    if t is None:
        return None
    es = t["early_stopping"]
    (opt_name, opt_params), = t["optimizer"].items()
    program = {k: t[k] for k in ("losses", "optimizers", "step", "phases") if t.get(k)}
    return TrainSpec(
        loss=t.get("loss"), optimizer=opt_name, optimizer_params=_frozen(opt_params),
        batch_size=t["batch_size"], epochs=t["epochs"], metrics=tuple(t["metrics"]),
        early_stopping=EarlyStopping(**es) if es else None, shuffle=t["shuffle"],
        seed=t["seed"],
        params=tuple(ParamRule(r["match"], r.get("frozen"), r.get("lr_mult"), i)
                     for i, r in enumerate(t["params"])),
        program=_deep_freeze(program) if program else None,
        engine=t.get("engine", "numpy"), checkpoint=_frozen(t["checkpoint"]))


def build(resolved: dict, file: str, base: Path, locate) -> Spec:
    """The typed Spec of a canonical spec (given weights read and checked on the way).

    Raises:
        Diagnostics: weights that cannot be read.
    """
    return Spec(
        name=resolved["name"],
        seed=resolved["seed"],
        data=_data(resolved["data"], base),
        model=_model(resolved["model"], base, locate),
        train=_train(resolved["train"]),
        opset=resolved["export"]["opset"],
        file=file,
        resolved=_deep_freeze(resolved),
        lock=_frozen(resolved["lock"]) if resolved.get("lock") else None,
        locate=locate,
        export_outputs=_names(resolved["export"].get("outputs")),
        export_inputs=_names(resolved["export"].get("inputs")),
    )


def _names(names: list | None) -> tuple[str, ...] | None:
    return tuple(names) if names is not None else None


def _source(base: Path, d: dict) -> Path:
    return Path(d["source"]) if d["format"] == "builtin" else (base / d["source"]).resolve()


def _deep_freeze(x):
    if isinstance(x, dict):
        return MappingProxyType({k: _deep_freeze(v) for k, v in x.items()})
    if isinstance(x, list):
        return tuple(_deep_freeze(v) for v in x)
    return x


def thaw(x):
    """Plain dicts and lists again (for YAML and JSON writers)."""
    if isinstance(x, Mapping):
        return {k: thaw(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [thaw(v) for v in x]
    return x
