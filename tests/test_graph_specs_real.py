"""The graph specs of specs/ on the real data sets, to the bars the README reports
(tests/test_end_to_end.py trains each of them on small settings; these are the real runs).

specs/churn_branches.yaml and the MNIST transfer pair run here (a minute together);
specs/mnist_residual.yaml takes about four minutes of two cores, so it runs only when
DLSPEC_LONG=1 is set."""

from __future__ import annotations

import os

import pytest

import dlspec
from tests.conftest import SPECS

pytestmark = pytest.mark.slow


@pytest.fixture
def mnist_env(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DLSPEC_DATA", str(mnist_dir.parent))
    monkeypatch.setenv("DLSPEC_CACHE", str(tmp_path / "cache"))  # never touch ~/.cache


def test_churn_branches_on_the_churn_table(tmp_path, churn_csv):
    """Numeric and categorical columns on two branches, concatenated (measured 0.860)."""
    result = dlspec.train(SPECS / "churn_branches.yaml", [f"data.source={churn_csv}"],
                          run_dir=tmp_path / "run")
    assert result.metrics["test"]["accuracy"] >= 0.85, result.metrics["test"]
    assert result.metrics["export_parity"]["max_abs_diff"] < 1e-4


def test_transfer_from_digits_0_4_beats_scratch_on_few_labels_of_5_9(tmp_path, mnist_env):
    """Measured (seed 0): base 99.75 %; 500 labels 95.3 % (scratch 94.8 %); 100 labels
    90.5 % against 87.6 % from scratch."""
    base = dlspec.train(SPECS / "mnist_digits04.yaml", run_dir=tmp_path / "base")
    assert base.metrics["test"]["accuracy"] >= 0.99, base.metrics["test"]
    start = [f"model.init_from.run={tmp_path / 'base'}"]
    scratch = ["model.init_from=", "train.params=[]"]

    def accuracy(overrides: list[str], name: str) -> float:
        result = dlspec.train(SPECS / "mnist_digits59.yaml", overrides,
                              run_dir=tmp_path / name)
        assert result.metrics["classes"] == [5, 6, 7, 8, 9]
        return result.metrics["test"]["accuracy"]

    assert accuracy(start, "transfer500") >= 0.945
    few = ["data.subset.train=100"]
    transfer, alone = accuracy([*start, *few], "transfer100"), accuracy([*scratch, *few],
                                                                        "scratch100")
    assert transfer >= alone + 0.01, (transfer, alone)


@pytest.mark.skipif(os.environ.get("DLSPEC_LONG") != "1",
                    reason="about four minutes: set DLSPEC_LONG=1 to train mnist_residual")
def test_mnist_residual_on_mnist(tmp_path, mnist_env):
    """A residual block in the MNIST CNN (measured 99.52 %)."""
    result = dlspec.train(SPECS / "mnist_residual.yaml", run_dir=tmp_path / "run")
    assert result.metrics["test"]["rows"] == 10000
    assert result.metrics["test"]["accuracy"] >= 0.992, result.metrics["test"]
