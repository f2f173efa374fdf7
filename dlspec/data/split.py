"""Train / validation / test splits of row indices: shuffled (optionally stratified), or
chronological for time-ordered examples."""

from __future__ import annotations

import math

import numpy as np


def split_indices(n: int, *, test: float, validation: float, seed: int,
                  stratify_labels: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``range(n)`` into (train, validation, test) int64 index arrays.

    The test split gets ``round(test * n)`` rows and validation
    ``round(validation * n)`` (halves round up); a fraction of 0 gives an
    empty split, any other fraction must give at least one row, and train is
    never empty. With ``stratify_labels`` every class is divided in the same
    proportions (largest-remainder counts, so totals stay exact and each
    class's share is within one row of its ideal). Everything follows from
    ``seed``: train comes in shuffled order, validation and test sorted.

    Raises:
        ValueError: fractions out of range, or a split that would be empty.
    """
    n_test, n_val = _sizes(n, test, validation)
    rng = np.random.default_rng(seed)
    if stratify_labels is None:
        order = rng.permutation(n)
        test_idx, val_idx = order[:n_test], order[n_test:n_test + n_val]
        train_idx = order[n_test + n_val:]
    else:
        labels = np.asarray(stratify_labels)
        if labels.shape != (n,):
            raise ValueError(f"stratify_labels must have shape ({n},), got {labels.shape}")
        _, classes = np.unique(labels, return_inverse=True)
        classes = classes.reshape(-1)
        counts = np.bincount(classes)
        per_test = _apportion(counts, n_test)
        per_val = _apportion(counts - per_test, n_val)
        tests, vals, trains = [], [], []
        for k in range(len(counts)):
            members = rng.permutation(np.flatnonzero(classes == k))
            t, v = per_test[k], per_val[k]
            tests.append(members[:t])
            vals.append(members[t:t + v])
            trains.append(members[t + v:])
        test_idx, val_idx = np.concatenate(tests), np.concatenate(vals)
        train_idx = rng.permutation(np.concatenate(trains))
    return (train_idx.astype(np.int64), np.sort(val_idx).astype(np.int64),
            np.sort(test_idx).astype(np.int64))


def chronological_split(n: int, *, test: float, validation: float
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split ``range(n)`` in time order: (train, validation, test) int64 index arrays.

    Sizes as ``split_indices``; test is the last ``round(test * n)`` examples,
    validation the ones just before it, train everything before that. Nothing is
    shuffled, so no later example is used to train for an earlier one.

    Raises:
        ValueError: fractions out of range, or a split that would be empty.
    """
    n_test, n_val = _sizes(n, test, validation)
    idx = np.arange(n, dtype=np.int64)
    n_train = n - n_test - n_val
    return idx[:n_train], idx[n_train:n_train + n_val], idx[n_train + n_val:]


def _sizes(n: int, test: float, validation: float) -> tuple[int, int]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"cannot split {n!r} rows: need a positive number of rows")
    for name, frac in (("test", test), ("validation", validation)):
        if not (isinstance(frac, (int, float)) and math.isfinite(frac) and 0 <= frac < 1):
            raise ValueError(f"{name} fraction must be in [0, 1), got {frac!r}")
    if test + validation >= 1:
        raise ValueError(f"test + validation fractions must be below 1 to leave training "
                         f"rows, got {test} + {validation} = {test + validation}")
    n_test, n_val = math.floor(test * n + 0.5), math.floor(validation * n + 0.5)
    for name, frac, size in (("test", test, n_test), ("validation", validation, n_val)):
        if frac > 0 and size == 0:
            raise ValueError(f"{name} fraction {frac} of {n} rows gives an empty {name} "
                             "split; raise the fraction or set it to 0")
    if n - n_test - n_val < 1:
        raise ValueError(f"test ({n_test}) and validation ({n_val}) rows leave no training "
                         f"rows out of {n}; lower the fractions")
    return n_test, n_val


def _apportion(capacity: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``capacity`` (largest remainder).

    Exact integer arithmetic: quota_k = capacity_k * total / sum(capacity).
    Each share stays within one of its quota, hence within its capacity.
    """
    whole = int(capacity.sum())
    if whole == 0 or total == 0:
        return np.zeros(len(capacity), dtype=np.int64)
    scaled = capacity.astype(np.int64) * total
    shares, remainders = scaled // whole, scaled % whole
    extra = total - int(shares.sum())
    # Stable sort: among equal remainders the earlier class gets the row.
    winners = np.argsort(-remainders, kind="stable")[:extra]
    shares[winners] += 1
    return shares
