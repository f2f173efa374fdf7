"""Recurrent layers (lstm, gru, simple_rnn): lowering, shapes, parameter counts against
Keras' numbers, initial weights as Keras makes them, shape errors, schema forms, training
through the engine, and the exported model against the engine."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from dlspec.engine.network import Network
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.errors import Diagnostics
from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.layers import LAYERS
from dlspec.graph.lower import lower
from dlspec.onnx.builder import OnnxBuilder
from dlspec.onnx.export import emit_network
from dlspec.onnx.parity import RawRows, check_parity
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS
from dlspec.opsets import DEFAULT_OPSET, MIN_OPSET, ir_version_for
from dlspec.spec.model import LayerSpec
from dlspec.spec.schema import schema_path
from tests.conftest import train_step

RECURRENT = ("lstm", "gru", "simple_rnn")


def layer(type_: str, name: str | None = None, **params) -> LayerSpec:
    """A LayerSpec with the registry's defaults filled in, as the spec loader makes it."""
    full = {k: s["default"] for k, s in LAYERS[type_].params.items() if "default" in s}
    full.update(params, name=name or type_)
    return LayerSpec(type_, full["name"], full)


# ----------------------------------------------------------------------------- lowering

@pytest.mark.parametrize(("type_", "op", "n_params"), [
    # Keras' model.summary() for 8 features and 64 units:
    ("lstm", "lstm", 4 * 64 * (8 + 64 + 1)),              # 18,688
    ("gru", "gru", 3 * 64 * (8 + 64 + 2)),                # 14,208 (reset_after: two biases)
    ("simple_rnn", "rnn", 64 * (8 + 64 + 1)),             # 4,672
])
def test_parameter_counts_are_keras_counts(type_: str, op: str, n_params: int):
    graph = lower([layer(type_, "r", units=64)], (50, 8))
    (info,) = graph.layers
    assert (info.shape, info.n_params, info.ops) == ((None, 64), n_params, [op])
    assert graph.n_params == n_params
    shapes = {p.value.name: p.shape for p in graph.params}
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[type_]
    assert shapes["r.kernel"] == (8, gates * 64)
    assert shapes["r.recurrent_kernel"] == (64, gates * 64)
    assert shapes["r.bias"] == ((2, 192) if type_ == "gru" else (gates * 64,))


def test_lstm_8_to_64_has_18688_parameters():
    assert lower([layer("lstm", units=64)], (50, 8)).n_params == 18_688


@pytest.mark.parametrize("type_", RECURRENT)
def test_without_bias_there_is_no_bias_parameter(type_: str):
    graph = lower([layer(type_, "r", units=5, use_bias=False)], (7, 3))
    assert [p.value.name for p in graph.params] == ["r.kernel", "r.recurrent_kernel"]
    assert graph.nodes[0].op.name.endswith("_nobias")
    assert graph.nodes[0].op.arity == 3


def test_stacked_layers_return_sequences_then_the_last_state():
    graph = lower([layer("lstm", "l1", units=16, return_sequences=True),
                   layer("gru", "g2", units=8, return_sequences=True),
                   layer("simple_rnn", "r3", units=4),
                   layer("dense", "out", units=1, activation="sigmoid")], (20, 3))
    assert [info.shape for info in graph.layers] == [(None, 20, 16), (None, 20, 8), (None, 4),
                                                     (None, 1)]
    # The second layer's kernel reads the first one's 16 features per step.
    assert {p.value.name: p.shape for p in graph.params}["g2.kernel"] == (16, 24)


def test_attributes_reach_the_op():
    graph = lower([layer("lstm", units=6, activation="relu", recurrent_activation="tanh",
                         return_sequences=True)], (4, 2))
    assert graph.nodes[0].attrs == {"units": 6, "return_sequences": True, "activation": "relu",
                                    "recurrent_activation": "tanh"}
    rnn = lower([layer("simple_rnn", units=6)], (4, 2)).nodes[0]
    assert rnn.attrs == {"units": 6, "return_sequences": False, "activation": "tanh"}


