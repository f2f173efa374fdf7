"""dlspec predict --workers N: chunks run in N processes, each with its own onnxruntime
session, and the output is the one-process output, row for row, in input order."""

from __future__ import annotations

import os

import dlspec
from dlspec.runtime import parallel
from tests.runtime.conftest import cli


def test_two_workers_write_what_one_writes(cancer, cancer_csv, tmp_path):
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    assert cli("predict", cancer / "model.onnx", cancer_csv, "-o", one).exit_code == 0
    r = cli("predict", cancer / "model.onnx", cancer_csv, "-o", two, "--workers", "2",
            "--batch-size", "37")   # 16 chunks: many in flight, out of step
    assert r.exit_code == 0, r.output
    assert two.read_bytes() == one.read_bytes()


def test_each_worker_has_its_own_session(cancer):
    runner = parallel.ParallelRunner(cancer / "model.onnx", 2, "error", "error")
    try:
        pids = {runner.pool.submit(os.getpid).result() for _ in range(8)}
        sessions = list(runner.pool.map(_has_session, range(8)))
    finally:
        runner.close()
    assert os.getpid() not in pids and all(sessions)


def _has_session(_):
    return parallel._RUNNER is not None


def test_workers_refused_where_they_do_not_apply(cancer, cancer_csv, tmp_path):
    r = cli("predict", cancer, cancer_csv, "--backend", "numpy", "--workers", "2")
    assert r.exit_code != 0 and "--workers 2" in r.output and "Traceback" not in r.output
    r = cli("predict", cancer / "model.onnx", cancer_csv, "--workers", "0")
    assert r.exit_code != 0


def test_api_returns_the_row_count(cancer, cancer_csv, tmp_path):
    report = dlspec.predict(cancer / "model.onnx", cancer_csv, tmp_path / "p.csv", workers=2)
    assert report["rows"] == 569
