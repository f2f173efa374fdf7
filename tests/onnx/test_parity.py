"""The export's parity gate against a stand-in onnxruntime session: what it lets through."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.engine.network import Network
from dlspec.errors import ExportError
from dlspec.graph.lower import lower
from dlspec.onnx.parity import RawRows, check_parity, overflowing_activations
from dlspec.spec.model import LayerSpec


class Session:
    """Answers like onnxruntime would: the engine's outputs, changed by ``tamper``."""

    def __init__(self, net: Network, x: np.ndarray, tamper) -> None:
        self.net, self.x, self.tamper = net, x, tamper

    def run(self, names, feeds):
        _, out = self.net.forward(feeds["features"])
        rows = [next(j for j, seen in enumerate(self.x) if np.array_equal(row, seen))
                for row in feeds["features"]]   # the data rows in this batch
        return [self.tamper(out.copy(), rows)]


def _net():
    params = {"name": "out", "units": 2, "activation": "linear", "initializer": "ones",
              "bias": True, "bias_initializer": "zeros", "trainable": True}
    net = Network.chain([LayerSpec("dense", "out", params)], 3, None)
    net.buffer.initialize(np.random.default_rng(0))
    return net


def _check(tamper):
    net = _net()
    x = np.random.default_rng(1).standard_normal((20, 3)).astype(np.float32)
    raw = RawRows(feeds=lambda rows: {"features": x[rows]}, features=lambda rows: x[rows])
    return check_parity(Session(net, x, tamper), "out", net, "regression", raw,
                        np.arange(len(x)))


def _set(value, row=0):
    """Data row ``row``'s second output becomes ``value``, in any batch that holds it."""
    def tamper(out, rows):
        if row in rows:
            out[rows.index(row), 1] = value
        return out
    return tamper


def test_an_exact_export_passes():
    assert _check(lambda out, rows: out)["max_abs_diff"] == 0.0


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, 1e6])
def test_a_non_finite_or_distant_output_fails(value):
    """Regression: an exported model answering NaN passed the gate (NaN compares false
    with every bound) and was written, with max_abs_diff 0.0."""
    with pytest.raises(ExportError, match="disagree on 'out' at batch size 1: data row 0 gives"):
        _check(_set(value))


def test_a_nan_from_both_is_agreement():
    """(Passes before the NaN fix too: it pins that the fix counts only a one-sided NaN.)"""
    def both(out, rows):
        out[:, 1] = np.nan
        return out
    net = _net()
    x = np.random.default_rng(1).standard_normal((20, 3)).astype(np.float32)
    w = net.buffer.views[0]
    w[:, 1] = np.nan   # the engine's second output is NaN for every row
    raw = RawRows(feeds=lambda rows: {"features": x[rows]}, features=lambda rows: x[rows])
    report = check_parity(Session(net, x, both), "out", net, "regression", raw,
                          np.arange(len(x)))
    assert report["max_abs_diff"] == 0.0


def test_a_nan_in_the_whole_batch_fails_too():
    with pytest.raises(ExportError, match="disagree on 'out' at batch size 20: data row 19"):
        _check(_set(np.nan, row=19))


def test_recurrent_softplus_is_named_as_a_likely_cause():
    def rnn(name, **p):
        return LayerSpec("lstm", name, {
            "name": name, "units": 2, "return_sequences": True, "activation": "tanh",
            "recurrent_activation": "sigmoid", "use_bias": True, "unit_forget_bias": True,
            "kernel_initializer": "ones", "recurrent_initializer": "zeros",
            "bias_initializer": "zeros", "trainable": True, **p})
    graph = lower([rnn("a"), rnn("b", activation="softplus"),
                   rnn("c", recurrent_activation="softplus")], (4, 1))
    assert [(layer, attr, act.name) for layer, attr, act in overflowing_activations(graph)] \
        == [("b", "activation", "softplus"), ("c", "recurrent_activation", "softplus")]