@pytest.mark.parametrize(("layers", "shape", "fragment"), [
    ([layer("lstm", "l", units=4)], (30,), "lstm needs (batch, time, features) input, got (N, 30)"),
    ([layer("gru", "g", units=4)], (28, 28, 1), "gru needs (batch, time, features) input, got"
     " (N, 28, 28, 1)"),
    ([layer("simple_rnn", "s", units=4)], (30,), "simple_rnn needs (batch, time, features)"),
])
def test_shape_errors_name_the_layer(layers, shape, fragment):
    with pytest.raises(Diagnostics) as info:
        lower(layers, shape)
    (item,) = info.value.items
    assert fragment in item.message and item.path == "model.layers[0]", item.message
    assert f"layer '{layers[0].name}'" in item.message, item.message


def test_a_dense_layer_after_sequences_asks_for_the_last_state():
    with pytest.raises(Diagnostics, match=r"dense takes \(N, features\)"):
        lower([layer("lstm", units=4, return_sequences=True), layer("dense", units=1)], (5, 2))


# ----------------------------------------------------------------------------- initial weights

def _initial(type_: str, seed: int = 0, **params) -> dict[str, np.ndarray]:
    net = Network.chain([layer(type_, "r", units=16, **params)], (5, 4), None)
    net.buffer.initialize(np.random.default_rng(seed))
    return net.buffer.state()


@pytest.mark.parametrize("type_", RECURRENT)
def test_initial_weights_are_keras_defaults(type_: str):
    w = _initial(type_)
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[type_]
    u = w["r.recurrent_kernel"]
    # orthogonal: the (16, gates*16) recurrent kernel has orthonormal rows
    np.testing.assert_allclose(u @ u.T, np.eye(16), atol=1e-5)
    limit = np.sqrt(6 / (4 + gates * 16))             # glorot_uniform, fans (4, gates*16)
    assert np.abs(w["r.kernel"]).max() <= limit and np.abs(w["r.kernel"]).max() > 0.8 * limit
    assert all(a.dtype == np.float32 for a in w.values())


def test_lstm_forget_gate_bias_starts_at_one():
    bias = _initial("lstm")["r.bias"]
    np.testing.assert_array_equal(bias, np.r_[np.zeros(16), np.ones(16), np.zeros(32)])
    assert not _initial("lstm", unit_forget_bias=False)["r.bias"].any()
    ones = _initial("lstm", bias_initializer="ones")["r.bias"]
    np.testing.assert_array_equal(ones, np.ones(64))


def test_gru_has_an_input_and_a_recurrent_bias():
    assert _initial("gru")["r.bias"].shape == (2, 48)


@pytest.mark.parametrize("shape", [(16, 64), (64, 16), (12, 12), (3, 4, 5)])
def test_orthogonal_initializer(shape: tuple):
    fn = INITIALIZERS["orthogonal"].fn
    q = fn(np.random.default_rng(3), shape)
    assert q.shape == shape and q.dtype == np.float32
    flat = q.reshape(-1, shape[-1])
    small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(small, np.eye(min(flat.shape)), atol=1e-5)
    np.testing.assert_array_equal(q, fn(np.random.default_rng(3), shape))   # seeded
    assert not np.array_equal(q, fn(np.random.default_rng(4), shape))


# ----------------------------------------------------------------------------- schema

def _layer_item_schema() -> dict:
    schema = json.loads(schema_path().read_text())
    return schema["properties"]["model"]["properties"]["layers"]["items"]


@pytest.mark.parametrize("item", [
    {"lstm": 64}, {"gru": 32}, {"simple_rnn": 8},
    {"lstm": {"units": 32, "return_sequences": True, "activation": "relu",
              "recurrent_activation": "sigmoid", "unit_forget_bias": False,
              "recurrent_initializer": "orthogonal", "kernel_initializer": "he_uniform"}},
    {"gru": {"units": 16, "use_bias": False, "recurrent_activation": "tanh"}},
    {"simple_rnn": {"units": 4, "activation": "linear", "name": "rnn1", "trainable": False}},
    {"dense": {"units": 4, "initializer": "orthogonal"}},
])
def test_schema_accepts(item):
    jsonschema.validate(item, _layer_item_schema())


