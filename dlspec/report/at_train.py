"""What ``train`` adds to a run for its report: a regression's held-out predictions (true
and predicted, from the exported model, in the target's units) and report.html, rendered
from the run's files before the directory is written, so it appears with them at once."""

from __future__ import annotations

import csv
import io

import numpy as np

from dlspec.report.page import render_run
from dlspec.report.runfiles import PREDICTIONS, RunFiles
from dlspec.tasks import TASKS

SPLIT_ORDER = ("test", "validation", "train")   # the held-out rows' split, as train picks it


def report_files(files: dict[str, bytes], ds, held: np.ndarray) -> dict[str, bytes]:
    """``{name: bytes}`` to add to the run: holdout_predictions.csv (regression on a table
    or a series) and report.html."""
    extra = {}
    task = TASKS.get(ds.target.task)
    if task is not None and not task.classifier and ds.kind in ("table", "sequence"):
        split = next((s for s in SPLIT_ORDER if len(ds.rows[s])), "")
        found = predictions_csv(files["model.onnx"], ds, held, split)
        if found is not None:
            extra[PREDICTIONS] = found
    run = RunFiles.from_mapping({**files, **extra}, "")
    extra["report.html"] = render_run(run).encode("utf-8")
    return extra


def predictions_csv(model_bytes: bytes, ds, held: np.ndarray, split: str) -> bytes | None:
    """The exported model on the held-out raw rows: ``true``, ``predicted`` (and ``split``)
    per row, or ``true_i``, ``predicted_i`` for a target of several values; None for a
    model that is not a regression head on the data's own inputs (a generator's noise in)."""
    import onnx

    from dlspec.inputs.base import HOLDOUT_ROWS
    from dlspec.onnx.parity import RAW_ROWS, contract_of, cpu_session
    from dlspec.runtime.contract import contract_inputs

    rows = held[:HOLDOUT_ROWS]
    model = onnx.load_from_string(model_bytes)
    contract = contract_of(model)
    if contract.task != "regression" or not contract.outputs or \
            contract.columns != [c.name for c in contract_inputs(ds.inputs)]:
        return None
    feeds = RAW_ROWS[ds.kind](contract, ds.inputs, ds.raw).feeds(rows)
    got = np.asarray(cpu_session(model_bytes).run([contract.outputs[0]], feeds)[0],
                     dtype=np.float64).reshape(len(rows), -1)
    truth = _truth(ds, rows, split).reshape(len(rows), -1)
    width = got.shape[1]
    names = ["true", "predicted"] if width == 1 else \
        [f"{k}_{i}" for k in ("true", "predicted") for i in range(width)]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*names, "split"])
    for t, p in zip(truth, got, strict=True):
        w.writerow([*(_number(v) for v in t), *(repr(float(v)) for v in p), split])
    return out.getvalue().encode()


def _truth(ds, rows: np.ndarray, split: str) -> np.ndarray:
    """The held-out rows' true values in the target's units: a series' raw targets, a
    table's encoded target (float32 of the cell; the table keeps no text of it)."""
    if ds.targets is not None:
        return np.asarray(ds.targets[rows])
    at = {int(r): i for i, r in enumerate(ds.rows[split])}
    return np.asarray(ds.y[split])[[at[int(r)] for r in rows]]


def _number(v) -> str:
    """The shortest text that reads back as ``v`` at its own precision (a float32 target
    cell 17.99 stays 17.99)."""
    return repr(float(v)) if np.asarray(v).dtype == np.float64 else str(v)
