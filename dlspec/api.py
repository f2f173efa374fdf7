"""dlspec's Python API: what the CLI calls, and what users import.

    import dlspec
    spec = dlspec.load_spec("specs/churn.yaml", ["train.epochs=5"])
    result = dlspec.train(spec)
    dlspec.export(result.run_dir, "churn.onnx")
    dlspec.predict("churn.onnx", "customers.csv", "predictions.csv")
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from dlspec.data.dataset import Dataset, Target, load_dataset
from dlspec.data.image_prep import ImagePreprocessor
from dlspec.data.preprocess import Preprocessor
from dlspec.data.sequence import SequencePreprocessor
from dlspec.data.table import read_csv
from dlspec.engine import metrics as M
from dlspec.engine.network import Network
from dlspec.engine.trainer import FitResult, evaluate, fit, predict_classes
from dlspec.errors import Diagnostics, Location, ModelError, ParityError, SpecError
from dlspec.graph.resources import DEFAULT_LIMIT
from dlspec.runs import (
    check_run_dir,
    load_arrays,
    model_file,
    new_run_id,
    point_latest,
    resolve_run_dir,
    save_arrays,
    write_atomic,
    write_run,
)
from dlspec.spec.heads import TargetShape
from dlspec.spec.load import check_memory, load_spec
from dlspec.spec.model import Spec, thaw
from dlspec.version import __version__

HOLDOUT = "holdout.csv"
HOLDOUT_IMAGES = "holdout.npz"
HOLDOUT_WINDOWS = "holdout_windows.npz"
_PREPROCESSORS = {p.kind: p for p in (Preprocessor, ImagePreprocessor, SequencePreprocessor)}
IMAGE_BATCH = 256


@dataclass
class TrainResult:
    run_dir: Path
    spec: Spec
    fit: FitResult
    metrics: dict        # the content of metrics.json


@dataclass
class Run:
    """A trained model loaded back from its run directory."""

    path: Path
    spec: Spec
    net: Network
    preprocessor: Preprocessor | ImagePreprocessor | SequencePreprocessor
    target: Target


def _as_spec(spec: Spec | str | Path, overrides: Sequence[str]) -> Spec:
    return spec if isinstance(spec, Spec) else load_spec(spec, overrides)


def _check_lock(spec: Spec, ds: Dataset) -> None:
    if spec.lock and spec.lock["data_sha256"] != ds.sha256:
        raise Diagnostics([SpecError(
            f"the data file changed since this lock was written: its SHA-256 is {ds.sha256}, "
            f"the lock expects {spec.lock['data_sha256']}",
            spec.locate(("lock", "data_sha256"), False), path="lock.data_sha256",
            code="lock-data")])


def _split_report(net: Network, ds: Dataset, spec: Spec, split: str) -> dict:
    x, y = ds.x[split], ds.y[split]
    if len(x) == 0:
        return {}
    report = {"rows": int(len(x)), **evaluate(net, x, y, ds.target.task, spec.train.metrics)}
    if ds.preprocessor.kind == "sequence" and ds.target.task == "regression":
        report = _forecast_report(net, ds, spec, split, report)
    if ds.target.task != "regression":
        cm = M.confusion_matrix(y, predict_classes(net, x), len(ds.target.classes))
        report["confusion_matrix"] = cm.tolist()
    return report


def _forecast_report(net: Network, ds: Dataset, spec: Spec, split: str, report: dict) -> dict:
    """A sequence model's errors in the target's units (its loss, in the scaled units it was
    trained in, becomes ``scaled_loss``), and those of the naive forecast "the target's
    last value in the window" (``naive_rmse``, ``naive_mae``) where the target is a feature."""
    pre, rows = ds.preprocessor, ds.rows[split]
    y = ds.targets[rows].astype(np.float64)
    out = pre.unscale_target(net.forward(ds.x[split])[1]).astype(np.float64)
    if pre.target_scaled:
        report = {("scaled_loss" if k == "loss" else k): v for k, v in report.items()}
    report.update(M.compute(spec.train.metrics, "regression", y, out),
                  rmse=float(np.sqrt(np.mean((out - y) ** 2))))
    if pre.target in pre.columns and out.shape[1] == 1:
        last = ds.windows[rows][:, -1, pre.columns.index(pre.target)].astype(np.float64)
        naive = last.reshape(y.shape)
        report["naive_rmse"] = float(np.sqrt(np.mean((naive - y) ** 2)))
        report["naive_mae"] = float(np.mean(np.abs(naive - y)))
    return report


