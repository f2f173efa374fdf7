"""Tables of raw cells: CSV files read whole or in chunks, and the checks on their values.

Cells stay as read until a consumer asks for numbers (``Table.numeric``) or
categories (``Table.strings``), so one reader serves training, categorical
encoding and prediction. Every problem with a file's content is a located
``DataError``, never a traceback.

CSV is read in blocks of whole lines. A block without double quotes is split
with ``str`` methods after a NumPy check that every line has the header's
field count; a block that fails the check, and everything from the first
double quote on, goes through the ``csv`` module, which locates each problem
exactly. Both paths give the same cells and line numbers. Other sources (JSON
Lines, NumPy and Parquet files: ``dlspec.runtime.readers``) fill the same
Table with typed arrays or raw values.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import io
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO

import numpy as np

from dlspec.errors import DataError, Location

_HEADER_SHOWN = 20  # header names listed in a missing-column message
_BLOCK = 4 << 20  # bytes read at a time; memory stays a few times this
_SLOW_BATCH = 16_384  # rows per batch handed on from the csv module
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\x0b\x0c\x1c\x1d\x1e\x1f"  # ASCII that str.strip removes, besides \r\n
MISSING = "missing value"


@dataclass
class Table:
    """Raw cells of some rows of a file.

    ``cells`` maps each column to an array: for CSV an object array of
    whitespace-stripped strings (``text`` is True); for other sources a typed
    array (NaN is a missing number) or an object array of raw values (None is
    missing). ``lines`` holds the 1-based file line where each row starts, or,
    when ``by_row`` is True (NumPy and Parquet files), the 0-based row index.
    """

    source: str
    columns: list[str]
    cells: dict[str, np.ndarray]
    lines: np.ndarray
    by_row: bool = False
    text: bool = True

    def __len__(self) -> int:
        return len(self.lines)

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
            return self._floats(column, cells.astype(np.float64), lines, missing)
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
             max_rows: int | None = None) -> Table:
    """Read a UTF-8 CSV file (header row first) into a Table.

    Args:
        columns: keep only these columns (the Table keeps header order); a
            column the header lacks is an error.
        max_rows: stop after this many data rows.
    """
    if max_rows is not None and max_rows < 0:
        raise ValueError(f"max_rows must be >= 0, got {max_rows}")
    chunks = _chunks(os.fspath(path), None, columns, max_rows, ())
    try:
        return next(chunks)
    finally:
        chunks.close()


def iter_csv(path: str | os.PathLike, chunk_rows: int, *,
             columns: Sequence[str] | None = None,
             numbers: Sequence[str] = ()) -> Iterator[Table]:
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
    return _chunks(os.fspath(path), None, columns, chunk_rows, numbers)


def iter_csv_stream(raw: BinaryIO, source: str, chunk_rows: int, *,
                    columns: Sequence[str] | None = None,
                    numbers: Sequence[str] = ()) -> Iterator[Table]:
    """``iter_csv`` over an open binary stream (standard input), named ``source`` in errors."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return _chunks(source, raw, columns, chunk_rows, numbers)


