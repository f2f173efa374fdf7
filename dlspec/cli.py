"""The dlspec command line: a thin layer over the Python API.

Results go to stdout, diagnostics and progress to stderr. Exit codes: 0 ok,
1 invalid input of any kind, 2 command-line usage, 3 training diverged,
130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dlspec.errors import Diagnostic, Diagnostics, DlspecError
from dlspec.version import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="Declarative model specs: validate, inspect, train, export, predict.")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)
_state = {"debug": False}

Overrides = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY.PATH=VALUE", help="Override a spec field (repeatable), e.g. "
    "--set train.epochs=5")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or tables.")]
MaxMemory = Annotated[str, typer.Option("--max-memory", metavar="SIZE", help="Refuse specs "
                                        "whose training step needs more (e.g. 8GiB, 512MB).")]


def _size(text: str) -> int:
    from dlspec.graph.resources import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--max-memory") from None


class Format(str, Enum):
    text = "text"
    json = "json"
    github = "github"


class Backend(str, Enum):
    onnxruntime = "onnxruntime"
    numpy = "numpy"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    auto = "auto"


class OnUnknown(str, Enum):
    error = "error"
    zeros = "zeros"


def _report(e: DlspecError) -> int:
    from dlspec.render import diagnostics_text

    if isinstance(e, Diagnostics):
        diagnostics_text(err, e.items)
    elif isinstance(e, Diagnostic):
        diagnostics_text(err, [e])
    else:
        err.print(f"[red]error[/]: {e}", markup=True, soft_wrap=True)
    return e.exit_code


@contextlib.contextmanager
def _errors():
    """Map dlspec's errors to messages and exit codes; anything else is a bug."""
    try:
        yield
    except DlspecError as e:
        raise typer.Exit(_report(e)) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130) from None
    except (typer.Exit, typer.BadParameter):
        raise
    except Exception as e:  # noqa: BLE001 - the one place that catches everything
        if _state["debug"]:
            traceback.print_exc()
        err.print(f"internal error: {type(e).__name__}: {e}\nThis is a bug in dlspec "
                  f"{__version__}; please report it (run with --debug for the traceback).",
                  markup=False, soft_wrap=True)
        raise typer.Exit(70) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"dlspec {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal "
                                        "errors.")] = False,
) -> None:
    _state["debug"] = debug


def _spec_files(paths: list[Path]) -> list[Path]:
    files = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(q for q in p.rglob("*") if q.suffix in (".yaml", ".yml")
                                and q.is_file()))
        else:
            files.append(p)
    return files


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Spec files or folders of them.")],
    overrides: Overrides = None,
    fmt: Annotated[Format, typer.Option("--format", help="text, json or github "
                                        "annotations.")] = Format.text,
    max_memory: MaxMemory = "8GiB",
    deep: Annotated[bool, typer.Option("--deep", help="Also export each network to ONNX at "
                                       "its opset and run it in onnxruntime.")] = False,
) -> None:
    """Check specs: schema and semantics, every problem located. Exit 0 when all are valid."""
    from dlspec.render import diagnostics_github, diagnostics_json, diagnostics_text
    from dlspec.spec.load import load_spec

    problems: list[Diagnostic] = []
    files = _spec_files(paths)
    limit = _size(max_memory)
    with _errors():
        for f in files:
            try:
                spec = load_spec(f, overrides or [], max_memory=limit)
                if deep:
                    _deep(spec)
            except Diagnostics as d:
                problems.extend(d.items)
                continue
            except Diagnostic as d:  # e.g. a bad cell met by --deep
                problems.append(d)
                continue
            if fmt is Format.text:
                note = "" if spec.data.source.is_file() else \
                    f" (data file {spec.data.source_text} not found: column checks skipped)"
                err.print(f"[green]ok[/] {f}{note}", soft_wrap=True)
    if fmt is Format.json:
        sys.stdout.write(diagnostics_json(problems) + "\n")
    elif fmt is Format.github:
        if problems:
            print(diagnostics_github(problems))
    else:
        diagnostics_text(err, problems)
        bad = len({d.location.file for d in problems if d.location})
        if problems:
            err.print(f"{len(problems)} problem(s) in {bad} of {len(files)} file(s)")
    raise typer.Exit(1 if problems or not files else 0)


