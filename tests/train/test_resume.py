"""Exact resume: a run interrupted (Ctrl-C, delivered as the signal) and resumed ends with
the weights, optimizer state, per-epoch history and metrics of the run that was never
interrupted, bit for bit; and what a resume refuses, each as one located message."""

from __future__ import annotations

import csv
import json
import os
import signal

import numpy as np
import pytest
from typer.testing import CliRunner

import dlspec
from dlspec.checkpointing import Checkpoints
from dlspec.cli import app
from dlspec.errors import TrainingInterrupted
from tests.conftest import EXAMPLES, SPECS

DIGITS = EXAMPLES / "digits.npz"

GAN_DIGITS = f"""\
dlspec: 1
name: gan_digits
seed: 0
data: {{source: {DIGITS}, preprocess: [{{scale: 16}}]}}
model:
  inputs:
    image: {{}}
    z: {{noise: {{normal: [8]}}}}
  blocks:
    disc:
      inputs: [x]
      nodes:
        flat: {{flatten: {{}}, from: x}}
        h: {{dense: {{units: 16, activation: leaky_relu}}}}
        drop: {{dropout: 0.3}}
        p: {{dense: {{units: 1, activation: sigmoid}}}}
  nodes:
    gen1: {{dense: {{units: 16, activation: leaky_relu}}, from: z}}
    gen2: {{dense: {{units: 64, activation: sigmoid}}}}
    fake: {{reshape: {{target_shape: [8, 8, 1]}}}}
    d_real: {{call: disc, from: image}}
    d_fake: {{call: disc, from: fake}}
  outputs: [fake]
train:
  recipe:
    gan: {{generator: "gen*", discriminator: "disc.*", real: d_real, fake: d_fake}}
  batch_size: 64
  epochs: 3
"""


