"""CSV parsing for ``dlspec.data.table``: whole-line blocks, split fast when they can be.

A block without quote characters is split by byte positions after a NumPy check
that every line has the header's field count; its numeric columns go through NumPy's
C tokenizer (``loadtxt``, whose values are ``float()``'s bit for bit), its text
columns become str objects shared by equal cells. A block that fails the check, and
everything from the first quote character on, goes through the ``csv`` module,
which locates each problem exactly. Both paths give the same cells and line
numbers.

``Dialect`` says how a delimited text file is written: its delimiter (any one
ASCII character but a quote or a line end), its quote character (``None``: no
quoting at all, so a ``"`` is an ordinary character, as in a tab-separated file
of messages), and whether the first line is a header (when it is not, ``columns``
names the fields).
"""

from __future__ import annotations

import contextlib
import csv
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import BinaryIO, NamedTuple

import numpy as np

from dlspec.errors import DataError, Location

_BLOCK = 4 << 20  # bytes read at a time; memory stays a few times this
_SLOW_BATCH = 16_384  # rows per batch handed on from the csv module
_BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\x0b\x0c\x1c\x1d\x1e\x1f"  # ASCII that str.strip removes, besides \r\n


@dataclass(frozen=True)
class Dialect:
    """How a delimited text file is written (the default: CSV with a header row).

    ``columns``: the field names of a file without a header (required then); with a
    header, the names the header must have, in order (None: any).
    """

    delimiter: str = ","
    quote: str | None = '"'
    header: bool = True
    columns: tuple[str, ...] | None = None

    def __post_init__(self):
        bad = "\r\n"
        if len(self.delimiter) != 1 or not self.delimiter.isascii() or self.delimiter in bad:
            raise ValueError(f"delimiter must be one ASCII character other than a line end, "
                             f"got {self.delimiter!r}")
        if self.quote is not None and (len(self.quote) != 1 or not self.quote.isascii()
                                       or self.quote in bad + self.delimiter):
            raise ValueError(f"quote must be one ASCII character other than a line end and "
                             f"the delimiter, or None, got {self.quote!r}")
        if not self.header and not self.columns:
            raise ValueError("a file without a header needs its column names (columns)")

    @classmethod
    def from_dict(cls, d) -> Dialect:
        """From the spec's ``data.csv`` form (missing keys take their defaults)."""
        cols = d.get("columns")
        return cls(d.get("delimiter", ","), d.get("quote", '"'), d.get("header", True),
                   tuple(cols) if cols is not None else None)

    def to_dict(self) -> dict:
        return {"delimiter": self.delimiter, "quote": self.quote, "header": self.header,
                "columns": list(self.columns) if self.columns is not None else None}

    def reader_options(self) -> dict:
        """Keyword arguments of ``csv.reader`` for this dialect."""
        if self.quote is None:
            return {"delimiter": self.delimiter, "quoting": csv.QUOTE_NONE}
        return {"delimiter": self.delimiter, "quotechar": self.quote}


CSV = Dialect()


class Coded(NamedTuple):
    """A text column of one block as codes: ``words[index[i]]`` is row i's cell. A word may
    appear twice (two spellings that strip to one); the words are in no particular order."""

    index: np.ndarray
    words: list[str]


def cells_of(codes: np.ndarray, words: list[str]) -> np.ndarray:
    """The object array ``words[codes]``, one str object per word shared by its cells."""
    return np.array(words, dtype=object)[codes]


class Codes:
    """The codes of one text column over many blocks: each block's own codes mapped onto
    one vocabulary, a dict lookup per distinct word of a block, not per row."""

    def __init__(self) -> None:
        self.lookup: dict[str, int] = {}

    def block(self, coded: Coded) -> np.ndarray:
        """The block's rows as codes (int32) into ``values``."""
        lookup = self.lookup
        remap = np.array([lookup.setdefault(w, len(lookup)) for w in coded.words],
                         dtype=np.int32)
        return remap[coded.index]

    @property
    def values(self) -> list[str]:
        """The distinct cells: ``values[code]``."""
        return list(self.lookup)

    def smallest(self, codes: np.ndarray) -> np.ndarray:
        """``codes`` in the smallest integer type that holds this vocabulary's (uint8 for up
        to 256 values)."""
        return codes.astype(np.min_scalar_type(max(len(self.lookup) - 1, 0)))


