"""What train adds for the report: a regression's held-out predictions, from the exported
model through onnxruntime, agree with the metrics the engine computed on the same rows."""

from __future__ import annotations

import csv
import math

import pytest

import dlspec
from tests.conftest import SPECS
from tests.test_end_to_end import REGRESSION_SPEC


def _rows(run) -> list[dict]:
    with open(run / "holdout_predictions.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _errors(rows) -> tuple[float, float]:
    d = [float(r["predicted"]) - float(r["true"]) for r in rows]
    return math.sqrt(sum(x * x for x in d) / len(d)), sum(abs(x) for x in d) / len(d)


def test_table_regression_predictions_match_the_engines_metrics(tmp_path):
    rows = "\n".join(f"{x},{0.5 * x + 1}" for x in range(-50, 50))
    (tmp_path / "line.csv").write_text("x,y\n" + rows + "\n")
    (tmp_path / "line.yaml").write_text(REGRESSION_SPEC.replace("LR", "0.0001"))
    result = dlspec.train(tmp_path / "line.yaml", run_dir=tmp_path / "run")
    got = _rows(result.run_dir)
    assert len(got) == result.metrics["test"]["rows"] == 20
    assert {r["split"] for r in got} == {"test"}
    _, mae = _errors(got)
    assert mae == pytest.approx(result.metrics["test"]["mae"], rel=1e-4)
    # the true values are the data's own: y = 0.5 x + 1 for some x of the file
    assert all((float(r["true"]) - 1) / 0.5 in range(-50, 50) for r in got)


def test_forecast_predictions_match_the_engines_rmse(tmp_path, airline_csv):
    result = dlspec.train(SPECS / "airline_mlp.yaml", [f"data.source={airline_csv}",
                                                        "train.epochs=30"],
                          run_dir=tmp_path / "run")
    got = _rows(result.run_dir)
    rmse, mae = _errors(got)
    assert len(got) == result.metrics["test"]["rows"]
    assert rmse == pytest.approx(result.metrics["test"]["rmse"], rel=1e-4)
    assert mae == pytest.approx(result.metrics["test"]["mae"], rel=1e-4)


def test_classifiers_and_no_report_write_no_predictions(tmp_path):
    r = dlspec.train(SPECS / "breast_cancer.yaml", ["train.epochs=1"], run_dir=tmp_path / "a")
    assert (r.run_dir / "report.html").is_file()
    assert not (r.run_dir / "holdout_predictions.csv").exists()
    rows = "\n".join(f"{x},{2 * x}" for x in range(40))
    (tmp_path / "line.csv").write_text("x,y\n" + rows + "\n")
    (tmp_path / "line.yaml").write_text(REGRESSION_SPEC.replace("LR", "0.0001"))
    r = dlspec.train(tmp_path / "line.yaml", run_dir=tmp_path / "b", report=False)
    assert not {"report.html", "holdout_predictions.csv"} & {p.name for p in
                                                             r.run_dir.iterdir()}
