"""Prediction inputs: CSV, JSON Lines, NumPy (.npy, .npz) and Parquet files, or standard input.

Every reader yields Tables of at most ``chunk_rows`` rows holding the asked-for
columns (at least one Table, so a header-only file still has its columns
checked). CSV, JSON Lines and Parquet (row batches) stream; a .npy is read
through a memory map; an .npz is loaded a column at a time after each array
header is checked against the size of its data, so a forged header cannot ask
for memory. Nothing is unpickled. Problems are located DataErrors: file and
line for text formats, file and 0-based row index ("row 17") for the others.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dlspec.data.csvparse import CSV, Dialect, unreadable
from dlspec.data.table import Table, iter_csv, iter_csv_stream, missing_columns_error
from dlspec.errors import DataError, Location, UsageError

INPUT_FORMATS = ("csv", "jsonl", "npy", "npz", "parquet")
STDIN = "-"
STDIN_NAME = "<stdin>"
_STREAMABLE = ("csv", "jsonl")
_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".npy": "npy",
               ".npz": "npz", ".parquet": "parquet", ".pq": "parquet"}
_BOM = b"\xef\xbb\xbf"


def input_format(data: str | os.PathLike, fmt: str | None = None) -> str:
    """The format to read ``data`` as: ``fmt`` if given, else by extension (CSV otherwise).

    Raises:
        UsageError: an unknown ``fmt``, or a binary format asked of standard input.
    """
    name = os.fspath(data)
    if fmt is not None and fmt not in INPUT_FORMATS:
        raise UsageError(f"--input-format {fmt}: use one of {', '.join(INPUT_FORMATS)}",
                         code="usage")
    if name == STDIN:
        if fmt not in (None, *_STREAMABLE):
            raise UsageError(f"--input-format {fmt}: standard input carries CSV or JSON Lines; "
                             f"pass a {fmt} file by its path", code="usage")
        return fmt or "csv"
    return fmt or _EXTENSIONS.get(Path(name).suffix.lower(), "csv")


def read_tables(data: str | os.PathLike, columns: Sequence[str], chunk_rows: int,
                fmt: str | None = None, *, numbers: Sequence[str] = (),
                keep: Sequence[str] = (), dialect: Dialect = CSV) -> Iterator[Table]:
    """Tables of at most ``chunk_rows`` rows with ``columns`` from ``data`` ("-": stdin).

    Args:
        numbers: columns the caller reads as numbers: a typed file must hold numbers
            there, and CSV may parse them early (see ``iter_csv``).
        keep: columns the caller also needs as read (never parsed early).
        dialect: how CSV input is written (the training data's, from the model).
    """
    fmt = input_format(data, fmt)
    columns = list(dict.fromkeys(columns))
    name = os.fspath(data)
    early = [c for c in numbers if c not in keep]
    if name == STDIN:
        raw = sys.stdin.buffer
        if fmt == "csv":
            return iter_csv_stream(raw, STDIN_NAME, chunk_rows, columns=columns,
                                   numbers=early, dialect=dialect)
        return _jsonl(raw, STDIN_NAME, columns, chunk_rows)
    readers = {"csv": lambda: iter_csv(name, chunk_rows, columns=columns, numbers=early,
                                       dialect=dialect),
               "jsonl": lambda: _jsonl_file(name, columns, chunk_rows),
               "npy": lambda: _npy(name, columns, chunk_rows),
               "npz": lambda: _npz(name, columns, chunk_rows),
               "parquet": lambda: _parquet(name, columns, chunk_rows, numbers)}
    return readers[fmt]()


def _object_array(values: list) -> np.ndarray:
    """A 1-D object array of ``values`` as they are (lists stay single cells)."""
    return np.fromiter(values, dtype=object, count=len(values))


# JSON Lines ----------------------------------------------------------------------------

def _jsonl_file(source: str, columns: list[str], chunk_rows: int) -> Iterator[Table]:
    try:
        raw = open(source, "rb")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise unreadable(source, e) from None
    with raw:
        yield from _jsonl(raw, source, columns, chunk_rows)


def _jsonl(raw: BinaryIO, source: str, columns: list[str],
           chunk_rows: int) -> Iterator[Table]:
    """One JSON object per line, keyed by column name; blank lines are skipped.

    A key an object lacks is a missing column (located at its line); ``null`` is
    a missing value.
    """
    values: dict[str, list] = {c: [] for c in columns}
    lines: list[int] = []
    yielded = False

    def table() -> Table:
        return Table(source, list(columns), {c: _object_array(v) for c, v in values.items()},
                     np.array(lines, dtype=np.int64), text=False)

    try:
        for number, text in enumerate(raw, 1):
            if number == 1 and text.startswith(_BOM):
                text = text[len(_BOM):]
            if not text.strip():
                continue
            row = _json_row(text, source, number)
            missing = [c for c in columns if c not in row]
            if missing:
                raise missing_columns_error(source, list(row), missing, number,
                                            has="the object has")
            for c in columns:
                values[c].append(row[c])
            lines.append(number)
            if len(lines) == chunk_rows:
                yield table()
                yielded = True
                values = {c: [] for c in columns}
                lines = []
    except OSError as e:
        raise unreadable(source, e) from None
    if lines or not yielded:
        yield table()


def _json_row(text: bytes, source: str, line: int) -> dict:
    text = text.rstrip(b"\r\n")
    try:
        row = json.loads(text)
    except UnicodeDecodeError as e:
        raise DataError(f"the file is not valid UTF-8 (byte 0x{text[e.start]:02x}); save it "
                        "with UTF-8 encoding", Location(source, line, e.start + 1),
                        code="data-encoding") from None
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", Location(source, line, e.colno),
                        code="data-row") from None
    except RecursionError:
        raise DataError("invalid JSON: nested too deeply", Location(source, line),
                        code="data-row") from None
    if not isinstance(row, dict):
        kind = "a list" if isinstance(row, list) else f"{json.dumps(row)[:40]}"
        raise DataError(f"expected a JSON object (one row per line, keyed by column name), "
                        f"got {kind}", Location(source, line), code="data-row")
    return row


# NumPy ---------------------------------------------------------------------------------

def _npy(source: str, columns: list[str], chunk_rows: int) -> Iterator[Table]:
    """A 1-D structured array with a field per column, read through a memory map."""
    try:
        # mmap: a header that promises more data than the file holds fails here,
        # before anything is allocated; allow_pickle=False refuses object fields.
        arr = np.load(source, mmap_mode="r", allow_pickle=False)
    except OSError as e:
        raise unreadable(source, e) from None
    except (ValueError, TypeError, EOFError) as e:
        raise DataError(f"not a readable .npy file: {e}", Location(source),
                        code="data-file") from None
    if arr.dtype.names is None or arr.ndim != 1:
        raise DataError(f"a .npy input must be a one-dimensional structured array with a "
                        f"field per column; got {arr.dtype.str} of shape {arr.shape} (save "
                        "columns with np.savez instead)", Location(source), code="data-file")
    names = list(arr.dtype.names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise missing_columns_error(source, names, missing, 0, has="the array has fields")
    for c in columns:
        if arr.dtype[c].shape:
            raise DataError(f"column {c!r}: expected one value per row, got shape "
                            f"{arr.dtype[c].shape}", Location(source), code="data-type")
    for start in range(0, max(len(arr), 1), chunk_rows):
        part = arr[start:start + chunk_rows]
        yield Table(source, list(columns), {c: np.array(part[c]) for c in columns},
                    np.arange(start, start + len(part), dtype=np.int64), by_row=True,
                    text=False)


def _npz(source: str, columns: list[str], chunk_rows: int) -> Iterator[Table]:
    """One 1-D array per column name, all of one length."""
    try:
        archive = np.load(source, allow_pickle=False)
    except OSError as e:
        raise unreadable(source, e) from None
    except (ValueError, TypeError, EOFError) as e:
        raise DataError(f"not a readable .npz file: {e}", Location(source),
                        code="data-file") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError("expected an .npz archive (np.savez) with one array per column",
                        Location(source), code="data-file")
    with archive:
        missing = [c for c in columns if c not in archive.files]
        if missing:
            raise missing_columns_error(source, list(archive.files), missing, 0,
                                        has="the archive has")
        arrays = {c: _npz_member(archive, c, source) for c in columns}
    sizes = {c: len(a) for c, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{c!r} {n}" for c, n in sizes.items())
        raise DataError(f"the columns differ in length: {shown}", Location(source),
                        code="data-row")
    n = next(iter(sizes.values()), 0)
    for start in range(0, max(n, 1), chunk_rows):
        stop = min(start + chunk_rows, n)
        yield Table(source, list(columns), {c: a[start:stop] for c, a in arrays.items()},
                    np.arange(start, stop, dtype=np.int64), by_row=True, text=False)


def _npz_member(archive, column: str, source: str) -> np.ndarray:
    """One column, its header checked against the bytes stored before it is read."""
    fmt = np.lib.format
    try:
        info = archive.zip.getinfo(f"{column}.npy")
        with archive.zip.open(info) as member:
            version = fmt.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
            data_bytes = info.file_size - member.tell()
    except (KeyError, ValueError, OSError, EOFError) as e:
        raise DataError(f"column {column!r}: not a readable array: {e}", Location(source),
                        code="data-file") from None
    where = f"column {column!r}: "
    if dtype.hasobject:
        raise DataError(where + "holds Python objects; dlspec reads plain arrays only (no "
                        "pickle)", Location(source), code="data-type")
    if len(shape) != 1:
        raise DataError(where + f"expected a one-dimensional array, got shape {shape}",
                        Location(source), code="data-type")
    if shape[0] * dtype.itemsize != data_bytes:
        raise DataError(where + f"the array header promises {shape[0] * dtype.itemsize} bytes "
                        f"but the archive holds {data_bytes}", Location(source),
                        code="data-file")
    try:
        return archive[column]
    except (ValueError, OSError, EOFError) as e:
        raise DataError(where + f"not a readable array: {e}", Location(source),
                        code="data-file") from None


# Parquet -------------------------------------------------------------------------------

def need_pyarrow(what: str) -> None:
    """Raise a clear error naming ``pip install pyarrow`` when pyarrow is absent."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UsageError(f"{what} needs pyarrow, which is not installed: pip install pyarrow",
                         code="usage") from None


