"""Missing and unseen values: the NumPy engine and the exported graph agree under each policy.

``--on-missing impute`` fills a number with its raw training mean and encodes a
missing category as unseen; ``--on-unknown zeros`` encodes an unseen category
as all-zero one-hot / label -1. The runtime check refuses what the policies do
not allow, with the same located message for both backends.
"""

from __future__ import annotations

import json

import onnx
import pytest

import dlspec
from dlspec.data.preprocess import Preprocessor
from dlspec.errors import ModelError
from dlspec.runtime.contract import CONTRACT_KEY, Contract
from tests.runtime.conftest import CATS_COLUMNS, cli, read_csv_rows, write_csv

ODD_ROWS = [
    ["x1", 10.5, "red", "S", 3, 0],
    ["x2", "", "green", "M", 4, 1],       # missing number
    ["x3", 20, "", "L", 2, 0],            # missing one-hot category
    ["x4", 30, "purple", "S", 5, 1],      # unseen one-hot category
    ["x5", 40, "blue", "XL", 1, 0],       # unseen label-encoded category
    ["x6", 55, "red", "", 7, 1],          # missing label-encoded category
    ["x7", 60.5, "blue", "M", "", 0],     # missing integer column
]


def predictions(cats, path, *flags, backend="onnxruntime"):
    model = cats if backend == "numpy" else cats / "model.onnx"
    out = path.with_name(f"{backend}-{len(flags)}.csv")
    r = cli("predict", model, path, "-o", out, "--backend", backend, *flags)
    assert r.exit_code == 0, r.output
    return read_csv_rows(out)


def test_engine_equals_onnxruntime_on_missing_and_unseen(cats, tmp_path):
    path = write_csv(tmp_path / "odd.csv", CATS_COLUMNS, ODD_ROWS)
    flags = ("--on-missing", "impute", "--on-unknown", "zeros")
    ort = predictions(cats, path, *flags)
    eng = predictions(cats, path, *flags, backend="numpy")
    assert len(ort) == len(eng) == len(ODD_ROWS)
    for a, b in zip(ort, eng, strict=True):
        assert abs(float(a["prob_1"]) - float(b["prob_1"])) <= 1e-5, (a, b)
        assert a["predicted_bought"] == b["predicted_bought"]


def test_imputation_means_the_training_mean_and_unseen(cats, tmp_path):
    """A row with gaps predicts exactly as the row with the gaps filled in by hand."""
    state = json.loads((cats / "preprocess.json").read_text())["inputs"]["features"]
    means = {c["name"]: c["impute"] for c in state["inputs"] if c["kind"] == "numeric"}
    filled = [["x2", means["price"], "green", "M", 4, 1],
              ["x3", 20, "never-seen", "L", 2, 0],
              ["x6", 55, "red", "never-seen", 7, 1],
              ["x7", 60.5, "blue", "M", means["weight"], 0]]
    gaps = [ODD_ROWS[i] for i in (1, 2, 5, 6)]
    a = predictions(cats, write_csv(tmp_path / "gaps.csv", CATS_COLUMNS, gaps),
                    "--on-missing", "impute")
    b = predictions(cats, write_csv(tmp_path / "filled.csv", CATS_COLUMNS, filled),
                    "--on-unknown", "zeros")
    assert [r["prob_1"] for r in a] == [r["prob_1"] for r in b]


@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
@pytest.mark.parametrize(("flags", "message"), [
    ((), "3: column 'price': missing value"),
    (("--on-unknown", "zeros"), "3: column 'price': missing value"),
    (("--on-missing", "impute"),
     "5: column 'color': 1 row has a category not seen in training (first: 'purple')"),
])
def test_policies_refuse_what_they_do_not_allow(cats, tmp_path, backend, flags, message):
    path = write_csv(tmp_path / "odd.csv", CATS_COLUMNS, ODD_ROWS)
    model = cats if backend == "numpy" else cats / "model.onnx"
    r = cli("predict", model, path, "--backend", backend, *flags)
    assert r.exit_code == 1
    assert r.stderr.strip() == f"{path}:{message}"


def test_the_contract_carries_the_means(cats):
    model = onnx.load(str(cats / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    contract = json.loads(meta[CONTRACT_KEY])
    assert contract["format"] == 2
    by_name = {c["name"]: c for c in contract["inputs"]}
    assert by_name["price"]["impute"] == pytest.approx(50.03, abs=5)
    assert by_name["color"]["impute"] is None
    ops = [n.op_type for n in model.graph.node]
    assert "IsNaN" in ops and "Where" in ops


def test_older_formats(cats, tmp_path):
    model = onnx.load(str(cats / "model.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    old = json.loads(meta[CONTRACT_KEY])
    old["format"] = 1
    for c in old["inputs"]:
        del c["impute"]
    contract = Contract.from_json(json.dumps(old), "m.onnx")  # format 1 still loads
    assert contract.inputs[0].impute is None
    table = dlspec.data.table.read_csv(write_csv(tmp_path / "a.csv", CATS_COLUMNS,
                                                 [ODD_ROWS[1]]))
    with pytest.raises(ModelError, match="'price' has no training mean to impute with"):
        contract.feeds(table, on_missing="impute")
    state = json.loads((cats / "preprocess.json").read_text())["inputs"]["features"]
    with pytest.raises(ModelError, match="format 1 .* lacks the training means"):
        Preprocessor.from_dict(state | {"format": 1})
    del state["inputs"][0]["impute"]
    with pytest.raises(ModelError, match="invalid preprocessing state: 'impute'"):
        Preprocessor.from_dict(state)
