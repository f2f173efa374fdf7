"""Embedding, masked mean and the masked recurrent ops against what they mean: each padded
row equals the unmasked op on its real prefix alone, a full-length mask changes nothing,
and the embedding's table gradient is a scatter-add (np.add.at as the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.ops import OPS
from dlspec.ops.recurrent_masked import MASKED_OPS


def _weights(rng, cell, units, features, bias):
    gates = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    ws = [rng.uniform(-0.5, 0.5, (features, gates * units)),
          rng.uniform(-0.5, 0.5, (units, gates * units))]
    if bias:
        ws.append(rng.uniform(-0.5, 0.5, (2, 3 * units) if cell == "gru" else (gates * units,)))
    return ws


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("name", sorted(MASKED_OPS))
def test_each_row_equals_the_unmasked_op_on_its_real_prefix(name, return_sequences):
    cell = MASKED_OPS[name]
    bias = not name.endswith("_nobias")
    plain = OPS[cell if bias else f"{cell}_nobias"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 3))
    ws = _weights(rng, cell, 5, 3, bias)
    lengths = np.array([6, 3, 1, 0], dtype=np.int64)
    attrs = {"units": 5, "return_sequences": return_sequences}
    y = OPS[name].forward(x, lengths, *ws, **attrs)
    for n, length in enumerate(lengths):
        if length == 0:   # an empty sequence keeps the zero initial state
            np.testing.assert_array_equal(y[n], 0)
            continue
        alone = plain.forward(x[n:n + 1, :length], *ws, **attrs)[0]
        if return_sequences:
            np.testing.assert_allclose(y[n, :length], alone, rtol=1e-12, atol=1e-12)
            np.testing.assert_array_equal(y[n, length:], 0)   # padded steps output zeros
        else:
            np.testing.assert_allclose(y[n], alone, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", sorted(MASKED_OPS))
def test_full_lengths_give_the_unmasked_op_and_its_gradients(name):
    cell = MASKED_OPS[name]
    bias = not name.endswith("_nobias")
    plain = OPS[cell if bias else f"{cell}_nobias"]
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 2))
    ws = _weights(rng, cell, 3, 2, bias)
    lengths = np.full(3, 4, dtype=np.int64)
    attrs = {"units": 3, "return_sequences": True}
    y = OPS[name].forward(x, lengths, *ws, **attrs)
    np.testing.assert_allclose(y, plain.forward(x, *ws, **attrs), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    got = OPS[name].vjp(g, y, x, lengths, *ws, **attrs)
    want = plain.vjp(g, y, x, *ws, **attrs)
    assert got[1] is None
    for a, b in zip([got[0], *got[2:]], want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_padding_gets_no_gradient():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 3))
    ws = _weights(rng, "lstm", 4, 3, True)
    lengths = np.array([2, 5], dtype=np.int64)
    y = OPS["lstm_masked"].forward(x, lengths, *ws, units=4)
    dx = OPS["lstm_masked"].vjp(np.ones_like(y), y, x, lengths, *ws, units=4)[0]
    np.testing.assert_array_equal(dx[0, 2:], 0)
    assert np.abs(dx[0, :2]).min() > 0 and np.abs(dx[1]).min() > 0


def test_embedding_gathers_rows_and_scatters_gradients():
    rng = np.random.default_rng(3)
    table = rng.standard_normal((7, 3)).astype(np.float32)
    ids = np.array([[1, 1, 0], [6, 1, 2]], dtype=np.int64)
    op = OPS["embedding"]
    y = op.forward(ids, table)
    np.testing.assert_array_equal(y, table[ids])
    g = rng.standard_normal(y.shape).astype(np.float32)
    d_ids, d_table = op.vjp(g, y, ids, table)
    want = np.zeros_like(table, dtype=np.float64)
    np.add.at(want, ids.ravel(), g.reshape(-1, 3))
    assert d_ids is None
    assert d_table.dtype == np.float32
    np.testing.assert_allclose(d_table, want, rtol=1e-6)
    np.testing.assert_array_equal(d_table[[3, 4, 5]], 0)   # unseen ids: no gradient


def test_masked_mean_is_the_mean_over_real_steps():
    x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    y = OPS["masked_mean"].forward(x, np.array([2, 0], dtype=np.int64))
    np.testing.assert_allclose(y[0], x[0, :2].mean(axis=0))
    np.testing.assert_array_equal(y[1], 0)
    assert y.dtype == np.float32


def test_embedding_and_masked_lstm_match_pytorch_packed_sequences():
    """PyTorch as the oracle: nn.Embedding + nn.LSTM over packed sequences (padding never
    seen), the same weights; the last real states and the table and weight gradients."""
    torch = pytest.importorskip("torch")
    from torch import nn

    rng = np.random.default_rng(4)
    vocab, dim, units = 12, 3, 4
    lengths = np.array([5, 2, 1, 4], dtype=np.int64)
    ids = rng.integers(2, vocab, size=(4, 5)).astype(np.int64)
    ids[np.arange(5)[None, :] >= lengths[:, None]] = 0
    table = rng.uniform(-1, 1, (vocab, dim))
    w, u = rng.uniform(-0.5, 0.5, (dim, 4 * units)), rng.uniform(-0.5, 0.5, (units, 4 * units))
    b = rng.uniform(-0.5, 0.5, 4 * units)
    x = OPS["embedding"].forward(ids, table)
    h = OPS["lstm_masked"].forward(x, lengths, w, u, b, units=units)
    g = rng.standard_normal(h.shape)
    dx, _, dw, du, db = OPS["lstm_masked"].vjp(g, h, x, lengths, w, u, b, units=units)
    _, dtable = OPS["embedding"].vjp(dx, x, ids, table)

    e = nn.Embedding(vocab, dim).double()
    lstm = nn.LSTM(dim, units, batch_first=True).double()
    with torch.no_grad():   # Keras' gate order i, f, c, o is PyTorch's i, f, g, o
        e.weight.copy_(torch.from_numpy(table))
        lstm.weight_ih_l0.copy_(torch.from_numpy(w.T))
        lstm.weight_hh_l0.copy_(torch.from_numpy(u.T))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b))
        lstm.bias_hh_l0.zero_()
    packed = nn.utils.rnn.pack_padded_sequence(e(torch.from_numpy(ids)),
                                               torch.from_numpy(lengths), batch_first=True,
                                               enforce_sorted=False)
    _, (th, _) = lstm(packed)
    (th[0] * torch.from_numpy(g)).sum().backward()
    np.testing.assert_allclose(h, th[0].detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dtable, e.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(dw, lstm.weight_ih_l0.grad.numpy().T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(du, lstm.weight_hh_l0.grad.numpy().T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(db, lstm.bias_ih_l0.grad.numpy(), rtol=1e-9, atol=1e-12)
