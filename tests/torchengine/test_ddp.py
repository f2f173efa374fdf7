"""DDP: two gloo workers follow one worker (rank r takes rows r, r+W, ... of each global
batch, DDP averages equal shares), rank 0 writes the NumPy engine's run directory, and a
spec or flag the torch engine cannot honour stops before any process starts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import dlspec
from dlspec.cli import app
from tests.conftest import SPECS

RUN_FILES = {"spec.lock.yaml", "weights.npz", "weights.json", "optimizer.npz", "metrics.json",
             "history.csv", "curve.svg", "model.onnx", "preprocess.json"}
BC = SPECS / "breast_cancer.yaml"
SMALL = ["train.epochs=2", "train.batch_size=16"]


def _weights(run) -> dict:
    with np.load(run / "weights.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="the torch engine needs torch (the torch extra)")


def test_two_workers_follow_one(tmp_path, torch):
    one = dlspec.train(BC, [*SMALL, "train.engine=torch"], run_dir=tmp_path / "one")
    two = dlspec.train(BC, [*SMALL, "train.engine=torch"], run_dir=tmp_path / "two",
                       workers=2)
    assert {p.name for p in two.run_dir.iterdir()} >= RUN_FILES
    a, b = _weights(one.run_dir), _weights(two.run_dir)
    assert a.keys() == b.keys()
    for k in a:   # float32: the all-reduce sums the two halves in another order
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)
    m1, m2 = (json.loads((r.run_dir / "metrics.json").read_text()) for r in (one, two))
    assert m2["steps"] == m1["steps"]
    assert m2["epochs_run"] == 2 and m2["export_parity"]
    assert len(two.fit.history) == 2
    assert abs(m2["test"]["accuracy"] - m1["test"]["accuracy"]) <= 0.02


def test_torch_run_directory_matches_numpys_names(tmp_path, torch):
    ours = dlspec.train(BC, SMALL, run_dir=tmp_path / "numpy")
    theirs = dlspec.train(BC, [*SMALL, "train.engine=torch"], run_dir=tmp_path / "torch")
    assert {p.name for p in ours.run_dir.iterdir()} == {p.name for p in theirs.run_dir.iterdir()}
    assert _weights(ours.run_dir).keys() == _weights(theirs.run_dir).keys()
    lock = (theirs.run_dir / "spec.lock.yaml").read_text()
    assert "engine: torch" in lock
    assert theirs.metrics["test"]["accuracy"] >= ours.metrics["test"]["accuracy"] - 0.03


def test_batch_that_does_not_divide_is_located(tmp_path):
    r = CliRunner().invoke(app, ["train", str(BC), "--engine", "torch", "--workers", "3",
                                 "--set", "train.batch_size=16", "--run-dir",
                                 str(tmp_path / "r")])
    assert r.exit_code != 0
    assert "--set train.batch_size=16" in r.output and "must divide by 3" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "r").exists()


def test_workers_need_the_torch_engine(tmp_path):
    r = CliRunner().invoke(app, ["train", str(BC), "--workers", "2", "--run-dir",
                                 str(tmp_path / "r")])
    assert r.exit_code != 0 and "--engine torch" in r.output


def test_missing_torch_names_the_extra(tmp_path, monkeypatch):
    import dlspec.torchengine as te

    monkeypatch.setattr(te, "torch_installed", lambda: False)
    r = CliRunner().invoke(app, ["train", str(BC), "--engine", "torch", "--run-dir",
                                 str(tmp_path / "r")])
    assert r.exit_code != 0
    assert "dlspec[torch]" in r.output and "--set train.engine=torch" in r.output


def test_engine_in_the_spec_is_located(tmp_path, monkeypatch):
    import dlspec.torchengine as te

    monkeypatch.setattr(te, "torch_installed", lambda: False)
    spec = tmp_path / "s.yaml"
    text = BC.read_text().replace("../examples", str(SPECS.parent / "examples"))
    spec.write_text(text.replace("train:\n", "train:\n  engine: torch\n", 1))
    r = CliRunner().invoke(app, ["train", str(spec), "--run-dir", str(tmp_path / "r")])
    assert r.exit_code != 0
    line = spec.read_text().splitlines().index("  engine: torch") + 1
    assert f"s.yaml:{line}:" in r.output


def test_no_torch_import_unless_asked_for():
    import subprocess
    import sys

    code = ("import sys, dlspec, dlspec.training, dlspec.cli, dlspec.torchengine, "
            "dlspec.torchengine.export, dlspec.torchengine.train_script; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(("args", "says"), [
    (["--to", "torch"], "-o DIR"),
    (["--to", "tf", "-o", "x"], "expected onnx or torch"),
])
def test_export_to_torch_usage_errors(args, says, tmp_path):
    r = CliRunner().invoke(app, ["export", str(tmp_path), *args])
    assert r.exit_code != 0 and says in r.output and "Traceback" not in r.output


def test_export_to_torch_needs_a_run(tmp_path):
    r = CliRunner().invoke(app, ["export", str(BC), "--to", "torch", "-o", str(tmp_path / "t")])
    assert r.exit_code != 0 and "trained run" in r.output


def test_two_workers_follow_one_on_token_ids(tmp_path, torch, sms_tsv):
    """A text spec: each rank takes its rows of the int64 token ids (never cast to float),
    and the embedding table's scatter-added gradients average as any other's."""
    spec = SPECS / "sms_spam_bag.yaml"
    small = ["train.epochs=1", "train.batch_size=128", "train.engine=torch",
             "train.early_stopping=null", f"data.source={sms_tsv}"]
    one = dlspec.train(spec, small, run_dir=tmp_path / "one")
    two = dlspec.train(spec, small, run_dir=tmp_path / "two", workers=2)
    a, b = _weights(one.run_dir), _weights(two.run_dir)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert two.metrics["steps"] == one.metrics["steps"] and two.metrics["export_parity"]


def test_another_rank_of_an_external_launch_ignores_rank_0s_run_directory(tmp_path,
                                                                           monkeypatch):
    # under torchrun, rank 0 may have written its first files before rank 1 starts: rank 1
    # writes nothing, so it must not refuse the folder (it did, 1 run in 3 on two cores)
    target = tmp_path / "run"
    target.mkdir()
    (target / "run.json").write_text("{}")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    trained = []
    monkeypatch.setattr("dlspec.torchengine.run.train_torch",
                        lambda *a, **k: trained.append(a[0].name))
    pytest.importorskip("torch", reason="the torch engine needs torch (the torch extra)")
    assert dlspec.train(BC, [*SMALL, "train.engine=torch"], run_dir=target) is None
    assert trained and [p.name for p in target.iterdir()] == ["run.json"]
