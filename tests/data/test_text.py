"""The text feature's fitted parts: simple lowercasing, tokenizers, the vocabulary's order,
reserved ids, truncation and padding, and the readable vocabulary file."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.data.text import PAD, UNKNOWN, TextEncoder, lowercase, tokenize


def test_lowercase_is_the_simple_mapping_one_code_point_at_a_time():
    assert lowercase("ΣΑΣ") == "σασ"          # no final-sigma rule (str.lower gives 'σας')
    assert lowercase("İ") == "i"              # str.lower gives 'i' + U+0307
    assert lowercase("ÀÉÎ Straße ǅ Ǆ") == "àéî straße ǆ ǆ"
    assert lowercase("😀 日本") == "😀 日本"


@pytest.mark.parametrize(("tokenizer", "text", "tokens"), [
    ("words", "Hello, World!! it's 2 a.m.", ["hello", "world", "it", "s", "2", "a", "m"]),
    ("whitespace", "Hello, World!!\tit's\n2 a.m.", ["hello,", "world!!", "it's", "2", "a.m."]),
    ("words", "", []),
    ("words", " \t\n ...!!! ", []),
    ("words", "café\u00a0crème", ["café\u00a0crème"]),   # only ASCII separators split
])
def test_tokenizers(tokenizer, text, tokens):
    assert tokenize(text, tokenizer) == tokens


def test_vocabulary_by_count_then_token_with_reserved_ids():
    enc = TextEncoder.fit(["b a c", "a b", "a d", "e"], max_length=4)
    assert enc.tokens == ["a", "b", "c", "d", "e"]     # a:3, b:2, then c d e by token
    assert enc.counts == [3, 2, 1, 1, 1]
    assert enc.vocab_size == 7
    ids, lengths = enc.encode(["a b", "zz a", "", "e e e e e e"])
    np.testing.assert_array_equal(ids, [[2, 3, 0, 0], [1, 2, 0, 0], [0, 0, 0, 0],
                                        [6, 6, 6, 6]])
    np.testing.assert_array_equal(lengths, [2, 2, 0, 4])
    assert ids.dtype == lengths.dtype == np.int64


def test_min_count_and_max_size():
    texts = ["x x x y y z", "w"]
    assert TextEncoder.fit(texts, min_count=2).tokens == ["x", "y"]
    assert TextEncoder.fit(texts, max_size=3).tokens == ["x", "y", "w"]


def test_vocabulary_file_round_trips_and_fingerprint_follows_it():
    enc = TextEncoder.fit(["Ünï ünï b", "c"], max_length=3)
    text = enc.to_text()
    assert text.splitlines()[:3] == [f"0\t{PAD}\t0", f"1\t{UNKNOWN}\t0", "2\tünï\t2"]
    assert TextEncoder.parse_vocabulary(text) == (enc.tokens, enc.counts)
    again = TextEncoder.from_dict(enc.to_dict())
    assert again == enc
    other = TextEncoder.fit(["Ünï ünï b", "d"], max_length=3)
    assert other.fingerprint() != enc.fingerprint()
    bad = enc.to_dict() | {"tokens": ["x", "b", "c"]}
    with pytest.raises(ValueError, match="SHA-256"):
        TextEncoder.from_dict(bad)
