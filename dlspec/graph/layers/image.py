"""Image layers: conv2d, pooling, global average pooling and batch normalisation.

Images are channels-last: (N, height, width, channels).
"""

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
    register_layer,
)
from dlspec.ops.conv import pair, same_pads
from dlspec.ops.registry import fmt_shape


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


def image_input(x: tuple, layer: str) -> None:
    if len(x) != 4:
        raise ShapeError(f"{layer} expects images (N, height, width, channels), got "
                         f"{fmt_shape(x)}; give the model image input, or reshape to (height,"
                         " width, channels) first")


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


def _conv_build(shapes: tuple, p: dict) -> list[Weight]:
    (x,) = shapes
    image_input(x, "conv2d")
    kernel = pair(p["kernel_size"])
    out = [Weight("kernel", (*kernel, x[3] // p["groups"], p["filters"]),
                  init(p["initializer"]), p["trainable"],
                  ("rows", "columns", "channels per group" if p["groups"] > 1 else "channels",
                   "filters"))]
    if p["bias"]:
        out.append(Weight("bias", (p["filters"],), init(p["bias_initializer"]),
                          p["trainable"], ("filters",)))
    return out


def _conv_apply(gb, xs, w, p):
    x = xs[0]
    kernel, strides, dilations = pair(p["kernel_size"]), pair(p["strides"]), pair(p["dilation"])
    y = gb.op("conv2d", x, w["kernel"], strides=strides, dilations=dilations,
              groups=p["groups"],
              pads=_explicit_pads(p["padding"], x.shape[1:3], kernel, strides, dilations))
    if "bias" in w:
        y = gb.op("add", y, w["bias"])
    return apply_activation(gb, y, p["activation"])


register_layer(LayerDef(
    "conv2d", "2-D convolution over channels-last images: activation(conv(x, kernel) + bias),"
    " kernel [height, width, channels / groups, filters]",
    params={
        **COMMON,
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
        "activation": enum(ACTIVATIONS, "activation applied to the output", "linear"),
        "initializer": enum(INITIALIZERS, "how the kernel starts", "glorot_uniform"),
        "bias": {"type": "boolean", "default": True, "description": "add a learned bias per"
                 " filter", "examples": [True]},
        "bias_initializer": enum(INITIALIZERS, "how the bias starts", "zeros"),
        "trainable": TRAINABLE,
    },
    required=("filters",), shorthand="filters", build=_conv_build, apply=_conv_apply,
    weighted=True,
))


def _pool(op: str):
    def apply(gb, xs, w, p):
        x = xs[0]
        kernel = pair(p["pool_size"])
        strides = kernel if p["strides"] is None else pair(p["strides"])
        return gb.op(op, x, kernel=kernel, strides=strides,
                     pads=_explicit_pads(p["padding"], x.shape[1:3], kernel, strides))
    return apply


def _image_only(layer: str):
    def build(shapes: tuple, p: dict) -> list[Weight]:
        image_input(shapes[0], layer)
        return []
    return build


def _pool_params(what: str) -> dict:
    strides = _hw("step between windows, per axis (default: the pool size)", 2)
    strides["oneOf"].insert(0, {"type": "null"})
    return {**COMMON,
            "pool_size": _hw(f"height and width of the window {what}", 2, default=2),
            "strides": {**strides, "default": None},
            "padding": {**_PADDING, "description": _PADDING["description"] +
                        "; padded pixels never count (they are not in any maximum or average)"}}


register_layer(LayerDef(
    "max_pool2d", "the maximum of each window of channels-last images, per channel",
    params=_pool_params("whose maximum is taken"), required=(), shorthand="pool_size",
    build=_image_only("max_pool2d"), apply=_pool("maxpool2d"),
))

register_layer(LayerDef(
    "avg_pool2d", "the average of each window of channels-last images, per channel",
    params=_pool_params("that is averaged"), required=(), shorthand="pool_size",
    build=_image_only("avg_pool2d"), apply=_pool("avgpool2d"),
))

register_layer(LayerDef(
    "global_avg_pool2d", "the average over height and width of channels-last images: one"
    " value per channel, (N, H, W, C) -> (N, C)",
    params=dict(COMMON), required=(), shorthand=None, build=_image_only("global_avg_pool2d"),
    apply=lambda gb, xs, w, p: gb.op("global_avgpool", xs[0]),
))


def _bn_build(shapes: tuple, p: dict) -> list[Weight]:
    (x,) = shapes
    if len(x) < 2:
        raise ShapeError(f"batch_norm expects (N, ..., channels), got {fmt_shape(x)}")
    c = x[-1]
    ones, zeros = init("ones"), init("zeros")
    return [Weight("gamma", (c,), ones, p["trainable"], ("channels",)),
            Weight("beta", (c,), zeros, p["trainable"], ("channels",)),
            Weight("moving_mean", (c,), zeros, False, ("channels",)),
            Weight("moving_variance", (c,), ones, False, ("channels",))]


def _bn_apply(gb, xs, w, p):
    x = xs[0]
    args = (w["gamma"], w["beta"], w["moving_mean"], w["moving_variance"])
    a = gb.op("batchnorm", x, *args, epsilon=p["epsilon"])
    y = gb.op("batchnorm_train", a, x, *args, epsilon=p["epsilon"], momentum=p["momentum"])
    return apply_activation(gb, y, p["activation"])


register_layer(LayerDef(
    "batch_norm", "normalises each channel (the last axis): with the batch's statistics in"
    " training, with moving averages of them at inference and in the exported model",
    params={**COMMON,
            "momentum": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.99,
                         "description": "moving = momentum * moving + (1 - momentum) * batch"
                         " (Keras' convention)", "examples": [0.99]},
            "epsilon": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 1e-3,
                        "description": "added to the variance", "examples": [0.001]},
            "activation": enum(ACTIVATIONS, "activation applied after normalising", "linear"),
            "trainable": {"type": "boolean", "default": True, "examples": [False],
                          "description": "false freezes gamma and beta (the moving statistics"
                          " still follow the data)"}},
    required=(), shorthand=None, build=_bn_build, apply=_bn_apply,
    weighted=True,
))
