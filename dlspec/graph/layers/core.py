"""Dense, dropout, activation, flatten, stop_gradient and reshape."""

from __future__ import annotations

from dlspec.errors import ShapeError
from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.layers import (
    ACTIVATIONS,
    COMMON,
    TRAINABLE,
    LayerDef,
    Weight,
    apply_activation,
    enum,
    init,
    no_weights,
    register_layer,
)
from dlspec.ops.registry import fmt_shape


def _dense_build(shapes: tuple, p: dict) -> list[Weight]:
    (x,) = shapes
    if len(x) != 2:
        raise ShapeError(f"dense takes (N, features) but its input is {fmt_shape(x)}; "
                         "add a flatten (or global_avg_pool2d) layer before it")
    out = [Weight("kernel", (x[1], p["units"]), init(p["initializer"]), p["trainable"],
                  ("inputs", "units"))]
    if p["bias"]:
        out.append(Weight("bias", (p["units"],), init(p["bias_initializer"]), p["trainable"],
                          ("units",)))
    return out


def _dense_apply(gb, xs, w, p):
    y = gb.op("matmul", xs[0], w["kernel"])
    if "bias" in w:
        y = gb.op("add", y, w["bias"])
    return apply_activation(gb, y, p["activation"])


register_layer(LayerDef(
    "dense", "fully connected: activation(x @ kernel + bias)",
    params={
        **COMMON,
        "units": {"type": "integer", "minimum": 1, "maximum": 1_000_000,
                  "description": "number of output features", "examples": [6]},
        "activation": enum(ACTIVATIONS, "activation applied to the output", "linear"),
        "initializer": enum(INITIALIZERS, "how the kernel starts", "glorot_uniform"),
        "bias": {"type": "boolean", "default": True, "description": "add a learned bias",
                 "examples": [True]},
        "bias_initializer": enum(INITIALIZERS, "how the bias starts", "zeros"),
        "trainable": TRAINABLE,
    },
    required=("units",), shorthand="units", build=_dense_build, apply=_dense_apply,
    weighted=True,
))


def _dropout_apply(gb, xs, w, p):
    x = xs[0]
    if p["rate"] == 0:
        return x
    mask = gb.noise("mask", x.shape, p["rate"])
    return gb.op("dropout", x, mask)


register_layer(LayerDef(
    "dropout", "during training, zeroes each input with probability `rate` and scales the rest"
    " by 1 / (1 - rate); the identity at inference",
    params={**COMMON,
            "rate": {"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                     "description": "fraction of inputs to drop", "examples": [0.1]}},
    required=("rate",), shorthand="rate", build=no_weights, apply=_dropout_apply,
))

register_layer(LayerDef(
    "activation", "applies an activation function on its own",
    params={**COMMON,
            "activation": {"type": "string", "enum": sorted(ACTIVATIONS),
                           "description": "the function", "examples": ["relu"]}},
    required=("activation",), shorthand="activation", build=no_weights,
    apply=lambda gb, xs, w, p: apply_activation(gb, xs[0], p["activation"]),
))

register_layer(LayerDef(
    "flatten", "one feature vector per example, in (height, width, channels) order for"
    " images; (N, H, W, C) -> (N, H*W*C)",
    params=dict(COMMON), required=(), shorthand=None, build=no_weights,
    apply=lambda gb, xs, w, p: xs[0] if len(xs[0].shape) == 2 else gb.op("flatten", xs[0]),
))

register_layer(LayerDef(
    "stop_gradient", "the identity, through which no gradient flows: what reads it is not "
    "trained through it (PyTorch's detach); the exported model passes the value on",
    params=dict(COMMON), required=(), shorthand=None, build=no_weights,
    apply=lambda gb, xs, w, p: gb.op("stop_gradient", xs[0]),
))

register_layer(LayerDef(
    "reshape", "gives each example a new shape with the same number of values (the batch"
    " axis stays)",
    params={**COMMON,
            "target_shape": {"type": "array", "minItems": 1, "maxItems": 8,
                             "items": {"type": "integer", "minimum": -1, "maximum": 10**9,
                                       "not": {"const": 0}},
                             "description": "the shape of one example, without the batch axis;"
                             " one entry may be -1 (worked out from the others)",
                             "examples": [[28, 28, 1]]}},
    required=("target_shape",), shorthand="target_shape", build=no_weights,
    apply=lambda gb, xs, w, p: gb.op("reshape", xs[0], shape=tuple(p["target_shape"])),
))
