"""The typed, immutable Spec every later stage reads."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from dlspec.errors import Location


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class LayerSpec:
    type: str
    name: str
    params: Mapping          # every parameter, defaults filled (name included)


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


@dataclass(frozen=True)
class EarlyStopping:
    monitor: str
    patience: int
    min_delta: float
    restore_best: bool


@dataclass(frozen=True)
class TrainSpec:
    loss: str
    optimizer: str
    optimizer_params: Mapping
    batch_size: int
    epochs: int
    metrics: tuple[str, ...]
    early_stopping: EarlyStopping | None
    shuffle: bool
    seed: int


@dataclass(frozen=True)
class Spec:
    """A validated spec. ``resolved`` is the canonical dict (what spec.lock.yaml holds)."""

    name: str
    seed: int
    data: DataSpec
    layers: tuple[LayerSpec, ...]
    train: TrainSpec
    opset: int
    file: str
    resolved: Mapping
    lock: Mapping | None
    locate: Callable[[tuple, bool], Location]

    @property
    def sha256(self) -> str:
        """Hash of the resolved spec: --set overrides count, comments do not, and neither
        does where the data lives (any path: the data is identified by its own SHA-256)."""
        return spec_sha256(self.resolved)


def spec_sha256(resolved: Mapping) -> str:
    from dlspec.spec.paths import without_paths

    resolved = without_paths({k: v for k, v in thaw(resolved).items() if k != "lock"})
    text = json.dumps(resolved, sort_keys=True, separators=(",", ":"), default=dict)
    return hashlib.sha256(text.encode()).hexdigest()


def build(resolved: dict, file: str, base: Path, locate) -> Spec:
    d, t = resolved["data"], resolved["train"]
    es = t["early_stopping"]
    (opt_name, opt_params), = t["optimizer"].items()
    layers = tuple(LayerSpec(type_, p["name"], _frozen(p))
                   for item in resolved["model"]["layers"] for type_, p in item.items())
    return Spec(
        name=resolved["name"],
        seed=resolved["seed"],
        data=DataSpec(
            source=_source(base, d), source_text=d["source"], format=d["format"],
            target=d.get("target"),
            labels=(base / d["labels"]).resolve() if d.get("labels") else None,
            test=_frozen({"source": _source(base, d["test"]), "format": d["test"]["format"],
                          "labels": (base / d["test"]["labels"]).resolve()
                          if d["test"].get("labels") else None}) if d.get("test") else None,
            subset=_frozen(d["subset"]) if d.get("subset") else None,
            augment=tuple(_frozen(a) for a in d["augment"]),
            drop=tuple(d["drop"]),
            features=tuple(d["features"]) if d["features"] is not None else None,
            preprocess=tuple(_frozen(s) for s in d["preprocess"]),
            split=SplitSpec(**d["split"]),
            sequence=_frozen(d["sequence"]) if d.get("sequence") else None),
        layers=layers,
        train=TrainSpec(
            loss=t["loss"], optimizer=opt_name, optimizer_params=_frozen(opt_params),
            batch_size=t["batch_size"], epochs=t["epochs"], metrics=tuple(t["metrics"]),
            early_stopping=EarlyStopping(**es) if es else None, shuffle=t["shuffle"],
            seed=t["seed"]),
        opset=resolved["export"]["opset"],
        file=file,
        resolved=_deep_freeze(resolved),
        lock=_frozen(resolved["lock"]) if resolved.get("lock") else None,
        locate=locate,
    )


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
