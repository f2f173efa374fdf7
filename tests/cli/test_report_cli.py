"""``dlspec report`` and train's report.html through the CLI: paths printed, every user
mistake one located message and exit code 1, never a traceback."""

from __future__ import annotations

import os
import re

import pytest
from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import SPECS
from tests.report.fake_runs import fake_run

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_report_of_one_run_goes_into_it(tmp_path):
    r = fake_run(tmp_path / "r")
    res = run("report", r)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1] == str(r / "report.html")
    assert (r / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_report_follows_latest_and_writes_where_told(tmp_path):
    r = fake_run(tmp_path / "toy" / "20260101-000000-abcd")
    os.symlink(r.name, tmp_path / "toy" / "latest")
    res = run("report", tmp_path / "toy" / "latest", "-o", tmp_path / "out.html")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out.html").is_file() and not (r / "report.html").exists()


def test_several_runs_compare_and_need_an_output(tmp_path):
    a, b = fake_run(tmp_path / "a"), fake_run(tmp_path / "b")
    res = run("report", a, b)
    assert res.exit_code == 1
    assert "2 runs make a comparison page: name its file with -o" in res.output
    assert "Traceback" not in res.output
    res = run("report", a, b, "-o", tmp_path / "cmp.html")
    assert res.exit_code == 0, res.output
    assert 'id="differences"' in (tmp_path / "cmp.html").read_text()


@pytest.mark.parametrize("case", ["missing", "not-a-run", "damaged-metrics", "no-metrics",
                                  "unwritable", "folder-output"])
def test_user_mistakes_are_one_located_message(tmp_path, case):
    r = fake_run(tmp_path / "r")
    args, want = [r], ""
    if case == "missing":
        args, want = [tmp_path / "nope"], f"{tmp_path / 'nope'}: not a run directory"
    elif case == "not-a-run":
        (tmp_path / "plain").mkdir()
        args, want = [tmp_path / "plain"], "not a complete run directory: missing"
    elif case == "damaged-metrics":
        (r / "metrics.json").write_text('{"name": "toy", ')
        want = f"{r / 'metrics.json'}: metrics.json is damaged (not JSON"
    elif case == "no-metrics":
        (r / "metrics.json").unlink()
        want = "not a complete run directory: missing metrics.json"
    elif case == "unwritable":
        args, want = [r, "-o", tmp_path / "no" / "such" / "dir.html"], "cannot write here"
    elif case == "folder-output":
        args, want = [r, "-o", tmp_path], "is a folder: give the file to write"
    res = run("report", *args)
    assert res.exit_code == 1, res.output
    assert want in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_train_writes_and_lists_the_report_unless_told_not_to(tmp_path):
    res = run("train", SPECS / "breast_cancer.yaml", "--set", "train.epochs=2",
              "--run-dir", tmp_path / "with")
    assert res.exit_code == 0, res.output
    assert f"report: {tmp_path / 'with' / 'report.html'}" in res.output
    page = (tmp_path / "with" / "report.html").read_text()
    assert 'id="confusion"' in page and "breast_cancer" in page
    # the page train wrote is the page `dlspec report` writes from the run directory
    assert run("report", tmp_path / "with", "-o", tmp_path / "again.html").exit_code == 0
    again = (tmp_path / "again.html").read_text()
    assert re.findall(r'<section id="(\w+)"', page) == re.findall(r'<section id="(\w+)"', again)
    assert re.findall(r"<svg.*?</svg>", page) == re.findall(r"<svg.*?</svg>", again)
    res = run("train", SPECS / "breast_cancer.yaml", "--set", "train.epochs=2",
              "--run-dir", tmp_path / "without", "--no-report")
    assert res.exit_code == 0 and "report:" not in res.output
    assert not (tmp_path / "without" / "report.html").exists()


def test_report_of_latest_is_written_into_the_run_it_names(tmp_path):
    r = fake_run(tmp_path / "toy" / "20260101-000000-abcd")
    os.symlink(r.name, tmp_path / "toy" / "latest")
    res = run("report", tmp_path / "toy" / "latest")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1] == str(r / "report.html")
