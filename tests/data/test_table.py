"""CSV reading: real files, chunking, and a located error for every bad input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from dlspec.data.table import iter_csv, read_csv
from dlspec.errors import DataError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CHURN = DATA / "churn" / "Churn_Modelling.csv"
CANCER = DATA / "sklearn" / "breast_cancer.csv"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data file {path} is not present")
    return path


def write(tmp_path: Path, text: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def error(path: Path, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        read_csv(path, **kwargs)
    return str(info.value)


def test_churn_reads_whole():
    table = read_csv(need(CHURN))
    assert len(table) == 10_000
    assert table.columns[:3] == ["RowNumber", "CustomerId", "Surname"]
    assert table.columns[-1] == "Exited"
    assert table.lines[0] == 2 and table.lines[-1] == 10_001
    assert table.lines.dtype == np.int64
    assert table.cells["Geography"].dtype == object
    assert table.cells["Surname"][0] == "Hargrave"
    credit = table.numeric("CreditScore")
    assert credit.dtype == np.float64 and credit[:2].tolist() == [619.0, 608.0]
    assert table.is_numeric("Balance") and not table.is_numeric("Geography")
    assert table.numeric("Age", np.array([1, 0])).tolist() == [41.0, 42.0]


def test_columns_subset_keeps_header_order_and_max_rows():
    table = read_csv(need(CHURN), columns=["Exited", "Age", "Exited"], max_rows=5)
    assert table.columns == ["Age", "Exited"] and set(table.cells) == {"Age", "Exited"}
    assert len(table) == 5 and table.lines.tolist() == [2, 3, 4, 5, 6]
    assert len(read_csv(need(CHURN), max_rows=0)) == 0


def test_chunks_match_whole_file():
    whole = read_csv(need(CHURN), columns=["Surname", "Balance"])
    chunks = list(iter_csv(CHURN, 3_000, columns=["Surname", "Balance"]))
    assert [len(c) for c in chunks] == [3_000, 3_000, 3_000, 1_000]
    assert np.array_equal(np.concatenate([c.lines for c in chunks]), whole.lines)
    for name in whole.columns:
        assert np.array_equal(np.concatenate([c.cells[name] for c in chunks]), whole.cells[name])
    exact = list(iter_csv(CHURN, 5_000, columns=["Age"]))
    assert [len(c) for c in exact] == [5_000, 5_000]


def test_header_only_file_yields_one_empty_chunk(tmp_path):
    chunks = list(iter_csv(write(tmp_path, "a,b\n"), 10))
    assert len(chunks) == 1 and len(chunks[0]) == 0 and chunks[0].columns == ["a", "b"]
    assert chunks[0].numeric("a").shape == (0,)


def test_quoting_bom_blank_lines_and_whitespace(tmp_path):
    text = '\ufeffname, note ,x\r\n"Smith, J"," two\nlines",1\r\n\r\n  Lee ,plain, 2 \r\n'
    table = read_csv(write(tmp_path, text))
    assert table.columns == ["name", "note", "x"]
    assert table.cells["name"].tolist() == ["Smith, J", "Lee"]
    assert table.cells["note"].tolist() == ["two\nlines", "plain"]
    assert table.lines.tolist() == [2, 5]  # the quoted record spans lines 2-3
    assert table.numeric("x").tolist() == [1.0, 2.0]


def test_breast_cancer_header_is_not_column_names():
    # sklearn's file starts with "569,30,malignant,benign": 4 names, 31 fields.
    path = need(CANCER)
    assert error(path) == f"{path}:2: expected 4 fields, got 31"


@pytest.mark.parametrize(("text", "message"), [
    ("", "the file has no header row"),
    ("\n\n  \n", "the file has no header row"),
    ("a,b,a\n1,2,3\n", ":1: column 'a' appears twice in the header (columns 1 and 3)"),
    ("a,,c\n", ":1: header column 2 has no name; every column needs one"),
    ("a,b,c\n1,2,3\n4,5\n", ":3: expected 3 fields, got 2"),
    ("a\n1\n\n" + "x" * 200_000 + "\n",
     ":4: malformed CSV: field larger than field limit (131072)"),
])
def test_malformed_files(tmp_path, text, message):
    path = write(tmp_path, text)
    expected = f"{path}{message}" if message.startswith(":") else f"{path}: {message}"
    assert error(path) == expected


def test_missing_columns_with_suggestion(tmp_path):
    path = write(tmp_path, "Age,Balance,Exited\n1,2,3\n")
    assert error(path, columns=["age", "Foo", "Exited"]) == (
        f"{path}:1: missing column(s) 'age' (did you mean 'Age'?), 'Foo' "
        "(the header has: Age, Balance, Exited)")


def test_missing_column_lists_long_header_briefly(tmp_path):
    header = ",".join(f"c{i}" for i in range(30))
    message = error(write(tmp_path, header + "\n"), columns=["zzz"])
    assert message.endswith("c18, c19, ... (30 columns in all))")


def test_unreadable_paths(tmp_path):
    missing = tmp_path / "nope.csv"
    assert error(missing) == f"{missing}: cannot read data file: No such file or directory"
    assert error(tmp_path) == f"{tmp_path}: cannot read data file: Is a directory"


def test_bad_encoding_is_located(tmp_path):
    path = write(tmp_path, b"a,b\n1,2\n3,caf\xe9\n")
    assert error(path) == (f"{path}:3:6: the file is not valid UTF-8 (byte 0xe9); "
                           "save it with UTF-8 encoding")


@pytest.mark.parametrize(("cell", "message"), [
    ("", "column 'Age': missing value"),
    ("abc", "column 'Age': cannot parse 'abc' as a number"),
    ("inf", "column 'Age': 'inf' is not a finite number"),
])
def test_numeric_errors(tmp_path, cell, message):
    path = write(tmp_path, f"Age,x\n40,a\n41,b\n{cell},c\n")
    table = read_csv(path)
    with pytest.raises(DataError) as info:
        table.numeric("Age")
    assert str(info.value) == f"{path}:4: {message}"
    assert info.value.code == "data-value"
    assert table.numeric("Age", np.array([0, 1])).tolist() == [40.0, 41.0]


def test_non_numeric_detection(tmp_path):
    table = read_csv(write(tmp_path, "a,b\n1,\n,x\n2.5,3\n"))
    assert table.is_numeric("a") and not table.is_numeric("b")
    assert table.first_non_numeric("b") == (3, "x")
    assert table.first_non_numeric("a") is None


def test_arbitrary_bytes_never_raise_anything_but_data_error(tmp_path):
    rng = np.random.default_rng(0)
    alphabet = np.frombuffer(b'a,1"\n\r .\xff\xc3\xa9\x00;', dtype=np.uint8)
    path = tmp_path / "fuzz.csv"
    for _ in range(300):
        path.write_bytes(rng.choice(alphabet, size=rng.integers(0, 40)).tobytes())
        try:
            table = read_csv(path)
        except DataError:
            continue
        for name in table.columns:
            with contextlib.suppress(DataError):
                table.numeric(name)
