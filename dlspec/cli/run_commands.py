"""Commands on run directories: runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dlspec.cli.app import Format, app, out, user_errors


@app.command()
def runs(
    name: Annotated[str | None, typer.Argument(help="Only the runs of this spec name.")] = None,
    root: Annotated[Path, typer.Option("--root", help="The runs folder.")] = Path("runs"),
    fmt: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
) -> None:
    """List runs, newest first: state (finished, interrupted at epoch E, diverged,
    running), epochs, best validation value, test value, training time."""
    from dlspec.run_list import as_json, list_runs

    with user_errors():
        rows = list_runs(root, name)
        if fmt is Format.json:
            sys.stdout.write(as_json(rows) + "\n")
            return
        from rich.table import Table

        t = Table()
        for col, justify in (("run", "left"), ("state", "left"), ("epochs", "right"),
                             ("best validation", "right"), ("test", "right"),
                             ("time", "right")):
            t.add_column(col, justify=justify)
        for r in rows:
            t.add_row(r["id"], r["state"], _text(r["epochs"]), _value(r["best_validation"]),
                      _value(r["test"]),
                      f"{r['seconds']:.1f} s" if r["seconds"] is not None else "")
        out.print(t)


def _text(v) -> str:
    return "" if v is None else str(v)


def _value(v) -> str:
    return "" if not v else f"{v[0]} {v[1]:.4f}"
