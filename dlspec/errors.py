"""The one exception tree of dlspec.

The library raises these and never prints or exits; the CLI maps them to exit
codes (see ``EXIT_CODES``) and renders them on stderr.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_$-]+")


def path_str(path: Iterable) -> str:
    """``model.layers[2].dense.units``; odd keys (spaces, newlines, dots) as ``['a b']``."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _PLAIN_KEY.fullmatch(p):
            out += f".{p}" if out else p
        else:
            out += f"[{p!r}]"
    return out


@dataclass(frozen=True)
class Location:
    """A place in a user's file: 1-based line and column (0 when unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line and self.col:
            return f"{self.file}:{self.line}:{self.col}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


class DlspecError(Exception):
    """Base of every error dlspec raises on purpose."""

    exit_code = 1


class Diagnostic(DlspecError, ValueError):
    """One located problem in a user's input.

    ``path`` is the JSON path inside the spec (``model.layers[2].dense.units``)
    when there is one; ``code`` a short stable identifier for tools.
    """

    def __init__(
        self,
        message: str,
        location: Location | None = None,
        *,
        path: str = "",
        code: str = "error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.path = path
        self.code = code

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        what = f"{self.path}: " if self.path else ""
        return f"{where}{what}{self.message}"

    def as_dict(self) -> dict:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.col if loc else None,
            "path": self.path,
            "code": self.code,
            "message": self.message,
        }

    def sort_key(self) -> tuple:
        loc = self.location
        return (loc.file, loc.line, loc.col, self.path) if loc else ("", 0, 0, self.path)


class SpecError(Diagnostic):
    """A problem with a spec file (YAML, schema or semantics)."""


class DataError(Diagnostic):
    """A problem with a data file (missing, unreadable, wrong columns or values)."""


class ModelError(Diagnostic):
    """A problem with a model, checkpoint or run directory."""


class UsageError(Diagnostic):
    """A bad command-line value that Typer itself cannot check."""


class Diagnostics(DlspecError, ValueError):
    """Several diagnostics reported together (sorted by position)."""

    def __init__(self, items: list[Diagnostic]) -> None:
        self.items = sorted(items, key=Diagnostic.sort_key)
        super().__init__("\n".join(str(d) for d in self.items))


class ShapeError(DlspecError, ValueError):
    """An op was given shapes it cannot combine; the message names op and shapes."""


class ExportError(DlspecError):
    """The exported model failed a check (onnx.checker, parity with the engine)."""


class ParityError(ExportError):
    """The exported model and the engine disagree on held-out rows."""


class TrainingDiverged(DlspecError):
    """A non-finite loss or gradient stopped training."""

    exit_code = 3


class TrainingInterrupted(DlspecError):
    """Ctrl-C stopped training (after a checkpoint, where one could be written):
    ``epoch`` and ``step`` say where."""

    exit_code = 130

    def __init__(self, message: str, epoch: int = 0, step: int = 0) -> None:
        super().__init__(message)
        self.epoch, self.step = epoch, step


class RunFinished(DlspecError):
    """``--resume`` of a run that is finished: nothing to do, not a failure."""

    exit_code = 0
