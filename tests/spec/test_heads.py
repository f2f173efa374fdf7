"""An output that does not fit its loss and target is one located error at validate time
(and at train time), never an internal error: ``dlspec.graph.heads`` and its callers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()


# ------------------------------------------------------------------ through the commands

SERIES_SPEC = """\
dlspec: 1
name: series
data:
  source: {source}
  target: Passengers
  drop: [Month, Up]
  sequence: {{window: 12, horizon: 1}}
  preprocess:
    - minmax: all
  split: {{test: 0.2, validation: 0.1}}
model:
  layers:
{layers}
train:
  loss: {loss}
  optimizer: adam
  batch_size: 8
  epochs: 1
"""


@pytest.fixture
def series(tmp_path):
    """A monthly series shaped like the airline passengers' (Month, Passengers), 144 rows,
    and whether it went up that month."""
    rng = np.random.default_rng(0)
    t = np.arange(144)
    values = np.round(100 + 2 * t + 30 * np.sin(t * np.pi / 6) + rng.normal(0, 5, 144))
    up = np.where(np.diff(values, prepend=0) >= 0, "up", "down")
    rows = [f"{1949 + i // 12}-{1 + i % 12:02d},{v:.0f},{u}"
            for i, (v, u) in enumerate(zip(values, up, strict=True))]
    path = tmp_path / "series.csv"
    path.write_text("Month,Passengers,Up\n" + "\n".join(rows) + "\n")
    return path


def _write(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def _validate_and_train(tmp_path, spec):
    """The single problem validate reports (as JSON), and train's exit code and stderr."""
    v = runner.invoke(app, ["validate", str(spec), "--format", "json"])
    assert v.exit_code == 1, v.output
    (problem,) = json.loads(v.stdout)
    t = runner.invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert t.exit_code == 1, t.output
    assert "internal error" not in t.output and "Traceback" not in t.output
    assert f"{spec}:{problem['line']}:{problem['column']}: {problem['path']}: " \
           f"{problem['message']}" in t.stderr
    return problem


def _line_of(path, text: str) -> int:
    return 1 + path.read_text().splitlines().index(text)


def test_sequence_output_into_a_per_window_target_is_located_at_return_sequences(
        tmp_path, series):
    """Regression: train stopped with 'internal error: ValueError: cannot reshape array of
    size 8 into shape (8,12,10)' after validate said ok."""
    layer = "    - lstm: {units: 10, return_sequences: true}"
    spec = _write(tmp_path, SERIES_SPEC.format(source=series, layers=layer, loss="mse"))
    p = _validate_and_train(tmp_path, spec)
    assert p["path"] == "model.layers[0].lstm.return_sequences"
    assert p["line"] == _line_of(spec, layer)
    assert "(N, 12, 10)" in p["message"] and "return_sequences: false" in p["message"]


def test_a_sequence_output_behind_a_dropout_is_located_at_the_recurrent_layer(
        tmp_path, series):
    layers = "    - gru: {units: 4, return_sequences: true}\n    - dropout: 0.1"
    spec = _write(tmp_path, SERIES_SPEC.format(source=series, layers=layers, loss="mae"))
    p = _validate_and_train(tmp_path, spec)
    assert p["path"] == "model.layers[0].gru.return_sequences"


def test_regression_output_wider_than_its_target_is_located_at_units(tmp_path, series):
    """Regression: 'internal error: ValueError: cannot reshape array of size 8 into shape
    (8,8)' for 8 outputs and one target column."""
    layers = "    - lstm: {units: 32, activation: relu}\n    - dense: {units: 8}"
    spec = _write(tmp_path, SERIES_SPEC.format(source=series, layers=layers, loss="mse"))
    p = _validate_and_train(tmp_path, spec)
    assert p["path"] == "model.layers[1].dense.units"
    assert p["line"] == _line_of(spec, "    - dense: {units: 8}")
    assert "8 values per example" in p["message"] and "units: 1" in p["message"]