def _deep(spec) -> None:
    from dlspec.onnx.check import deep_check

    width = 1
    if spec.data.source.is_file():
        from dlspec.data.dataset import load_dataset

        width = load_dataset(spec).input_shape
    problems = deep_check(spec, width)
    if problems:
        raise Diagnostics(problems)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="An .onnx model or a run directory.")],
    data: Annotated[Path, typer.Argument(help="Labelled data: the input columns and the "
                                         "target (CSV, JSONL, NPY, NPZ, Parquet), or images "
                                         "(NPZ x/y, IDX with --labels, a folder per class).")],
    labels: Annotated[Path | None, typer.Option(help="IDX images: their labels file.")] = None,
    picture: Annotated[Path | None, typer.Option(help="Also draw the confusion matrix as an "
                                                 "SVG picture here.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="text or json.")] = Format.text,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = Device.cpu,
) -> None:
    """Compute a model's metrics (and confusion matrix) on labelled data."""
    from dlspec.render import confusion_table
    from dlspec.render import fmt as fmt_value

    with _errors():
        from dlspec.runs import resolve_run_dir
        from dlspec.runtime.evaluate import evaluate_model

        if model.is_dir() or model.name == "latest":
            model = resolve_run_dir(model) / "model.onnx"
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

        t = Table(title=f"{data.name}: {report['rows']} rows", title_justify="left")
        t.add_column("metric")
        t.add_column("value", justify="right")
        for k, v in report["metrics"].items():
            t.add_row(k, fmt_value(v))
        out.print(t)
        if "confusion_matrix" in report:
            out.print(confusion_table(report["confusion_matrix"], report["classes"],
                                      data.name))
        if picture:
            err.print(f"confusion matrix picture: {picture}")


@app.command()
def doctor() -> None:
    """Print versions, onnxruntime's providers, whether CUDA works, and the BLAS in use."""
    from rich.table import Table

    from dlspec.runtime.doctor import report

    with _errors():
        from rich.markup import escape

        t = Table(show_header=False, box=None)
        for k, v in report():
            t.add_row(escape(k), escape(v))
        out.print(t)


@app.command()
def schema() -> None:
    """Print the JSON Schema of the spec format (for editors and other tools)."""
    from dlspec.spec.schema import schema_path

    sys.stdout.write(schema_path().read_text(encoding="utf-8"))


@app.command()
def inspect(
    path: Annotated[Path, typer.Argument(help="A spec file, or an exported .onnx model.")],
    overrides: Overrides = None,
    max_memory: MaxMemory = "8GiB",
) -> None:
    """Show a spec's layers (ops, output shapes, parameters), or a model's contract."""
    from dlspec.render import layers_table

    with _errors():
        if path.suffix == ".onnx":
            _inspect_model(path)
            return
        from dlspec.data.dataset import load_dataset
        from dlspec.engine.network import Network
        from dlspec.spec.load import check_memory, load_spec

        limit = _size(max_memory)
        spec = load_spec(path, overrides or [], max_memory=limit)
        ds = load_dataset(spec)
        est = check_memory(spec, ds.input_shape, limit)
        net = Network(spec.layers, ds.input_shape, spec.train.loss, spec.locate)
        out.print(layers_table(spec, net.graph))
        if ds.table is not None:
            names = ", ".join(ds.preprocessor.feature_names)
            out.print(f"features: {ds.input_shape} ({names})", soft_wrap=True)
        else:
            out.print(f"images: {' x '.join(map(str, ds.input_shape))} (height x width x "
                      "channels), raw uint8 pixels in the exported model")
        out.print(f"target: {ds.target.name} ({ds.target.task}"
                  + (f"; classes {ds.target.classes}" if ds.target.classes else "") + ")")
        out.print(f"rows: train {len(ds.x['train'])}, validation {len(ds.x['validation'])}, "
                  f"test {len(ds.x['test'])}")
        out.print(f"memory of a training step: {est.describe()}", soft_wrap=True)


def _inspect_model(path: Path) -> None:
    from rich.table import Table

    from dlspec.runtime.session import load_model

    m = load_model(path)
    t = Table(title=f"{path}: inputs", title_justify="left")
    for c in ("column", "kind", "categories"):
        t.add_column(c)
    for c in m.contract.inputs:
        t.add_row(c.name, c.kind, ", ".join(c.categories))
    out.print(t)
    out.print(f"outputs: {', '.join(m.contract.outputs)}; task {m.contract.task}"
              + (f"; classes {m.contract.classes}" if m.contract.classes else ""))
    for k in ("dlspec.name", "dlspec.version", "dlspec.spec_sha256"):
        out.print(f"{k}: {m.metadata.get(k, '?')}")


@app.command()
def train(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC", help="The spec file.")],
    overrides: Overrides = None,
    run_dir: Annotated[Path | None, typer.Option(help="Write the run exactly here (default: "
                                                 "runs/<name>/<run-id>).")] = None,
    quiet: Quiet = False,
    max_memory: MaxMemory = "8GiB",
) -> None:
    """Train a spec; the run directory's path is the last line on stdout."""
    import dlspec.api as api
    from dlspec.render import confusion_table, metrics_table

    with _errors():
        from dlspec.spec.load import load_spec

        limit = _size(max_memory)
        spec = load_spec(spec_path, overrides or [], max_memory=limit)
        with _progress(spec.train.epochs, quiet) as on_epoch:
            result = api.train(spec, run_dir=run_dir, on_epoch=on_epoch, max_memory=limit)
        m = result.metrics
        if not quiet:
            stop = f", stopped early (best epoch {m['best_epoch']})" if m["stopped_early"] else ""
            err.print(f"trained {m['epochs_run']} epochs, {m['steps']} steps in "
                      f"{m['training_seconds']:.2f} s{stop}")
            if m["validation"] or m["test"]:
                out.print(metrics_table(m))
            cm = (m["test"] or m["validation"]).get("confusion_matrix")
            if cm:
                out.print(confusion_table(cm, m["classes"], "test" if m["test"] else
                                          "validation"))
        print(result.run_dir, flush=True)


def _epoch_line(logs: dict, keys: tuple[str, ...] | None = None) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items()
                     if isinstance(v, float) and k != "seconds" and (keys is None or k in keys))


