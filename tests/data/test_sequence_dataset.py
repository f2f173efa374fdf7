"""Sequence specs -> datasets: windows, chronological splits, scaling fitted on the training
period only (a change in the test period does not move it), .npz windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler

from dlspec.data.sequence import sliding_windows
from dlspec.errors import Diagnostics
from dlspec.inputs import load_dataset
from dlspec.spec.load import load_spec

SPEC = """\
dlspec: 1
name: series
data:
  source: {source}
  target: level
  drop: [month]
  sequence: {{window: 4, horizon: 2}}
  preprocess: [{{minmax: all}}]
  split: {{test: 0.25, validation: 0.125}}
model:
  layers: [{{flatten: }}, {{dense: 1}}]
train: {{loss: mse, epochs: 2, metrics: [mae]}}
"""


def series(n: int = 35) -> np.ndarray:
    t = np.arange(n, dtype=np.float64)
    return np.stack([100 + 3 * t + 10 * np.sin(t / 2), 15 + 5 * np.cos(t / 3)], axis=1)


def write_series(path: Path, values: np.ndarray) -> Path:
    lines = ["month,level,temp"] + [f"m{i},{a:.3f},{b:.3f}" for i, (a, b) in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def make_spec(tmp_path: Path, values: np.ndarray, spec: str = SPEC, **fmt) -> Path:
    write_series(tmp_path / "s.csv", values)
    path = tmp_path / "s.yaml"
    path.write_text(spec.format(source="s.csv", **fmt))
    return path


def test_windows_targets_and_chronological_splits(tmp_path):
    values = np.round(series(), 3)
    ds = load_dataset(load_spec(make_spec(tmp_path, values)))
    # 35 rows, window 4, horizon 2: 30 windows; test 8 (the last), validation 4, train 18
    np.testing.assert_array_equal(ds.rows["train"], np.arange(18))
    np.testing.assert_array_equal(ds.rows["validation"], np.arange(18, 22))
    np.testing.assert_array_equal(ds.rows["test"], np.arange(22, 30))
    np.testing.assert_array_equal(ds.raw, sliding_windows(values, 4)[:30])
    assert ds.raw[0].tolist() == values[:4].astype(np.float32).tolist()
    # window i ends at row i + 3; its target is 'level' two rows later
    np.testing.assert_array_equal(ds.targets[:, 0], values[5:, 0].astype(np.float32))
    assert ds.input_shapes == {"window": (4, 2)} and ds.x["test"]["window"].shape == (8, 4, 2)
    assert ds.y["train"].dtype == np.float32 and ds.y["train"].shape == (18, 1)


def test_scaling_is_fitted_on_the_training_period_only(tmp_path):
    values = np.round(series(), 3)
    pre = load_dataset(load_spec(make_spec(tmp_path, values))).preprocessor
    # the last training window (17) ends at row 20 and its target is row 22
    oracle = MinMaxScaler().fit(values[:23])
    np.testing.assert_allclose(pre.offset, oracle.data_min_, rtol=1e-6)
    np.testing.assert_allclose(pre.scale, oracle.data_range_, rtol=1e-6)
    assert (pre.target_offset, pre.target_scale) == (pre.offset[0], pre.scale[0])
    # changing the validation and test period does not change the fit
    later = values.copy()
    later[23:] *= 10
    again = load_dataset(load_spec(make_spec(tmp_path, later))).preprocessor
    np.testing.assert_array_equal(again.offset, pre.offset)
    np.testing.assert_array_equal(again.scale, pre.scale)


def test_a_target_that_is_not_a_feature(tmp_path):
    values = np.round(series(), 3)
    spec = SPEC.replace("drop: [month]", "features: [temp]")
    ds = load_dataset(load_spec(make_spec(tmp_path, values, spec)))
    pre = ds.preprocessor
    assert pre.columns == ["temp"] and ds.input_shapes == {"window": (4, 1)}
    oracle = MinMaxScaler().fit(values[:23, :1])
    assert pre.target_offset == pytest.approx(oracle.data_min_[0], rel=1e-6)
    assert pre.target_scale == pytest.approx(oracle.data_range_[0], rel=1e-6)
    np.testing.assert_allclose(pre.unscale_target(ds.y["test"]), ds.targets[22:], rtol=1e-5)


def test_a_sequence_classifier_keeps_its_classes(tmp_path):
    values = np.round(series(), 3)
    rows = ["month,level,temp,up"] + [f"m{i},{a},{b},{'yes' if i % 3 else 'no'}"
                                      for i, (a, b) in enumerate(values)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    spec = (SPEC.replace("target: level", "target: up").replace("drop: [month]",
                                                               "features: [level, temp]")
            .replace("{{dense: 1}}", "{{dense: {{units: 1, activation: sigmoid}}}}")
            .replace("loss: mse", "loss: binary_crossentropy").replace("mae", "accuracy"))
    (tmp_path / "s.yaml").write_text(spec.format(source="s.csv"))
    ds = load_dataset(load_spec(tmp_path / "s.yaml"))
    assert ds.target.classes == ["no", "yes"] and ds.y["train"].dtype == np.int64
    assert ds.y["train"][:3].tolist() == [1, 0, 1]  # rows 5, 6, 7: yes, no, yes
    assert not ds.preprocessor.target_scaled


def test_npz_windows(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5, 3)).astype(np.float32)
    y = x[:, -1, 0] * 2 + 1
    np.savez(tmp_path / "w.npz", x=x, y=y)
    spec = tmp_path / "w.yaml"
    spec.write_text(SPEC.format(source="w.npz").replace("  target: level\n", "")
                    .replace("  drop: [month]\n", "")
                    .replace("{window: 4, horizon: 2}", "{window: 5}"))
    ds = load_dataset(load_spec(spec))
    assert ds.preprocessor.columns == ["x0", "x1", "x2"] and ds.target.name == "y"
    np.testing.assert_array_equal(ds.rows["test"], np.arange(30, 40))
    oracle = MinMaxScaler().fit(x[:25].reshape(-1, 3))
    np.testing.assert_allclose(ds.preprocessor.offset, oracle.data_min_, rtol=1e-6)
    assert ds.preprocessor.target_offset == pytest.approx(y[:25].min())

    spec.write_text(spec.read_text().replace("{window: 5}", "{window: 6}"))
    with pytest.raises(Diagnostics) as info:
        load_spec(spec)
    assert str(info.value) == (f"{spec}:5:22: data.sequence.window: w.npz holds windows of 5 "
                               "time steps, but window is 6")


def test_validate_knows_the_sequence_shape(tmp_path):
    path = make_spec(tmp_path, series())
    path.write_text(path.read_text().replace("{flatten: }, ", ""))
    with pytest.raises(Diagnostics) as info:
        load_spec(path)
    assert "dense takes (N, features) but its input is (N, 4, 2); add a flatten" \
        in str(info.value)
