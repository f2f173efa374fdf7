"""Tables of raw cells: CSV files read whole or in chunks, and the checks on their values.

Cells stay as read until a consumer asks for numbers (``Table.numeric``) or
categories (``Table.strings``), so one reader serves training, categorical
encoding and prediction. Every problem with a file's content is a located
``DataError``, never a traceback.

CSV is read in blocks of whole lines (``dlspec.data.csvparse``); a whole file's
blocks are copied into arrays sized once from the file's length, so a large table
is held once, never as a list of blocks joined at the end. With pyarrow installed,
a whole file of 8 MiB or more is read by pyarrow's reader when it reads it exactly
as this one does (``dlspec.data.arrowcsv``). Other sources (JSON Lines, NumPy and
Parquet files: ``dlspec.runtime.readers``) fill the same Table with typed arrays or
raw values.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import BinaryIO

import numpy as np

from dlspec.data import arrowcsv
from dlspec.data.csvparse import (
    CSV,
    Codes,
    Dialect,
    cells_of,
    narrowed,
    parse,
    unreadable,
)
from dlspec.errors import DataError, Location

_HEADER_SHOWN = 20  # header names listed in a missing-column message
_STREAM_CODES = 1 << 16  # distinct cells of a column a stream (iter_csv) codes at most
MISSING = "missing value"


class Cells(Mapping):
    """A table's columns by name: arrays, and (for a table read ``narrow``) category columns
    held as their codes, whose object array of cells is made on first access and kept.
    A training table's category columns are read through ``Table.codes`` only, so at 10M
    rows each stays a byte per row instead of an 8-byte pointer per row."""

    def __init__(self, arrays: dict[str, np.ndarray],
                 coded: dict[str, tuple[np.ndarray, list[str]]] | None = None,
                 order: Sequence[str] | None = None) -> None:
        self._arrays, self._coded = dict(arrays), dict(coded or {})
        names = [*self._arrays, *self._coded]
        self._names = [n for n in order if n in names] if order is not None else names

    def __getitem__(self, name: str) -> np.ndarray:
        cells = self._arrays.get(name)
        if cells is None:
            codes, values = self._coded[name]  # KeyError for a column it lacks
            cells = self._arrays[name] = cells_of(codes, values)
            del self._coded[name]
        return cells

    def __contains__(self, name) -> bool:
        return name in self._arrays or name in self._coded

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def select(self, names: Sequence[str]) -> Cells:
        """These columns only (arrays shared, codes kept as codes)."""
        return Cells({n: a for n, a in self._arrays.items() if n in names},
                     {n: c for n, c in self._coded.items() if n in names}, self._names)

    def take(self, rows: np.ndarray) -> Cells:
        """The cells of ``rows`` (codes kept as codes)."""
        return Cells({n: a[rows] for n, a in self._arrays.items()},
                     {n: _compact(codes[rows], values)
                      for n, (codes, values) in self._coded.items()}, self._names)

    def coded(self, name: str) -> tuple[np.ndarray, list[str]] | None:
        """A column still held as codes: ``(codes, values)``; else None."""
        return self._coded.get(name)


@dataclass
class Table:
    """Raw cells of some rows of a file.

    ``cells`` maps each column to an array: for CSV an object array of
    whitespace-stripped strings (``text`` is True; a table read ``narrow`` may hold
    numbers as float32 and categories as codes, see ``read_csv`` and ``Cells``); for
    other sources a typed array (NaN is a missing number) or an object array of raw
    values (None is missing). ``lines`` holds the 1-based file line where each row
    starts, or, when ``by_row`` is True (NumPy and Parquet files), the 0-based row index.
    """

    source: str
    columns: list[str]
    cells: Mapping[str, np.ndarray]
    lines: np.ndarray
    by_row: bool = False
    text: bool = True
    index: np.ndarray | None = None  # see ``keep``
    _codes: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.lines)

    def take(self, rows: np.ndarray) -> Table:
        """The table of ``rows`` only (their file lines kept, for messages)."""
        cells = self.cells.take(rows) if isinstance(self.cells, Cells) else \
            {c: v[rows] for c, v in self.cells.items()}
        return Table(self.source, self.columns, cells, self.lines[rows], self.by_row,
                     self.text)

    def select(self, columns: Sequence[str]) -> Table:
        """The table of these columns only (its arrays and codes shared, not copied)."""
        keep = [c for c in self.columns if c in columns]
        cells = self.cells.select(keep) if isinstance(self.cells, Cells) else \
            {c: self.cells[c] for c in keep}
        return Table(self.source, keep, cells, self.lines, self.by_row, self.text, self.index,
                     {c: v for c, v in self._codes.items() if c in keep})

    def keep(self, rows: np.ndarray) -> Table:
        """The table of ``rows`` only, still addressed by this table's row numbers through
        ``positions`` (``index`` holds them, sorted): what a dataset keeps of a large table
        once its examples are prepared."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        kept = self.take(rows)
        kept.index = rows if self.index is None else self.index[rows]
        kept.cells = {c: v.astype(np.float64) if v.dtype == np.float32 else v
                      for c, v in kept.cells.items()}  # read narrowed: its float64 values
        return kept

    def codes(self, column: str) -> tuple[np.ndarray, list[str]] | None:
        """``(code of each row, the distinct cells)`` of a CSV text column: ``values[code]``
        is a row's cell; each distinct cell appears once, in no particular order. The
        readers give them for category columns from their blocks' own (a lookup per
        distinct cell of a block); otherwise they are computed once per table and column.
        A category column's rows are looked up once for the fit, every split and the
        target, not once per use. None for other columns (their cells go through
        ``strings``)."""
        if column in self._codes:
            return self._codes[column]
        if isinstance(self.cells, Cells) and self.cells.coded(column) is not None:
            self._codes[column] = self.cells.coded(column)
            return self._codes[column]
        cells = self.cells.get(column)
        if cells is None or cells.dtype.kind != "O" or not self.text:
            return None
        as_list = cells.tolist()
        values = list(dict.fromkeys(as_list))
        if not all(type(v) is str for v in values):  # noqa: E721 - a float64 block mixed in
            return None
        lookup = {v: i for i, v in enumerate(values)}
        codes = np.fromiter(map(lookup.__getitem__, as_list), dtype=np.int32,
                            count=len(as_list))
        self._codes[column] = (codes, values)
        return self._codes[column]

    def positions(self, rows: np.ndarray) -> np.ndarray:
        """Where the rows numbered ``rows`` (of the table ``keep`` was called on) are here."""
        if self.index is None:
            return rows
        at = np.searchsorted(self.index, rows)
        if not (at < len(self.index)).all() or not np.array_equal(self.index[at], rows):
            raise KeyError("rows not kept in this table")
        return at

    def error(self, message: str, line, code: str) -> DataError:
        """A DataError at a row: ``file:17: message``, or ``file: row 17: message``."""
        if self.by_row:
            return DataError(f"row {int(line)}: {message}", Location(self.source), code=code)
        return DataError(message, Location(self.source, int(line)), code=code)

    def _column(self, column: str, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if column not in self.cells:
            raise KeyError(f"{self.source} has no column {column!r}")
        cells, lines = self.cells[column], self.lines
        if rows is not None:
            cells, lines = cells[rows], lines[rows]
        return cells, lines

    def numeric(self, column: str, rows: np.ndarray | None = None, *,
                missing: str = "error") -> np.ndarray:
        """The column's values (of ``rows``, default all) as float64.

        ``missing``: "error" raises at the first missing cell; "nan" gives NaN
        there. Raises DataError (code ``data-value``) at the first unparsable or
        non-finite cell, and (code ``data-type``) for values of the wrong type:
        strings in a typed array, objects or lists from JSON. Booleans count as 0/1.
        """
        cells, lines = self._column(column, rows)
        kind = cells.dtype.kind
        if kind in "iub":
            return cells.astype(np.float64)
        if kind == "f":
            return self._floats(column, cells.astype(np.float64, copy=rows is None), lines,
                                missing)
        if kind != "O":
            raise DataError(f"column {column!r}: expected numbers, got {_dtype_name(cells.dtype)}",
                            Location(self.source), code="data-type")
        with contextlib.suppress(ValueError, TypeError):
            values = cells.astype(np.float64)
            if np.isfinite(values).all():
                return values
        if missing == "nan" and self.text:  # CSV with empty cells: parse the rest at once
            filled = cells != ""
            with contextlib.suppress(ValueError, TypeError):
                part = cells[filled].astype(np.float64)
                if np.isfinite(part).all():
                    values = np.full(len(cells), np.nan)
                    values[filled] = part
                    return values
        # Slow path: each cell on its own, to name the first bad one.
        out = np.empty(len(cells), dtype=np.float64)
        for i, (cell, line) in enumerate(zip(cells.tolist(), lines, strict=True)):
            value = _parse_number(cell)
            if isinstance(value, str):
                if value is MISSING and missing == "nan":
                    value = math.nan
                else:
                    code = "data-type" if value.startswith("expected") else "data-value"
                    raise self.error(f"column {column!r}: {value}", line, code)
            out[i] = value
        return out

    def _floats(self, column: str, values: np.ndarray, lines: np.ndarray,
                missing: str) -> np.ndarray:
        """A typed float column: NaN is a missing value, infinity an error."""
        nan = np.isnan(values)
        infinite = np.flatnonzero(np.isinf(values))
        gaps = np.flatnonzero(nan) if missing == "error" else infinite[:0]
        if len(infinite) and (not len(gaps) or infinite[0] < gaps[0]):
            i = infinite[0]
            raise self.error(f"column {column!r}: {float(values[i])!r} is not a finite number",
                             lines[i], "data-value")
        if len(gaps):
            raise self.error(f"column {column!r}: {MISSING}", lines[gaps[0]], "data-value")
        return values

    def strings(self, column: str, rows: np.ndarray | None = None) -> np.ndarray:
        """The column as an object array of category strings; "" where a value is missing.

        Integers (and integral floats) become their decimal text. Raises DataError
        (code ``data-type``) for other types: booleans, fractions, objects, lists.
        """
        cells, lines = self._column(column, rows)
        kind = cells.dtype.kind
        if kind == "O" and self.text:
            return cells
        if kind == "U":
            return np.strings.strip(cells).astype(object)
        if kind in "iu":
            return cells.astype(str).astype(object)
        if kind not in "OfS":
            raise DataError(f"column {column!r}: expected strings (categories), got "
                            f"{_dtype_name(cells.dtype)}", Location(self.source),
                            code="data-type")
        out = np.empty(len(cells), dtype=object)
        for i, (cell, line) in enumerate(zip(cells.tolist(), lines, strict=True)):
            text = _category_text(cell)
            if text is None:
                raise self.error(f"column {column!r}: expected a category (a string), got "
                                 f"{_describe(cell)}", line, "data-type")
            out[i] = text
        return out

    def first_non_numeric(self, column: str,
                          rows: np.ndarray | None = None) -> tuple[int, str] | None:
        """(file line, cell) of the first non-empty cell that is not a finite number."""
        cells, lines = self._column(column, rows)
        filled = cells != ""
        try:
            if np.isfinite(cells[filled].astype(np.float64)).all():
                return None
        except (ValueError, TypeError):
            pass
        for cell, line in zip(cells[filled], lines[filled], strict=True):
            if isinstance(_parse_number(cell), str):
                return int(line), str(cell)
        return None

    def is_numeric(self, column: str) -> bool:
        """Whether every non-empty cell of the column parses as a finite float."""
        return self.first_non_numeric(column) is None


def _parse_number(cell) -> float | str:
    """The cell as a finite float, or why it is not one (``MISSING`` when it is empty)."""
    if isinstance(cell, str):
        text = cell.strip()
        if text == "":
            return MISSING
        try:
            value = float(text)
        except ValueError:
            return f"cannot parse {_show(cell)} as a number"
        if not math.isfinite(value):
            return f"{_show(cell)} is not a finite number"
        return value
    if cell is None:
        return MISSING
    if isinstance(cell, (bool, int, float, np.number, np.bool_)):
        try:
            value = float(cell)
        except OverflowError:
            return f"{_show(str(cell))} is not a finite number"
        if math.isnan(value):
            return MISSING
        if not math.isfinite(value):
            return f"{value!r} is not a finite number"
        return value
    return f"expected a number, got {_describe(cell)}"


def _category_text(cell) -> str | None:
    """A raw value as category text ("" when missing); None when it cannot be one."""
    if isinstance(cell, str):
        return cell.strip()
    if isinstance(cell, bytes):
        try:
            return cell.decode("utf-8").strip()
        except UnicodeDecodeError:
            return None
    if cell is None:
        return ""
    if isinstance(cell, (bool, np.bool_)):
        return None
    if isinstance(cell, (int, np.integer)):
        return str(int(cell))
    if isinstance(cell, (float, np.floating)):
        if math.isnan(cell):
            return ""
        return str(int(cell)) if float(cell).is_integer() else None
    return None


def _describe(value) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (bool, np.bool_)):
        return "a boolean"
    if isinstance(value, (int, float, np.number)):
        return repr(value.item() if isinstance(value, np.number) else value)
    return type(value).__name__


