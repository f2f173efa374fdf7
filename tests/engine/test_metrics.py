"""Metrics against scikit-learn as the independent oracle."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from dlspec.engine import metrics
from dlspec.engine.metrics import METRICS, MetricDef, compute, confusion_matrix

RTOL = 1e-9
SEEDS = (0, 1, 2)
MODES = ("plain", "ties", "imbalanced", "never_predicted", "missing_class", "tiny")


def _sample(seed: int, k: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels int64 (N,) and float32 probabilities (N, K) whose rows sum to 1."""
    rng = np.random.default_rng(seed * 100 + k)
    n = 5 if mode == "tiny" else 60
    label_p = np.full(k, 1.0 / k)
    if mode == "imbalanced":
        label_p = np.r_[0.85, np.full(k - 1, 0.15 / (k - 1))]
    if mode == "missing_class":  # the last class is neither a label nor a prediction
        label_p = np.r_[np.full(k - 1, 1.0 / (k - 1)), 0.0]
    y = rng.choice(k, size=n, p=label_p).astype(np.int64)
    if mode == "ties":
        # counts out of 4: few distinct scores, many exact ties (0.5 vs 0.5 included)
        p = rng.multinomial(4, np.full(k, 1.0 / k), size=n) / 4.0
    else:
        p = rng.dirichlet(np.ones(k), size=n)
        p[np.arange(n), y] += 0.5 * rng.random(n)  # some signal, so AUC is not ~0.5
        if mode in ("never_predicted", "missing_class"):
            p[:, -1] *= 0.01  # the last class never wins the argmax
        p /= p.sum(axis=1, keepdims=True)
    return y, p.astype(np.float32)


def _auc_oracle(y: np.ndarray, p: np.ndarray) -> float:
    k = p.shape[1]
    present = np.unique(y)
    if len(present) < 2:
        return float("nan")
    if k == 2:
        return skm.roc_auc_score(y, p[:, 1])
    if len(present) == k:
        return skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=range(k))
    # sklearn refuses a class missing from y_true; dlspec skips it in the macro mean
    return float(np.mean([skm.roc_auc_score(y == c, p[:, c]) for c in present]))


def _oracle(name: str, y: np.ndarray, p: np.ndarray) -> float:
    pred = np.argmax(p, axis=1)
    average = "binary" if p.shape[1] == 2 else "macro"
    prf = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}
    if name == "accuracy":
        return skm.accuracy_score(y, pred)
    if name in prf:
        return prf[name](y, pred, average=average, zero_division=0)
    return _auc_oracle(y, p)


def _assert_close(got: float, want: float) -> None:
    assert type(got) is float
    if math.isnan(want):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(want, rel=RTOL, abs=1e-12)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_classification_matches_sklearn(seed: int, k: int, mode: str) -> None:
    y, p = _sample(seed, k, mode)
    task = "binary" if k == 2 else "multiclass"
    names = ["accuracy", "precision", "recall", "f1", "auc"]
    got = compute(names, task, y, p)
    assert list(got) == names
    for name in names:
        _assert_close(got[name], _oracle(name, y, p))


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_single_sample(seed: int, k: int) -> None:
    y, p = _sample(seed, k, "plain")
    y, p = y[:1], p[:1]
    got = compute(["accuracy", "precision", "recall", "f1", "auc"], "binary" if k == 2
                  else "multiclass", y, p)
    for name in ("accuracy", "precision", "recall", "f1"):
        _assert_close(got[name], _oracle(name, y, p))
    assert math.isnan(got["auc"])


@pytest.mark.parametrize("mode", ["never_predicted", "missing_class"])
def test_last_class_really_is_never_predicted(mode: str) -> None:
    for k in (2, 4):
        y, p = _sample(0, k, mode)
        assert not np.any(np.argmax(p, axis=1) == k - 1)
        assert np.any(y == k - 1) == (mode == "never_predicted")


@pytest.mark.parametrize("k", [2, 4])
def test_single_class_labels_give_nan_auc(k: int) -> None:
    y, p = _sample(0, k, "plain")
    y = np.full_like(y, 1)
    got = compute(["accuracy", "precision", "recall", "f1", "auc"], "binary" if k == 2
                  else "multiclass", y, p)
    for name in ("accuracy", "precision", "recall", "f1"):
        _assert_close(got[name], _oracle(name, y, p))
    assert math.isnan(got["auc"])