def _chunks(source: str, raw: BinaryIO | None, columns: Sequence[str] | None,
            chunk_rows: int | None, numbers: Sequence[str]) -> Iterator[Table]:
    """Tables of ``chunk_rows`` rows (all rows in one when None); see ``iter_csv``."""
    own = raw is None
    if own:
        try:
            raw = open(source, "rb")  # noqa: SIM115 (closed below)
        except OSError as e:
            raise _unreadable(source, e) from None
    kept: list[tuple[int, str]] = []

    def plan(header_line: int, header: list[str]) -> list[tuple[int, bool]]:
        names = header if columns is None else list(dict.fromkeys(columns))
        missing = [n for n in names if n not in header]
        if missing:
            raise missing_columns_error(source, header, missing, header_line)
        kept.extend((i, n) for i, n in enumerate(header) if n in names)
        return [(i, n in numbers) for i, n in kept]

    parsed = _parse(raw, source, plan)
    try:
        def table(cols: list[np.ndarray], lines: np.ndarray, start: int, stop: int) -> Table:
            return Table(source, [n for _, n in kept],
                         {n: c[start:stop] for (_, n), c in zip(kept, cols, strict=True)},
                         lines[start:stop])

        first = next(parsed, None)  # runs plan(): the header is read and checked
        pending: list[list[np.ndarray]] = [[np.empty(0, dtype=object)] for _ in kept]
        pending_lines = [np.empty(0, dtype=np.int64)]
        if chunk_rows == 0:  # read_csv(max_rows=0): the header only
            yield table([p[0] for p in pending], pending_lines[0], 0, 0)
            return
        count, yielded = 0, False
        for lines, new in chain([first] if first else [], parsed):
            for p, c in zip(pending, new, strict=True):
                p.append(c)
            pending_lines.append(lines)
            count += len(lines)
            if chunk_rows is None or count < chunk_rows:
                continue
            cols = [_concat(p) for p in pending]
            lines = np.concatenate(pending_lines)
            full = count - count % chunk_rows
            for start in range(0, full, chunk_rows):
                yield table(cols, lines, start, start + chunk_rows)
            yielded = True
            # copies, so that the joined arrays go when the consumer drops its tables
            pending, pending_lines = [[c[full:].copy()] for c in cols], [lines[full:].copy()]
            count -= full
        if count or not yielded:
            yield table([_concat(p) for p in pending], np.concatenate(pending_lines), 0, count)
    finally:
        parsed.close()
        if own:
            raw.close()


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """One column from its blocks; text and float64 blocks mix into an object array."""
    parts = [p for p in parts if len(p)] or parts[:1]
    if len({p.dtype for p in parts}) > 1:
        parts = [p.astype(object) for p in parts]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _parse(raw: BinaryIO, source: str, plan) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Batches ``(lines, one array per kept column)`` of the file's data rows.

    ``plan(header_line, header)`` is called once the header is read; it checks
    the header and returns ``(index, numeric)`` for each column to keep.
    """
    blocks = _blocks(raw, source)
    width, kept = None, []
    for block, line in blocks:
        if b'"' in block or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n")):
            # A quoted field may span blocks, and a lone \r ends a line for the csv
            # module: the csv module reads everything from here on.
            width = yield from _parse_slow(chain([(block, line)], blocks), width, kept,
                                           source, plan)
            break
        if width is None:
            found = _fast_header(block, line, source)
            if found is None:
                continue
            header_line, header, skip = found
            width = len(header)
            kept = plan(header_line, header)
            line += block.count(b"\n", 0, skip)
            block = block[skip:]
            if not block:
                continue
        batch = None if b"\0" in block else _fast_block(block, line, width, kept)
        if batch is None:  # blank lines or a wrong field count: no quotes, so this block alone
            yield from _parse_slow(iter([(block, line)]), width, kept, source, plan)
        else:
            yield batch
    if width is None:
        raise DataError("the file has no header row", Location(source), code="data-header")


def _blocks(raw: BinaryIO, source: str) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole lines, checked to be UTF-8 (BOM removed), with the line each starts on."""
    line, carry, bom = 1, b"", None
    while True:
        try:
            data = raw.read(_BLOCK)
        except OSError as e:
            raise _unreadable(source, e) from None
        eof = not data
        buf = carry + data if carry else data
        del data
        if not eof:
            cut = buf.rfind(b"\n") + 1
            if cut == 0:  # a line longer than a block: read on
                carry = buf
                continue
            block, carry = buf[:cut], buf[cut:]
        else:
            block, carry = buf, b""
        del buf  # one copy of the block in memory, not three
        if bom is None:
            bom = block.startswith(_BOM)
            block = block[len(_BOM):] if bom else block
        if not block:
            return
        if not block.isascii():
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as e:
                start = block.rfind(b"\n", 0, e.start) + 1
                at = block.count(b"\n", 0, e.start)
                col = e.start - start + 1 + (len(_BOM) if bom and line + at == 1 else 0)
                raise DataError(f"the file is not valid UTF-8 (byte 0x{block[e.start]:02x}); "
                                "save it with UTF-8 encoding", Location(source, line + at, col),
                                code="data-encoding") from None
        yield block, line
        line += block.count(b"\n")
        if eof:
            return


