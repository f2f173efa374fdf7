"""CSV reading: real files, chunking, and a located error for every bad input."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from dlspec.data import csvparse
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


# The fast reader against the csv module ---------------------------------------------------

def reference(path: Path) -> tuple[list[str], dict[str, list[str]], list[int]] | str:
    """What read_csv must give, by the csv module alone: (columns, cells, lines) or the error."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header, rows, lines, end = None, [], [], 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                return f"{path}:{reader.line_num}: malformed CSV: {e}"
            start, end = end + 1, reader.line_num
            if not row:
                continue
            if header is None:
                if len(row) == 1 and not row[0].strip():
                    continue
                header = [h.strip() for h in row]
                if "" in header or len(set(header)) < len(header):
                    return "header"
                continue
            if len(row) != len(header):
                if len(header) > 1 and len(row) == 1 and not row[0].strip():
                    continue
                return f"{path}:{start}: expected {len(header)} fields, got {len(row)}"
            rows.append([c.strip() for c in row])
            lines.append(start)
    if header is None:
        return "no header"
    return header, {h: [r[i] for r in rows] for i, h in enumerate(header)}, lines


FIELDS = ["1", "22", "-3.5", "0.25", "7e3", "", " 4 ", "abc", " x y ", "é", "nan", "1_0",
          '"q,uoted"', '"two\nlines"', '""', "\t5", "00012", "-0", ".5", "5.", "123456789.123456"]


def random_csv(rng: np.random.Generator) -> str:
    width = int(rng.integers(1, 5))
    ends = ["\n", "\r\n", "\n", "\n", "\r"] if rng.random() < 0.2 else ["\n", "\r\n"]
    out = [",".join(f"c{i}" for i in range(width)) + str(rng.choice(ends))]
    for _ in range(int(rng.integers(0, 30))):
        n = width if rng.random() < 0.93 else int(rng.integers(1, 6))
        pool = FIELDS if rng.random() < 0.3 else [f for f in FIELDS if '"' not in f]
        out.append(",".join(str(rng.choice(pool)) for _ in range(n)) + str(rng.choice(ends)))
        if rng.random() < 0.05:
            out.append(str(rng.choice(["\n", "  \n", "\r\n"])))
    text = "".join(out)
    return text[:-1] if rng.random() < 0.2 else text


@pytest.mark.parametrize("block", [8, 64, 1 << 20])
def test_fast_reader_equals_the_csv_module(tmp_path, monkeypatch, block):
    monkeypatch.setattr(csvparse, "_BLOCK", block)
    rng = np.random.default_rng(block)
    path = tmp_path / "r.csv"
    for _ in range(150):
        path.write_bytes(random_csv(rng).encode("utf-8"))
        want = reference(path)
        if isinstance(want, str):
            with pytest.raises(DataError) as info:
                read_csv(path)
            if want.startswith(str(path)):
                assert str(info.value) == want
            continue
        columns, cells, lines = want
        got = read_csv(path)
        assert got.columns == columns and got.lines.tolist() == lines
        assert {c: got.cells[c].tolist() for c in columns} == cells
        # Columns asked for as numbers give the numbers (or the error) of the text.
        chunks = list(iter_csv(path, 3, numbers=columns))
        for c in columns:
            try:
                expected = got.numeric(c, missing="nan")
            except DataError as e:
                with pytest.raises(DataError) as info:
                    for chunk in chunks:
                        chunk.numeric(c, missing="nan")
                assert str(info.value) == str(e)
                continue
            values = np.concatenate([chunk.numeric(c, missing="nan") for chunk in chunks])
            np.testing.assert_array_equal(values, expected)


def test_decimal_fast_path_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1e6, 3000), rng.integers(-10**9, 10**9, 3000),
                             rng.uniform(0, 1, 3000)])
    texts = [f"{v:.{rng.integers(0, 7)}f}" for v in values] + ["-0", "0.", ".5", "-.5",
                                                                 "123456789012345"]
    path = write(tmp_path, "x,y\n" + "".join(f"{t},{i}\n" for i, t in enumerate(texts)))
    (chunk,) = iter_csv(path, 100_000, numbers=["x"])
    assert chunk.cells["x"].dtype == np.float64
    got = chunk.numeric("x")
    assert np.array_equal(got.view(np.int64), np.array([float(t) for t in texts]).view(np.int64))


def test_numbers_stay_text_where_a_block_has_a_bad_cell(tmp_path, monkeypatch):
    monkeypatch.setattr(csvparse, "_BLOCK", 16)
    path = write(tmp_path, "a,b\n1,x\n2,y\n3,z\n,w\n5,v\nabc,u\n")
    chunks = list(iter_csv(path, 100, numbers=["a"]))
    assert chunks[0].numeric("a", np.arange(5), missing="nan")[:4].tolist()[:3] == [1, 2, 3]
    with pytest.raises(DataError) as info:
        chunks[0].numeric("a")
    assert str(info.value) == f"{path}:5: column 'a': missing value"
    with pytest.raises(DataError) as info:
        chunks[0].numeric("a", missing="nan")
    assert str(info.value) == f"{path}:7: column 'a': cannot parse 'abc' as a number"
