"""Image layers (conv2d, pooling, flatten, reshape): lowering, shapes, parameter counts
against the usual formulas and Keras' numbers, schema forms, and the whole CNN running
in the engine, training, and exported to onnxruntime."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from dlspec.engine.network import Network
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.engine.plan import ParamBuffer, Plan
from dlspec.errors import Diagnostics
from dlspec.graph.initializers import _fans
from dlspec.graph.ir import GraphBuilder
from dlspec.graph.layers import LAYERS
from dlspec.graph.lower import lower
from dlspec.onnx.builder import OnnxBuilder
from dlspec.onnx.export import emit_network
from dlspec.opsets import DEFAULT_OPSET, ir_version_for
from dlspec.spec.model import LayerSpec
from dlspec.spec.schema import schema_path
from tests.conftest import train_step


def layer(type_: str, name: str | None = None, **params) -> LayerSpec:
    """A LayerSpec with the registry's defaults filled in, as the spec loader makes it."""
    full = {k: s["default"] for k, s in LAYERS[type_].params.items() if "default" in s}
    full.update(params, name=name or type_)
    return LayerSpec(type_, full["name"], full)


def small_cnn() -> list[LayerSpec]:
    return [layer("conv2d", "conv1", filters=8, kernel_size=3, padding="same",
                  activation="relu"),
            layer("max_pool2d", "pool1", pool_size=2),
            layer("conv2d", "conv2", filters=16, kernel_size=3, activation="relu"),
            layer("global_avg_pool2d", "gap"),
            layer("dense", "out", units=10, activation="softmax")]


def test_small_cnn_shapes_and_parameter_counts():
    graph = lower(small_cnn(), (28, 28, 1))
    got = [(info.name, info.shape, info.n_params) for info in graph.layers]
    # KH*KW*C*O + O per conv, (in + 1) * units for dense: Keras' model.summary() numbers.
    assert got == [
        ("conv1", (None, 28, 28, 8), 3 * 3 * 1 * 8 + 8),      # 80
        ("pool1", (None, 14, 14, 8), 0),
        ("conv2", (None, 12, 12, 16), 3 * 3 * 8 * 16 + 16),   # 1168
        ("gap", (None, 16), 0),
        ("out", (None, 10), 16 * 10 + 10),                    # 170
    ]
    assert graph.n_params == 1418
    assert [info.ops for info in graph.layers[:2]] == [["conv2d", "add", "relu"], ["maxpool2d"]]
    kernels = {p.value.name: p.shape for p in graph.params}
    assert kernels["conv1.kernel"] == (3, 3, 1, 8)
    assert kernels["conv2.kernel"] == (3, 3, 8, 16)
    assert kernels["conv2.bias"] == (16,)


def test_conv_kernel_fans_are_keras_fans():
    # Keras: fan_in = KH*KW*C_in, fan_out = KH*KW*filters.
    assert _fans((3, 3, 8, 16)) == (3 * 3 * 8, 3 * 3 * 16)
    assert _fans((5, 3, 1, 4)) == (15, 60)


