"""Commands on specs: init, validate, schema, inspect, train, export."""

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
from dlspec.errors import Diagnostic, Diagnostics, Location

SPEC_SUFFIXES = (".yaml", ".yml")


@app.command()
def init(
    data: Annotated[Path, typer.Argument(help="A CSV file, IDX images, an .npz of images or a "
                                         "folder with one sub-folder of images per class.")],
    target: Annotated[str | None, typer.Option("--target", "-t", metavar="COLUMN",
                                               help="The column to predict (tables).")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write the spec here "
                                                "(default: stdout).")] = None,
    sequence: Annotated[int | None, typer.Option(metavar="WINDOW", min=1, help="Rows are in "
                                                 "time order: forecast from windows of this "
                                                 "many rows.")] = None,
    labels: Annotated[Path | None, typer.Option(help="IDX images: the labels file (default: "
                                                "found beside the images).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing -o file.")
                     ] = False,
) -> None:
    """Write a commented spec for a data file that validates and trains as it is."""
    from dlspec.errors import Location, UsageError
    from dlspec.fsio import atomic_write
    from dlspec.scaffold import init_spec

    with user_errors():
        if output is not None and output.exists() and not force:
            raise UsageError("already exists; use --force to overwrite it",
                             Location(str(output)), code="usage")
        result = init_spec(data, target=target, sequence=sequence, labels=labels,
                           spec_path=output)
        if output is None:
            sys.stdout.write(result.text)
            return
        atomic_write(output, result.text.encode("utf-8"))
        dropped = [str(c.value) for c in result.choices if c.key == "data.drop"]
        err.print(f"{result.task} task" + (f"; dropped {', '.join(dropped)}" if dropped else "")
                  + f"; every choice is explained in {output}", soft_wrap=True, markup=False)
        print(output, flush=True)


