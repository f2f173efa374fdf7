"""What each column of a table holds, and what the target asks for: the reading
``dlspec init`` bases a spec on.

Every decision comes with its reason in words, because the reason becomes the
comment beside the choice in the written spec. The rules are deliberately
simple and conservative: where a column could be read two ways (integers with
few values: a count, or codes?), the reading that loses nothing is taken and
the comment says how to switch.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from dlspec.data.table import Table, missing_columns_error
from dlspec.errors import DataError, Location

CATEGORY_MAX = 30    # the most categories a column is one-hot encoded with
CODE_MAX = 10        # integer columns with at most this many values may be codes
CLASS_MAX_INT = 20   # integer targets with at most this many values are classes
CLASS_MAX = 200      # the most classes a target of strings may have
MIXED_SHARE = 0.9    # a column this numeric, with a few odd tokens, is numbers with junk
_ID_NAME = re.compile(r"(?i:(^|[_\s.-])(id|ids|uuid|guid|key|idx|index)$|^row_?num(ber)?$"
                      r"|^row_?id$|^index$)|[a-z0-9](Id|ID)$")
_DATE = re.compile(r"\d{4}-\d{1,2}(-\d{1,2})?([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?"
                   r"(Z|[+-]\d{2}:?\d{2})?|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")
DROP = "drop"


@dataclass
class Column:
    """One column's reading: its kind, how the spec uses it, and why.

    ``kind``: numeric, categorical, identifier, name, text, date, constant,
    mixed or empty. ``use``: numeric, onehot, label_encode or drop.
    """

    name: str
    kind: str
    use: str
    reason: str
    distinct: int = 0
    missing: int = 0
    integer: bool = False
    values: list[str] = field(default_factory=list)  # categories, sorted
    note: bool = False  # a kept column whose reading deserves a comment of its own


@dataclass
class TargetInfo:
    """The target's reading: the task it implies, its classes and the reason, in words."""

    name: str
    task: str                       # binary | multiclass | regression
    reason: str
    classes: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    largest: float = 0.0            # regression: the largest absolute value


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}" + ("" if n == 1 else "s")


def _show(values, limit: int = 4) -> str:
    shown = ", ".join(repr(v) if isinstance(v, str) and not is_number(v) else str(v)
                      for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:.4g}"


def is_number(text: str) -> bool:
    try:
        return bool(np.isfinite(float(text)))
    except ValueError:
        return False


def _numbers(filled: np.ndarray) -> np.ndarray | None:
    """The cells as float64 when every one is a finite number, else None."""
    try:
        values = filled.astype(np.float64)
    except (ValueError, TypeError):
        return None
    return values if np.isfinite(values).all() else None


def _first_missing(table: Table, empty: np.ndarray) -> int:
    return int(table.lines[np.flatnonzero(empty)[0]])


def read_column(table: Table, name: str) -> Column:
    """The reading of one feature column (every cell, as sampled)."""
    cells = table.cells[name]
    empty = cells == ""
    filled = cells[~empty]
    missing = int(empty.sum())
    if not len(filled):
        return Column(name, "empty", DROP, "every cell is empty", missing=missing)
    col = _read_filled(name, filled)
    col.missing = missing
    if missing and col.use != DROP:
        col.reason = (f"{col.reason}, but {_count(missing, 'empty cell')} (first at line "
                      f"{_first_missing(table, empty)}): dlspec does not train on missing values"
                      " yet; fill them in (or remove those rows), then take it out of drop")
        col.use = DROP
    return col


def _read_filled(name: str, filled: np.ndarray) -> Column:
    n = len(filled)
    counts = Counter(filled.tolist())
    distinct = len(counts)
    values = _numbers(filled)
    if distinct == 1:
        return Column(name, "constant", DROP, f"one value ({_show(list(counts))}) in every "
                      "row: nothing to learn from", distinct)
    if values is not None:
        return _read_numeric(name, values, distinct, n)
    odd = {v: c for v, c in counts.items() if not is_number(v)}
    if sum(odd.values()) <= (1 - MIXED_SHARE) * n and len(odd) <= 5:
        return Column(name, "mixed", DROP, f"numbers, but {_count(sum(odd.values()), 'cell')} "
                      f"hold {_show(sorted(odd))}; dlspec reads only empty cells as missing: "
                      "clean them, then take it out of drop", distinct)
    if all(_DATE.fullmatch(v) for v in counts):
        days = sorted(counts)
        return Column(name, "date", DROP, f"dates ({days[0]} to {days[-1]}): dlspec has no "
                      "date features yet; derive numbers (year, month, weekday) in the file if "
                      "they matter", distinct)
    words = sum(len(v.split()) * c for v, c in counts.items()) / n
    length = sum(len(v) * c for v, c in counts.items()) / n
    if distinct > CATEGORY_MAX and (words >= 4 or length >= 40):
        return Column(name, "text", DROP, f"free text ({words:.0f} words per row on average): "
                      "dlspec cannot use free text yet", distinct)
    if distinct == n:
        return Column(name, "identifier", DROP, f"identifier: unique per row "
                      f"({_show(list(counts), 3)})", distinct)
    if distinct <= CATEGORY_MAX and 2 * distinct <= n:
        cats = sorted(counts)
        if distinct == 2:
            return Column(name, "categorical", "label_encode",
                          f"{cats[0]} = 0, {cats[1]} = 1", distinct, values=cats)
        shown = ", ".join(f"{c}: {counts[c]:,}" for c in cats[:6])
        return Column(name, "categorical", "onehot", f"{distinct} values: {shown}"
                      + (", ..." if distinct > 6 else ""), distinct, values=cats)
    return Column(name, "name", DROP, f"{distinct:,} distinct values in {n:,} rows "
                  f"({_show(list(counts), 3)}): names or codes, too many to one-hot",
                  distinct)


