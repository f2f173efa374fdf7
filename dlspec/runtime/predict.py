"""Chunked prediction: raw rows in, one output row per input row out, in input order.

Two backends share the input contract, the readers and the output writers:
onnxruntime (the exported model, the production path) and the NumPy engine (a
run directory), so the two can be compared row by row.

Outputs by extension: .csv, .jsonl, .npy (the numeric block only), .parquet
(needs pyarrow), or CSV on stdout; ``keep`` columns come first, as read.
Numbers are written with 9 significant digits (exact for float32), a whole
batch at a time through one %-template, so writing keeps up with reading.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dlspec.errors import DataError, Location, UsageError
from dlspec.runtime.contract import Contract
from dlspec.runtime.readers import need_pyarrow, read_tables

FORMATS = (".csv", ".jsonl", ".npy", ".parquet")
DEFAULT_BATCH = 65_536
_NPY_HEADER = 128  # bytes reserved for the .npy header, written once the row count is known


class Batch:
    """One chunk of predictions: the numeric block and (for classifiers) the labels."""

    def __init__(self, values: np.ndarray, labels: np.ndarray | None) -> None:
        self.values, self.labels = values, labels


def check_writable(path: Path, flag: str) -> None:
    """Refuse, before any work, an output whose folder is missing or not writable."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist", code="usage")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag} {path}: the folder {folder} is not writable", code="usage")


# Cells as text -------------------------------------------------------------------------

def _raw_text(value) -> str:
    """A raw value (JSON, Parquet) as CSV text: JSON's spelling, "" when missing."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return json.dumps(value, default=str)


def _text(cells: np.ndarray, text: bool) -> list[str]:
    """Cells of a keep column as strings, as read (CSV cells are already text)."""
    kind = cells.dtype.kind
    if kind == "O":
        values = cells.tolist()
        return values if text else [_raw_text(v) for v in values]
    if kind == "S":
        return [v.decode("utf-8", "replace") for v in cells.tolist()]
    if kind == "b":
        return ["true" if v else "false" for v in cells.tolist()]
    strings = cells.astype(str)
    if kind in "fc":
        strings[np.isnan(cells)] = ""
    return strings.tolist()


def _csv_quote(values: list[str]) -> list[str]:
    """Quote the values that need it (QUOTE_MINIMAL), checking all of them at once."""
    joined = ",".join(values)
    if joined.count(",") == len(values) - 1 and not any(c in joined for c in '"\n\r'):
        return values
    return [f'"{v.replace(chr(34), chr(34) * 2)}"' if any(c in v for c in ',"\n\r') else v
            for v in values]


def _json_cells(cells: np.ndarray, text: bool) -> list[str]:
    """Cells of a keep column as JSON values: text stays a string, raw values keep their type."""
    kind = cells.dtype.kind
    if (kind == "O" and not text) or kind in "iufb":
        values = cells.tolist()
        return ["null" if v is None or isinstance(v, float) and not math.isfinite(v)
                else json.dumps(v, default=str) for v in values]
    return [json.dumps(v) for v in _text(cells, text)]


class _Columns:
    """One batch's output columns, each as a %-spec and a list of values."""

    def __init__(self, batch: Batch, keep: list[tuple[np.ndarray, bool]], json_out: bool):
        self.specs: list[str] = []
        self.values: list[list] = []
        for cells, text in keep:
            self.add("%s", _json_cells(cells, text) if json_out else
                     _csv_quote(_text(cells, text)))
        values = np.asarray(batch.values)
        for k in range(values.shape[1]):
            self.add_numbers(values[:, k], "%.9g", json_out)
        if batch.labels is not None:
            labels = np.asarray(batch.labels)
            if labels.dtype.kind in "iufb":
                self.add_numbers(labels, "%d" if labels.dtype.kind in "iub" else "%.9g",
                                 json_out)
            else:
                distinct = {v: (json.dumps(str(v)) if json_out else _csv_quote([str(v)])[0])
                            for v in set(labels.tolist())}
                self.add("%s", [distinct[v] for v in labels.tolist()])

    def add_numbers(self, values: np.ndarray, spec: str, json_out: bool) -> None:
        if spec == "%d" or np.isfinite(values).all():
            self.add(spec, values.tolist())
        else:  # JSON has no NaN or infinity: null there
            bad = "null" if json_out else "nan"
            self.add("%s", [spec % v if math.isfinite(v) else bad for v in values.tolist()])

    def add(self, spec: str, values: list) -> None:
        self.specs.append(spec)
        self.values.append(values)

    def render(self, template: str) -> str:
        k, n = len(self.values), len(self.values[0]) if self.values else 0
        flat: list = [None] * (n * k)
        for j, values in enumerate(self.values):
            flat[j::k] = values
        return (template * n) % tuple(flat)


