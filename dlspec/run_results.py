"""What a finished run adds to its directory: weights, every optimizer's state, metrics
(each split's report), history, training curve, the exported and parity-checked model,
and the pictures of a training program."""

from __future__ import annotations

import io
import json

import numpy as np

from dlspec.engine import metrics as M
from dlspec.engine.network import Network
from dlspec.engine.trainer import FitResult, evaluate, evaluate_losses, predict_classes
from dlspec.inputs import Dataset
from dlspec.program_run import export_program
from dlspec.runs import history_csv, save_arrays
from dlspec.spec.model import Spec
from dlspec.tasks import TASKS
from dlspec.version import __version__


def held_rows(ds: Dataset) -> np.ndarray:
    """The rows held out for the parity check: test's, else validation's, else train's."""
    return next(ds.rows[s] for s in ("test", "validation", "train") if len(ds.rows[s]))


def results(spec: Spec, ds: Dataset, compiled, net: Network, result: FitResult,
             opts: dict, pictures, build_model, check_model_parity
             ) -> tuple[dict[str, bytes], str]:
    """The files a finished run adds to its directory (weights, optimizer state, metrics,
    history, curve, model: exported and parity-checked, pictures) and the model's
    portability note."""
    from dlspec.onnx.portability import note_of
    from dlspec.training import located_parity

    program = compiled.program
    held = held_rows(ds)
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
    np.savez(opt_state, **opts)
    files = {
        "weights.npz": weights, "weights.json": manifest,
        "optimizer.npz": opt_state.getvalue(),
        "history.csv": history_csv(result.history),
        "curve.svg": _curve_svg(result.history, spec.name),
        "model.onnx": model.SerializeToString(),
    }
    if pictures is not None:
        files.update(pictures.final(result))
        if pictures.listed:
            metrics["pictures"] = pictures.listed
    files["metrics.json"] = json.dumps(metrics, indent=2).encode()
    return files, note_of(model)


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


def _curve_svg(history: list[dict], name: str) -> bytes:
    from dlspec.plot import training_curve_svg

    return training_curve_svg(history, name).encode()
