"""Train / validation / test splits: sizes, determinism, stratification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlspec.data.split import split_indices
from dlspec.data.table import read_csv

CHURN = Path(__file__).resolve().parents[3] / "shared" / "data" / "churn" / "Churn_Modelling.csv"


def check_partition(n: int, parts: tuple[np.ndarray, ...]) -> None:
    assert all(p.dtype == np.int64 for p in parts)
    joined = np.concatenate(parts)
    assert len(joined) == n and np.array_equal(np.sort(joined), np.arange(n))


@pytest.mark.parametrize("stratify", [False, True])
def test_sizes_disjoint_and_cover(stratify):
    n = 1_003
    labels = np.arange(n) % 3 if stratify else None
    train, val, test = split_indices(n, test=0.2, validation=0.1, seed=1, stratify_labels=labels)
    check_partition(n, (train, val, test))
    assert (len(test), len(val), len(train)) == (201, 100, 702)
    assert np.array_equal(test, np.sort(test)) and np.array_equal(val, np.sort(val))
    assert not np.array_equal(train, np.sort(train))  # train is shuffled


def test_deterministic_and_seed_dependent():
    a = split_indices(500, test=0.3, validation=0.1, seed=7, stratify_labels=None)
    b = split_indices(500, test=0.3, validation=0.1, seed=7, stratify_labels=None)
    c = split_indices(500, test=0.3, validation=0.1, seed=8, stratify_labels=None)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[2], c[2])


def test_no_validation_split():
    train, val, test = split_indices(10, test=0.25, validation=0, seed=0, stratify_labels=None)
    assert len(val) == 0 and val.dtype == np.int64
    assert len(test) == 3  # 2.5 rounds half up
    check_partition(10, (train, val, test))


def test_stratified_on_churn_exited():
    if not CHURN.exists():
        pytest.skip(f"shared data file {CHURN} is not present")
    labels = read_csv(CHURN, columns=["Exited"]).numeric("Exited")
    n = len(labels)
    train, val, test = split_indices(n, test=0.2, validation=0.15, seed=3, stratify_labels=labels)
    check_partition(n, (train, val, test))
    for cls in (0.0, 1.0):
        total = np.sum(labels == cls)
        assert abs(np.sum(labels[test] == cls) - total * len(test) / n) < 1
        assert abs(np.sum(labels[val] == cls) - total * len(val) / n) < 2
    again = split_indices(n, test=0.2, validation=0.15, seed=3, stratify_labels=labels)
    assert np.array_equal(again[0], train)


def test_stratified_string_labels_and_tiny_classes():
    labels = np.array(["a"] * 7 + ["b"] * 2 + ["c"])
    train, val, test = split_indices(10, test=0.3, validation=0.2, seed=0, stratify_labels=labels)
    check_partition(10, (train, val, test))
    assert (len(train), len(val), len(test)) == (5, 2, 3)
    assert np.sum(labels[test] == "a") == 2  # quota 2.1; "b" 0.6 takes the spare row
    assert np.sum(labels[test] == "b") == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 0}, "need a positive number of rows"),
    ({"test": -0.1}, "test fraction must be in [0, 1), got -0.1"),
    ({"validation": 1.0}, "validation fraction must be in [0, 1)"),
    ({"test": float("nan")}, "test fraction must be in [0, 1)"),
    ({"test": 0.6, "validation": 0.4}, "test + validation fractions must be below 1"),
    ({"n": 5, "test": 0.05}, "test fraction 0.05 of 5 rows gives an empty test split"),
    ({"n": 2, "test": 0.5, "validation": 0.3}, "leave no training rows out of 2"),
    ({"stratify_labels": np.zeros(3)}, "stratify_labels must have shape (10,), got (3,)"),
])
def test_bad_arguments(kwargs, message):
    args = {"n": 10, "test": 0.2, "validation": 0.1, "seed": 0, "stratify_labels": None}
    args.update(kwargs)
    n = args.pop("n")
    with pytest.raises(ValueError) as info:
        split_indices(n, **args)
    assert message in str(info.value)
