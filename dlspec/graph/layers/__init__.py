"""The layer registry: each layer type with its parameter schema, the weights it declares
(``build``) and the ops it adds (``apply``).

A layer is ``build`` plus ``apply``: build declares its weights from the shapes of its
inputs, apply adds its ops reading them. A node that shares another's parameters is a
second apply with the first node's weights (after checking that its build would give the
same shapes), and a block called twice applies the same weights twice.

The JSON Schema of the spec format is generated from this registry (and from the
activation, initializer, optimizer, loss and metric registries), so a layer type cannot
exist in one place and be missing in the other.
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
class Weight:
    """A parameter a layer declares: its name within the layer (``kernel``), shape, how it
    starts, whether it trains, and what its axes mean (for messages: ``("inputs",
    "units")`` makes a kernel of the wrong shape say ``expected 2x3 (2 inputs, 3 units)``)."""

    name: str
    shape: tuple[int, ...]
    init: Callable
    trainable: bool = True
    axes: tuple[str, ...] = ()

    def describe(self) -> str:
        dims = "x".join(map(str, self.shape)) or "a scalar"
        if not self.axes:
            return dims
        parts = (f"{d} {a}" for d, a in zip(self.shape, self.axes, strict=True))
        return f"{dims} ({', '.join(parts)})"


@dataclass(frozen=True)
class LayerDef:
    """One layer type.

    Attributes:
        params: JSON Schema ``properties`` of the layer's parameters (each with
            description, default or example).
        required: parameters without a default.
        shorthand: the parameter a bare scalar stands for (``- dense: 6``).
        build: ``(input shapes, params) -> [Weight]``; raises ShapeError for inputs the
            layer cannot take.
        apply: ``(builder, inputs, weights by name, params) -> output`` adds the ops.
        arity: how many inputs the layer reads; None: two or more (joins).
        weighted: the layer has parameters (so another node can share them).
    """

    name: str
    description: str
    params: dict
    required: tuple[str, ...]
    shorthand: str | None
    build: Callable[[tuple, dict], list[Weight]]
    apply: Callable[[GraphBuilder, list[Value], dict[str, Value], dict], Value]
    arity: int | None = 1
    weighted: bool = False


LAYERS: dict[str, LayerDef] = {}


def register_layer(layer: LayerDef) -> LayerDef:
    if layer.name in LAYERS:
        raise ValueError(f"layer {layer.name!r} is registered twice")
    LAYERS[layer.name] = layer
    return layer


def no_weights(shapes: tuple, p: dict) -> list[Weight]:
    return []


def enum(registry: dict, description: str, default: str) -> dict:
    return {"type": "string", "enum": sorted(registry), "default": default,
            "description": description, "examples": [default]}


def init(name: str) -> Callable:
    return INITIALIZERS[name].fn


# The name of a layer in the list form (model.layers); a node's name is its key.
COMMON = {
    "name": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$",
             "description": "a unique name for the layer (default: type and index, e.g. dense_2)",
             "examples": ["hidden1"]},
}

TRAINABLE = {"type": "boolean", "default": True,
             "description": "false freezes the layer's parameters", "examples": [False]}


# Registration: importing each module registers its layers.
from dlspec.graph.layers import core, image, join, sequence, text  # noqa: E402,F401

__all__ = ["ACTIVATIONS", "LAYERS", "LayerDef", "Weight", "apply_activation", "register_layer"]
