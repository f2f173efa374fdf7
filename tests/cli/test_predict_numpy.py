"""predict --backend numpy given a model file: it says which run directory to give."""

from __future__ import annotations

from typer.testing import CliRunner

import dlspec
from dlspec.cli import app
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()


def test_numpy_backend_on_a_model_file_names_its_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = dlspec.train(SPECS / "breast_cancer.yaml", ["train.epochs=2"])  # runs/<name>/
    run = result.run_dir
    data = EXAMPLES / "breast_cancer.csv"
    dlspec.export(run, "m.onnx")
    r = runner.invoke(app, ["predict", "m.onnx", str(data), "--backend", "numpy"])
    assert r.exit_code == 1
    assert r.stderr.startswith("m.onnx: the numpy backend runs the training engine, which "
                               "needs a run directory, not a model file; it is the model of "
                               f"{run}: give that directory")
    dlspec.export(run, "m13.onnx", opset=13)  # other bytes, the same spec
    r = runner.invoke(app, ["predict", "m13.onnx", str(data), "--backend", "numpy"])
    assert r.exit_code == 1 and f"{run} was trained from the same spec" in r.stderr
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = runner.invoke(app, ["predict", "../m.onnx", str(data), "--backend", "numpy"])
    assert r.exit_code == 1
    assert "its metadata names it 'breast_cancer', whose runs live in " \
        "runs/breast_cancer/<run-id>/" in r.stderr
    r = runner.invoke(app, ["predict", str(tmp_path / run), str(data), "--backend", "numpy",
                            "-o", "p.csv"])
    assert r.exit_code == 0, r.output
