"""The layer registry: each layer type with its parameter schema and its lowering to ops.

The JSON Schema of the spec format is generated from this registry (and from
the activation, initializer, optimizer, loss and metric registries), so a layer
type cannot exist in one place and be missing in the other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.ir import GraphBuilder, Value


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
