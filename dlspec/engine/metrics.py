"""Evaluation metrics: one registry, pure NumPy, float64 inside.

Conventions (``compute`` checks them before any metric runs):

* classification (``binary``, ``multiclass``): ``y_true`` holds int class
  indices, shape (N,); ``y_out`` holds probabilities, shape (N, K), K >= 2.
  The predicted class is the argmax, ties going to the lower index, so a
  binary model predicts 1 only when p1 > p0.
* regression: ``y_true`` and ``y_out`` are floats of one shape (N, D).

A metric's ``fn`` sees the checked arrays (int64 labels, float64 outputs).
Two output columns mean binary semantics (positive class 1); more mean
macro averages, so a multiclass task is expected to have K >= 3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dlspec.errors import ShapeError, SpecError

TASKS = frozenset({"binary", "multiclass", "regression"})
CLASSIFICATION = frozenset({"binary", "multiclass"})
REGRESSION = frozenset({"regression"})


@dataclass(frozen=True)
class MetricDef:
    """One metric: spec name, tasks it applies to, and how to compute it."""

    name: str
    tasks: frozenset[str]
    fn: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    description: str


METRICS: dict[str, MetricDef] = {}


def register(m: MetricDef) -> MetricDef:
    """Add ``m`` to ``METRICS``; a name may be registered once."""
    if m.name in METRICS:
        raise ValueError(f"metric {m.name!r} is registered twice")
    if not m.tasks or not m.tasks <= TASKS:
        raise ValueError(f"metric {m.name!r}: tasks must be a non-empty subset of "
                         f"{sorted(TASKS)}, got {sorted(m.tasks)}")
    METRICS[m.name] = m
    return m


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts as int64 [n_classes, n_classes]; rows are true, columns predicted."""
    flat = np.asarray(y_true, np.int64) * n_classes + np.asarray(y_pred, np.int64)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # zero division gives 0.0, as sklearn's zero_division=0
    return np.divide(num, den, out=np.zeros(num.shape), where=den != 0)


