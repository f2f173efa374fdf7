"""``dlspec report``: a run's page, or several runs compared."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dlspec.cli.app import app, err, user_errors


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN...", help="Run directories (or "
                                               "their latest pointers).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="The HTML file "
                                                "(default for one run: RUN/report.html; "
                                                "needed for several).")] = None,
) -> None:
    """Write one self-contained HTML page: a run's report, or several runs compared."""
    import time

    with user_errors():
        from dlspec.report import report_runs

        start = time.perf_counter()
        path = report_runs(runs, output)
        err.print(f"report of {len(runs)} run(s) written in {time.perf_counter() - start:.2f} s",
                  soft_wrap=True)
    print(path, flush=True)
