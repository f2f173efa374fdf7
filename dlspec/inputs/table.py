"""Tables: read the CSV, encode the target, split, and fit each table input's
preprocessing on the training rows.

A model may read a table through several inputs, each with its own columns (numeric and
categorical columns on two branches, say); each gets the preprocessing steps that name
its columns, and the steps that say ``all`` or ``numeric``.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from dlspec.data.preprocess import Preprocessor, encoded_columns, steps_for
from dlspec.data.split import split_indices
from dlspec.data.table import read_csv
from dlspec.errors import Diagnostics, SpecError
from dlspec.fsio import file_sha256
from dlspec.inputs.base import (
    HOLDOUT_ROWS,
    SPLITS,
    Dataset,
    InputKind,
    encode_target,
)
from dlspec.spec.model import Spec, thaw
from dlspec.spec.semantic import check_columns, feature_columns, input_columns
from dlspec.tasks import TASKS

HOLDOUT = "holdout.csv"


def load_table(spec: Spec) -> Dataset:
    """Read, check, split and preprocess a table.

    Raises:
        Diagnostics / DataError: a missing file, columns the spec names that the
            header lacks, bad cells, or classes that do not fit the loss.
    """
    path = spec.data.source
    if not path.is_file():
        raise Diagnostics([SpecError(
            f"data file not found: {path} (give another with --set data.source=PATH)",
            spec.locate(("data", "source"), False), path="data.source", code="data-file")])
    resolved = thaw(spec.resolved)
    header = read_csv(path, max_rows=0, dialect=spec.data.dialect).columns
    errors = check_columns(resolved, header, spec.data.source_text, spec.locate)
    if errors:
        raise Diagnostics(errors)
    # Only the columns the model and its target read are kept (dropped ones are split but
    # never converted), and those read only as numbers are parsed once, by the reader: the
    # float64 values parsing the text later would give. A block with a cell that is not a
    # number keeps its text there, and the preprocessing's checks name that cell's line.
    features = feature_columns(resolved, header)
    encoded = encoded_columns(resolved["data"]["preprocess"])
    table = read_csv(path, dialect=spec.data.dialect, columns=[*features, spec.data.target],
                     numbers=[c for c in features if c not in encoded], narrow=True)
    if spec.data.classes:
        table = _only_classes(table, spec)
    target, y = encode_target(table, spec.data.target, spec.train.target_loss, ("data", "target"),
                              spec.locate)
    if spec.data.target not in features:  # encoded: its cells are not needed any more
        table = table.select([c for c in table.columns if c != spec.data.target])
    s = spec.data.split
    stratify = y if (s.stratify and TASKS[target.task].classifier) else None
    train, val, test = split_indices(len(table), test=s.test, validation=s.validation,
                                     seed=spec.seed, stratify_labels=stratify)
    rows = dict(zip(SPLITS, (train, val, test), strict=True))
    steps = [thaw(st) for st in spec.data.preprocess]
    inputs, x = {}, {k: {} for k in rows}
    for name, columns in input_columns(resolved, features).items():
        # the training rows are assembled once, for the fit and as the training matrix
        inputs[name], x["train"][name] = Preprocessor.fit_transform(
            table, train, columns, steps_for(steps, columns))
        for k in ("validation", "test"):
            x[k][name] = inputs[name].transform(table, rows[k])
    # The raw rows a run looks at again (its export's parity check, holdout.csv) are the
    # first of a split: only those stay, so a large table goes once its examples are made.
    held = table.keep(np.concatenate([r[:HOLDOUT_ROWS] for r in rows.values()]))
    del table
    return Dataset("table", inputs, target, rows, x, {k: y[r] for k, r in rows.items()},
                   file_sha256(path), raw=held)


def _only_classes(table, spec: Spec):
    """The rows whose target is one of data.classes (compared as text, or by value)."""
    name, wanted = spec.data.target, list(spec.data.classes)
    if name not in table.cells:
        return table  # check_columns reports the missing target
    cells = table.strings(name)
    keys = {str(w) for w in wanted}
    keep = np.array([c in keys for c in cells.tolist()], dtype=bool)
    if not keep.any():
        raise Diagnostics([SpecError(
            f"no row of {spec.data.source_text} has one of these classes in '{name}'",
            spec.locate(("data", "classes"), False), path="data.classes",
            code="data-classes")])
    return table.take(np.flatnonzero(keep))


def write_holdout(ds: Dataset, rows: np.ndarray) -> bytes:
    """Up to 512 held-out rows of the raw columns the model reads, as CSV."""
    cols = [c for pre in ds.inputs.values() for c in pre.columns]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for r in ds.raw.positions(rows[:HOLDOUT_ROWS]):
        w.writerow([ds.raw.cells[c][r] for c in cols])
    return out.getvalue().encode()


def describe(inputs: dict) -> str:
    parts = [f"{name} {pre.input_shape} ({', '.join(pre.feature_names)})"
             for name, pre in inputs.items()]
    return "features: " + "; ".join(parts)


KIND = InputKind("table", Preprocessor, load_table, HOLDOUT, write_holdout,
                 lambda path: read_csv(path), describe)