def _dtype_name(dtype: np.dtype) -> str:
    kinds = {"U": "strings", "S": "bytes", "b": "booleans", "c": "complex numbers",
             "M": "dates", "m": "time spans", "V": "records", "f": "numbers"}
    return f"{kinds.get(dtype.kind, 'values')} (dtype {dtype.str})"


def _show(cell: str, limit: int = 40) -> str:
    return repr(cell if len(cell) <= limit else cell[:limit] + "...")


def missing_columns_error(source: str, header: Sequence[str], missing: Sequence[str],
                          line: int = 1, has: str = "the header has") -> DataError:
    """The located error for columns a caller needs but the header lacks."""
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, header, n=1)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    shown = ", ".join(header[:_HEADER_SHOWN])
    if len(header) > _HEADER_SHOWN:
        shown += f", ... ({len(header)} columns in all)"
    return DataError(f"missing column(s) {', '.join(parts)} ({has}: {shown})",
                     Location(source, line), code="data-columns")


def require_columns(table: Table, names: Sequence[str]) -> None:
    """Raise the located missing-column error unless ``table`` has all ``names``."""
    missing = [n for n in names if n not in table.cells]
    if missing:
        raise missing_columns_error(table.source, table.columns, missing,
                                    0 if table.by_row else 1)


