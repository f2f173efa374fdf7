"""Prediction with a model of tensor inputs (a spec exported straight from its weights).

Each input comes from a table's columns, by the input's name: a scalar input (shape []
or [1]) from the column of its name, a vector input of shape [k] from columns
``name_0`` .. ``name_{k-1}``; or from an .npz holding one array per input, by name, of
shape (n, *shape). One output row per input row, in order: every output's values.
"""

from __future__ import annotations

import math
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dlspec.errors import DataError, Location, UsageError
from dlspec.runtime.contract import Contract
from dlspec.runtime.predict import _writer
from dlspec.runtime.readers import input_format as format_of
from dlspec.runtime.readers import read_tables


def tensor_columns(name: str, shape: tuple) -> list[str]:
    """The table columns a tensor input of ``shape`` is read from."""
    if math.prod(shape) == 1 and len(shape) <= 1:
        return [name]
    if len(shape) == 1:
        return [f"{name}_{i}" for i in range(shape[0])]
    raise UsageError(f"input '{name}' takes examples of shape {list(shape)}, which a table's "
                     "columns cannot hold; give an .npz with one array per input, by name",
                     code="usage")


def _arrays(data: str, contract: Contract, chunk: int):
    from dlspec.data.images import _npz_arrays

    names = [c.name for c in contract.inputs]
    arrays = dict(zip(names, _npz_arrays(data, tuple(names), 1 << 34), strict=True))
    n = {len(a) for a in arrays.values()}
    if len(n) != 1:
        raise DataError(f"the arrays hold different numbers of examples: "
                        f"{ {k: len(a) for k, a in arrays.items()} }", Location(data),
                        code="data-shape")
    for col in contract.inputs:
        a = arrays[col.name]
        if a.shape[1:] != tuple(col.shape) or a.dtype.kind not in "iuf":
            raise DataError(f"'{col.name}' must hold numbers of shape (n, "
                            f"{', '.join(map(str, col.shape))}), got {a.shape} {a.dtype}",
                            Location(data), code="data-shape")
    total = n.pop()
    for start in range(0, total, chunk):
        yield {k: np.ascontiguousarray(a[start:start + chunk], dtype=np.float32)
               for k, a in arrays.items()}, []


def _tables(data, contract: Contract, chunk: int, fmt: str | None, keep: Sequence[str]):
    cols = {c.name: tensor_columns(c.name, tuple(c.shape)) for c in contract.inputs}
    names = [c for cs in cols.values() for c in cs]
    tables = read_tables(data, [*names, *keep], chunk, fmt, numbers=names, keep=keep)
    try:
        for t in tables:
            if len(t) == 0:
                continue
            feeds = {}
            for c in contract.inputs:
                block = np.stack([t.numeric(k).astype(np.float32) for k in cols[c.name]], axis=1)
                feeds[c.name] = block.reshape(len(t), *c.shape)
            yield feeds, [(t.cells[k], t.text) for k in keep]
    finally:
        tables.close()


def _holds_arrays(name: str, contract: Contract, fmt: str | None) -> bool:
    """``name`` is an .npz with one array per input (not one per column)."""
    if name == "-" or format_of(name, fmt) != "npz" or not zipfile.is_zipfile(name):
        return False
    with zipfile.ZipFile(name) as z:
        members = set(z.namelist())
    return all(f"{c.name}.npy" in members for c in contract.inputs)


def predict_tensors(runner: Callable, contract: Contract, width: int, data: str | Path,
                    out: Path | None, batch_size: int,
                    progress: Callable[[int], None] | None = None, *,
                    input_format: str | None = None, keep: Sequence[str] = ()) -> int:
    """One output row per example of ``data``, in order; returns the count."""
    name = os.fspath(data)
    keep = list(dict.fromkeys(keep))
    arrays = _holds_arrays(name, contract, input_format)
    if arrays and keep:
        raise UsageError(f"--keep {keep[0]}: {data} holds arrays by input, without columns "
                         "to keep", code="usage")
    batches = _arrays(name, contract, batch_size) if arrays else \
        _tables(data, contract, batch_size, input_format, keep)
    writer = _writer(out, keep, contract.output_columns(width), width)
    n, ok = 0, False
    writer.open()
    try:
        for feeds, kept in batches:
            writer.write(runner(feeds), kept)
            n += len(next(iter(feeds.values())))
            if progress:
                progress(n)
        ok = True
    finally:
        batches.close()
        writer.close(ok)
    return n
