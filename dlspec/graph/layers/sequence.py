"""Recurrent layers over sequences (N, time, features): lstm, gru, simple_rnn.

They follow Keras: the same parameters, defaults and weight layout (see
dlspec.ops.recurrent), a zero initial state.
"""

from __future__ import annotations

import numpy as np

from dlspec.errors import ShapeError
from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.layers import COMMON, TRAINABLE, LayerDef, Weight, enum, init, register_layer
from dlspec.ops.recurrent import GATES, bias_shape
from dlspec.ops.registry import fmt_shape
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS


def _sequence_input(x: tuple, layer: str) -> None:
    if len(x) != 3:
        raise ShapeError(f"{layer} needs (batch, time, features) input, got {fmt_shape(x)}; "
                         "cut a time-ordered table into windows with data.sequence (e.g. "
                         "sequence: {window: 12}), or reshape to (time, features) first")


def _forget_bias(fn, units: int):
    """Keras' unit_forget_bias: the forget gate's bias starts at 1, the rest from init."""
    def start(rng, shape):
        return np.concatenate([fn(rng, (units,)), np.ones(units, np.float32),
                               fn(rng, (2 * units,))])
    return start


def _recurrent(cell: str, layer: str):
    def build(shapes: tuple, p: dict) -> list[Weight]:
        (x,) = shapes
        _sequence_input(x, layer)
        units, width, train = p["units"], GATES[cell] * p["units"], p["trainable"]
        gates = "gate units" if GATES[cell] > 1 else "units"
        out = [Weight("kernel", (x[2], width), init(p["kernel_initializer"]), train,
                      ("features", gates)),
               Weight("recurrent_kernel", (units, width), init(p["recurrent_initializer"]),
                      train, ("units", gates))]
        if p["use_bias"]:
            start = init(p["bias_initializer"])
            if p.get("unit_forget_bias"):
                start = _forget_bias(start, units)
            shape = bias_shape(cell, units)
            out.append(Weight("bias", shape, start, train, () if len(shape) == 2 else (gates,)))
        return out

    def apply(gb, xs, w, p):
        attrs = {"units": p["units"], "return_sequences": p["return_sequences"],
                 "activation": p["activation"]}
        if "recurrent_activation" in p:
            attrs["recurrent_activation"] = p["recurrent_activation"]
        inputs = [xs[0], w["kernel"], w["recurrent_kernel"]]
        op, lengths = cell, xs[0].lengths
        if lengths is not None:   # padded token sequences: the masked op
            op, inputs = f"{cell}_masked", [xs[0], lengths, *inputs[1:]]
        y = (gb.op(op, *inputs, w["bias"], **attrs) if "bias" in w
             else gb.op(f"{op}_nobias", *inputs, **attrs))
        if lengths is not None and p["return_sequences"]:
            y.lengths = lengths   # a recurrent layer stacked on this one masks alike
        return y
    return build, apply


def _recurrent_params(gates: str | None, extra: dict) -> dict:
    """The parameters every recurrent layer shares (``gates``: what the recurrent
    activation acts on; None: the layer has none)."""
    params = {
        **COMMON,
        "units": {"type": "integer", "minimum": 1, "maximum": 100_000,
                  "description": "size of the hidden state (the output's last axis)",
                  "examples": [64]},
        "return_sequences": {"type": "boolean", "default": False, "examples": [True],
                             "description": "true: the hidden state of every step (N, time,"
                             " units), e.g. to stack another recurrent layer; false: the last"
                             " one (N, units)"},
        "activation": enum(RNN_ACTIVATIONS, "activation of the candidate state and of the"
                           " output", "tanh"),
        "use_bias": {"type": "boolean", "default": True, "description": "add learned biases",
                     "examples": [True]},
        "kernel_initializer": enum(INITIALIZERS, "how the kernel (features, gates * units)"
                                   " starts", "glorot_uniform"),
        "recurrent_initializer": enum(INITIALIZERS, "how the recurrent kernel (units, gates"
                                      " * units) starts", "orthogonal"),
        "bias_initializer": enum(INITIALIZERS, "how the bias starts", "zeros"),
        "trainable": TRAINABLE,
    }
    if gates is not None:
        params["recurrent_activation"] = enum(RNN_ACTIVATIONS, f"activation of the {gates}",
                                              "sigmoid")
    return {**params, **extra}


def _register(name: str, cell: str, description: str, gates: str | None, extra: dict) -> None:
    build, apply = _recurrent(cell, name)
    register_layer(LayerDef(name, description, params=_recurrent_params(gates, extra),
                            required=("units",), shorthand="units", build=build, apply=apply,
                            weighted=True))


_register("lstm", "lstm", "long short-term memory (Keras' LSTM) over sequences (N, time,"
          " features): kernel (features, 4 * units), recurrent kernel (units, 4 * units) and"
          " bias (4 * units), gates in Keras' order input, forget, cell, output",
          "input, forget and output gates", {
              "unit_forget_bias": {"type": "boolean", "default": True, "examples": [True],
                                   "description": "start the forget gate's bias at 1 (Keras'"
                                   " default; bias_initializer sets the rest)"}})
_register("gru", "gru", "gated recurrent unit (Keras' GRU with its default reset_after=True,"
          " ONNX's linear_before_reset=1: the reset gate scales the recurrent projection after"
          " the matrix product) over sequences (N, time, features): kernel (features, 3 *"
          " units), recurrent kernel (units, 3 * units), bias (2, 3 * units): input bias, then"
          " recurrent bias; gates in Keras' order update, reset, candidate",
          "update and reset gates", {})
_register("simple_rnn", "rnn", "fully connected recurrence (Keras' SimpleRNN) over sequences"
          " (N, time, features): h = activation(x @ kernel + h @ recurrent_kernel + bias)",
          None, {})
