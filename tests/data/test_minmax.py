"""Min-max scaling of tables: scikit-learn's MinMaxScaler as the oracle, onnxruntime parity."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from dlspec.data.preprocess import Preprocessor, check_steps
from dlspec.data.split import split_indices
from dlspec.data.table import read_csv
from tests.conftest import EXAMPLES
from tests.data.test_preprocess import feed, session


@pytest.fixture(scope="module")
def cancer():
    table = read_csv(EXAMPLES / "breast_cancer.csv")
    features = [c for c in table.columns if c != "diagnosis"]
    train, _, _ = split_indices(len(table), test=0.2, validation=0.0, seed=0)
    raw = np.stack([table.numeric(c) for c in features], axis=1)
    return table, features, train, raw


def test_minmax_all_matches_sklearn(cancer):
    table, features, train, raw = cancer
    pre = Preprocessor.fit(table, train, features, [{"minmax": {"columns": "all"}}])
    oracle = MinMaxScaler().fit(raw[train])
    got = pre.transform(table)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, oracle.transform(raw), rtol=1e-5, atol=1e-6)
    assert got[train].min() == pytest.approx(0, abs=1e-6)
    assert got[train].max() == pytest.approx(1, abs=1e-6)


def test_minmax_and_standardize_on_different_columns(cancer):
    table, features, train, raw = cancer
    steps = [{"minmax": {"columns": features[:10]}},
             {"standardize": {"columns": features[10:20]}}]
    pre = Preprocessor.fit(table, train, features, steps)
    want = raw.copy()
    want[:, :10] = MinMaxScaler().fit(raw[train, :10]).transform(raw[:, :10])
    want[:, 10:20] = StandardScaler().fit(raw[train, 10:20]).transform(raw[:, 10:20])
    np.testing.assert_allclose(pre.transform(table), want, rtol=1e-5, atol=1e-5)
    # and the exported preprocessing gives the same numbers
    got = session(pre).run(None, feed(pre, table))[0]
    np.testing.assert_allclose(got, pre.transform(table), rtol=1e-6, atol=1e-6)
    back = Preprocessor.from_dict(pre.to_dict())
    np.testing.assert_array_equal(back.transform(table), pre.transform(table))


def test_a_column_scaled_twice_is_refused(cancer):
    _, features, _, _ = cancer
    problems = check_steps(features, [{"standardize": {"columns": "all"}},
                                      {"minmax": {"columns": ["mean_area"]}}])
    assert problems == ["column 'mean_area' is both standardized and min-max scaled; scale "
                        "each column once"]
    assert check_steps(features, [{"minmax": {"columns": "numeric"}}]) == []
