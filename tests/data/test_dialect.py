"""Delimited text other than CSV with a header: the parser against the csv module, the
SMS Spam Collection (tab-separated, no header, unbalanced quotes) read line for line,
and a located error for every bad input."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from dlspec.data import csvparse
from dlspec.data.csvparse import Dialect
from dlspec.data.table import iter_csv, read_csv
from dlspec.errors import DataError

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SMS = DATA / "text" / "SMSSpamCollection"
TSV = Dialect("\t", None, False, ("label", "message"))


def write(tmp_path: Path, data: bytes | str, name: str = "data.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


def oracle(path: Path, dialect: Dialect) -> list[list[str]]:
    """The csv module's rows (stripped, blank lines dropped), header excluded."""
    text = path.read_bytes().decode("utf-8-sig")
    rows = [[c.strip() for c in r] for r in csv.reader(io.StringIO(text, newline=""),
                                                           **dialect.reader_options())
            if r and not (len(r) == 1 and not r[0].strip())]
    return rows[1:] if dialect.header else rows


def cells(table) -> list[list[str]]:
    return [list(r) for r in zip(*(table.cells[c].tolist() for c in table.columns),
                                 strict=True)]


def test_sms_collection_reads_every_line():
    if not SMS.exists():
        pytest.skip(f"shared data file {SMS} is not present")
    table = read_csv(SMS, dialect=TSV)
    lines = SMS.read_bytes().decode("utf-8").splitlines()
    assert len(table) == len(lines) == 5574
    assert table.lines.tolist() == list(range(1, 5575))
    assert table.columns == ["label", "message"]
    assert cells(table) == [[c.strip() for c in line.split("\t")] for line in lines]
    labels, counts = np.unique(table.cells["label"].astype(str), return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == {"ham": 4827,
                                                                        "spam": 747}
    # With quoting on, a message that starts with a quote runs on into the next line:
    # 5,572 rows, two messages swallowed. Such files need quote: null.
    quoted = read_csv(SMS, dialect=Dialect("\t", '"', False, ("label", "message")))
    assert len(quoted) == 5572


def test_no_header_quote_none_keeps_quote_characters(tmp_path):
    path = write(tmp_path, 'ham\tsay "hi\nspam\t"free" prize\n')
    table = read_csv(path, dialect=TSV)
    assert cells(table) == [["ham", 'say "hi'], ["spam", '"free" prize']]
    assert table.lines.tolist() == [1, 2]


@pytest.mark.parametrize("data", [
    "a\tb\n1\t2\n3\t4\n",
    '\ufeffa\tb\r\n"x\ty"\t2\r\n"multi\nline"\t"q""uote"\r\n',
    "a;b\n1,5;2\n 3 ; x \n",
    "a|b\n\n1|2\n   \n3|\n",
])
def test_delimiters_match_the_csv_module(tmp_path, data):
    delim = "\t" if "\t" in data else ";" if ";" in data else "|"
    dialect = Dialect(delim)
    path = write(tmp_path, data)
    table = read_csv(path, dialect=dialect)
    assert table.columns == ["a", "b"]
    assert cells(table) == oracle(path, dialect)


def test_fast_path_equals_slow_path_on_a_big_tsv(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 3000
    body = "".join(f"{rng.integers(-999, 999)}\t{rng.random():.6f}\tcat{i % 7}\t x{i} \n"
                   for i in range(n))
    path = write(tmp_path, "n\tf\tc\tt\n" + body)
    dialect = Dialect("\t", None)
    fast = read_csv(path, dialect=dialect)
    monkeypatch.setattr(csvparse, "_BLOCK", 1000)  # many blocks
    chunks = list(iter_csv(path, 777, dialect=dialect, numbers=["n", "f"]))
    assert sum(len(c) for c in chunks) == n
    assert cells(fast) == oracle(path, dialect)
    assert np.array_equal(np.concatenate([c.numeric("f") for c in chunks]), fast.numeric("f"))
    assert np.concatenate([c.lines for c in chunks]).tolist() == list(range(2, n + 2))


def test_wrong_field_count_is_located(tmp_path):
    path = write(tmp_path, "ham\tone\nspam\ttwo\tthree\n")
    with pytest.raises(DataError) as info:
        read_csv(path, dialect=TSV)
    assert str(info.value) == f"{path}:2: expected 2 fields, got 3"


def test_undecodable_bytes_are_located(tmp_path):
    path = write(tmp_path, b"ham\tok\nspam\tbad \xff byte\n")
    with pytest.raises(DataError) as info:
        read_csv(path, dialect=TSV)
    assert str(info.value).startswith(f"{path}:2:10: the file is not valid UTF-8")


def test_header_must_match_the_columns_given(tmp_path):
    path = write(tmp_path, "label\ttext\nham\thi\n")
    with pytest.raises(DataError) as info:
        read_csv(path, dialect=Dialect("\t", columns=("label", "message")))
    assert str(info.value) == (f"{path}:1: the header has 2 column(s), the data format's "
                               "columns name 2; column 2 is 'text' in the header, 'message' "
                               "in the format")
    with pytest.raises(DataError) as info:
        read_csv(path, dialect=Dialect("\t", columns=("label",)))
    assert str(info.value) == (f"{path}:1: the header has 2 column(s), the data format's "
                               "columns name 1 (column 2: 'text')")
    table = read_csv(path, dialect=Dialect("\t", columns=("label", "text")))
    assert cells(table) == [["ham", "hi"]]


def test_no_header_selects_columns_and_empty_file(tmp_path):
    path = write(tmp_path, "ham\thi\n")
    assert read_csv(path, columns=["message"], dialect=TSV).cells["message"].tolist() == ["hi"]
    empty = read_csv(write(tmp_path, "", "empty.tsv"), dialect=TSV)
    assert len(empty) == 0 and empty.columns == ["label", "message"]


@pytest.mark.parametrize("kwargs", [
    {"delimiter": "\n"}, {"delimiter": "ab"}, {"delimiter": "é"},
    {"delimiter": "\t", "quote": "\t"}, {"header": False},
])
def test_dialect_refuses_what_cannot_be_read(kwargs):
    with pytest.raises(ValueError):
        Dialect(**kwargs)


def test_dialect_round_trips():
    assert Dialect.from_dict(TSV.to_dict()) == TSV
    assert Dialect.from_dict({}) == csvparse.CSV
