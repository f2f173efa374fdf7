"""Sequence data for training: a time-ordered CSV (or .npz windows) -> split, scaled windows.

The split is chronological (``chronological_split``); scaling is fitted on the
training period: the rows up to the last training window's target (for an
.npz: the training windows and their targets).
"""

from __future__ import annotations

import numpy as np

from dlspec.data.sequence import (
    SequencePreprocessor,
    array_columns,
    read_npz_windows,
    sliding_windows,
    target_rows,
    window_count,
)
from dlspec.data.split import chronological_split
from dlspec.data.table import Table, read_csv
from dlspec.engine.losses import LOSSES
from dlspec.errors import DataError, Diagnostics, Location, SpecError
from dlspec.fsio import file_sha256
from dlspec.inputs.base import (
    HOLDOUT_ROWS,
    SPLITS,
    Dataset,
    InputKind,
    Target,
    check_classes,
    encode_target,
)
from dlspec.inputs.image import read_holdout
from dlspec.spec import sequence as checks
from dlspec.spec.model import Spec, thaw
from dlspec.tasks import TASKS

ARRAY_TARGET = "y"
HOLDOUT = "holdout_windows.npz"


def _series_table(spec: Spec, resolved: dict) -> tuple[Table, list[str]]:
    """The CSV's feature and target columns, checked (located errors in the spec)."""
    path = spec.data.source
    header = read_csv(path, max_rows=0).columns
    source = spec.data.source_text
    errors = checks.check_series_columns(resolved, header, source, spec.locate)
    if errors:
        raise Diagnostics(errors)
    features = checks.feature_columns(resolved, header)
    table = read_csv(path, columns=[*features, spec.data.target])
    errors = checks.check_series(resolved, table, source, spec.locate)
    if errors:
        raise Diagnostics(errors)
    return table, features


def load_sequence_dataset(spec: Spec) -> Dataset:
    """Windows, targets and fitted scaling of every split of a sequence spec: ``raw`` holds
    the raw float32 windows (n, window, F) that ``rows`` index, and ``targets`` each
    window's raw regression target (n, 1) in the target's units."""
    d = spec.data
    path = d.source
    if not path.is_file():
        raise Diagnostics([SpecError(
            f"data file not found: {path} (give another with --set data.source=PATH)",
            spec.locate(("data", "source"), False), path="data.source", code="data-file")])
    resolved = thaw(spec.resolved)
    task = LOSSES[spec.train.target_loss].task
    seq = resolved["data"]["sequence"]
    window, horizon = seq["window"], seq["horizon"]
    if d.format == "npz":
        windows, y_all = read_npz_windows(path)
        errors = checks.check_npz_windows(resolved, windows, y_all, str(d.source_text),
                                          spec.locate)
        if errors:
            raise Diagnostics(errors)
        columns, name = array_columns(windows.shape[2]), ARRAY_TARGET
        target, y = _array_target(spec, y_all, task)
        n = len(windows)
    else:
        table, columns = _series_table(spec, resolved)
        name = d.target
        values = np.stack([table.numeric(c) for c in columns], axis=1)
        n = window_count(len(table), window, horizon)
        windows = sliding_windows(values, window)[:n]
        rows_y = target_rows(n, window, horizon)
        target, y_rows = encode_target(table, d.target, spec.train.target_loss, ("data", "target"),
                                       spec.locate)
        y = y_rows[rows_y]
    s = d.split
    rows = dict(zip(SPLITS, chronological_split(n, test=s.test, validation=s.validation),
                    strict=True))
    last = int(rows["train"][-1])
    regression = not TASKS[task].classifier
    if d.format == "npz":
        fit_rows = windows[rows["train"]].reshape(-1, windows.shape[2])
        fit_target = y[rows["train"]] if regression else None
    else:
        fit_rows = values[:rows_y[last] + 1]
        fit_target = table.numeric(name)[:rows_y[last] + 1] if regression else None
    pre = SequencePreprocessor.fit(fit_rows, columns, [thaw(st) for st in d.preprocess],
                                   window=window, horizon=horizon, target=name,
                                   target_values=fit_target, named=d.format != "npz")
    name_in = spec.model.inputs[0].name
    x = {k: {name_in: pre.transform(windows[r])} for k, r in rows.items()}
    if regression:
        raw = y.astype(np.float32).reshape(-1, 1)
        ys = {k: pre.scale_target(raw[r]) for k, r in rows.items()}
    else:
        raw = None
        ys = {k: y[r] for k, r in rows.items()}
    return Dataset("sequence", {name_in: pre}, target, rows, x, ys, file_sha256(path),
                   raw=windows, targets=raw)


def _array_target(spec: Spec, y: np.ndarray, task: str) -> tuple[Target, np.ndarray]:
    if not TASKS[task].classifier:
        if y.dtype.kind not in "iuf" or not np.isfinite(y.astype(np.float64)).all():
            raise DataError("'y' must hold finite numbers for a regression model",
                            Location(str(spec.data.source)), code="data-npz")
        return Target(ARRAY_TARGET, task), y.astype(np.float32)
    classes = sorted(set(y.tolist()))
    check_classes(spec.train.target_loss, classes, ARRAY_TARGET, ("data", "source"), spec.locate)
    lookup = {c: i for i, c in enumerate(classes)}
    return Target(ARRAY_TARGET, task, classes), np.array([lookup[v] for v in y.tolist()],
                                                         dtype=np.int64)


def write_holdout(ds: Dataset, rows: np.ndarray) -> bytes:
    """Up to 512 held-out raw windows, as an .npz."""
    import io

    buf = io.BytesIO()
    np.savez(buf, windows=ds.raw[rows[:HOLDOUT_ROWS]])
    return buf.getvalue()


def describe(inputs: dict) -> str:
    (name, pre), = inputs.items()
    return f"sequences: {pre.sequence_input.describe()}"


KIND = InputKind("sequence", SequencePreprocessor, load_sequence_dataset, HOLDOUT,
                 write_holdout, lambda path: read_holdout(path, "windows"), describe)
