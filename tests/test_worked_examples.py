"""The worked examples: specs whose weights are written out, their numbers computed by
hand, and the walkthroughs in examples/ that use only the public API."""

from __future__ import annotations

import runpy

import numpy as np
import pytest
from typer.testing import CliRunner

import dlspec
from dlspec.cli import app
from tests.conftest import ROOT, SPECS
from tests.graph.test_programs import finite_differences


@pytest.mark.parametrize(("spec", "x", "want", "hidden"), [
    ("forward_relu.yaml", [3, 5], 52, {"hidden": [26, 0]}),
    ("forward_two_hidden.yaml", [3, 5], 182, {"hidden_1": [26, 0], "hidden_2": [0, 26]}),
])
def test_forward_examples_give_the_hand_computed_numbers(tmp_path, spec, x, want, hidden):
    values, _ = dlspec.gradients(SPECS / spec, {"x": x}, "output")
    assert values["output"].tolist() == [want]
    for name, v in hidden.items():
        assert values[name].tolist() == v
    runner = CliRunner()
    model = tmp_path / "m.onnx"
    out = runner.invoke(app, ["export", str(SPECS / spec), "-o", str(model)])
    assert out.exit_code == 0, out.output
    (tmp_path / "in.csv").write_text("x_0,x_1\n3,5\n1,1\n")
    out = runner.invoke(app, ["predict", str(model), str(tmp_path / "in.csv"), "-q"])
    assert out.exit_code == 0, out.output
    rows = out.stdout.splitlines()
    assert rows[0] == "output" and float(rows[1]) == want


def test_the_product_graph_gives_the_lessons_values_and_gradients():
    values, grads = dlspec.gradients(SPECS / "graph_product.yaml",
                                     {"x": 2.0, "y": 3.0, "z": 4.0}, "g")
    assert {k: float(v) for k, v in values.items()} == {"x": 2, "y": 3, "z": 4, "s": 5, "g": 20}
    assert {k: float(v) for k, v in grads.items()} == {"x": 4, "y": 4, "z": 5}
    rng = np.random.default_rng(0)
    x = {k: rng.standard_normal(6) for k in "xyz"}      # a batch: each example its own
    _, grads = dlspec.gradients(SPECS / "graph_product.yaml", x, "g")
    numeric = finite_differences(SPECS / "graph_product.yaml", x, "g")
    for k in "xyz":
        np.testing.assert_allclose(grads[k], numeric[k], rtol=1e-6)


def test_an_export_needs_every_weight_and_no_data(tmp_path):
    spec = (SPECS / "forward_relu.yaml").read_text().replace(
        "      weights: {kernel: [[2], [7]]}\n", "")
    (tmp_path / "half.yaml").write_text(spec)
    out = CliRunner().invoke(app, ["export", str(tmp_path / "half.yaml")])
    assert out.exit_code == 1
    assert "'output' has no weights given (output.kernel)" in out.output
    out = CliRunner().invoke(app, ["export", str(SPECS / "churn.yaml")])
    assert out.exit_code == 1 and "this spec trains on data" in out.output


@pytest.mark.parametrize("script", ["forward_pass.py", "backprop_by_hand.py"])
def test_the_walkthroughs_run(script, capsys):
    result = runpy.run_path(str(ROOT / "examples" / script))["main"]()
    assert result
    assert "dlspec" in capsys.readouterr().out
