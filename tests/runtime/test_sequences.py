"""Sequence models end to end: train, export, and predict from a time-ordered CSV (windows cut
by dlspec) or from window arrays, with onnxruntime and the engine agreeing, in the target's
units."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dlspec
from dlspec.data.sequence import SEQUENCE_INPUT, sliding_windows
from dlspec.onnx.parity import engine_outputs
from tests.runtime.conftest import cli, read_csv_rows

WINDOW, HORIZON = 4, 2
SPEC = """\
dlspec: 1
name: waves
seed: 1
data:
  source: s.csv
  target: level
  drop: [month]
  sequence: {window: 4, horizon: 2}
  preprocess: [{minmax: all}]
  split: {test: 0.2, validation: 0.1}
model:
  layers: [{flatten: }, {dense: {units: 8, activation: tanh}}, {dense: 1}]
train: {loss: mse, optimizer: {adam: {lr: 0.01}}, batch_size: 8, epochs: 5, metrics: [mae]}
"""


def series(n: int = 60) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return np.round(np.stack([200 + 4 * t + 30 * np.sin(t / 2), 15 + 5 * np.cos(t / 3)],
                             axis=1), 3)


def write(path, values, months=None):
    months = months or [f"m{i:02d}" for i in range(len(values))]
    lines = ["month,level,temp"] + [f"{m},{a},{b}" for m, (a, b) in
                                    zip(months, values.tolist(), strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def waves(tmp_path_factory):
    d = tmp_path_factory.mktemp("waves")
    values = series()
    write(d / "s.csv", values)
    (d / "s.yaml").write_text(SPEC)
    result = dlspec.train(d / "s.yaml", run_dir=d / "run")
    return d, values, result


def test_training_reports_errors_in_the_targets_units(waves):
    _, values, result = waves
    test = result.metrics["test"]
    assert test["rows"] == 11 and "scaled_loss" in test and "loss" not in test
    # the naive forecast: each window's last level, against the level two rows later
    # 55 windows: train 38, validation 6, test 11 (windows 44..54, ending at rows 47..57)
    last, target = values[47:58, 0], values[49:60, 0]
    assert test["naive_mae"] == pytest.approx(np.mean(np.abs(target - last)), rel=1e-5)
    assert test["naive_rmse"] == pytest.approx(np.sqrt(np.mean((target - last) ** 2)), rel=1e-5)
    assert test["rmse"] ** 2 >= test["mae"] ** 2 * 0.999
    assert result.metrics["export_parity"]["max_abs_diff"] < 1e-3


def test_onnxruntime_equals_the_engine_in_the_targets_units(waves):
    import onnxruntime as ort

    d, values, _ = waves
    run = dlspec.load_run(d / "run")
    sess = ort.InferenceSession(str(d / "run" / "model.onnx"), providers=["CPUExecutionProvider"])
    windows = sliding_windows(values, WINDOW)
    want = run.preprocessor.unscale_target(
        engine_outputs(run.net, run.preprocessor.transform(windows), "regression"))
    assert want.mean() > 100  # passengers, not scaled values
    for rows in (slice(0, 1), slice(5, 12), slice(None)):
        got = sess.run(["prediction"], {SEQUENCE_INPUT: windows[rows]})[0]
        np.testing.assert_allclose(got, want[rows], rtol=1e-5, atol=1e-4)


def test_predict_cuts_every_window_from_a_csv(waves, tmp_path):
    d, values, _ = waves
    out = tmp_path / "p.csv"
    r = cli("predict", d / "run" / "model.onnx", d / "s.csv", "-o", out, "--keep", "month")
    assert r.exit_code == 0, r.output
    rows = read_csv_rows(out)
    assert len(rows) == len(values) - WINDOW + 1
    assert list(rows[0]) == ["month", "level_t+2"]
    assert rows[0]["month"] == "m03" and rows[-1]["month"] == "m59"
    # the same numbers in chunks of any size, and from the engine
    for bs in ("1", "3", "7"):
        chunked = tmp_path / f"p{bs}.csv"
        assert cli("predict", d / "run" / "model.onnx", d / "s.csv", "-o", chunked, "--keep",
                   "month", "--batch-size", bs).exit_code == 0
        assert chunked.read_text() == out.read_text()
    engine = tmp_path / "e.csv"
    assert cli("predict", d / "run", d / "s.csv", "-o", engine, "--backend",
               "numpy").exit_code == 0
    a = np.array([float(r["level_t+2"]) for r in rows])
    b = np.array([float(r["level_t+2"]) for r in read_csv_rows(engine)])
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_predict_takes_window_arrays(waves, tmp_path):
    d, values, _ = waves
    windows = sliding_windows(values, WINDOW)
    np.save(tmp_path / "w.npy", windows.astype(np.float64))
    np.savez(tmp_path / "w.npz", x=windows)
    outs = []
    for name in ("w.npy", "w.npz"):
        out = tmp_path / f"{name}.csv"
        r = cli("predict", d / "run" / "model.onnx", tmp_path / name, "-o", out)
        assert r.exit_code == 0, r.output
        outs.append(out.read_text())
    from_csv = tmp_path / "c.csv"
    cli("predict", d / "run" / "model.onnx", d / "s.csv", "-o", from_csv)
    assert outs[0] == outs[1] == from_csv.read_text()


def _gap(path, line: int):
    """Empty the last cell of ``line`` (1-based)."""
    lines = path.read_text().splitlines()
    lines[line - 1] = lines[line - 1].rsplit(",", 1)[0] + ","
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("make", "args", "message"), [
    (lambda p, v: write(p / "short.csv", v[:3]), [], "no complete window: the model takes 4"),
    (lambda p, v: _gap(write(p / "gap.csv", v), 7), [], "gap.csv:7: column 'temp': missing value"),
    (lambda p, v: np.save(p / "bad.npy", np.zeros((3, 5, 2), np.float32)) or p / "bad.npy", [],
     "expected windows of shape (n, 4, 2) (examples, time steps, features), got (3, 5, 2)"),
    (lambda p, v: np.save(p / "w.npy", np.zeros((3, 4, 2), np.float32)) or p / "w.npy",
     ["--keep", "month"], "holds windows as an array, without columns to keep"),
    (lambda p, v: write(p / "s.csv", v), ["--on-missing", "impute"], "cannot have gaps"),
    (lambda p, v: write(p / "s.csv", v).write_text("month,level\nm1,3\n") and p / "s.csv", [],
     "missing column(s) 'temp'"),
])
def test_bad_input_is_one_located_message(waves, tmp_path, make, args, message):
    d, values, _ = waves
    data = make(tmp_path, values)
    r = cli("predict", d / "run" / "model.onnx", data, *args)
    assert r.exit_code == 1, r.output
    assert message in r.stderr and "Traceback" not in r.output
    assert r.stdout == ""


def test_evaluate_scores_every_window_with_a_target(waves):
    d, values, _ = waves
    r = cli("evaluate", d / "run" / "model.onnx", d / "s.csv", "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    n = len(values) - WINDOW - HORIZON + 1
    assert report["rows"] == n
    import onnxruntime as ort

    sess = ort.InferenceSession(str(d / "run" / "model.onnx"), providers=["CPUExecutionProvider"])
    pred = sess.run(["prediction"], {SEQUENCE_INPUT: sliding_windows(values, WINDOW)[:n]})[0]
    mae = np.mean(np.abs(pred[:, 0] - values[WINDOW + HORIZON - 1:, 0]))
    assert report["metrics"]["mae"] == pytest.approx(mae, rel=1e-4)


def test_export_and_inspect(waves, tmp_path):
    d, _, _ = waves
    r = cli("export", d / "run", "-o", tmp_path / "w.onnx")
    assert r.exit_code == 0, r.output
    r = cli("inspect", tmp_path / "w.onnx")
    assert r.exit_code == 0
    assert "windows of 4 time steps x 2 feature(s) (level, temp)" in r.stdout
    r = cli("inspect", d / "s.yaml")
    assert r.exit_code == 0, r.output
    assert "sequences: windows of 4 time steps" in r.stdout
    assert "rows: train 38, validation 6, test 11" in r.stdout
