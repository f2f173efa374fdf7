"""What a report reads of a run: its files by name, from a run directory or from the bytes
``train`` is about to write, parsed once and checked, each mistake located at its file."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dlspec.errors import Location, ModelError

PREDICTIONS = "holdout_predictions.csv"   # a regression's held-out rows: true, predicted
PICTURE_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg",
                 ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}


@dataclass
class History:
    """history.csv: one row per epoch, whatever its columns. Numeric columns become floats
    (NaN where a cell is empty or not a number); text columns (a training phase) stay text."""

    columns: list[str]
    numeric: dict[str, list[float]] = field(default_factory=dict)
    text: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return max((len(v) for v in (*self.numeric.values(), *self.text.values())), default=0)

    @property
    def x(self) -> list[float]:
        """Each row's epoch, or 1..n where epochs are missing or restart (per phase)."""
        ep = self.numeric.get("epoch")
        n = len(self)
        rising = all(b > a for a, b in zip(ep[:-1], ep[1:], strict=True)) if ep else False
        if rising and all(math.isfinite(v) for v in ep):
            return list(ep)
        return [float(i + 1) for i in range(n)]


def parse_history(text: str, where: str) -> History:
    """history.csv's text, numeric and text columns told apart by their cells."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as e:
        raise ModelError(f"history.csv cannot be read as CSV: {e}", Location(where),
                         code="report-history") from None
    if not rows:
        return History([])
    head, body = rows[0], rows[1:]
    for i, r in enumerate(body, start=2):
        if len(r) != len(head):
            raise ModelError(f"row has {len(r)} cells, the header {len(head)}",
                             Location(where, i), code="report-history")
    hist = History(head)
    for j, name in enumerate(head):
        cells = [r[j] for r in body]
        values = [_float(c) if c.strip() else math.nan for c in cells]
        if all(v is not None for v in values):
            hist.numeric[name] = values
        else:
            hist.text[name] = cells
    return hist


def _float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


class RunFiles:
    """A run's files by name: ``read(name)`` gives bytes or None when absent.

    ``label`` names the run on a page; ``path`` is its directory (None for a run being
    written, whose files are still in memory).
    """

    def __init__(self, read: Callable[[str], bytes | None], label: str,
                 path: Path | None = None):
        self._read = read
        self.label = label
        self.path = path

    @classmethod
    def from_dir(cls, run_dir: str | Path) -> RunFiles:
        """A run directory (or its ``latest`` pointer), checked to be one.

        Raises:
            ModelError: not a run directory, or one without metrics.json.
        """
        from dlspec.runs import resolve_run_dir

        d = resolve_run_dir(run_dir)
        if d.is_symlink():  # runs/x/latest -> <run-id>: name the run by its id
            d = Path(os.path.normpath(d.parent / os.readlink(d)))
        if not (d / "metrics.json").is_file():
            raise ModelError("not a complete run directory: missing metrics.json",
                             Location(str(run_dir)), code="run-incomplete")

        def read(name: str) -> bytes | None:
            p = d / name
            try:
                return p.read_bytes() if p.is_file() else None
            except OSError as e:
                raise ModelError(f"cannot read: {e.strerror or e}", Location(str(p)),
                                 code="report-read") from None
        return cls(read, f"{d.parent.name}/{d.name}", d)

    @classmethod
    def from_mapping(cls, files: dict[str, bytes], label: str) -> RunFiles:
        return cls(files.get, label)

    def where(self, name: str) -> str:
        return str(self.path / name) if self.path is not None else name

    def read(self, name: str) -> bytes | None:
        return self._read(name)

    def text(self, name: str) -> str | None:
        data = self.read(name)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ModelError(f"not UTF-8 text: {e}", Location(self.where(name)),
                             code="report-read") from None

    @cached_property
    def metrics(self) -> dict:
        text = self.text("metrics.json")
        where = Location(self.where("metrics.json"))
        if text is None:
            raise ModelError("the run has no metrics.json", where, code="report-metrics")
        try:
            m = json.loads(text)
        except ValueError as e:
            raise ModelError(f"metrics.json is damaged (not JSON: {e}); train the spec again "
                             "to write it anew", where, code="report-metrics") from None
        if not isinstance(m, dict):
            raise ModelError(f"metrics.json is damaged: expected an object, got "
                             f"{type(m).__name__}", where, code="report-metrics")
        for key, kind in (("validation", dict), ("test", dict), ("classes", list),
                          ("pictures", list)):
            if key in m and not isinstance(m[key], kind):
                raise ModelError(f"metrics.json is damaged: '{key}' should be a "
                                 f"{'mapping' if kind is dict else 'list'}, got "
                                 f"{type(m[key]).__name__}", where, code="report-metrics")
        return m

    @cached_property
    def history(self) -> History:
        text = self.text("history.csv")
        return History([]) if text is None else parse_history(text, self.where("history.csv"))

    @cached_property
    def lock_text(self) -> str:
        return self.text("spec.lock.yaml") or ""

    @cached_property
    def lock(self) -> dict:
        """The resolved spec (spec.lock.yaml), {} when absent."""
        import yaml

        if not self.lock_text:
            return {}
        try:
            data = yaml.safe_load(self.lock_text)
        except yaml.YAMLError as e:
            raise ModelError(f"spec.lock.yaml is damaged: {e}",
                             Location(self.where("spec.lock.yaml")),
                             code="report-lock") from None
        return data if isinstance(data, dict) else {}

    @cached_property
    def predictions(self) -> History | None:
        """A regression's held-out rows (true and predicted columns, their split), or None."""
        text = self.text(PREDICTIONS)
        if text is None:
            return None
        hist = parse_history(text, self.where(PREDICTIONS))
        return hist if hist.numeric else None

    def picture(self, name: str) -> tuple[str, bytes] | None:
        """A picture file of the run: (media type, bytes), or None if absent or not a
        picture type (only a file name inside the run, never a path out of it)."""
        p = Path(name)
        if p.name != name or p.suffix.lower() not in PICTURE_TYPES:
            return None
        data = self.read(name)
        return None if data is None else (PICTURE_TYPES[p.suffix.lower()], data)
