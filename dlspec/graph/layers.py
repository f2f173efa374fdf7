"""The layer registry: each layer type with its parameter schema and its lowering to ops.

The JSON Schema of the spec format is generated from this registry (and from
the activation, initializer, optimizer, loss and metric registries), so a layer
type cannot exist in one place and be missing in the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlspec.errors import ShapeError
from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.ir import GraphBuilder, Value
from dlspec.ops.conv import pair, same_pads
from dlspec.ops.recurrent import GATES, bias_shape
from dlspec.ops.registry import fmt_shape
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS


@dataclass(frozen=True)
class ActivationDef:
    name: str
    op: str | None          # None: the identity ('linear')
    attrs: dict
    description: str


ACTIVATIONS: dict[str, ActivationDef] = {a.name: a for a in [
    ActivationDef("linear", None, {}, "the identity: f(x) = x"),
    ActivationDef("relu", "relu", {}, "max(x, 0)"),
    ActivationDef("sigmoid", "sigmoid", {}, "1 / (1 + exp(-x)); the output of binary classifiers"),
    ActivationDef("tanh", "tanh", {}, "hyperbolic tangent"),
    ActivationDef("softmax", "softmax", {"axis": -1},
                  "exp(x) / sum(exp(x)) over the last axis; the output of multi-class classifiers"),
    ActivationDef("softplus", "softplus", {}, "log(1 + exp(x))"),
    ActivationDef("leaky_relu", "leaky_relu", {"alpha": 0.2}, "x if x > 0 else 0.2 x"),
    ActivationDef("elu", "elu", {"alpha": 1.0}, "x if x > 0 else exp(x) - 1"),
]}


def apply_activation(gb: GraphBuilder, x: Value, name: str) -> Value:
    act = ACTIVATIONS[name]
    return x if act.op is None else gb.op(act.op, x, **act.attrs)


@dataclass(frozen=True)
class LayerDef:
    """One layer type.

    Attributes:
        params: JSON Schema ``properties`` of the layer's parameters (each with
            description, default or example).
        required: parameters without a default.
        shorthand: the parameter a bare scalar stands for (``- dense: 6``).
        lower: ``(builder, x, params) -> y`` adds the layer's ops and parameters.
    """

    name: str
    description: str
    params: dict
    required: tuple[str, ...]
    shorthand: str | None
    lower: Callable[[GraphBuilder, Value, dict], Value]


LAYERS: dict[str, LayerDef] = {}


def register_layer(layer: LayerDef) -> LayerDef:
    if layer.name in LAYERS:
        raise ValueError(f"layer {layer.name!r} is registered twice")
    LAYERS[layer.name] = layer
    return layer


def _enum(registry: dict, description: str, default: str) -> dict:
    return {"type": "string", "enum": sorted(registry), "default": default,
            "description": description, "examples": [default]}


_COMMON = {
    "name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$",
             "description": "a unique name for the layer (default: type and index, e.g. dense_2)",
             "examples": ["hidden1"]},
}


def _lower_dense(gb: GraphBuilder, x: Value, p: dict) -> Value:
    if len(x.shape) != 2:
        from dlspec.errors import ShapeError
        from dlspec.ops.registry import fmt_shape

        raise ShapeError(f"dense takes (N, features) but its input is {fmt_shape(x.shape)}; "
                         "add a flatten (or global_avg_pool2d) layer before it")
    n_in = x.shape[-1]
    w = gb.param("kernel", (n_in, p["units"]), INITIALIZERS[p["initializer"]].fn,
                 p["trainable"])
    y = gb.op("matmul", x, w)
    if p["bias"]:
        b = gb.param("bias", (p["units"],), INITIALIZERS[p["bias_initializer"]].fn,
                     p["trainable"])
        y = gb.op("add", y, b)
    return apply_activation(gb, y, p["activation"])


register_layer(LayerDef(
    "dense", "fully connected: activation(x @ kernel + bias)",
    params={
        **_COMMON,
        "units": {"type": "integer", "minimum": 1, "maximum": 1_000_000,
                  "description": "number of output features", "examples": [6]},
        "activation": _enum(ACTIVATIONS, "activation applied to the output", "linear"),
        "initializer": _enum(INITIALIZERS, "how the kernel starts", "glorot_uniform"),
        "bias": {"type": "boolean", "default": True, "description": "add a learned bias",
                 "examples": [True]},
        "bias_initializer": _enum(INITIALIZERS, "how the bias starts", "zeros"),
        "trainable": {"type": "boolean", "default": True,
                      "description": "false freezes the layer's parameters", "examples": [False]},
    },
    required=("units",), shorthand="units", lower=_lower_dense,
))


def _lower_dropout(gb: GraphBuilder, x: Value, p: dict) -> Value:
    if p["rate"] == 0:
        return x
    mask = gb.noise("mask", x.shape, p["rate"])
    return gb.op("dropout", x, mask)


register_layer(LayerDef(
    "dropout", "during training, zeroes each input with probability `rate` and scales the rest"
    " by 1 / (1 - rate); the identity at inference",
    params={**_COMMON,
            "rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                     "description": "fraction of inputs to drop", "examples": [0.1]}},
    required=("rate",), shorthand="rate", lower=_lower_dropout,
))

register_layer(LayerDef(
    "activation", "applies an activation function on its own",
    params={**_COMMON,
            "activation": {"type": "string", "enum": sorted(ACTIVATIONS),
                           "description": "the function", "examples": ["relu"]}},
    required=("activation",), shorthand="activation",
    lower=lambda gb, x, p: apply_activation(gb, x, p["activation"]),
))


# ----------------------------------------------------------------------------- images
# Images are channels-last: (N, height, width, channels).

def _hw(description: str, example, default=None) -> dict:
    """A size for both image axes (an integer) or [height, width]."""
    one = {"type": "integer", "minimum": 1, "maximum": 4096}
    out = {"oneOf": [one, {"type": "array", "items": one, "minItems": 2, "maxItems": 2}],
           "description": description, "examples": [example]}
    if default is not None:
        out["default"] = default
    return out


_PADDING = {
    "oneOf": [{"type": "string", "enum": ["valid", "same"]},
              {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 4096},
               "minItems": 4, "maxItems": 4}],
    "default": "valid", "examples": ["same"],
    "description": "'valid': no padding; 'same': pad so the output has ceil(size / stride)"
                   " pixels per axis (an odd pixel of padding goes at the bottom/right, as in"
                   " Keras); or explicit [top, left, bottom, right]",
}


def _image_input(gb: GraphBuilder, x: Value, layer: str) -> None:
    if len(x.shape) != 4:
        raise ShapeError(f"layer {gb.layer!r}: {layer} expects images (N, height, width, "
                         f"channels), got {fmt_shape(x.shape)}; give the model image input, "
                         "or reshape to (height, width, channels) first")


def _explicit_pads(padding, hw: tuple, kernel: tuple, strides: tuple,
                   dilations: tuple = (1, 1)) -> tuple[int, int, int, int]:
    """'valid' / 'same' / [t, l, b, r] -> (top, left, bottom, right)."""
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        (t, b), (left, r) = (same_pads(n, k, s, d) for n, k, s, d in
                             zip(hw, kernel, strides, dilations, strict=True))
        return (t, left, b, r)
    return tuple(int(p) for p in padding)


def _lower_conv2d(gb: GraphBuilder, x: Value, p: dict) -> Value:
    _image_input(gb, x, "conv2d")
    kernel, strides, dilations = pair(p["kernel_size"]), pair(p["strides"]), pair(p["dilation"])
    groups, c = p["groups"], x.shape[3]
    w = gb.param("kernel", (*kernel, c // groups, p["filters"]),
                 INITIALIZERS[p["initializer"]].fn, p["trainable"])
    y = gb.op("conv2d", x, w, strides=strides, dilations=dilations, groups=groups,
              pads=_explicit_pads(p["padding"], x.shape[1:3], kernel, strides, dilations))
    if p["bias"]:
        b = gb.param("bias", (p["filters"],), INITIALIZERS[p["bias_initializer"]].fn,
                     p["trainable"])
        y = gb.op("add", y, b)
    return apply_activation(gb, y, p["activation"])


register_layer(LayerDef(
    "conv2d", "2-D convolution over channels-last images: activation(conv(x, kernel) + bias),"
    " kernel [height, width, channels / groups, filters]",
    params={
        **_COMMON,
        "filters": {"type": "integer", "minimum": 1, "maximum": 1_000_000,
                    "description": "number of output channels", "examples": [32]},
        "kernel_size": _hw("height and width of the kernel (one integer for both)", 3,
                           default=3),
        "strides": _hw("step between kernel positions, per axis", 2, default=1),
        "padding": _PADDING,
        "dilation": _hw("spacing between kernel taps (1: adjacent; 2: every other pixel)", 2,
                        default=1),
        "groups": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1,
                   "description": "split channels into this many groups convolved separately"
                   " (channels and filters must divide by it; = channels: depthwise)",
                   "examples": [1]},
        "activation": _enum(ACTIVATIONS, "activation applied to the output", "linear"),
        "initializer": _enum(INITIALIZERS, "how the kernel starts", "glorot_uniform"),
        "bias": {"type": "boolean", "default": True, "description": "add a learned bias per"
                 " filter", "examples": [True]},
        "bias_initializer": _enum(INITIALIZERS, "how the bias starts", "zeros"),
        "trainable": {"type": "boolean", "default": True,
                      "description": "false freezes the layer's parameters", "examples": [False]},
    },
    required=("filters",), shorthand="filters", lower=_lower_conv2d,
))


def _pool_lowering(op: str, layer: str):
    def lower(gb: GraphBuilder, x: Value, p: dict) -> Value:
        _image_input(gb, x, layer)
        kernel = pair(p["pool_size"])
        strides = kernel if p["strides"] is None else pair(p["strides"])
        return gb.op(op, x, kernel=kernel, strides=strides,
                     pads=_explicit_pads(p["padding"], x.shape[1:3], kernel, strides))
    return lower


def _pool_params(what: str) -> dict:
    strides = _hw("step between windows, per axis (default: the pool size)", 2)
    strides["oneOf"].insert(0, {"type": "null"})
    return {**_COMMON,
            "pool_size": _hw(f"height and width of the window {what}", 2, default=2),
            "strides": {**strides, "default": None},
            "padding": {**_PADDING, "description": _PADDING["description"] +
                        "; padded pixels never count (they are not in any maximum or average)"}}


register_layer(LayerDef(
    "max_pool2d", "the maximum of each window of channels-last images, per channel",
    params=_pool_params("whose maximum is taken"), required=(), shorthand="pool_size",
    lower=_pool_lowering("maxpool2d", "max_pool2d"),
))

register_layer(LayerDef(
    "avg_pool2d", "the average of each window of channels-last images, per channel",
    params=_pool_params("that is averaged"), required=(), shorthand="pool_size",
    lower=_pool_lowering("avgpool2d", "avg_pool2d"),
))


def _lower_global_avg_pool2d(gb: GraphBuilder, x: Value, p: dict) -> Value:
    _image_input(gb, x, "global_avg_pool2d")
    return gb.op("global_avgpool", x)


register_layer(LayerDef(
    "global_avg_pool2d", "the average over height and width of channels-last images: one"
    " value per channel, (N, H, W, C) -> (N, C)",
    params=dict(_COMMON), required=(), shorthand=None, lower=_lower_global_avg_pool2d,
))

register_layer(LayerDef(
    "flatten", "one feature vector per example, in (height, width, channels) order for"
    " images; (N, H, W, C) -> (N, H*W*C)",
    params=dict(_COMMON), required=(), shorthand=None,
    lower=lambda gb, x, p: x if len(x.shape) == 2 else gb.op("flatten", x),
))

register_layer(LayerDef(
    "reshape", "gives each example a new shape with the same number of values (the batch"
    " axis stays)",
    params={**_COMMON,
            "target_shape": {"type": "array", "minItems": 1, "maxItems": 8,
                             "items": {"type": "integer", "minimum": -1, "maximum": 10**9,
                                       "not": {"const": 0}},
                             "description": "the shape of one example, without the batch axis;"
                             " one entry may be -1 (worked out from the others)",
                             "examples": [[28, 28, 1]]}},
    required=("target_shape",), shorthand="target_shape",
    lower=lambda gb, x, p: gb.op("reshape", x, shape=tuple(p["target_shape"])),
))


def _lower_batch_norm(gb: GraphBuilder, x: Value, p: dict) -> Value:
    c = x.shape[-1]
    ones, zeros = INITIALIZERS["ones"].fn, INITIALIZERS["zeros"].fn
    gamma = gb.param("gamma", (c,), ones, p["trainable"])
    beta = gb.param("beta", (c,), zeros, p["trainable"])
    mean = gb.param("moving_mean", (c,), zeros, trainable=False)
    var = gb.param("moving_variance", (c,), ones, trainable=False)
    a = gb.op("batchnorm", x, gamma, beta, mean, var, epsilon=p["epsilon"])
    y = gb.op("batchnorm_train", a, x, gamma, beta, mean, var, epsilon=p["epsilon"],
              momentum=p["momentum"])
    return apply_activation(gb, y, p["activation"])


register_layer(LayerDef(
    "batch_norm", "normalises each channel (the last axis): with the batch's statistics in"
    " training, with moving averages of them at inference and in the exported model",
    params={**_COMMON,
            "momentum": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.99,
                         "description": "moving = momentum * moving + (1 - momentum) * batch"
                         " (Keras' convention)", "examples": [0.99]},
            "epsilon": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1e-3,
                        "description": "added to the variance", "examples": [0.001]},
            "activation": _enum(ACTIVATIONS, "activation applied after normalising", "linear"),
            "trainable": {"type": "boolean", "default": True, "examples": [False],
                          "description": "false freezes gamma and beta (the moving statistics"
                          " still follow the data)"}},
    required=(), shorthand=None, lower=_lower_batch_norm,
))


# ----------------------------------------------------------------------------- sequences
# Sequences are (N, time, features). Recurrent layers follow Keras: the same parameters,
# defaults and weight layout (see dlspec.ops.recurrent), a zero initial state.

def _sequence_input(gb: GraphBuilder, x: Value, layer: str) -> None:
    if len(x.shape) != 3:
        raise ShapeError(f"layer {gb.layer!r}: {layer} needs (batch, time, features) input, "
                         f"got {fmt_shape(x.shape)}; cut a time-ordered table into windows "
                         "with data.sequence (e.g. sequence: {window: 12}), or reshape to "
                         "(time, features) first")


def _forget_bias(init, units: int):
    """Keras' unit_forget_bias: the forget gate's bias starts at 1, the rest from init."""
    def fn(rng, shape):
        return np.concatenate([init(rng, (units,)), np.ones(units, np.float32),
                               init(rng, (2 * units,))])
    return fn


def _recurrent_lowering(cell: str, layer: str):
    def lower(gb: GraphBuilder, x: Value, p: dict) -> Value:
        _sequence_input(gb, x, layer)
        units, width, train = p["units"], GATES[cell] * p["units"], p["trainable"]
        inputs = [x, gb.param("kernel", (x.shape[2], width),
                              INITIALIZERS[p["kernel_initializer"]].fn, train),
                  gb.param("recurrent_kernel", (units, width),
                           INITIALIZERS[p["recurrent_initializer"]].fn, train)]
        if p["use_bias"]:
            init = INITIALIZERS[p["bias_initializer"]].fn
            if p.get("unit_forget_bias"):
                init = _forget_bias(init, units)
            inputs.append(gb.param("bias", bias_shape(cell, units), init, train))
        attrs = {"units": units, "return_sequences": p["return_sequences"],
                 "activation": p["activation"]}
        if "recurrent_activation" in p:
            attrs["recurrent_activation"] = p["recurrent_activation"]
        return gb.op(cell if p["use_bias"] else f"{cell}_nobias", *inputs, **attrs)
    return lower


def _recurrent_params(gates: str | None, extra: dict) -> dict:
    """The parameters every recurrent layer shares (``gates``: what the recurrent
    activation acts on; None: the layer has none)."""
    params = {
        **_COMMON,
        "units": {"type": "integer", "minimum": 1, "maximum": 100_000,
                  "description": "size of the hidden state (the output's last axis)",
                  "examples": [64]},
        "return_sequences": {"type": "boolean", "default": False, "examples": [True],
                             "description": "true: the hidden state of every step (N, time,"
                             " units), e.g. to stack another recurrent layer; false: the last"
                             " one (N, units)"},
        "activation": _enum(RNN_ACTIVATIONS, "activation of the candidate state and of the"
                            " output", "tanh"),
        "use_bias": {"type": "boolean", "default": True, "description": "add learned biases",
                     "examples": [True]},
        "kernel_initializer": _enum(INITIALIZERS, "how the kernel (features, gates * units)"
                                    " starts", "glorot_uniform"),
        "recurrent_initializer": _enum(INITIALIZERS, "how the recurrent kernel (units, gates"
                                       " * units) starts", "orthogonal"),
        "bias_initializer": _enum(INITIALIZERS, "how the bias starts", "zeros"),
        "trainable": {"type": "boolean", "default": True,
                      "description": "false freezes the layer's parameters", "examples": [False]},
    }
    if gates is not None:
        params["recurrent_activation"] = _enum(RNN_ACTIVATIONS, f"activation of the {gates}",
                                               "sigmoid")
    return {**params, **extra}


register_layer(LayerDef(
    "lstm", "long short-term memory (Keras' LSTM) over sequences (N, time, features):"
    " kernel (features, 4 * units), recurrent kernel (units, 4 * units) and bias (4 * units),"
    " gates in Keras' order input, forget, cell, output",
    params=_recurrent_params("input, forget and output gates", {
        "unit_forget_bias": {"type": "boolean", "default": True, "examples": [True],
                             "description": "start the forget gate's bias at 1 (Keras'"
                             " default; bias_initializer sets the rest)"}}),
    required=("units",), shorthand="units", lower=_recurrent_lowering("lstm", "lstm"),
))

register_layer(LayerDef(
    "gru", "gated recurrent unit (Keras' GRU with its default reset_after=True, ONNX's"
    " linear_before_reset=1: the reset gate scales the recurrent projection after the"
    " matrix product) over sequences (N, time, features): kernel (features, 3 * units),"
    " recurrent kernel (units, 3 * units), bias (2, 3 * units): input bias, then recurrent"
    " bias; gates in Keras' order update, reset, candidate",
    params=_recurrent_params("update and reset gates", {}),
    required=("units",), shorthand="units", lower=_recurrent_lowering("gru", "gru"),
))

register_layer(LayerDef(
    "simple_rnn", "fully connected recurrence (Keras' SimpleRNN) over sequences (N, time,"
    " features): h = activation(x @ kernel + h @ recurrent_kernel + bias)",
    params=_recurrent_params(None, {}),
    required=("units",), shorthand="units", lower=_recurrent_lowering("rnn", "simple_rnn"),
))
