"""Sequence data: windows against hand-built arrays, chronological splits, and the fitted
scaling against scikit-learn, in NumPy and in onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from dlspec.data.sequence import (
    SEQUENCE_INPUT,
    SequenceInput,
    SequencePreprocessor,
    scaling_kinds,
    sliding_windows,
    target_rows,
    window_count,
)
from dlspec.data.split import chronological_split, split_indices
from dlspec.errors import ModelError
from dlspec.onnx.builder import OnnxBuilder
from dlspec.onnx.preprocess import emit_sequence, emit_sequence_output
from dlspec.opsets import DEFAULT_OPSET, ir_version_for

SCALER = {"minmax": MinMaxScaler, "standardize": StandardScaler}


def test_windows_equal_a_hand_built_array():
    values = np.array([[1, 10], [2, 20], [3, 30], [4, 40], [5, 50]], dtype=np.float32)
    want = np.array([[[1, 10], [2, 20], [3, 30]],
                     [[2, 20], [3, 30], [4, 40]],
                     [[3, 30], [4, 40], [5, 50]]], dtype=np.float32)
    got = sliding_windows(values, 3)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(sliding_windows(values, 1), values[:, None, :])
    assert sliding_windows(values, 6).shape == (0, 6, 2)


def test_targets_follow_the_window_by_the_horizon():
    # 10 rows, window 3, horizon 2: window i is rows i..i+2, its target row i+4
    assert window_count(10, 3, 2) == 6
    np.testing.assert_array_equal(target_rows(6, 3, 2), [4, 5, 6, 7, 8, 9])
    assert window_count(4, 3, 2) == 0 and window_count(5, 3, 2) == 1


def test_chronological_split_takes_test_from_the_end():
    train, val, test = chronological_split(132, test=0.2, validation=0.1)
    np.testing.assert_array_equal(train, np.arange(93))
    np.testing.assert_array_equal(val, np.arange(93, 106))
    np.testing.assert_array_equal(test, np.arange(106, 132))
    # the same sizes as the shuffled split
    shuffled = split_indices(132, test=0.2, validation=0.1, seed=0)
    assert [len(a) for a in shuffled] == [93, 13, 26]
    with pytest.raises(ValueError, match="empty test split"):
        chronological_split(10, test=0.01, validation=0.0)


def _series(n: int = 60) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(n)
    return np.stack([100 + 2 * t + 10 * np.sin(t / 3), 20 + rng.normal(0, 3, n)], axis=1)


@pytest.mark.parametrize("kind", ["minmax", "standardize"])
def test_scaling_matches_sklearn_fitted_on_the_training_period(kind):
    values = _series()
    train_rows = values[:40]
    pre = SequencePreprocessor.fit(train_rows, ["a", "b"], [{kind: {"columns": "all"}}],
                                   window=5, horizon=1, target="a",
                                   target_values=train_rows[:, 0])
    oracle = SCALER[kind]().fit(train_rows)
    windows = sliding_windows(values, 5)
    got = pre.transform(windows)
    want = oracle.transform(values).astype(np.float32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, sliding_windows(want, 5), rtol=1e-5, atol=1e-5)
    if kind == "minmax":  # the training period maps onto [0, 1]; later rows may leave it
        assert got[:36].min() == pytest.approx(0, abs=1e-6)
        assert got[:36].max() == pytest.approx(1, abs=1e-6)
        assert got.max() > 1
    # the target is a feature: it is scaled with that feature's parameters
    y = values[:, :1].astype(np.float32)
    np.testing.assert_allclose(pre.scale_target(y), want[:, :1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pre.unscale_target(pre.scale_target(y)), y, rtol=1e-6)


def test_a_target_that_is_not_a_feature_gets_its_own_scaling():
    values = _series()
    pre = SequencePreprocessor.fit(values[:40, 1:], ["b"], [{"minmax": {"columns": "all"}}],
                                   window=4, horizon=2, target="a",
                                   target_values=values[:40, 0])
    oracle = MinMaxScaler().fit(values[:40, :1])
    assert pre.target_offset == np.float32(oracle.data_min_[0])
    assert pre.target_scale == np.float32(oracle.data_range_[0])
    # listed columns: only those are scaled; the target stays in its units
    listed = SequencePreprocessor.fit(values[:40], ["a", "b"], [{"minmax": {"columns": ["b"]}}],
                                      window=4, horizon=1, target="a",
                                      target_values=values[:40, 0])
    assert not listed.target_scaled and listed.offset[0] == 0 and listed.scale[0] == 1
    out = np.array([[3.5]], np.float32)
    assert listed.unscale_target(out) is out


def test_a_classifier_target_is_never_scaled():
    values = _series()
    pre = SequencePreprocessor.fit(values[:40], ["a", "b"], [{"minmax": {"columns": "all"}}],
                                   window=4, horizon=1, target="up", target_values=None)
    assert set(pre.kinds) == {"a", "b"} and not pre.target_scaled


def test_a_constant_column_keeps_scale_one():
    rows = np.array([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]])
    for kind in ("minmax", "standardize"):
        pre = SequencePreprocessor.fit(rows, ["a", "b"], [{kind: {"columns": "all"}}],
                                       window=2, horizon=1, target="a", target_values=rows[:, 0])
        assert pre.scale[1] == 1 and pre.offset[1] == 5


@pytest.mark.parametrize(("steps", "message"), [
    ([{"onehot": {"columns": ["a"]}}], "'onehot' does not apply to sequence data"),
    ([{"minmax": {"columns": ["c"]}}], "'c' is not a feature or the target"),
    ([{"minmax": {"columns": "all"}}, {"standardize": {"columns": ["b"]}}],
     "column 'b' is already scaled by minmax"),
])
def test_bad_scaling_steps_are_refused(steps, message):
    with pytest.raises(ValueError, match=message):
        scaling_kinds(["a", "b"], "y", steps)


def _run(build, feeds: dict, rank: int) -> np.ndarray:
    import onnxruntime as ort

    b = OnnxBuilder(DEFAULT_OPSET)
    out = build(b)
    b.add_output(out, TensorProto.FLOAT, [f"d{i}" for i in range(rank)])
    model = helper.make_model(b.graph("t"), ir_version=ir_version_for(DEFAULT_OPSET),
                              opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)])
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([out], feeds)[0]


@pytest.mark.parametrize("kind", ["minmax", "standardize"])
def test_onnx_scaling_equals_numpy(kind):
    values = _series()
    pre = SequencePreprocessor.fit(values[:40], ["a", "b"], [{kind: {"columns": "all"}}],
                                   window=6, horizon=1, target="a", target_values=values[:40, 0])
    windows = sliding_windows(values, 6)
    got = _run(lambda b: emit_sequence(b, pre, SEQUENCE_INPUT), {SEQUENCE_INPUT: windows}, 3)
    np.testing.assert_allclose(got, pre.transform(windows), rtol=1e-6, atol=1e-6)

    out = np.linspace(-0.5, 1.5, 7, dtype=np.float32).reshape(-1, 1)

    def unscale(b):
        b.add_input("out", TensorProto.FLOAT, ["N", 1])
        return emit_sequence_output(b, pre, "out")
    np.testing.assert_array_equal(_run(unscale, {"out": out}, 2), pre.unscale_target(out))


def test_state_round_trips_and_malformed_state_is_refused():
    values = _series()
    pre = SequencePreprocessor.fit(values[:40], ["a", "b"], [{"minmax": {"columns": "all"}}],
                                   window=6, horizon=2, target="a", target_values=values[:40, 0])
    back = SequencePreprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(back.offset, pre.offset)
    np.testing.assert_array_equal(back.scale, pre.scale)
    assert (back.window, back.horizon, back.columns, back.kinds) == (6, 2, ["a", "b"], pre.kinds)
    assert back.target_offset == pre.target_offset and back.target_scale == pre.target_scale
    assert back.sequence_input == SequenceInput(6, 2, 2, ("a", "b"))
    assert SequenceInput.from_dict(back.sequence_input.to_dict()) == back.sequence_input
    broken = {**pre.to_dict(), "scale": [1.0]}
    with pytest.raises(ModelError, match="differ in length"):
        SequencePreprocessor.from_dict(broken)
    with pytest.raises(ModelError, match="invalid preprocessing state"):
        SequencePreprocessor.from_dict({**pre.to_dict(), "window": 0})