@pytest.mark.parametrize("item", [
    {"lstm": None}, {"lstm": 0}, {"lstm": {"units": 8, "activation": "softmax"}},
    {"simple_rnn": {"units": 4, "recurrent_activation": "sigmoid"}},
    {"simple_rnn": {"units": 4, "unit_forget_bias": True}},
    {"gru": {"units": 4, "reset_after": False}}, {"gru": {"units": 4, "dropout": 0.1}},
])
def test_schema_refuses(item):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(item, _layer_item_schema())


@pytest.mark.parametrize("type_", RECURRENT)
def test_schema_activations_are_the_recurrent_registry(type_: str):
    props = _layer_item_schema()["properties"][type_]["oneOf"][1]["properties"]
    keys = ["activation"] + (["recurrent_activation"] if type_ != "simple_rnn" else [])
    for key in keys:
        assert set(props[key]["enum"]) == set(RNN_ACTIVATIONS), key


# ----------------------------------------------------------------------------- training

def _toy_sequences(n: int = 64, t: int = 12, seed: int = 0):
    """Is the first feature's running sum above zero at the end? The answer needs the
    whole sequence; the second feature is noise."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, t, 2)).astype(np.float32)
    y = (x[:, :, 0].sum(axis=1) > 0).astype(np.float32)
    return x, y


@pytest.mark.parametrize("type_", RECURRENT)
def test_a_small_recurrent_network_trains(type_: str):
    net = Network.chain([layer(type_, "r", units=12, return_sequences=True),
                   layer(type_, "r2", units=8),
                   layer("dense", "out", units=1, activation="sigmoid")], (12, 2),
                  "binary_crossentropy")
    net.buffer.initialize(np.random.default_rng(1))
    x, y = _toy_sequences()
    plan, buf = net.train_plan, net.buffer
    opt = OPTIMIZERS["adam"].make(buf.flat.size, {"lr": 0.02})
    slots = plan.new_slots()
    losses = []
    for step in range(80):
        rows = slice(step % 2 * 32, step % 2 * 32 + 32)
        loss = train_step(net, plan, slots, x[rows], y[rows])
        assert buf.grad.dtype == np.float32 and np.isfinite(buf.grad).all()
        opt.step(buf.flat, buf.grad)
        losses.append(loss)
    assert np.mean(losses[-4:]) < 0.5 * np.mean(losses[:4]), losses
    _, out = net.forward(x)
    assert ((out[:, 0] > 0.5) == y).mean() >= 0.9


# ----------------------------------------------------------------------------- export

@pytest.mark.parametrize("opset", [MIN_OPSET, DEFAULT_OPSET])
@pytest.mark.parametrize("type_", RECURRENT)
def test_export_matches_the_engine(type_: str, opset: int):
    net = Network.chain([layer(type_, "r1", units=10, return_sequences=True, activation="tanh"),
                         layer(type_, "r2", units=6, use_bias=False),
                         layer("dense", "out", units=2)], (9, 3), None)
    net.buffer.initialize(np.random.default_rng(5))
    b = OnnxBuilder(opset)
    features = b.add_input("features", TensorProto.FLOAT, ["N", 9, 3])
    (out,) = emit_network(b, net, {"features": features}).values()
    b.add_output(out, TensorProto.FLOAT, ["N", 2])
    model = helper.make_model(b.graph("rnn"), opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=ir_version_for(opset))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(6).standard_normal((40, 9, 3)).astype(np.float32)
    raw = RawRows(feeds=lambda rows: {"features": x[rows]}, features=lambda rows: x[rows])
    # The export's own parity gate: batch size 1 (several rows) and all rows at once.
    report = check_parity(sess, out, net, "regression", raw, np.arange(len(x)))
    assert report["batch_sizes"] == [1, 40] and report["max_abs_diff"] < 1e-4
