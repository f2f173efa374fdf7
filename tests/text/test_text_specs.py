"""Text specs end to end on a small tab-separated file written here: validate, train,
the run's vocabulary and lock, export and predict on raw strings (onnxruntime against the
engine on hard messages), and a located message for every bad input."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import yaml

import dlspec
from dlspec.cli import app
from dlspec.data.text import TextEncoder
from dlspec.errors import DlspecError

SPAM = ["WINNER!! You have won a FREE prize, call 0906 now", "Free entry: txt WIN to 87121",
        "URGENT! claim your FREE cash prize now", "You won! Call to claim the prize"]
HAM = ["Ok lar... joking wif u oni", "Are we still on for lunch?", "see you at 5, ok?",
       "I'll call you later tonight", "Sorry, I am in a meeting", "Ünïcödé café tonight"]
HARD = ["", "   ", "\t\n \r\n", "ΣΑΣ İstanbul straße 😀 日本語", "zzzz qqqq xxxx", "a" * 3000,
        " ".join(["free"] * 300), "!!!...???", "FREE, free; Free: fReE"]


def _write_data(path, rows: int = 120) -> None:
    rng = np.random.default_rng(0)
    with path.open("w", encoding="utf-8", newline="") as f:
        for i in range(rows):
            spam = i % 4 == 0
            text = str(rng.choice(SPAM if spam else HAM))
            f.write(f"{'spam' if spam else 'ham'}\t{text}\n")


def _spec(tmp_path, layers: list, **changes) -> object:
    _write_data(tmp_path / "sms.tsv")
    doc = {"dlspec": 1, "name": "sms_small", "seed": 0,
           "data": {"source": "sms.tsv",
                    "format": {"delimiter": "\t", "header": False,
                               "columns": ["label", "message"], "quote": None},
                    "target": "label",
                    "text": {"message": {"max_length": 12, "vocab": {"min_count": 1}}},
                    "split": {"test": 0.2, "validation": 0.1, "stratify": True}},
           "model": {"layers": layers},
           "train": {"loss": "binary_crossentropy", "optimizer": {"adam": {"lr": 0.01}},
                     "batch_size": 16, "epochs": 3, "metrics": ["accuracy"]}}
    for key, value in changes.items():
        section, name = key.split("__")
        doc.setdefault(section, {})[name] = value
    path = tmp_path / "sms.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


BAG = [{"embedding": {"input_dim": 64, "output_dim": 8}}, {"global_avg_pool1d": None},
       {"dense": {"units": 1, "activation": "sigmoid"}}]
LSTM = [{"embedding": {"input_dim": 64, "output_dim": 6}}, {"lstm": {"units": 5}},
        {"dense": {"units": 1, "activation": "sigmoid"}}]
GRU2 = [{"embedding": {"input_dim": 64, "output_dim": 6}},
        {"gru": {"units": 4, "return_sequences": True}}, {"simple_rnn": {"units": 3}},
        {"dense": {"units": 1, "activation": "sigmoid"}}]


@pytest.mark.parametrize("layers", [BAG, LSTM, GRU2], ids=["bag", "lstm", "gru_rnn"])
def test_trains_exports_and_predicts_raw_strings_as_the_engine(tmp_path, layers):
    path = _spec(tmp_path, layers)
    result = dlspec.train(path, run_dir=tmp_path / "run")
    run = result.run_dir
    assert result.metrics["export_parity"]["max_abs_diff"] < 1e-5
    # the vocabulary: fitted on the training rows only, readable, and in the lock
    pre = json.loads((run / "preprocess.json").read_text())["inputs"]["message"]
    text = (run / "vocabulary.txt").read_text(encoding="utf-8")
    assert TextEncoder.parse_vocabulary(text) == (pre["tokens"], pre["counts"])
    lock = yaml.safe_load((run / "spec.lock.yaml").read_text(encoding="utf-8"))
    assert lock["lock"]["vocabulary_sha256"] == pre["sha256"]
    assert lock["export"]["opset"] == 20
    # raw strings in: onnxruntime and the engine agree on messages made to break it
    data = tmp_path / "hard.jsonl"   # JSON Lines: any string, tabs and newlines included
    data.write_text("".join(json.dumps({"message": m}) + "\n" for m in HARD),
                    encoding="utf-8")
    model = tmp_path / "sms.onnx"
    dlspec.export(run, model)
    dlspec.predict(model, data, tmp_path / "ort.csv")
    dlspec.predict(run, data, tmp_path / "np.csv", backend="numpy")
    rows = [list(csv.reader((tmp_path / f).open(encoding="utf-8"))) for f in ("ort.csv",
                                                                             "np.csv")]
    assert len(rows[0]) == len(HARD) + 1
    got, want = (np.array([r[:2] for r in rs[1:]], dtype=np.float64) for rs in rows)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    assert [r[2] for r in rows[0]] == [r[2] for r in rows[1]]


def test_same_spec_same_weights_and_the_lock_refuses_another_vocabulary(tmp_path):
    path = _spec(tmp_path, LSTM)
    a = dlspec.train(path, run_dir=tmp_path / "a")
    b = dlspec.train(a.run_dir / "spec.lock.yaml", run_dir=tmp_path / "b")
    assert (a.run_dir / "weights.npz").read_bytes() == (b.run_dir / "weights.npz").read_bytes()
    lock = (a.run_dir / "spec.lock.yaml").read_text(encoding="utf-8")
    other = lock.replace("max_size: null", "max_size: 3")
    assert other != lock
    (a.run_dir / "other.lock.yaml").write_text(other, encoding="utf-8")
    with pytest.raises(DlspecError, match="vocabulary fitted on this data differs"):
        dlspec.train(a.run_dir / "other.lock.yaml", run_dir=tmp_path / "c")


def _validate(path):
    from typer.testing import CliRunner

    return CliRunner().invoke(app, ["validate", str(path)])


@pytest.mark.parametrize(("changes", "where", "text"), [
    ({"export__opset": 17}, "export.opset", "needs opset 20"),
    ({"data__features": ["message"]}, "data.features", "reads only its text column"),
    ({"data__target": "message"}, "data.text.message", "cannot also be the text column"),
])
def test_spec_mistakes_are_located(tmp_path, changes, where, text):
    result = _validate(_spec(tmp_path, BAG, **changes))
    assert result.exit_code == 1, result.output
    assert "sms.yaml:" in result.output and text in result.output, result.output
    assert "Traceback" not in result.output


def test_unknown_tokenizer_is_a_schema_error(tmp_path):
    path = _spec(tmp_path, BAG)
    path.write_text(path.read_text().replace("max_length: 12", "max_length: 12, tokenizer: "
                                             "regex"), encoding="utf-8")
    result = _validate(path)
    assert result.exit_code == 1 and "tokenizer" in result.output, result.output


def test_an_embedding_smaller_than_the_vocabulary_is_located(tmp_path):
    layers = [{"embedding": {"input_dim": 5, "output_dim": 4}}, *BAG[1:]]
    with pytest.raises(DlspecError) as info:
        dlspec.train(_spec(tmp_path, layers), run_dir=tmp_path / "run")
    msg = str(info.value)
    assert "sms.yaml:" in msg and "input_dim" in msg and "vocabulary" in msg, msg


def test_a_missing_text_column_is_located(tmp_path):
    path = _spec(tmp_path, BAG)
    path.write_text(path.read_text().replace("message:", "messages:"), encoding="utf-8")
    with pytest.raises(DlspecError) as info:
        dlspec.train(path, run_dir=tmp_path / "run")
    msg = str(info.value)
    assert "sms.tsv" in msg and "messages" in msg, msg


def test_predict_refuses_a_missing_column_and_a_non_string(tmp_path):
    run = dlspec.train(_spec(tmp_path, BAG), run_dir=tmp_path / "run").run_dir
    model = tmp_path / "m.onnx"
    dlspec.export(run, model)
    (tmp_path / "missing.jsonl").write_text('{"text": "hi"}\n', encoding="utf-8")
    (tmp_path / "number.jsonl").write_text('{"message": "hi"}\n{"message": 5}\n',
                                           encoding="utf-8")
    with pytest.raises(DlspecError, match=r"missing.jsonl:1: .*message"):
        dlspec.predict(model, tmp_path / "missing.jsonl", tmp_path / "o.csv")
    with pytest.raises(DlspecError, match=r"number.jsonl:2: column 'message': expected text"):
        dlspec.predict(model, tmp_path / "number.jsonl", tmp_path / "o.csv")
