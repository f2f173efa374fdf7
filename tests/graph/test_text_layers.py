"""The layers over token ids, built in a graph: the embedding passes the lengths of its
ids on, a recurrent layer after it runs its masked op (and passes them on with
return_sequences, so a stacked one masks too), global_avg_pool1d averages the real tokens,
and the graph's forward equals the ops composed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.errors import ShapeError
from dlspec.graph.ir import GraphBuilder
from dlspec.graph.layers import LAYERS
from dlspec.spec.normalize import layer_params


def _layer(gb, type_, x, params, rng):
    p = layer_params(type_, params)
    gb.begin_layer(f"{type_}_1")
    weights = {w.name: gb.param(w.name, w.shape, w.init) for w in
               LAYERS[type_].build((x.shape,), p)}
    y = LAYERS[type_].apply(gb, [x], weights, p)
    gb.end_layer(type_, y)
    return y


def _run(graph, feeds, rng):
    env = {v.id: feeds[v.name] for v in graph.inputs}
    for p in graph.params:
        env[p.value.id] = p.init(rng, p.shape)
    for node in graph.nodes:
        env[node.output.id] = node.op.forward(*[env[v.id] for v in node.inputs],
                                              **node.attrs)
    return env


IDS = np.array([[5, 2, 7, 0, 0], [3, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=np.int64)


@pytest.mark.parametrize(("cell", "stacked"), [("lstm", "gru"), ("gru", "simple_rnn"),
                                               ("simple_rnn", "lstm")])
def test_recurrent_layers_after_an_embedding_mask_the_padding(cell, stacked):
    rng = np.random.default_rng(0)
    gb = GraphBuilder()
    ids = gb.input("ids", (None, 5))
    emb = _layer(gb, "embedding", ids, {"input_dim": 8, "output_dim": 3}, rng)
    assert emb.lengths is not None and emb.shape == (None, 5, 3)
    seq = _layer(gb, cell, emb, {"units": 4, "return_sequences": True}, rng)
    assert seq.lengths is emb.lengths
    last = _layer(gb, stacked, seq, {"units": 2}, rng)
    ops = [n.op.name for n in gb.graph.nodes]
    masked = {"simple_rnn": "rnn"}.get(cell, cell) + "_masked"
    assert masked in ops and ops.count("token_lengths") == 1
    env = _run(gb.graph, {"ids": IDS}, rng)
    np.testing.assert_array_equal(env[emb.lengths.id], [3, 1, 0])
    np.testing.assert_array_equal(env[seq.id][0, 3:], 0)   # padded steps output zeros
    np.testing.assert_array_equal(env[last.id][2], 0)       # an empty message: zero state


def test_global_avg_pool1d_is_the_mean_of_the_real_tokens_embeddings():
    rng = np.random.default_rng(1)
    gb = GraphBuilder()
    ids = gb.input("ids", (None, 5))
    emb = _layer(gb, "embedding", ids, {"input_dim": 8, "output_dim": 3}, rng)
    bag = _layer(gb, "global_avg_pool1d", emb, None, rng)
    env = _run(gb.graph, {"ids": IDS}, rng)
    table = env[gb.graph.params[0].value.id]
    np.testing.assert_allclose(env[bag.id][0], table[[5, 2, 7]].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(env[bag.id][1], table[3], rtol=1e-6)
    np.testing.assert_array_equal(env[bag.id][2], 0)


def test_global_avg_pool1d_needs_lengths_and_embedding_needs_ids():
    rng = np.random.default_rng(2)
    gb = GraphBuilder()
    x = gb.input("x", (None, 5, 3))
    with pytest.raises(ShapeError, match="real tokens"):
        _layer(gb, "global_avg_pool1d", x, None, rng)
    with pytest.raises(ShapeError, match="token ids"):
        _layer(gb, "embedding", x, {"input_dim": 8, "output_dim": 3}, rng)
