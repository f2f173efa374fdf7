"""``dlspec predict``: raw data in, one output row per input row (or window) out.

Two backends run the same model on the same raw batches: onnxruntime (the exported
model, the production path) and the NumPy engine (a run directory), so the two can be
compared row by row. What differs by input kind is how raw data is read in batches
(``READERS``) and how a batch becomes each backend's inputs (``ONNX_FEEDS``,
``ENGINE_FEEDS``); the rest (decoding, writing) is shared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dlspec.errors import Location, ModelError, UsageError
from dlspec.runtime.contract import Contract, contract_inputs
from dlspec.runtime.predict import Batch, predict_file, predict_images
from dlspec.runtime.sequences import predict_sequences
from dlspec.tasks import TASKS

DEFAULT_BATCH = 65_536
IMAGE_BATCH = 256


# How a raw batch becomes the inputs of each backend, by input kind ----------------------

def _onnx_table(contract: Contract, raw, on_unknown: str, on_missing: str) -> dict:
    return contract.feeds(raw, on_unknown=on_unknown, on_missing=on_missing)


def _onnx_array(contract: Contract, raw, on_unknown: str, on_missing: str) -> dict:
    name = contract.sequence.input if contract.sequence else contract.inputs[0].name
    return {name: raw}


def _onnx_tensors(contract: Contract, raw, on_unknown: str, on_missing: str) -> dict:
    return raw


def _engine_table(inputs: dict, raw, on_unknown: str, on_missing: str) -> dict:
    return {n: pre.transform(raw, on_unknown=on_unknown, on_missing=on_missing)
            for n, pre in inputs.items()}


def _engine_array(inputs: dict, raw, on_unknown: str, on_missing: str) -> dict:
    return {n: pre.transform(raw) for n, pre in inputs.items()}


def _engine_tensors(inputs: dict, raw, on_unknown: str, on_missing: str) -> dict:
    return {n: pre.transform(raw[n]) for n, pre in inputs.items()}


ONNX_FEEDS = {"table": _onnx_table, "image": _onnx_array, "sequence": _onnx_array,
              "tensor": _onnx_tensors, "text": _onnx_table}
ENGINE_FEEDS = {"table": _engine_table, "image": _engine_array, "sequence": _engine_array,
                "tensor": _engine_tensors, "text": _engine_table}


def _predict_tensors(runner, contract, width, data, out, batch_size, progress, **options):
    from dlspec.runtime.tensors import predict_tensors

    return predict_tensors(runner, contract, width, data, out, batch_size, progress, **options)


def _predict_images(runner, contract, width, data, out, batch_size, progress, **options):
    shape = contract.inputs[0].shape
    return predict_images(runner, contract, shape, data, out, batch_size, progress)


READERS = {"table": predict_file, "image": _predict_images, "sequence": predict_sequences,
           "tensor": _predict_tensors, "text": predict_file}


# Backends -------------------------------------------------------------------------------

def onnx_runner(session, contract: Contract, on_unknown: str = "error",
                on_missing: str = "error") -> Callable:
    feeds, names = ONNX_FEEDS[contract.kind], contract.outputs

    def run(raw) -> Batch:
        outs = session.run(names, feeds(contract, raw, on_unknown, on_missing))
        if not contract.decoded:  # every output, flattened per example, side by side
            return Batch(np.concatenate([o.reshape(len(o), -1) for o in outs], axis=1), None)
        if TASKS[contract.task].classifier:
            return Batch(outs[0], outs[1])
        return Batch(outs[0], None)
    return run


def exported_nodes(run):
    """The trimmed part of a run's model (``export.outputs``) when it leaves the trained head
    out, so that its outputs go out undecoded; else None."""
    spec = run.spec
    if spec.export_outputs is None and spec.export_inputs is None:
        return None
    from dlspec.graph.trim import trim

    trimmed = trim(run.net.graph, spec.export_outputs, spec.export_inputs)
    return None if next(iter(run.net.graph.outputs)) in trimmed.outputs else trimmed


def engine_runner(run, kind: str, on_unknown: str = "error",
                  on_missing: str = "error") -> Callable:
    """Predict with the NumPy engine of a loaded run directory, decoded as the exported
    model decodes (the label types of its graph: int64, string, or float32), or, where the
    export leaves the head out, its nodes' raw values."""
    trimmed = exported_nodes(run)
    if trimmed is not None:
        inputs = {n: run.inputs[n] for n in trimmed.inputs}

        def values(raw) -> Batch:
            outs = run.net.values(ENGINE_FEEDS[kind](inputs, raw, on_unknown, on_missing),
                                  list(trimmed.outputs)).values()
            return Batch(np.concatenate([o.reshape(len(o), -1) for o in outs], axis=1), None)
        return values
    known = run.target.classes
    classes = np.array(known, dtype=object if all(isinstance(c, str) for c in known) else
                       np.int64 if all(isinstance(c, int) for c in known) else np.float32)
    feeds, task = ENGINE_FEEDS[kind], TASKS[run.target.task]
    seq = next((p for p in run.inputs.values() if p.sequence_input is not None), None)

    def predict(raw) -> Batch:
        _, out = run.net.forward(feeds(run.inputs, raw, on_unknown, on_missing))
        if not task.classifier:
            return Batch(seq.unscale_target(out) if seq is not None else out, None)
        probs = task.scores(out)
        return Batch(probs, classes[np.argmax(probs, axis=1)])
    return predict


