"""Each command through Typer's CliRunner: exit codes, stdout/stderr lines, located errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from dlspec.cli import app
from dlspec.version import __version__
from tests.conftest import SPECS

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short breast-cancer run shared by the export/predict tests."""
    d = tmp_path_factory.mktemp("cli")
    r = run("train", SPECS / "breast_cancer.yaml", "--set", "train.epochs=3",
            "--run-dir", d / "run")
    assert r.exit_code == 0, r.output
    return d / "run"


def test_version():
    r = run("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"dlspec {__version__}"


def test_validate_good_specs():
    r = run("validate", *sorted(SPECS.glob("*.yaml")))
    assert r.exit_code == 0, r.output
    assert "ok" in r.stderr


def test_validate_folder_and_json_format(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((SPECS / "breast_cancer.yaml").read_text().replace("units: 16", "units: 0")
                   .replace("relu", "rleu", 1))
    r = run("validate", tmp_path, "--format", "json")
    assert r.exit_code == 1
    items = json.loads(r.stdout)
    line = 1 + bad.read_text().splitlines().index(
        "    - dense: {units: 0, activation: rleu, initializer: he_uniform}")
    assert [(i["line"], i["path"]) for i in items] == [
        (line, "model.layers[0].dense.units"), (line, "model.layers[0].dense.activation")]
    assert "did you mean 'relu'" in items[1]["message"]


def test_validate_text_shows_location_line_and_caret(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (SPECS / "breast_cancer.yaml").read_text()
    bad.write_text(text.replace("dropout: 0.2", "dropot: 0.2"))
    r = run("validate", bad)
    assert r.exit_code == 1
    first = r.stderr.splitlines()[0]
    line = 1 + bad.read_text().splitlines().index("    - dropot: 0.2")
    assert first.startswith(f"{bad}:{line}:7: model.layers[1].dropot: unknown layer type "
                            "'dropot' (did you mean 'dropout'?); expected one of: ")
    assert "^" in r.stderr and "Traceback" not in r.output


def test_validate_github_annotations(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((SPECS / "breast_cancer.yaml").read_text().replace("epochs: 100", "epochs: 0"))
    r = run("validate", bad, "--format", "github")
    assert r.exit_code == 1
    assert r.stdout.startswith(f"::error file={bad},line=")
    assert "train.epochs: must be >= 1, got 0" in r.stdout


def test_validate_missing_file_and_bad_override():
    r = run("validate", "nope.yaml")
    assert r.exit_code == 1 and "nope.yaml: cannot read the file" in r.stderr
    r = run("validate", SPECS / "breast_cancer.yaml", "--set", "train.epochs=many")
    assert r.exit_code == 1
    assert "--set train.epochs=many: train.epochs: expected an integer" in r.stderr


def test_schema_command_prints_the_schema():
    r = run("schema")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["title"].startswith("dlspec spec")


def test_inspect_spec():
    r = run("inspect", SPECS / "breast_cancer.yaml")
    assert r.exit_code == 0, r.output
    assert "dense_1" in r.stdout and "(N, 16)" in r.stdout and "641" in r.stdout


def test_train_prints_run_dir_last(tmp_path):
    r = run("train", SPECS / "breast_cancer.yaml", "--set", "train.epochs=2", "--quiet",
            "--run-dir", tmp_path / "r")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().splitlines()[-1] == str(tmp_path / "r")


def test_train_summary_has_confusion_matrix(tmp_path):
    r = run("train", SPECS / "breast_cancer.yaml", "--set", "train.epochs=2",
            "--run-dir", tmp_path / "r")
    assert r.exit_code == 0, r.output
    assert "confusion matrix" in r.stdout and "malignant" in r.stdout
    assert r.stdout.strip().splitlines()[-1] == str(tmp_path / "r")


def test_train_errors_are_located(tmp_path):
    r = run("train", SPECS / "breast_cancer.yaml", "--set", "data.source=missing.csv",
            "--run-dir", tmp_path / "r")
    assert r.exit_code == 1
    assert "--set data.source=missing.csv: data.source: data file not found" in r.stderr
    spec = tmp_path / "s.yaml"
    shutil.copy(SPECS / "breast_cancer.yaml", spec)
    spec.write_text(spec.read_text().replace("source: ../examples/data/breast_cancer.csv",
                                             f"source: {SPECS.parent}/examples/data/"
                                             "breast_cancer.csv").replace("target: diagnosis",
                                                                          "target: diagnosys"))
    r = run("train", spec, "--run-dir", tmp_path / "r")
    assert r.exit_code == 1
    assert f"{spec}:10:11: data.target: column 'diagnosys' is not in" in r.stderr
    assert "did you mean 'diagnosis'" in r.stderr


def test_train_refuses_existing_run_dir(trained):
    r = run("train", SPECS / "breast_cancer.yaml", "--run-dir", trained)
    assert r.exit_code == 1 and "already exists" in r.stderr


def test_bad_flag_is_usage_error():
    r = run("train", SPECS / "breast_cancer.yaml", "--epochs", "3")
    assert r.exit_code == 2


def test_export_and_predict_formats(trained, tmp_path, breast_cancer_csv):
    r = run("export", trained, "-o", tmp_path / "m.onnx")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == str(tmp_path / "m.onnx") and "parity" in r.stderr
    r = run("predict", tmp_path / "m.onnx", breast_cancer_csv)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "prob_benign,prob_malignant,predicted_diagnosis" and len(lines) == 570
    for ext in ("jsonl", "npy", "csv"):
        out = tmp_path / f"p.{ext}"
        r = run("predict", trained, breast_cancer_csv, "-o", out)
        assert r.exit_code == 0, r.output
        assert out.stat().st_size > 0 and "569 rows" in r.stderr
    first = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert set(first) == {"prob_benign", "prob_malignant", "predicted_diagnosis"}
    r = run("inspect", tmp_path / "m.onnx")
    assert r.exit_code == 0 and "mean_radius" in r.stdout and "probabilities" in r.stdout


def test_predict_numpy_backend_matches(trained, tmp_path, breast_cancer_csv):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert run("predict", trained, breast_cancer_csv, "-o", a).exit_code == 0
    assert run("predict", trained, breast_cancer_csv, "-o", b, "--backend", "numpy").exit_code == 0
    ra, rb = a.read_text().splitlines(), b.read_text().splitlines()
    assert ra[0] == rb[0] and len(ra) == len(rb) == 570
    for la, lb in zip(ra[1:], rb[1:], strict=True):
        pa, pb = la.split(","), lb.split(",")
        assert abs(float(pa[1]) - float(pb[1])) <= 1e-5 and pa[2] == pb[2]


def test_predict_bad_inputs_are_located(trained, tmp_path, breast_cancer_csv):
    text = breast_cancer_csv.read_text().splitlines()
    missing = tmp_path / "missing.csv"
    missing.write_text("\n".join(",".join(r.split(",")[1:]) for r in text) + "\n")
    r = run("predict", trained, missing)
    assert r.exit_code == 1
    assert f"{missing}:1: missing column(s) 'mean_radius'" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*text[:5], "abc" + text[5][text[5].index(","):], *text[6:]]) + "\n")
    r = run("predict", trained, bad, "-o", tmp_path / "out.csv")
    assert r.exit_code == 1
    assert f"{bad}:6: column 'mean_radius': cannot parse 'abc' as a number" in r.stderr
    assert not (tmp_path / "out.csv").exists()
    r = run("predict", trained, tmp_path / "nothing.csv")
    assert r.exit_code == 1 and "cannot read data file" in r.stderr
    r = run("predict", tmp_path / "nothing.onnx", breast_cancer_csv)
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_predict_cuda_without_provider(trained, breast_cancer_csv):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    r = run("predict", trained, breast_cancer_csv, "--device", "cuda")
    assert r.exit_code == 1
    assert "no CUDA provider" in r.stderr and "CPUExecutionProvider" in r.stderr


def test_export_of_a_non_run(tmp_path):
    r = run("export", tmp_path)
    assert r.exit_code == 1 and "not a complete run directory" in r.stderr


def test_validate_deep_exports_and_runs_each_network(tmp_path):
    r = run("validate", "--deep", SPECS / "breast_cancer.yaml")
    assert r.exit_code == 0, r.output
    spec = tmp_path / "s.yaml"
    spec.write_text((SPECS / "breast_cancer.yaml").read_text()
                    .replace("../examples/data/breast_cancer.csv",
                             str(SPECS.parent / "examples/data/breast_cancer.csv")))
    r = run("validate", "--deep", spec, "--set", "export.opset=21")
    assert r.exit_code == 0, r.output


def test_validate_refuses_a_model_too_big_for_the_memory_limit(tmp_path):
    r = run("validate", SPECS / "breast_cancer.yaml", "--max-memory", "1KiB")
    assert r.exit_code == 1
    assert "a training step needs about" in r.stderr and "more than the limit of 1.0 KiB" \
        in r.stderr
    r = run("validate", SPECS / "breast_cancer.yaml", "--max-memory", "lots")
    assert r.exit_code == 2


def test_doctor_reports_versions_and_providers():
    r = run("doctor")
    assert r.exit_code == 0, r.output
    for item in ("dlspec", "onnxruntime providers", "CUDA works", "BLAS", "numpy"):
        assert item in r.stdout


def test_evaluate_computes_metrics_through_the_contract(trained, tmp_path, breast_cancer_csv):
    import xml.etree.ElementTree as ET

    from sklearn.metrics import accuracy_score, confusion_matrix

    r = run("evaluate", trained, breast_cancer_csv, "--format", "json",
            "--picture", tmp_path / "cm.svg")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["rows"] == 569 and report["task"] == "binary"
    preds = tmp_path / "p.csv"
    assert run("predict", trained, breast_cancer_csv, "-o", preds).exit_code == 0
    predicted = [line.split(",")[-1] for line in preds.read_text().splitlines()[1:]]
    truth = [line.split(",")[-1] for line in breast_cancer_csv.read_text().splitlines()[1:]]
    assert report["metrics"]["accuracy"] == pytest.approx(accuracy_score(truth, predicted))
    assert report["confusion_matrix"] == confusion_matrix(
        truth, predicted, labels=["benign", "malignant"]).tolist()
    svg = ET.parse(tmp_path / "cm.svg").getroot()
    assert svg.tag.endswith("svg")
    r = run("evaluate", trained, breast_cancer_csv)
    assert r.exit_code == 0 and "accuracy" in r.stdout and "confusion matrix" in r.stdout


def test_evaluate_rejects_unknown_labels(trained, tmp_path, breast_cancer_csv):
    lines = breast_cancer_csv.read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:3], lines[3].rsplit(",", 1)[0] + ",unsure",
                              *lines[4:]]) + "\n")
    r = run("evaluate", trained, bad)
    assert r.exit_code == 1
    assert f"{bad}:4: 1 label(s) are not among the model's classes" in r.stderr


