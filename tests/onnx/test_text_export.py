"""The exported tokenizer and vocabulary lookup (dlspec.onnx.text) against the engine's
TextEncoder, run by onnxruntime: ids and lengths equal, element for element, on messages
chosen to break it (non-ASCII, empty, whitespace-only, very long, all unknown, every
separator) and on every message of the SMS Spam Collection."""

from __future__ import annotations

import string

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from dlspec.data.text import TOKENIZERS, TextEncoder, lowercase
from dlspec.onnx.builder import ML_DOMAIN, OnnxBuilder
from dlspec.onnx.text import TEXT_OPSET, emit_text
from dlspec.opsets import ML_OPSET, ir_version_for

TRAIN = ["Free entry in 2 a wkly comp to win FA Cup final tkts",
         "Ok lar... Joking wif u oni...", "U dun say so early hor... U c already then say...",
         "free FREE free! call now", "Ünïcödé ΣΑΣ straße İstanbul café café"]

HARD = [
    "", " ", "   \t\n  ", "\r\n", "...", "!!!???", "a", "A.B,C!D?E", "  lead and trail  ",
    "zzzz qqqq xxxx", "ΣΑΣ ΟΔΟΣ", "İstanbul İİ", "ǅemal Ǆ", "straße STRASSE", "café Café CAFÉ",
    "emoji 😀 ok 😀😀", "日本語 テキスト", "tab\tsep\tline\nbreak\rcr\vvt\fff",
    "non\u00a0breaking\u2003em\u3000ideographic", "zero\u200bwidth", "a" * 5000,
    " ".join(["free"] * 400), string.punctuation.join(["x"] * 3), "x" + string.punctuation,
    "'quoted' \"double\" (paren) [b] {c} <d> a@b.c #tag $5 100% ^_^ a&b *x* ~y~ `z` a|b",
    "ünïcödé", "FREE", "Free,entry;in:2", "u.s.a. e.g. i.e.",
]


def _model(enc: TextEncoder) -> bytes:
    b = OnnxBuilder(TEXT_OPSET)
    raw = b.add_input("message", TensorProto.STRING, [None])
    ids, lengths = emit_text(b, raw, enc)
    b.add_output(b.rename(ids, "ids"), TensorProto.INT64, [None, enc.max_length])
    b.add_output(b.rename(lengths, "lengths"), TensorProto.INT64, [None])
    model = helper.make_model(
        b.graph("text"), ir_version=ir_version_for(TEXT_OPSET),
        opset_imports=[helper.make_opsetid("", TEXT_OPSET),
                       helper.make_opsetid(ML_DOMAIN, ML_OPSET)])
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def _run(enc: TextEncoder, texts: list[str]):
    sess = ort.InferenceSession(_model(enc), providers=["CPUExecutionProvider"])
    return sess.run(None, {"message": np.array(texts, dtype=object)})


@pytest.mark.parametrize("max_length", [1, 7, 50])
@pytest.mark.parametrize("lower", [True, False])
@pytest.mark.parametrize("tokenizer", sorted(TOKENIZERS))
def test_onnx_tokenizer_equals_the_engine(tokenizer, lower, max_length):
    enc = TextEncoder.fit(TRAIN + HARD[:12], lowercase=lower, tokenizer=tokenizer,
                          max_length=max_length)
    ids, lengths = _run(enc, HARD)
    want_ids, want_lengths = enc.encode(HARD)
    for n, text in enumerate(HARD):
        assert list(ids[n]) == list(want_ids[n]), repr(text)
        assert lengths[n] == want_lengths[n], repr(text)


@pytest.mark.parametrize("texts", [[""], ["", " ", "..."], ["only unknown words here"]])
def test_batches_without_a_known_or_any_token(texts):
    enc = TextEncoder.fit(TRAIN, max_length=5)
    ids, lengths = _run(enc, texts)
    want_ids, want_lengths = enc.encode(texts)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(lengths, want_lengths)


def test_batch_of_one_and_rows_independent_of_their_batch():
    enc = TextEncoder.fit(TRAIN, max_length=6)
    together = _run(enc, HARD)
    for n, text in enumerate(HARD[:8]):
        ids, lengths = _run(enc, [text])
        np.testing.assert_array_equal(ids[0], together[0][n])
        assert lengths[0] == together[1][n]


def test_lowercase_equals_string_normalizer_on_every_code_point():
    chars = [chr(c) for c in range(1, 0x110000) if not 0xD800 <= c < 0xE000]
    b = OnnxBuilder(TEXT_OPSET)
    x = b.add_input("x", TensorProto.STRING, [None])
    y = b.node("StringNormalizer", [x], "lower", case_change_action="LOWER", locale="C.UTF-8")
    b.add_output(y, TensorProto.STRING, [None])
    model = helper.make_model(b.graph("lower"), ir_version=ir_version_for(TEXT_OPSET),
                              opset_imports=[helper.make_opsetid("", TEXT_OPSET)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": np.array(chars, dtype=object)})
    bad = [(hex(ord(c)), g, lowercase(c)) for c, g in zip(chars, got, strict=True)
           if g != lowercase(c)]
    assert not bad, f"{len(bad)} code points differ, first: {bad[:10]}"


def test_every_sms_message_tokenizes_alike(sms_tsv):
    messages = [line.split("\t", 1)[1] for line in
                sms_tsv.read_text(encoding="utf-8").split("\n") if line]
    assert len(messages) == 5574
    enc = TextEncoder.fit(messages[:4000], max_length=50, min_count=2)
    ids, lengths = _run(enc, messages)
    want_ids, want_lengths = enc.encode(messages)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(lengths, want_lengths)
