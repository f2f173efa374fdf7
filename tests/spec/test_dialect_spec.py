"""data.format as an object: the spec's form, its canonical (lock) form, its located
mistakes, and training and prediction on a tab-separated file without a header, which
must give the weights and predictions of the same rows written as CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

import dlspec
from dlspec.data.csvparse import CSV, Dialect
from dlspec.errors import Diagnostics
from dlspec.spec.load import load_spec
from dlspec.spec.model import thaw

ROOT = Path(__file__).resolve().parents[2]
CANCER = ROOT / "examples" / "data" / "breast_cancer.csv"

SPEC = """\
dlspec: 1
name: bc
seed: 3
data:
  source: {source}
  format: {format}
  target: diagnosis
  preprocess: [standardize: all]
  split: {{test: 0.2, validation: 0.1}}
model:
  layers:
    - dense: {{units: 4, activation: relu}}
    - dense: {{units: 1, activation: sigmoid}}
train: {{loss: binary_crossentropy, optimizer: adam, batch_size: 32, epochs: 2}}
"""


def tsv_copy(tmp_path: Path) -> tuple[Path, list[str]]:
    """breast_cancer.csv as tab-separated text without a header; its column names."""
    with open(CANCER, newline="") as fh:
        rows = list(csv.reader(fh))
    path = tmp_path / "bc.tsv"
    path.write_text("".join("\t".join(r) + "\n" for r in rows[1:]))
    return path, rows[0]


def write_spec(tmp_path: Path, source: Path, fmt, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    shown = fmt if isinstance(fmt, str) else yaml.safe_dump(fmt, default_flow_style=True,
                                                             width=10**6).strip()
    path.write_text(SPEC.format(source=source, format=shown))
    return path


def test_canonical_form_and_lock(tmp_path):
    data, header = tsv_copy(tmp_path)
    fmt = {"delimiter": "\t", "header": False, "columns": header, "quote": None}
    spec = load_spec(write_spec(tmp_path, data, fmt))
    d = thaw(spec.resolved)["data"]
    assert d["format"] == "csv"
    assert d["csv"] == {"delimiter": "\t", "quote": None, "header": False, "columns": header}
    assert spec.data.dialect == Dialect("\t", None, False, tuple(header))
    # the canonical form is itself a valid spec (spec.lock.yaml), meaning the same
    lock = tmp_path / "lock.yaml"
    lock.write_text(yaml.safe_dump(thaw(spec.resolved), sort_keys=False))
    again = load_spec(lock)
    assert again.data.dialect == spec.data.dialect and again.sha256 == spec.sha256
    # a spec with the default dialect has no data.csv: its hash is what it was
    plain = load_spec(write_spec(tmp_path, CANCER, "csv", "plain.yaml"))
    assert "csv" not in thaw(plain.resolved)["data"] and plain.data.dialect == CSV


@pytest.mark.parametrize(("fmt", "where", "message"), [
    ({"delimiter": "\t", "header": False}, "data.format.header",
     "a file without a header needs its column names"),
    ({"delimiter": ";", "quote": ";"}, "data.format.quote", "the quote must be one ASCII"),
    ({"delimiter": "\n"}, "data.format.delimiter", "the delimiter must be one ASCII"),
    ({"delimiter": "ab"}, "data.format.delimiter", ""),
    ({"delimiter": ",", "sep": ";"}, "data.format", ""),
])
def test_located_mistakes(tmp_path, fmt, where, message):
    path = write_spec(tmp_path, CANCER, fmt)
    with pytest.raises(Diagnostics) as info:
        load_spec(path)
    text = str(info.value)
    assert text.startswith(f"{path}:6:") and where in text and message in text, text


def test_header_columns_must_match(tmp_path):
    path = write_spec(tmp_path, CANCER, {"columns": ["a", "b"]})
    with pytest.raises(Diagnostics) as info:
        load_spec(path)
    text = str(info.value)
    assert text == (f"{path}:5:11: data.source: cannot read the data file: the header has 31 "
                    "column(s), the data format's columns name 2; column 1 is 'mean_radius' "
                    "in the header, 'a' in the format"), text


def test_tsv_without_header_trains_and_predicts_as_the_csv(tmp_path):
    data, header = tsv_copy(tmp_path)
    fmt = {"delimiter": "\t", "header": False, "columns": header, "quote": None}
    runs = tmp_path / "runs"
    tsv = dlspec.train(write_spec(tmp_path, data, fmt), runs_root=runs / "tsv")
    ref = dlspec.train(write_spec(tmp_path, CANCER, "csv", "ref.yaml"), runs_root=runs / "csv")
    a, b = np.load(tsv.run_dir / "weights.npz"), np.load(ref.run_dir / "weights.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    # the exported model reads tab-separated text without a header, as it was trained on
    out_tsv, out_csv = tmp_path / "p_tsv.csv", tmp_path / "p_csv.csv"
    assert dlspec.predict(tsv.run_dir / "model.onnx", data, out_tsv)["rows"] == 569
    dlspec.predict(ref.run_dir / "model.onnx", CANCER, out_csv)
    assert out_tsv.read_text() == out_csv.read_text()
    dlspec.predict(tsv.run_dir, data, tmp_path / "p_np.csv", backend="numpy")
    assert (tmp_path / "p_np.csv").read_text().count("\n") == 570
