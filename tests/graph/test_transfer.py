"""Transfer learning: a run's weights loaded strictly by parameter name (model.init_from),
parameters frozen or slowed by glob (train.params), and the classes a run trains on
chosen (data.classes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import dlspec
from dlspec.errors import Diagnostics
from dlspec.spec.load import load_spec
from tests.conftest import EXAMPLES

DIGITS = EXAMPLES / "digits.npz"

BASE = f"""\
dlspec: 1
name: base
data: {{source: {DIGITS}, preprocess: [{{scale: 16}}], classes: [0, 1, 2, 3, 4],
        split: {{test: 0.2, validation: 0.1}}}}
model:
  nodes:
    conv1: {{conv2d: {{filters: 8, kernel_size: 3, padding: same, activation: relu}}}}
    pool1: {{max_pool2d: 2}}
    conv2: {{conv2d: {{filters: 8, kernel_size: 3, padding: same, activation: relu}}}}
    flat: {{flatten: }}
    head: {{dense: {{units: 5, activation: softmax}}}}
train: {{loss: categorical_crossentropy, optimizer: {{adam: {{lr: 0.01}}}}, epochs: 3,
        metrics: [accuracy]}}
"""

TRANSFER = f"""\
dlspec: 1
name: transfer
data: {{source: {DIGITS}, preprocess: [{{scale: 16}}], classes: [5, 6, 7, 8, 9],
        subset: {{train: 150}}, split: {{test: 0.3, validation: 0.1}}}}
model:
  nodes:
    conv1: {{conv2d: {{filters: 8, kernel_size: 3, padding: same, activation: relu}}}}
    pool1: {{max_pool2d: 2}}
    conv2: {{conv2d: {{filters: 8, kernel_size: 3, padding: same, activation: relu}}}}
    flat: {{flatten: }}
    new_head: {{dense: {{units: 5, activation: softmax}}}}
  init_from: {{run: base_run, skip: ["head.*"]}}
train:
  loss: categorical_crossentropy
  optimizer: {{adam: {{lr: 0.01}}}}
  epochs: 3
  metrics: [accuracy]
  params: [{{match: "conv*.*", frozen: true}}]
"""


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("transfer")
    (folder / "base.yaml").write_text(BASE)
    result = dlspec.train(folder / "base.yaml", run_dir=folder / "base_run")
    assert result.metrics["classes"] == [0, 1, 2, 3, 4]
    assert result.metrics["test"]["accuracy"] > 0.9
    return folder


def _weights(run) -> dict:
    with np.load(run / "weights.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def test_frozen_transferred_layers_stay_bit_identical_and_the_new_head_trains(base_run):
    (base_run / "transfer.yaml").write_text(TRANSFER)
    result = dlspec.train(base_run / "transfer.yaml", run_dir=base_run / "t1")
    assert result.metrics["classes"] == [5, 6, 7, 8, 9]
    before, after = _weights(base_run / "base_run"), _weights(base_run / "t1")
    for name in ("conv1.kernel", "conv1.bias", "conv2.kernel", "conv2.bias"):
        assert np.array_equal(before[name], after[name]), name
    assert "head.kernel" not in after and after["new_head.kernel"].shape == (128, 5)
    init = result.metrics["init_from"]
    assert init["loaded"] == 4 and init["skipped"] == ["head.kernel", "head.bias"]
    assert init["fresh"] == ["new_head.kernel", "new_head.bias"]
    assert result.metrics["test"]["accuracy"] > 0.6
    # frozen parameters get no optimizer state: its buffers cover the new head alone
    with np.load(base_run / "t1" / "optimizer.npz", allow_pickle=False) as z:
        assert z["optimizer/m"].size < 128 * 5 + 5 + 64


def test_inspect_lists_what_init_from_loads_skips_and_starts_fresh(base_run):
    from typer.testing import CliRunner

    from dlspec.cli import app

    (base_run / "transfer.yaml").write_text(TRANSFER)
    out = CliRunner().invoke(app, ["inspect", str(base_run / "transfer.yaml")])
    assert out.exit_code == 0, out.output
    assert "4 parameter(s) loaded" in out.output
    assert "skipped: head.kernel, head.bias" in out.output
    assert "freshly initialised: new_head.kernel, new_head.bias" in out.output
    assert "frozen: conv1.kernel, conv1.bias, conv2.kernel, conv2.bias" in out.output


@pytest.mark.parametrize(("change", "fragment"), [
    ('skip: ["head.*"]', "has head.kernel (128x5), which is not a parameter here (did you "
                         "mean 'new_head.kernel'?); load it under another name (rename) or skip"),
    ("filters: 8, kernel_size: 3, padding: same, activation: relu}}\n    pool1",
     "conv1.kernel is 3x3x1x8 in"),
    ('skip: ["head.*"]}', ""),
])
def test_init_from_mistakes_are_located(base_run, change, fragment):
    text = TRANSFER
    if change.startswith("skip") and fragment:
        text = text.replace(change, "skip: []")
    elif change.startswith("filters"):
        text = text.replace(change, change.replace("filters: 8", "filters: 6"), 1)
    else:
        text = text.replace("skip: [\"head.*\"]", "skip: [\"haed.*\"]")
        fragment = "'haed.*' matches no parameter of"
    (base_run / "bad.yaml").write_text(text)
    with pytest.raises(Diagnostics) as info:
        dlspec.train(base_run / "bad.yaml", run_dir=base_run / "never")
    messages = [d.message for d in info.value.items]
    assert any(fragment in m for m in messages), messages
    assert all(d.location.file.endswith("bad.yaml") for d in info.value.items)
    assert not (base_run / "never").exists()


def test_a_mis_shaped_parameter_names_both_shapes_and_the_source_file(base_run):
    text = TRANSFER.replace("conv1: {conv2d: {filters: 8", "conv1: {conv2d: {filters: 6")
    (base_run / "shape.yaml").write_text(text)
    with pytest.raises(Diagnostics) as info:
        load_spec(base_run / "shape.yaml")
    [d] = [d for d in info.value.items if "conv1.kernel" in d.message]
    assert "conv1.kernel is 3x3x1x8 in" in d.message and "weights.npz" in d.message
    assert "but conv1.kernel is 3x3x1x6 here" in d.message
    assert d.path == "model.init_from.run"


def test_a_missing_run_and_a_glob_matching_nothing(tmp_path):
    (tmp_path / "t.yaml").write_text(TRANSFER.replace("base_run", "nowhere").replace(
        '"conv*.*"', '"cnv*.*"'))
    with pytest.raises(Diagnostics) as info:
        dlspec.train(tmp_path / "t.yaml", run_dir=tmp_path / "run")
    messages = " | ".join(d.message for d in info.value.items)
    assert "'cnv*.*' matches no parameter" in messages
    (tmp_path / "t.yaml").write_text(TRANSFER.replace("base_run", "nowhere"))
    with pytest.raises(Diagnostics, match="nowhere: not a run directory"):
        dlspec.train(tmp_path / "t.yaml", run_dir=tmp_path / "run")


def test_before_its_base_is_trained_validate_notes_and_inspect_shows_the_graph(tmp_path):
    """A transfer spec lives in version control before its base run exists: validate passes
    with a note, inspect shows the graph and says the run is not there, train refuses."""
    from typer.testing import CliRunner

    from dlspec.cli import app

    (tmp_path / "t.yaml").write_text(TRANSFER.replace("base_run", "nowhere"))
    runner = CliRunner()
    checked = runner.invoke(app, ["validate", str(tmp_path / "t.yaml")])
    assert checked.exit_code == 0, checked.output
    assert "nowhere does not exist yet; train needs it" in checked.output
    shown = runner.invoke(app, ["inspect", str(tmp_path / "t.yaml")])
    assert shown.exit_code == 0, shown.output
    assert "new_head" in shown.output and "no run there yet" in shown.output
    assert "frozen: conv1.kernel, conv1.bias, conv2.kernel, conv2.bias" in shown.output
    trained = runner.invoke(app, ["train", str(tmp_path / "t.yaml"), "--run-dir",
                                  str(tmp_path / "run")])
    assert trained.exit_code != 0 and "not a run directory" in trained.output


def test_lr_mult_scales_each_parameters_steps(tmp_path):
    """With SGD, a parameter of lr_mult 0.5 moves half as far in the first step; of lr_mult
    0 not at all (while it still gets its gradient)."""
    spec = f"""\
