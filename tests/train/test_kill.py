"""Runs that survive being killed: ``dlspec train`` in a subprocess, killed with SIGKILL at
random moments (a checkpoint after every step, so many kills land inside a checkpoint
write), resumed each time, ends bit-identical to the run that was never killed; Ctrl-C
(SIGINT) checkpoints, says how to resume and exits 130.

DLSPEC_KILL_TRIALS=200 runs more kills than the 20 of every test run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import dlspec
from dlspec.checkpointing import interruptible
from dlspec.engine.state import TrainState
from tests.conftest import EXAMPLES, ROOT
from tests.train.test_resume import assert_same_run

TINY = f"""\
dlspec: 1
name: tiny
seed: 0
data: {{source: {EXAMPLES / "digits.npz"}, preprocess: [{{scale: 16}}], split: {{validation: 0.1}}}}
model:
  layers:
    - flatten:
    - dense: {{units: 16, activation: relu}}
    - dropout: 0.2
    - dense: {{units: 10, activation: softmax}}
train:
  loss: categorical_crossentropy
  optimizer: adam
  batch_size: 64
  epochs: 4
  metrics: [accuracy]
  early_stopping: {{patience: 1}}
  checkpoint: {{every_steps: 1, keep: 2}}
"""


def _cli(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "dlspec", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _latest(run: Path) -> str:
    try:
        return (run / "checkpoints" / "latest").read_text()
    except OSError:
        return ""


def _wait_for_checkpoint(proc: subprocess.Popen, run: Path, after: str = "",
                         timeout: float = 60) -> bool:
    """Until a checkpoint other than ``after`` is the newest (False: the process ended)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            return False
        now = _latest(run)
        if now and now != after:
            return True
        time.sleep(0.002)
    raise AssertionError("no checkpoint appeared")


def test_sigkill_at_random_moments_then_resume_is_exact(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY)
    straight = dlspec.train(spec, run_dir=tmp_path / "straight").run_dir
    run = tmp_path / "run"
    trials = int(os.environ.get("DLSPEC_KILL_TRIALS", "20"))
    rng = random.Random(17)
    kills = torn = 0
    args = ["train", str(spec), "--run-dir", str(run), "--quiet"]
    while True:
        proc = _cli(*args)
        if kills < trials and _wait_for_checkpoint(proc, run, _latest(run)):
            time.sleep(rng.uniform(0, 0.03))   # inside a step or a checkpoint write
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            if proc.returncode == -signal.SIGKILL:
                kills += 1
                torn += bool(list(run.rglob("*.tmp")))   # killed inside a write
            args = ["train", "--resume", str(run), "--quiet"]
            continue
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        if kills >= trials:
            break
        # finished before a kill landed: start a fresh run to kill
        run = tmp_path / f"run{kills}"
        args = ["train", str(spec), "--run-dir", str(run), "--quiet"]
    assert kills >= trials
    print(f"{kills} kills, {torn} of them inside a file write")
    assert_same_run(straight, run)


def test_ctrl_c_checkpoints_says_how_to_resume_and_exits_130(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("epochs: 4", "epochs: 30").replace(
        "early_stopping: {patience: 1}", "early_stopping: {patience: 100}").replace(
        "every_steps: 1", "every_steps: 0"))
    straight = dlspec.train(spec, run_dir=tmp_path / "straight").run_dir
    run = tmp_path / "run"
    proc = _cli("train", str(spec), "--run-dir", str(run), "--quiet")
    assert _wait_for_checkpoint(proc, run)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted at epoch ") and \
        line.endswith(f"; resume with: dlspec train --resume {run}"), err
    assert "Traceback" not in err and not (run / "weights.npz").exists()
    proc = _cli("train", "--resume", str(run), "--quiet")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip().splitlines()[-1] == str(run)
    assert_same_run(straight, run)


def test_a_second_ctrl_c_exits_at_once(tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY.replace("epochs: 4", "epochs: 500").replace(
        "early_stopping: {patience: 1}", "early_stopping: {patience: 1000}"))
    run = tmp_path / "run"
    proc = _cli("train", str(spec), "--run-dir", str(run), "--quiet")
    assert _wait_for_checkpoint(proc, run)
    # the first asks for a checkpoint after this step; the second, right behind it, stops
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert f"dlspec train --resume {run}" in err
    assert not list(run.rglob("*.tmp"))


def test_the_first_sigint_asks_the_second_raises():
    state = TrainState(0)
    before = signal.getsignal(signal.SIGINT)
    with interruptible(state):
        os.kill(os.getpid(), signal.SIGINT)
        assert state.stop   # the loop checkpoints after this step, then stops
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
