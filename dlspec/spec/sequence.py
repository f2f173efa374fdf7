"""Semantic checks of sequence data (``data.sequence``): what the schema cannot say.

``check_sequence`` needs no data; ``check_series_columns`` needs the CSV's
header, and ``check_series`` its values (non-numeric cells, gaps, a series
shorter than a window, splits left empty). Every problem is located at the
place in the spec to fix, and names the data file's line where there is one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlspec.data.sequence import SCALERS, window_count
from dlspec.data.split import chronological_split
from dlspec.data.table import Table
from dlspec.engine.losses import LOSSES
from dlspec.errors import SpecError
from dlspec.spec.diagnose import missing_column, named_columns_missing
from dlspec.spec.diagnose import spec_error as _err
from dlspec.spec.program import target_loss

SEQUENCE_FORMATS = ("csv", "npz")


def is_sequence(spec: dict) -> bool:
    return spec["data"] is not None and spec["data"].get("sequence") is not None


def regression(spec: dict) -> bool:
    return LOSSES[target_loss(spec["train"])].task == "regression"


def check_sequence(spec: dict, locate) -> list[SpecError]:
    """Sequence specs: a CSV or an .npz source, scaling steps only, time-ordered splits."""
    d = spec["data"]
    if not is_sequence(spec):
        return []
    fmt = d["format"]
    if fmt not in SEQUENCE_FORMATS:
        return [_err(locate, ("data", "sequence"), f"sequence data comes from a time-ordered "
                     f"CSV or an .npz of windows (x, y); {d['source']!r} is {fmt} image data",
                     "semantic-sequence", key=True)]
    out = []
    if fmt == "csv" and "target" not in d:
        out.append(_err(locate, ("data",), "missing required key 'target': sequence data "
                        "from a CSV needs the column to predict", "semantic-target", key=True))
    if fmt == "npz":
        for key in ("target", "drop", "features"):
            if d.get(key):
                out.append(_err(locate, ("data", key), f"'{key}' applies to CSV data; an .npz "
                                "holds the windows in x and their targets in y",
                                "semantic-format", key=True))
        if d["sequence"]["horizon"] != 1:
            out.append(_err(locate, ("data", "sequence", "horizon"), "'horizon' applies to "
                            "CSV data; an .npz holds each window's target in y already",
                            "semantic-sequence"))
    for key, why in (("test", "sequence data is split in time order (data.split.test takes "
                      "the last windows); a separate test set is not supported"),
                     ("labels", "'labels' applies to IDX images"),
                     ("augment", "'augment' applies to images"),
                     ("subset", "'subset' applies to images; sequence data uses every window")):
        if d.get(key):
            out.append(_err(locate, ("data", key), why, "semantic-sequence", key=True))
    if d["split"]["stratify"]:
        out.append(_err(locate, ("data", "split", "stratify"), "sequence data is split in "
                        "time order and cannot be stratified; remove stratify (or set it to "
                        "false)", "semantic-sequence"))
    for i, step in enumerate(d["preprocess"]):
        (name, _), = step.items()
        if name not in SCALERS:
            out.append(_err(locate, ("data", "preprocess", i, name), f"'{name}' does not apply"
                            f" to sequence data; use {' or '.join(SCALERS)}",
                            "semantic-preprocess", key=True))
    return out


def feature_columns(spec: dict, header: Sequence[str]) -> list[str]:
    """A CSV's sequence features: as listed, else every column but the dropped ones."""
    d = spec["data"]
    if d["features"] is not None:
        return list(d["features"])
    return [c for c in header if c not in d["drop"]]


def _column_place(spec: dict, col: str) -> tuple:
    """Where the spec names ``col``: its features entry, the target, or the source."""
    d = spec["data"]
    if d["features"] and col in d["features"]:
        return ("data", "features", d["features"].index(col))
    if col == d.get("target"):
        return ("data", "target")
    return ("data", "source")