def _read_numeric(name: str, values: np.ndarray, distinct: int, n: int) -> Column:
    lo, hi = float(values.min()), float(values.max())
    integer = bool((values == np.round(values)).all())
    span = f"{_num(lo)} to {_num(hi)}"
    if integer and distinct == n and n > 2:
        consecutive = hi - lo == n - 1
        if consecutive or _ID_NAME.search(name):
            why = "numbered rows" if consecutive else "its name says so"
            return Column(name, "identifier", DROP, f"identifier: unique per row, {span} "
                          f"({why})", distinct, integer=True)
    if integer and 3 <= distinct <= CODE_MAX and hi - lo + 1 > distinct:
        cats = [_num(v) for v in sorted(set(values.tolist()))]
        return Column(name, "categorical", "onehot", f"integers with gaps ({', '.join(cats)}): "
                      "read as codes; if they are amounts, take it out of onehot",
                      distinct, integer=True, values=cats)
    if integer and distinct == 2 and {lo, hi} == {0.0, 1.0}:
        return Column(name, "numeric", "numeric", "0/1 flag", distinct, integer=True)
    if integer and distinct <= CODE_MAX:
        return Column(name, "numeric", "numeric", f"{distinct} integer values, {span}: kept as "
                      "a number (a count or a scale); if they are codes, onehot it",
                      distinct, integer=True, note=True)
    note = "; unique per row: if it identifies rows, drop it" if integer and distinct == n \
        else ""
    return Column(name, "numeric", "numeric", f"numbers {span}{note}", distinct,
                  integer=integer, note=bool(note))


def read_target(table: Table, name: str) -> TargetInfo:
    """The task the target column asks for, with its classes.

    Raises:
        DataError: the header lacks ``name`` (with a did-you-mean), the column has
            missing values or one value only, or it holds neither numbers nor a
            manageable number of classes.
    """
    if name not in table.cells:
        e = missing_columns_error(table.source, table.columns, [name], 1,
                                  has="--target must name a column; the header has")
        numbers = [c for c in table.columns if is_number(c)]
        if numbers:
            e = DataError(f"{e.message}; names like {numbers[0]} suggest the first line is "
                          "data, not column names", e.location, code=e.code)
        raise e
    cells = table.cells[name]
    empty = cells == ""
    where = Location(table.source, 1)
    if empty.all():
        raise DataError(f"column {name!r} (the target) is empty", where, code="data-target")
    if empty.any():
        raise DataError(f"column {name!r} (the target): {_count(int(empty.sum()), 'row')} "
                        f"without a value (first at line {_first_missing(table, empty)}); dlspec "
                        "trains only on rows with a target: fill them in or remove them",
                        where, code="data-target")
    counts = Counter(cells.tolist())
    values = _numbers(cells)
    if len(counts) == 1:
        raise DataError(f"column {name!r} (the target) has one value ({_show(list(counts))}) "
                        f"in all {len(cells):,} rows: there is nothing to predict",
                        where, code="data-target")
    if values is not None:
        integer = bool((values == np.round(values)).all())
        n_classes = len(set(values.tolist()))
        if not integer or n_classes > CLASS_MAX_INT:
            return TargetInfo(name, "regression", f"numbers {_num(values.min())} to "
                              f"{_num(values.max())} ({n_classes:,} values): regression",
                              largest=float(np.abs(values).max()))
        order = sorted(counts, key=float)
    else:
        if len(counts) > 2 and len(counts) > min(CLASS_MAX, len(cells) // 2):
            raise DataError(f"column {name!r} (the target) has {len(counts):,} distinct values "
                            f"in {len(cells):,} rows ({_show(sorted(counts))}): too many to be "
                            "classes, and not numbers to predict", where, code="data-target")
        order = sorted(counts)
    n = len(cells)
    share = ", ".join(f"{c}: {counts[c]:,}" for c in order[:8]) + \
        (", ..." if len(order) > 8 else "")
    if len(order) == 2:
        task, why = "binary", f"2 classes ({share}): binary classification"
        low = min(counts.values()) / n
        if low < 0.3:
            why += f"; only {low:.0%} are {min(counts, key=counts.get)}, so accuracy alone " \
                   "flatters: precision, recall, f1 and auc are reported too"
    else:
        task, why = "multiclass", f"{len(order)} classes ({share}): multi-class classification"
        if values is not None:
            why += "; integers read as classes: if they measure an amount, make it a " \
                   "regression (loss mse, a last dense layer of 1 unit, metrics [mae])"
    return TargetInfo(name, task, why, [str(c) for c in order], [counts[c] for c in order])