# Writers -------------------------------------------------------------------------------

class _Writer:
    """Writes to a temporary file beside ``out``, renamed into place only on success."""

    def __init__(self, out: Path | None, header: list[str], width: int) -> None:
        self.out, self.header, self.width = out, header, width
        self.tmp = out.with_name(f".{out.name}.partial") if out else None
        self.fh = None

    def open(self) -> None:
        self.fh = open(self.tmp, "wb") if self.out else sys.stdout.buffer  # noqa: SIM115

    def write(self, batch: Batch, keep: list[tuple[np.ndarray, bool]]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Complete the file's content (after the last batch, before the rename)."""

    def close(self, ok: bool) -> None:
        if self.fh is None:
            return
        if ok:
            self.finish()
        self.fh.flush()
        if not self.out:
            return
        self.fh.close()
        if ok:
            os.replace(self.tmp, self.out)
        else:
            self.tmp.unlink(missing_ok=True)


class _CsvWriter(_Writer):
    started = False

    def start(self) -> None:
        """The header, written with the first rows (nothing on stdout for bad input)."""
        if not self.started:
            self.fh.write((",".join(_csv_quote(self.header)) + "\n").encode())
            self.started = True

    def write(self, batch, keep) -> None:
        self.start()
        cols = _Columns(batch, keep, json_out=False)
        self.fh.write(cols.render(",".join(cols.specs) + "\n").encode())

    def finish(self) -> None:
        self.start()


class _JsonlWriter(_Writer):
    def write(self, batch, keep) -> None:
        cols = _Columns(batch, keep, json_out=True)
        fields = [f"{json.dumps(name)}: {spec}" for name, spec in
                  zip(self.header, cols.specs, strict=True)]
        self.fh.write(cols.render("{" + ", ".join(fields) + "}\n").encode())


class _NpyWriter(_Writer):
    """float32 (rows, width): the numeric block, streamed after a header fixed at the end."""

    def open(self) -> None:
        super().open()
        self.rows = 0
        self.fh.write(b"\0" * _NPY_HEADER)

    def write(self, batch, keep) -> None:
        block = np.ascontiguousarray(batch.values, dtype=np.float32)
        self.fh.write(block.tobytes())
        self.rows += len(block)

    def finish(self) -> None:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {
            "descr": np.dtype(np.float32).str, "fortran_order": False,
            "shape": (self.rows, self.width)})
        data = header.getvalue()
        if len(data) != _NPY_HEADER:  # cannot happen for shapes below 10**40 rows
            raise RuntimeError(f".npy header of {len(data)} bytes")
        self.fh.seek(0)
        self.fh.write(data)
        self.fh.seek(0, os.SEEK_END)


class _ParquetWriter(_Writer):
    def open(self) -> None:
        self.fh = open(self.tmp, "wb")  # noqa: SIM115 (closed by close())
        self.parquet = None

    def write(self, batch, keep) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        arrays = []
        for cells, text in keep:
            if cells.dtype.kind in "iufb":
                arrays.append(pa.array(cells))
            else:
                raw = cells.tolist() if text else [None if v is None else _raw_text(v)
                                                   for v in cells.tolist()]
                arrays.append(pa.array(raw, type=pa.string()))
        values = np.asarray(batch.values, dtype=np.float32)
        arrays += [pa.array(np.ascontiguousarray(values[:, k])) for k in range(values.shape[1])]
        if batch.labels is not None:
            labels = np.asarray(batch.labels)
            arrays.append(pa.array(labels if labels.dtype.kind in "iufb"
                                   else [str(v) for v in labels.tolist()]))
        table = pa.Table.from_arrays(arrays, names=self.header)
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.fh, table.schema)
        self.parquet.write_table(table.cast(self.parquet.schema))

    def close(self, ok: bool) -> None:
        if self.parquet is not None:
            self.parquet.close()
        elif ok and self.fh is not None:
            import pyarrow as pa
            import pyarrow.parquet as pq

            empty = pa.table({name: pa.array([], type=pa.string()) for name in self.header})
            pq.write_table(empty, self.fh)
        super().close(ok)


