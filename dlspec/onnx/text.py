"""A fitted text feature in ONNX: the raw string column (N,) in, token ids (N, max_length)
int64 and lengths (N,) int64 out, equal to ``TextEncoder.encode`` (dlspec.data.text).

Standard operators only, from opset 20 (StringSplit): StringNormalizer lowercases (its
locale set explicitly to ``C.UTF-8``: its default, ``en_US``, is missing on many machines
and the session then fails to load); the messages become one flat list of tokens with
their row numbers, and one StringSplit per separator character splits every token further
(Compress drops the empty pieces, so the list never grows past the batch's pieces);
ai.onnx.ml's LabelEncoder maps tokens to ids (unknown -> 1); Unique gives each row's
first token, so each token's position in its row, and ScatterND writes the first
max_length ids of each row into zeros (padding 0) and the rows' token counts, at most
max_length, into the lengths (0 for a message without tokens).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from dlspec.data.text import RESERVED, TOKENIZERS, TextEncoder
from dlspec.onnx.builder import ML_DOMAIN, OnnxBuilder
from dlspec.opsets import TEXT_OPSET  # StringSplit (and string Equal, from 19)

LOCALE = "C.UTF-8"


def _i64(b: OnnxBuilder, values, hint: str) -> str:
    return b.const(np.array(values, dtype=np.int64), hint)


def _nonempty(b: OnnxBuilder, tokens: str) -> str:
    empty = b.node("Equal", [tokens, b.const(np.array([""], dtype=object), "empty")],
                   "is_empty")
    return b.node("Not", [empty], "nonempty")


def _split(b: OnnxBuilder, tokens: str, rows: str, sep: str) -> tuple[str, str]:
    """Flat tokens (T,) and their rows (T,) -> the non-empty pieces of splitting each token
    on ``sep``, and their rows, in order."""
    # delimiter '' splits on runs of spaces; any other on each occurrence (the empty
    # pieces between two separators are dropped with the padding StringSplit adds)
    parts, _ = b.node("StringSplit", [tokens], "split", outputs=2,
                      delimiter="" if sep == " " else sep)
    part_rows = b.node("Expand", [b.node("Unsqueeze", [rows, _i64(b, [1], "axes")], "rows1"),
                                  b.node("Shape", [parts], "parts_shape")], "part_rows")
    flat = b.node("Reshape", [parts, _i64(b, [-1], "flat")], "pieces")
    keep = _nonempty(b, flat)
    return (b.node("Compress", [flat, keep], "tokens", axis=0),
            b.node("Compress", [b.node("Reshape", [part_rows, _i64(b, [-1], "flat")],
                                       "piece_rows"), keep], "rows", axis=0))


def emit_text(b: OnnxBuilder, raw: str, enc: TextEncoder) -> tuple[str, str]:
    """Nodes from the string column ``raw`` (N,) to (ids, lengths); needs opset 20.

    The messages become one flat list of tokens with their row numbers, split further on
    each separator (the list stays as long as the batch's tokens); at the end each token's
    position in its row (from Unique's first index of the row) scatters its id into
    (N, max_length) zeros."""
    if b.opset < TEXT_OPSET:
        raise ValueError(f"text features need ONNX opset {TEXT_OPSET} (StringSplit), "
                         f"the model is written at {b.opset}")
    x = raw
    if enc.lowercase:
        x = b.node("StringNormalizer", [x], "lower", case_change_action="LOWER",
                   locale=LOCALE)
    n = b.node("Shape", [x], "batch")
    tokens = x
    rows = b.node("Range", [_i64(b, 0, "zero"),
                            b.node("Squeeze", [n, _i64(b, [0], "axes")], "n"),
                            _i64(b, 1, "one")], "rows")
    for sep in TOKENIZERS[enc.tokenizer]:
        tokens, rows = _split(b, tokens, rows, sep)
    ids = b.node("LabelEncoder", [tokens], "token_ids", domain=ML_DOMAIN,
                 keys_strings=[*enc.tokens], values_int64s=[*range(RESERVED, enc.vocab_size)],
                 default_int64=1)
    uniq, first, inverse, counts = b.node("Unique", [rows], "row", outputs=4, sorted=1)
    total = b.node("Shape", [rows], "total")
    pos = b.node("Sub", [b.node("Range", [_i64(b, 0, "zero"), b.node(
        "Squeeze", [total, _i64(b, [0], "axes")], "t"), _i64(b, 1, "one")], "index"),
        b.node("Gather", [first, inverse], "row_start", axis=0)], "position")
    length = _i64(b, enc.max_length, "max_length")
    keep = b.node("Less", [pos, length], "in_length")
    where = b.node("Concat", [
        b.node("Unsqueeze", [b.node("Compress", [v, keep], f"kept_{h}", axis=0),
                             _i64(b, [1], "axes")], f"{h}1")
        for v, h in ((rows, "row"), (pos, "pos"))], "where", axis=1)
    shape = b.node("Concat", [n, _i64(b, [enc.max_length], "max_len1")], "ids_shape", axis=0)
    zeros = b.node("ConstantOfShape", [shape], "pad", value=_zero_i64())
    ids = b.node("ScatterND", [zeros, where, b.node("Compress", [ids, keep], "kept_ids",
                                                   axis=0)], "text_ids")
    lengths = b.node("ScatterND", [
        b.node("ConstantOfShape", [n], "no_tokens", value=_zero_i64()),
        b.node("Unsqueeze", [uniq, _i64(b, [1], "axes")], "uniq1"),
        b.node("Min", [counts, length], "clipped")], "text_lengths")
    return ids, lengths


def _zero_i64():
    from onnx import helper

    return helper.make_tensor("zero", TensorProto.INT64, [1], [0])
