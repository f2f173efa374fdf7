"""Prediction with sequence models: windows cut from a time-ordered file, or given as arrays.

From a table (CSV, JSON Lines, Parquet, a structured .npy, an .npz of columns)
the model's feature columns are read in chunks and cut into every complete
window (rows i .. i + window - 1), carrying the last window - 1 rows from chunk
to chunk: a file of T rows gives T - window + 1 predictions, one per window, in
order, each on the row of its window's last time step (``--keep`` columns come
from that row). The prediction is for ``horizon`` rows later. A plain .npy of
shape (n, window, features), or an .npz holding such an array ``x``, is
predicted window by window as it is.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from dlspec.data.sequence import SequenceInput, sliding_windows
from dlspec.errors import DataError, Location, UsageError
from dlspec.runtime.contract import Contract
from dlspec.runtime.predict import _writer
from dlspec.runtime.readers import input_format, read_tables

WINDOW_BYTES = 64 << 20  # float32 windows cut at a time


def _array_source(data: str | os.PathLike, fmt: str) -> str | None:
    """'npy' or 'npz' when ``data`` holds windows as a plain array, else None (columns)."""
    name = os.fspath(data)
    if fmt == "npy":
        try:
            arr = np.load(name, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, TypeError, EOFError):
            return None  # the column reader reports it, located
        return "npy" if arr.dtype.names is None else None
    if fmt == "npz" and zipfile.is_zipfile(name):
        with zipfile.ZipFile(name) as z:
            return "npz" if "x.npy" in z.namelist() else None
    return None


def _check_windows(x: np.ndarray, seq: SequenceInput, source: str) -> None:
    want = (seq.window, seq.width)
    if x.ndim != 3 or tuple(x.shape[1:]) != want:
        raise DataError(f"expected windows of shape (n, {seq.window}, {seq.width}) (examples, "
                        f"time steps, features), got {x.shape}", Location(source),
                        code="data-shape")
    if x.dtype.kind not in "iuf":
        raise DataError(f"expected numbers, got {x.dtype}", Location(source), code="data-type")


def _array_windows(data: str, kind: str, seq: SequenceInput,
                   chunk: int) -> Iterator[tuple[np.ndarray, list]]:
    if kind == "npy":
        x = np.load(data, mmap_mode="r", allow_pickle=False)
    else:
        from dlspec.data.images import _npz_arrays

        x, = _npz_arrays(data, ("x",), 1 << 34)
    _check_windows(x, seq, data)
    for start in range(0, len(x), chunk):
        part = np.asarray(x[start:start + chunk], dtype=np.float32)
        bad = np.flatnonzero(~np.isfinite(part).reshape(len(part), -1).all(axis=1))
        if len(bad):
            raise DataError(f"row {start + int(bad[0])}: a window holds NaN or an infinite "
                            "value", Location(data), code="data-value")
        yield part, []


def _table_windows(data, fmt: str | None, seq: SequenceInput, chunk: int,
                   keep: Sequence[str]) -> Iterator[tuple[np.ndarray, list]]:
    columns = list(seq.columns)
    tables = read_tables(data, [*columns, *keep], chunk, fmt, numbers=columns, keep=keep)
    carry = np.empty((0, seq.width), dtype=np.float32)
    try:
        for t in tables:
            if len(t) == 0:
                continue
            values = np.stack([t.numeric(c).astype(np.float32) for c in columns], axis=1)
            joined = np.concatenate([carry, values])
            x = sliding_windows(joined, seq.window)
            if len(x):
                first = seq.window - 1 - len(carry)  # the row of t that ends the first window
                yield x, [(t.cells[c][first:], t.text) for c in keep]
            carry = joined[len(joined) - min(seq.window - 1, len(joined)):]
    finally:
        tables.close()


def read_windows(data, seq: SequenceInput, batch_size: int, fmt: str | None = None,
                 keep: Sequence[str] = ()) -> Iterator[tuple[np.ndarray, list]]:
    """Batches ``(windows float32 (n, window, F), keep cells of each window's last row)``."""
    chunk = max(1, min(batch_size, WINDOW_BYTES // (4 * seq.window * seq.width)))
    kind = _array_source(data, input_format(data, fmt)) if os.fspath(data) != "-" else None
    if kind is not None:
        if keep:
            raise UsageError(f"--keep {keep[0]}: {data} holds windows as an array, without "
                             "columns to keep", code="usage")
        return _array_windows(os.fspath(data), kind, seq, chunk)
    if not seq.columns:
        raise UsageError(f"{data}: this model was trained on arrays (.npz) and takes its "
                         f"windows as an array of shape (n, {seq.window}, {seq.width}) in a "
                         ".npy, or as 'x' in an .npz", code="usage")
    return _table_windows(data, fmt, seq, chunk, keep)


def predict_sequences(runner: Callable, contract: Contract, width: int, data: str | Path,
                      out: Path | None, batch_size: int,
                      progress: Callable[[int], None] | None = None, *,
                      input_format: str | None = None, keep: Sequence[str] = ()) -> int:
    """One output row per complete window of ``data``, in order; returns the count.

    Raises DataError when ``data`` has fewer rows than one window.
    """
    seq = contract.sequence
    keep = list(dict.fromkeys(keep))
    numeric = width if contract.task == "regression" else len(contract.classes)
    writer = _writer(out, keep, contract.output_columns(width), numeric)
    batches = read_windows(data, seq, batch_size, input_format, keep)
    n, ok = 0, False
    writer.open()
    try:
        for x, kept in batches:
            writer.write(runner(x), kept)
            n += len(x)
            if progress:
                progress(n)
        if n == 0:
            raise DataError(f"no complete window: the model takes {seq.window} consecutive "
                            f"rows per prediction, and the data has fewer",
                            Location(os.fspath(data)), code="data-empty")
        ok = True
    finally:
        batches.close()
        writer.close(ok)
    return n


def series_and_targets(data, contract: Contract, batch_size: int
                       ) -> tuple[np.ndarray, object, np.ndarray | None]:
    """For evaluation: every window of ``data`` that has a target ``horizon`` rows after it.

    Returns (windows, the table of target cells, their rows) for a table, or
    (windows, y, None) for an .npz of x and y.
    """
    seq = contract.sequence
    name = os.fspath(data)
    if _array_source(data, input_format(data)) == "npz":
        from dlspec.data.images import _npz_arrays

        x, y = _npz_arrays(name, ("x", "y"), 1 << 34)
        _check_windows(x, seq, name)
        return x.astype(np.float32), y.reshape(len(y), -1)[:, 0] if y.ndim == 2 else y, None
    if not seq.columns:
        raise UsageError(f"{data}: this model was trained on arrays; evaluate it on an .npz "
                         "holding x (windows) and y (targets)", code="usage")
    numbers = list(seq.columns) + ([contract.target] if contract.task == "regression" else [])
    from dlspec.data.table import Table

    parts = list(read_tables(data, [*seq.columns, contract.target], batch_size,
                             numbers=numbers))
    table = Table(parts[0].source, parts[0].columns,
                  {c: np.concatenate([p.cells[c] for p in parts]) for c in parts[0].columns},
                  np.concatenate([p.lines for p in parts]), parts[0].by_row, parts[0].text)
    values = np.stack([table.numeric(c).astype(np.float32) for c in seq.columns], axis=1)
    n = max(len(table) - seq.window - seq.horizon + 1, 0)
    rows = np.arange(n, dtype=np.int64) + seq.window - 1 + seq.horizon
    return sliding_windows(values, seq.window)[:n], table, rows