def test_a_model_with_external_data_is_refused(trained, tmp_path, breast_cancer_csv):
    import onnx

    model = onnx.load(str(trained / "model.onnx"))
    onnx.save_model(model, str(tmp_path / "ext.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    r = run("predict", tmp_path / "ext.onnx", breast_cancer_csv)
    assert r.exit_code == 1
    assert "external data" in r.stderr and "Traceback" not in r.output


def test_unwritable_outputs_are_user_errors(trained, tmp_path, breast_cancer_csv):
    missing = tmp_path / "no" / "such"
    r = run("export", trained, "-o", missing / "m.onnx")
    assert r.exit_code == 1 and "cannot write here" in r.stderr
    r = run("predict", trained, breast_cancer_csv, "-o", missing / "p.csv")
    assert r.exit_code == 1 and "does not exist" in r.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run("train", SPECS / "breast_cancer.yaml", "--run-dir", blocker / "run")
    assert r.exit_code == 1 and "cannot write here" in r.stderr
    assert "Traceback" not in r.output and "internal error" not in r.output


def _internal_error(monkeypatch):
    """dlspec.api.train raising what no dlspec code means to raise: a bug."""
    import dlspec.api

    def train(*args, **kwargs):
        raise Exception("a bug in the engine")  # noqa: TRY002 - a plain one, on purpose

    monkeypatch.setattr(dlspec.api, "train", train)


def test_an_internal_error_is_one_line_and_says_how_to_see_the_traceback(monkeypatch):
    _internal_error(monkeypatch)
    r = run("train", SPECS / "breast_cancer.yaml", "-q")
    assert r.exit_code == 70 and "Traceback" not in r.output
    assert r.stderr.startswith("internal error: Exception: a bug in the engine\n")
    assert "add --debug to the command" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["--debug", "train", SPECS / "breast_cancer.yaml", "-q"],
                                  ["train", SPECS / "breast_cancer.yaml", "-q", "--debug"],
                                  ["train", "--debug", SPECS / "breast_cancer.yaml", "-q"]],
                         ids=["before", "after", "between"])
