"""`dlspec evaluate`: the model's metrics on labelled data, through its input contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlspec.engine import metrics as M
from dlspec.errors import DataError, Location
from dlspec.runs import model_file
from dlspec.runtime.contract import Contract
from dlspec.runtime.session import load_model

BATCH = 65_536
IMAGE_BATCH = 256


def _class_index(cells: np.ndarray, classes: list, table) -> np.ndarray:
    """Each raw target value's class index; an unknown value is a located error."""
    if all(isinstance(c, str) for c in classes):
        lookup = {c: i for i, c in enumerate(classes)}
        keys = [str(v) for v in cells.tolist()]
    else:  # numeric classes: "1" and "1.0" are one class
        lookup = {float(c): i for i, c in enumerate(classes)}
        keys = []
        for v in cells.tolist():
            try:
                keys.append(float(v))
            except (TypeError, ValueError):
                keys.append(v)
    index = np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)
    bad = np.flatnonzero(index < 0)
    if len(bad):
        where = Location(table.source, int(table.lines[bad[0]]))
        raise DataError(f"{len(bad)} label(s) are not among the model's classes "
                        f"{classes} (first: {cells[bad[0]]!r})", where, code="data-label")
    return index


def _tables(loaded, data, contract: Contract):
    from dlspec.runtime.readers import read_tables

    numbers = [c.name for c in contract.inputs if c.kind == "numeric"]
    if contract.task == "regression":
        numbers.append(contract.target)
    tables = read_tables(data, [*contract.columns, contract.target], BATCH, numbers=numbers,
                         dialect=contract.dialect)
    names = contract.outputs
    try:
        for t in tables:
            if len(t) == 0:
                continue
            out = loaded.session.run(names[:1], contract.feeds(t))[0]
            if contract.task == "regression":
                yield t.numeric(contract.target).astype(np.float32).reshape(out.shape), out
            else:
                yield _class_index(t.cells[contract.target], contract.classes, t), out
    finally:
        tables.close()


def _images(loaded, data, contract: Contract, labels: str | None):
    from dlspec.data.images import load_idx_pair, load_image_folder, load_npz

    path = Path(data)
    images = (load_idx_pair(path, labels) if labels else
              load_image_folder(path) if path.is_dir() else load_npz(path))
    lookup = {c: i for i, c in enumerate(contract.classes)}
    missing = [c for c in images.classes if c not in lookup]
    if missing:
        raise DataError(f"labels {missing[:5]} are not among the model's classes",
                        Location(str(data)), code="data-label")
    y = np.array([lookup[c] for c in images.classes], dtype=np.int64)[images.y]
    feed = contract.inputs[0].name
    for start in range(0, len(y), IMAGE_BATCH):
        xb = images.x[start:start + IMAGE_BATCH]
        yield y[start:start + IMAGE_BATCH], loaded.session.run(contract.outputs[:1],
                                                               {feed: xb})[0]


def _array_classes(y: np.ndarray, classes: list, source: str) -> np.ndarray:
    lookup = {c: i for i, c in enumerate(classes)}
    index = np.array([lookup.get(v, -1) for v in y.tolist()], dtype=np.int64)
    if (index < 0).any():
        raise DataError(f"labels in 'y' are not among the model's classes {classes} (first: "
                        f"{y[np.argmax(index < 0)]!r})", Location(source), code="data-label")
    return index


def _sequences(loaded, data, contract: Contract):
    """Every window of ``data`` with a target ``horizon`` rows after it, and its prediction."""
    from dlspec.runtime.sequences import series_and_targets

    windows, targets, rows = series_and_targets(data, contract, BATCH)
    feed = contract.sequence.input
    for start in range(0, len(windows), IMAGE_BATCH):
        x = windows[start:start + IMAGE_BATCH]
        out = loaded.session.run(contract.outputs[:1], {feed: x})[0]
        if rows is None:  # an .npz: y holds the targets
            y = targets[start:start + IMAGE_BATCH]
            y = y.astype(np.float32).reshape(out.shape) if contract.task == "regression" else \
                _array_classes(y, contract.classes, str(data))
        else:
            r = rows[start:start + IMAGE_BATCH]
            y = targets.numeric(contract.target, r).astype(np.float32).reshape(out.shape) \
                if contract.task == "regression" else \
                _class_index(targets.cells[contract.target][r], contract.classes, targets)
        yield y, out


def evaluate_model(model: str | Path, data: str | Path, *, labels: str | None = None,
                   device: str = "cpu") -> dict:
    """Metrics of an exported model (an .onnx file or a run directory) on labelled data.

    ``data`` is a file with the input columns and the target column (CSV, JSONL,
    NPY, NPZ, Parquet) or, for image models, an NPZ (x, y), IDX images with
    ``labels``, or a folder with one sub-folder per class. A sequence model is
    evaluated on every window that has its target in the file (or on an NPZ of
    windows x and targets y), in the target's units.
    Returns {rows, task, metrics, confusion_matrix (classifiers), classes}.
    """
    loaded = load_model(model_file(model), device)
    c = loaded.contract
    parts = list(_images(loaded, data, c, labels) if c.kind == "image" else
                 _sequences(loaded, data, c) if c.sequence else _tables(loaded, data, c))
    if not parts:
        raise DataError("no rows to evaluate", Location(str(data)), code="data-empty")
    y = np.concatenate([p[0] for p in parts])
    out = np.concatenate([p[1] for p in parts])
    names = sorted(m for m, d in M.METRICS.items() if c.task in d.tasks)
    report = {"rows": int(len(y)), "task": c.task, "metrics": M.compute(names, c.task, y, out),
              "classes": list(c.classes)}
    if c.task != "regression":
        report["confusion_matrix"] = M.confusion_matrix(
            y, np.argmax(out, axis=1), len(c.classes)).tolist()
    return report
