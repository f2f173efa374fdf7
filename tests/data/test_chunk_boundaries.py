"""What lands exactly on a chunk boundary: a quoted field, a bad value and an unseen
category, at the reader's block boundary (``csvparse._BLOCK``, patched small) and at a
row chunk's (``iter_csv``'s ``chunk_rows``, ``predict``'s ``batch_size``). Cells, line
numbers and located errors must not depend on where the file was cut."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

import dlspec
from dlspec.data import csvparse
from dlspec.data.table import iter_csv, read_csv
from dlspec.errors import DataError

HEADER = "x,city,note\n"


def row(i: int, note: str = "plain") -> str:
    return f"{i}.5,{'ab'[i % 2]},{note}\n"


def body(n: int) -> list[str]:
    return [row(i) for i in range(n)]


def block_size_at(lines: list[str], k: int) -> int:
    """The block size that makes the reader's first block end exactly after data line k."""
    return len((HEADER + "".join(lines[:k])).encode())


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "data.csv"
    path.write_bytes((HEADER + "".join(lines)).encode())
    return path


def oracle(path: Path) -> list[list[str]]:
    return [[c.strip() for c in r] for r in csv.reader(io.StringIO(path.read_text(),
                                                                   newline=""))][1:]


@pytest.mark.parametrize("shift", [-1, 0, 1])
def test_quoted_field_across_the_block_boundary(tmp_path, monkeypatch, shift):
    lines = body(40)
    lines[20] = '20.5,a,"two\nlines, one ""field"""\n'
    path = write(tmp_path, lines)
    # the first block ends inside the quoted field (shift 0: right after its first line)
    cut = block_size_at(lines, 20) + len(b'20.5,a,"two\n') + shift
    monkeypatch.setattr(csvparse, "_BLOCK", cut)
    table = read_csv(path, numbers=["x"])
    cells = [[str(v) for v in r] for r in zip(*(table.cells[c].tolist()
                                                 for c in table.columns), strict=True)]
    want = oracle(path)
    assert [r[1:] for r in cells] == [r[1:] for r in want]
    assert np.array_equal(table.numeric("x"), [float(r[0]) for r in want])
    assert table.lines.tolist() == [*range(2, 23), *range(24, 43)]  # row 20: lines 22-23


@pytest.mark.parametrize("k", [19, 20])  # the last line of the first block, the first of the next
def test_bad_number_on_the_block_boundary(tmp_path, monkeypatch, k):
    lines = body(40)
    lines[k] = f"abc,{'ab'[k % 2]},plain\n"
    path = write(tmp_path, lines)
    monkeypatch.setattr(csvparse, "_BLOCK", block_size_at(lines, 20))
    table = read_csv(path, numbers=["x"])
    with pytest.raises(DataError) as info:
        table.numeric("x")
    assert str(info.value) == f"{path}:{k + 2}: column 'x': cannot parse 'abc' as a number"
    # the other block is parsed as numbers, this one kept as text: one column still
    assert table.numeric("x", np.arange(k)).tolist() == [i + 0.5 for i in range(k)]


@pytest.mark.parametrize("k", [29, 30])
def test_bad_number_on_a_row_chunk_boundary(tmp_path, k):
    lines = body(60)
    lines[k] = "1e999,a,plain\n"
    path = write(tmp_path, lines)
    chunks = iter_csv(path, 30, numbers=["x"])
    seen = 0
    with pytest.raises(DataError) as info:
        for chunk in chunks:
            chunk.numeric("x")
            seen += len(chunk)
    assert seen == (0 if k < 30 else 30)
    assert str(info.value) == f"{path}:{k + 2}: column 'x': '1e999' is not a finite number"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small model with a categorical input (city: a or b), exported."""
    folder = tmp_path_factory.mktemp("model")
    data = folder / "train.csv"
    rng = np.random.default_rng(0)
    data.write_text("x,city,y\n" + "".join(
        f"{rng.normal():.4f},{'ab'[i % 2]},{int(rng.random() < 0.5)}\n" for i in range(200)))
    spec = folder / "spec.yaml"
    spec.write_text(f"""\
dlspec: 1
name: cities
data:
  source: {data}
  target: y
  preprocess: [onehot: [city], standardize: numeric]
model:
  layers: [dense: {{units: 1, activation: sigmoid}}]
train: {{loss: binary_crossentropy, optimizer: adam, batch_size: 50, epochs: 1}}
""")
    run = dlspec.train(spec, runs_root=folder / "runs").run_dir
    return run / "model.onnx"


@pytest.mark.parametrize("k", [49, 50])  # the last row of the first batch, the first of the next
def test_unseen_category_on_a_predict_batch_boundary(tmp_path, model, k):
    lines = [f"{i / 10},{'ab'[i % 2]}\n" for i in range(120)]
    lines[k] = f"{k / 10},c\n"
    path = tmp_path / "new.csv"
    path.write_text("x,city\n" + "".join(lines))
    with pytest.raises(DataError) as info:
        dlspec.predict(model, path, tmp_path / "out.csv", batch_size=50)
    assert str(info.value) == (f"{path}:{k + 2}: column 'city': 1 row has a category not "
                               "seen in training (first: 'c')")
    # with unseen categories allowed, the batches give what one batch gives
    dlspec.predict(model, path, tmp_path / "a.csv", batch_size=50, on_unknown="zeros")
    dlspec.predict(model, path, tmp_path / "b.csv", batch_size=1000, on_unknown="zeros")
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()


def test_predict_batches_match_one_batch_on_block_boundaries(tmp_path, model, monkeypatch):
    lines = [f"{i / 7:.5f},{'ab'[i % 2]}\n" for i in range(300)]
    lines[100] = '"14.28571","b"\n'  # a quoted block from here on
    path = tmp_path / "new.csv"
    path.write_text("x,city\n" + "".join(lines))
    dlspec.predict(model, path, tmp_path / "one.csv", batch_size=1000)
    monkeypatch.setattr(csvparse, "_BLOCK", 97)
    dlspec.predict(model, path, tmp_path / "many.csv", batch_size=33)
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "many.csv").read_text()
