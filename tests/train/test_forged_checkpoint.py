"""Checkpoint files are untrusted input: each forged or damaged one makes ``dlspec train
--resume`` exit 1 with one message naming the file, within a second, allocating little
(every .npy header is checked against the stored bytes before anything is allocated)."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import tracemalloc
import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

import dlspec
from dlspec.checkpoint import latest_checkpoint
from dlspec.checkpointing import Checkpoints
from dlspec.cli import app
from dlspec.errors import TrainingInterrupted
from tests.conftest import SPECS


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    """A digits CNN run interrupted after its first checkpoint (epoch 1)."""
    tmp = tmp_path_factory.mktemp("forged")
    real = Checkpoints.save

    def save(self, snap):
        real(self, snap)
        os.kill(os.getpid(), signal.SIGINT)
    Checkpoints.save = save
    try:
        with pytest.raises(TrainingInterrupted):
            dlspec.train(SPECS / "digits_cnn.yaml", ["train.epochs=3"], run_dir=tmp / "run")
    finally:
        Checkpoints.save = real
    return tmp / "run"


def _npy(arr: np.ndarray, *, shape=None, descr=None, pickle=False) -> bytes:
    """An .npy member, its header optionally lying about shape or dtype."""
    buf = io.BytesIO()
    if shape is None and descr is None:
        np.lib.format.write_array(buf, arr, allow_pickle=pickle)
        return buf.getvalue()
    header = {"descr": descr or arr.dtype.str, "fortran_order": False,
              "shape": tuple(shape if shape is not None else arr.shape)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + arr.tobytes()


def _rewrite(path, change) -> None:
    """Rebuild a checkpoint zip with ``change(members: dict[name, bytes])`` applied."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    change(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _manifest(members) -> dict:
    return json.loads(members["manifest.json"])


def _set_manifest(members, m) -> None:
    members["manifest.json"] = json.dumps(m).encode()


def object_array(members):
    members["flat.npy"] = _npy(np.array([1, "a", None], dtype=object), pickle=True)


def huge_shape(members):
    """Header and manifest agree on 2**40 floats; 16 bytes are stored."""
    members["flat.npy"] = _npy(np.zeros(4, np.float32), shape=(1 << 40,))
    m = _manifest(members)
    m["arrays"]["flat"]["shape"] = [1 << 40]
    _set_manifest(members, m)


def lying_header(members):
    """The header says float64 over the same bytes: the manifest disagrees."""
    members["flat.npy"] = _npy(np.zeros(8, np.float32), descr="<f8", shape=(4,))


def wrong_sha(members):
    data = bytearray(members["flat.npy"])
    data[-1] ^= 0xFF
    members["flat.npy"] = bytes(data)


def missing_array(members):
    del members["flat.npy"]


def not_json(members):
    members["manifest.json"] = b"{not json"


def no_state(members):
    m = _manifest(members)
    del m["state"]["position"]
    _set_manifest(members, m)


def weights_of_another_model(members):
    """A consistent file whose weights are not this spec's size."""
    arr = np.zeros(7, np.float32)
    members["flat.npy"] = _npy(arr)
    m = _manifest(members)
    import hashlib
    m["arrays"]["flat"] = {"dtype": "<f4", "shape": [7],
                           "sha256": hashlib.sha256(arr.tobytes()).hexdigest()}
    _set_manifest(members, m)


def position_out_of_range(members):
    m = _manifest(members)
    m["state"]["position"]["phase"] = 5
    _set_manifest(members, m)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _garbage(path):
    path.write_bytes(os.urandom(4096))


CASES = {f.__name__: f for f in (object_array, huge_shape, lying_header, wrong_sha,
                                 missing_array, not_json, no_state, weights_of_another_model,
                                 position_out_of_range)}
LATE = ("weights_of_another_model", "position_out_of_range")   # found once the network is built
FILE_CASES = {"truncated": _truncate, "not_a_zip": _garbage}


@pytest.mark.parametrize("case", [*CASES, *FILE_CASES, "pointer_to_nothing"])
def test_forged_checkpoint_exits_1_fast_and_small(cut_run, tmp_path, case):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(cut_run, run)
    ckpt = latest_checkpoint(run)
    if case in CASES:
        _rewrite(ckpt, CASES[case])
    elif case in FILE_CASES:
        FILE_CASES[case](ckpt)
    else:
        (run / "checkpoints" / "latest").write_text("ckpt-999999.zip")
    tracemalloc.start()
    start = time.perf_counter()
    r = CliRunner().invoke(app, ["train", "--resume", str(run)])
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.output, r.stderr
    assert lines[0].startswith(str(run / "checkpoints" / "ckpt-")), lines[0]
    assert "checkpoint" in lines[0]
    assert seconds < (5.0 if case in LATE else 1.0), seconds
    assert peak < 50 << 20, peak
    print(f"{case}: {seconds:.3f} s, peak {peak / 2**20:.1f} MiB: {lines[0]}")
