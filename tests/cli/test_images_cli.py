"""Image models through the CLI: inspect shapes, train, predict on NPZ / IDX / PNG folders."""

from __future__ import annotations

import csv
import gzip
import struct

import numpy as np
import pytest
from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()
DIGITS = EXAMPLES / "digits.npz"


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("digits")
    r = run("train", SPECS / "digits_cnn.yaml", "--set", "train.epochs=2", "--quiet",
            "--run-dir", d / "run")
    assert r.exit_code == 0, r.output
    return d / "run"


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(text.splitlines()))


def test_inspect_shows_nhwc_shapes_and_keras_parameter_counts():
    r = run("inspect", SPECS / "digits_cnn.yaml")
    assert r.exit_code == 0, r.output
    out = r.stdout
    for shape, params in (("(N, 8, 8, 16)", "160"), ("(N, 4, 4, 16)", "0"),
                          ("(N, 4, 4, 32)", "4,640"), ("(N, 2, 2, 32)", "0"),
                          ("(N, 128)", "0"), ("(N, 64)", "8,256"), ("(N, 10)", "650")):
        assert any(shape in line and line.rstrip(" │").endswith(params)
                   for line in out.splitlines()), (shape, params)
    assert "images: 8 x 8 x 1" in out


def test_predict_npz_with_both_backends(digits_run, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("predict", digits_run / "model.onnx", DIGITS, "-o", a).exit_code == 0
    r = run("predict", digits_run, DIGITS, "-o", b, "--backend", "numpy")
    assert r.exit_code == 0, r.output
    ra, rb = _rows(a.read_text()), _rows(b.read_text())
    assert ra[0] == ["image", *(f"prob_{k}" for k in range(10)), "predicted_label"]
    assert len(ra) == len(rb) == 1798
    for x, y in zip(ra[1:], rb[1:], strict=True):
        assert x[0] == y[0] and x[-1] == y[-1]
        assert np.allclose(np.array(x[1:-1], float), np.array(y[1:-1], float), atol=1e-5)


def _write_idx(path, x: np.ndarray) -> None:
    header = struct.pack(">I", 0x0803) + struct.pack(">III", *x.shape[:3])
    with gzip.open(path, "wb") as fh:
        fh.write(header + x[..., 0].astype(np.uint8).tobytes())


def test_predict_idx_and_png_folder(digits_run, tmp_path):
    with np.load(DIGITS, allow_pickle=False) as z:
        x = z["x"][:20]
    _write_idx(tmp_path / "few-images-idx3-ubyte.gz", x)
    r = run("predict", digits_run / "model.onnx", tmp_path / "few-images-idx3-ubyte.gz")
    assert r.exit_code == 0, r.output
    idx_rows = _rows(r.stdout)
    assert len(idx_rows) == 21
    image = pytest.importorskip("PIL.Image", reason="PNG folders need Pillow")
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i in range(20):
        image.fromarray(x[i, ..., 0]).save(folder / f"{i:02d}.png")
    r = run("predict", digits_run / "model.onnx", folder)
    assert r.exit_code == 0, r.output
    png_rows = _rows(r.stdout)
    assert [row[1:] for row in png_rows[1:]] == [row[1:] for row in idx_rows[1:]]
    assert png_rows[1][0].endswith("00.png")


def test_predict_images_of_the_wrong_size(digits_run, tmp_path):
    np.savez(tmp_path / "big.npz", x=np.zeros((3, 10, 10, 1), np.uint8))
    r = run("predict", digits_run / "model.onnx", tmp_path / "big.npz")
    assert r.exit_code == 1
    assert "the images are 10x10x1" in r.stderr and "the model takes 8x8x1" in r.stderr


@pytest.mark.parametrize("batch", [1, 64])
def test_exported_cnn_matches_the_engine_at_batch(digits_run, tmp_path, batch):
    with np.load(DIGITS, allow_pickle=False) as z:
        np.savez(tmp_path / "few.npz", x=z["x"][:130], y=z["y"][:130])
    a, b = tmp_path / "onnx.csv", tmp_path / "numpy.csv"
    assert run("predict", digits_run / "model.onnx", tmp_path / "few.npz", "-o", a,
               "--batch-size", batch).exit_code == 0
    assert run("predict", digits_run, tmp_path / "few.npz", "-o", b, "--backend", "numpy",
               "--batch-size", batch).exit_code == 0
    ra, rb = _rows(a.read_text())[1:], _rows(b.read_text())[1:]
    got = np.array([r[1:-1] for r in ra], float)
    want = np.array([r[1:-1] for r in rb], float)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    assert [r[-1] for r in ra] == [r[-1] for r in rb]


@pytest.mark.parametrize("damage", ["missing", "not an npz", "wrong array"])
def test_export_with_damaged_holdout_is_one_located_error(digits_run, tmp_path, damage):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    holdout = run_dir / "holdout.npz"
    if damage == "missing":
        holdout.unlink()
    elif damage == "not an npz":
        holdout.write_text("not an npz\n")
    else:
        np.savez(holdout, windows=np.zeros((2, 3), np.float32))
    r = run("export", run_dir, "-o", tmp_path / "m.onnx")
    assert r.exit_code == 1, r.output
    assert "holdout.npz: the run's held-out rows" in r.output
    assert "Traceback" not in r.output and "internal error" not in r.output