def train(spec: Spec | str | Path, overrides: Sequence[str] = (), *,
          run_dir: str | Path | None = None, runs_root: str | Path = "runs",
          on_epoch: Callable[[int, dict], None] | None = None,
          max_memory: int = DEFAULT_LIMIT) -> TrainResult:
    """Train a spec and write its run directory (weights, metrics, model.onnx).

    Args:
        run_dir: write the run exactly here (default ``runs_root/<name>/<run-id>``,
            with ``runs_root/<name>/latest`` pointing at it).
        on_epoch: progress callback ``(epoch, logs)``.
        max_memory: refuse to train when a step would need more bytes than this.

    Raises:
        Diagnostics, DataError: invalid spec or data. TrainingDiverged: non-finite loss.
        ExportError: the exported model fails its checks.
    """
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_parity

    spec = _as_spec(spec, overrides)
    target = Path(run_dir) if run_dir is not None else Path(runs_root) / spec.name / "run"
    check_run_dir(target)  # before training, not after
    ds = load_dataset(spec)
    _check_lock(spec, ds)
    check_memory(spec, ds.input_shape, max_memory, target_shape(spec, ds))
    net = Network(spec.layers, ds.input_shape, spec.train.loss, spec.locate)
    result, opt = fit(net, spec.train, ds.target.task, ds.x, ds.y, on_epoch,
                      augment=_augment(spec, ds))
    model = build_model(net, ds.preprocessor, ds.target, opset=spec.opset, name=spec.name,
                        spec_sha256=spec.sha256)
    held = next(ds.rows[s] for s in ("test", "validation", "train") if len(ds.rows[s]))
    contract = _contract(model)
    parity = _located(spec, net, check_parity, _cpu_session(model.SerializeToString()),
                      contract.outputs[0], net, ds.target.task,
                      _raw_rows(ds.preprocessor, contract, ds.raw), held)
    metrics = {
        "name": spec.name, "dlspec_version": __version__, "spec_sha256": spec.sha256,
        "data_sha256": ds.sha256, "task": ds.target.task, "classes": ds.target.classes,
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early, "steps": result.steps,
        "training_seconds": round(result.seconds, 3),
        "validation": _split_report(net, ds, spec, "validation"),
        "test": _split_report(net, ds, spec, "test"),
        "export_parity": parity,
    }
    weights, manifest = save_arrays(net.buffer.state(), spec.sha256)
    opt_state = io.BytesIO()
    np.savez(opt_state, **opt.state())
    files = {
        "spec.lock.yaml": _lock_yaml(spec, ds),
        "weights.npz": weights, "weights.json": manifest,
        "optimizer.npz": opt_state.getvalue(),
        "preprocess.json": json.dumps({"preprocessing": ds.preprocessor.to_dict(),
                                       "target": ds.target.to_dict()}, indent=2).encode(),
        "metrics.json": json.dumps(metrics, indent=2).encode(),
        "history.csv": _history_csv(result.history),
        "curve.svg": _curve_svg(result.history, spec.name),
        **_holdout(ds, held),
        "model.onnx": model.SerializeToString(),
    }
    if run_dir is None:
        path = write_run(Path(runs_root) / spec.name / new_run_id(), files)
        point_latest(path)
    else:
        path = write_run(Path(run_dir), files)
    return TrainResult(path, spec, result, metrics)


def target_shape(spec: Spec, ds: Dataset) -> TargetShape:
    """What the output is trained against, with the classes and columns found in the data."""
    y = ds.y["train"]
    return TargetShape(ds.target.task, ds.target.name, len(ds.target.classes) or None,
                       y.shape[1] if y.ndim == 2 else 1, spec.data.sequence is not None)


