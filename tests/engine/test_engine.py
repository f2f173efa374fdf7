"""The compiled engine: float32 end to end, trainable flags, the plan's shape."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from dlspec.engine.network import Network
from dlspec.engine.trainer import fit
from dlspec.inputs import load_dataset
from dlspec.spec.load import load_spec
from tests.conftest import ROOT, SPECS, train_step


def _net(overrides=()):
    spec = load_spec(SPECS / "breast_cancer.yaml", list(overrides))
    ds = load_dataset(spec)
    return spec, ds, Network.chain(spec.layers, ds.input_shapes["features"], spec.train.loss)


def _data_arrays(plan, s: list) -> list:
    """The arrays a training step leaves in its slots, but the targets (class indices)."""
    targets = set(plan.target_slots)
    return [a for i, a in enumerate(s) if isinstance(a, np.ndarray) and i not in targets]


def test_a_training_step_is_float32_throughout():
    spec, ds, net = _net()
    net.buffer.initialize(np.random.default_rng(0))
    plan = net.train_plan
    s = plan.new_slots()
    train_step(net, plan, s, ds.x["train"]["features"][:16], ds.y["train"][:16])
    arrays = _data_arrays(plan, s)
    assert arrays and all(a.dtype == np.float32 for a in arrays), \
        [a.dtype for a in arrays if a.dtype != np.float32]
    assert net.buffer.grad.dtype == np.float32 and np.abs(net.buffer.grad).sum() > 0


def test_a_cnn_training_step_is_float32_throughout():
    spec = load_spec(SPECS / "mnist_cnn.yaml", check_data=False)
    net = Network.chain(spec.layers, (28, 28, 1), spec.train.loss)
    net.buffer.initialize(np.random.default_rng(0))
    plan = net.train_plan
    rng = np.random.default_rng(1)
    s = plan.new_slots()
    train_step(net, plan, s, rng.random((8, 28, 28, 1), dtype=np.float32),
               rng.integers(0, 10, 8))
    arrays = _data_arrays(plan, s) + plan.held_arrays()
    assert len(arrays) > 20
    assert all(a.dtype in (np.float32, np.bool_) for a in arrays), \
        {str(a.dtype) for a in arrays}
    assert net.buffer.grad.dtype == np.float32 and np.abs(net.buffer.grad).sum() > 0


def test_inference_plan_skips_dropout_and_training_plan_skips_the_fused_sigmoid():
    _, _, net = _net()
    # inference: dropout is the identity, and there is no loss
    assert len(net.infer_plan.forward_steps) == len(net.graph.nodes) - 2
    assert len(net.train_plan.nodes) == len(net.graph.nodes) - 1   # no final sigmoid


def test_frozen_layer_keeps_its_weights():
    spec, ds, net = _net(["model.layers[0].dense.trainable=false", "train.epochs=2",
                          "train.early_stopping="])
    net.buffer.initialize(np.random.default_rng(spec.train.seed))
    fit(net, spec.train, ds.target.task, ds.x, ds.y)
    after = net.buffer.state()
    # fit re-initialises from the same seed, so compare with a fresh initialisation
    net2 = Network.chain(spec.layers, ds.input_shapes["features"], spec.train.loss)
    from dlspec.engine.trainer import INIT_STREAM, rng
    net2.buffer.initialize(rng(spec.train.seed, INIT_STREAM))
    before = net2.buffer.state()
    assert np.array_equal(after["dense_1.kernel"], before["dense_1.kernel"])
    assert not np.array_equal(after["dense_2.kernel"], before["dense_2.kernel"])


def test_no_pickle_anywhere_in_the_source():
    """Every np.load passes allow_pickle=False; nothing imports pickle."""
    for path in (ROOT / "dlspec").rglob("*.py"):
        tree = ast.parse(Path(path).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not any(n.split(".")[0] in ("pickle", "dill", "cloudpickle")
                               for n in names), path
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "load" and \
                    getattr(node.func.value, "id", "") == "np":
                kw = {k.arg: k.value for k in node.keywords}
                assert "allow_pickle" in kw and kw["allow_pickle"].value is False, \
                    f"{path}:{node.lineno}: np.load without allow_pickle=False"


def _lstm(name: str, units: int, sequences: bool):
    from dlspec.spec.model import LayerSpec

    return LayerSpec("lstm", name, {
        "name": name, "units": units, "return_sequences": sequences, "activation": "tanh",
        "recurrent_activation": "sigmoid", "use_bias": True,
        "kernel_initializer": "glorot_uniform", "recurrent_initializer": "orthogonal",
        "bias_initializer": "zeros", "unit_forget_bias": True, "trainable": True})


def test_an_lstm_training_step_is_float32_throughout():
    from dlspec.spec.model import LayerSpec

    dense = LayerSpec("dense", "out", {"name": "out", "units": 1, "activation": "linear",
                                       "initializer": "glorot_uniform", "bias": True,
                                       "bias_initializer": "zeros", "trainable": True})
    net = Network.chain([_lstm("l1", 8, True), _lstm("l2", 5, False), dense], (7, 3), "mse")
    net.buffer.initialize(np.random.default_rng(0))
    plan = net.train_plan
    rng = np.random.default_rng(1)
    s = plan.new_slots()
    train_step(net, plan, s, rng.standard_normal((6, 7, 3), dtype=np.float32),
               rng.standard_normal((6, 1), dtype=np.float32))
    arrays = _data_arrays(plan, s) + plan.held_arrays()
    assert len(arrays) > 10
    assert all(a.dtype in (np.float32, np.bool_) for a in arrays), \
        {str(a.dtype) for a in arrays}
    assert net.buffer.grad.dtype == np.float32
    assert all(np.abs(gv).sum() > 0 for gv in net.buffer.grad_views)


@pytest.mark.parametrize(("overrides", "activation"), [
    # a regression model ending in dropout: the loss reads the dropout's output
    (["data.target=mean_radius", "data.drop=[diagnosis]", "train.loss=mse",
      "train.metrics=[]", "train.early_stopping=", "model.layers=[{dense: 1}, {dropout: 0.2}]"],
     None),
    # the logits the fused sigmoid reads come from a dropout or from batch statistics
    (["model.layers=[{dense: 1}, {dropout: 0.2}, {activation: sigmoid}]"], "sigmoid"),
    (["model.layers=[{dense: 1}, {batch_norm: {activation: sigmoid}}]"], "sigmoid"),
], ids=["regression-ending-in-dropout", "dropout-before-sigmoid", "batch-norm-sigmoid"])
def test_evaluation_reads_a_loss_input_made_by_a_train_only_op(overrides, activation):
    """Regression: these evaluated to ``zero-dimensional arrays cannot be concatenated``
    (exit 70): the inference plan skips the dropout or batch-statistics op whose output
    the loss reads, and forward() read that op's never-written slot."""
    spec, ds, net = _net([*overrides, "train.epochs=1"])
    fit(net, spec.train, ds.target.task, ds.x, ds.y)
    x = ds.x["validation"]["features"]
    z, out = net.forward(x, batch=7)
    assert z.shape == out.shape == (len(x), 1)
    dense = net.buffer.state()
    expected = x @ dense["dense_1.kernel"] + dense["dense_1.bias"]
    if activation is None:
        np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, 1 / (1 + np.exp(-z)) if activation else z, rtol=1e-5,
                               atol=1e-6)
