"""dlspec export --to torch: model.py (imports only torch) with the run's weights computes
what the engine computes, and its train.py runs under torchrun with 2 gloo workers."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

import dlspec
from dlspec.cli import app
from tests.conftest import SPECS

torch = pytest.importorskip("torch", reason="the torch engine needs torch (the torch extra)")
pytest.importorskip("safetensors", reason="export --to torch writes safetensors")


def _load_model(folder):
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(folder))}",
                                                  folder / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("export")
    run = dlspec.train(SPECS / "breast_cancer.yaml", ["train.epochs=3"], run_dir=tmp / "run")
    r = CliRunner().invoke(app, ["export", str(run.run_dir), "--to", "torch", "-o",
                                 str(tmp / "torch")])
    assert r.exit_code == 0, r.output
    return run, tmp / "torch"


def test_model_py_imports_only_torch_and_matches_the_engine(exported):
    run, folder = exported
    tree = ast.parse((folder / "model.py").read_text())
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names} | {n.module.split(".")[0] for n in ast.walk(tree)
                                  if isinstance(n, ast.ImportFrom)}
    assert roots <= {"torch", "collections", "__future__"}, roots
    from safetensors.torch import load_file

    from dlspec.trained import load_run

    mod = _load_model(folder)
    model = mod.Model()
    model.load_state_dict(load_file(folder / "model.safetensors"))
    model.eval()
    loaded = load_run(run.run_dir)
    x = np.random.default_rng(0).standard_normal((50, *mod.INPUTS["features"])).astype(
        np.float32)
    _, want = loaded.net.forward(x)
    (got,) = model(torch.from_numpy(x)).values()
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-6)


def test_train_py_runs_under_torchrun_with_two_workers(exported, tmp_path):
    run, folder = exported
    from dlspec.inputs import load_dataset

    ds = load_dataset(run.spec)
    np.savez(tmp_path / "train.npz", **ds.x["train"], target=ds.y["train"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "train.py", "--data", str(tmp_path / "train.npz"), "--epochs", "2", "--out",
         str(tmp_path / "trained.safetensors")],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 2/2" in done.stdout
    from safetensors.torch import load_file

    trained, start = (load_file(p) for p in (tmp_path / "trained.safetensors",
                                             folder / "model.safetensors"))
    assert trained.keys() == start.keys()
    assert any(not torch.equal(trained[k], start[k]) for k in start)


def test_a_text_model_exports_its_masked_kernels(tmp_path, sms_tsv):
    """sms_spam_lstm trained by the torch engine: model.py carries the embedding, the
    lengths of the padded ids and the masked LSTM, takes the int64 token ids, computes
    the engine's output, and its train.py trains on them."""
    run = dlspec.train(SPECS / "sms_spam_lstm.yaml",
                       ["train.epochs=1", "train.batch_size=128", "train.engine=torch",
                        f"data.source={sms_tsv}"], run_dir=tmp_path / "run")
    r = CliRunner().invoke(app, ["export", str(run.run_dir), "--to", "torch", "-o",
                                 str(tmp_path / "torch")])
    assert r.exit_code == 0, r.output
    folder = tmp_path / "torch"
    source = (folder / "model.py").read_text()
    for op in ("embedding", "token_lengths", "lstm_masked"):
        assert f"OPS[{op!r}]" in source, op
    from safetensors.torch import load_file

    from dlspec.inputs import load_dataset
    from dlspec.trained import load_run

    mod = _load_model(folder)
    assert mod.TOKEN_IDS == ("message",)
    model = mod.Model()
    model.load_state_dict(load_file(folder / "model.safetensors"))
    model.eval()
    loaded = load_run(run.run_dir)
    ds = load_dataset(loaded.spec)
    ids = ds.x["test"]["message"][:64]
    assert ids.dtype == np.int64 and len(set((ids != 0).sum(axis=1))) > 1   # padded rows
    _, want = loaded.net.forward({"message": ids})
    (got,) = model(torch.from_numpy(ids)).values()
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-6)
    np.savez(tmp_path / "train.npz", message=ds.x["train"]["message"][:256],
             target=ds.y["train"][:256])
    done = subprocess.run(
        [sys.executable, "train.py", "--data", str(tmp_path / "train.npz"), "--epochs", "1",
         "--out", str(tmp_path / "trained.safetensors")],
        cwd=folder, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 1/1" in done.stdout
