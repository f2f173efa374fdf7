"""Without a terminal (CI logs, pipes) nothing is wrapped: a diagnostic's source line and
caret, key-value lines, table titles and captions each stay one line."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()
NARROW = {"COLUMNS": "80"}  # what CI runners often set; a pipe has no width of its own


def run(*args):
    return runner.invoke(app, [str(a) for a in args], env=NARROW)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("width")
    r = run("train", SPECS / "breast_cancer.yaml", "--set", "train.epochs=2", "--quiet",
            "--run-dir", d / "run")
    assert r.exit_code == 0, r.output
    return d / "run" / "model.onnx"


def test_diagnostic_source_line_and_caret_are_not_wrapped(tmp_path):
    folder = tmp_path / "a_folder_with_a_long_name_so_that_the_message_passes_eighty_columns"
    folder.mkdir()
    spec = folder / "bc.yaml"
    bad = ("    - dense: {units: 16, activation: relu, initializer: he_uniform, "
           "bias_initializer: zeros, trainable: true, name: first_hidden_layer, units_: 3}")
    spec.write_text((SPECS / "breast_cancer.yaml").read_text().replace(
        "    - dense: {units: 16, activation: relu, initializer: he_uniform}", bad))
    r = run("validate", spec)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    col = bad.index("units_") + 1
    assert lines[0].startswith(f"{spec}:16:{col}: model.layers[0].dense.units_: unknown key")
    assert lines[1] == f"16 | {bad}"
    assert lines[2] == "   | " + " " * (col - 1) + "^"


def test_key_value_lines_and_titles_are_not_wrapped(model, tmp_path):
    r = run("inspect", model)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == f"{model}: inputs"
    [sha] = [line for line in lines if line.startswith("dlspec.spec_sha256:")]
    assert len(sha.split(": ")[1]) == 64
    data = tmp_path / "Breast_Cancer_Wisconsin_Diagnostic_with_a_long_file_name.csv"
    shutil.copy(EXAMPLES / "breast_cancer.csv", data)
    r = run("evaluate", model, data)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert f"{data.name}: 569 rows" in lines
    assert f"{data.name} confusion matrix" in lines
    assert "rows: true, columns: predicted" in lines
    table = lines[lines.index(f"{data.name} confusion matrix") + 1:-1]
    assert len({len(line) for line in table}) == 1, "\n".join(table)  # one box, unbroken
