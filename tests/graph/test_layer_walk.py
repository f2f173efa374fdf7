"""Every layer in the registry, built in a graph: its gradients through dlspec.gradients
against central differences (every input and parameter), and its export against
onnxruntime. One table of cases walked by two parametrised tests, as the op registry is."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import dlspec
from dlspec.graph.layers import LAYERS
from tests.graph.test_programs import finite_differences

# layer -> (its parameters, the shapes of the inputs it reads). Activations stay smooth
# (tanh) so the differences never straddle a kink; pools see distinct random values.
CASES: dict[str, tuple[dict, list[list[int]]]] = {
    "dense": ({"units": 3, "activation": "tanh"}, [[4]]),
    "dropout": ({"rate": 0.5}, [[5]]),
    "activation": ({"activation": "softplus"}, [[4]]),
    "flatten": ({}, [[3, 2, 2]]),
    "reshape": ({"target_shape": [2, 3]}, [[6]]),
    "conv2d": ({"filters": 3, "kernel_size": 2, "strides": [1, 2], "padding": "same",
                "activation": "tanh"}, [[4, 5, 2]]),
    "max_pool2d": ({"pool_size": 2}, [[4, 4, 2]]),
    "avg_pool2d": ({"pool_size": 2, "strides": 1, "padding": "same"}, [[3, 4, 2]]),
    "global_avg_pool2d": ({}, [[3, 3, 2]]),
    "batch_norm": ({"activation": "tanh"}, [[2, 3, 4]]),
    "lstm": ({"units": 3, "return_sequences": True}, [[4, 2]]),
    "gru": ({"units": 3}, [[4, 2]]),
    "simple_rnn": ({"units": 3}, [[4, 2]]),
    "add": ({}, [[3], [3], [3]]),
    "multiply": ({}, [[2, 3], [2, 3]]),
    "concat": ({"axis": -1}, [[2, 3], [2, 1]]),
    "stop_gradient": ({}, [[3]]),
}
# Layers whose gradient is zero by definition, where differences see the function's slope.
NO_GRADIENT = {"stop_gradient"}


def test_every_layer_has_a_case():
    assert set(CASES) == set(LAYERS)


def _spec(tmp_path, layer: str):
    params, shapes = CASES[layer]
    names = [f"x{i}" for i in range(len(shapes))]
    doc = {"dlspec": 1, "name": f"walk_{layer}", "seed": 3,
           "model": {"inputs": {n: {"shape": s} for n, s in zip(names, shapes, strict=True)},
                     "nodes": {"y": {layer: params, "from": names}}}}
    path = tmp_path / f"{layer}.yaml"
    path.write_text(yaml.safe_dump(doc))
    rng = np.random.default_rng(5)
    x = {n: rng.uniform(-2, 2, size=(2, *s)) for n, s in zip(names, shapes, strict=True)}
    return path, x


@pytest.mark.parametrize("layer", sorted(CASES))
def test_layer_gradients_match_central_differences(tmp_path, layer):
    path, x = _spec(tmp_path, layer)
    _, grads = dlspec.gradients(path, x, "y")
    if layer in NO_GRADIENT:
        assert all(not np.any(g) for g in grads.values()), grads
        return
    numeric = finite_differences(path, x, "y")
    assert set(grads) == set(numeric)
    for name, g in grads.items():
        assert np.shape(g) == np.shape(numeric[name]), name
        np.testing.assert_allclose(g, numeric[name], rtol=1e-5, atol=1e-7,
                                   err_msg=f"{layer}: d y / d {name}")


@pytest.mark.parametrize("layer", sorted(CASES))
def test_layer_export_matches_onnxruntime(tmp_path, layer):
    from dlspec.data.tensor import TensorInput
    from dlspec.engine.network import Network
    from dlspec.graph.lower import lower_model
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_tensor_parity
    from dlspec.spec.load import load_spec

    path, _ = _spec(tmp_path, layer)
    spec = load_spec(path)
    shapes = {i.name: i.shape for i in spec.model.inputs}
    net = Network(lower_model(spec.model.program(shapes)))
    net.buffer.initialize(np.random.default_rng(1))
    if layer == "batch_norm":  # statistics other than the initial 0 and 1
        for p, view in zip(net.buffer.params, net.buffer.views, strict=True):
            view += np.float32(0.3) if p.name.endswith("mean") else np.float32(0.5)
    inputs = {n: TensorInput(n, tuple(s)) for n, s in shapes.items()}
    model = build_model(net, inputs, None, opset=spec.opset, name=spec.name,
                        spec_sha256=spec.sha256)
    report = check_tensor_parity(model, net, inputs)
    assert report["max_abs_diff"] < 1e-4
