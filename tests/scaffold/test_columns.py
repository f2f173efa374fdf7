"""Column readings and target tasks of ``dlspec init``, on small tables written for each rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlspec.data.table import Table
from dlspec.errors import DataError
from dlspec.scaffold.columns import read_column, read_target
from dlspec.scaffold.yamltext import SpecText, scalar
from dlspec.spec.yamlload import load_yaml


def table(**columns) -> Table:
    n = len(next(iter(columns.values())))
    cells = {k: np.array([str(v) for v in vs], dtype=object) for k, vs in columns.items()}
    return Table("t.csv", list(columns), cells, np.arange(2, n + 2))


N = 60
rng = np.random.default_rng(0)


@pytest.mark.parametrize("name, values, kind, use, words", [
    ("CustomerId", rng.permutation(10**6)[:N] + 15_000_000, "identifier", "drop",
     "unique per row"),
    ("RowNumber", range(1, N + 1), "identifier", "drop", "numbered rows"),
    ("ticket", [f"T{i:05d}" for i in rng.permutation(N)], "identifier", "drop",
     "unique per row"),
    ("Surname", [f"name{i % 45}" for i in range(N)], "name", "drop", "too many to one-hot"),
    ("review", [f"this product was fine {i} times over" for i in range(N)], "text", "drop",
     "free text"),
    ("Month", [f"19{49 + i // 12}-{i % 12 + 1:02d}" for i in range(N)], "date", "drop",
     "dates"),
    ("day", [f"2020-01-{i % 28 + 1:02d}" for i in range(N)], "date", "drop", "dates"),
    ("country", ["FR"] * N, "constant", "drop", "one value"),
    ("Balance", ["1.5", "?"] + [str(i * 0.5) for i in range(N - 2)], "mixed", "drop", "'?'"),
    ("Geography", ["France", "Spain", "Germany"] * (N // 3), "categorical", "onehot",
     "3 values"),
    ("Gender", ["Male", "Female"] * (N // 2), "categorical", "label_encode", "Female = 0"),
    ("color_code", [1, 5, 9] * (N // 3), "categorical", "onehot", "codes"),
    ("NumOfProducts", [1, 2, 3, 4] * (N // 4), "numeric", "numeric", "a count or a scale"),
    ("HasCrCard", [0, 1] * (N // 2), "numeric", "numeric", "0/1 flag"),
    ("Age", rng.integers(18, 90, N), "numeric", "numeric", "numbers"),
    ("income", rng.normal(size=N), "numeric", "numeric", "numbers"),
])
def test_column_kinds(name, values, kind, use, words):
    col = read_column(table(**{name: list(values)}), name)
    assert (col.kind, col.use) == (kind, use), col
    assert words in col.reason


def test_a_column_with_missing_values_is_dropped_with_what_to_do():
    col = read_column(table(Age=["31", "", "40", "52"] * 5), "Age")
    assert col.use == "drop" and col.missing == 5
    assert "5 empty cells (first at line 3)" in col.reason
    assert "fill them in" in col.reason


@pytest.mark.parametrize("values, task, classes", [
    (["benign", "malignant", "benign"] * 10, "binary", ["benign", "malignant"]),
    ([0, 1, 1, 0] * 10, "binary", ["0", "1"]),
    ([3, 10, 2, 1] * 10, "multiclass", ["1", "2", "3", "10"]),   # numeric order, not text
    (["setosa", "versicolor", "virginica"] * 10, "multiclass",
     ["setosa", "versicolor", "virginica"]),
    (list(range(40)), "regression", []),                       # more integers than classes
    ([0.5, 1.5] * 20, "regression", []),                        # fractions are amounts
])
def test_target_tasks(values, task, classes):
    info = read_target(table(y=values, x=range(len(values))), "y")
    assert (info.task, info.classes) == (task, classes)
    assert sum(info.counts) == (len(values) if classes else 0)


def test_binary_target_names_an_imbalance():
    info = read_target(table(y=[0] * 8 + [1] * 2), "y")
    assert "only 20% are 1" in info.reason


@pytest.mark.parametrize("values, words", [
    (["a"] * 5, "has one value ('a') in all 5 rows"),
    (["a", "", "b", "a"], "1 row without a value (first at line 3)"),
    ([f"id{i}" for i in range(10)], "too many to be classes"),
])
def test_bad_targets_are_located_errors(values, words):
    with pytest.raises(DataError) as e:
        read_target(table(y=values), "y")
    assert words in e.value.message and str(e.value).startswith("t.csv:")


def test_unknown_target_has_did_you_mean():
    with pytest.raises(DataError, match="'diagnosys' \\(did you mean 'diagnosis'\\?\\)"):
        read_target(table(diagnosis=["a", "b"]), "diagnosys")


@given(st.text(max_size=30))
def test_scalars_read_back_as_written(text):
    """dlspec's own YAML loader is the oracle: every string survives a round trip."""
    for block in (False, True):
        line = f"v: {scalar(text, block=block)}\nw: [{scalar(text)}]\n"
        data = load_yaml(line, "<test>").data
        assert data == {"v": text, "w": [text]}


def test_long_comments_move_above_their_line():
    t = SpecText()
    t.line(2, "seed: 0", "short")
    t.line(2, "target: y", "a very long explanation " * 6)
    lines = t.render().splitlines()
    assert lines[0].startswith("  seed: 0") and lines[0].endswith("# short")
    assert all(line.startswith("  # ") and len(line) <= 100 for line in lines[1:-1])
    assert lines[-1] == "  target: y"
