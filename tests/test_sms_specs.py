"""specs/sms_spam_bag.yaml and specs/sms_spam_lstm.yaml on the SMS Spam Collection (in
../shared/data; skipped with the reason when absent), on small settings: they train,
export with the tokenizer inside (the parity gate passed on held-out messages) and
classify spam well above the 87 % of always answering ham."""

from __future__ import annotations

import pytest

import dlspec
from tests.conftest import SPECS


@pytest.mark.parametrize(("spec", "overrides", "accuracy"), [
    ("sms_spam_bag.yaml", ["train.epochs=3"], 0.95),
    ("sms_spam_lstm.yaml", ["train.epochs=1", "data.text.message.max_length=20",
                            "model.layers[1].lstm.units=8"], 0.93),
])
def test_sms_specs_train_and_export(tmp_path, sms_tsv, spec, overrides, accuracy):
    spec = dlspec.load_spec(SPECS / spec, [f"data.source={sms_tsv}", *overrides])
    result = dlspec.train(spec, run_dir=tmp_path / "run")
    test = result.metrics["test"]
    assert test["rows"] == 1115
    assert test["accuracy"] >= accuracy, test
    assert result.metrics["export_parity"]["max_abs_diff"] < 1e-5
    assert (result.run_dir / "vocabulary.txt").read_text(encoding="utf-8").startswith(
        "0\t<pad>\t0\n1\t<unk>\t0\n2\ti\t")
