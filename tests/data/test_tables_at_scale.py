"""The table paths that only large files take, made to run on small ones: the reader's
numeric fields through NumPy's tokenizer, a whole file's columns filled into arrays sized
from its length, the fit's statistics and assembly in blocks of rows, the dataset keeping
only the raw rows a run looks at again, and pyarrow's reader (when installed). Each must
give what the plain path gives, bit for bit, and the same located errors."""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pytest

from dlspec.data import arrowcsv, csvparse, preprocess
from dlspec.data import table as table_module
from dlspec.data.preprocess import Preprocessor, column_stats
from dlspec.data.table import read_csv
from dlspec.errors import DataError

HEADER = "x,city,note,y\n"
HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


def rows(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"{rng.uniform(-1e4, 1e4):.{rng.randint(0, 9)}f},{rng.choice(['ab', 'c', 'Zürich'])},"
            f"n{i % 7},{i % 2}\n" for i in range(n)]


def write(tmp_path, lines: list[str], header: str = HEADER, name: str = "t.csv"):
    path = tmp_path / name
    path.write_bytes((header + "".join(lines)).encode())
    return path


def as_lists(table) -> dict:
    return {c: table.cells[c].tolist() for c in table.columns}


def test_numeric_fields_through_numpy_equal_float(tmp_path):
    rng = random.Random(1)
    texts = []
    for _ in range(5000):
        k = rng.random()
        if k < 0.4:
            texts.append(f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 20)}f}")
        elif k < 0.7:
            texts.append(repr(rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300)))
        else:
            texts.append(f"{rng.randint(-10**20, 10**20)}e{rng.randint(-300, 280)}")
    path = write(tmp_path, [f"{t},a,b,1\n" for t in texts])
    table = read_csv(path, numbers=["x"])
    assert table.cells["x"].dtype == np.float64
    assert table.cells["x"].tolist() == [float(t) for t in texts]


def test_a_bad_number_keeps_its_column_as_text_and_the_others_parsed(tmp_path):
    lines = rows(50)
    lines[17] = "1_000,c,n,1\n"  # float() reads it; kept as text, parsed on demand
    lines[30] = "abc,c,n,1\n"
    path = write(tmp_path, lines)
    table = read_csv(path, numbers=["x", "y"])
    assert table.cells["y"].dtype == np.float64
    assert table.cells["x"].dtype == object
    with pytest.raises(DataError, match=rf"^{path}:32: column 'x': cannot parse 'abc'"):
        table.numeric("x")
    assert table.numeric("x", np.array([17])).tolist() == [1000.0]


@pytest.mark.parametrize("guess", [1, 7, 10_000])
def test_whole_file_arrays_grown_or_trimmed_from_a_guess(tmp_path, monkeypatch, guess):
    lines = rows(300)
    path = write(tmp_path, lines)
    want = as_lists(read_csv(path, numbers=["x"]))
    monkeypatch.setattr(table_module, "_rows_in", lambda *a: guess)
    monkeypatch.setattr(csvparse, "_BLOCK", 512)  # many blocks
    got = read_csv(path, numbers=["x"])
    assert as_lists(got) == want
    assert got.lines.tolist() == list(range(2, 302))


def test_whole_file_with_a_text_block_in_a_numeric_column(tmp_path, monkeypatch):
    lines = rows(200)
    lines[150] = "oops,c,n,1\n"
    path = write(tmp_path, lines)
    monkeypatch.setattr(csvparse, "_BLOCK", 1024)
    table = read_csv(path, numbers=["x"])
    assert table.cells["x"].dtype == object  # float64 blocks and a text block: one column
    assert table.numeric("x", np.arange(150)).tolist() == [float(r.split(",")[0])
                                                           for r in lines[:150]]
    with pytest.raises(DataError, match=rf"^{path}:152: column 'x': cannot parse 'oops'"):
        table.numeric("x")


@pytest.mark.parametrize("shape", [(70_000, 5), (140_000, 1), (65_537, 2), (300, 12)])
def test_column_stats_equal_numpy_on_a_float64_copy(shape):
    x = (np.random.default_rng(0).normal(size=shape) * 1e3 + 7).astype(np.float32)
    mean, std = column_stats(x)
    wide = x.astype(np.float64)
    assert np.array_equal(mean, wide.mean(axis=0))
    assert np.array_equal(std, wide.std(axis=0))


STEPS = [{"onehot": {"columns": ["city"]}}, {"label_encode": {"columns": ["note"]}},
         {"standardize": {"columns": "numeric"}}]