def check_series_columns(spec: dict, header: Sequence[str], source: str,
                         locate) -> list[SpecError]:
    """Columns the spec names that the CSV's header lacks, and scaling of non-features."""
    d = spec["data"]
    out = named_columns_missing(d, header, source, locate)

    def missing(path, col):
        out.append(missing_column(locate, path, col, header, source))

    features = feature_columns(spec, header)
    if not features and d["features"] is None:
        out.append(_err(locate, ("data", "drop") if d["drop"] else ("data", "source"),
                        f"no feature columns left: {source} has only dropped columns",
                        "semantic-features"))
    scalable = [*features, *([d.get("target")] if regression(spec) else [])]
    for i, step in enumerate(d["preprocess"]):
        (kind, arg), = step.items()
        cols = arg["columns"] if kind in SCALERS else None  # others: check_sequence
        for j, col in enumerate(cols if isinstance(cols, list) else []):
            if col in scalable:
                continue
            if col in header:
                why = "the target of a classifier (its classes are not scaled)" \
                    if col == d.get("target") else "dropped" if col in d["drop"] \
                    else "not a feature"
                out.append(_err(locate, ("data", "preprocess", i, kind, "columns", j),
                                f"column '{col}' is {why}; only features"
                                f"{' and the target' if regression(spec) else ''} are scaled",
                                "semantic-column"))
            else:
                missing(("data", "preprocess", i, kind, "columns", j), col)
    if not out and all(next(iter(step)) in SCALERS for step in d["preprocess"]):
        from dlspec.data.sequence import scaling_kinds

        target = d.get("target") if regression(spec) else None
        try:
            scaling_kinds(features, target, d["preprocess"])
        except ValueError as e:
            out.append(_err(locate, ("data", "preprocess"), str(e), "semantic-preprocess"))
    return out


def check_series(spec: dict, table: Table, source: str, locate) -> list[SpecError]:
    """Checks on a CSV series' values: numbers without gaps, enough rows, splits non-empty.

    ``table`` holds (at least) the feature columns and the target.
    """
    d = spec["data"]
    out = []
    numeric = feature_columns(spec, table.columns)
    if regression(spec) and d["target"] not in numeric:
        numeric.append(d["target"])
    for col in numeric:
        place = _column_place(spec, col)
        bad = table.first_non_numeric(col)
        if bad:
            line, cell = bad
            fix = "list the numeric columns in data.features, or drop it" \
                if place != ("data", "target") else "predict a numeric column"
            out.append(_err(locate, place, f"column '{col}' is not numeric ({source} line "
                            f"{line}: {cell!r}); sequence features and a regression target "
                            f"are numbers: {fix}", "semantic-column"))
            continue
        empty = np.flatnonzero(table.cells[col] == "")
        if len(empty):
            out.append(_err(locate, place, f"column '{col}' has {len(empty)} missing "
                            f"value(s) (first: {source} line {int(table.lines[empty[0]])}); a "
                            "series cannot have gaps: fill them, or cut the rows", "data-value"))
    if not out:
        out += check_windows(spec, len(table), source, locate)
    return out


def check_windows(spec: dict, rows: int, source: str, locate,
                  examples: int | None = None) -> list[SpecError]:
    """Enough rows for one window, and windows for every split asked for.

    ``examples``: the number of windows when the data holds them already (.npz).
    """
    d = spec["data"]
    seq = d["sequence"]
    window, horizon = seq["window"], seq["horizon"]
    n = window_count(rows, window, horizon) if examples is None else examples
    if n < 1:
        need = window + horizon
        return [_err(locate, ("data", "sequence", "window"), f"window {window} + horizon "
                     f"{horizon} needs at least {need} rows, but {source} has {rows}; make "
                     "the window shorter", "semantic-sequence")]
    s = d["split"]
    try:
        chronological_split(n, test=s["test"], validation=s["validation"])
    except ValueError as e:
        return [_err(locate, ("data", "split"), f"{source} gives {n} windows: {e}",
                     "semantic-split")]
    return []


def check_npz_windows(spec: dict, windows: np.ndarray, y: np.ndarray, source: str,
                      locate) -> list[SpecError]:
    """The .npz's windows have the spec's length, its targets fit the loss, and every
    split gets a window."""
    window = spec["data"]["sequence"]["window"]
    if windows.shape[1] != window:
        return [SpecError(f"{source} holds windows of {windows.shape[1]} time steps, but "
                          f"window is {window}", locate(("data", "sequence", "window"), False),
                          path="data.sequence.window", code="semantic-sequence")]
    if regression(spec) and (y.dtype.kind not in "iuf"
                                    or not np.isfinite(y.astype(np.float64)).all()):
        got = "strings" if y.dtype.kind == "U" else "NaN or infinity" if y.dtype.kind == "f" \
            else y.dtype.name
        return [SpecError(f"{source}: a regression model ({spec['train']['loss']}) needs finite "
                          f"numbers in 'y', got {got}", locate(("data", "source"), False),
                          path="data.source", code="semantic-target")]
    return check_windows(spec, len(windows), source, locate, examples=len(windows))
