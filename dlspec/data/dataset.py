"""From a Spec to arrays: read the table, encode the target, split, fit preprocessing.

Everything the engine trains on and the exporter needs (the fitted
preprocessing, the target's classes, the held-out raw rows) comes from here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlspec.data.image_prep import ImagePreprocessor
from dlspec.data.preprocess import Preprocessor
from dlspec.data.sequence import SequencePreprocessor
from dlspec.data.split import split_indices
from dlspec.data.table import Table, read_csv
from dlspec.engine.losses import LOSSES
from dlspec.errors import DataError, Diagnostics, Location, SpecError
from dlspec.spec.model import Spec, thaw
from dlspec.spec.semantic import check_columns, feature_columns

SPLITS = ("train", "validation", "test")


@dataclass
class Target:
    """The column a model predicts: its task and, for classifiers, its classes in order."""

    name: str
    task: str                         # binary | multiclass | regression
    classes: list = field(default_factory=list)   # ints, floats or strings, as in the data

    def to_dict(self) -> dict:
        return {"name": self.name, "task": self.task, "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, d: dict) -> Target:
        return cls(d["name"], d["task"], list(d["classes"]))


@dataclass
class Dataset:
    """The rows of every split, prepared, plus the raw data they came from.

    ``table`` (CSV) or ``images`` (uint8 N, H, W, C) holds the raw rows that
    ``rows`` indexes, so the exported model can be checked on the same raw input
    (sequence data: ``SequenceDataset.windows``); ``raw`` is whichever it is.
    """

    table: Table | None
    preprocessor: Preprocessor | ImagePreprocessor | SequencePreprocessor
    target: Target
    rows: dict[str, np.ndarray]       # split -> row indices into table / images
    x: dict[str, np.ndarray]          # split -> float32 (n, features) or (n, H, W, C)
    y: dict[str, np.ndarray]          # split -> int64 (n,) classes, or float32 (n, 1)
    sha256: str
    images: np.ndarray | None = None

    @property
    def input_shape(self) -> int | tuple[int, ...]:
        """One example's shape: the number of features, (height, width, channels) of an
        image, or (window, features) of a sequence."""
        return self.preprocessor.input_shape

    @property
    def raw(self) -> Table | np.ndarray:
        """The raw rows ``rows`` index: the table, or the images."""
        return self.images if self.preprocessor.kind == "image" else self.table



def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _class_values(cells: np.ndarray) -> list:
    uniq = sorted(set(cells.tolist()))
    try:
        nums = [float(c) for c in uniq]
    except ValueError:
        return uniq
    if all(v.is_integer() for v in nums):
        return sorted({int(v) for v in nums})
    return sorted(set(nums))


def check_classes(spec: Spec, classes: list, name: str) -> None:
    """The classes found must fit the loss (the output's width against them is checked on
    the lowered model: ``dlspec.spec.heads``)."""
    task = LOSSES[spec.train.loss].task
    if task == "binary" and len(classes) != 2:
        where = ("data", "target") if spec.data.format == "csv" else ("data", "source")
        raise Diagnostics([SpecError(
            f"binary_crossentropy needs exactly 2 classes in '{name}', found {len(classes)}: "
            f"{', '.join(map(str, classes[:10]))}" + (" ..." if len(classes) > 10 else ""),
            spec.locate(where, False), path=".".join(where), code="semantic-classes")])


def encode_target(spec: Spec, table: Table) -> tuple[Target, np.ndarray]:
    name, task = spec.data.target, LOSSES[spec.train.loss].task
    if task == "regression":
        return Target(name, task), table.numeric(name).astype(np.float32).reshape(-1, 1)
    cells = table.cells[name]
    empty = np.flatnonzero(cells == "")
    if empty.size:
        raise DataError(f"column '{name}': missing target value",
                        Location(table.source, int(table.lines[empty[0]])), code="data-value")
    classes = _class_values(cells)
    check_classes(spec, classes, name)
    if all(isinstance(c, str) for c in classes):
        lookup = {c: k for k, c in enumerate(classes)}
        y = np.array([lookup[c] for c in cells.tolist()], dtype=np.int64)
    else:  # numeric classes match by value, so "1" and "1.0" are one class
        y = np.searchsorted(np.array(classes, dtype=np.float64), cells.astype(np.float64))
    return Target(name, task, classes), y.astype(np.int64)


def load_dataset(spec: Spec) -> Dataset:
    """Read, check, split and preprocess the spec's data.

    Raises:
        Diagnostics / DataError: a missing file, columns the spec names that the
            header lacks, bad cells, or classes that do not fit the output.
    """
    if spec.data.sequence is not None:
        from dlspec.data.sequence_dataset import load_sequence_dataset

        return load_sequence_dataset(spec)
    if spec.data.format != "csv":
        from dlspec.data.image_dataset import load_image_dataset

        return load_image_dataset(spec)
    path = spec.data.source
    if not path.is_file():
        raise Diagnostics([SpecError(
            f"data file not found: {path} (give another with --set data.source=PATH)",
            spec.locate(("data", "source"), False), path="data.source", code="data-file")])
    table = read_csv(path)
    resolved = thaw(spec.resolved)
    errors = check_columns(resolved, table.columns, spec.data.source_text, spec.locate)
    if errors:
        raise Diagnostics(errors)
    target, y = encode_target(spec, table)
    s = spec.data.split
    stratify = y if (s.stratify and target.task != "regression") else None
    train, val, test = split_indices(len(table), test=s.test, validation=s.validation,
                                     seed=spec.seed, stratify_labels=stratify)
    rows = dict(zip(SPLITS, (train, val, test), strict=True))
    features = feature_columns(resolved, table.columns)
    pre = Preprocessor.fit(table, train, features, [thaw(st) for st in spec.data.preprocess])
    x = {k: pre.transform(table, r) for k, r in rows.items()}
    return Dataset(table, pre, target, rows, x, {k: y[r] for k, r in rows.items()},
                   file_sha256(path))
