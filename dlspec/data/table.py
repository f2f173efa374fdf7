"""CSV tables of raw cell strings, read whole or in chunks.

Cells stay strings until a consumer asks for numbers (``Table.numeric``), so
one reader serves training, categorical encoding and prediction. Every problem
with a file's content is a located ``DataError``, never a traceback.
"""

from __future__ import annotations

import csv
import difflib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from dlspec.errors import DataError, Location

_HEADER_SHOWN = 20  # header names listed in a missing-column message


@dataclass
class Table:
    """Raw cells of some rows of a CSV file.

    ``cells`` maps each column to an object array of whitespace-stripped
    strings; ``lines`` holds the 1-based file line where each row starts.
    """

    source: str
    columns: list[str]
    cells: dict[str, np.ndarray]
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.lines)

    def _column(self, column: str, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if column not in self.cells:
            raise KeyError(f"{self.source} has no column {column!r}")
        cells, lines = self.cells[column], self.lines
        if rows is not None:
            cells, lines = cells[rows], lines[rows]
        return cells, lines

    def numeric(self, column: str, rows: np.ndarray | None = None) -> np.ndarray:
        """The column's values (of ``rows``, default all) as float64.

        Raises DataError (code ``data-value``) at the first empty, unparsable
        or non-finite cell.
        """
        cells, lines = self._column(column, rows)
        try:
            values = cells.astype(np.float64)
            if np.isfinite(values).all():
                return values
        except (ValueError, TypeError):
            pass
        # Slow path, only to find and name the first bad cell.
        out = np.empty(len(cells), dtype=np.float64)
        for i, (cell, line) in enumerate(zip(cells, lines, strict=True)):
            value = _parse_number(cell)
            if isinstance(value, str):
                raise DataError(f"column {column!r}: {value}", Location(self.source, int(line)),
                                code="data-value")
            out[i] = value
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


def _parse_number(cell: str) -> float | str:
    """The cell as a finite float, or a description of why it is not one."""
    if cell == "":
        return "missing value"
    try:
        value = float(cell)
    except ValueError:
        return f"cannot parse {_show(cell)} as a number"
    if not math.isfinite(value):
        return f"{_show(cell)} is not a finite number"
    return value


def _show(cell: str, limit: int = 40) -> str:
    return repr(cell if len(cell) <= limit else cell[:limit] + "...")


def missing_columns_error(source: str, header: Sequence[str], missing: Sequence[str],
                          line: int = 1) -> DataError:
    """The located error for columns a caller needs but the header lacks."""
    parts = []
    for name in missing:
        close = difflib.get_close_matches(name, header, n=1)
        parts.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    shown = ", ".join(header[:_HEADER_SHOWN])
    if len(header) > _HEADER_SHOWN:
        shown += f", ... ({len(header)} columns in all)"
    return DataError(f"missing column(s) {', '.join(parts)} (the header has: {shown})",
                     Location(source, line), code="data-columns")


def require_columns(table: Table, names: Sequence[str]) -> None:
    """Raise the located missing-column error unless ``table`` has all ``names``."""
    missing = [n for n in names if n not in table.cells]
    if missing:
        raise missing_columns_error(table.source, table.columns, missing)


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
    chunks = _chunks(path, columns, max_rows)
    try:
        return next(chunks)
    finally:
        chunks.close()


def iter_csv(path: str | os.PathLike, chunk_rows: int, *,
             columns: Sequence[str] | None = None) -> Iterator[Table]:
    """Stream the file as Tables of at most ``chunk_rows`` rows each.

    Same checks as ``read_csv``; line numbers run on across chunks. Always
    yields at least one Table (an empty one when the file has no data rows),
    so a caller can check the columns of a header-only file.
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows}")
    return _chunks(path, columns, chunk_rows)


def _chunks(path: str | os.PathLike, columns: Sequence[str] | None,
            chunk_rows: int | None) -> Iterator[Table]:
    """Tables of ``chunk_rows`` rows (all rows in one when None); see ``iter_csv``."""
    source = os.fspath(path)
    records = _records(source)
    try:
        header_line, header = _read_header(source, records)
        names = header if columns is None else list(dict.fromkeys(columns))
        missing = [n for n in names if n not in header]
        if missing:
            raise missing_columns_error(source, header, missing, header_line)
        kept = [(i, n) for i, n in enumerate(header) if n in names]
        width = len(header)
        lists: list[list[str]] = [[] for _ in kept]
        lines: list[int] = []

        def table() -> Table:
            cells = {name: np.array(col, dtype=object) for (_, name), col in
                     zip(kept, lists, strict=True)}
            return Table(source, [n for _, n in kept], cells, np.array(lines, dtype=np.int64))

        yielded = False
        if chunk_rows == 0:  # read_csv(max_rows=0): the header only
            yield table()
            return
        for line, row in records:
            if len(row) != width:
                if width > 1 and len(row) == 1 and not row[0].strip():
                    continue  # a whitespace-only line
                raise DataError(f"expected {width} fields, got {len(row)}",
                                Location(source, line), code="data-row")
            for (i, _), col in zip(kept, lists, strict=True):
                col.append(row[i].strip())
            lines.append(line)
            if len(lines) == chunk_rows:
                yield table()
                yielded = True
                lists = [[] for _ in kept]
                lines = []
        if lines or not yielded:
            yield table()
    finally:
        records.close()


def _records(source: str) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for every non-blank CSV record."""
    try:
        f = open(source, encoding="utf-8-sig", newline="")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise _unreadable(source, e) from None
    with f:
        reader = csv.reader(f)
        end = 0  # last physical line consumed
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                raise _encoding_error(source) from None
            except csv.Error as e:
                raise DataError(f"malformed CSV: {e}", Location(source, reader.line_num),
                                code="data-row") from None
            except OSError as e:
                raise _unreadable(source, e) from None
            start, end = end + 1, reader.line_num
            if row:  # csv yields [] for an empty line
                yield start, row


def _read_header(source: str, records: Iterator[tuple[int, list[str]]]) -> tuple[int, list[str]]:
    for line, row in records:
        if len(row) == 1 and not row[0].strip():
            continue
        header = [name.strip() for name in row]
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
        return line, header
    raise DataError("the file has no header row", Location(source), code="data-header")


def _unreadable(source: str, e: OSError) -> DataError:
    reason = e.strerror or str(e)
    return DataError(f"cannot read data file: {reason}", Location(source), code="data-file")


def _encoding_error(source: str) -> DataError:
    """Locate the first line that is not UTF-8 (the text reader decodes in blocks)."""
    try:
        with open(source, "rb") as f:
            for line, raw in enumerate(f, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return DataError(
                        f"the file is not valid UTF-8 (byte 0x{raw[e.start]:02x}); "
                        "save it with UTF-8 encoding",
                        Location(source, line, e.start + 1), code="data-encoding")
    except OSError as e:
        return _unreadable(source, e)
    return DataError("the file is not valid UTF-8; save it with UTF-8 encoding",
                     Location(source), code="data-encoding")
