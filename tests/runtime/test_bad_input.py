"""Bad input, clear answers: one located line per problem, exit 1, before onnxruntime runs.

Text formats name file and line; NumPy and Parquet files name file and 0-based row.
"""

from __future__ import annotations

import io
import json
import sys
import zipfile

import numpy as np
import pytest

from tests.runtime.conftest import CATS_COLUMNS, cli, write_csv

GOOD = ["c1", 10.5, "red", "S", 3, 0]
HEADER_WITHOUT_PRICE = "id, color, size, weight, bought"


@pytest.fixture(autouse=True)
def onnxruntime_must_not_run(cats, cancer, monkeypatch):
    """Every case here must be refused before onnxruntime sees a row."""
    import onnxruntime as ort

    def refuse(*args, **kwargs):
        raise AssertionError("onnxruntime ran on bad input")

    monkeypatch.setattr(ort.InferenceSession, "run", refuse)


def expect_error(args, message: str, out=None):
    r = cli("predict", *args, *(("-o", out) if out else ()))
    assert r.exit_code == 1, r.output
    assert message in r.stderr.splitlines(), r.stderr
    assert "Traceback" not in r.output and r.stdout == ""
    if out is not None:
        assert not out.exists() and not list(out.parent.glob(".*.partial"))


# CSV -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("row", "message"), [
    (["c2", "abc", "red", "S", 3, 0], "column 'price': cannot parse 'abc' as a number"),
    (["c2", "", "red", "S", 3, 0], "column 'price': missing value"),
    (["c2", "inf", "red", "S", 3, 0], "column 'price': 'inf' is not a finite number"),
    (["c2", 10, "", "S", 3, 0], "column 'color': missing value"),
    (["c2", 10, "purple", "S", 3, 0],
     "column 'color': 1 row has a category not seen in training (first: 'purple')"),
    (["c2", 10, "red", "XL", 3, 0],
     "column 'size': 1 row has a category not seen in training (first: 'XL')"),
    (["c2", 10, "red", "S", "", 0], "column 'weight': missing value"),
])
def test_csv_bad_cells(cats, tmp_path, row, message):
    path = write_csv(tmp_path / "in.csv", CATS_COLUMNS, [GOOD, GOOD, row, GOOD])
    expect_error([cats / "model.onnx", path], f"{path}:4: {message}", tmp_path / "out.csv")
    expect_error([cats, path, "--backend", "numpy"], f"{path}:4: {message}")


def test_csv_missing_columns_and_keep(cats, tmp_path):
    path = write_csv(tmp_path / "in.csv", [c for c in CATS_COLUMNS if c != "price"],
                     [["c1", "red", "S", 3, 0]])
    expect_error([cats / "model.onnx", path],
                 f"{path}:1: missing column(s) 'price' (the header has: {HEADER_WITHOUT_PRICE})")
    full = write_csv(tmp_path / "full.csv", CATS_COLUMNS, [GOOD])
    expect_error([cats / "model.onnx", full, "--keep", "customer"],
                 f"{full}:1: missing column(s) 'customer' (the header has: "
                 f"{', '.join(CATS_COLUMNS)})")


def test_csv_wrong_field_count_on_a_late_line(cancer, cancer_csv, tmp_path):
    lines = cancer_csv.read_text().splitlines()
    lines[400] += ",1"
    path = tmp_path / "long.csv"
    path.write_text("\n".join(lines) + "\n")
    expect_error([cancer / "model.onnx", path, "--batch-size", "64"],
                 f"{path}:401: expected 31 fields, got 32", tmp_path / "out.csv")


def test_policies_let_rows_through_or_not(cats, tmp_path):
    path = write_csv(tmp_path / "in.csv", CATS_COLUMNS,
                     [GOOD, ["c2", "", "red", "S", 3, 0], ["c3", 1, "", "S", 3, 0],
                      ["c4", 1, "purple", "S", 3, 0]])
    model = cats / "model.onnx"
    expect_error([model, path, "--on-unknown", "zeros"], f"{path}:3: column 'price': missing value")
    expect_error([model, path, "--on-missing", "impute"],
                 f"{path}:5: column 'color': 1 row has a category not seen in training "
                 "(first: 'purple')")