def _prf(y_true: np.ndarray, y_out: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-class precision, recall and F1 plus the mask of classes to average.

    Binary averages over class 1 only; macro over classes that occur in
    ``y_true`` or the predictions (sklearn's default labels).
    """
    k = y_out.shape[1]
    cm = confusion_matrix(y_true, np.argmax(y_out, axis=1), k).astype(np.float64)
    tp, predicted, actual = np.diag(cm), cm.sum(axis=0), cm.sum(axis=1)
    used = np.array([False, True]) if k == 2 else (predicted + actual) > 0
    return (_divide(tp, predicted), _divide(tp, actual),
            _divide(2.0 * tp, predicted + actual), used)


def _accuracy(y_true: np.ndarray, y_out: np.ndarray) -> float:
    return float(np.mean(np.argmax(y_out, axis=1) == y_true))


def _precision(y_true: np.ndarray, y_out: np.ndarray) -> float:
    p, _, _, used = _prf(y_true, y_out)
    return float(p[used].mean())


def _recall(y_true: np.ndarray, y_out: np.ndarray) -> float:
    _, r, _, used = _prf(y_true, y_out)
    return float(r[used].mean())


def _f1(y_true: np.ndarray, y_out: np.ndarray) -> float:
    _, _, f, used = _prf(y_true, y_out)
    return float(f[used].mean())


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg); NaN when one side is empty.

    The positives' rank sum is taken per group of tied scores (the group's mean rank times
    its positives), not from an array of every row's rank: fewer arrays the size of the
    input (training metrics see every training row). Every term is a multiple of 1/2 and
    every partial sum below 2**52, so the sum is exact in any order.
    """
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="stable")
    ordered = score[order]
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    del ordered
    starts = np.flatnonzero(first)
    del first
    hits = np.add.reduceat(positive[order].astype(np.int64), starts)  # positives per group
    del order
    ends = np.empty_like(starts)
    ends[:-1], ends[-1] = starts[1:], len(score)
    mean_rank = (starts + 1 + ends) / 2.0
    u = float(np.dot(mean_rank, hits)) - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _auc(y_true: np.ndarray, y_out: np.ndarray) -> float:
    k = y_out.shape[1]
    if k == 2:
        return _binary_auc(y_true == 1, y_out[:, 1])
    present = np.flatnonzero(np.bincount(y_true, minlength=k))
    if len(present) < 2:
        return float("nan")
    # NOTE: a class absent from y_true has no AUC; the macro mean skips it
    # (sklearn refuses such input instead).
    return float(np.mean([_binary_auc(y_true == c, y_out[:, c]) for c in present]))


def _mse(y_true: np.ndarray, y_out: np.ndarray) -> float:
    return float(np.mean(np.square(y_true - y_out)))


def _mae(y_true: np.ndarray, y_out: np.ndarray) -> float:
    return float(np.mean(np.abs(y_true - y_out)))


register(MetricDef("accuracy", CLASSIFICATION, _accuracy, True,
                   "Fraction of samples whose argmax class equals the label."))
register(MetricDef("precision", CLASSIFICATION, _precision, True,
                   "Precision of class 1 (binary) or macro average over classes (multiclass)."))
register(MetricDef("recall", CLASSIFICATION, _recall, True,
                   "Recall of class 1 (binary) or macro average over classes (multiclass)."))
register(MetricDef("f1", CLASSIFICATION, _f1, True,
                   "F1 score of class 1 (binary) or macro average over classes (multiclass)."))
register(MetricDef("auc", CLASSIFICATION, _auc, True,
                   "ROC AUC of class 1 (binary) or one-vs-rest macro average (multiclass)."))
register(MetricDef("mse", REGRESSION, _mse, False,
                   "Mean squared error over all output elements."))
register(MetricDef("mae", REGRESSION, _mae, False,
                   "Mean absolute error over all output elements."))


def _check_arrays(task: str, y_true, y_out) -> tuple[np.ndarray, np.ndarray]:
    t, o = np.asarray(y_true), np.asarray(y_out)
    shapes = f"y_true {t.shape} and y_out {o.shape}"
    if task == "regression":
        if t.ndim != 2 or t.shape != o.shape or len(t) == 0:
            raise ShapeError(f"metrics ({task}): expected y_true and y_out of one "
                             f"shape (N, D) with N >= 1, got {shapes}")
        return t.astype(np.float64), o.astype(np.float64)
    if t.ndim != 1 or o.ndim != 2 or len(t) != len(o) or len(t) == 0 or o.shape[1] < 2:
        raise ShapeError(f"metrics ({task}): expected y_true (N,) and y_out (N, K) "
                         f"with N >= 1 and K >= 2, got {shapes}")
    if task == "binary" and o.shape[1] != 2:
        raise ShapeError(f"metrics (binary): expected y_out with 2 columns, got {shapes}")
    if t.dtype.kind not in "iu":
        raise ShapeError(f"metrics ({task}): y_true must hold integer class indices, "
                         f"got dtype {t.dtype}")
    if t.min() < 0 or t.max() >= o.shape[1]:
        raise ShapeError(f"metrics ({task}): y_true must lie in [0, {o.shape[1]}) for "
                         f"{o.shape[1]} output columns, got {t.min()}..{t.max()}")
    return t.astype(np.int64), o.astype(np.float64)


def compute(names: Sequence[str], task: str, y_true, y_out) -> dict[str, float]:
    """Compute the named metrics for ``task``.

    Returns:
        ``{name: value}`` in the order of ``names``; values are Python floats
        (``auc`` is NaN when y_true holds a single class).

    Raises:
        SpecError: an unknown task or metric, or a metric that does not apply
            to ``task``.
        ShapeError: arrays that do not follow the conventions above.
    """
    if task not in TASKS:
        raise SpecError(f"unknown task {task!r}; expected one of {sorted(TASKS)}",
                        code="unknown-task")
    for name in names:
        if name not in METRICS:
            raise SpecError(f"unknown metric {name!r}; expected one of {sorted(METRICS)}",
                            code="unknown-metric")
        if task not in METRICS[name].tasks:
            raise SpecError(f"metric {name!r} does not apply to task {task!r}; it applies "
                            f"to {sorted(METRICS[name].tasks)}", code="metric-task")
    t, o = _check_arrays(task, y_true, y_out)
    return {name: float(METRICS[name].fn(t, o)) for name in names}
