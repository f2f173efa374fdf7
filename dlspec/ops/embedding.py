"""Ops over token ids: ``embedding`` (a row gather from a table), ``token_lengths`` (the
real tokens of right-padded ids: those before the first padding id 0) and ``masked_mean``
(the mean over each sequence's real steps, a bag of embeddings).

Token ids and sequence lengths are int64 data (``index_inputs``): nothing is learned
through them, so their gradient is None. The table's gradient is a scatter-add: a token
that occurs k times in a batch receives the sum of its k rows of ``g``.
"""

from __future__ import annotations

import numpy as np

from dlspec.ops.registry import OpDef, f32, register, shape_error


def _embedding_shape(ids, table):
    if len(table) != 2:
        raise shape_error("embedding", "needs ids (N, ...) and a table (vocabulary, dim)",
                          ids, table)
    if len(ids) < 1:
        raise shape_error("embedding", "needs a batch of ids (N, ...)", ids, table)
    return (*ids, table[1])


def _embedding_vjp(g, y, ids, table):
    dim = table.shape[1]
    flat = ids.reshape(-1)
    # bincount per column is a scatter-add that runs ~20x faster than np.add.at; float64
    # accumulation, then the table's dtype.
    rows = g.reshape(-1, dim)
    dt = np.empty(table.shape, dtype=table.dtype)
    for j in range(dim):
        dt[:, j] = np.bincount(flat, weights=rows[:, j], minlength=table.shape[0])
    return None, dt


def _embedding_sample(rng):
    vocab, dim = int(rng.integers(4, 9)), int(rng.integers(2, 5))
    ids = rng.integers(0, vocab, size=(3, 5)).astype(np.int64)
    ids[0, :2] = 1          # a repeated id: its gradient rows must add up
    return [ids, f32(rng, vocab, dim)], {}


register(OpDef(
    "embedding", 2, _embedding_shape,
    forward=lambda ids, table: table[ids],
    vjp=_embedding_vjp,
    emit=lambda b, names: b.node("Gather", [names[1], names[0]], "embedding", axis=0),
    sample=_embedding_sample,
    index_inputs=(0,),
))


def _token_lengths_shape(ids):
    if len(ids) != 2:
        raise shape_error("token_lengths", "needs token ids (N, time)", ids)
    return (ids[0],)


def _token_lengths_emit(b, names):
    real = b.node("Cast", [b.node("Greater", [names[0], b.const(np.array(0, np.int64),
                                                                "pad_id")], "is_token")],
                  "is_token_i", to=7)   # INT64
    return b.node("ReduceSum", [real, b.const(np.array([1], np.int64), "axes")], "lengths",
                  keepdims=0)


def _token_lengths_sample(rng):
    ids = rng.integers(2, 9, size=(4, 5)).astype(np.int64)
    ids[1, 3:] = 0
    ids[2, :] = 0
    return [ids], {}


# NOTE: ids are right-padded (dlspec.data.text), so the count of non-zero ids is the
# length; a 0 inside a row cannot occur.
register(OpDef(
    "token_lengths", 1, _token_lengths_shape,
    forward=lambda ids: np.count_nonzero(ids > 0, axis=1).astype(np.int64),
    vjp=lambda g, y, ids: (None,),
    emit=_token_lengths_emit,
    sample=_token_lengths_sample,
    index_inputs=(0,),
    integer_output=True,
))


def _masked_mean_shape(x, lengths):
    if len(x) != 3 or len(lengths) != 1:
        raise shape_error("masked_mean", "needs steps (N, time, features) and lengths (N,)",
                          x, lengths)
    return (x[0], x[2])


def _weights(x, lengths):
    """(N, T, 1): 1 / max(length, 1) on each sequence's real steps, 0 on its padding."""
    t = x.shape[1]
    real = np.arange(t)[None, :] < lengths[:, None]
    scale = 1.0 / np.maximum(lengths, 1).astype(x.dtype)
    return (real * scale[:, None]).astype(x.dtype)[:, :, None]


def _masked_mean(x, lengths):
    # NOTE: an empty sequence (length 0) has the mean 0, the sum of nothing scaled by 1.
    return np.einsum("ntf,nt->nf", x, _weights(x, lengths)[:, :, 0]).astype(x.dtype)


def _masked_mean_emit(b, names):
    x, lengths = names
    t = b.node("Gather", [b.node("Shape", [x], "shape"), b.const(np.array(1, np.int64),
                                                                 "time_axis")], "time", axis=0)
    pos = b.node("Range", [b.const(np.array(0, np.int64), "zero"), t,
                           b.const(np.array(1, np.int64), "one")], "positions")
    lens = b.node("Unsqueeze", [lengths, b.const(np.array([1], np.int64), "axes")], "lens")
    real = b.node("Cast", [b.node("Less", [pos, lens], "real")], "real_f", to=1)
    total = b.node("ReduceSum", [b.node("Mul", [x, b.node(
        "Unsqueeze", [real, b.const(np.array([2], np.int64), "axes")], "mask")], "masked"),
        b.const(np.array([1], np.int64), "axes")], "total", keepdims=0)
    count = b.node("Max", [b.node("Cast", [lens], "count", to=1),
                           b.const(np.array(1, np.float32), "one_f")], "count_min1")
    return b.node("Div", [total, count], "masked_mean")


def _masked_mean_sample(rng):
    x = f32(rng, 4, 5, 3)
    return [x, np.array([5, 2, 0, 1], dtype=np.int64)], {}


register(OpDef(
    "masked_mean", 2, _masked_mean_shape,
    forward=_masked_mean,
    vjp=lambda g, y, x, lengths: (g[:, None, :] * _weights(x, lengths), None),
    emit=_masked_mean_emit,
    sample=_masked_mean_sample,
    index_inputs=(1,),
))