def _located(spec: Spec, net: Network, check, *args) -> dict:
    """``check(*args)`` (the parity gate), its mismatch located in the spec: at a recurrent
    activation that onnxruntime computes by an overflowing formula, else at the model."""
    from dlspec.onnx.parity import overflowing_activations

    try:
        return check(*args)
    except ParityError as e:
        found = overflowing_activations(net.graph)
        if not found:
            raise Diagnostics([SpecError(
                f"{e}: the trained model is computed differently by the two, most likely "
                "because its values grow too large for float32 to agree (unscaled inputs, "
                "unbounded activations such as linear or relu recurrent gates); scale the "
                "inputs, bound the activations, or lower the learning rate",
                spec.locate(("model",), True), path="model", code="export-parity")]) from None
        name, attr, act = found[0]
        i = next(k for k, layer in enumerate(spec.layers) if layer.name == name)
        path = ("model", "layers", i, spec.layers[i].type, attr)
        raise Diagnostics([SpecError(
            f"{e}: layer '{name}' uses {act.name}, which onnxruntime's recurrent ops compute "
            f"as {act.onnx_formula}, infinite past x = {act.onnx_overflow} where the engine's "
            f"stays finite; scale the inputs (e.g. preprocess: - standardize: all) or use "
            f"another {attr}", spec.locate(path, False),
            path=f"model.layers[{i}].{spec.layers[i].type}.{attr}", code="export-parity")]) \
            from None


def _cpu_session(model_bytes: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=opts,
                                providers=["CPUExecutionProvider"])


