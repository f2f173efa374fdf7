"""pyarrow's CSV reader as an optional fast path for reading a whole file, when pyarrow is
importable (the ``parquet`` extra brings it) and the file is one it reads exactly as
``dlspec.data.table``'s own reader does.

One streaming pass over the bytes first checks what pyarrow would not: the file is UTF-8
(every column, kept or not, as the own reader checks), has no NUL byte and no lone ``\\r``,
and its first line is the header (or data, without one). pyarrow then parses the kept
columns on every core: the numeric ones as float64 (its parser is correctly rounded, so
the values equal ``float()``'s bit for bit), the others as dictionary-encoded text,
stripped as the own reader strips cells. A row count that differs from the line count
(a blank line, a line break inside a quoted field), an empty, non-finite or unparsable
number, a wrong field count: anything unusual gives None, and the caller's own reader
reads the file and names the problem with its line. With one line per row, row ``i`` is
on line ``i + 2`` (``i + 1`` without a header).

Set ``DLSPEC_NO_PYARROW=1`` to read with the own reader only.
"""

from __future__ import annotations

import codecs
import importlib.util
import os
from collections.abc import Sequence

import numpy as np

from dlspec.data.csvparse import Coded, Codes, Dialect, cells_of, narrowed

MIN_BYTES = 8 << 20  # smaller files: the own reader is as fast as importing pyarrow
_SCAN = 8 << 20  # bytes read at a time by the checking pass
_BOM = b"\xef\xbb\xbf"


def available() -> bool:
    """Whether the fast path may be tried (pyarrow importable, not switched off)."""
    return (not os.environ.get("DLSPEC_NO_PYARROW")
            and importlib.util.find_spec("pyarrow") is not None)


def read(path: str, columns: Sequence[str], numbers: Sequence[str], dialect: Dialect,
         narrow: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, tuple]] | None:
    """``(cells by column, file line of each row, codes)`` of the whole file, or None when
    the own reader must read it. ``columns``: the kept columns, already checked against the
    header. ``codes``: each text column's ``Table.codes``, from pyarrow's dictionaries.

    pyarrow's streaming reader hands over one block of rows at a time, copied into arrays
    sized from the line count, with malloc's pool (what it frees goes back as NumPy's
    does), so the table is held once, as with the own reader.
    """
    lines = _lines(path)
    if lines is None:
        return None
    import pyarrow as pa
    from pyarrow import csv

    numbers = set(numbers)
    types = {c: pa.float64() if c in numbers else pa.dictionary(pa.int32(), pa.string())
             for c in columns}
    header = 1 if dialect.header else 0
    n = lines - header
    float_type = np.float32 if narrow else np.float64  # see table.read_csv
    # narrow: a text column is held as its codes only (see table.Cells)
    cells = {c: np.empty(n, dtype=float_type if c in numbers else object) for c in columns
             if c in numbers or not narrow}
    codes = {c: np.empty(n, dtype=np.int32) for c in columns if c not in numbers}
    coders = {c: Codes() for c in codes}
    at = 0
    try:
        reader = csv.open_csv(
            path,
            read_options=csv.ReadOptions(
                column_names=None if dialect.header else list(dialect.columns),
                block_size=4 << 20),
            parse_options=csv.ParseOptions(
                delimiter=dialect.delimiter, quote_char=dialect.quote or False,
                double_quote=True, newlines_in_values=False, ignore_empty_lines=True),
            convert_options=csv.ConvertOptions(
                include_columns=list(columns), column_types=types, null_values=[],
                strings_can_be_null=False, quoted_strings_can_be_null=False,
                check_utf8=True),
            memory_pool=pa.system_memory_pool())
        for batch in reader:
            size = batch.num_rows
            if at + size > n:
                return None
            for name in columns:
                column = batch.column(name)
                if column.null_count:
                    return None
                if name in numbers:
                    values = column.to_numpy()
                    if not np.isfinite(values).all():
                        return None
                    cells[name] = narrowed(cells[name], at, values)
                else:
                    coded = _coded(column)
                    if name in cells:
                        cells[name][at:at + size] = cells_of(coded.index, coded.words)
                    codes[name][at:at + size] = coders[name].block(coded)
            at += size
    except (pa.ArrowException, ValueError, OSError):
        return None
    finally:
        pa.default_memory_pool().release_unused()  # the reader's own buffers, kept by the pool
    if at != n:
        return None
    if narrow:  # as the own reader's narrow table (table._Filled.arrays)
        codes = {c: coders[c].smallest(v) for c, v in codes.items()}
    lines = np.arange(1 + header, n + 1 + header,
                      dtype=np.int32 if narrow and n + header < 2**31 else np.int64)
    return cells, lines, {c: (codes[c], coders[c].values) for c in codes}


def _coded(column) -> Coded:
    """A dictionary-encoded block as codes into its stripped words (one str object per
    distinct value, shared by the cells made from them)."""
    words = [w.strip() for w in column.dictionary.to_pylist()]
    return Coded(column.indices.to_numpy(zero_copy_only=False), words)


def _lines(path: str) -> int | None:
    """The file's line count, when it is UTF-8 without NUL or lone \\r and its first line
    is not blank; else None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = cr = crlf = 0
    last = None
    try:
        with open(path, "rb") as fh:
            while block := fh.read(_SCAN):
                if last is None:
                    block = block[len(_BOM):] if block.startswith(_BOM) else block
                    if block[:1] in (b"\n", b"\r"):
                        return None
                if b"\0" in block:
                    return None
                if not block.isascii():
                    decoder.decode(block)
                newlines += block.count(b"\n")
                if b"\r" in block or last == b"\r":
                    cr += block.count(b"\r")
                    crlf += block.count(b"\r\n") + (last == b"\r" and block[:1] == b"\n")
                last = block[-1:]
            decoder.decode(b"", final=True)
    except (OSError, UnicodeDecodeError):
        return None
    if cr != crlf:
        return None
    return newlines + (last not in (None, b"", b"\n"))