def test_debug_before_or_after_the_command_shows_the_traceback(monkeypatch, args):
    """Regression: 'dlspec train SPEC --debug' answered 'No such option: --debug', though
    the internal-error message asked for --debug."""
    _internal_error(monkeypatch)
    r = run(*args)
    assert r.exit_code == 70, r.output
    assert "Traceback (most recent call last)" in r.stderr
    assert "Exception: a bug in the engine" in r.stderr



def _terminal_safe(text: str) -> bool:
    """Nothing a terminal would act on: no ESC, NUL, BEL, carriage return, ..."""
    return all(c == "\n" or c.isprintable() for c in text)


@pytest.mark.parametrize("seed", range(4))
def test_predict_on_random_bytes_echoes_the_line_escaped(trained, tmp_path, seed):
    """Regression: a file of random bytes was reported as 'not valid UTF-8', then its line
    was echoed raw, escape sequences and NULs included, to the terminal."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, 120, dtype=np.uint8).tobytes()
    data = tmp_path / "binary.csv"
    data.write_bytes(b"mean_radius,x\n1,\x1b[31m\x00\x07\x1b]0;title\x07\r" + noise + b"\n")
    r = run("predict", trained / "model.onnx", data)
    assert r.exit_code == 1, r.output
    assert "not valid UTF-8" in r.stderr and f"{data}:2:" in r.stderr
    assert _terminal_safe(r.stderr), repr(r.stderr)
    echoed = next(ln for ln in r.stderr.splitlines() if ln.startswith("2 | "))
    assert echoed.startswith(r"2 | 1,\x1b[31m\x00\x07\x1b]0;title\x07\r")


def test_a_spec_line_with_control_characters_is_echoed_escaped_with_the_caret_aligned(
        tmp_path):
    spec = tmp_path / "spec.yaml"
    text = (SPECS / "breast_cancer.yaml").read_text()
    spec.write_text(text.replace("name: breast_cancer", "name: breast\tcancer\x1b[2J\x07"))
    r = run("validate", spec)
    assert r.exit_code == 1 and _terminal_safe(r.stderr), repr(r.stderr)
    lines = r.stderr.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.endswith(r"name: breast\tcancer\x1b[2J\x07"))
    caret = lines[i + 1].index("^")
    col = int(re.match(rf"{re.escape(str(spec))}:\d+:(\d+):", lines[i - 1])[1])
    # the caret sits under the escaped form of the character the column names
    raw = "name: breast\tcancer\x1b[2J\x07"
    prefix = len(raw[:col - 1].encode("unicode_escape").decode())
    assert caret == lines[i].index("| ") + 2 + prefix, (lines[i - 1:i + 2], col)


@pytest.fixture
def odd_names_csv(tmp_path, breast_cancer_csv):
    """The breast-cancer table with a column and the classes renamed to Rich markup and
    terminal escape sequences."""
    text = breast_cancer_csv.read_text()
    text = text.replace("mean_radius", "[bold]radius").replace("benign", "[/bad]")
    path = tmp_path / "odd.csv"
    path.write_text(text.replace("malignant", "mal\x1b[31mignant"))
    return path


def test_names_from_the_data_are_printed_as_they_are(tmp_path, odd_names_csv):
    """Regression: a class named '[/bad]' ended training in 'internal error: MarkupError:
    closing tag '[/bad]' ... doesn't match any open tag', after the run was written."""
    r = run("train", SPECS / "breast_cancer.yaml", "--set", f"data.source={odd_names_csv}",
            "--set", "train.epochs=1", "--run-dir", tmp_path / "run")
    assert r.exit_code == 0, r.output
    assert _terminal_safe(r.output), repr(r.output)
    assert "[/bad]" in r.stdout and r"mal\x1b[31mignant" in r.stdout
    r = run("inspect", SPECS / "breast_cancer.yaml", "--set", f"data.source={odd_names_csv}")
    assert r.exit_code == 0, r.output
    assert "[bold]radius" in r.stdout and _terminal_safe(r.output)
    r = run("inspect", tmp_path / "run" / "model.onnx")
    assert r.exit_code == 0, r.output
    assert "[bold]radius" in r.stdout and _terminal_safe(r.output)
