"""Formats round trip: the same rows predict the same from every input format, every output
format holds the same numbers, standard input works, --keep copies columns, batch sizes
do not change a byte, and progress stays off the terminal when there is none."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

import dlspec
from tests.runtime.conftest import cli, read_csv_rows

CATS_NUMBERS = {"price": float, "weight": int}


def cats_rows(cats_csv) -> list[dict]:
    rows = read_csv_rows(cats_csv)[:50]
    return [{k: CATS_NUMBERS.get(k, str)(v) for k, v in r.items()} for r in rows]


def predict_text(model, data, *flags, input=None) -> str:
    r = cli("predict", model, data, *flags, input=input)
    assert r.exit_code == 0, r.output
    return r.stdout


def test_every_input_format_predicts_the_same(cats, cats_csv, tmp_path):
    rows = cats_rows(cats_csv)
    model = cats / "model.onnx"
    csv_in = tmp_path / "in.csv"
    with open(csv_in, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)
    want = predict_text(model, csv_in)
    assert len(want.splitlines()) == 51

    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    npz = tmp_path / "in.npz"
    np.savez(npz, **cols)
    npy = tmp_path / "in.npy"
    rec = np.zeros(len(rows), dtype=[(k, v.dtype) for k, v in cols.items()])
    for k, v in cols.items():
        rec[k] = v
    np.save(npy, rec)
    for path in (jsonl, npz, npy):
        assert predict_text(model, path) == want, path
    assert predict_text(model, tmp_path / "in.csv", "--input-format", "csv") == want
    renamed = tmp_path / "rows.txt"
    renamed.write_bytes(jsonl.read_bytes())
    assert predict_text(model, renamed, "--input-format", "jsonl") == want
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return
    pq.write_table(pa.table({k: list(v.tolist()) for k, v in cols.items()}),
                   tmp_path / "in.parquet", row_group_size=7)
    assert predict_text(model, tmp_path / "in.parquet", "--batch-size", "5") == want


def test_standard_input(cats, cats_csv):
    model = cats / "model.onnx"
    text = cats_csv.read_text()
    want = predict_text(model, cats_csv)
    assert predict_text(model, "-", input=text) == want
    lines = "".join(json.dumps(r) + "\n" for r in cats_rows(cats_csv))
    assert predict_text(model, "-", "--input-format", "jsonl", input=lines) == \
        "".join(want.splitlines(keepends=True)[:51])
    r = cli("predict", model, "-", "--input-format", "npz", input=b"")
    assert r.exit_code == 1
    assert "standard input carries CSV or JSON Lines" in r.stderr
    r = cli("predict", model, "-", input="price,color\n1,red\n")
    assert r.exit_code == 1 and r.stderr.startswith("<stdin>:1: missing column(s) 'size'")
    assert r.stdout == ""


def test_every_output_format_holds_the_same_numbers(cancer, cancer_csv, tmp_path):
    model = cancer / "model.onnx"
    outs = {ext: tmp_path / f"p.{ext}" for ext in ("csv", "jsonl", "npy", "parquet")}
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
        del outs["parquet"]
    for out in outs.values():
        r = cli("predict", model, cancer_csv, "-o", out)
        assert r.exit_code == 0, r.output
    rows = read_csv_rows(outs["csv"])
    probs = np.array([[float(r["prob_benign"]), float(r["prob_malignant"])] for r in rows],
                     dtype=np.float32)
    labels = [r["predicted_diagnosis"] for r in rows]
    assert len(rows) == 569 and set(labels) <= {"benign", "malignant"}
    lines = [json.loads(x) for x in outs["jsonl"].read_text().splitlines()]
    assert list(lines[0]) == ["prob_benign", "prob_malignant", "predicted_diagnosis"]
    assert np.array_equal(np.array([[x["prob_benign"], x["prob_malignant"]] for x in lines],
                                   dtype=np.float32), probs)
    assert [x["predicted_diagnosis"] for x in lines] == labels
    block = np.load(outs["npy"], allow_pickle=False)
    assert block.dtype == np.float32 and np.array_equal(block, probs)  # 9 digits: exact
    if pq is not None:
        table = pq.read_table(outs["parquet"]).to_pydict()
        assert np.array_equal(np.array([table["prob_benign"], table["prob_malignant"]],
                                       dtype=np.float32).T, probs)
        assert table["predicted_diagnosis"] == labels


def test_keep_copies_columns_first_as_read(cats, cats_csv, tmp_path):
    model = cats / "model.onnx"
    text = cats_csv.read_text().splitlines()
    text[1] = text[1].replace(text[1].split(",")[0], '"c 0,0"', 1)  # needs quoting
    src = tmp_path / "in.csv"
    src.write_text("\n".join(text) + "\n")
    out = predict_text(model, src, "--keep", "id", "--keep", "price", "--keep", "id")
    got = list(csv.DictReader(out.splitlines()))
    first = read_csv_rows(src)
    assert list(got[0]) == ["id", "price", "prob_0", "prob_1", "predicted_bought"]
    assert [(r["id"], r["price"]) for r in got] == [(r["id"], r["price"]) for r in first]
    assert got[0]["id"] == "c 0,0"
    jsonl = tmp_path / "k.jsonl"
    assert cli("predict", model, src, "--keep", "id", "--keep", "weight", "-o",
               jsonl).exit_code == 0
    row = json.loads(jsonl.read_text().splitlines()[1])
    assert row["id"] == first[1]["id"] and row["weight"] == first[1]["weight"]  # text, as read
    rows = cats_rows(cats_csv)
    src_jsonl = tmp_path / "in.jsonl"
    src_jsonl.write_text("".join(json.dumps(r | {"extra": [1, {"a": None}]}) + "\n"
                                 for r in rows))
    assert cli("predict", model, src_jsonl, "--keep", "weight", "--keep", "extra", "-o",
               jsonl).exit_code == 0
    row = json.loads(jsonl.read_text().splitlines()[0])
    assert row["weight"] == rows[0]["weight"] and row["extra"] == [1, {"a": None}]
    r = cli("predict", model, src, "--keep", "id", "-o", tmp_path / "p.npy")
    assert r.exit_code == 1 and "cannot carry --keep columns" in r.stderr
    r = cli("predict", model, src, "--keep", "prob_1")
    assert r.exit_code == 1 and "--keep prob_1: the output already has a column" in r.stderr


def test_batch_size_does_not_change_a_byte(cats, cats_csv, cancer, cancer_csv):
    for model, data, keep in ((cats, cats_csv, "id"), (cancer, cancer_csv, "mean_radius")):
        outs = {predict_text(model / "model.onnx", data, "--batch-size", bs, "--keep", keep)
                for bs in (1, 7, 64, 100_000)}
        assert len(outs) == 1
        # The NumPy engine's float32 GEMMs round differently at different batch
        # shapes (BLAS kernels): the same to float32 precision, not bit for bit.
        engine = [np.loadtxt(io.StringIO(predict_text(model, data, "--backend", "numpy",
                                                      "--batch-size", bs)),
                             delimiter=",", skiprows=1, usecols=(0, 1)) for bs in (1, 7, 10**5)]
        np.testing.assert_allclose(engine[0], engine[1], atol=1e-6)
        np.testing.assert_allclose(engine[0], engine[2], atol=1e-6)


def test_progress_stays_off_without_a_terminal(cancer, cancer_csv, tmp_path):
    r = cli("predict", cancer / "model.onnx", cancer_csv, "-o", tmp_path / "p.csv",
            "--batch-size", "10")
    assert r.exit_code == 0
    assert re.fullmatch(r"569 rows predicted with onnxruntime \(CPUExecutionProvider\) in "
                        r"[\d.]+ s \([\d,]+ rows/s\) -> .*p\.csv\n", r.stderr), r.stderr
    r = cli("predict", cancer / "model.onnx", cancer_csv, "-o", tmp_path / "q.csv", "--quiet")
    assert r.exit_code == 0 and r.stderr == ""


def test_api_reports_rows_and_speed(cancer, cancer_csv, tmp_path):
    seen = []
    report = dlspec.predict(cancer / "model.onnx", cancer_csv, tmp_path / "p.jsonl",
                            batch_size=100, progress=seen.append, keep=["mean_radius"])
    assert report["rows"] == 569 and report["rows_per_second"] > 0
    assert seen == [100, 200, 300, 400, 500, 569]
    with pytest.raises(dlspec.errors.UsageError, match="on_missing"):
        dlspec.predict(cancer / "model.onnx", cancer_csv, on_missing="mean")