def narrowed(column: np.ndarray, at: int, values: np.ndarray) -> np.ndarray:
    """``column`` (float32 or float64) with the float64 ``values`` put at ``at``: a float32
    column stays one while every value is a float32 exactly (so the float64 values come
    back bit for bit, in half the memory); it is widened to float64 at the first that is
    not."""
    if column.dtype == np.float32:
        with np.errstate(all="ignore"):  # a value past float32's range is simply not one
            small = values.astype(np.float32)
        if np.array_equal(small, values):
            column[at:at + len(values)] = small
            return column
        wide = np.empty(len(column), dtype=np.float64)
        wide[:at] = column[:at]
        column = wide
    column[at:at + len(values)] = values
    return column


def parse(raw: BinaryIO, source: str, plan,
          dialect: Dialect = CSV
          ) -> Iterator[tuple[np.ndarray, list[np.ndarray], dict[int, Coded]]]:
    """Batches ``(lines, one array per kept column, codes)`` of the file's data rows.

    ``codes`` maps the position (in the kept columns) of a text column whose cells repeat
    (categories) to the block's ``Coded`` form of it, where the fast path found one.

    ``plan(header_line, header)`` is called once the header is read (at once, with
    ``dialect.columns`` and line 1, for a file without one); it checks the header and
    returns ``(index, numeric)`` for each column to keep.
    """
    blocks = _blocks(raw, source)
    width, kept = None, []
    if not dialect.header:
        width = len(dialect.columns)
        kept = plan(1, list(dialect.columns))
    quote = dialect.quote.encode() if dialect.quote is not None else None
    for block, line in blocks:
        if (quote is not None and quote in block) or (
                b"\r" in block and block.count(b"\r") != block.count(b"\r\n")):
            # A quoted field may span blocks, and a lone \r ends a line for the csv
            # module: the csv module reads everything from here on.
            width = yield from _parse_slow(chain([(block, line)], blocks), width, kept,
                                           source, plan, dialect)
            break
        if width is None:
            found = _fast_header(block, line, source, dialect.delimiter)
            if found is None:
                continue
            header_line, header, skip = found
            width = len(header)
            kept = plan(header_line, header)
            line += block.count(b"\n", 0, skip)
            block = block[skip:]
            if not block:
                continue
        batch = None if b"\0" in block else _fast_block(block, line, width, kept,
                                                         ord(dialect.delimiter))
        if batch is None:  # blank lines or a wrong field count: no quotes, so this block alone
            yield from _parse_slow(iter([(block, line)]), width, kept, source, plan, dialect)
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
            raise unreadable(source, e) from None
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


def _fast_header(block: bytes, line: int, source: str,
                 delimiter: str) -> tuple[int, list[str], int] | None:
    """(line, names, byte after the header line) of the first non-blank line, else None."""
    pos = 0
    while pos < len(block):
        end = block.find(b"\n", pos)
        end = len(block) if end < 0 else end + 1
        row = block[pos:end].decode("utf-8").rstrip("\r\n")
        if row.strip():
            header = [name.strip() for name in row.split(delimiter)]
            _check_header(header, source, line)
            return line, header, end
        pos, line = end, line + 1
    return None


def _fast_block(block: bytes, line: int, width: int, kept: list[tuple[int, bool]],
                delimiter: int = 44
                ) -> tuple[np.ndarray, list[np.ndarray], dict[int, Coded]] | None:
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
    if width == 1 and bytes([delimiter]) in block:
        return None
    if width > 1:
        commas = np.flatnonzero(u == delimiter)
        if len(commas) != n * (width - 1) or not np.array_equal(
                np.searchsorted(commas, ends), np.arange(1, n + 1) * (width - 1)):
            return None  # some line has too many fields or too few
        commas = commas.reshape(n, width - 1)
    ascii_only = block.isascii()
    numbers = _numbers(block, [i for i, numeric in kept if numeric], n, delimiter)
    cols, coded = [], {}
    for i, numeric in kept:
        if i in numbers:
            cols.append(numbers[i])
            continue
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
        if cells.dtype.kind == "u":
            text, codes = _text(cells, ascii_only and _edge_space(cells, last - first),
                                ascii_only)
            if codes is not None:
                coded[len(cols)] = codes
            cols.append(text)
        else:  # long fields, as bytes
            cols.append(np.array([c.decode("utf-8").strip() for c in cells.tolist()],
                                 dtype=object))
    return np.arange(line, line + n, dtype=np.int64), cols, coded


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