def test_binary_tie_predicts_the_lower_class() -> None:
    y = np.array([0, 1], np.int64)
    p = np.array([[0.5, 0.5], [0.5, 0.5]], np.float32)
    got = compute(["accuracy", "precision", "recall", "auc"], "binary", y, p)
    assert got == {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "auc": 0.5}


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_sklearn(seed: int, k: int) -> None:
    y, p = _sample(seed, k, "imbalanced")
    pred = np.argmax(p, axis=1)
    got = confusion_matrix(y, pred, k)
    assert got.dtype == np.int64 and got.shape == (k, k)
    np.testing.assert_array_equal(got, skm.confusion_matrix(y, pred, labels=range(k)))


@pytest.mark.parametrize("n", [1, 40])
@pytest.mark.parametrize("d", [1, 3])
@pytest.mark.parametrize("seed", SEEDS)
def test_regression_matches_sklearn(seed: int, d: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, d))
    out = (y + rng.normal(scale=0.3, size=(n, d))).astype(np.float32)
    got = compute(["mse", "mae"], "regression", y, out)
    _assert_close(got["mse"], skm.mean_squared_error(y, out.astype(np.float64)))
    _assert_close(got["mae"], skm.mean_absolute_error(y, out.astype(np.float64)))


def _task_sample(task: str) -> tuple[np.ndarray, np.ndarray]:
    if task == "regression":
        rng = np.random.default_rng(0)
        return rng.normal(size=(8, 2)), rng.normal(size=(8, 2)).astype(np.float32)
    return _sample(0, 2 if task == "binary" else 4, "plain")


@pytest.mark.parametrize("m", list(METRICS.values()), ids=list(METRICS))
def test_registry_entry(m: MetricDef) -> None:
    assert METRICS[m.name] is m
    assert m.description.strip() and "\n" not in m.description
    assert m.tasks and m.tasks <= metrics.TASKS
    assert isinstance(m.higher_is_better, bool)
    for task in sorted(m.tasks):
        value = compute([m.name], task, *_task_sample(task))[m.name]
        assert type(value) is float and math.isfinite(value), (m.name, task, value)


@pytest.mark.parametrize(("name", "task"), [("mse", "binary"), ("mae", "multiclass"),
                                            ("accuracy", "regression"), ("auc", "regression")])
def test_metric_not_for_task_names_both(name: str, task: str) -> None:
    other = "binary" if task == "regression" else "regression"
    with pytest.raises(ValueError, match=rf"'{name}'.*'{task}'"):
        compute([name], task, *_task_sample(other))


def test_unknown_metric_and_task() -> None:
    y, p = _task_sample("binary")
    with pytest.raises(ValueError, match="'top5'"):
        compute(["top5"], "binary", y, p)
    with pytest.raises(ValueError, match="'ranking'"):
        compute(["accuracy"], "ranking", y, p)


@pytest.mark.parametrize(("task", "y", "out"), [
    ("binary", np.zeros(3, np.int64), np.full((3, 3), 1 / 3, np.float32)),
    ("multiclass", np.zeros(3, np.int64), np.full((4, 3), 1 / 3, np.float32)),
    ("multiclass", np.array([0, 3, 1]), np.full((3, 3), 1 / 3, np.float32)),
    ("multiclass", np.zeros(3, np.float32), np.full((3, 3), 1 / 3, np.float32)),
    ("binary", np.zeros(0, np.int64), np.zeros((0, 2), np.float32)),
    ("regression", np.zeros((3, 2)), np.zeros((3, 1))),
    ("regression", np.zeros(3), np.zeros(3)),
])
def test_bad_arrays_raise(task: str, y: np.ndarray, out: np.ndarray) -> None:
    with pytest.raises(ValueError, match=task):
        compute(["mse"] if task == "regression" else ["accuracy"], task, y, out)


def test_register_rejects_duplicates_and_bad_tasks() -> None:
    with pytest.raises(ValueError, match="twice"):
        metrics.register(METRICS["mse"])
    bad = MetricDef("bad", frozenset({"ranking"}), lambda y, o: 0.0, True, "Bad.")
    with pytest.raises(ValueError, match="bad"):
        metrics.register(bad)
    assert "bad" not in METRICS


def test_module_does_not_import_sklearn() -> None:
    code = "import sys, dlspec.engine.metrics; assert 'sklearn' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


@pytest.mark.parametrize("levels", [1, 2, 7, 1000])
def test_auc_with_tied_scores_equals_sklearn(levels: int) -> None:
    # ties share their mean rank: the rank sum is taken per group of equal scores
    rng = np.random.default_rng(levels)
    y = (rng.random(5000) < 0.3).astype(np.int64)
    score = (rng.integers(0, levels, 5000) / levels + 0.1 * y * (levels > 1)).astype(np.float32)
    p = np.stack([1 - score, score], axis=1)
    got = compute(["auc"], "binary", y, p)["auc"]
    assert got == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
