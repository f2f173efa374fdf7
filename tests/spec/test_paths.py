"""Paths in a spec file are relative to the file; paths typed with --set, to the current
directory (every path key: data.source, data.labels, data.test.source, data.test.labels)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlspec.cli import app
from dlspec.spec.load import load_spec
from dlspec.spec.paths import PATH_KEYS
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()

IMAGES = """\
dlspec: 1
name: imgs
data:
  source: train-images-idx3-ubyte.gz
  labels: train-labels-idx1-ubyte.gz
  test: {source: t10k-images-idx3-ubyte.gz, labels: t10k-labels-idx1-ubyte.gz}
model:
  layers:
    - flatten:
    - dense: {units: 10, activation: softmax}
train: {loss: categorical_crossentropy}
"""


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A checkout-like tree: specs/bc.yaml, data/bc.csv; the current directory is its root."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "data").mkdir()
    shutil.copy(SPECS / "breast_cancer.yaml", tmp_path / "specs" / "bc.yaml")
    shutil.copy(EXAMPLES / "breast_cancer.csv", tmp_path / "data" / "bc.csv")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_set_data_source_is_relative_to_the_current_directory(project):
    r = runner.invoke(app, ["inspect", "specs/bc.yaml", "--set", "data.source=data/bc.csv"])
    assert r.exit_code == 0, r.output
    assert "rows: train" in r.stdout
    # written in the spec file, the same path is relative to the file's folder
    spec_file = project / "specs" / "bc.yaml"
    spec_file.write_text(spec_file.read_text().replace("../examples/data/breast_cancer.csv",
                                                       "../data/bc.csv"))
    spec = load_spec(spec_file)
    assert spec.data.source == project / "data" / "bc.csv"
    assert spec.data.source_text == "../data/bc.csv"


def test_messages_keep_the_path_as_typed(project):
    r = runner.invoke(app, ["validate", "specs/bc.yaml", "--set", "data.source=data/bc.csv",
                            "--set", "data.target=diagnosys"])
    assert r.exit_code == 1
    assert "column 'diagnosys' is not in data/bc.csv (did you mean 'diagnosis'?)" in r.stderr
    r = runner.invoke(app, ["train", "specs/bc.yaml", "--set", "data.source=data/none.csv"])
    assert r.exit_code == 1
    assert "--set data.source=data/none.csv: data.source: data file not found: " \
        f"{project / 'data' / 'none.csv'}" in r.stderr


def test_every_path_key_set_on_the_command_line(project):
    spec_file = project / "specs" / "imgs.yaml"
    spec_file.write_text(IMAGES)
    written = load_spec(spec_file)
    assert written.data.source == project / "specs" / "train-images-idx3-ubyte.gz"
    assert written.data.labels == project / "specs" / "train-labels-idx1-ubyte.gz"
    assert written.data.test["source"] == project / "specs" / "t10k-images-idx3-ubyte.gz"
    typed = [f"{'.'.join(k)}=data/{'.'.join(k)}-idx3-ubyte.gz" for k in PATH_KEYS]
    spec = load_spec(spec_file, typed)
    got = (spec.data.source, spec.data.labels, spec.data.test["source"],
           spec.data.test["labels"])
    assert got == tuple(project / "data" / f"{'.'.join(k)}-idx3-ubyte.gz" for k in PATH_KEYS)
    assert spec.data.source_text == "data/data.source-idx3-ubyte.gz"
    whole = load_spec(spec_file, ["data.test={source: a-idx3-ubyte.gz, labels: b.gz}"])
    assert whole.data.test["labels"] == project / "b.gz"
    # a built-in dataset's name stays a name, an absolute path stays itself
    spec_file.write_text(IMAGES.replace("  labels: train-labels-idx1-ubyte.gz\n", "")
                         .replace("  test: {source: t10k-images-idx3-ubyte.gz, labels: "
                                  "t10k-labels-idx1-ubyte.gz}\n", ""))
    spec = load_spec(spec_file, ["data.source=mnist"])
    assert spec.data.format == "builtin" and str(spec.data.source) == "mnist"
    absolute = project / "data" / "bc.csv"
    spec = load_spec(project / "specs" / "bc.yaml", [f"data.source={absolute}"])
    assert spec.data.source == absolute and spec.data.source_text == str(absolute)
