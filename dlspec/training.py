"""``dlspec train``: a spec's data loaded, its graph compiled once, trained, checked against
its own export, and written as a run directory."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlspec.engine import metrics as M
from dlspec.engine.network import Network
from dlspec.engine.trainer import FitResult, evaluate, evaluate_losses, fit, predict_classes
from dlspec.errors import Diagnostics, SpecError, path_str
from dlspec.graph.resources import DEFAULT_LIMIT
from dlspec.inputs import KINDS, Dataset, load_dataset
from dlspec.program_run import Pictures, export_program
from dlspec.runs import (
    check_run_dir,
    history_csv,
    new_run_id,
    point_latest,
    preprocess_json,
    save_arrays,
    write_run,
)
from dlspec.spec.compile import compile_graph
from dlspec.spec.load import load_spec
from dlspec.spec.model import Spec, thaw
from dlspec.tasks import TASKS
from dlspec.version import __version__


@dataclass
class TrainResult:
    run_dir: Path
    spec: Spec
    fit: FitResult
    metrics: dict        # the content of metrics.json
    note: str = ""       # what runtimes other than onnxruntime may get wrong (see onnx/portability)


def as_spec(spec: Spec | str | Path, overrides: Sequence[str] = ()) -> Spec:
    return spec if isinstance(spec, Spec) else load_spec(spec, overrides)


def _check_lock(spec: Spec, ds: Dataset) -> None:
    if spec.lock and spec.lock["data_sha256"] != ds.sha256:
        raise Diagnostics([SpecError(
            f"the data file changed since this lock was written: its SHA-256 is {ds.sha256}, "
            f"the lock expects {spec.lock['data_sha256']}",
            spec.locate(("lock", "data_sha256"), False), path="lock.data_sha256",
            code="lock-data")])
    want = (spec.lock or {}).get("vocabulary_sha256")
    got = _fitted(ds).get("vocabulary_sha256")
    if want and want != got:
        raise Diagnostics([SpecError(
            f"the vocabulary fitted on this data differs from the lock's: its SHA-256 is "
            f"{got}, the lock expects {want}", spec.locate(("lock", "vocabulary_sha256"), False),
            path="lock.vocabulary_sha256", code="lock-data")])


def _needs_training(spec: Spec) -> None:
    if spec.train is None or spec.data is None:
        raise Diagnostics([SpecError(
            "this spec has no data and train sections, so there is nothing to train; it can "
            "be exported as it is (dlspec export SPEC -o model.onnx) if it gives its weights",
            spec.locate((), False), code="semantic-sections")])


def compile_network(spec: Spec, ds: Dataset, limit: int = DEFAULT_LIMIT, *, init: bool = True):
    """The spec's graph at the data's shapes (the one lowering of a run) and its network;
    ``init=False`` plans model.init_from only when its run exists."""
    compiled = compile_graph(spec, ds.input_shapes, classes=ds.target.n_classes,
                             width=1, limit=limit, init=init)
    return compiled, Network(compiled.graph)


def lr_scale(net: Network) -> np.ndarray | None:
    """Per trainable element, its learning-rate factor (train.params lr_mult), or None."""
    buf = net.buffer
    if all(p.lr_mult == 1.0 for p in buf.params if p.trainable):
        return None
    scale = np.ones(buf.train_size, dtype=np.float32)
    for p, (start, size) in zip(buf.params, buf.offsets, strict=True):
        if p.trainable:
            scale[start:start + size] = p.lr_mult
    return scale


def train(spec: Spec | str | Path, overrides: Sequence[str] = (), *,
          run_dir: str | Path | None = None, runs_root: str | Path = "runs",
          on_epoch: Callable[[int, dict], None] | None = None,
          max_memory: int = DEFAULT_LIMIT, report: bool = True,
          workers: int = 1) -> TrainResult | None:
    """Train a spec and write its run directory (weights, metrics, model.onnx).

    Args:
        run_dir: write the run exactly here (default ``runs_root/<name>/<run-id>``,
            with ``runs_root/<name>/latest`` pointing at it).
        on_epoch: progress callback ``(epoch, logs)``.
        max_memory: refuse to train when a step would need more bytes than this.
        report: also write report.html (and a regression's held-out predictions).
        workers: train.engine torch only: DDP over this many local processes. Under an
            external torchrun every rank calls ``train``; only rank 0 writes the run (the
            others return None).

    Raises:
        Diagnostics, DataError: invalid spec or data. TrainingDiverged: non-finite loss.
        ExportError: the exported model fails its checks.
    """
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_model_parity
    from dlspec.onnx.portability import note_of

    spec = as_spec(spec, overrides)
    _needs_training(spec)
    if spec.train.engine != "numpy" or workers != 1:
        from dlspec.torchengine import check

        check(spec, workers)
    target = Path(run_dir) if run_dir is not None else Path(runs_root) / spec.name / "run"
    check_run_dir(target)  # before training, not after
    ds = load_dataset(spec)
    _check_lock(spec, ds)
    compiled, net = compile_network(spec, ds, max_memory)
    init = None
    if compiled.init is not None:
        from dlspec.spec.transfer import load_init

        init = load_init(compiled.init)
    program = compiled.program
    pictures = Pictures(spec, ds, net, program) if program is not None else None
    fitted = _fit(spec, ds, net, init, pictures.on_epoch(on_epoch) if pictures else on_epoch,
                  workers, max_memory, program)
    if fitted is None:
        return None   # a rank other than 0 under an external launcher
    result, opt_state_arrays = fitted
    held = next(ds.rows[s] for s in ("test", "validation", "train") if len(ds.rows[s]))
    if spec.train.loss is not None:
        model = build_model(net, ds.inputs, ds.target, opset=spec.opset, name=spec.name,
                            spec_sha256=spec.sha256, outputs=spec.export_outputs,
                            input_names=spec.export_inputs, dialect=spec.data.dialect)
        parity = located_parity(spec, net, check_model_parity, model, net, ds.kind,
                                ds.inputs, ds.target.task, ds.raw, held)
    else:  # no supervised head: every output as the engine computes it
        model, parity = export_program(spec, ds, net, held)
    metrics = {
        "name": spec.name, "dlspec_version": __version__, "spec_sha256": spec.sha256,
        "data_sha256": ds.sha256,
        # a training program's outputs are not one target's: its losses are its metrics
        "task": ds.target.task if spec.train.loss is not None else "program",
        "classes": ds.target.classes if spec.train.loss is not None else [],
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early, "steps": result.steps,
        "training_seconds": round(result.seconds, 3),
        "validation": split_report(net, ds, spec, "validation", program),
        "test": split_report(net, ds, spec, "test", program),
        "export_parity": parity,
    }
    if compiled.init is not None:
        metrics["init_from"] = {"run": str(compiled.init.source),
                                "loaded": len(compiled.init.loads),
                                "skipped": compiled.init.skipped,
                                "fresh": compiled.init.fresh}
    weights, manifest = save_arrays(net.buffer.state(), spec.sha256)
    opt_state = io.BytesIO()
    np.savez(opt_state, **opt_state_arrays)
    kind = KINDS[ds.kind]
    files = {
        # the lock at the run's depth: the same relative paths
        "spec.lock.yaml": lock_yaml(spec, ds.sha256, target, _fitted(ds)),
        "weights.npz": weights, "weights.json": manifest,
        "optimizer.npz": opt_state.getvalue(),
        "preprocess.json": preprocess_json(ds.inputs, ds.target),
        "metrics.json": json.dumps(metrics, indent=2).encode(),
        "history.csv": history_csv(result.history),
        "curve.svg": _curve_svg(result.history, spec.name),
        kind.holdout: kind.write_holdout(ds, held),
        "model.onnx": model.SerializeToString(),
        **(kind.extra_files(ds) if kind.extra_files else {}),
    }
    if pictures is not None:
        files.update(pictures.final(result))
        if pictures.listed:
            metrics["pictures"] = pictures.listed
            files["metrics.json"] = json.dumps(metrics, indent=2).encode()
    if report:  # report.html, the page a reviewer opens: see dlspec/report
        from dlspec.report.at_train import report_files

        files.update(report_files(files, ds, held))
    if run_dir is None:
        path = write_run(Path(runs_root) / spec.name / new_run_id(), files)
        point_latest(path)
    else:
        path = write_run(Path(run_dir), files)
    return TrainResult(path, spec, result, metrics, note_of(model))


def _fitted(ds: Dataset) -> dict:
    """Fingerprints of what was fitted on the data and changes the model's input: a text
    input's vocabulary."""
    texts = [pre for pre in ds.inputs.values() if getattr(pre, "kind", "") == "text"]
    return {"vocabulary_sha256": texts[0].encoder.fingerprint()} if texts else {}


def _fit(spec: Spec, ds: Dataset, net: Network, init: dict | None, on_epoch, workers: int,
         max_memory: int, program=None) -> tuple[FitResult, dict] | None:
    """The one place the engines part: (the fit's record, the optimizer's state), or None
    on a rank that does not write."""
    if spec.train.engine == "torch":
        from dlspec.torchengine.run import train_torch

        return train_torch(spec, ds, net, init, on_epoch, workers, max_memory,
                           lambda folder: lock_yaml(spec, ds.sha256, folder, _fitted(ds)),
                           augment=_augment(spec, ds), program=program)
    result, opt = fit(net, spec.train, ds.target.task, ds.x, ds.y, on_epoch,
                      augment=_augment(spec, ds), init=init, lr_scale=lr_scale(net),
                      program=program, pretrain=ds.pretrain)
    return result, (opt.state() if opt is not None else {})


def lock_yaml(spec, data_sha256: str, run_dir: Path, fitted: dict | None = None) -> bytes:
    """spec.lock.yaml: the resolved spec (every default filled) and the data's SHA-256,
    its paths relative to ``run_dir`` (where the lock is written), so a checkout copied
    elsewhere, runs included, still finds its data."""
    import yaml

    from dlspec.spec.model import thaw
    from dlspec.spec.paths import relative_to
    from dlspec.version import __version__

    resolved = {k: v for k, v in thaw(spec.resolved).items() if v is not None}
    relative_to(resolved, run_dir, Path(spec.file).resolve().parent)
    resolved["lock"] = {"data_sha256": data_sha256, "spec_sha256": spec.sha256,
                        **(fitted or {}), "dlspec_version": __version__}
    head = (f"# Written by dlspec {__version__}: the spec as trained, every default filled in.\n"
            "# `dlspec train` on this file repeats the run (and checks the data's SHA-256).\n"
            "# Paths are relative to this file's folder.\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's is ~10x faster
    return (head + yaml.dump(resolved, Dumper=dumper, sort_keys=False,
                             allow_unicode=True)).encode()


def located_parity(spec: Spec, net: Network, check, *args) -> dict:
    """``check(*args)`` (the parity gate), its mismatch located in the spec: at a recurrent
    activation that onnxruntime computes by an overflowing formula, else at the model."""
    from dlspec.errors import ParityError
    from dlspec.onnx.parity import overflowing_activations
    from dlspec.spec.compile import node_where

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
        where = node_where(spec, name)
        node = next((n for n in spec.model.nodes if n.where == where), None)
        path = (*where, node.layer, attr) if node is not None and node.layer else where
        raise Diagnostics([SpecError(
            f"{e}: layer '{name}' uses {act.name}, which onnxruntime's recurrent ops compute "
            f"as {act.onnx_formula}, infinite past x = {act.onnx_overflow} where the engine's "
            f"stays finite; scale the inputs (e.g. preprocess: - standardize: all) or use "
            f"another {attr}", spec.locate(path, False), path=path_str(path),
            code="export-parity")]) from None


def split_report(net: Network, ds: Dataset, spec: Spec, split: str,
                 program=None) -> dict:
    x, y = ds.x[split], ds.y[split]
    if len(y) == 0:
        return {}
    if spec.train.loss is None:  # named losses alone: each of them on the split
        return {"rows": int(len(y)),
                **evaluate_losses(net, program, x, y, spec.train.seed)}
    report = {"rows": int(len(y)), **evaluate(net, x, y, ds.target.task, spec.train.metrics)}
    if ds.kind == "sequence" and not TASKS[ds.target.task].classifier:
        report = _forecast_report(net, ds, spec, split, report)
    if TASKS[ds.target.task].classifier:
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
        last = ds.raw[rows][:, -1, pre.columns.index(pre.target)].astype(np.float64)
        naive = last.reshape(y.shape)
        report["naive_rmse"] = float(np.sqrt(np.mean((naive - y) ** 2)))
        report["naive_mae"] = float(np.mean(np.abs(naive - y)))
    return report


def _augment(spec: Spec, ds: Dataset):
    if not spec.data.augment:
        return None
    from dlspec.data.augment import make_augment

    shape = next(iter(ds.input_shapes.values()))
    blank = ds.preprocessor.transform(np.zeros((1, *shape), np.uint8))[0, 0, 0]
    return make_augment([thaw(a) for a in spec.data.augment], blank)


def _curve_svg(history: list[dict], name: str) -> bytes:
    from dlspec.plot import training_curve_svg

    return training_curve_svg(history, name).encode()