dlspec: 1
name: mult
data: {{source: {EXAMPLES / 'breast_cancer.csv'}, target: diagnosis,
        preprocess: [{{standardize: all}}]}}
model:
  layers:
    - dense: {{units: 4, activation: relu, name: a}}
    - dense: {{units: 1, activation: sigmoid, name: b}}
train:
  loss: binary_crossentropy
  optimizer: {{sgd: {{lr: 0.1}}}}
  batch_size: 1000
  epochs: 1
  shuffle: false
  params: PARAMS
"""
    runs = {}
    for key, params in (("plain", "[]"), ("half", '[{match: "a.*", lr_mult: 0.5}]'),
                        ("still", '[{match: "b.kernel", lr_mult: 0}]')):
        (tmp_path / f"{key}.yaml").write_text(spec.replace("PARAMS", params))
        runs[key] = _weights(dlspec.train(tmp_path / f"{key}.yaml",
                                          run_dir=tmp_path / key).run_dir)
    from dlspec.engine.network import Network
    from dlspec.engine.trainer import INIT_STREAM, rng

    loaded = load_spec(tmp_path / "plain.yaml")
    net = Network.chain(loaded.layers, 30, None)
    net.buffer.initialize(rng(loaded.train.seed, INIT_STREAM))
    start = net.buffer.state()
    for name in ("a.kernel", "a.bias"):
        np.testing.assert_allclose(runs["half"][name] - start[name],
                                   0.5 * (runs["plain"][name] - start[name]), rtol=1e-5,
                                   atol=1e-7)
    assert np.array_equal(runs["still"]["b.kernel"], start["b.kernel"])
    assert not np.array_equal(runs["still"]["b.bias"], start["b.bias"])


def test_data_classes_keeps_those_classes_and_names_a_missing_one(tmp_path):
    (tmp_path / "c.yaml").write_text(BASE.replace("classes: [0, 1, 2, 3, 4]",
                                                  "classes: [0, 1, 2, 3, 11]"))
    with pytest.raises(Diagnostics, match="class 11 is not in"):
        dlspec.train(tmp_path / "c.yaml", run_dir=tmp_path / "run")


def test_the_lock_of_a_transfer_run_records_init_from(base_run):
    lock = (base_run / "t1" / "spec.lock.yaml").read_text()
    assert "init_from:" in lock and "base_run" in lock
    assert json.loads((base_run / "t1" / "metrics.json").read_text())["init_from"]