def test_fit_in_blocks_of_rows_equals_one_block(tmp_path, monkeypatch):
    path = write(tmp_path, rows(3000))
    table = read_csv(path, numbers=["x"])
    train = np.random.default_rng(0).permutation(3000)[:2400]
    features = ["x", "city", "note"]
    pre, x = Preprocessor.fit_transform(table, train, features, STEPS)
    monkeypatch.setattr(preprocess, "_ASSEMBLE_ROWS", 7)
    monkeypatch.setattr(preprocess, "_STATS_ROWS", 5)
    pre2, x2 = Preprocessor.fit_transform(table, train, features, STEPS)
    assert pre2.to_dict() == pre.to_dict()
    assert x2.tobytes() == x.tobytes()


@pytest.mark.parametrize("at", [0, 6, 7, 13])  # around the blocks of 7 training rows
def test_missing_category_on_a_fit_block_boundary(tmp_path, monkeypatch, at):
    lines = rows(40)
    lines[at] = lines[at].replace(",c,", ",,").replace(",ab,", ",,").replace(",Zürich,", ",,")
    path = write(tmp_path, lines)
    table = read_csv(path, numbers=["x"])
    monkeypatch.setattr(preprocess, "_ASSEMBLE_ROWS", 7)
    with pytest.raises(DataError, match=rf"^{path}:{at + 2}: column 'city': missing value"):
        Preprocessor.fit_transform(table, np.arange(40), ["x", "city"], STEPS[:1])


def test_unseen_category_located_in_a_later_split(tmp_path, monkeypatch):
    lines = rows(40)
    lines[33] = lines[33].split(",")[0] + ",Bern,n,1\n"
    path = write(tmp_path, lines)
    table = read_csv(path, numbers=["x"])
    monkeypatch.setattr(preprocess, "_ASSEMBLE_ROWS", 7)
    pre, _ = Preprocessor.fit_transform(table, np.arange(30), ["x", "city"], STEPS[:1])
    with pytest.raises(DataError, match=rf"^{path}:35: column 'city': 1 row has a category "
                                        r"not seen in training \(first: 'Bern'\)"):
        pre.transform(table, np.arange(30, 40))


def test_kept_rows_are_addressed_by_the_whole_tables_numbers(tmp_path):
    path = write(tmp_path, rows(50))
    table = read_csv(path, numbers=["x"])
    kept = table.keep(np.array([40, 3, 17, 3]))
    assert kept.index.tolist() == [3, 17, 40]
    at = kept.positions(np.array([17, 40, 3]))
    assert kept.cells["note"][at].tolist() == table.cells["note"][[17, 40, 3]].tolist()
    assert kept.lines[at].tolist() == [19, 42, 5]
    with pytest.raises(KeyError):
        kept.positions(np.array([4]))


# pyarrow ----------------------------------------------------------------------------------

CASES = {
    "plain": HEADER + "".join(rows(200)),
    "crlf": (HEADER + "".join(rows(200))).replace("\n", "\r\n"),
    "bom": "\ufeff" + HEADER + "".join(rows(50)),
    "no final newline": HEADER + "".join(rows(50)).rstrip("\n"),
    "quoted": HEADER + '1.5,"a, b","say ""hi""",1\n' + "".join(rows(20)),
    "quoted newline": HEADER + '1.5,"two\nlines",n,1\n' + "".join(rows(20)),
    "odd quotes": HEADER + '1.5,ab"c,"x"y,1\n' + "".join(rows(20)),
    "spaces": HEADER + " 1.5 ,  ab ,n , 1\n" + "".join(rows(20)),
    "blank line": HEADER + "".join(rows(10)) + "\n" + "".join(rows(10)),
    "blank first": "\n" + HEADER + "".join(rows(10)),
    "empty number": HEADER + ",ab,n,1\n" + "".join(rows(10)),
    "nan": HEADER + "nan,ab,n,1\n" + "".join(rows(10)),
    "bad number": HEADER + "".join(rows(10)) + "abc,ab,n,1\n",
    "wrong count": HEADER + "".join(rows(10)) + "1.5,ab,n\n",
    "lone cr": HEADER + "1.5,ab,n,1\r2.5,c,n,0\n",
    "header spaces": " x , city ,note,y\n" + "".join(rows(10)),
}


