"""``dlspec init``: read a data file, write a commented spec that validates and trains as it is.

``init_spec`` is the whole job as a pure function: it reads the data with
dlspec's own readers (a sample of a large CSV), decides the column kinds, the
task, the preprocessing, the network and the training, and returns the spec's
text with the list of choices behind it. Writing the file is the caller's.
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlspec.data.images import load_idx_pair, load_image_folder, load_npz
from dlspec.data.sources import infer_format
from dlspec.data.table import Table, read_csv
from dlspec.errors import DataError, Location, UsageError
from dlspec.scaffold.columns import is_number
from dlspec.scaffold.common import Choice, Context
from dlspec.scaffold.imagespec import Images, image_spec
from dlspec.scaffold.tabular import sequence_spec, table_spec
from dlspec.spec.schema import SCHEMA_FILE, SCHEMA_ID

__all__ = ["SAMPLE_ROWS", "Choice", "Scaffold", "init_spec"]

SAMPLE_ROWS = 100_000  # rows of a CSV read to decide the spec


@dataclass(frozen=True)
class Scaffold:
    """A written spec: its text, the task it trains, and the choices behind it."""

    text: str
    task: str
    choices: list[Choice]


def init_spec(data: str | os.PathLike, *, target: str | None = None,
              sequence: int | None = None, labels: str | os.PathLike | None = None,
              spec_path: str | os.PathLike | None = None,
              sample_rows: int = SAMPLE_ROWS) -> Scaffold:
    """The spec for ``data``: a CSV (with ``target``; ``sequence``: a window size for a
    time-ordered CSV), IDX images (``labels``: their labels file, found beside them by
    default), an .npz of images or a folder of class folders.

    ``spec_path`` is where the spec will be written (default: the current folder): its
    data.source and the schema modeline are written relative to that folder.

    Raises:
        DataError: the data cannot be read or gives nothing to learn (located).
        UsageError: options that do not fit the data.
    """
    data = Path(data)
    if not data.exists():
        raise DataError("no such file or folder", Location(str(data)), code="data-file")
    fmt = infer_format(str(data), Path())
    base = Path(spec_path).resolve().parent if spec_path else Path.cwd()
    ctx = dict(schema_ref=_schema_ref(base), source=_relative(data, base),
               name=_name(Path(spec_path) if spec_path else None, data, fmt), file=data.name)
    if fmt == "csv":
        if data.suffix.lower() in (".yaml", ".yml", ".onnx", ".json"):
            raise UsageError(f"expected a data file (CSV, IDX, .npz or a folder of images), "
                             f"got a {data.suffix} file", Location(str(data)), code="usage")
        if _is_gzip(data):
            raise _gzip_error(data)
        if target is None:
            header = read_csv(data, max_rows=0).columns
            raise UsageError(f"a table needs --target COLUMN, the column to predict (the header "
                             f"has: {', '.join(header[:20])})", Location(str(data)),
                             code="usage")
        if labels is not None:
            raise UsageError("--labels applies to IDX images; this is a CSV",
                             Location(str(data)), code="usage")
        table, read = _read_table(data, sample_rows)
        context = Context(read=read, **ctx)
        b = sequence_spec(table, target, sequence, context) if sequence \
            else table_spec(table, target, context)
    else:
        for flag, value in (("--target", target), ("--sequence", sequence)):
            if value is not None:
                raise UsageError(f"{flag} applies to CSV tables; {data} is {fmt} image data "
                                 "(the labels are the target)", Location(str(data)),
                                 code="usage")
        images, read = _read_images(data, fmt, labels, base)
        b = image_spec(images, Context(read=read, **ctx))
    return Scaffold(b.render(), b.task, b.choices)


def _relative(path: Path, base: Path) -> str:
    """``path`` from ``base``; absolute when the two share no folder but the root."""
    path = path.resolve()
    if Path(os.path.commonpath([path, base])) == Path(path.anchor):
        return path.as_posix()
    return Path(os.path.relpath(path, base)).as_posix()


def _schema_ref(base: Path) -> str:
    """The schema's path from ``base`` when a schemas/ folder above it has it, else its URL."""
    for folder in (base, *base.parents):
        if (folder / "schemas" / SCHEMA_FILE).is_file():
            return _relative(folder / "schemas" / SCHEMA_FILE, base)
    return SCHEMA_ID


