"""Specs as named graphs: inputs, nodes reading others by name, joins, shared layers,
blocks called twice, weights given in the spec; and every mistake in them located at the
node's own line."""

from __future__ import annotations

import numpy as np
import pytest

import dlspec
from dlspec.errors import Diagnostics
from dlspec.spec.load import load_spec
from tests.conftest import EXAMPLES

BREAST = EXAMPLES / "breast_cancer.csv"
DIGITS = EXAMPLES / "digits.npz"


def write(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(path, overrides=()) -> list:
    with pytest.raises(Diagnostics) as info:
        load_spec(path, list(overrides))
    return info.value.items


TWO_BRANCH = f"""\
dlspec: 1
name: two_branch
data:
  source: {BREAST}
  target: diagnosis
  preprocess: [{{standardize: all}}]
  split: {{test: 0.2, validation: 0.1}}
model:
  inputs:
    means: {{columns: [mean_radius, mean_texture, mean_perimeter, mean_area]}}
    rest:
  nodes:
    a: {{dense: {{units: 8, activation: relu}}, from: means}}
    b: {{dense: {{units: 8, activation: relu}}, from: rest}}
    joined: {{concat: {{}}, from: [a, b]}}
    out: {{dense: {{units: 1, activation: sigmoid}}}}
train: {{loss: binary_crossentropy, optimizer: {{adam: {{lr: 0.01}}}}, batch_size: 32,
        epochs: 8, metrics: [accuracy]}}
"""


def test_two_inputs_on_two_branches_train_export_and_predict(tmp_path):
    spec = write(tmp_path, TWO_BRANCH)
    result = dlspec.train(spec, run_dir=tmp_path / "run")
    assert result.metrics["test"]["accuracy"] > 0.9
    assert result.metrics["export_parity"]["max_abs_diff"] < 1e-4
    run = dlspec.load_run(tmp_path / "run")
    assert list(run.inputs) == ["means", "rest"]
    assert run.inputs["means"].columns == ["mean_radius", "mean_texture", "mean_perimeter",
                                           "mean_area"]
    assert len(run.inputs["rest"].columns) == 26
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    dlspec.predict(tmp_path / "run" / "model.onnx", BREAST, a)
    dlspec.predict(tmp_path / "run", BREAST, b, backend="numpy")
    rows_a, rows_b = a.read_text().splitlines(), b.read_text().splitlines()
    assert len(rows_a) == len(rows_b) == 570 and rows_a[0] == rows_b[0]
    pa = np.loadtxt(a, delimiter=",", skiprows=1, usecols=(0, 1))
    pb = np.loadtxt(b, delimiter=",", skiprows=1, usecols=(0, 1))
    np.testing.assert_allclose(pa, pb, atol=1e-5)


RESIDUAL = f"""\
dlspec: 1
name: residual
data: {{source: {DIGITS}, preprocess: [{{scale: 16}}], split: {{test: 0.2}}}}
model:
  nodes:
    c1: {{conv2d: {{filters: 8, kernel_size: 3, padding: same, activation: relu}}}}
    c2: {{conv2d: {{filters: 8, kernel_size: 3, padding: same}}}}
    res: {{add: {{}}, from: [c1, c2]}}
    act: {{activation: relu}}
    pool: {{max_pool2d: 2}}
    flat: {{flatten: }}
    out: {{dense: {{units: 10, activation: softmax}}}}
train: {{loss: categorical_crossentropy, optimizer: {{adam: {{lr: 0.01}}}}, epochs: 3,
        metrics: [accuracy]}}
"""


def test_a_residual_block_trains_and_exports(tmp_path):
    result = dlspec.train(write(tmp_path, RESIDUAL), run_dir=tmp_path / "run")
    assert result.metrics["test"]["accuracy"] > 0.85
    assert result.metrics["export_parity"]["max_abs_diff"] < 1e-4
    exported = dlspec.export(tmp_path / "run", tmp_path / "r.onnx")
    assert exported["parity"]["rows"] > 0


SIAMESE = """\
dlspec: 1
name: siamese
model:
  inputs:
    left: {shape: [3]}
    right: {shape: [3]}
  nodes:
    l: {dense: {units: 2, activation: tanh}, from: left}
    r: {share: l, from: right}
    both: {add: {}, from: [l, r]}
"""


def finite_differences(path, x: dict, output: str, eps: float = 1e-6) -> dict:
    """d sum(output) / d every input and parameter, by central differences of the values
    dlspec.gradients computes (float64)."""
    values, grads = dlspec.gradients(path, x, output)
    params = {k: np.asarray(values[k]) for k in grads if k not in x}

    def total(xs: dict, ps: dict) -> float:
        return float(np.sum(dlspec.gradients(path, xs, output, params=ps)[0][output]))

    out = {}
    for name in grads:
        base = np.array(x[name] if name in x else params[name], dtype=np.float64)
        numeric = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            d = np.zeros_like(base)
            d[i] = eps
            moved = [(xs, ps) for xs, ps in (
                ({**x, name: base + s * d}, params) if name in x else
                (x, {**params, name: base + s * d}) for s in (1, -1))]
            numeric[i] = (total(*moved[0]) - total(*moved[1])) / (2 * eps)
        out[name] = numeric
    return out


def test_a_shared_layer_has_one_set_of_parameters_and_its_gradients_add_up(tmp_path):
    path = write(tmp_path, SIAMESE)
    rng = np.random.default_rng(0)
    x = {"left": rng.standard_normal(3), "right": rng.standard_normal(3)}
    values, grads = dlspec.gradients(path, x, "both")
    assert set(grads) == {"left", "right", "l.kernel", "l.bias"}  # one kernel, one bias
    np.testing.assert_allclose(values["both"], values["l"] + values["r"])
    numeric = finite_differences(path, x, "both")
    for name, g in grads.items():
        np.testing.assert_allclose(g, numeric[name], rtol=1e-5, atol=1e-8, err_msg=name)


BLOCKS = f"""\
dlspec: 1
name: blocks
data:
  source: {BREAST}
  target: diagnosis
  preprocess: [{{standardize: all}}]
model:
  inputs:
    left: {{columns: [mean_radius, mean_texture, mean_perimeter, mean_area, mean_smoothness]}}
    right: {{columns: [worst_radius, worst_texture, worst_perimeter, worst_area,
                      worst_smoothness]}}
  nodes:
    l: {{call: encoder, from: left}}
    r: {{call: encoder, from: right}}
    both: {{concat: {{}}, from: [l, r]}}
    out: {{dense: {{units: 1, activation: sigmoid}}}}
  blocks:
    encoder:
      inputs: [x]
      nodes:
        h: {{dense: {{units: 6, activation: relu}}, from: x}}
        code: {{dense: {{units: 3, activation: tanh}}}}
train: {{loss: binary_crossentropy, optimizer: {{adam: {{lr: 0.02}}}}, epochs: 6,
        metrics: [accuracy]}}
"""


def test_a_block_called_twice_trains_one_set_of_parameters_and_exports_it_once(tmp_path):
    import onnx

    result = dlspec.train(write(tmp_path, BLOCKS), run_dir=tmp_path / "run")
    assert result.metrics["test"]["accuracy"] > 0.85
    with np.load(tmp_path / "run" / "weights.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["encoder.code.bias", "encoder.code.kernel",
                                   "encoder.h.bias", "encoder.h.kernel", "out.bias",
                                   "out.kernel"]
    model = onnx.load(tmp_path / "run" / "model.onnx")
    names = [i.name for i in model.graph.initializer]
    assert names.count("encoder.h.kernel") == 1 and "encoder.h.kernel_2" not in names
    assert {i.name for i in model.graph.input} >= {"mean_radius", "worst_area"}


def test_block_calls_have_their_own_values_and_one_gradient(tmp_path):
    spec = BLOCKS.split("data:")[0] + "model:" + BLOCKS.split("model:")[1].split("train:")[0]
    spec = spec.replace("    left: {columns: [mean_radius, mean_texture, mean_perimeter, "
                        "mean_area, mean_smoothness]}", "    left: {shape: [5]}")
    right = ("    right: {columns: [worst_radius, worst_texture, worst_perimeter, worst_area,\n"
             "                      worst_smoothness]}")
    assert right in spec
    spec = spec.replace(right, "    right: {shape: [5]}")
    assert "left: {shape: [5]}" in spec and "columns" not in spec
    path = write(tmp_path, spec)
    rng = np.random.default_rng(0)
    x = {"left": rng.standard_normal(5), "right": rng.standard_normal(5)}
    values, grads = dlspec.gradients(path, x, "out")
    assert {"l", "r", "l.h", "r.h", "l.code", "r.code"} <= set(values)
    assert not np.allclose(values["l"], values["r"])
    numeric = finite_differences(path, x, "out")
    for name in ("encoder.h.kernel", "encoder.code.bias", "left", "right"):
        np.testing.assert_allclose(grads[name], numeric[name], rtol=1e-5, atol=1e-8,
                                   err_msg=name)