def read_both(path, monkeypatch, **kw):
    """(pyarrow's result or error, the own reader's), as comparable values."""
    out = []
    for off in ("", "1"):
        monkeypatch.setenv("DLSPEC_NO_PYARROW", off)
        try:
            t = read_csv(path, **kw)
            x = t.numeric("x", missing="nan").tobytes()  # NaN compares equal as bytes
            out.append((t.columns, {c: t.cells[c].tolist() for c in t.columns if c != "x"},
                        t.lines.tolist(), x))
        except DataError as e:
            out.append(str(e))
    return out


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
@pytest.mark.parametrize("case", sorted(CASES))
def test_pyarrow_reads_as_the_own_reader(tmp_path, monkeypatch, case):
    monkeypatch.setattr(arrowcsv, "MIN_BYTES", 0)
    path = write(tmp_path, [], header=CASES[case])
    fast, own = read_both(path, monkeypatch, columns=["x", "city", "y"], numbers=["x"])
    assert fast == own


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_pyarrow_is_used_for_a_clean_file_and_gives_identical_arrays(tmp_path, monkeypatch):
    monkeypatch.setattr(arrowcsv, "MIN_BYTES", 0)
    path = write(tmp_path, rows(500))
    used = []
    read = arrowcsv.read
    monkeypatch.setattr(arrowcsv, "read", lambda *a: used.append(1) or read(*a))
    monkeypatch.setenv("DLSPEC_NO_PYARROW", "")
    fast = read_csv(path, numbers=["x", "y"])
    assert used
    monkeypatch.setenv("DLSPEC_NO_PYARROW", "1")
    own = read_csv(path, numbers=["x", "y"])
    for c in own.columns:
        assert fast.cells[c].dtype == own.cells[c].dtype
        assert np.array_equal(fast.cells[c], own.cells[c])
    assert np.array_equal(fast.lines, own.lines)


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_pyarrow_numbers_equal_float(tmp_path, monkeypatch):
    monkeypatch.setattr(arrowcsv, "MIN_BYTES", 0)
    rng = random.Random(2)
    texts = [repr(rng.uniform(-1, 1) * 10 ** rng.randint(-300, 300)) for _ in range(3000)]
    texts += ["".join(rng.choice("0123456789") for _ in range(rng.randint(1, 30))) + "." +
              "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 25)))
              for _ in range(3000)]
    path = write(tmp_path, [f"{t},a,b,1\n" for t in texts])
    got = arrowcsv.read(str(path), ["x"], ["x"], csvparse.CSV)
    assert got is not None
    assert got[0]["x"].tolist() == [float(t) for t in texts]


# The readers' codes of category columns, and numbers held narrowed -----------------------

def assert_codes_mean_the_cells(table, column):
    codes, values = table.codes(column)
    assert len(set(values)) == len(values)
    assert sorted(set(codes.tolist())) == list(range(len(values)))  # only values it has
    assert np.array(values, dtype=object)[codes].tolist() == table.cells[column].tolist()


@pytest.mark.parametrize("quoted_at", [None, 5, 250])
@pytest.mark.parametrize("block", [256, 4096, 1 << 20])
def test_whole_file_codes_come_from_the_blocks(tmp_path, monkeypatch, quoted_at, block):
    lines = rows(400)
    if quoted_at is not None:  # the csv module reads from here on: those blocks have none
        lines[quoted_at] = lines[quoted_at].replace(",n", ',"n, q"')
    path = write(tmp_path, lines)
    monkeypatch.setattr(csvparse, "_BLOCK", block)
    table = read_csv(path, numbers=["x"])
    if block > 256:  # (blocks of ten rows have too many distinct cities to be coded)
        assert ("city" in table._codes) == (quoted_at is None)  # else computed by codes()
    for column in ("city", "note", "y"):
        assert_codes_mean_the_cells(table, column)
    # the same rows read as one block, and the fallback on cells: the same cells per code
    plain = read_csv(path, numbers=["x"])
    plain._codes.clear()
    for column in ("city", "note"):
        codes, values = table.codes(column)
        want, want_values = plain.codes(column)
        assert [values[c] for c in codes.tolist()] == [want_values[c] for c in want.tolist()]


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_codes_hold_only_each_chunks_values(tmp_path, monkeypatch, chunk):
    lines = rows(300)
    lines[150] = lines[150].split(",")[0] + ",Bern,n0,1\n"  # a value only one chunk has
    path = write(tmp_path, lines)
    monkeypatch.setattr(csvparse, "_BLOCK", 512)
    seen = []
    for t in table_module.iter_csv(path, chunk, numbers=["x"]):
        assert "city" in t._codes
        for column in ("city", "note"):
            assert_codes_mean_the_cells(t, column)
        seen += t.cells["city"].tolist()
    assert seen == [r.split(",")[1] for r in lines]


def integer_and_decimal_rows(n: int, decimal_from: int) -> list[str]:
    """x: whole numbers (float32 exactly); y: halves, then tenths (not float32) from a row."""
    return [f"{i * 37 % 1001},c,n,{i / 2 if i < decimal_from else i / 10}\n" for i in range(n)]