def _parquet(source: str, columns: list[str], chunk_rows: int,
             numbers: Sequence[str]) -> Iterator[Table]:
    """Row batches of a Parquet file (a row group at a time at most)."""
    need_pyarrow(f"reading Parquet ({source})")
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(source)
    except OSError as e:
        if isinstance(e, FileNotFoundError | IsADirectoryError | PermissionError):
            raise unreadable(source, e) from None
        raise DataError(f"not a readable Parquet file: {e}", Location(source),
                        code="data-file") from None
    except Exception as e:  # noqa: BLE001 - pyarrow raises ArrowInvalid and others
        raise DataError(f"not a readable Parquet file: {e}", Location(source),
                        code="data-file") from None
    names = list(pf.schema_arrow.names)
    missing = [c for c in columns if c not in names]
    if missing:
        raise missing_columns_error(source, names, missing, 0, has="the file has")
    import pyarrow as pa

    for c in numbers:
        t = pf.schema_arrow.field(c).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_decimal(t) or pa.types.is_null(t)):
            raise DataError(f"column {c!r}: expected numbers, got Parquet type {t}",
                            Location(source), code="data-type")
    start, yielded = 0, False
    try:
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=list(columns)):
            n = batch.num_rows
            cells = {c: _arrow_column(batch.column(batch.schema.get_field_index(c)))
                     for c in columns}
            yield Table(source, list(columns), cells, np.arange(start, start + n,
                                                                dtype=np.int64),
                        by_row=True, text=False)
            start, yielded = start + n, True
    except OSError as e:
        raise DataError(f"cannot read the Parquet data: {e}", Location(source),
                        code="data-file") from None
    if not yielded:
        yield Table(source, list(columns), {c: np.empty(0, dtype=object) for c in columns},
                    np.empty(0, dtype=np.int64), by_row=True, text=False)


def _arrow_column(arr) -> np.ndarray:
    """Numbers as a NumPy array (nulls as NaN); anything else as an object array."""
    import pyarrow as pa

    t = arr.type
    if pa.types.is_dictionary(t):
        arr, t = arr.cast(t.value_type), t.value_type
    if pa.types.is_decimal(t):
        arr, t = arr.cast(pa.float64()), pa.float64()
    if pa.types.is_integer(t) or pa.types.is_floating(t) or \
            (pa.types.is_boolean(t) and arr.null_count == 0):
        return arr.to_numpy(zero_copy_only=False)
    return _object_array(arr.to_pylist())
