"""Two small trained models shared by the prediction tests, and a CliRunner helper.

``cancer``: the breast-cancer spec (30 numeric columns), trained for 2 epochs.
``cats``: a synthetic spec with categorical columns (one-hot and label-encoded)
beside numeric ones, so the category and imputation paths are exercised.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import dlspec
from dlspec.cli import app
from tests.conftest import EXAMPLES, SPECS

CATS_SPEC = """\
dlspec: 1
name: cats
seed: 3
data:
  source: cats.csv
  target: bought
  drop: [id]
  preprocess:
    - onehot: {columns: [color], drop_first: false}
    - label_encode: [size]
    - standardize: all
  split: {test: 0.2}
model:
  layers:
    - dense: {units: 6, activation: relu}
    - dense: {units: 1, activation: sigmoid}
train: {loss: binary_crossentropy, optimizer: adam, batch_size: 16, epochs: 3}
"""
CATS_COLUMNS = ["id", "price", "color", "size", "weight", "bought"]

_runner = CliRunner()


def cli(*args, input: str | bytes | None = None):
    """Run ``dlspec ARGS`` in-process; the result has exit_code, stdout and stderr."""
    return _runner.invoke(app, [str(a) for a in args], input=input)


def read_csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="session")
def cancer(tmp_path_factory) -> Path:
    """The run directory of a briefly trained breast-cancer model (model.onnx inside)."""
    d = tmp_path_factory.mktemp("cancer")
    dlspec.train(SPECS / "breast_cancer.yaml", ["train.epochs=2"], run_dir=d / "run")
    return d / "run"


@pytest.fixture(scope="session")
def cancer_csv() -> Path:
    return EXAMPLES / "breast_cancer.csv"


@pytest.fixture(scope="session")
def cats(tmp_path_factory) -> Path:
    """The run directory of the synthetic categorical model; cats.csv lies beside it."""
    d = tmp_path_factory.mktemp("cats")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(240):
        color = str(rng.choice(["red", "green", "blue"]))
        size = str(rng.choice(["S", "M", "L"]))
        price = round(float(rng.normal(50, 15)), 2)
        weight = int(rng.integers(1, 9))
        bought = int(price / 50 + (color == "red") + 0.1 * weight + rng.normal(0, 0.3) > 1.6)
        rows.append([f"c{i:04d}", price, color, size, weight, bought])
    write_csv(d / "cats.csv", CATS_COLUMNS, rows)
    (d / "cats.yaml").write_text(CATS_SPEC)
    dlspec.train(d / "cats.yaml", run_dir=d / "run")
    return d / "run"


@pytest.fixture
def cats_csv(cats) -> Path:
    return cats.parent / "cats.csv"