# JSON Lines ----------------------------------------------------------------------------

def jsonl(tmp_path, *rows, name="in.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


OK_ROW = {"id": "c1", "price": 10.5, "color": "red", "size": "S", "weight": 3}


@pytest.mark.parametrize(("change", "message"), [
    ({"price": "abc"}, "column 'price': cannot parse 'abc' as a number"),
    ({"price": None}, "column 'price': missing value"),
    ({"price": {"value": 3}}, "column 'price': expected a number, got an object"),
    ({"weight": [1, 2]}, "column 'weight': expected a number, got a list"),
    ({"color": None}, "column 'color': missing value"),
    ({"color": ["red"]}, "column 'color': expected a category (a string), got a list"),
    ({"size": True}, "column 'size': expected a category (a string), got a boolean"),
    ({"size": "XL"}, "column 'size': 1 row has a category not seen in training (first: 'XL')"),
])
def test_jsonl_bad_values(cats, tmp_path, change, message):
    path = jsonl(tmp_path, OK_ROW, "", OK_ROW | change)
    expect_error([cats / "model.onnx", path], f"{path}:3: {message}", tmp_path / "out.jsonl")
    expect_error([cats, path, "--backend", "numpy"], f"{path}:3: {message}")


def test_jsonl_bad_lines(cats, tmp_path):
    model = cats / "model.onnx"
    row = {k: v for k, v in OK_ROW.items() if k != "price"}
    path = jsonl(tmp_path, OK_ROW, row)
    expect_error([model, path], f"{path}:2: missing column(s) 'price' (the object has: "
                 "id, color, size, weight)")
    path = jsonl(tmp_path, OK_ROW, [1, 2])
    expect_error([model, path], f"{path}:2: expected a JSON object (one row per line, keyed "
                 "by column name), got a list")
    path = jsonl(tmp_path, OK_ROW, '{"price": 1,')
    r = cli("predict", model, path)
    assert r.exit_code == 1 and f"{path}:2:13: invalid JSON: Expecting property name " \
        "enclosed in double quotes" in r.stderr
    path = jsonl(tmp_path, OK_ROW, OK_ROW)
    expect_error([model, path, "--keep", "customer"], f"{path}:1: missing column(s) "
                 "'customer' (the object has: id, price, color, size, weight)")


# NumPy ---------------------------------------------------------------------------------

def columns(**change):
    cols = {"id": np.array(["a", "b", "c"]), "price": np.array([1.0, 2.0, 3.0]),
            "color": np.array(["red", "blue", "green"]), "size": np.array(["S", "M", "L"]),
            "weight": np.array([1, 2, 3])}
    return cols | change


@pytest.mark.parametrize(("change", "message"), [
    ({"price": np.array([1.0, np.nan, 3.0])}, "row 1: column 'price': missing value"),
    ({"price": np.array([1.0, 2.0, np.inf])}, "row 2: column 'price': inf is not a finite number"),
    ({"price": np.array(["1", "2", "x"])},
     "column 'price': expected numbers, got strings (dtype <U1)"),
    ({"color": np.array(["red", "", "blue"])}, "row 1: column 'color': missing value"),
    ({"color": np.array(["red", "blue", "pink"])},
     "row 2: column 'color': 1 row has a category not seen in training (first: 'pink')"),
    ({"size": np.array([1.5, 2.0, 3.0])},
     "row 0: column 'size': expected a category (a string), got 1.5"),
    ({"weight": np.array([1, 2])}, "the columns differ in length: 'price' 3, 'color' 3, "
     "'size' 3, 'weight' 2"),
])
def test_npz_bad_columns(cats, tmp_path, change, message):
    path = tmp_path / "in.npz"
    np.savez(path, **columns(**change))
    expect_error([cats / "model.onnx", path], f"{path}: {message}", tmp_path / "out.csv")


def test_npz_and_npy_structure(cats, tmp_path):
    model = cats / "model.onnx"
    path = tmp_path / "in.npz"
    np.savez(path, **{k: v for k, v in columns().items() if k != "price"})
    expect_error([model, path], f"{path}: missing column(s) 'price' (the archive has: "
                 "id, color, size, weight)")
    np.savez(path, **columns(color=np.array(["red", None, "blue"], dtype=object)))
    expect_error([model, path], f"{path}: column 'color': holds Python objects; dlspec "
                 "reads plain arrays only (no pickle)")
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((3, 4)))
    expect_error([model, flat], f"{flat}: a .npy input must be a one-dimensional structured "
                 "array with a field per column; got <f8 of shape (3, 4) (save columns with "
                 "np.savez instead)")
    rec = tmp_path / "rec.npy"
    arr = np.zeros(3, dtype=[("price", "f8"), ("color", "U5"), ("size", "U2"),
                             ("weight", "i8")])
    arr["color"], arr["size"], arr["price"] = ["red", "blue", "teal"], "S", [1, np.nan, 3]
    np.save(rec, arr)
    expect_error([model, rec], f"{rec}: row 1: column 'price': missing value")
    arr["price"][1] = 2
    np.save(rec, arr)
    expect_error([model, rec], f"{rec}: row 2: column 'color': 1 row has a category not seen "
                 "in training (first: 'teal')")