def test_a_recurrent_output_wider_than_its_target_is_located_at_its_units(tmp_path, series):
    layer = "    - gru: {units: 3}"
    spec = _write(tmp_path, SERIES_SPEC.format(source=series, layers=layer, loss="mse"))
    assert _validate_and_train(tmp_path, spec)["path"] == "model.layers[0].gru.units"


def test_a_table_regression_without_a_head_is_located_at_its_last_layer(tmp_path):
    """Regression: a batch_norm alone keeps the 30 features, and training the 30-wide
    output against one target column was an internal error."""
    spec = _write(tmp_path, f"""\
dlspec: 1
name: radius
data:
  source: {EXAMPLES / "breast_cancer.csv"}
  target: mean_radius
  drop: [diagnosis]
model:
  layers:
    - dropout: 0.1
    - batch_norm:
train: {{loss: mae, epochs: 1}}
""")
    p = _validate_and_train(tmp_path, spec)
    assert p["path"] == "model.layers[1].batch_norm"
    assert p["line"] == _line_of(spec, "    - batch_norm:")
    assert "'mean_radius' is 1 column, but the output has 29 values per example" \
        in p["message"]


def test_a_recurrent_output_is_not_the_sigmoid_binary_crossentropy_needs(tmp_path, series):
    """The spec-level check reads 'activation: sigmoid' and passes; the lowered model's
    output comes from the LSTM, which binary_crossentropy cannot read as logits."""
    text = SERIES_SPEC.format(source=series, loss="binary_crossentropy",
                              layers="    - lstm: {units: 1, activation: sigmoid}")
    spec = _write(tmp_path, text.replace("target: Passengers", "target: Up")
                  .replace("drop: [Month, Up]", "features: [Passengers]"))
    p = _validate_and_train(tmp_path, spec)
    assert p["path"] == "model.layers[0].lstm.activation"
    assert "comes from 'lstm_1' (lstm)" in p["message"]


DIGITS_SPEC = """\
dlspec: 1
name: digits
data:
  source: {digits}
  subset: {{train: 200}}
  preprocess:
    - scale: 16
model:
  layers:
{layers}
train:
  loss: categorical_crossentropy
  batch_size: 32
  epochs: 1
"""


def test_image_shapes_are_checked_at_validate_from_the_npz_header(tmp_path):
    """Regression: validate did not know an .npz's image shape, so a dense layer on images
    passed validate and failed only in train."""
    layers = "    - conv2d: 4\n    - dense: {units: 10, activation: softmax}"
    spec = _write(tmp_path, DIGITS_SPEC.format(digits=EXAMPLES / "digits.npz", layers=layers))
    p = _validate_and_train(tmp_path, spec)
    assert p["path"] == "model.layers[1]" and "(N, 6, 6, 4)" in p["message"]


def test_image_classes_against_the_output_are_checked_once_the_labels_are_read(tmp_path):
    """Regression: with the softmax in a layer of its own, the class count was compared
    with that layer's units, which it has none of: 'needs units: 10 (it has None)'."""
    layers = "    - flatten:\n    - dense: 7\n    - activation: softmax"
    spec = _write(tmp_path, DIGITS_SPEC.format(digits=EXAMPLES / "digits.npz", layers=layers))
    assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0  # labels not read
    t = runner.invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert t.exit_code == 1, t.output
    line = _line_of(spec, "    - dense: 7")
    assert f"{spec}:{line}:14: model.layers[1].dense.units: 'label' has 10 classes, so the " \
           "softmax output needs units: 10 ('dense_1' has 7)" in t.stderr


def test_a_softmax_in_its_own_layer_after_the_right_width_trains(tmp_path):
    """Regression: the class count was compared with the units of the last layer, which an
    activation layer does not have ('it has None')."""
    layers = "    - flatten:\n    - dense: 10\n    - activation: softmax"
    spec = _write(tmp_path, DIGITS_SPEC.format(digits=EXAMPLES / "digits.npz", layers=layers))
    t = runner.invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "run")])
    assert t.exit_code == 0, t.output
