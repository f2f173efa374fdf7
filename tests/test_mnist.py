"""The MNIST CNN spec on a subset of the real data, to a lower bar than the full run's 99%."""

from __future__ import annotations

import dlspec
from tests.conftest import SPECS


def test_mnist_cnn_learns_on_a_subset(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DLSPEC_DATA", str(mnist_dir.parent))
    monkeypatch.setenv("DLSPEC_CACHE", str(tmp_path / "cache"))  # never touch ~/.cache
    result = dlspec.train(SPECS / "mnist_cnn.yaml",
                          ["data.subset.train=4000", "data.subset.test=1000", "train.epochs=2"],
                          run_dir=tmp_path / "run")
    test = result.metrics["test"]
    assert test["rows"] == 1000
    assert test["accuracy"] >= 0.90, test
    assert result.metrics["export_parity"]["max_abs_diff"] < 1e-4
    assert result.metrics["data_sha256"]  # the four IDX files, hashed
