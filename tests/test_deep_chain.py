"""A 5,000-layer chain validates, trains a step, exports and predicts: every traversal is
iterative, so no recursion limit is ever hit (RELIABILITY.md)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from dlspec.cli import app


def test_five_thousand_layers(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    rows = "".join(f"{a:.4f},{b:.4f},{c:.4f},{int(a + b + c > 0)}\n" for a, b, c in x)
    (tmp_path / "d.csv").write_text("a,b,c,y\n" + rows)
    layers = "    - dense: {units: 2, activation: tanh}\n" * 5000
    spec = tmp_path / "chain.yaml"
    spec.write_text("dlspec: 1\nname: chain\n"
                    "data: {source: d.csv, target: y, split: {test: 0.2}}\n"
                    "model:\n  layers:\n" + layers +
                    "    - dense: {units: 1, activation: sigmoid}\n"
                    "train: {loss: binary_crossentropy, epochs: 1, batch_size: 16}\n")
    runner = CliRunner()
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0
    r = runner.invoke(app, ["train", str(spec), "--quiet", "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["predict", str(tmp_path / "run" / "model.onnx"),
                            str(tmp_path / "d.csv")])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 41