def read_csv(path: str | os.PathLike, *, columns: Sequence[str] | None = None,
             max_rows: int | None = None, dialect: Dialect = CSV,
             numbers: Sequence[str] = (), narrow: bool = False) -> Table:
    """Read a UTF-8 CSV file (header row first, unless ``dialect`` says otherwise) into a Table.

    Args:
        columns: keep only these columns (the Table keeps header order); a
            column the header lacks is an error.
        max_rows: stop after this many data rows.
        dialect: delimiter, quoting and header of the file (default: CSV with a header).
        numbers: columns the caller reads only as numbers, parsed once here where a
            block's cells all parse (see ``iter_csv``).
        narrow: the compact form of a table a caller reads through ``numeric`` and
            ``codes`` (a training table): a number column may be held as float32 while
            every value is a float32 exactly (integers below 2**24, say), and
            ``numeric`` gives the same float64 values, bit for bit, from half the memory
            (``keep`` widens them back); a category column may be held as its codes, its
            cells made on first access (``Cells``); the lines come as int32.
    """
    if max_rows is not None and max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    source = os.fspath(path)
    if max_rows is None and arrowcsv.available() and _size(source) >= arrowcsv.MIN_BYTES:
        head = read_csv(source, columns=columns, max_rows=0, dialect=dialect)  # its checks
        got = arrowcsv.read(source, head.columns, [n for n in numbers if n in head.cells],
                            dialect, narrow)
        if got is not None:
            cells, lines, codes = got
            return Table(source, head.columns, Cells(
                cells, {c: v for c, v in codes.items() if c not in cells}, head.columns),
                lines, _codes=codes)
    chunks = _chunks(source, None, columns, max_rows, numbers, dialect, narrow)
    try:
        return next(chunks)
    finally:
        chunks.close()


