"""Sequence data for training: a time-ordered CSV (or .npz windows) -> split, scaled windows.

The split is chronological (``chronological_split``); scaling is fitted on the
training period: the rows up to the last training window's target (for an
.npz: the training windows and their targets).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlspec.data.dataset import SPLITS, Dataset, Target, encode_target, file_sha256
from dlspec.data.images import MAX_BYTES, _npz_arrays
from dlspec.data.sequence import SequencePreprocessor, sliding_windows, target_rows, window_count
from dlspec.data.split import chronological_split
from dlspec.data.table import Table, read_csv
from dlspec.engine.losses import LOSSES
from dlspec.errors import DataError, Diagnostics, Location, SpecError
from dlspec.spec import sequence as checks
from dlspec.spec.model import Spec, thaw

ARRAY_TARGET = "y"


@dataclass
class SequenceDataset(Dataset):
    """A Dataset of windows: ``rows`` index ``windows`` (raw float32 (n, window, F)), and
    ``targets`` holds each window's raw regression target (n, 1) in the target's units."""

    windows: np.ndarray | None = None
    targets: np.ndarray | None = None

    @property
    def raw(self) -> np.ndarray:
        return self.windows


def array_columns(width: int) -> list[str]:
    """The names of an .npz's unnamed features: x0, x1, ..."""
    return [f"x{j}" for j in range(width)]


def read_npz_windows(path: str | Path, *, limit: int = MAX_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """x as float32 (n, window, features) and y (n,) from an .npz; bad arrays raise DataError."""
    source = str(path)
    x, y = _npz_arrays(source, ("x", "y"), limit)

    def err(message: str) -> DataError:
        return DataError(message, Location(source), code="data-npz")

    if x.ndim != 3 or 0 in x.shape:
        raise err(f"'x' must hold windows (examples, time steps, features), got shape "
                  f"{x.shape}")
    if x.dtype.kind not in "iuf":
        raise err(f"'x' must hold numbers, got {x.dtype.name}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iufU":
        raise err(f"'y' must hold one target per window, got shape {y.shape} {y.dtype.name}")
    if len(y) != len(x):
        raise err(f"{len(y):,} targets in 'y' for {len(x):,} windows in 'x'")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise err("'x' holds NaN or infinite values")
    return x, y


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


def load_sequence_dataset(spec: Spec) -> SequenceDataset:
    """Windows, targets and fitted scaling of every split of a sequence spec."""
    d = spec.data
    path = d.source
    if not path.is_file():
        raise Diagnostics([SpecError(
            f"data file not found: {path} (give another with --set data.source=PATH)",
            spec.locate(("data", "source"), False), path="data.source", code="data-file")])
    resolved = thaw(spec.resolved)
    task = LOSSES[spec.train.loss].task
    seq = resolved["data"]["sequence"]
    window, horizon = seq["window"], seq["horizon"]
    if d.format == "npz":
        windows, y_all = read_npz_windows(path)
        errors = check_npz_windows(resolved, windows, y_all, str(d.source_text), spec.locate)
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
        target, y_rows = encode_target(spec, table)
        y = y_rows[rows_y]
    s = d.split
    rows = dict(zip(SPLITS, chronological_split(n, test=s.test, validation=s.validation),
                    strict=True))
    last = int(rows["train"][-1])
    regression = task == "regression"
    if d.format == "npz":
        fit_rows = windows[rows["train"]].reshape(-1, windows.shape[2])
        fit_target = y[rows["train"]] if regression else None
    else:
        fit_rows = values[:rows_y[last] + 1]
        fit_target = table.numeric(name)[:rows_y[last] + 1] if regression else None
    pre = SequencePreprocessor.fit(fit_rows, columns, [thaw(st) for st in d.preprocess],
                                   window=window, horizon=horizon, target=name,
                                   target_values=fit_target, named=d.format != "npz")
    x = {k: pre.transform(windows[r]) for k, r in rows.items()}
    if regression:
        raw = y.astype(np.float32).reshape(-1, 1)
        ys = {k: pre.scale_target(raw[r]) for k, r in rows.items()}
    else:
        raw = None
        ys = {k: y[r] for k, r in rows.items()}
    return SequenceDataset(None, pre, target, rows, x, ys, file_sha256(path),
                           windows=windows, targets=raw)


def _array_target(spec: Spec, y: np.ndarray, task: str) -> tuple[Target, np.ndarray]:
    if task == "regression":
        if y.dtype.kind not in "iuf" or not np.isfinite(y.astype(np.float64)).all():
            raise DataError("'y' must hold finite numbers for a regression model",
                            Location(str(spec.data.source)), code="data-npz")
        return Target(ARRAY_TARGET, task), y.astype(np.float32)
    from dlspec.data.dataset import check_classes

    classes = sorted(set(y.tolist()))
    check_classes(spec, classes, ARRAY_TARGET)
    lookup = {c: i for i, c in enumerate(classes)}
    return Target(ARRAY_TARGET, task, classes), np.array([lookup[v] for v in y.tolist()],
                                                         dtype=np.int64)


def check_npz_windows(spec: dict, windows: np.ndarray, y: np.ndarray, source: str,
                      locate) -> list[SpecError]:
    """The .npz's windows have the spec's length, its targets fit the loss, and every
    split gets a window."""
    window = spec["data"]["sequence"]["window"]
    if windows.shape[1] != window:
        return [SpecError(f"{source} holds windows of {windows.shape[1]} time steps, but "
                          f"window is {window}", locate(("data", "sequence", "window"), False),
                          path="data.sequence.window", code="semantic-sequence")]
    if checks.regression(spec) and (y.dtype.kind not in "iuf"
                                    or not np.isfinite(y.astype(np.float64)).all()):
        got = "strings" if y.dtype.kind == "U" else "NaN or infinity" if y.dtype.kind == "f" \
            else y.dtype.name
        return [SpecError(f"{source}: a regression model ({spec['train']['loss']}) needs finite "
                          f"numbers in 'y', got {got}", locate(("data", "source"), False),
                          path="data.source", code="semantic-target")]
    return checks.check_windows(spec, len(windows), source, locate, examples=len(windows))