def _name(spec_path: Path | None, data: Path, fmt: str) -> str:
    """A valid spec name: the spec file's stem, else the data's (IDX: its folder's)."""
    stem = spec_path.name.split(".")[0] if spec_path else \
        data.resolve().parent.name if fmt == "idx" else data.name.split(".")[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).lstrip("_.-")[:64]
    return name or "model"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _read_table(path: Path, sample_rows: int) -> tuple[Table, str]:
    """The first ``sample_rows`` rows of a CSV, and words for what was read."""
    table = read_csv(path, max_rows=sample_rows + 1)
    if all(is_number(c) for c in table.columns):
        raise DataError(f"the first line is all numbers ({', '.join(table.columns[:4])}, ...):"
                        " the file has no header row; dlspec needs the column names on the "
                        "first line: add one", Location(str(path), 1), code="data-header")
    if not len(table):
        raise DataError("the file has a header but no data rows", Location(str(path), 1),
                        code="data-rows")
    cols = f"{len(table.columns)} columns"
    if len(table) > sample_rows:
        table = Table(table.source, table.columns,
                      {k: v[:sample_rows] for k, v in table.cells.items()},
                      table.lines[:sample_rows])
        return table, (f"the first {sample_rows:,} rows of {path.name} ({cols}; the file has "
                       "more, and the choices rest on these rows)")
    return table, f"all {len(table):,} rows of {path.name} ({cols})"


def _gzip_error(path: Path) -> DataError:
    """A gzip-compressed CSV: say how to make it one dlspec reads."""
    how = f"decompress it first (gunzip -k {path})"
    try:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            first = f.readline(65536).strip().split(",")
    except (OSError, EOFError):
        first = []
    if first and all(is_number(c) for c in first):
        how += (f" and add a header row naming its {len(first)} columns: its first line is "
                "numbers, not column names")
    return DataError(f"a gzip-compressed file; dlspec reads plain CSV: {how}",
                     Location(str(path)), code="data-format")


def _read_images(path: Path, fmt: str, labels, base: Path) -> tuple[Images, str]:
    """Images, classes and the largest pixel of an IDX pair, an .npz or a folder."""
    extra: dict = {}
    if fmt == "idx":
        label_path = Path(labels) if labels else _beside(path, "labels", "labels file")
        found = load_idx_pair(path, label_path)
        extra["labels"] = _relative(label_path, base)
        test = [p for p in (_swap(path, "train", "t10k"), _swap(label_path, "train", "t10k"))
                if p is not None and p.is_file()]
        if len(test) == 2:
            extra["test"] = {"source": _relative(test[0], base),
                             "labels": _relative(test[1], base)}
    elif labels is not None:
        raise UsageError(f"--labels applies to IDX images; {path} is {fmt} data",
                         Location(str(path)), code="usage")
    elif fmt == "npz":
        found = load_npz(path)
    else:
        found = load_image_folder(path)
    counts = np.bincount(found.y, minlength=len(found.classes)).tolist()
    images = Images(tuple(found.x.shape[1:]), [str(c) for c in found.classes], counts,
                    int(found.x.max()), **extra)
    read = f"all {len(found):,} images of {path.name}"
    if "test" in extra:
        read += f" (and found the test set {Path(extra['test']['source']).name})"
    return images, read


def _swap(path: Path, old: str, new: str) -> Path | None:
    return path.with_name(path.name.replace(old, new)) if old in path.name else None


def _beside(images: Path, what: str, words: str) -> Path:
    """MNIST's naming: train-images-idx3-ubyte.gz -> train-labels-idx1-ubyte.gz."""
    name = images.name.replace("images", what).replace("idx3", "idx1")
    candidate = images.with_name(name)
    if name == images.name or not candidate.is_file():
        raise UsageError(f"IDX images need their {words}; none found beside them (looked for "
                         f"{candidate.name}): give it with --labels FILE",
                         Location(str(images)), code="usage")
    return candidate
