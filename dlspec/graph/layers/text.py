"""Layers over token ids: ``embedding`` and ``global_avg_pool1d`` (a bag of embeddings).

A text input gives right-padded token ids (N, max_length), id 0 the padding. The
embedding looks each id up in its table and passes the sequence lengths on with its
output (``Value.lengths``), so the recurrent layers reading it mask the padding (their
masked ops: padded steps keep the state) and ``global_avg_pool1d`` averages the real
tokens only.
"""

from __future__ import annotations

from dlspec.errors import ShapeError
from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.layers import (
    COMMON,
    TRAINABLE,
    LayerDef,
    Weight,
    enum,
    init,
    no_weights,
    register_layer,
)
from dlspec.ops.registry import fmt_shape


def _embedding_build(shapes: tuple, p: dict) -> list[Weight]:
    (x,) = shapes
    if len(x) != 2:
        raise ShapeError(f"embedding reads token ids (N, length), got {fmt_shape(x)}; give it"
                         " a text input (data.text)")
    return [Weight("embeddings", (p["input_dim"], p["output_dim"]),
                   init(p["embeddings_initializer"]), p["trainable"], ("ids", "dimensions"))]


def _embedding_apply(gb, xs, w, p):
    ids = xs[0]
    y = gb.op("embedding", ids, w["embeddings"])
    y.lengths = gb.op("token_lengths", ids)
    return y


register_layer(LayerDef(
    "embedding", "looks each token id up in a learned table (Keras' Embedding with "
    "mask_zero): (N, length) ids -> (N, length, output_dim); id 0 is padding, which the "
    "recurrent layers and global_avg_pool1d after it skip",
    params={
        **COMMON,
        "input_dim": {"type": "integer", "minimum": 2, "maximum": 10_000_000,
                      "description": "rows of the table: at least the text input's vocabulary"
                      " size (vocab.max_size + 2, for the padding and unknown ids)",
                      "examples": [10002]},
        "output_dim": {"type": "integer", "minimum": 1, "maximum": 100_000,
                       "description": "size of each token's vector", "examples": [32]},
        "embeddings_initializer": enum(INITIALIZERS, "how the table starts", "uniform"),
        "trainable": TRAINABLE,
    },
    required=("input_dim", "output_dim"), shorthand=None, build=_embedding_build,
    apply=_embedding_apply, weighted=True,
))


def _pool1d_apply(gb, xs, w, p):
    x = xs[0]
    if len(x.shape) != 3:
        raise ShapeError(f"global_avg_pool1d averages sequences (N, time, features), got "
                         f"{fmt_shape(x.shape)}")
    if x.lengths is None:
        raise ShapeError("global_avg_pool1d averages the real tokens of a padded sequence: it "
                         "reads an embedding (of a text input) or a recurrent layer over one")
    return gb.op("masked_mean", x, x.lengths)


register_layer(LayerDef(
    "global_avg_pool1d", "the mean over the real (unpadded) steps of a sequence (N, time, "
    "features) -> (N, features): a bag of embeddings after an embedding",
    params={**COMMON}, required=(), shorthand=None, build=no_weights, apply=_pool1d_apply,
))
