"""The portability note is checked against onnx's own reference evaluator: present exactly
when that evaluator's numbers differ from onnxruntime's (which equal the engine's)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

from dlspec.engine.network import Network
from dlspec.onnx.builder import OnnxBuilder
from dlspec.onnx.export import emit_network
from dlspec.onnx.portability import portability_note
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS
from dlspec.opsets import DEFAULT_OPSET, ir_version_for
from tests.graph.test_layers_rnn import RECURRENT, layer

CASES = [(cell, act, rec) for cell in RECURRENT for act in RNN_ACTIVATIONS
         for rec in (("sigmoid", "tanh") if cell != "simple_rnn" else ("sigmoid",))]


def _model(cell: str, activation: str, recurrent_activation: str):
    params = {"activation": activation}
    if cell != "simple_rnn":
        params["recurrent_activation"] = recurrent_activation
    net = Network.chain([layer(cell, "r", units=5, **params), layer("dense", "out", units=1)],
                        (7, 3), "mse")
    net.buffer.initialize(np.random.default_rng(3))
    b = OnnxBuilder(DEFAULT_OPSET)
    features = b.add_input("features", TensorProto.FLOAT, ["N", 7, 3])
    (out,) = emit_network(b, net, {"features": features}).values()
    b.add_output(out, TensorProto.FLOAT, ["N", 1])
    return helper.make_model(b.graph("m"), ir_version=ir_version_for(DEFAULT_OPSET),
                             opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])


@pytest.mark.parametrize(("cell", "activation", "recurrent_activation"), CASES)
def test_note_exactly_when_the_reference_evaluator_differs(cell, activation,
                                                           recurrent_activation):
    model = _model(cell, activation, recurrent_activation)
    x = np.random.default_rng(4).standard_normal((16, 7, 3)).astype(np.float32) * 2
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    [expected] = sess.run(None, {"features": x})
    try:
        [got] = ReferenceEvaluator(model).run(None, {"features": x})
        differs = not np.allclose(got, expected, rtol=1e-3, atol=1e-4)
    except RuntimeError:  # it refuses the model: it does not compute these numbers either
        differs = True
    note = portability_note(model)
    assert bool(note) == differs, (note, differs)
    if note:
        assert "onnx's reference evaluator" in note and "onnxruntime computes" in note


SERIES_SPEC = """\
dlspec: 1
name: series
data:
  source: series.csv
  target: y
  drop: [t]
  sequence: {{window: 6}}
  preprocess: [minmax: all]
  split: {{test: 0.2, validation: 0.1}}
model:
  layers:
    - lstm: {{units: 4, activation: {activation}}}
    - dense: 1
train: {{loss: mse, epochs: 2, batch_size: 8}}
"""


def test_export_train_and_inspect_say_it(tmp_path):
    """An exported LSTM with relu (as specs/airline_lstm.yaml) carries the note, and the
    reference evaluator really forecasts otherwise; with its default tanh, neither."""
    import onnx
    from typer.testing import CliRunner

    from dlspec.cli import app

    runner = CliRunner()
    t = np.arange(80)
    (tmp_path / "series.csv").write_text("t,y\n" + "".join(
        f"{i},{100 + 2 * i + 20 * np.sin(i / 2):.3f}\n" for i in t))
    x = np.stack([np.array([[100 + 2 * i + 20 * np.sin(i / 2)] for i in range(s, s + 6)])
                  for s in range(0, 70, 3)]).astype(np.float32)
    for activation, noted in (("relu", True), ("tanh", False)):
        spec = tmp_path / f"{activation}.yaml"
        spec.write_text(SERIES_SPEC.format(activation=activation))
        run = tmp_path / f"run_{activation}"
        r = runner.invoke(app, ["train", str(spec), "--run-dir", str(run)])
        assert r.exit_code == 0, r.output
        assert ("note: LSTM node" in r.stderr) is noted, r.stderr
        r = runner.invoke(app, ["export", str(run), "-o", str(tmp_path / "m.onnx")])
        assert r.exit_code == 0, r.output
        assert ("note: LSTM node" in r.stderr) is noted, r.stderr
        r = runner.invoke(app, ["inspect", str(tmp_path / "m.onnx")])
        assert r.exit_code == 0, r.output
        assert ("dlspec.note: LSTM node" in r.stdout) is noted, r.stdout
        model = onnx.load(tmp_path / "m.onnx")
        name = model.graph.input[0].name
        sess = ort.InferenceSession(model.SerializeToString(),
                                    providers=["CPUExecutionProvider"])
        [expected] = sess.run(["prediction"], {name: x})
        [got] = ReferenceEvaluator(model).run(["prediction"], {name: x})
        assert np.allclose(got, expected, rtol=1e-3, atol=1e-3) is not noted