def _fast_header(block: bytes, line: int, source: str) -> tuple[int, list[str], int] | None:
    """(line, names, byte after the header line) of the first non-blank line, else None."""
    pos = 0
    while pos < len(block):
        end = block.find(b"\n", pos)
        end = len(block) if end < 0 else end + 1
        row = block[pos:end].decode("utf-8").rstrip("\r\n")
        if row.strip():
            header = [name.strip() for name in row.split(",")]
            _check_header(header, source, line)
            return line, header, end
        pos, line = end, line + 1
    return None


def _fast_block(block: bytes, line: int, width: int,
                kept: list[tuple[int, bool]]) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """The batch of a block without quotes, lone \r or NUL, cut by byte positions; None when
    the csv module must read it (a blank line, a wrong field count, a field over the limit)."""
    u = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(u == 10)
    if not block.endswith(b"\n"):
        ends = np.append(ends, len(u))
    n = len(ends)
    starts = np.empty(n, dtype=np.int64)
    starts[0], starts[1:] = 0, ends[:-1] + 1
    stops = ends - (u[np.maximum(ends - 1, 0)] == 13)  # before a \r\n's \r
    if (stops <= starts).any() or (stops - starts).max() > csv.field_size_limit():
        return None
    if width == 1 and b"," in block:
        return None
    if width > 1:
        commas = np.flatnonzero(u == 44)
        if len(commas) != n * (width - 1) or not np.array_equal(
                np.searchsorted(commas, ends), np.arange(1, n + 1) * (width - 1)):
            return None  # some line has too many fields or too few
        commas = commas.reshape(n, width - 1)
    ascii_only = block.isascii()
    strip = not ascii_only or _needs_strip(block)
    cols = []
    for i, numeric in kept:
        first = starts if i == 0 else commas[:, i - 1] + 1
        last = stops if i == width - 1 else commas[:, i]
        cells = _gather(block, u, first, last)
        if numeric and cells.dtype.kind == "u":
            values = _decimals(cells, last - first)
            if values is None:
                with contextlib.suppress(ValueError):
                    values = cells.view(f"S{cells.shape[1]}").reshape(-1).astype(np.float64)
            if values is not None and np.isfinite(values).all():
                cols.append(values)
                continue
        if cells.dtype.kind == "u" and ascii_only:
            cols.append(_ascii_text(cells.view(f"S{cells.shape[1]}").reshape(-1), strip))
        else:
            if cells.dtype.kind == "u":
                cells = cells.view(f"S{cells.shape[1]}").reshape(-1)
            cells = [c.decode("utf-8") for c in cells.tolist()]
            cols.append(np.array([c.strip() for c in cells] if strip else cells, dtype=object))
    return np.arange(line, line + n, dtype=np.int64), cols