def iter_csv(path: str | os.PathLike, chunk_rows: int, *,
             columns: Sequence[str] | None = None,
             numbers: Sequence[str] = (), dialect: Dialect = CSV) -> Iterator[Table]:
    """Stream the file as Tables of at most ``chunk_rows`` rows each.

    Same checks as ``read_csv``; line numbers run on across chunks. Always
    yields at least one Table (an empty one when the file has no data rows),
    so a caller can check the columns of a header-only file.

    ``numbers`` names columns the caller will only read with ``Table.numeric``:
    where every cell of a block parses as a finite number, their cells come as
    float64 (much faster, and the same numbers); elsewhere they stay text.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return _chunks(os.fspath(path), None, columns, chunk_rows, numbers, dialect)


def iter_csv_stream(raw: BinaryIO, source: str, chunk_rows: int, *,
                    columns: Sequence[str] | None = None,
                    numbers: Sequence[str] = (), dialect: Dialect = CSV) -> Iterator[Table]:
    """``iter_csv`` over an open binary stream (standard input), named ``source`` in errors."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return _chunks(source, raw, columns, chunk_rows, numbers, dialect)


def _chunks(source: str, raw: BinaryIO | None, columns: Sequence[str] | None,
            chunk_rows: int | None, numbers: Sequence[str],
            dialect: Dialect = CSV, narrow: bool = False) -> Iterator[Table]:
    """Tables of ``chunk_rows`` rows (all rows in one when None); see ``iter_csv``."""
    own = raw is None
    if own:
        try:
            raw = open(source, "rb")  # noqa: SIM115 (closed below)
        except OSError as e:
            raise unreadable(source, e) from None
    kept: list[tuple[int, str]] = []

    def plan(header_line: int, header: list[str]) -> list[tuple[int, bool]]:
        named = list(dialect.columns or header)
        if dialect.header and header != named:
            at = next((i for i, (a, b) in enumerate(zip(header, named, strict=False)) if a != b),
                      min(len(header), len(named)))
            found = repr(header[at]) if at < len(header) else "nothing"
            raise DataError(f"the header has {len(header)} column(s), the data format's "
                            f"columns name {len(named)}; column {at + 1} is {found} in the "
                            f"header, {named[at]!r} in the format" if at < len(named) else
                            f"the header has {len(header)} column(s), the data format's "
                            f"columns name {len(named)} (column {at + 1}: {header[at]!r})",
                            Location(source, header_line), code="data-header")
        names = header if columns is None else list(dict.fromkeys(columns))
        missing = [n for n in names if n not in header]
        if missing:
            raise missing_columns_error(source, header, missing, header_line)
        kept.extend((i, n) for i, n in enumerate(header) if n in names)
        if chunk_rows == 0:  # the header is all the caller wants: parse no row
            raise _HeaderRead
        return [(i, n in numbers) for i, n in kept]

    parsed = parse(raw, source, plan, dialect)
    coders: dict[int, Codes] = {}  # a text column's vocabulary over the whole file
    try:
        def table(cols: list[np.ndarray], lines: np.ndarray, start: int, stop: int,
                  codes: dict[int, np.ndarray | None] | None = None) -> Table:
            known = {}
            for k, c in (codes or {}).items():
                if c is not None and k in coders:
                    known[kept[k][1]] = _compact(c[start:stop], coders[k].values)
            return Table(source, [n for _, n in kept],
                         {n: c[start:stop] for (_, n), c in zip(kept, cols, strict=True)},
                         lines[start:stop], _codes=known)

        def coded(new: list[np.ndarray], blocks: dict) -> list[np.ndarray | None]:
            """Each column's codes for the block (None: the block has none for it). A
            stream stops coding a column whose vocabulary outgrows _STREAM_CODES, so that
            its memory stays bounded over any length of input."""
            out = []
            for k in range(len(new)):
                coder = coders.setdefault(k, Codes()) if k in blocks else None
                if coder is None or (chunk_rows is not None
                                     and len(coder.lookup) > _STREAM_CODES):
                    out.append(None)
                else:
                    out.append(coder.block(blocks[k]))
            return out

        try:
            first = next(parsed, None)  # runs plan(): the header is read and checked
        except _HeaderRead:
            first = None
        pending: list[list[np.ndarray]] = [[np.empty(0, dtype=object)] for _ in kept]
        pending_codes: list[list[np.ndarray | None]] = [[np.empty(0, np.int32)]
                                                         for _ in kept]
        pending_lines = [np.empty(0, dtype=np.int64)]
        if chunk_rows == 0:  # read_csv(max_rows=0): the header only
            yield table([p[0] for p in pending], pending_lines[0], 0, 0)
            return
        if chunk_rows is None and first is not None:
            size = _file_size(raw)
            if size is not None:
                whole = _Filled(len(kept), _rows_in(size, raw.tell(), len(first[0])),
                                coders, narrow)
                for lines, new, blocks in chain([first], parsed):
                    whole.add(lines, new, coded(new, blocks))
                cols, lines, codes = whole.arrays()
                names = [n for _, n in kept]
                known = {names[k]: (c, coders[k].values) for k, c in enumerate(codes)
                         if c is not None}
                yield Table(source, names, Cells(
                    {n: c for n, c in zip(names, cols, strict=True) if c is not None},
                    {n: known[n] for n, c in zip(names, cols, strict=True) if c is None},
                    names), lines, _codes=known)
                return
        count, yielded = 0, False
        for lines, new, blocks in chain([first] if first else [], parsed):
            for p, c in zip(pending, new, strict=True):
                p.append(c)
            for p, c in zip(pending_codes, coded(new, blocks), strict=True):
                p.append(c)
            pending_lines.append(lines)
            count += len(lines)
            if chunk_rows is None or count < chunk_rows:
                continue
            cols, codes = _join(pending), _join_codes(pending_codes)
            lines = np.concatenate(pending_lines)
            full = count - count % chunk_rows
            for start in range(0, full, chunk_rows):
                yield table(cols, lines, start, start + chunk_rows, dict(enumerate(codes)))
            yielded = True
            # copies, so that the joined arrays go when the consumer drops its tables
            pending, pending_lines = [[c[full:].copy()] for c in cols], [lines[full:].copy()]
            pending_codes = [[None if c is None else c[full:].copy()] for c in codes]
            count -= full
        if count or not yielded:
            yield table(_join(pending), np.concatenate(pending_lines), 0, count,
                        dict(enumerate(_join_codes(pending_codes))))
    finally:
        parsed.close()
        if own:
            raw.close()


