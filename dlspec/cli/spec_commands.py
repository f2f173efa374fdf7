"""Commands on specs: validate, schema, inspect, train, export."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated

import typer

from dlspec.cli.app import (
    Format,
    MaxMemory,
    Overrides,
    Quiet,
    app,
    err,
    out,
    size_option,
    user_errors,
)
from dlspec.errors import Diagnostic, Diagnostics


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
    from rich.markup import escape

    from dlspec.render import diagnostics_github, diagnostics_json, diagnostics_text, printable
    from dlspec.spec.load import load_spec

    problems: list[Diagnostic] = []
    files = _spec_files(paths)
    limit = size_option(max_memory)
    with user_errors():
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
                err.print(f"[green]ok[/] {escape(printable(f'{f}{note}'))}", markup=True,
                          soft_wrap=True)
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
    from dlspec.render import layers_table, printable

    with user_errors():
        if path.suffix == ".onnx":
            _inspect_model(path)
            return
        from dlspec.api import target_shape
        from dlspec.data.dataset import load_dataset
        from dlspec.engine.network import Network
        from dlspec.spec.load import check_memory, load_spec

        limit = size_option(max_memory)
        spec = load_spec(path, overrides or [], max_memory=limit)
        ds = load_dataset(spec)
        est = check_memory(spec, ds.input_shape, limit, target_shape(spec, ds))
        net = Network(spec.layers, ds.input_shape, spec.train.loss, spec.locate)
        out.print(layers_table(spec, net.graph))
        if ds.table is not None:
            names = printable(", ".join(ds.preprocessor.feature_names))
            out.print(f"features: {ds.input_shape} ({names})", soft_wrap=True)
        elif spec.data.sequence is not None:
            out.print(f"sequences: {ds.preprocessor.sequence_input.describe()}", soft_wrap=True)
        else:
            out.print(f"images: {' x '.join(map(str, ds.input_shape))} (height x width x "
                      "channels), raw uint8 pixels in the exported model")
        out.print(f"target: {printable(ds.target.name)} ({ds.target.task}"
                  + (f"; classes {ds.target.classes}" if ds.target.classes else "") + ")")
        out.print(f"rows: train {len(ds.x['train'])}, validation {len(ds.x['validation'])}, "
                  f"test {len(ds.x['test'])}")
        out.print(f"memory of a training step: {est.describe()}", soft_wrap=True)


def _inspect_model(path: Path) -> None:
    from rich.table import Table

    from dlspec.render import printable
    from dlspec.runtime.session import load_model

    m = load_model(path)
    t = Table(title=f"{path}: inputs", title_justify="left")
    for c in ("column", "kind", "categories"):
        t.add_column(c)
    for c in m.contract.inputs:
        t.add_row(printable(c.name), c.kind, printable(", ".join(c.categories)))
    out.print(t)
    if m.contract.sequence:
        out.print(f"sequences: {m.contract.sequence.describe()}", soft_wrap=True)
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

    with user_errors():
        from dlspec.spec.load import load_spec

        limit = size_option(max_memory)
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

    with user_errors():
        report = api.export(run, output, opset=opset)
        p = report["parity"]
        err.print(f"parity with the engine: {p['rows']} rows at batch sizes "
                  f"{p['batch_sizes']}, max |diff| {p['max_abs_diff']:.2e}")
        print(report["path"], flush=True)