_WRITERS = {".csv": _CsvWriter, ".jsonl": _JsonlWriter, ".npy": _NpyWriter,
            ".parquet": _ParquetWriter}


def _writer(out: Path | None, keep: list[str], outputs: list[str], width: int) -> _Writer:
    if out is not None:
        check_writable(out, "-o")
    ext = out.suffix.lower() if out else ".csv"
    if ext not in FORMATS:
        raise UsageError(f"-o {out}: unknown output format '{ext}'; use one of "
                         f"{', '.join(FORMATS)}", code="usage")
    if ext == ".npy" and keep:
        raise UsageError(f"-o {out}: a .npy output holds the numeric block only, so it cannot "
                         "carry --keep columns; use .csv, .jsonl or .parquet", code="usage")
    if ext == ".parquet":
        need_pyarrow(f"-o {out} (Parquet output)")
    clash = [c for c in keep if c in outputs]
    if clash:
        raise UsageError(f"--keep {clash[0]}: the output already has a column of that name",
                         code="usage")
    return _WRITERS[ext](out, [*keep, *outputs], width)


def predict_file(runner: Callable, contract: Contract, width: int, data: str | Path,
                 out: Path | None, batch_size: int = DEFAULT_BATCH,
                 progress: Callable[[int], None] | None = None, *,
                 input_format: str | None = None, keep: Sequence[str] = ()) -> int:
    """Stream ``data`` ("-": stdin) through ``runner`` into ``out`` (stdout CSV when None).

    Args:
        width: the regression output's width (0 for classifiers).
        input_format: csv, jsonl, npy, npz or parquet (default: by extension).
        keep: input columns copied, as read, to the front of each output row.

    Returns the row count. ``.npy`` output holds the numeric block (probabilities
    or predictions) only.
    """
    keep = list(dict.fromkeys(keep))
    outputs = contract.output_columns(width)
    numeric = width if contract.task == "regression" else len(contract.classes)
    writer = _writer(out, keep, outputs, numeric)
    numbers = [c.name for c in contract.inputs if c.kind == "numeric"]
    chunks = read_tables(data, [*contract.columns, *keep], batch_size, input_format,
                         numbers=numbers, keep=keep, dialect=contract.dialect)
    n, ok = 0, False
    writer.open()
    ran = runner.map(t for t in chunks if len(t)) if hasattr(runner, "map") else \
        ((t, runner(t)) for t in chunks if len(t))
    try:
        for table, batch in ran:
            writer.write(batch, [(table.cells[c], table.text) for c in keep])
            n += len(table)
            if progress:
                progress(n)
        ok = True
    finally:
        chunks.close()
        writer.close(ok)
    return n


# Images ----------------------------------------------------------------------------------

IMAGE_NAME = "image"


def predict_images(runner: Callable, contract: Contract, shape: tuple, data: str | Path,
                   out: Path | None, batch_size: int = DEFAULT_BATCH,
                   progress: Callable[[int], None] | None = None) -> int:
    """Class probabilities and the predicted class of every image in ``data`` (an IDX
    or NPZ file, an image, or a folder of images), one output row per image."""
    from dlspec.data.images import read_images_for_predict

    x, names = read_images_for_predict(data)
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"the images are {'x'.join(map(str, x.shape[1:]))} (height x width x "
                        f"channels); the model takes {'x'.join(map(str, shape))}",
                        Location(str(data)), code="data-images")
    outputs = contract.output_columns(0)
    writer = _writer(out, [IMAGE_NAME], outputs, len(contract.classes))
    writer.open()
    ok = False
    try:
        for start in range(0, len(x), batch_size):
            batch = runner(x[start:start + batch_size])
            writer.write(batch, [(np.array(names[start:start + batch_size], dtype=object),
                                  True)])
            if progress:
                progress(min(start + batch_size, len(x)))
        ok = True
    finally:
        writer.close(ok)
    return len(x)