@pytest.mark.parametrize("size", [5, 7, 8, 28, 29])
@pytest.mark.parametrize("kernel", [1, 2, 3, 5])
def test_same_padding_with_stride_2_gives_ceil_half(size: int, kernel: int):
    want = -(-size // 2)
    for spec in (layer("conv2d", filters=4, kernel_size=kernel, strides=2, padding="same"),
                 layer("max_pool2d", pool_size=kernel, strides=2, padding="same"),
                 layer("avg_pool2d", pool_size=kernel, strides=2, padding="same")):
        graph = lower([spec], (size, size + 1, 3))
        assert graph.output.shape[1:3] == (want, -(-(size + 1) // 2)), spec.type


def test_valid_padding_strides_and_dilation_shapes():
    graph = lower([layer("conv2d", "a", filters=4, kernel_size=[3, 5], strides=[2, 1],
                         dilation=2),
                   layer("conv2d", "b", filters=6, kernel_size=1, padding=[1, 0, 2, 3]),
                   layer("avg_pool2d", "c", pool_size=[2, 3], strides=1)], (15, 17, 2))
    # (15 - 2*2 - 1)//2 + 1 = 6; (17 - 2*4 - 1)//1 + 1 = 9; then 6+1+2 = 9, 9+0+3 = 12.
    assert [info.shape for info in graph.layers] == [(None, 6, 9, 4), (None, 9, 12, 6),
                                                     (None, 8, 10, 6)]


def test_pooling_default_strides_are_the_pool_size():
    graph = lower([layer("max_pool2d", pool_size=3)], (10, 9, 2))
    assert graph.output.shape == (None, 3, 3, 2)
    assert graph.nodes[0].attrs["strides"] == (3, 3)


def test_groups_and_depthwise_parameter_counts():
    graph = lower([layer("conv2d", "g", filters=8, groups=2, bias=False),
                   layer("conv2d", "dw", filters=8, groups=8)], (9, 9, 4))
    assert [info.n_params for info in graph.layers] == [3 * 3 * 2 * 8, 3 * 3 * 1 * 8 + 8]
    with pytest.raises(Diagnostics, match=r"layer 'g'.*groups=3"):
        lower([layer("conv2d", "g", filters=6, groups=3)], (9, 9, 4))


def test_flatten_and_reshape():
    graph = lower([layer("reshape", target_shape=[28, 28, 1]),
                   layer("conv2d", filters=2, kernel_size=5, strides=3),
                   layer("flatten")], (784,))
    assert [info.shape for info in graph.layers] == [(None, 28, 28, 1), (None, 8, 8, 2),
                                                     (None, 128)]
    assert lower([layer("reshape", target_shape=[-1, 4])], (6, 2)).output.shape == (None, 3, 4)
    flat = lower([layer("flatten")], (5,))
    assert flat.output.shape == (None, 5) and not flat.nodes


@pytest.mark.parametrize(("layers", "shape", "fragment"), [
    ([layer("conv2d", "c", filters=2)], (30,), "layer 'c': conv2d expects images"),
    ([layer("max_pool2d", "p", pool_size=5)], (4, 9, 1), "does not fit the 4x9 image"),
    ([layer("conv2d", "c", filters=2, kernel_size=7)], (5, 5, 1), "does not fit the 5x5"),
    ([layer("global_avg_pool2d", "g")], (3, 4), "global_avg_pool2d expects images"),
    ([layer("reshape", "r", target_shape=[5, 5])], (6, 4), "holds 25 values per example"),
    ([layer("max_pool2d", "p", pool_size=2, padding=[2, 0, 0, 0])], (6, 6, 1),
     "must be smaller than the kernel"),
])
def test_shape_errors_name_the_layer(layers, shape, fragment):
    with pytest.raises(Diagnostics) as info:
        lower(layers, shape)
    (item,) = info.value.items
    assert fragment in item.message and item.path == "model.layers[0]", item.message
    assert f"layer '{layers[0].name}'" in item.message, item.message


def _layer_item_schema() -> dict:
    schema = json.loads(schema_path().read_text())
    return schema["properties"]["model"]["properties"]["layers"]["items"]


@pytest.mark.parametrize("item", [
    {"conv2d": 32}, {"conv2d": {"filters": 8, "kernel_size": [3, 5], "padding": "same",
                                "strides": 2, "activation": "relu"}},
    {"conv2d": {"filters": 8, "padding": [1, 0, 1, 0], "dilation": [2, 1], "groups": 2}},
    {"max_pool2d": 2}, {"max_pool2d": [2, 3]}, {"max_pool2d": None},
    {"avg_pool2d": {"pool_size": 3, "strides": 2, "padding": "same"}},
    {"global_avg_pool2d": None}, {"flatten": None}, {"flatten": {"name": "flat"}},
    {"reshape": [28, 28, 1]}, {"reshape": {"target_shape": [-1, 7]}},
])
def test_schema_accepts(item):
    jsonschema.validate(item, _layer_item_schema())


@pytest.mark.parametrize("item", [
    {"conv2d": None}, {"conv2d": {"filters": 0}}, {"conv2d": {"filters": 8, "padding": "full"}},
    {"conv2d": {"filters": 8, "kernel_size": [3, 3, 3]}},
    {"conv2d": {"filters": 8, "padding": [1, 1]}}, {"max_pool2d": 0},
    {"max_pool2d": {"pool_size": 2, "strides": [0, 1]}}, {"reshape": [0, 3]},
    {"reshape": []}, {"flatten": 3},
])
def test_schema_refuses(item):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(item, _layer_item_schema())


def _network(seed: int = 0) -> Network:
    net = Network.chain(small_cnn(), (28, 28, 1), "categorical_crossentropy")
    net.buffer.initialize(np.random.default_rng(seed))
    return net


def test_small_cnn_runs_and_matches_its_onnx_export():
    net = _network()
    x = np.random.default_rng(1).random((5, 28, 28, 1), dtype=np.float32)
    _, probs = net.forward(x)
    assert probs.shape == (5, 10) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)

    b = OnnxBuilder(DEFAULT_OPSET)
    features = b.add_input("features", TensorProto.FLOAT, ["N", 28, 28, 1])
    (out,) = emit_network(b, net, {"features": features}).values()
    b.add_output(out, TensorProto.FLOAT, ["N", 10])
    model = helper.make_model(b.graph("cnn"),
                              opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)],
                              ir_version=ir_version_for(DEFAULT_OPSET))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for batch in (x, x[:1]):                      # the batch axis stays dynamic
        (got,) = sess.run(None, {"features": batch})
        np.testing.assert_allclose(got, net.forward(batch)[1], rtol=1e-4, atol=1e-6)