def _numbers(block: bytes, columns: list[int], n: int, delimiter: int) -> dict[int, np.ndarray]:
    """The fields of ``columns`` that all parse as finite numbers, as float64 by column.

    NumPy's loadtxt tokenizes in C and converts with ``PyOS_string_to_double``, what
    ``float()`` uses, so the values are float()'s bit for bit; it accepts a subset of
    float()'s spellings (no underscores), and a column it refuses, or with a NaN or an
    infinity, is left to the per-column path, which names the bad cell.
    """
    if not columns:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = np.loadtxt(io.BytesIO(block), dtype=np.float64, delimiter=chr(delimiter),
                                comments=None, quotechar=None, usecols=columns, ndmin=2,
                                encoding=None)
    except ValueError:
        return {}
    if values.shape != (n, len(columns)):
        return {}
    values = values.T.copy()  # one contiguous row per column
    return {i: v for i, v in zip(columns, values, strict=True) if np.isfinite(v).all()}


def _text(cells: np.ndarray, strip: bool, ascii_only: bool) -> tuple[np.ndarray, Coded | None]:
    """A (rows, width) uint8 matrix of zero-padded UTF-8 fields as an object array of
    stripped str, and its codes when it has few distinct values (categories; None
    otherwise), whose cells then share one str object per value: less memory, less work.
    ``strip``: some ASCII field has whitespace at an edge (other text is always stripped)."""
    n, width = cells.shape
    if width <= 8:  # distinct values by one 8-byte integer each: a fast numeric sort
        wide = np.zeros((n, 8), dtype=np.uint8)
        wide[:, :width] = cells
        keys, index = np.unique(wide.view(np.uint64).reshape(-1), return_inverse=True)
        distinct = keys.view(np.uint8).reshape(-1, 8)[:, :width].copy().view(f"S{width}")
        distinct = distinct.reshape(-1)
    else:
        cells = cells.view(f"S{width}").reshape(-1)
        distinct, index = np.unique(cells, return_inverse=True)
    few = len(distinct) <= n // 4
    if not few:  # not categories: one str per cell
        distinct = cells.view(f"S{width}").reshape(-1) if cells.ndim == 2 else cells
    if ascii_only:
        text = distinct.astype(f"U{width}")
        text = (np.strings.strip(text) if strip else text).astype(object)
    else:  # the block is UTF-8, and a field is cut at ASCII delimiters: each decodes
        text = np.array([c.decode("utf-8").strip() for c in distinct.tolist()], dtype=object)
    if not few:
        return text, None
    return text[index], Coded(index, text.tolist())


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


_SPACE = np.zeros(256, dtype=bool)
_SPACE[list(_WHITESPACE)] = True


def _edge_space(cells: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether some field of a zero-padded (rows, width) ASCII matrix starts or ends with
    whitespace (str.strip's idea of it), so that the column needs stripping."""
    if not len(cells):
        return False
    lastbyte = cells[np.arange(len(cells)), np.maximum(lengths - 1, 0)]
    return bool(_SPACE[cells[:, 0]].any() or _SPACE[lastbyte].any())


def _parse_slow(pieces: Iterator[tuple[bytes, int]], width: int | None,
                kept: list[tuple[int, bool]], source: str, plan,
                dialect: Dialect = CSV) -> Iterator:
    """``_parse``'s batches from the csv module, over blocks that end at line ends.

    Reads the header first when ``width`` is None; returns the header's width
    (None when there is no header).
    """
    first = next(pieces, None)
    if first is None:
        return width
    offset = first[1] - 1  # file line before the first piece
    reader = csv.reader(chain.from_iterable(io.StringIO(b.decode("utf-8"), newline="")
                                            for b, _ in chain([first], pieces)),
                        **dialect.reader_options())
    end = 0  # last physical line consumed
    rows: list[list[str]] = []
    lines: list[int] = []

    def batch():
        cols = [np.array([r[i].strip() for r in rows], dtype=object) for i, _ in kept]
        return np.array(lines, dtype=np.int64), cols, {}

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


def unreadable(source: str, e: OSError) -> DataError:
    reason = e.strerror or str(e)
    return DataError(f"cannot read data file: {reason}", Location(source), code="data-file")
