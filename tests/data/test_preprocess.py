"""Fitted preprocessing: scikit-learn oracle, onnxruntime parity, state, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dlspec.data.preprocess import InputColumn, Preprocessor, check_steps
from dlspec.data.split import split_indices
from dlspec.data.table import Table, read_csv
from dlspec.errors import DataError, ModelError
from dlspec.onnx.builder import ML_DOMAIN, OnnxBuilder
from dlspec.onnx.preprocess import emit_table
from dlspec.opsets import DEFAULT_OPSET, ML_OPSET, ir_version_for

CHURN = Path(__file__).resolve().parents[3] / "shared" / "data" / "churn" / "Churn_Modelling.csv"
DROP = ("RowNumber", "CustomerId", "Surname", "Exited")
TUTORIAL = [
    {"onehot": {"columns": ["Geography"], "drop_first": True}},
    {"label_encode": {"columns": ["Gender"]}},
    {"standardize": {"columns": "all"}},
]
VARIANTS = {
    "tutorial": TUTORIAL,
    "onehot-numeric": [{"onehot": {"columns": ["Geography", "Gender"], "drop_first": False}},
                       {"standardize": {"columns": "numeric"}}],
    "listed": [{"label_encode": {"columns": ["Geography"]}},
               {"onehot": {"columns": ["Gender"], "drop_first": True}},
               {"standardize": {"columns": ["Age", "Geography", "Balance"]}}],
    "no-scaling": [{"onehot": {"columns": ["Geography"], "drop_first": False}},
                   {"label_encode": {"columns": ["Gender"]}}],
}


@pytest.fixture(scope="module")
def churn() -> tuple[Table, list[str], np.ndarray]:
    if not CHURN.exists():
        pytest.skip(f"shared data file {CHURN} is not present")
    table = read_csv(CHURN)
    features = [c for c in table.columns if c not in DROP]
    train, _, _ = split_indices(len(table), test=0.2, validation=0.0, seed=0,
                                stratify_labels=None)
    return table, features, train


def session(pre: Preprocessor):
    import onnxruntime as ort

    b = OnnxBuilder(DEFAULT_OPSET)
    out = emit_table(b, pre, "features")
    b.add_output(out, TensorProto.FLOAT, ["N", len(pre.feature_names)])
    model = helper.make_model(
        b.graph("preprocess"), ir_version=ir_version_for(DEFAULT_OPSET),
        opset_imports=[helper.make_opsetid("", DEFAULT_OPSET),
                       helper.make_opsetid(ML_DOMAIN, ML_OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def feed(pre: Preprocessor, table: Table, rows: np.ndarray | slice = slice(None)) -> dict:
    return {c.name: (table.numeric(c.name)[rows].astype(np.float32) if c.kind == "numeric"
                     else table.cells[c.name][rows]).reshape(-1, 1) for c in pre.inputs}


def test_tutorial_steps_match_sklearn(churn):
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

    table, features, train = churn
    pre = Preprocessor.fit(table, train, features, TUTORIAL)
    assert pre.feature_names == [
        "CreditScore", "Geography=Germany", "Geography=Spain", "Gender", "Age", "Tenure",
        "Balance", "NumOfProducts", "HasCrCard", "IsActiveMember", "EstimatedSalary"]
    assert pre.inputs[1] == InputColumn("Geography", "categorical", ("France", "Germany", "Spain"))
    mean = float(table.numeric("CreditScore", train).mean())  # raw, for imputation
    assert pre.inputs[0] == InputColumn("CreditScore", "numeric", impute=mean)

    geo = table.cells["Geography"].reshape(-1, 1)
    onehot = OneHotEncoder(drop="first", sparse_output=False).fit(geo[train])
    gender = LabelEncoder().fit(table.cells["Gender"][train])
    blocks = []
    for name in features:
        if name == "Geography":
            blocks.append(onehot.transform(geo))
        elif name == "Gender":
            blocks.append(gender.transform(table.cells["Gender"])[:, None])
        else:
            blocks.append(table.numeric(name)[:, None])
    raw = np.hstack(blocks)
    expected = StandardScaler().fit(raw[train]).transform(raw)

    got = pre.transform(table)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    rows = np.array([5, 0, 9_999])
    assert np.array_equal(pre.transform(table, rows), got[rows])


@pytest.mark.parametrize("name", VARIANTS)
def test_onnx_matches_numpy(churn, name):
    table, features, train = churn
    pre = Preprocessor.fit(table, train, features, VARIANTS[name])
    sess = session(pre)
    expected = pre.transform(table)
    got = sess.run(None, feed(pre, table))[0]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    one = sess.run(None, feed(pre, table, slice(7, 8)))[0]
    np.testing.assert_allclose(one, expected[7:8], rtol=1e-6, atol=1e-6)


def test_unseen_categories(churn):
    table, features, train = churn
    pre = Preprocessor.fit(table, train, features, TUTORIAL)
    rows = np.arange(4)
    cells = {c: table.cells[c][rows].copy() for c in table.columns}
    cells["Geography"][[1, 3]] = ["Italy", "Peru"]
    cells["Gender"][2] = "Other"
    odd = Table("odd.csv", list(table.columns), cells, np.array([2, 3, 4, 5]))

    with pytest.raises(DataError) as info:
        pre.transform(odd)
    assert str(info.value) == ("odd.csv:3: column 'Geography': 2 rows have categories not seen "
                               "in training (first: 'Italy', 'Peru')")
    assert info.value.code == "data-category"

    zeros = pre.transform(odd, on_unknown="zeros")
    raw = zeros * pre.scale + pre.mean  # undo the scaling to see the encoding
    np.testing.assert_allclose(raw[[1, 3], 1:3], 0, atol=1e-6)
    np.testing.assert_allclose(raw[2, 3], -1, atol=1e-5)
    got = session(pre).run(None, feed(pre, odd))[0]
    np.testing.assert_allclose(got, zeros, rtol=1e-6, atol=1e-6)


def test_state_round_trip(churn):
    table, features, train = churn
    for steps in VARIANTS.values():
        pre = Preprocessor.fit(table, train, features, steps)
        again = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
        assert again.inputs == pre.inputs and again.feature_names == pre.feature_names
        assert np.array_equal(again.transform(table), pre.transform(table))


def small(tmp_path: Path, text: str) -> tuple[Table, Path]:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return read_csv(path), path


PEOPLE = "Age,City,Score\n30,Oslo,1\n40,Rome,2\n50,Oslo,3\n"
STEPS = [{"onehot": {"columns": ["City"], "drop_first": False}},
         {"standardize": {"columns": "numeric"}}]


@pytest.mark.parametrize(("bad_line", "message"), [
    ("abc,Oslo,4", "column 'Age': cannot parse 'abc' as a number"),
    (",Oslo,4", "column 'Age': missing value"),
    ("60,,4", "column 'City': missing value"),
    ("60,Paris,4", "column 'City': 1 row has a category not seen in training (first: 'Paris')"),
])
def test_transform_errors_are_located(tmp_path, bad_line, message):
    table, path = small(tmp_path, PEOPLE + bad_line + "\n")
    pre = Preprocessor.fit(table, np.arange(3), ["Age", "City", "Score"], STEPS)
    assert len(pre.transform(table, np.arange(3))) == 3
    with pytest.raises(DataError) as info:
        pre.transform(table)
    assert str(info.value) == f"{path}:5: {message}"


def test_fit_rejects_unencoded_text_column(tmp_path):
    table, path = small(tmp_path, PEOPLE)
    with pytest.raises(DataError) as info:
        Preprocessor.fit(table, np.arange(3), ["Age", "City", "Score"], [])
    assert str(info.value) == (
        f"{path}:2: column 'City': cannot parse 'Oslo' as a number; if the column is "
        "categorical, encode it with onehot or label_encode (or drop it)")


def test_fit_needs_the_columns(tmp_path):
    table, _ = small(tmp_path, PEOPLE)
    with pytest.raises(DataError, match=r"people.csv:1: missing column\(s\) 'Sex'"):
        Preprocessor.fit(table, np.arange(3), ["Age", "Sex"], [])


def test_scaling_details(tmp_path):
    table, _ = small(tmp_path, "a,b,c\n1,5,x\n3,5,y\n")
    steps = [{"onehot": {"columns": ["c"], "drop_first": True}},
             {"standardize": {"columns": ["a", "b"]}}]
    pre = Preprocessor.fit(table, np.arange(2), ["a", "b", "c"], steps)
    assert pre.feature_names == ["a", "b", "c=y"]
    assert pre.mean.tolist() == [2.0, 5.0, 0.0]
    assert pre.scale.tolist() == [1.0, 1.0, 1.0]  # population std of a is 1; b is constant
    assert pre.transform(table).tolist() == [[-1.0, 0.0, 0.0], [1.0, 0.0, 1.0]]


def test_check_steps_messages():
    features = ["Age", "City", "Score"]
    assert check_steps(features, STEPS) == []
    problems = check_steps(features, [
        {"onehot": {"columns": ["City", "Cty"]}},
        {"label_encode": {"columns": ["City"]}},
        {"standardize": {"columns": "some"}},
        {"scale": {"columns": "all"}},
    ])
    assert problems == [
        "preprocess[0] (onehot): 'Cty' is not a feature column (did you mean 'City'?)",
        ("preprocess[1] (label_encode): column 'City' is already encoded by "
         "preprocess[0] (onehot); encode each column once"),
        ("preprocess[2] (standardize): 'columns' must be 'all', 'numeric' or a list of "
         "column names, got 'some'"),
        ("preprocess[3]: expected one of onehot, label_encode, standardize, minmax, "
         "got {'scale': {'columns': 'all'}}"),
    ]
    with pytest.raises(ValueError, match="'Cty' is not a feature column"):
        Preprocessor.fit(Table("x.csv", [], {}, np.zeros(0, np.int64)), np.arange(1),
                         features, [{"onehot": {"columns": ["Cty"]}}])


def test_missing_values_impute_in_numpy_as_in_the_graph(tmp_path):
    table, path = small(tmp_path, "Age,City,Size,Score\n30,Oslo,S,1\n40,Rome,M,2\n50,Oslo,L,3\n"
                        ",Rome,S,4\n45,,M,5\n35,Oslo,,6\n41,Pisa,XL,7\n")
    steps = [{"onehot": {"columns": ["City"], "drop_first": True}},
             {"label_encode": {"columns": ["Size"]}}, {"standardize": {"columns": "all"}}]
    pre = Preprocessor.fit(table, np.arange(3), ["Age", "City", "Size", "Score"], steps)
    assert [c.impute for c in pre.inputs] == [40.0, None, None, 2.0]
    with pytest.raises(DataError, match=r"people.csv:5: column 'Age': missing value"):
        pre.transform(table, on_unknown="zeros")
    with pytest.raises(DataError, match=r"people.csv:8: column 'City': 1 row has a category"):
        pre.transform(table, on_missing="impute")
    x = pre.transform(table, on_missing="impute", on_unknown="zeros")
    raw = x * pre.scale + pre.mean  # undo the scaling to see the filled values
    np.testing.assert_allclose(raw[3, 0], 40.0, rtol=1e-6)  # Age: the training mean
    np.testing.assert_allclose(raw[[4, 6], 1], 0.0, atol=1e-6)  # City: missing/unseen -> 0
    np.testing.assert_allclose(raw[[5, 6], 2], -1.0, atol=1e-5)  # Size: missing/unseen -> -1
    feeds = {c.name: (table.numeric(c.name, missing="nan").astype(np.float32)
                      if c.kind == "numeric" else table.strings(c.name)).reshape(-1, 1)
             for c in pre.inputs}
    got = session(pre).run(None, feeds)[0]
    np.testing.assert_allclose(got, x, rtol=1e-6, atol=1e-6)


def test_old_state_formats_are_refused_clearly(tmp_path):
    table, _ = small(tmp_path, PEOPLE)
    state = Preprocessor.fit(table, np.arange(3), ["Age", "City", "Score"], STEPS).to_dict()
    assert state["format"] == 2 and state["inputs"][0]["impute"] == 40.0
    with pytest.raises(ModelError, match="format 1 .*lacks the training means"):
        Preprocessor.from_dict(state | {"format": 1})