def history(run) -> list[dict]:
    """history.csv without its wall-clock column (the one thing a resume cannot repeat)."""
    with open(run / "history.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def assert_same_run(a, b) -> None:
    with np.load(a / "weights.npz") as wa, np.load(b / "weights.npz") as wb:
        assert sorted(wa) == sorted(wb)
        for k in wa:
            assert np.array_equal(wa[k], wb[k]), k
    with np.load(a / "optimizer.npz") as oa, np.load(b / "optimizer.npz") as ob:
        assert sorted(oa) == sorted(ob) and len(oa) > 0
        for k in oa:
            assert np.array_equal(oa[k], ob[k]), k
    assert history(a) == history(b)
    ma, mb = (json.loads((r / "metrics.json").read_text()) for r in (a, b))
    ma.pop("training_seconds")
    mb.pop("training_seconds")
    assert ma == mb
    pictures = sorted(p.name for p in a.glob("*.png"))
    assert pictures == sorted(p.name for p in b.glob("*.png"))
    for name in pictures:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for run in (a, b):   # a finished run keeps no checkpoints, and no temporary file
        assert not list(run.rglob("*.tmp")) and not (run / "checkpoints").exists()


def interrupt_after(monkeypatch, saves: int) -> None:
    """Ctrl-C (the signal itself) right after the ``saves``-th checkpoint is written."""
    real = Checkpoints.save
    count = [0]

    def save(self, snap):
        real(self, snap)
        count[0] += 1
        if count[0] == saves:
            os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(Checkpoints, "save", save)


def straight_and_resumed(tmp_path, monkeypatch, spec, sets, saves: int):
    straight = dlspec.train(spec, sets, run_dir=tmp_path / "straight").run_dir
    interrupt_after(monkeypatch, saves)
    with pytest.raises(TrainingInterrupted) as info:
        dlspec.train(spec, sets, run_dir=tmp_path / "cut")
    assert str(info.value).endswith(f"resume with: dlspec train --resume {tmp_path / 'cut'}")
    assert not (tmp_path / "cut" / "weights.npz").exists()
    resumed = dlspec.train(resume=tmp_path / "cut").run_dir
    assert_same_run(straight, resumed)
    return straight, resumed, info.value


def test_churn_resumes_inside_an_epoch(tmp_path, monkeypatch, churn_csv):
    _, _, e = straight_and_resumed(
        tmp_path, monkeypatch, SPECS / "churn.yaml",
        [f"data.source={churn_csv}", "train.epochs=3", "train.checkpoint.every_steps=170"],
        saves=3)
    assert (e.epoch, e.step) == (1, 510)    # the third checkpoint, inside epoch 1


def test_digits_cnn_resumes_at_an_epoch_end(tmp_path, monkeypatch):
    """Augmentation, dropout, early stopping's best weights and counters, metrics."""
    _, _, e = straight_and_resumed(tmp_path, monkeypatch, SPECS / "digits_cnn.yaml",
                                   ["train.epochs=4"], saves=2)
    assert e.epoch == 2


def test_airline_lstm_resumes_inside_an_epoch(tmp_path, monkeypatch, airline_csv):
    straight_and_resumed(tmp_path, monkeypatch, SPECS / "airline_lstm.yaml",
                         [f"data.source={airline_csv}", "train.epochs=5",
                          "train.checkpoint.every_steps=4"], saves=4)


def test_gan_resumes_every_optimizer(tmp_path, monkeypatch):
    spec = tmp_path / "gan.yaml"
    spec.write_text(GAN_DIGITS)
    straight, _, _ = straight_and_resumed(tmp_path, monkeypatch, spec,
                                          ["train.checkpoint.every_steps=7"], saves=4)
    with np.load(straight / "optimizer.npz") as z:   # both, namespaced
        assert {k.split("/")[0] for k in z} == {"d", "g"}


def test_resuming_twice_and_from_the_final_checkpoint(tmp_path, monkeypatch):
    """Interrupted twice; and a run killed after training, before its results, only
    writes them."""
    sets = ["train.epochs=3", "train.checkpoint.every_steps=9"]
    spec = SPECS / "digits_cnn.yaml"
    straight = dlspec.train(spec, sets, run_dir=tmp_path / "straight").run_dir
    interrupt_after(monkeypatch, 2)
    with pytest.raises(TrainingInterrupted):
        dlspec.train(spec, sets, run_dir=tmp_path / "cut")
    interrupt_after(monkeypatch, 5)
    with pytest.raises(TrainingInterrupted):
        dlspec.train(resume=tmp_path / "cut")
    monkeypatch.undo()
    assert_same_run(straight, dlspec.train(resume=tmp_path / "cut").run_dir)


def test_resume_refusals(tmp_path, monkeypatch):
    runner = CliRunner()
    spec = tmp_path / "digits.yaml"
    spec.write_text((SPECS / "digits_cnn.yaml").read_text().replace(
        "../examples/data/digits.npz", str(DIGITS)))
    interrupt_after(monkeypatch, 1)
    r = runner.invoke(app, ["train", str(spec), "--set", "train.epochs=3", "--run-dir",
                            str(tmp_path / "run"), "--quiet"])
    monkeypatch.undo()
    assert r.exit_code == 130, r.output
    assert f"resume with: dlspec train --resume {tmp_path / 'run'}" in r.stderr
    # the spec file changed since: the change is named where it is
    spec.write_text(spec.read_text().replace("lr: 0.002", "lr: 0.003"))
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "run")])
    assert r.exit_code == 1
    assert f"{spec}:" in r.stderr and "train.optimizer.adam.lr: changed since the run " \
        "started: 0.002 then, 0.003 now" in r.stderr, r.stderr
    # an override is part of the spec too
    spec.write_text(spec.read_text().replace("lr: 0.003", "lr: 0.002"))
    r = runner.invoke(app, ["train", str(spec), "--set", "train.epochs=4", "--resume",
                            str(tmp_path / "run")])
    assert r.exit_code == 1 and "--set train.epochs=4: train.epochs: changed" in r.stderr
    # neither a spec nor a run
    r = runner.invoke(app, ["train"])
    assert r.exit_code == 1 and "give a spec to train, or --resume RUN_DIR" in r.stderr
    # not a run
    r = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert r.exit_code == 1 and "not a run directory" in r.stderr
    assert "Traceback" not in r.output
    # resumed to the end, then resumed again: nothing to do, and said so
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "--resume", str(tmp_path / "run")])
    assert r.exit_code == 0 and "this run is finished; nothing to resume" in r.stderr


def test_changed_data_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "digits.npz"
    data.write_bytes(DIGITS.read_bytes())
    interrupt_after(monkeypatch, 1)
    with pytest.raises(TrainingInterrupted):
        dlspec.train(SPECS / "digits_cnn.yaml", [f"data.source={data}", "train.epochs=2"],
                     run_dir=tmp_path / "run")
    monkeypatch.undo()
    with np.load(DIGITS) as z:
        np.savez(data, x=z["x"][::-1], y=z["y"][::-1])
    r = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "run")])
    assert r.exit_code == 1
    assert f"{data}: the data changed since the run started" in r.stderr, r.stderr