def run_contract(run) -> Contract:
    """The contract a run's exported model carries."""
    import dataclasses

    seq = next(((n, p.sequence_input) for n, p in run.inputs.items()
                if p.sequence_input is not None), None)
    sequence = dataclasses.replace(seq[1], input=seq[0]) if seq else None
    trimmed = exported_nodes(run)
    if trimmed is not None:
        inputs = {n: run.inputs[n] for n in trimmed.inputs}
        widths = [int(np.prod(v.shape[1:], dtype=np.int64)) for v in trimmed.outputs.values()]
        return Contract(contract_inputs(inputs), "", "none", [], list(trimmed.outputs),
                        sequence if seq and seq[0] in inputs else None, widths)
    return Contract(contract_inputs(run.inputs), run.target.name,
                    run.target.task, run.target.classes, sequence=sequence,
                    **({"dialect": run.spec.data.dialect} if run.spec.data else {}))


def predict(model: str | Path, data: str | Path, out: str | Path | None = None, *,
            backend: str = "onnxruntime", device: str = "cpu", batch_size: int | None = None,
            on_unknown: str = "error", on_missing: str = "error",
            input_format: str | None = None, keep: Sequence[str] = (),
            progress: Callable[[int], None] | None = None, workers: int = 1) -> dict:
    """Predict every row of ``data``; writes ``out`` (.csv, .jsonl, .npy, .parquet; stdout CSV
    if None), one row per input row, in order. A sequence model predicts once per complete
    window of a time-ordered file (on the window's last row), or once per window of an
    array (n, window, features) in a .npy or as ``x`` in an .npz.

    ``workers`` > 1: tables run through that many processes, each with its own onnxruntime
    session on the CPU, written in input order (dlspec.runtime.parallel).

    Returns a report: rows, backend, provider, seconds, rows_per_second.
    """
    from dlspec.data.preprocess import ON_MISSING, ON_UNKNOWN
    from dlspec.runs import LATEST, model_file, run_of_model
    from dlspec.runtime.session import load_model
    from dlspec.trained import load_run

    if on_unknown not in ON_UNKNOWN or on_missing not in ON_MISSING:
        raise UsageError(f"on_unknown must be one of {ON_UNKNOWN} and on_missing one of "
                         f"{ON_MISSING}; got {on_unknown!r}, {on_missing!r}", code="usage")
    start = time.perf_counter()
    model = Path(model)
    output = Path(out) if out else None
    if backend == "numpy":
        if model.is_file() and model.name != LATEST:
            raise ModelError("the numpy backend runs the training engine, which needs a run "
                             f"directory, not a model file; {run_of_model(model)} (or drop "
                             "--backend numpy to run this file with onnxruntime)",
                             Location(str(model)), code="run-missing")
        r = load_run(model)
        contract = run_contract(r)
        runner = engine_runner(r, contract.kind, on_unknown, on_missing)
        width = r.net.graph.output.shape[-1]
        provider = "numpy"
    else:
        loaded = load_model(model_file(model), device)
        contract = loaded.contract
        runner = onnx_runner(loaded.session, contract, on_unknown, on_missing)
        width = loaded.session.get_outputs()[0].shape[-1]
        provider = loaded.provider
    if contract.kind == "sequence":
        _no_impute(on_missing)
    if contract.decoded and TASKS[contract.task].classifier:
        width = 0
    elif not contract.decoded:
        width = sum(contract.widths)
    bs = batch_size or (IMAGE_BATCH if contract.kind == "image" else DEFAULT_BATCH)
    pool = _parallel(model, backend, device, contract, workers, on_unknown, on_missing)
    try:
        n = READERS[contract.kind](pool or runner, contract, width, data, output, bs,
                                   progress, input_format=input_format, keep=keep)
    finally:
        if pool is not None:
            pool.close()
    seconds = time.perf_counter() - start
    return {"rows": n, "backend": backend, "provider": provider, "seconds": seconds,
            "rows_per_second": n / seconds if seconds > 0 else 0.0}


def _parallel(model: Path, backend: str, device: str, contract, workers: int,
              on_unknown: str, on_missing: str):
    """--workers N: a pool of onnxruntime sessions, or None for one in this process."""
    if workers == 1:
        return None
    if workers < 1 or backend != "onnxruntime" or device != "cpu" or contract.kind != "table":
        raise UsageError(f"--workers {workers}: parallel prediction runs tables (CSV, JSONL, "
                         "NPY, NPZ, Parquet) on onnxruntime's CPU provider, with at least 1 "
                         "worker", code="usage")
    from dlspec.runs import model_file
    from dlspec.runtime.parallel import ParallelRunner

    return ParallelRunner(model_file(model), workers, on_unknown, on_missing)


def _no_impute(on_missing: str) -> None:
    """A sequence model reads whole series: a missing value cannot be imputed."""
    if on_missing != "error":
        raise UsageError(f"--on-missing {on_missing}: a sequence model's windows cannot have "
                         "gaps; fill the missing values first", code="usage")
