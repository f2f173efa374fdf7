"""Commands on exported models: predict, evaluate, doctor."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from dlspec.cli.app import (
    Backend,
    Device,
    DeviceOpt,
    Format,
    InputFormat,
    ModelArg,
    OnMissing,
    OnUnknown,
    Quiet,
    app,
    err,
    out,
    user_errors,
)


@contextlib.contextmanager
def _rows_progress(quiet: bool):
    """On a terminal, a bar with rows and rows/s once prediction takes over a second."""
    if quiet or not err.is_terminal:
        yield None
        return
    import time

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    start, state = time.perf_counter(), {}

    def on_rows(n: int) -> None:
        elapsed = time.perf_counter() - start
        if "bar" not in state:
            if elapsed < 1.0:
                return
            state["bar"] = Progress(TextColumn("predict"), BarColumn(bar_width=20),
                                    TextColumn("{task.completed:,} rows"),
                                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                    console=err, transient=True)
            state["task"] = state["bar"].add_task("predict", total=None, completed=n, rate="")
            state["bar"].start()
        state["bar"].update(state["task"], completed=n, rate=f"{n / elapsed:,.0f} rows/s")

    try:
        yield on_rows
    finally:
        if "bar" in state:
            state["bar"].stop()


@app.command()
def predict(
    model: ModelArg,
    data: Annotated[Path, typer.Argument(help="The input rows: .csv, .jsonl, .npy (structured "
                                         "array), .npz (an array per column), .parquet, or - "
                                         "for standard input (CSV, or see --input-format).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file: .csv, "
                                                ".jsonl, .npy or .parquet (default: CSV on "
                                                "stdout).")] = None,
    backend: Annotated[Backend, typer.Option(help="onnxruntime, or numpy (the training "
                                             "engine; needs a run directory).")
                       ] = Backend.onnxruntime,
    device: DeviceOpt = Device.cpu,
    batch_size: Annotated[int | None, typer.Option(min=1, max=10_000_000, help="Rows per "
                                                   "batch.")] = None,
    on_unknown: Annotated[OnUnknown, typer.Option(help="A category not seen in training: "
                                                  "error, or zeros (all-zero encoding).")
                          ] = OnUnknown.error,
    on_missing: Annotated[OnMissing, typer.Option(help="A missing value: error, or impute "
                                                  "(a number: its training mean; a category: "
                                                  "encoded as unseen).")] = OnMissing.error,
    input_format: Annotated[InputFormat | None, typer.Option(
        help="Read DATA as this format (default: by its extension; CSV for -).")] = None,
    keep: Annotated[list[str] | None, typer.Option(
        "--keep", metavar="COLUMN", help="Copy an input column (e.g. an id) to the front of "
        "the output, as read (repeatable).")] = None,
    quiet: Quiet = False,
    workers: Annotated[int, typer.Option(help="Run the model in this many processes (each "
                                         "its own onnxruntime session; tables on the CPU), "
                                         "written in input order.")] = 1,
) -> None:
    """Predict every row of DATA, one output row per input row, in order."""
    import dlspec.api as api

    with user_errors(), _rows_progress(quiet) as on_rows:
        report = api.predict(model, data, output, backend=backend.value, device=device.value,
                             batch_size=batch_size, on_unknown=on_unknown.value,
                             on_missing=on_missing.value, keep=keep or (),
                             input_format=input_format.value if input_format else None,
                             progress=on_rows, workers=workers)
    if not quiet:
        err.print(f"{report['rows']} rows predicted with {report['backend']} "
                  f"({report['provider']}) in {report['seconds']:.2f} s "
                  f"({report['rows_per_second']:,.0f} rows/s)"
                  + (f" -> {output}" if output else ""), soft_wrap=True)


@app.command()
def evaluate(
    model: ModelArg,
    data: Annotated[Path, typer.Argument(help="Labelled data: the input columns and the "
                                         "target (CSV, JSONL, NPY, NPZ, Parquet), or images "
                                         "(NPZ x/y, IDX with --labels, a folder per class).")],
    labels: Annotated[Path | None, typer.Option(help="IDX images: their labels file.")] = None,
    picture: Annotated[Path | None, typer.Option(help="Also draw the confusion matrix as an "
                                                 "SVG picture here.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
    device: DeviceOpt = Device.cpu,
) -> None:
    """Compute a model's metrics (and confusion matrix) on labelled data."""
    from dlspec.render import confusion_table, titled
    from dlspec.render import fmt as fmt_value

    with user_errors():
        from dlspec.runtime.evaluate import evaluate_model

        report = evaluate_model(model, data, labels=str(labels) if labels else None,
                                device=device.value)
        if picture and "confusion_matrix" in report:
            from dlspec.plot import confusion_svg
            from dlspec.runs import write_atomic

            write_atomic(picture, confusion_svg(report["confusion_matrix"], report["classes"],
                                                f"{model.name} on {data.name}").encode())
        if fmt is Format.json:
            sys.stdout.write(json.dumps(report, indent=2) + "\n")
            return
        from rich.table import Table

        t = Table()
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in report["metrics"].items():
            t.add_row(k, fmt_value(v))
        out.print(titled(f"{data.name}: {report['rows']} rows", t))
        if "confusion_matrix" in report:
            out.print(confusion_table(report["confusion_matrix"], report["classes"],
                                      data.name))
        if picture:
            err.print(f"confusion matrix picture: {picture}", soft_wrap=True)


@app.command()
def doctor() -> None:
    """Print versions, onnxruntime's providers, whether CUDA works, and the BLAS in use."""
    from rich.table import Table

    from dlspec.runtime.doctor import report

    with user_errors():
        from rich.markup import escape

        t = Table(show_header=False, box=None)
        for k, v in report():
            t.add_row(escape(k), escape(v))
        out.print(t)