def test_small_cnn_trains_on_a_fixed_batch():
    net = _network(seed=3)
    rng = np.random.default_rng(2)
    y = np.arange(20) % 10
    # Class k: noise around brightness k / 10, which global pooling can read.
    x = (rng.random((20, 28, 28, 1)) * 0.2 + y[:, None, None, None] / 10).astype(np.float32)
    plan, buf = net.train_plan, net.buffer
    slots = plan.new_slots()
    losses = []
    opt = OPTIMIZERS["adam"].make(buf.flat.size, {"lr": 0.01})
    for _ in range(60):
        loss = train_step(net, plan, slots, x, y)
        assert np.all(np.isfinite(buf.grad))
        opt.step(buf.flat, buf.grad)
        losses.append(loss)
    assert losses[-1] < 0.5 * losses[0], losses


def _full(value: float):
    return lambda rng, shape: np.full(shape, value, dtype=np.float32)


def test_batchnorm_op_pair_trains_on_batch_statistics_and_infers_on_given_ones():
    """The batch-norm lowering: batchnorm (inference form) feeding the train-only
    batchnorm_train, whose update rule moves the moving statistics."""
    gb = GraphBuilder()
    x = gb.input("x", (None, 4, 5, 3))
    gb.begin_layer("bn")
    gamma, beta = gb.param("gamma", (3,), _full(1.5)), gb.param("beta", (3,), _full(0.25))
    mean = gb.param("moving_mean", (3,), _full(0.5), trainable=False)
    var = gb.param("moving_variance", (3,), _full(4.0), trainable=False)
    a = gb.op("batchnorm", x, gamma, beta, mean, var, epsilon=1e-3)
    y = gb.op("batchnorm_train", a, x, gamma, beta, mean, var, epsilon=1e-3, momentum=0.9)
    gb.end_layer("batch_norm", y)
    gb.graph.output = y
    buf = ParamBuffer(gb.graph)
    buf.initialize(np.random.default_rng(0))
    xb = np.random.default_rng(1).standard_normal((6, 4, 5, 3)).astype(np.float32) * 3 + 1

    infer = Plan(gb.graph, buf)
    s = infer.new_slots()
    s[infer.input_slots[0]] = xb
    infer.forward(s)
    np.testing.assert_allclose(s[infer.output_slot],
                               (xb - 0.5) / np.sqrt(4.0 + 1e-3) * 1.5 + 0.25, rtol=1e-5)

    train = Plan(gb.graph, buf, seed=y)
    s = train.new_slots()
    s[train.input_slots[0]] = xb
    train.forward(s)
    mu, sd = xb.mean(axis=(0, 1, 2)), np.sqrt(xb.var(axis=(0, 1, 2)) + 1e-3)
    xhat = (xb - mu) / sd
    np.testing.assert_allclose(s[train.seed_slot], xhat * 1.5 + 0.25, rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(2).standard_normal(xb.shape).astype(np.float32)
    train.backward(s, g)
    grads = dict(zip((p.value.name for p in buf.params), buf.grad_views, strict=True))
    np.testing.assert_allclose(grads["bn.gamma"], (g * xhat).sum(axis=(0, 1, 2)), rtol=1e-4)
    np.testing.assert_allclose(grads["bn.beta"], g.sum(axis=(0, 1, 2)), rtol=1e-4, atol=1e-5)
    train.update_state(s)
    states = dict(zip((p.value.name for p in buf.params), buf.views, strict=True))
    np.testing.assert_allclose(states["bn.moving_mean"], 0.9 * 0.5 + 0.1 * mu, rtol=1e-5)
    np.testing.assert_allclose(states["bn.moving_variance"],
                               0.9 * 4.0 + 0.1 * xb.var(axis=(0, 1, 2)), rtol=1e-5)
