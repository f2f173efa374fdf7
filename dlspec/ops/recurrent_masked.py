"""Masked recurrent ops: ``lstm_masked``, ``gru_masked``, ``rnn_masked`` (and their
bias-free twins) read padded sequences with their lengths.

Inputs: x (batch, time, features), lengths (batch,) int64, then the weights of the
unmasked op. Step t of row n is real when t < lengths[n]: a padded step leaves the
states as they were, so the last state is the last real step's (an empty sequence, length
0, keeps the zero initial state), and with ``return_sequences`` a padded step outputs
zeros. This is ONNX's LSTM/GRU/RNN with ``sequence_lens``, which the emission uses. The
unmasked ops (and the engine's fused training kernels for them) are untouched: a spec
without lengths runs exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlspec.ops import recurrent as r
from dlspec.ops.registry import OpDef, register, shape_error


def step_mask(lengths: np.ndarray, steps: int, dtype) -> np.ndarray:
    """(T, N, 1): 1 where step t of row n is real (t < length), else 0."""
    return (np.arange(steps)[:, None] < lengths[None, :]).astype(dtype)[:, :, None]


def _shape(op: str, cell: str) -> Callable:
    inner = r._shape_rule(op, cell)

    def shape(x, lengths, *weights, **attrs):
        if len(lengths) != 1 or len(x) >= 1 and lengths[0] != x[0]:
            raise shape_error(op, "needs lengths (batch,) beside x (batch, time, features)",
                              x, lengths)
        return inner(x, *weights, **attrs)
    return shape


def _wrap(rule: Callable, is_vjp: bool) -> Callable:
    if is_vjp:
        def vjp(g, y, x, lengths, *weights, **attrs):
            mask = step_mask(lengths, x.shape[1], np.result_type(x, g))
            dx, *dws = rule(g, y, x, *weights, mask=mask, **attrs)
            return (dx, None, *dws)
        return vjp

    def forward(x, lengths, *weights, **attrs):
        return rule(x, *weights, mask=step_mask(lengths, x.shape[1], x.dtype), **attrs)
    return forward


def _sampler(cell: str, with_bias: bool) -> Callable:
    inner = r._sampler(cell, with_bias)

    def sample(rng):
        (x, *weights), attrs = inner(rng)
        # a full row, a partly padded one and an empty one (length 0)
        lengths = np.array([x.shape[1], 2, 0], dtype=np.int64)[:x.shape[0]]
        return [x, lengths, *weights], attrs
    return sample


_RULES = {"lstm": (r._lstm, r._lstm_vjp), "gru": (r._gru, r._gru_vjp),
          "rnn": (r._rnn, r._rnn_vjp)}

for _cell, (_forward, _vjp) in _RULES.items():
    for _bias in (True, False):
        _name = f"{_cell}_masked" if _bias else f"{_cell}_masked_nobias"
        register(OpDef(_name, 5 if _bias else 4, _shape(_name, _cell), _wrap(_forward, False),
                       _wrap(_vjp, True), r._emitter(_cell, masked=True),
                       _sampler(_cell, _bias), index_inputs=(1,)))

MASKED_OPS = {f"{c}_masked{s}": c for c in r.GATES for s in ("", "_nobias")}  # op -> cell