@pytest.mark.parametrize("decimal_from", [0, 99, 100, 101, 299])
def test_narrowed_numbers_give_the_float64_values(tmp_path, monkeypatch, decimal_from):
    lines = integer_and_decimal_rows(300, decimal_from)
    path = write(tmp_path, lines)
    # blocks of 100 rows exactly, so that the first tenth lands on, before and after a cut
    monkeypatch.setattr(csvparse, "_BLOCK", len("".join(lines[:100]).encode()) + len(HEADER))
    wide = read_csv(path, numbers=["x", "y"])
    narrow = read_csv(path, numbers=["x", "y"], narrow=True)
    assert wide.cells["x"].dtype == wide.cells["y"].dtype == np.float64
    assert narrow.cells["x"].dtype == np.float32
    assert narrow.cells["y"].dtype == np.float64  # widened at its first tenth
    for column in ("x", "y"):
        assert narrow.numeric(column).tobytes() == wide.numeric(column).tobytes()
        rows_ = np.array([299, 0, 150])
        assert narrow.numeric(column, rows_).tobytes() == wide.numeric(column, rows_).tobytes()
    kept = narrow.keep(np.array([3, 250]))
    assert kept.cells["x"].dtype == np.float64
    assert kept.cells["x"].tolist() == wide.cells["x"][[3, 250]].tolist()


def test_narrow_keeps_a_column_of_float32_values_float32(tmp_path):
    values = np.random.default_rng(0).normal(size=500).astype(np.float32)
    path = write(tmp_path, [f"{float(v)!r},c,n,{v!r}\n" for v in values.tolist()])
    table = read_csv(path, numbers=["x", "y"], narrow=True)
    assert table.cells["x"].dtype == np.float32  # float64 texts of float32 values
    assert table.numeric("x").tolist() == [float(repr(float(v))) for v in values.tolist()]


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
@pytest.mark.parametrize("decimal_from", [0, 150, 300])
def test_pyarrow_narrows_and_codes_as_the_own_reader(tmp_path, monkeypatch, decimal_from):
    monkeypatch.setattr(arrowcsv, "MIN_BYTES", 0)
    lines = integer_and_decimal_rows(300, decimal_from)
    lines = [r.replace(",c,", f",{'abc'[i % 3]},") for i, r in enumerate(lines)]
    path = write(tmp_path, lines)
    got = {}
    for off in ("", "1"):
        monkeypatch.setenv("DLSPEC_NO_PYARROW", off)
        t = read_csv(path, numbers=["x", "y"], narrow=True)
        assert "city" in t._codes
        assert_codes_mean_the_cells(t, "city")
        got[off] = ({c: (t.cells[c].dtype, t.numeric(c).tobytes()) for c in ("x", "y")},
                    t.cells["city"].tolist())
    assert got[""] == got["1"]


def test_a_stream_stops_coding_a_column_whose_vocabulary_outgrows_its_bound(tmp_path,
                                                                            monkeypatch):
    lines = [f"{i},c{i // 8},n,1\n" for i in range(2000)]  # 250 cities, eight rows each
    path = write(tmp_path, lines)
    monkeypatch.setattr(csvparse, "_BLOCK", 2048)
    monkeypatch.setattr(table_module, "_STREAM_CODES", 100)
    tables = list(table_module.iter_csv(path, 100, numbers=["x"]))
    assert "city" in tables[0]._codes and "city" not in tables[-1]._codes
    for t in tables:
        assert_codes_mean_the_cells(t, "city")  # computed from the cells once it stopped
    assert [c for t in tables for c in t.cells["city"].tolist()] == [f"c{i // 8}"
                                                                     for i in range(2000)]


@pytest.mark.parametrize("quoted_at", [None, 0, 150, 399])
def test_a_narrow_table_holds_categories_as_codes_and_makes_their_cells_on_access(
        tmp_path, monkeypatch, quoted_at):
    lines = [r.replace("Zürich", "Bern") for r in rows(400)]
    if quoted_at is not None:  # from its block on, the csv module reads: cells, no codes
        lines[quoted_at] = lines[quoted_at].replace(",n", ',"n, q"')
    path = write(tmp_path, lines)
    monkeypatch.setattr(csvparse, "_BLOCK", 2048)
    wide = read_csv(path, numbers=["x"])
    narrow = read_csv(path, numbers=["x"], narrow=True)
    assert narrow.lines.dtype == np.int32 and narrow.lines.tolist() == wide.lines.tolist()
    if quoted_at is None:
        assert narrow.cells.coded("city") is not None  # no object array made yet
        assert narrow.codes("city")[0].dtype == np.uint8
    else:
        assert narrow.cells.coded("city") is None  # made when a block came without codes
    picked = np.array([399, 0, 150, 7])
    for column in ("city", "note", "y"):
        assert narrow.cells[column].tolist() == wide.cells[column].tolist()
        assert narrow.take(picked).cells[column].tolist() == wide.cells[column][picked].tolist()
    assert list(narrow.cells) == narrow.columns == wide.columns
    other = read_csv(path, numbers=["x"], narrow=True).select(["x", "city"])
    assert list(other.cells) == other.columns == ["x", "city"]
    assert other.keep(picked).cells["city"].tolist() == wide.cells["city"][np.sort(picked)
                                                                           ].tolist()