def _gather(block: bytes, u: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The fields ``block[first:last]``, left-aligned in a (rows, longest) uint8 matrix padded
    with zero bytes; long fields (a large matrix) come as an object array of bytes instead."""
    lengths = last - first
    width = max(int(lengths.max(initial=0)), 1)
    if width > 64:
        return np.array([block[a:b] for a, b in zip(first.tolist(), last.tolist(),
                                                      strict=True)], dtype=object)
    index = first[:, None] + np.arange(width)
    np.minimum(index, len(u) - 1, out=index)
    out = u[index]
    out[np.arange(width) >= lengths[:, None]] = 0
    return out


def _ascii_text(cells: np.ndarray, strip: bool) -> np.ndarray:
    """Fixed-width ASCII bytes as an object array of str. A column with few distinct
    values (categories) shares one str object per value: less memory, less work."""
    distinct, index = np.unique(cells, return_inverse=True)
    few = len(distinct) <= len(cells) // 4
    text = (distinct if few else cells).astype(f"U{cells.dtype.itemsize}")
    text = (np.strings.strip(text) if strip else text).astype(object)
    return text[index] if few else text


_DIGITS = 15  # decimal digits a float64 holds exactly


def _decimals(cells: np.ndarray, lengths: np.ndarray) -> np.ndarray | None:
    """Fields of the form ``-?digits(.digits)?`` (at most 15 digits) as float64, or None.

    m / 10**k with both exact is the correctly rounded value, so this equals
    ``float(field)`` bit for bit (the classic fast path of decimal parsing).
    """
    n, width = cells.shape
    inside = np.arange(width) < lengths[:, None]
    digit = (cells >= 48) & (cells <= 57)
    dot = cells == 46
    neg = cells[:, 0] == 45
    sign_at = np.zeros_like(inside)
    sign_at[:, 0] = neg
    n_digits = digit.sum(axis=1)
    if ((inside & ~(digit | dot | sign_at)).any() or (dot.sum(axis=1) > 1).any()
            or (n_digits == 0).any() or (n_digits > _DIGITS).any()):
        return None
    m = np.zeros(n, dtype=np.int64)
    for j in range(width):
        d = digit[:, j]
        m[d] = m[d] * 10 + (cells[d, j] - 48)
    has_dot = dot.any(axis=1)
    scale = np.where(has_dot, lengths - 1 - np.argmax(dot, axis=1), 0)
    values = m / np.power(10.0, scale)
    values[neg] *= -1
    return values


_STRIP_TABLE = bytes(int(b in _WHITESPACE) for b in range(256))  # 1 where whitespace


def _needs_strip(block: bytes) -> bool:
    """Whether some field may start or end with whitespace (ASCII; str.strip's idea of it)."""
    if len(block.translate(None, _WHITESPACE)) == len(block):
        return False
    u = np.frombuffer(block, dtype=np.uint8)
    ws = np.flatnonzero(np.frombuffer(block.translate(_STRIP_TABLE), dtype=np.uint8))
    edge = np.zeros(256, dtype=bool)
    edge[[10, 13, 44]] = True
    before = edge[u[np.maximum(ws - 1, 0)]] | (ws == 0)
    after = edge[u[np.minimum(ws + 1, len(u) - 1)]] | (ws == len(u) - 1)
    return bool((before | after).any())


def _parse_slow(pieces: Iterator[tuple[bytes, int]], width: int | None,
                kept: list[tuple[int, bool]], source: str, plan) -> Iterator:
    """``_parse``'s batches from the csv module, over blocks that end at line ends.

    Reads the header first when ``width`` is None; returns the header's width
    (None when there is no header).
    """
    first = next(pieces, None)
    if first is None:
        return width
    offset = first[1] - 1  # file line before the first piece
    reader = csv.reader(chain.from_iterable(io.StringIO(b.decode("utf-8"), newline="")
                                            for b, _ in chain([first], pieces)))
    end = 0  # last physical line consumed
    rows: list[list[str]] = []
    lines: list[int] = []

    def batch():
        cols = [np.array([r[i].strip() for r in rows], dtype=object) for i, _ in kept]
        return np.array(lines, dtype=np.int64), cols

    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise DataError(f"malformed CSV: {e}", Location(source, offset + reader.line_num),
                            code="data-row") from None
        start, end = offset + end + 1, reader.line_num
        if not row:  # csv yields [] for an empty line
            continue
        if width is None:
            if len(row) == 1 and not row[0].strip():
                continue
            header = [name.strip() for name in row]
            _check_header(header, source, start)
            width = len(header)
            kept[:] = plan(start, header)
            continue
        if len(row) != width:
            if width > 1 and len(row) == 1 and not row[0].strip():
                continue  # a whitespace-only line
            raise DataError(f"expected {width} fields, got {len(row)}",
                            Location(source, start), code="data-row")
        rows.append(row)
        lines.append(start)
        if len(lines) == _SLOW_BATCH:
            yield batch()
            rows, lines = [], []
    if lines:
        yield batch()
    return width


def _check_header(header: list[str], source: str, line: int) -> None:
    seen: dict[str, int] = {}
    for pos, name in enumerate(header, 1):
        if not name:
            raise DataError(f"header column {pos} has no name; every column needs one",
                            Location(source, line), code="data-header")
        if name in seen:
            raise DataError(f"column {name!r} appears twice in the header "
                            f"(columns {seen[name]} and {pos})",
                            Location(source, line), code="data-header")
        seen[name] = pos


def _unreadable(source: str, e: OSError) -> DataError:
    reason = e.strerror or str(e)
    return DataError(f"cannot read data file: {reason}", Location(source), code="data-file")