def _spec_files(paths: list[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The spec files under ``paths``, and a problem for each folder that holds none."""
    files, empty = [], []
    for p in paths:
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix in SPEC_SUFFIXES and q.is_file())
            if not found:
                patterns = " and ".join(f"*{s}" for s in SPEC_SUFFIXES)
                empty.append(Diagnostic(f"no spec files found under this folder (looked for "
                                        f"{patterns} files, sub-folders included)",
                                        Location(str(p)), code="no-specs"))
            files.extend(found)
        else:
            files.append(p)
    return files, empty


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
    from dlspec.spec.datacheck import check_kinds, missing_data
    from dlspec.spec.load import load_spec

    files, problems = _spec_files(paths)
    limit = size_option(max_memory)
    bad = 0
    with user_errors():
        for f in files:
            try:
                spec = load_spec(f, overrides or [], max_memory=limit)
                kinds = check_kinds(spec)
                if kinds:
                    raise Diagnostics(kinds)
                missing = missing_data(spec)
                if deep:
                    _deep(spec)
            except Diagnostics as d:
                problems.extend(d.items)
                bad += 1
                continue
            except Diagnostic as d:  # e.g. a bad cell met by --deep
                problems.append(d)
                bad += 1
                continue
            if fmt is Format.text:
                note = f" ({'; '.join(missing)})" if missing else ""
                err.print(f"[green]ok[/] {escape(printable(f'{f}{note}'))}", markup=True,
                          soft_wrap=True)
    if fmt is Format.json:
        sys.stdout.write(diagnostics_json(problems) + "\n")
    elif fmt is Format.github:
        if problems:
            print(diagnostics_github(problems))
    else:
        diagnostics_text(err, problems)
        if problems and files:
            err.print(f"{len(problems)} problem(s) in {bad} of {len(files)} file(s)",
                      soft_wrap=True)
    raise typer.Exit(1 if problems or not files else 0)


def _deep(spec) -> None:
    from dlspec.onnx.check import deep_check
    from dlspec.spec.compile import compile_graph

    if spec.data is not None and spec.data.source.is_file():
        from dlspec.inputs import load_dataset

        shapes = load_dataset(spec).input_shapes
    else:
        shapes = {i.name: i.shape or (1,) for i in spec.model.inputs}
    graph = compile_graph(spec, shapes, init=False).graph
    problems = deep_check(graph, spec.opset, spec.name, spec.locate(("export", "opset"), False))
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
    graph: Annotated[bool, typer.Option("--graph", help="Also print the lowered ops, with "
                                        "their inputs and output shapes.")] = False,
) -> None:
    """Show a spec's nodes (layers, inputs, output shapes, parameters), or a model's contract."""
    from dlspec.render import graph_table, layers_table, printable

    with user_errors():
        if path.suffix == ".onnx":
            _inspect_model(path)
            return
        from dlspec.spec.load import load_spec

        limit = size_option(max_memory)
        spec = load_spec(path, overrides or [], max_memory=limit)
        if spec.data is None:
            from dlspec.spec.compile import compile_graph

            compiled, ds = compile_graph(spec, {i.name: i.shape for i in spec.model.inputs},
                                         limit=limit, init=False), None
        else:
            from dlspec.inputs import KINDS, load_dataset
            from dlspec.training import compile_network

            ds = load_dataset(spec)
            compiled, _ = compile_network(spec, ds, limit, init=False)
        out.print(layers_table(spec, compiled.graph))
        if graph:
            out.print(graph_table(compiled.graph))
        if compiled.init is not None:
            init = compiled.init
            out.print(f"init_from {init.source}: {len(init.loads)} parameter(s) loaded "
                      f"({', '.join(init.loads.values()) or 'none'}); skipped: "
                      f"{', '.join(init.skipped) or 'none'}; freshly initialised: "
                      f"{', '.join(init.fresh) or 'none'}", soft_wrap=True)
        elif spec.model.init_from is not None:
            out.print(f"init_from {printable(str(spec.model.init_from.run))}: no run there "
                      "yet (training needs it; inspect shows the graph without it)",
                      soft_wrap=True)
        frozen = [p.name for p in compiled.graph.params if p.frozen]
        if frozen:
            out.print(f"frozen: {', '.join(frozen)}", soft_wrap=True)
        if spec.export_outputs is not None or spec.export_inputs is not None:
            out.print(_exported(spec, compiled.graph), soft_wrap=True)
        if ds is not None:
            out.print(printable(KINDS[ds.kind].describe(ds.inputs)), soft_wrap=True)
            out.print(f"target: {printable(ds.target.name)} ({ds.target.task}"
                      + (f"; classes {ds.target.classes}" if ds.target.classes else "") + ")",
                      soft_wrap=True)
            out.print(f"rows: train {len(ds.y['train'])}, validation "
                      f"{len(ds.y['validation'])}, test {len(ds.y['test'])}", soft_wrap=True)
        if compiled.estimate is not None:
            out.print(f"memory of a training step: {compiled.estimate.describe()}",
                      soft_wrap=True)
        if compiled.program is not None:
            from dlspec.render import program_lines

            for line in program_lines(spec, compiled.program):
                out.print(printable(line), soft_wrap=True, markup=False, highlight=False)


def _exported(spec, graph) -> str:
    """What a trimmed export (export.outputs/inputs) keeps of the graph."""
    from dlspec.graph.trim import trim

    t = trim(graph, spec.export_outputs, spec.export_inputs)
    params = {v.id for n in t.nodes for v in n.inputs if v.kind == "param"}
    kept = sum(p.size for p in graph.params if p.value.id in params)
    layers = {n.layer for n in t.nodes}
    # decoded only where a supervised loss trained the head on the data's target (a
    # training program's export, a GAN's generator say, goes out as plain values)
    head = spec.data is not None and spec.train.loss is not None \
        and next(iter(graph.outputs)) in t.outputs
    return (f"export: {', '.join(t.outputs)} from {', '.join(t.inputs)} ({len(layers)} of "
            f"{len(graph.layers)} nodes, {kept:,} of {graph.n_params:,} parameters; "
            + ("the head decoded)" if head else "undecoded)"))


def _inspect_model(path: Path) -> None:
    from rich.table import Table

    from dlspec.render import printable, titled
    from dlspec.runtime.session import load_model

    m = load_model(path)
    t = Table()
    for c in ("column", "kind", "categories"):
        t.add_column(c)
    for c in m.contract.inputs:
        t.add_row(printable(c.name), c.kind, printable(", ".join(c.categories)))
    out.print(titled(f"{path}: inputs", t))
    if m.contract.sequence:
        out.print(f"sequences: {m.contract.sequence.describe()}", soft_wrap=True)
    c = m.contract
    if not c.decoded and len(c.widths) == len(c.outputs):  # node values, not a task's head
        values = ", ".join(f"{o} ({w} value{'s' if w != 1 else ''})"
                           for o, w in zip(c.outputs, c.widths, strict=True))
        out.print(f"outputs: {values}, undecoded float32; task none", soft_wrap=True)
    else:
        out.print(f"outputs: {', '.join(c.outputs)}; task {c.task}"
                  + (f"; classes {c.classes}" if c.classes else ""), soft_wrap=True)
    for k in ("dlspec.name", "dlspec.version", "dlspec.spec_sha256"):
        out.print(f"{k}: {m.metadata.get(k, '?')}", soft_wrap=True)
    if m.metadata.get("dlspec.note"):
        out.print(f"dlspec.note: {m.metadata['dlspec.note']}", soft_wrap=True, markup=False)


@app.command()
def train(
    spec_path: Annotated[Path | None, typer.Argument(
        metavar="[SPEC]", help="The spec file (with --resume: optional, checked to be the "
        "run's).")] = None,
    overrides: Overrides = None,
    run_dir: Annotated[Path | None, typer.Option(help="Write the run exactly here (default: "
                                                 "runs/<name>/<run-id>).")] = None,
    resume: Annotated[Path | None, typer.Option(
        "--resume", metavar="RUN_DIR", help="Continue this run from its newest checkpoint, "
        "exactly as if it had not stopped.")] = None,
    quiet: Quiet = False,
    max_memory: MaxMemory = "8GiB",
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not write report.html "
                                            "into the run directory.")] = False,
    engine: Annotated[str | None, typer.Option(
        help="numpy (dlspec's engine) or torch (PyTorch; pip install 'dlspec[torch]'): "
             "sets train.engine.")] = None,
    workers: Annotated[int, typer.Option(
        help="Train with torch's DistributedDataParallel over this many local processes "
             "(gloo; the spec's batch_size is the global batch).")] = 1,
) -> None:
    """Train a spec; the run directory's path is the last line on stdout."""
    import dlspec.api as api
    from dlspec.errors import RunFinished, UsageError
    from dlspec.render import confusion_table, metrics_table

    with user_errors():
        from dlspec.spec.load import load_spec

        limit = size_option(max_memory)
        if resume is None and spec_path is None:
            raise UsageError("give a spec to train, or --resume RUN_DIR", code="usage")
        if resume is not None and run_dir is not None:
            raise UsageError("--run-dir and --resume: a resumed run stays where it is",
                             code="usage")
        engine_set = [f"train.engine={engine}"] if engine is not None else []
        sets = [*(overrides or []), *engine_set]
        spec = load_spec(spec_path, sets, max_memory=limit) if spec_path else None
        try:
            epochs = spec.train.total_epochs if spec is not None and spec.train else None
            with _progress(epochs, quiet) as on_epoch:
                result = api.train(spec, sets, run_dir=run_dir, on_epoch=on_epoch,
                                   max_memory=limit, resume=resume, report=not no_report,
                                   workers=workers)
        except RunFinished as e:
            err.print(str(e), soft_wrap=True, markup=False)
            return
        if result is None:   # a rank other than 0 under torchrun: rank 0 reports
            return
        m = result.metrics
        if not quiet:
            stop = f", stopped early (best epoch {m['best_epoch']})" if m["stopped_early"] else ""
            err.print(f"trained {m['epochs_run']} epochs, {m['steps']} steps in "
                      f"{m['training_seconds']:.2f} s{stop}", soft_wrap=True)
            if m["validation"] or m["test"]:
                out.print(metrics_table(m))
            cm = (m["test"] or m["validation"]).get("confusion_matrix")
            if cm:
                out.print(confusion_table(cm, m["classes"], "test" if m["test"] else
                                          "validation"))
            for picture in m.get("pictures") or ():
                out.print(f"picture: {Path(result.run_dir) / picture['file']}  "
                          f"({picture['title']})", soft_wrap=True, markup=False)
        if result.note:
            err.print(f"note: {result.note}", soft_wrap=True, markup=False)
        if not quiet and not no_report:
            err.print(f"report: {result.run_dir / 'report.html'}", soft_wrap=True)
        print(result.run_dir, flush=True)


def _epoch_line(logs: dict, keys: tuple[str, ...] | None = None) -> str:
    return "  ".join(f"{k} {v:.4f}" for k, v in logs.items()
                     if isinstance(v, float) and k != "seconds" and (keys is None or k in keys))


@contextlib.contextmanager
def _progress(epochs: int | None, quiet: bool):
    """A progress bar on a terminal; elsewhere (CI logs) a line every tenth of the epochs
    (``epochs`` None: a resumed run's, known later; a line every epoch)."""
    if quiet:
        yield None
        return
    if not err.is_terminal or epochs is None:
        every = max(1, (epochs or 1) // 10)

        def log_line(epoch: int, logs: dict) -> None:
            if epoch % every == 0 or epoch in (1, epochs):
                phase = f"  [{logs['phase']}]" if "phase" in logs else ""
                total = f"/{epochs}" if epochs else ""
                err.print(f"epoch {epoch}{total}{phase}  {_epoch_line(logs)}",
                          soft_wrap=True)
        yield log_line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(TextColumn("epoch"), MofNCompleteColumn(), BarColumn(bar_width=20),
                  TextColumn("{task.fields[logs]}"), console=err) as bar:
        task = bar.add_task("train", total=epochs, logs="")

        def on_epoch(epoch: int, logs: dict) -> None:
            if "loss" in logs:
                shown = ("loss", "val_loss",
                         *[k for k in logs if k not in ("loss", "val_loss")][:2])
            else:   # named losses: the first few, as they come
                shown = tuple(k for k in logs if k not in ("epoch", "seconds"))[:4]
            phase = f"[{logs['phase']}] " if "phase" in logs else ""
            bar.update(task, completed=epoch, logs=phase + _epoch_line(logs, shown))
        yield on_epoch


def _export_torch(run: Path, output: Path | None, to: str) -> None:
    from dlspec.errors import UsageError

    if to != "torch":
        raise UsageError(f"--to {to}: expected onnx or torch", code="usage")
    if output is None:
        raise UsageError("--to torch writes a folder: name it with -o DIR", code="usage")
    if run.suffix in SPEC_SUFFIXES:
        raise UsageError("--to torch exports a trained run (dlspec train the spec first)",
                         code="usage")
    from dlspec.torchengine.export import export_torch

    path = export_torch(run, output)
    err.print(f"wrote model.py, model.safetensors, train.py and preprocess.json; train "
              f"with: torchrun --standalone --nproc_per_node=N {path}/train.py --data "
              "DATA.npz", soft_wrap=True, markup=False)
    print(path, flush=True)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(metavar="RUN_DIR|SPEC", help="A run directory (or "
                                        "its latest pointer), or a spec whose weights are "
                                        "all given.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="The .onnx file "
                                                "(default: <name>.onnx).")] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: the spec's "
                                              "export.opset).")] = None,
    overrides: Overrides = None,
    nodes: Annotated[list[str] | None, typer.Option(
        "--node", help="Export only this node and what it needs (repeatable; as "
        "export.outputs).")] = None,
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", help="The inputs the exported nodes take, in order (repeatable; as "
        "export.inputs).")] = None,
    to: Annotated[str, typer.Option(help="onnx (one file), or torch: a folder with model.py, "
                                    "model.safetensors and a torchrun train.py (-o names the "
                                    "folder).")] = "onnx",
) -> None:
    """Export a run (or a spec with its weights) to one ONNX file taking raw inputs, after a
    parity check; or, with --to torch, a run as a PyTorch project."""
    import dlspec.api as api

    with user_errors():
        if to != "onnx":
            _export_torch(run, output, to)
            return
        if run.suffix in SPEC_SUFFIXES and run.is_file():
            from dlspec.spec.load import load_spec

            trims = [f"export.{key}=[{', '.join(names)}]" for key, names in
                     (("outputs", nodes), ("inputs", inputs)) if names]
            report = api.export_spec(load_spec(run, [*(overrides or []), *trims]), output,
                                     opset=opset)
        else:
            if overrides:
                from dlspec.errors import UsageError

                raise UsageError("--set changes a spec; a run directory's spec is fixed by its"
                                 " lock (export the spec itself, or train it again)",
                                 code="usage")
            report = api.export(run, output, opset=opset, outputs=nodes or None,
                                inputs=inputs or None)
        p = report["parity"]
        err.print(f"parity with the engine: {p['rows']} rows at batch sizes "
                  f"{p['batch_sizes']}, max |diff| {p['max_abs_diff']:.2e}", soft_wrap=True)
        if report.get("note"):
            err.print(f"note: {report['note']}", soft_wrap=True, markup=False)
        if report.get("unfinished"):
            err.print(f"note: {report['unfinished']}", soft_wrap=True, markup=False)
        print(report["path"], flush=True)
