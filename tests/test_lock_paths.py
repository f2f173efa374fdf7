"""spec.lock.yaml records its paths relative to its own folder: a checkout copied or cloned
elsewhere, runs included, trains again from the lock and exports its runs."""

from __future__ import annotations

import shutil

import yaml
from typer.testing import CliRunner

import dlspec
from dlspec.cli import app
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()


def test_lock_trains_again_from_a_copied_checkout(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "specs").mkdir(parents=True)
    (repo / "data").mkdir()
    (repo / "specs" / "bc.yaml").write_text((SPECS / "breast_cancer.yaml").read_text().replace(
        "../examples/data/breast_cancer.csv", "../data/bc.csv"))
    shutil.copy(EXAMPLES / "breast_cancer.csv", repo / "data" / "bc.csv")
    monkeypatch.chdir(repo)
    first = dlspec.train("specs/bc.yaml", ["train.epochs=2"])
    typed = dlspec.train("specs/bc.yaml", ["train.epochs=2", "data.source=data/bc.csv"])
    for run in (first.run_dir, typed.run_dir):
        lock = yaml.safe_load((run / "spec.lock.yaml").read_text())
        assert lock["data"]["source"] == "../../../data/bc.csv"
        assert str(tmp_path) not in (run / "spec.lock.yaml").read_text()

    clone = tmp_path / "clone"
    shutil.copytree(repo, clone, symlinks=True)
    shutil.rmtree(repo)  # nothing may point back at the first checkout
    monkeypatch.chdir(clone)
    lock = first.run_dir / "spec.lock.yaml"  # relative: runs/breast_cancer/<id>/spec.lock.yaml
    r = runner.invoke(app, ["train", str(lock), "--quiet", "--run-dir", "again"])
    assert r.exit_code == 0, r.output
    assert (clone / "again" / "weights.npz").read_bytes() == \
        (clone / first.run_dir / "weights.npz").read_bytes()
    r = runner.invoke(app, ["export", "runs/breast_cancer/latest", "-o", "bc.onnx"])
    assert r.exit_code == 0, r.output


def test_lock_paths_keep_builtin_names_and_every_path_key(tmp_path):
    from dlspec.spec.paths import relative_to

    data = {"source": "mnist", "format": "builtin",
            "test": {"source": "../t/x-idx3-ubyte", "format": "idx", "labels": "/abs/y"}}
    spec = {"data": data}
    relative_to(spec, tmp_path / "runs" / "m" / "id", tmp_path / "specs")
    assert data["source"] == "mnist"
    assert data["test"] == {"source": "../../../t/x-idx3-ubyte", "format": "idx",
                            "labels": f"{'../' * (len((tmp_path / 'runs/m/id').parts) - 1)}abs/y"}