@contextlib.contextmanager
def _progress(epochs: int, quiet: bool):
    """A progress bar on a terminal; elsewhere (CI logs) a line every tenth of the epochs."""
    if quiet:
        yield None
        return
    if not err.is_terminal:
        every = max(1, epochs // 10)

        def log_line(epoch: int, logs: dict) -> None:
            if epoch % every == 0 or epoch in (1, epochs):
                err.print(f"epoch {epoch}/{epochs}  {_epoch_line(logs)}", soft_wrap=True)
        yield log_line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(bar_width=20),
                  TextColumn("{task.fields[logs]}"), console=err) as bar:
        task = bar.add_task("train", total=epochs, logs="")

        def on_epoch(epoch: int, logs: dict) -> None:
            shown = ("loss", "val_loss", *[k for k in logs if k not in ("loss", "val_loss")][:2])
            bar.update(task, completed=epoch, logs=_epoch_line(logs, shown))
        yield on_epoch


@app.command()
def export(
    run: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory (or its "
                                        "latest pointer).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="The .onnx file "
                                                "(default: <name>.onnx).")] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the spec's "
                                              "export.opset).")] = None,
) -> None:
    """Export a run to one ONNX file that takes raw columns, after a parity check."""
    import dlspec.api as api

    with _errors():
        report = api.export(run, output, opset=opset)
        p = report["parity"]
        err.print(f"parity with the engine: {p['rows']} rows at batch sizes "
                  f"{p['batch_sizes']}, max |diff| {p['max_abs_diff']:.2e}")
        print(report["path"], flush=True)


class OnMissing(str, Enum):
    error = "error"
    impute = "impute"


class InputFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"
    npy = "npy"
    npz = "npz"
    parquet = "parquet"


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
    model: Annotated[Path, typer.Argument(help="An .onnx model or a run directory.")],
    data: Annotated[Path, typer.Argument(help="The input rows: .csv, .jsonl, .npy (structured "
                                         "array), .npz (an array per column), .parquet, or - "
                                         "for standard input (CSV, or see --input-format).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output file: .csv, "
                                                ".jsonl, .npy or .parquet (default: CSV on "
                                                "stdout).")] = None,
    backend: Annotated[Backend, typer.Option(help="onnxruntime, or numpy (the training "
                                             "engine; needs a run directory).")
                       ] = Backend.onnxruntime,
    device: Annotated[Device, typer.Option(help="cpu, cuda or auto.")] = Device.cpu,
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
) -> None:
    """Predict every row of DATA, one output row per input row, in order."""
    import dlspec.api as api

    with _errors(), _rows_progress(quiet) as on_rows:
        report = api.predict(model, data, output, backend=backend.value, device=device.value,
                             batch_size=batch_size, on_unknown=on_unknown.value,
                             on_missing=on_missing.value, keep=keep or (),
                             input_format=input_format.value if input_format else None,
                             progress=on_rows)
    if not quiet:
        err.print(f"{report['rows']} rows predicted with {report['backend']} "
                  f"({report['provider']}) in {report['seconds']:.2f} s "
                  f"({report['rows_per_second']:,.0f} rows/s)"
                  + (f" -> {output}" if output else ""), soft_wrap=True)


def main() -> None:
    app()
