"""Rich rendering for the CLI: diagnostics with the offending line, tables, progress."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dlspec.errors import Diagnostic

MAX_SHOWN = 20


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on or hide (ESC, NUL, BEL, a tab,
    a carriage return, ...) written as its escape (``\\x1b``, ``\\t``): what a user's file
    holds is shown, and cannot recolour, retitle or clear the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)


def _source_line(file: str, line: int) -> str | None:
    """Line ``line`` of ``file``, lines ending at each newline byte (as the readers count)."""
    try:
        with open(file, "rb") as fh:
            for i, raw in enumerate(fh, 1):
                if i == line:
                    return raw.decode("utf-8", errors="replace").rstrip("\r\n")
    except OSError:
        return None
    return None


def diagnostics_text(console: Console, items: list[Diagnostic]) -> None:
    """``FILE:LINE:COL: path: message``, then the line and a caret; at most 20, then a count.

    Everything taken from the user's files (names, echoed lines) is ``printable``."""
    for d in items[:MAX_SHOWN]:
        where, path = printable(str(d.location or "")), printable(d.path + ": " if d.path else "")
        console.print(f"[bold]{escape(where)}[/]{': ' if d.location else ''}[red]{escape(path)}"
                      f"[/]{escape(printable(d.message))}", markup=True, highlight=False,
                      soft_wrap=True)
        loc = d.location
        if loc and loc.line and loc.col and Path(loc.file).is_file():
            text = _source_line(loc.file, loc.line)
            shown = printable(text) if text is not None else None
            if shown is not None and len(shown) < 300:
                pad = " " * (len(str(loc.line)) + 1)
                caret = " " * len(printable(text[:loc.col - 1]))
                # never wrapped: the caret must stay under its column
                console.print(f"[dim]{loc.line} |[/] {escape(shown)}", markup=True,
                              highlight=False, soft_wrap=True)
                console.print(f"[dim]{pad}|[/] {caret}[red]^[/]", markup=True,
                              highlight=False, soft_wrap=True)
    if len(items) > MAX_SHOWN:
        console.print(f"... and {len(items) - MAX_SHOWN} more", highlight=False)


def diagnostics_json(items: list[Diagnostic]) -> str:
    return json.dumps([d.as_dict() for d in items], indent=2)


def diagnostics_github(items: list[Diagnostic]) -> str:
    """GitHub Actions workflow commands (annotations on the pull request)."""
    out = []
    for d in items:
        loc = d.location
        props = f"file={loc.file},line={loc.line or 1},col={loc.col or 1}" if loc else ""
        msg = (f"{d.path}: " if d.path else "") + d.message
        msg = printable(msg.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))
        out.append(f"::error {props}::{msg}")
    return "\n".join(out)


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def layers_table(spec, graph) -> Table:
    t = Table(title=f"{spec.name}: {len(graph.layers)} layers", title_justify="left")
    for col in ("layer", "type", "ops", "output shape", "parameters"):
        t.add_column(col, justify="right" if col == "parameters" else "left")
    t.add_row("features", "input", "", _shape(graph.inputs[0].shape), "0")
    for info in graph.layers:
        t.add_row(info.name, info.type, ", ".join(info.ops) or "(none)", _shape(info.shape),
                  f"{info.n_params:,}")
    t.add_section()
    t.add_row("total", "", "", "", f"{graph.n_params:,}")
    return t


def _shape(shape) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def metrics_table(metrics: dict) -> Table:
    splits = [s for s in ("validation", "test") if metrics.get(s)]
    t = Table(title="metrics", title_justify="left")
    t.add_column("metric")
    for s in splits:
        t.add_column(s, justify="right")
    names = [k for k in metrics[splits[0]] if k not in ("confusion_matrix",)] if splits else []
    for k in names:
        t.add_row(k, *(fmt(metrics[s].get(k, "")) for s in splits))
    return t


def confusion_table(cm: list[list[int]], classes: list, split: str) -> Table:
    t = Table(title=f"{split} confusion matrix", caption="rows: true, columns: predicted",
              title_justify="left", caption_justify="left")
    t.add_column("")
    names = [printable(str(c)) for c in classes]
    for c in names:
        t.add_column(c, justify="right")
    for c, row in zip(names, cm, strict=True):
        t.add_row(c, *(str(v) for v in row))
    return t
