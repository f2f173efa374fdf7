"""``dlspec report``: one self-contained HTML page per run, or per set of runs.

    report_run(run_dir)               -> run_dir/report.html
    report_runs([a, b, c], "cmp.html") -> the comparison page

A page fetches nothing and runs no script: charts are inline SVG (``charts``), pictures
data: URIs, styles inline, and a Content-Security-Policy forbids everything else.
"""

from __future__ import annotations

from pathlib import Path

from dlspec.errors import Location, UsageError
from dlspec.report.compare import render_compare
from dlspec.report.html import CSP
from dlspec.report.page import render_run
from dlspec.report.runfiles import RunFiles

REPORT = "report.html"

__all__ = ["CSP", "REPORT", "RunFiles", "render_compare", "render_run", "report_runs"]


def report_runs(runs: list[str | Path], output: str | Path | None = None) -> Path:
    """Write the report of one run (default: inside it, as report.html) or the comparison
    of several (``output`` needed); returns the file written.

    Raises:
        ModelError: a path that is not a run directory, a damaged run file, an output that
            cannot be written. UsageError: no run, or several without an output.
    """
    from dlspec.runs import write_atomic

    if not runs:
        raise UsageError("give at least one run directory", code="usage")
    found, seen = [], set()
    for r in runs:
        files = RunFiles.from_dir(r)
        key = files.path.resolve()
        if key not in seen:  # runs/x/* names a run twice: by its id and as latest
            seen.add(key)
            found.append(files)
    if len(found) == 1:
        html = render_run(found[0])
        target = Path(output) if output is not None else found[0].path / REPORT
    else:
        if output is None:
            raise UsageError(f"{len(found)} runs make a comparison page: name its file with "
                             "-o (e.g. -o compare.html)", Location(str(runs[1])), code="usage")
        html = render_compare(found)
        target = Path(output)
    if target.is_dir():
        raise UsageError("is a folder: give the file to write (e.g. report.html)",
                         Location(str(target)), code="usage")
    write_atomic(target, html.encode("utf-8"))
    return target
