"""What a spec's data becomes for training: a Dataset of prepared splits, its target, and
the fitted transform of each of the model's inputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlspec.engine.losses import LOSSES
from dlspec.errors import DataError, Diagnostics, Location, SpecError
from dlspec.tasks import TASKS

SPLITS = ("train", "validation", "test")
HOLDOUT_ROWS = 512  # held-out raw rows a run keeps, for its export's parity check


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

    @property
    def n_classes(self) -> int | None:
        return len(self.classes) if TASKS[self.task].classifier else None


@dataclass
class Dataset:
    """The examples of every split, prepared, plus the raw data they came from.

    ``inputs`` holds each model input's fitted transform (raw data -> float32 examples)
    by input name; ``x[split]`` the prepared examples by input name; ``raw`` the raw rows
    ``rows`` index (a table, uint8 images, or raw windows), so the exported model can be
    checked on the same raw input.
    """

    kind: str                         # table | image | sequence: the input kind
    inputs: dict[str, object]         # input name -> fitted preprocessor
    target: Target
    rows: dict[str, np.ndarray]       # split -> row indices into raw
    x: dict[str, dict[str, np.ndarray]]   # split -> input name -> float32 examples
    y: dict[str, np.ndarray]          # split -> int64 (n,) classes, or float32 (n, 1)
    sha256: str
    raw: object = None
    targets: np.ndarray | None = None  # sequence regression: raw targets (n, 1), in units
    pretrain: dict | None = None      # input name -> every unlabelled training example

    @property
    def input_shapes(self) -> dict[str, tuple]:
        """One example's shape per input (the number of features of a table is (F,))."""
        return {name: _shape(pre.input_shape) for name, pre in self.inputs.items()}

    @property
    def preprocessor(self):
        """The transform of the first input (a model of one input has no other)."""
        return next(iter(self.inputs.values()))

    @property
    def table(self):
        return self.raw if self.kind == "table" else None


def _shape(shape) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def class_values(cells: np.ndarray) -> list:
    uniq = sorted(set(cells.tolist()))
    try:
        nums = [float(c) for c in uniq]
    except ValueError:
        return uniq
    if all(v.is_integer() for v in nums):
        return sorted({int(v) for v in nums})
    return sorted(set(nums))


def check_classes(loss: str, classes: list, name: str, where: tuple,
                  locate: Callable) -> None:
    """A binary loss needs exactly two classes in the data (the output's width is the
    graph's to check, when the network is compiled against the data)."""
    if LOSSES[loss].task == "binary" and len(classes) != 2:
        raise Diagnostics([SpecError(
            f"binary_crossentropy needs exactly 2 classes in '{name}', found {len(classes)}: "
            f"{', '.join(map(str, classes[:10]))}" + (" ..." if len(classes) > 10 else ""),
            locate(where, False), path=".".join(where), code="semantic-classes")])


def encode_classes(cells: np.ndarray, classes: list) -> np.ndarray:
    """Each cell's class index (cells in ``classes``)."""
    if all(isinstance(c, str) for c in classes):
        lookup = {c: k for k, c in enumerate(classes)}
        y = np.array([lookup[c] for c in cells.tolist()], dtype=np.int64)
    else:  # numeric classes match by value, so "1" and "1.0" are one class
        y = np.searchsorted(np.array(classes, dtype=np.float64), cells.astype(np.float64))
    return y.astype(np.int64)


def encode_target(table, name: str, loss: str, where: tuple, locate) -> tuple[Target, np.ndarray]:
    """The target column of a table: float32 (n, 1) for regression, else class indices."""
    task = LOSSES[loss].task
    if not TASKS[task].classifier:
        return Target(name, task), table.numeric(name).astype(np.float32).reshape(-1, 1)
    coded = table.codes(name)
    if coded is not None:  # CSV text: the distinct cells classified once
        codes, values = coded
        cells = np.array(values, dtype=object)
        empty = np.flatnonzero(codes == values.index("")) if "" in values else codes[:0]
    else:
        cells = table.cells[name]
        empty = np.flatnonzero(cells == "")
    if empty.size:
        raise DataError(f"column '{name}': missing target value",
                        Location(table.source, int(table.lines[empty[0]])), code="data-value")
    classes = class_values(cells)
    check_classes(loss, classes, name, where, locate)
    y = encode_classes(cells, classes)
    return Target(name, task, classes), (y if coded is None else y[coded[0]])


@dataclass(frozen=True)
class InputKind:
    """One kind of input data, with every place its kind changes behaviour.

    Attributes:
        preprocessor: its fitted transform's class (fit, transform, to_dict, from_dict).
        load: ``spec -> Dataset``.
        holdout: the run directory's file of held-out raw rows (export's parity check).
        write_holdout: ``(dataset, rows) -> bytes`` of that file.
        read_holdout: ``path -> raw rows``.
        describe: ``(inputs) -> str``: what the model takes, for ``inspect``.
        extra_files: ``(dataset) -> {name: bytes}``: more files for the run directory
            (a text input's vocabulary).
    """

    name: str
    preprocessor: type
    load: Callable
    holdout: str
    write_holdout: Callable
    read_holdout: Callable
    describe: Callable
    extra_files: Callable | None = None
