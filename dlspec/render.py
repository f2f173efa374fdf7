"""Rich rendering for the CLI: diagnostics with the offending line, tables, progress."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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


def titled(title: str, table: Table, caption: str | None = None) -> Group:
    """``table`` with its title on a line above it and its caption below: Rich would wrap
    a table's own title and caption to the table's width, cutting them mid-word."""
    parts = [Text(title, style="table.title", no_wrap=True, overflow="ignore"), table]
    if caption:
        parts.append(Text(caption, style="table.caption", no_wrap=True, overflow="ignore"))
    return Group(*parts)


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _is_chain(graph) -> bool:
    prev = [v.name for v in graph.inputs]
    for info in graph.layers:
        if list(info.inputs) != prev[-1:] or info.share:
            return False
        prev.append(info.name)
    return len(graph.inputs) == 1 and len(graph.outputs) == 1


def layers_table(spec, graph) -> Group:
    """One row per input and node: its layer, what it reads (for a graph that is not a
    chain), its ops, output shape and parameters."""
    chain = _is_chain(graph)
    t = Table()
    cols = ("layer", "type", *(() if chain else ("from",)), "ops", "output shape", "parameters")
    for col in cols:
        t.add_column(col, justify="right" if col == "parameters" else "left")
    for v in graph.inputs:
        t.add_row(v.name, "input", *(() if chain else ("",)), "", _shape(v.shape), "0")
    outputs = set(graph.outputs)
    for info in graph.layers:
        kind = info.type if info.share is None else f"{info.type} (shares {info.share})"
        name = info.name + (" (output)" if not chain and info.name in outputs else "")
        t.add_row(name, kind, *(() if chain else (", ".join(info.inputs),)),
                  ", ".join(info.ops) or "(none)", _shape(info.shape), f"{info.n_params:,}")
    t.add_section()
    t.add_row("total", "", *(() if chain else ("",)), "", "", f"{graph.n_params:,}")
    return titled(f"{spec.name}: {len(graph.layers)} layers", t)


def graph_table(graph) -> Group:
    """The lowered graph: every op with the values it reads and the shape it gives."""
    t = Table()
    for col in ("value", "op", "inputs", "shape"):
        t.add_column(col)
    for v in (*graph.inputs, *graph.targets):
        t.add_row(v.name, v.kind, "", _shape(v.shape))
    for p in graph.params:
        state = "" if p.trainable else " (frozen)" if p.frozen else " (not trained)"
        t.add_row(p.name, "param" + state, "", _shape(p.shape))
    for node in graph.nodes:
        attrs = ", ".join(f"{k}={v}" for k, v in node.attrs.items())
        t.add_row(node.output.name, node.op.name + (f" ({attrs})" if attrs else ""),
                  ", ".join(v.name for v in node.inputs), _shape(node.output.shape))
    return titled(f"{len(graph.nodes)} ops", t)


def _shape(shape) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def metrics_table(metrics: dict) -> Group:
    splits = [s for s in ("validation", "test") if metrics.get(s)]
    t = Table()
    t.add_column("metric")
    for s in splits:
        t.add_column(s, justify="right")
    names = [k for k in metrics[splits[0]] if k not in ("confusion_matrix",)] if splits else []
    for k in names:
        t.add_row(k, *(fmt(metrics[s].get(k, "")) for s in splits))
    return titled("metrics", t)


def confusion_table(cm: list[list[int]], classes: list, split: str) -> Group:
    t = Table()
    t.add_column("")
    names = [printable(str(c)) for c in classes]
    for c in names:
        t.add_column(c, justify="right")
    for c, row in zip(names, cm, strict=True):
        t.add_row(c, *(str(v) for v in row))
    return titled(f"{split} confusion matrix", t, "rows: true, columns: predicted")


def program_lines(spec, program) -> list[str]:
    """A training program as the loop runs it: each phase, its steps, what each optimizer
    minimises over which parameters (and, for a recipe, the keys it expands into)."""
    import yaml

    from dlspec.spec.model import thaw

    lines = []
    t = thaw(spec.resolved["train"])
    if t.get("recipe"):
        (kind, _), = t["recipe"].items()
        expanded = {k: t[k] for k in ("losses", "optimizers", "step", "phases") if k in t}
        lines.append(f"train.recipe {kind} expands to (spec.lock.yaml records it):")
        lines += ["  " + line for line in yaml.safe_dump(
            expanded, sort_keys=False, default_flow_style=None).splitlines()]
    lines.append("training program:")
    for phase in program.phases:
        lines.append(f"  phase {phase.name}: {phase.epochs} epoch(s), batch {phase.batch_size}"
                     + (f", frozen: {', '.join(sorted(phase.frozen))}" if phase.frozen else ""))
        if phase.rbm is not None:
            r = phase.rbm
            name, hyper = phase.optimizer
            how = f"{r.kind} visible units, CD-{r.cd_k}" + \
                (", persistent" if r.persistent else "") + (", every row" if r.all_rows else "")
            lines.append(f"    rbm on {r.layer} ({how}): {r.kernel.name}, {r.bias.name} by "
                         f"{name} {fmt_hyper(hyper)}")
            continue
        lines.append(f"    each batch: {' -> '.join(phase.step)}")
        for name, obj in phase.objectives.items():
            lines.append(f"    {name}: {obj.optimizer} {fmt_hyper(obj.hyper)} minimises "
                         f"{' + '.join(obj.losses)} over {len(obj.params)} parameter(s): "
                         f"{', '.join(p.name for p in obj.params[:6])}"
                         f"{' ...' if len(obj.params) > 6 else ''}")
    return lines


def fmt_hyper(hyper) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in hyper.items()) + ")"