def test_forged_headers_are_refused_before_reading(cats, tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (10**12,)})
    forged = header.getvalue() + b"\0" * 24
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as z:
        for name, arr in columns().items():
            buf = io.BytesIO()
            np.save(buf, arr)
            z.writestr(f"{name}.npy", forged if name == "price" else buf.getvalue())
    expect_error([cats / "model.onnx", path], f"{path}: column 'price': the array header "
                 "promises 8000000000000 bytes but the archive holds 24")
    npy = tmp_path / "forged.npy"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": [("price", "<f8")],
                                                  "fortran_order": False, "shape": (10**12,)})
    npy.write_bytes(header.getvalue() + b"\0" * 24)
    r = cli("predict", cats / "model.onnx", npy)
    assert r.exit_code == 1 and f"{npy}: not a readable .npy file: mmap length is greater " \
        "than file size" in r.stderr


# Parquet -------------------------------------------------------------------------------

def test_parquet_without_pyarrow_says_how_to_get_it(cats, tmp_path, monkeypatch):
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    path = tmp_path / "in.parquet"
    path.write_bytes(b"PAR1")
    expect_error([cats / "model.onnx", path], f"reading Parquet ({path}) needs pyarrow, "
                 "which is not installed: pip install pyarrow")
    csv_in = write_csv(tmp_path / "in.csv", CATS_COLUMNS, [GOOD])
    expect_error([cats / "model.onnx", csv_in, "-o", tmp_path / "out.parquet"],
                 f"-o {tmp_path / 'out.parquet'} (Parquet output) needs pyarrow, which is not "
                 "installed: pip install pyarrow")


def test_parquet_bad_values(cats, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "in.parquet"
    base = {"id": ["a", "b", "c"], "price": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"],
            "size": ["S", "M", "L"], "weight": [1, 2, 3]}
    pq.write_table(pa.table(base | {"weight": [1, None, 3]}), path)
    expect_error([cats / "model.onnx", path], f"{path}: row 1: column 'weight': missing value")
    pq.write_table(pa.table(base | {"color": ["red", "blue", "mauve"]}), path)
    expect_error([cats / "model.onnx", path], f"{path}: row 2: column 'color': 1 row has a "
                 "category not seen in training (first: 'mauve')")
    pq.write_table(pa.table({k: v for k, v in base.items() if k != "size"}), path)
    expect_error([cats / "model.onnx", path], f"{path}: missing column(s) 'size' (the file "
                 "has: id, price, color, weight)")
    pq.write_table(pa.table(base | {"price": ["1", "2", "3"]}), path)
    expect_error([cats / "model.onnx", path], f"{path}: column 'price': expected numbers, got "
                 "Parquet type string")
