"""dlspec validate through the CLI: what it says when there is nothing to check, and the
data checks it shares with train and inspect."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()


def run(*args, env=None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_folder_without_specs_says_so(tmp_path):
    (tmp_path / "notes.txt").write_text("not a spec\n")
    for folder in (tmp_path, EXAMPLES.parent):
        r = run("validate", folder)
        assert r.exit_code == 1
        first = r.stderr.splitlines()[0]
        assert first.startswith(f"{folder}: no spec files found under this folder")
        assert "*.yaml and *.yml" in first
    r = run("validate", tmp_path, "--format", "json")
    assert r.exit_code == 1
    [item] = json.loads(r.stdout)
    assert item["file"] == str(tmp_path) and item["code"] == "no-specs"
    r = run("validate", tmp_path, "--format", "github")
    assert r.exit_code == 1 and r.stdout.startswith(f"::error file={tmp_path},")


def test_empty_folder_beside_a_good_spec(tmp_path):
    r = run("validate", tmp_path, SPECS / "breast_cancer.yaml")
    assert r.exit_code == 1
    assert f"{tmp_path}: no spec files found" in r.stderr
    assert f"ok {SPECS / 'breast_cancer.yaml'}" in r.stderr


TOY_SPEC = """\
dlspec: 1
name: toy
data:
  source: toy
  split: {validation: 0.0, stratify: false}
model:
  layers:
    - flatten:
    - dense: {units: 3, activation: softmax}
train: {loss: categorical_crossentropy, epochs: 1}
"""


def test_builtin_dataset_is_found_as_train_finds_it(tmp_path, monkeypatch):
    from dlspec.data.builtin import DATASETS
    from dlspec.inputs import load_dataset
    from dlspec.spec.load import load_spec
    from tests.data.test_builtin import publish, toy

    monkeypatch.setitem(DATASETS, "toy", toy("http://127.0.0.1:9"))  # never downloaded here
    monkeypatch.setenv("DLSPEC_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DLSPEC_DATA", raising=False)
    shared = tmp_path / "shared"
    (shared / "toy").mkdir(parents=True)
    publish(shared / "toy")
    spec = tmp_path / "toy.yaml"
    spec.write_text(TOY_SPEC)
    r = run("validate", spec)
    assert r.exit_code == 0, r.output
    assert f"ok {spec} (toy is not yet in $DLSPEC_DATA or the cache" in r.stderr
    monkeypatch.setenv("DLSPEC_DATA", str(shared))
    r = run("validate", spec)
    assert r.exit_code == 0, r.output
    assert r.stderr.strip() == f"ok {spec}"
    ds = load_dataset(load_spec(spec))  # what training reads, from the same place
    assert len(ds.y["train"]) == 5 and len(ds.y["test"]) == 2


SMS_SPEC = """\
dlspec: 1
name: sms
data:
  source: sms.csv
  target: label
  preprocess:
    - standardize: [length]
model:
  layers:
    - dense: {units: 1, activation: sigmoid}
train: {loss: binary_crossentropy, epochs: 1}
"""


def test_validate_checks_column_kinds_as_training_does(tmp_path):
    """A free-text column with no encoding: validate says what inspect and train say, at the
    data file's line, and points at the spec's place to fix."""
    rows = [("ham", 3, "123"), ("spam", 40, "Too late, I said: call 0800 now"),
            ("ham", 12, "ok see you")] * 5
    csv = tmp_path / "sms.csv"
    csv.write_text("label,length,message\n" + "".join(f'{a},{b},"{c}"\n' for a, b, c in rows))
    spec = tmp_path / "sms.yaml"
    spec.write_text(SMS_SPEC)
    said = ("column 'message': cannot parse 'Too late, I said: call 0800 now' as a number; "
            "if the column is categorical, encode it with onehot or label_encode (or drop it)")
    r = run("validate", spec)
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == f"{csv}:3: {said}; fix it at {spec}:6:3 (data.preprocess)"
    r = run("inspect", spec)  # the same check, on the training rows only
    assert r.exit_code == 1
    line, message = r.stderr.splitlines()[0].removeprefix(f"{csv}:").split(": ", 1)
    assert message == said and "Too late" in csv.read_text().splitlines()[int(line) - 1]
    r = run("validate", spec, "--set", "data.drop=[message]")
    assert r.exit_code == 0, r.output
    r = run("validate", spec, "--set", "data.preprocess=[{label_encode: [message]}]")
    assert r.exit_code == 0, r.output
    r = run("validate", spec, "--set", "data.target=message", "--set", "data.drop=[label]",
            "--set", "train.loss=mse")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == (
        f"{csv}:3: column 'message': cannot parse 'Too late, I said: call 0800 now' as a "
        "number; fix it at --set train.loss=mse (train.loss)")


def test_summary_counts_spec_files_not_flags(tmp_path):
    r = run("validate", SPECS / "breast_cancer.yaml", SPECS / "digits_cnn.yaml",
            "--set", "train.epochs=0")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[-1] == "2 problem(s) in 2 of 2 file(s)"
