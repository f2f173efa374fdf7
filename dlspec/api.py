"""dlspec's Python API: what the CLI calls, and what users import.

    import dlspec
    spec = dlspec.load_spec("specs/churn.yaml", ["train.epochs=5"])
    result = dlspec.train(spec)
    dlspec.train(resume="runs/churn/20261204-101500-ab12")   # after Ctrl-C: exactly on
    dlspec.export(result.run_dir, "churn.onnx")
    dlspec.predict("churn.onnx", "customers.csv", "predictions.csv")
    values, grads = dlspec.gradients("specs/graph_product.yaml", {"x": 2, "y": 3, "z": 4}, "g")

Each job has its home (training in dlspec.training, run directories in dlspec.runs,
export in dlspec.exporting, prediction in dlspec.runtime.serve); this module names them.
"""

from __future__ import annotations

from dlspec.exporting import export, export_spec
from dlspec.runtime.serve import predict
from dlspec.study import gradients
from dlspec.trained import Run, load_run
from dlspec.training import TrainResult, train

__all__ = ["Run", "TrainResult", "export", "export_spec", "gradients", "load_run", "predict",
           "train"]