def _compact(codes: np.ndarray, values: list[str]) -> tuple[np.ndarray, list[str]]:
    """``Table.codes``' form of some rows' codes into a file's vocabulary ``values``: only
    the values those rows have."""
    present = np.flatnonzero(np.bincount(codes, minlength=len(values)))
    if len(present) == len(values):
        return codes, values
    remap = np.zeros(len(values), dtype=np.int32)
    remap[present] = np.arange(len(present), dtype=np.int32)
    return remap[codes], [values[i] for i in present]


def _join_codes(pending: list[list[np.ndarray | None]]) -> list[np.ndarray | None]:
    """Each column's codes from its blocks' (None when a block has none)."""
    out = []
    for k in range(len(pending)):
        parts = [p for p in pending[k] if p is None or len(p)] or pending[k][:1]
        out.append(None if any(p is None for p in parts) else
                   parts[0] if len(parts) == 1 else np.concatenate(parts))
        pending[k] = []
    return out


class _HeaderRead(Exception):  # noqa: N818 - not an error: stops the parse after the header
    """Raised by ``_chunks``'s plan when only the header was asked for."""


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _file_size(raw: BinaryIO) -> int | None:
    """The size of a regular file (None for a pipe or another stream)."""
    try:
        st = os.fstat(raw.fileno())
    except (OSError, AttributeError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _rows_in(size: int, read: int, rows: int) -> int:
    """The rows a file of ``size`` bytes likely holds, from the first ``read`` bytes' rows."""
    return int(size / max(read, 1) * rows * 1.02) + 1024


class _Filled:
    """A whole file's columns, each block copied into arrays sized once from the file's
    length (grown if the guess was short): no list of blocks joined at the end, which
    would hold the table twice and leave the blocks' memory behind in the heap. A text
    column's codes are kept the same way while every block has them; ``narrow`` keeps
    only the codes of such a column (its cells are made if a block comes without codes)
    and float32 for numbers that are float32 exactly."""

    def __init__(self, width: int, capacity: int, coders: dict[int, Codes],
                 narrow: bool = False) -> None:
        self.width, self.capacity, self.count, self.narrow = width, capacity, 0, narrow
        self.coders = coders
        self.cols: list[np.ndarray | None] = []  # None: held as codes only
        self.codes: list[np.ndarray | None] = []
        self.lines = np.empty(capacity, dtype=np.int64)

    def add(self, lines: np.ndarray, new: list[np.ndarray],
            codes: list[np.ndarray | None]) -> None:
        n, at = len(lines), self.count
        if not self.cols:
            self.codes = [None if c is None else np.empty(self.capacity, np.int32)
                          for c in codes]
            self.cols = [None if self.narrow and code is not None else
                         np.empty(self.capacity, dtype=np.float32 if self.narrow and
                                  c.dtype == np.float64 else c.dtype)
                         for c, code in zip(new, codes, strict=True)]
        if at + n > self.capacity:
            self.capacity = max(at + n, int(self.capacity * 1.5))
            self.cols = [None if c is None else _grown(c, self.capacity, at)
                         for c in self.cols]
            self.codes = [None if c is None else _grown(c, self.capacity, at)
                          for c in self.codes]
            self.lines = _grown(self.lines, self.capacity, at)
        for k, c in enumerate(new):
            if self.codes[k] is not None and codes[k] is None:
                # a block without codes: the cells so far are made, the table codes them
                if self.cols[k] is None:
                    self.cols[k] = np.empty(self.capacity, dtype=object)
                    self.cols[k][:at] = cells_of(self.codes[k][:at], self.coders[k].values)
                self.codes[k] = None
            if self.codes[k] is not None:
                self.codes[k][at:at + n] = codes[k]
            if self.cols[k] is None:
                continue
            if c.dtype == np.float64 and self.cols[k].dtype.kind == "f":
                self.cols[k] = narrowed(self.cols[k], at, c)
            else:
                if c.dtype != self.cols[k].dtype:  # text and number blocks: an object column
                    self.cols[k] = self.cols[k].astype(object)
                self.cols[k][at:at + n] = c
        self.lines[at:at + n] = lines
        self.count = at + n

    def arrays(self) -> tuple[list[np.ndarray | None], np.ndarray, list[np.ndarray | None]]:
        """``(columns (None: held as codes), lines, codes)``, trimmed to the rows read.
        ``narrow``: the lines as int32 (below 2**31) and the codes in the smallest integer
        type that holds them."""
        n = self.count
        trim = self.capacity - n > n // 8  # a guess well over: copy to size

        def fit(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[:n].copy() if trim else a[:n]

        last = int(self.lines[n - 1]) if n else 0
        lines = self.lines[:n].astype(np.int32) if self.narrow and last < 2**31 else \
            fit(self.lines)
        codes = [self.coders[k].smallest(c[:n]) if self.narrow and c is not None else fit(c)
                 for k, c in enumerate(self.codes)]
        return [fit(c) for c in self.cols], lines, codes


def _grown(a: np.ndarray, capacity: int, used: int) -> np.ndarray:
    out = np.empty(capacity, dtype=a.dtype)
    out[:used] = a[:used]
    return out


def _join(pending: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Each column from its blocks, the blocks let go column by column (the table at most
    one column larger than its cells, not twice their size)."""
    cols = []
    for k in range(len(pending)):
        cols.append(_concat(pending[k]))
        pending[k] = []
    return cols


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """One column from its blocks; text and float64 blocks mix into an object array."""
    parts = [p for p in parts if len(p)] or parts[:1]
    if len({p.dtype for p in parts}) > 1:
        parts = [p.astype(object) for p in parts]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


