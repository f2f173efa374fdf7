"""Fitted preprocessing: raw columns -> float32 feature matrix, in NumPy and ONNX.

Both paths do the same float32 arithmetic in the same order (assemble the
features, fill missing numbers with their training means, then one
``(x - mean) / scale`` over the whole row), so the exported model and the
training engine agree to the last bit or nearly so. ``standardize`` fits the
mean and standard deviation there, ``minmax`` the minimum and the range (so the
training rows map onto [0, 1]).

Missing and unseen values have one meaning everywhere: a missing number (NaN
in the graph) becomes the raw column's training mean; a missing category (""
in the graph) and an unseen one encode as all-zero one-hot or label -1. The
policies (``on_unknown``, ``on_missing``) only decide whether the engine and
the runtime's input check refuse such rows first.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlspec.data.table import Table, require_columns
from dlspec.errors import DataError, Location, ModelError

ENCODINGS = ("onehot", "label_encode")
SCALERS = ("standardize", "minmax")
STEPS = (*ENCODINGS, *SCALERS)
_FORMAT = 2  # version of the to_dict layout (2: numeric inputs carry their training mean)
ON_UNKNOWN = ("error", "zeros")
ON_MISSING = ("error", "impute")


@dataclass(frozen=True)
class InputColumn:
    """One raw input of the model: its name, kind, vocabulary, and fill for missing values."""

    name: str
    kind: str  # numeric | categorical | image (uint8 NHWC) | sequence | tensor | text
    categories: tuple[str, ...] = ()  # sorted vocabulary of the training rows
    impute: float | None = None  # numeric: the raw column's training mean
    shape: tuple[int, ...] = ()  # image, tensor: one example's shape

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "categories": list(self.categories),
               "impute": self.impute}
        if self.shape:
            out["shape"] = list(self.shape)
        return out

    @classmethod
    def from_dict(cls, d: dict, *, need_impute: bool = True) -> InputColumn:
        """Rebuild from ``to_dict``; a numeric column needs its ``impute`` unless told not to.

        Raises KeyError, TypeError or ValueError for a malformed entry.
        """
        kind, impute = d["kind"], None
        if kind not in ("numeric", "categorical", "image", "sequence", "tensor", "text"):
            raise ValueError(f"input {d['name']!r}: unknown kind {kind!r}")
        if kind == "numeric":
            raw = d["impute"] if need_impute else d.get("impute")
            impute = None if raw is None else float(raw)
            if (need_impute or impute is not None) and \
                    (impute is None or not np.isfinite(impute)):
                raise ValueError(f"numeric input {d['name']!r} needs a finite 'impute' "
                                 f"(its training mean), got {raw!r}")
        shape = tuple(int(v) for v in d.get("shape", ()))
        return cls(str(d["name"]), kind, tuple(str(c) for c in d["categories"]), impute, shape)


@dataclass(frozen=True)
class Encoding:
    """How a categorical column becomes features."""

    kind: str  # "onehot" | "label_encode"
    drop_first: bool = False


def check_steps(features: Sequence[str], steps: Sequence[dict]) -> list[str]:
    """Problems with ``steps`` that need no data, as messages (empty when fine)."""
    problems: list[str] = []
    encoded_by: dict[str, str] = {}
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEPS:
            problems.append(f"preprocess[{i}]: expected one of {', '.join(STEPS)}, got {step!r}")
            continue
        kind, args = next(iter(step.items()))
        where = f"preprocess[{i}] ({kind})"
        columns = args.get("columns") if isinstance(args, dict) else None
        if kind in SCALERS and columns in ("all", "numeric"):
            continue
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            choices = "'all', 'numeric' or " if kind in SCALERS else ""
            problems.append(f"{where}: 'columns' must be {choices}a list of column names, "
                            f"got {columns!r}")
            continue
        for name in columns:
            if name not in features:
                close = difflib.get_close_matches(name, features, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                problems.append(f"{where}: {name!r} is not a feature column{hint}")
            elif kind in ENCODINGS:
                if name in encoded_by:
                    problems.append(f"{where}: column {name!r} is already encoded by "
                                    f"{encoded_by[name]}; encode each column once")
                else:
                    encoded_by[name] = where
    if not problems:
        problems += _scaled_twice(features, steps)
    return problems


def steps_for(steps: list[dict], columns: list[str]) -> list[dict]:
    """The preprocessing steps of an input reading ``columns``: those naming its columns
    (narrowed to them), and those over all (or all numeric) features."""
    out = []
    for step in steps:
        (kind, args), = step.items()
        cols = args.get("columns")
        if isinstance(cols, list):
            mine = [c for c in cols if c in columns]
            if not mine:
                continue
            args = {**args, "columns": mine}
        out.append({kind: args})
    return out


def encoded_columns(steps: Sequence[dict]) -> set[str]:
    """The columns an encoding step names (every other feature must hold numbers)."""
    return {c for step in steps for kind, args in step.items() if kind in ENCODINGS
            for c in args["columns"]}


def non_numeric(table: Table, name: str, rows: np.ndarray | None = None) -> DataError | None:
    """The error for a column read as numbers whose cells are not all numbers (at the first
    such cell's line), or None."""
    bad = table.first_non_numeric(name, rows)
    if bad is None:
        return None
    return DataError(f"column {name!r}: cannot parse {bad[1]!r} as a number; if the column "
                     "is categorical, encode it with onehot or label_encode (or drop it)",
                     Location(table.source, bad[0]), code="data-type")


def _scaled_sets(features: Sequence[str], steps: Sequence[dict]) -> dict[str, set[str]]:
    """Each scaler's raw columns ('numeric': the features no encoding step names)."""
    encoded = encoded_columns(steps)
    out: dict[str, set[str]] = {k: set() for k in SCALERS}
    for step in steps:
        (kind, args), = step.items()
        if kind in SCALERS:
            cols = args["columns"]
            out[kind].update(features if cols == "all" else cols if cols != "numeric"
                             else [f for f in features if f not in encoded])
    return out


def _scaled_twice(features: Sequence[str], steps: Sequence[dict]) -> list[str]:
    both = _scaled_sets(features, steps)
    twice = [f for f in features if all(f in cols for cols in both.values())]
    return [f"column {name!r} is both standardized and min-max scaled; scale each column "
            "once" for name in twice]


@dataclass
class Preprocessor:
    """The fitted transform from raw columns to the float32 feature matrix.

    The three preprocessors (this one, ImagePreprocessor, SequencePreprocessor) share
    ``kind`` (what raw data they read: "table", "image", "sequence"), ``input_shape``
    (one example's shape for the network), ``inputs``, ``columns``, ``sequence_input``,
    ``to_dict`` and ``from_dict``."""

    kind: ClassVar[str] = "table"

    inputs: list[InputColumn]  # raw input contract, in feature (header) order
    feature_names: list[str]
    encodings: dict[str, Encoding]  # categorical column -> its encoding
    mean: np.ndarray  # float32 (F,): the offset (mean, or minimum for minmax); 0 if unscaled
    scale: np.ndarray  # float32 (F,): std, or max - min for minmax; 1 where not scaled

    @property
    def columns(self) -> list[str]:
        """The raw column names the transform reads."""
        return [c.name for c in self.inputs]

    @property
    def input_shape(self) -> int:
        """One example's shape for the network: the number of features."""
        return len(self.feature_names)

    @property
    def sequence_input(self) -> None:
        """A table model reads no windows."""
        return None

    @classmethod
    def fit(cls, table: Table, rows: np.ndarray, features: Sequence[str],
            steps: Sequence[dict]) -> Preprocessor:
        """Fit vocabularies and scaling on ``rows`` (the training rows) of ``table``.

        Raises: as ``fit_transform``.
        """
        return cls.fit_transform(table, rows, features, steps)[0]

    @classmethod
    def fit_transform(cls, table: Table, rows: np.ndarray, features: Sequence[str],
                      steps: Sequence[dict]) -> tuple[Preprocessor, np.ndarray]:
        """Fit vocabularies and scaling on ``rows`` (the training rows) of ``table``, and
        the transform of those rows (what ``transform(table, rows)`` gives, bit for bit,
        from the one assembly of the raw features the fit needs anyway).

        Raises:
            ValueError: bad ``steps`` (see ``check_steps``) or no rows/features.
            DataError: a missing column, a missing value, or a non-numeric cell in
                a column no encoding step names.
        """
        problems = check_steps(features, steps)
        if problems:
            raise ValueError("; ".join(problems))
        if not features:
            raise ValueError("there are no feature columns to preprocess")
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            raise ValueError("cannot fit preprocessing on zero rows")
        require_columns(table, features)
        encodings: dict[str, Encoding] = {}
        for step in steps:
            (kind, args), = step.items()
            if kind in ENCODINGS:
                for name in args["columns"]:
                    encodings[name] = Encoding(kind, bool(args.get("drop_first", False)))
        scaled = _scaled_sets(features, steps)  # scaler -> raw columns whose features it scales
        inputs, names, std_mask, mm_mask = [], [], [], []
        for name in features:
            if name in encodings:
                inputs.append(InputColumn(name, "categorical",
                                          _training_categories(table, name, rows)))
                enc = encodings[name]
                if enc.kind == "onehot":
                    kept = inputs[-1].categories[1:] if enc.drop_first else inputs[-1].categories
                    new = [f"{name}={cat}" for cat in kept]
                else:
                    new = [name]
            else:
                # checked and averaged here, gathered again by _assemble: one column of
                # float64 at a time, never all of them
                mean = float(_training_numbers(table, name, rows).mean())
                inputs.append(InputColumn(name, "numeric", impute=mean))
                new = [name]
            names += new
            std_mask += [name in scaled["standardize"]] * len(new)
            mm_mask += [name in scaled["minmax"]] * len(new)
        if not names:
            raise ValueError("preprocessing gives no features (a one-category column with "
                             "drop_first gives none)")
        fitted = cls(inputs, names, {k: encodings[k] for k in features if k in encodings},
                     np.zeros(len(names), np.float32), np.ones(len(names), np.float32))
        # in blocks of rows, so that the gathers beside the matrix stay small
        raw = np.empty((len(rows), len(names)), dtype=np.float32)
        for start in range(0, len(rows), _ASSEMBLE_ROWS):
            fitted._assemble(table, rows[start:start + _ASSEMBLE_ROWS], "error", "error",
                             raw[start:start + _ASSEMBLE_ROWS])
        mean, std = column_stats(raw)
        lo, hi = raw.min(axis=0).astype(np.float64), raw.max(axis=0).astype(np.float64)
        # A constant feature keeps scale 1, as sklearn's StandardScaler and MinMaxScaler do.
        span = hi - lo
        std[lo == hi], span[lo == hi] = 1.0, 1.0
        for mask, offset, scale in ((std_mask, mean, std), (mm_mask, lo, span)):
            mask = np.array(mask, dtype=bool)
            fitted.mean[mask] = offset[mask].astype(np.float32)
            fitted.scale[mask] = scale[mask].astype(np.float32)
        return fitted, fitted._scaled(raw)

    def transform(self, table: Table, rows: np.ndarray | None = None, *,
                  on_unknown: str = "error", on_missing: str = "error") -> np.ndarray:
        """The float32 (N, F) C-contiguous feature matrix of ``rows`` (default all).

        ``on_unknown``: "error" raises DataError for a category not seen in
        training; "zeros" encodes it as all-zero one-hot / label -1, like the
        exported graph. ``on_missing``: "error" raises DataError for a missing
        value; "impute" fills a number with its training mean and encodes a
        category as unseen, like the exported graph.
        """
        check_policies(on_unknown, on_missing)
        return self._scaled(self._assemble(table, rows, on_unknown, on_missing))

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / scale``, in place in the assembled float32 matrix ``x``."""
        np.subtract(x, self.mean, out=x)
        np.divide(x, self.scale, out=x)
        return x

    def _assemble(self, table: Table, rows: np.ndarray | None, on_unknown: str,
                  on_missing: str, out: np.ndarray | None = None) -> np.ndarray:
        require_columns(table, self.columns)
        n = len(table) if rows is None else len(rows)
        x = np.empty((n, len(self.feature_names)), dtype=np.float32) if out is None else out
        j = 0
        for col in self.inputs:
            if col.kind == "numeric":
                x[:, j] = numeric_input(table, col, rows, on_missing)
                if on_missing == "impute":
                    x[np.isnan(x[:, j]), j] = np.float32(col.impute)
                j += 1
                continue
            index = category_index(table, col, rows, on_unknown, on_missing)
            enc = self.encodings[col.name]
            if enc.kind == "label_encode":
                x[:, j] = index.astype(np.float32)
                j += 1
                continue
            first = 1 if enc.drop_first else 0
            width = len(col.categories) - first
            x[:, j:j + width] = 0.0
            hit = np.flatnonzero(index >= first)
            x[hit, j - first + index[hit]] = 1.0
            j += width
        return x

    def to_dict(self) -> dict:
        """The full fitted state as plain JSON-serialisable data."""
        return {
            "format": _FORMAT,
            "inputs": [c.to_dict() for c in self.inputs],
            "encodings": {k: {"kind": e.kind, "drop_first": e.drop_first}
                          for k, e in self.encodings.items()},
            "feature_names": list(self.feature_names),
            # float32 -> Python float is exact, and JSON keeps doubles exactly.
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessor:
        """Rebuild from ``to_dict`` output; a malformed state raises ModelError."""
        try:
            if d["format"] == 1:
                raise ValueError("format 1 (from an older dlspec) lacks the training means "
                                 "used to impute missing values; train the run again")
            if d["format"] != _FORMAT:
                raise ValueError(f"unknown format {d['format']!r}")
            inputs = [InputColumn.from_dict(c) for c in d["inputs"]]
            encodings = {k: Encoding(e["kind"], bool(e["drop_first"]))
                         for k, e in d["encodings"].items()}
            out = cls(inputs, list(d["feature_names"]), encodings,
                      np.array(d["mean"], dtype=np.float32),
                      np.array(d["scale"], dtype=np.float32))
            if not (len(out.mean) == len(out.scale) == len(out.feature_names)):
                raise ValueError("feature_names, mean and scale differ in length")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"invalid preprocessing state: {e}", code="model-state") from None
        return out


def check_policies(on_unknown: str, on_missing: str) -> None:
    if on_unknown not in ON_UNKNOWN:
        raise ValueError(f"on_unknown must be 'error' or 'zeros', got {on_unknown!r}")
    if on_missing not in ON_MISSING:
        raise ValueError(f"on_missing must be 'error' or 'impute', got {on_missing!r}")


def numeric_input(table: Table, col: InputColumn, rows: np.ndarray | None,
                  on_missing: str) -> np.ndarray:
    """A numeric input as float32; NaN where a value is missing and ``on_missing`` allows it."""
    if on_missing == "impute" and col.impute is None:
        raise ModelError(f"input {col.name!r} has no training mean to impute with (the model "
                         "predates --on-missing impute); train and export it again",
                         code="model-contract")
    return table.numeric(col.name, rows, missing="nan" if on_missing == "impute"
                         else "error").astype(np.float32)


_STATS_ROWS = 65_536  # rows of float64 at a time in column_stats
_ASSEMBLE_ROWS = 1 << 20  # training rows assembled at a time (their checks are done by then)


def column_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, std)`` over axis 0 of the float32 matrix ``x``, in float64, equal bit for bit
    to ``x.astype(np.float64).mean(axis=0)`` and ``.std(axis=0)`` without that copy.

    NumPy reduces a C-contiguous (N, F > 1) matrix over axis 0 one row after another, so
    carrying the running sum as the first row of each block of rows keeps that order. A
    single column (reduced pairwise) and a small matrix take the direct path.
    """
    n, f = x.shape
    if f == 1 or n <= _STATS_ROWS:
        wide = x.astype(np.float64)
        return wide.mean(axis=0), wide.std(axis=0)
    buf = np.empty((_STATS_ROWS + 1, f), dtype=np.float64)

    def total(prepare) -> np.ndarray:
        acc = None
        for start in range(0, n, _STATS_ROWS):
            part = x[start:start + _STATS_ROWS]
            block = buf[:len(part) + (acc is not None)]
            prepare(part, block[acc is not None:])
            if acc is not None:
                block[0] = acc
            acc = block.sum(axis=0)
        return acc

    def square(part, out):
        np.subtract(part, mean, out=out)
        np.multiply(out, out, out=out)

    mean = total(lambda part, out: np.copyto(out, part)) / n
    return mean, np.sqrt(total(square) / n)


def _training_numbers(table: Table, name: str, rows: np.ndarray) -> np.ndarray:
    """A numeric column's training rows as float64; a cell that is not a number (first) or
    a missing value is the located error."""
    cells = table.cells[name]
    if cells.dtype.kind == "f":  # parsed by the reader: finite there
        values = cells[rows].astype(np.float64, copy=False)
        if np.isfinite(values).all():
            return values
    problem = non_numeric(table, name, rows)
    if problem:
        raise problem
    return table.numeric(name, rows)


def _training_categories(table: Table, name: str, rows: np.ndarray) -> tuple[str, ...]:
    """The sorted vocabulary of a column's training rows; a missing value is an error."""
    coded = table.codes(name)
    if coded is None:
        return tuple(sorted(set(_categorical_cells(table, name, rows))))
    codes, values = coded
    mine = codes[rows]
    present = np.flatnonzero(np.bincount(mine, minlength=len(values)))
    if "" in values and values.index("") in present:
        first = np.flatnonzero(mine == values.index(""))[0]
        raise table.error(f"column {name!r}: missing value", table.lines[rows[first]],
                          "data-value")
    return tuple(sorted(values[i] for i in present))


def _categorical_cells(table: Table, name: str, rows: np.ndarray | None) -> np.ndarray:
    """The category strings of a training column; a missing one is an error."""
    cells = table.strings(name, rows)
    empty = np.flatnonzero(cells == "")
    if len(empty):
        lines = table.lines if rows is None else table.lines[rows]
        raise table.error(f"column {name!r}: missing value", lines[empty[0]], "data-value")
    return cells


def check_categories(table: Table, col: InputColumn, cells: np.ndarray,
                     rows: np.ndarray | None, on_unknown: str, on_missing: str) -> None:
    """Raise the located DataError for a missing or unseen category the policies refuse.

    ``cells`` are ``table.strings(col.name, rows)``. Missing ("") is checked first.
    """
    seen = set(cells.tolist())
    vocab = set(col.categories)
    if seen <= vocab:
        return
    lines = table.lines if rows is None else table.lines[rows]
    if "" in seen and "" not in vocab and on_missing == "error":
        first = int(np.flatnonzero(cells == "")[0])
        raise table.error(f"column {col.name!r}: missing value", lines[first], "data-value")
    if on_unknown == "error" and seen - vocab - {""}:
        unseen = np.flatnonzero(np.fromiter((c != "" and c not in vocab for c in cells),
                                            dtype=bool, count=len(cells)))
        first = list(dict.fromkeys(cells[unseen].tolist()))[:3]
        count = (f"{len(unseen)} rows have categories" if len(unseen) > 1
                 else "1 row has a category")
        raise table.error(f"column {col.name!r}: {count} not seen in training "
                          f"(first: {', '.join(repr(c) for c in first)})", lines[unseen[0]],
                          "data-category")


def category_index(table: Table, col: InputColumn, rows: np.ndarray | None,
                   on_unknown: str, on_missing: str = "error") -> np.ndarray:
    """Index of each cell in the vocabulary; -1 for an unseen or (allowed) missing category."""
    lookup = {cat: i for i, cat in enumerate(col.categories)}
    coded = table.codes(col.name)
    if coded is not None:  # CSV text: each distinct cell looked up once
        codes, values = coded
        remap = np.array([lookup.get(v, -1) for v in values], dtype=np.int64)
        index = remap[codes if rows is None else codes[rows]]
        cells = None
    else:
        cells = table.strings(col.name, rows)
        index = np.fromiter(map(lookup.get, cells, itertools.repeat(-1)), dtype=np.int64,
                            count=len(cells))
    if (index < 0).any():  # a missing or unseen category: refused unless the policies allow
        cells = table.strings(col.name, rows) if cells is None else cells
        check_categories(table, col, cells, rows, on_unknown, on_missing)
    return index