def test_export_and_runs_list_of_an_interrupted_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    interrupt_after(monkeypatch, 2)
    with pytest.raises(TrainingInterrupted):
        dlspec.train(SPECS / "digits_cnn.yaml", ["train.epochs=4"], runs_root=runs)
    monkeypatch.undo()
    dlspec.train(SPECS / "digits_cnn.yaml", ["train.epochs=1"], runs_root=runs)
    runner = CliRunner()
    cut = next(p for p in (runs / "digits_cnn").iterdir() if (p / "checkpoints").is_dir())
    r = runner.invoke(app, ["export", str(cut), "-o", str(tmp_path / "m.onnx")])
    assert r.exit_code == 0, r.output
    assert "the run is unfinished (interrupted at epoch 2): this is the best weights so " \
        "far (epoch 2)" in r.stderr
    r = runner.invoke(app, ["runs", "--root", str(runs), "--format", "json"])
    rows = json.loads(r.stdout)
    assert [row["state"] for row in rows] == ["finished", "interrupted at epoch 2"]
    assert rows[1]["epochs"] == 2 and rows[1]["best_validation"][0] == "val_accuracy"
    assert rows[0]["test"][0] == "accuracy"
    r = runner.invoke(app, ["runs", "digits_cnn", "--root", str(runs)])
    assert r.exit_code == 0 and "interrupted at epoch 2" in r.stdout


def test_a_diverged_run_keeps_its_last_good_checkpoint(tmp_path):
    from dlspec.checkpoint import latest_checkpoint, read_checkpoint
    from dlspec.errors import TrainingDiverged
    from tests.test_end_to_end import _regression

    with pytest.raises(TrainingDiverged) as info:
        dlspec.train(_regression(tmp_path, 10), ["train.checkpoint.every_steps=1"],
                     run_dir=tmp_path / "run")
    assert "diverged at epoch 1, step" in str(info.value)
    assert "its last good checkpoint (epoch 0, step" in str(info.value)
    _, arrays = read_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert np.isfinite(arrays["flat"]).all()
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "diverged"


DBN_DIGITS = f"""\
dlspec: 1
name: dbn_digits
seed: 0
data: {{source: {DIGITS}, preprocess: [{{scale: 16}}], split: {{validation: 0.1}}}}
model:
  nodes:
    flat: {{flatten: {{}}}}
    h1: {{dense: {{units: 24, activation: sigmoid}}}}
    h2: {{dense: {{units: 16, activation: sigmoid}}}}
    out: {{dense: {{units: 10, activation: softmax}}}}
train:
  loss: categorical_crossentropy
  optimizer: {{sgd: {{lr: 0.1, momentum: 0.9}}}}
  recipe:
    dbn: {{layers: [h1, h2], epochs: 2, cd_k: 1, lr: 0.05, momentum: 0.5}}
  batch_size: 32
  epochs: 3
  metrics: [accuracy]
  early_stopping: {{patience: 2}}
"""


def test_dbn_interrupted_inside_an_rbm_phase_repeats_it_exactly(tmp_path, monkeypatch):
    """RBM phases checkpoint at their end: Ctrl-C inside the second one stops at once,
    the resume repeats it from the first one's checkpoint; the filters drawn from the
    first RBM come back from the checkpoint."""
    spec = tmp_path / "dbn.yaml"
    spec.write_text(DBN_DIGITS)
    _, resumed, e = straight_and_resumed(tmp_path, monkeypatch, spec, [], saves=1)
    assert e.epoch == 3   # the second RBM's first epoch
    assert (resumed / "filters_h1.png").is_file()


def test_checkpoint_settings_may_change_on_resume(tmp_path, monkeypatch):
    """train.checkpoint is not part of what a spec trains (nor of its SHA-256)."""
    spec = SPECS / "digits_cnn.yaml"
    straight = dlspec.train(spec, ["train.epochs=3"], run_dir=tmp_path / "straight").run_dir
    interrupt_after(monkeypatch, 1)
    with pytest.raises(TrainingInterrupted):
        dlspec.train(spec, ["train.epochs=3"], run_dir=tmp_path / "cut")
    monkeypatch.undo()
    resumed = dlspec.train(spec, ["train.epochs=3", "train.checkpoint={every_steps: 5, "
                                  "keep: 1}"], resume=tmp_path / "cut").run_dir
    assert_same_run(straight, resumed)