def _lock_yaml(spec: Spec, ds: Dataset) -> bytes:
    resolved = thaw(spec.resolved)
    resolved["data"]["source"] = str(spec.data.source)
    resolved["lock"] = {"data_sha256": ds.sha256, "spec_sha256": spec.sha256,
                        "dlspec_version": __version__}
    head = (f"# Written by dlspec {__version__}: the spec as trained, every default filled in.\n"
            "# `dlspec train` on this file repeats the run (and checks the data's SHA-256).\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's is ~10x faster
    return (head + yaml.dump(resolved, Dumper=dumper, sort_keys=False,
                             allow_unicode=True)).encode()


def _history_csv(history: list[dict]) -> bytes:
    out = io.StringIO()
    keys = list(dict.fromkeys(k for row in history for k in row))
    w = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    return out.getvalue().encode()


def _contract(model):
    from dlspec.runtime.contract import CONTRACT_KEY, Contract

    meta = {p.key: p.value for p in model.metadata_props}
    return Contract.from_json(meta[CONTRACT_KEY], "model")


def _raw_rows(pre, contract, raw):
    """The parity check's rows: ``raw`` (a table, images or windows, by ``pre.kind``) as
    the engine and the exported model each read them."""
    from dlspec.onnx.parity import image_rows, table_rows, window_rows

    if pre.kind == "sequence":
        return window_rows(pre, raw)
    return image_rows(pre, raw) if pre.kind == "image" else table_rows(contract, pre, raw)


def _augment(spec: Spec, ds: Dataset):
    if not spec.data.augment:
        return None
    from dlspec.data.augment import make_augment

    blank = ds.preprocessor.transform(np.zeros((1, *ds.input_shape), np.uint8))[0, 0, 0]
    return make_augment([thaw(a) for a in spec.data.augment], blank)


# Where a run keeps up to 512 held-out raw rows, by preprocessor kind, so that export
# can re-check parity without the data: the CSV's rows, or an .npz of images or windows.
_HOLDOUT_FILES = {"table": HOLDOUT, "image": HOLDOUT_IMAGES, "sequence": HOLDOUT_WINDOWS}
_HOLDOUT_ARRAYS = {"image": "images", "sequence": "windows"}


def _holdout(ds: Dataset, rows: np.ndarray) -> dict[str, bytes]:
    from dlspec.onnx.parity import MAX_ROWS

    kind = ds.preprocessor.kind
    if kind == "table":
        return {HOLDOUT: _holdout_csv(ds, rows)}
    buf = io.BytesIO()
    np.savez(buf, **{_HOLDOUT_ARRAYS[kind]: ds.raw[rows[:MAX_ROWS]]})
    return {_HOLDOUT_FILES[kind]: buf.getvalue()}


def _read_holdout(run_dir: Path, kind: str):
    """The raw rows ``_holdout`` kept: a Table, or an array of images or windows."""
    path = run_dir / _HOLDOUT_FILES[kind]
    if kind == "table":
        return read_csv(path)
    name = _HOLDOUT_ARRAYS[kind]
    try:
        with np.load(path, allow_pickle=False) as z:
            return z[name]
    except FileNotFoundError:
        raise ModelError("the run's held-out rows are missing", Location(str(path)),
                         code="run-state") from None
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise ModelError(f"the run's held-out rows cannot be read (an .npz with an array "
                         f"'{name}' was expected): {e}", Location(str(path)),
                         code="run-state") from None


def _holdout_csv(ds: Dataset, rows: np.ndarray) -> bytes:
    from dlspec.onnx.parity import MAX_ROWS

    cols = ds.preprocessor.columns
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(cols)
    for r in rows[:MAX_ROWS]:
        w.writerow([ds.table.cells[c][r] for c in cols])
    return out.getvalue().encode()


def _curve_svg(history: list[dict], name: str) -> bytes:
    from dlspec.plot import training_curve_svg

    return training_curve_svg(history, name).encode()


def load_run(path: str | Path) -> Run:
    """Load a run directory (or its ``latest`` pointer) back into an engine model.

    Raises:
        ModelError: a missing or inconsistent run directory.
    """
    run_dir = resolve_run_dir(path)
    spec = load_spec(run_dir / "spec.lock.yaml", check_data=False)
    try:
        state = json.loads((run_dir / "preprocess.json").read_text())
        kind = state["preprocessing"].get("kind", Preprocessor.kind)
        pre = _PREPROCESSORS[kind].from_dict(state["preprocessing"])
        target = Target.from_dict(state["target"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"invalid preprocess.json: {e}", Location(str(run_dir)),
                         code="run-state") from None
    arrays, manifest = load_arrays(run_dir / "weights.npz", run_dir / "weights.json")
    if manifest["spec_sha256"] != spec.sha256:
        raise ModelError(f"weights were trained for spec {manifest['spec_sha256'][:12]}..., "
                         f"but spec.lock.yaml is {spec.sha256[:12]}...", Location(str(run_dir)),
                         code="run-mismatch")
    net = Network(spec.layers, pre.input_shape, spec.train.loss, spec.locate)
    names = {p.value.name: p.shape for p in net.graph.params}
    if {k: tuple(v.shape) for k, v in arrays.items()} != names:
        raise ModelError("weights do not match the spec's layers", Location(str(run_dir)),
                         code="run-mismatch")
    net.buffer.load(arrays)
    return Run(run_dir, spec, net, pre, target)


def export(run: str | Path, out: str | Path | None = None, *, opset: int | None = None) -> dict:
    """Rebuild the ONNX model of a run, check it against the engine, write it to ``out``.

    Returns a report: the output path, opset, IR version and the parity check.
    """
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_parity
    from dlspec.onnx.versions import MAX_OPSET, MIN_OPSET

    r = load_run(run)
    opset = opset or r.spec.opset
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelError(f"--opset {opset}: dlspec exports opsets {MIN_OPSET} to {MAX_OPSET}",
                         code="usage")
    model = build_model(r.net, r.preprocessor, r.target, opset=opset, name=r.spec.name,
                        spec_sha256=r.spec.sha256)
    data = model.SerializeToString()
    contract = _contract(model)
    raw = _read_holdout(r.path, r.preprocessor.kind)
    parity = _located(r.spec, r.net, check_parity, _cpu_session(data), contract.outputs[0],
                      r.net, r.target.task, _raw_rows(r.preprocessor, contract, raw),
                      np.arange(len(raw)))
    out = Path(out) if out else Path(f"{r.spec.name}.onnx")
    write_atomic(out, data)
    return {"path": str(out), "opset": opset, "ir_version": model.ir_version, "parity": parity,
            "bytes": len(data)}


def predict(model: str | Path, data: str | Path, out: str | Path | None = None, *,
            backend: str = "onnxruntime", device: str = "cpu", batch_size: int | None = None,
            on_unknown: str = "error", on_missing: str = "error",
            input_format: str | None = None, keep: Sequence[str] = (),
            progress: Callable[[int], None] | None = None) -> dict:
    """Predict every row of ``data``; writes ``out`` (.csv, .jsonl, .npy, .parquet; stdout CSV
    if None), one row per input row, in order. A sequence model predicts once per complete
    window of a time-ordered file (on the window's last row), or once per window of an
    array (n, window, features) in a .npy or as ``x`` in an .npz.

    Args:
        model: an .onnx file or a run directory (``backend="numpy"`` needs a run directory).
        data: a .csv, .jsonl, .npy, .npz or .parquet file, or "-" for standard input.
        on_unknown: "error" or "zeros" (an unseen category encodes as all zeros / -1).
        on_missing: "error" or "impute" (training mean; a category as unseen).
        input_format: csv, jsonl, npy, npz or parquet (default: by extension; CSV for "-").
        keep: input columns copied, as read, to the front of each output row.

    Returns a report: rows, backend, provider, seconds, rows_per_second.
    """
    import time

    from dlspec.data.preprocess import ON_MISSING, ON_UNKNOWN
    from dlspec.errors import UsageError
    from dlspec.runtime.contract import Contract
    from dlspec.runtime.predict import (
        DEFAULT_BATCH,
        engine_image_runner,
        engine_runner,
        is_image_model,
        onnx_image_runner,
        onnx_runner,
        predict_file,
        predict_images,
    )
    from dlspec.runtime.sequences import (
        engine_sequence_runner,
        onnx_sequence_runner,
        predict_sequences,
    )
    from dlspec.runtime.session import load_model

    if on_unknown not in ON_UNKNOWN or on_missing not in ON_MISSING:
        raise UsageError(f"on_unknown must be one of {ON_UNKNOWN} and on_missing one of "
                         f"{ON_MISSING}; got {on_unknown!r}, {on_missing!r}", code="usage")
    start = time.perf_counter()
    model = Path(model)
    bs = batch_size or DEFAULT_BATCH
    options = {"input_format": input_format, "keep": keep}
    output = Path(out) if out else None
    if backend == "numpy":
        r = load_run(model)
        sequence = r.preprocessor.sequence_input
        contract = Contract(r.preprocessor.inputs, r.target.name, r.target.task,
                            r.target.classes, sequence=sequence)
        if sequence:
            width = r.net.graph.output.shape[-1] if r.target.task == "regression" else 0
            n = predict_sequences(engine_sequence_runner(r), _no_impute(contract, on_missing),
                                  width, data, output, bs, progress, **options)
        elif is_image_model(contract):
            n = predict_images(engine_image_runner(r), contract, r.preprocessor.shape, data,
                               output, batch_size or IMAGE_BATCH, progress)
        else:
            width = r.net.graph.output.shape[-1] if r.target.task == "regression" else 0
            n = predict_file(engine_runner(r, on_unknown, on_missing), contract, width, data,
                             output, bs, progress, **options)
        provider = "numpy"
    else:
        loaded = load_model(model_file(model), device)
        if loaded.contract.sequence:
            shape = loaded.session.get_outputs()[0].shape
            width = shape[-1] if loaded.contract.task == "regression" else 0
            n = predict_sequences(onnx_sequence_runner(loaded.session, loaded.contract),
                                  _no_impute(loaded.contract, on_missing), width, data, output,
                                  bs, progress, **options)
        elif is_image_model(loaded.contract):
            shape = tuple(loaded.session.get_inputs()[0].shape[1:])
            n = predict_images(onnx_image_runner(loaded.session, loaded.contract),
                               loaded.contract, shape, data, output,
                               batch_size or IMAGE_BATCH, progress)
        else:
            shape = loaded.session.get_outputs()[0].shape
            width = shape[-1] if loaded.contract.task == "regression" else 0
            n = predict_file(onnx_runner(loaded.session, loaded.contract, on_unknown,
                                         on_missing),
                             loaded.contract, width, data, output, bs, progress, **options)
        provider = loaded.provider
    seconds = time.perf_counter() - start
    return {"rows": n, "backend": backend, "provider": provider, "seconds": seconds,
            "rows_per_second": n / seconds if seconds > 0 else 0.0}


def _no_impute(contract, on_missing: str):
    """A sequence model reads whole series: a missing value cannot be imputed."""
    from dlspec.errors import UsageError

    if on_missing != "error":
        raise UsageError(f"--on-missing {on_missing}: a sequence model's windows cannot have "
                         "gaps; fill the missing values first", code="usage")
    return contract
