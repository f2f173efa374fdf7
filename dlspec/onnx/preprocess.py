"""The fitted preprocessing of each input kind, inside the exported graph.

Each emitter adds an input's raw ONNX inputs and the nodes that turn them into the
float32 examples the network reads, with the same float32 operations in the same order
as the preprocessor's NumPy ``transform``, so the exported model takes raw data and gives
the engine's numbers. Registered by input kind (``dlspec.inputs.KINDS``' names).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from dlspec.onnx.builder import ML_DOMAIN, OnnxBuilder


def emit_table(b: OnnxBuilder, pre, name: str) -> str:
    """Add the raw inputs (one ['N', 1] per column) and the preprocessing nodes.

    A NaN numeric input becomes the column's training mean (IsNaN + Where on the
    assembled features); "" or an unseen category encodes as all zeros (one-hot) or -1
    (label). Returns the name of the float32 ['N', F] feature tensor.
    """
    for col in pre.inputs:
        kind = TensorProto.FLOAT if col.kind == "numeric" else TensorProto.STRING
        b.add_input(col.name, kind, ["N", 1])
    parts = []
    fill = np.zeros(len(pre.feature_names), dtype=np.float32)
    j = 0  # feature position of the next column
    for col in pre.inputs:
        enc = pre.encodings.get(col.name)
        if enc is None:
            if col.impute is None:
                raise ValueError(f"numeric input {col.name!r} has no training mean")
            fill[j] = np.float32(col.impute)
            j += 1
            parts.append(col.name)
        elif enc.kind == "label_encode":
            j += 1
            parts.append(b.node(
                "LabelEncoder", [col.name], f"{col.name}_label", domain=ML_DOMAIN,
                keys_strings=list(col.categories),
                values_floats=[float(i) for i in range(len(col.categories))],
                default_float=-1.0))
        else:
            # Leaving the first category out of the vocabulary maps it to all zeros,
            # exactly what drop_first means.
            cats = list(col.categories[1:] if enc.drop_first else col.categories)
            j += len(cats)
            if not cats:
                continue  # a one-category column with drop_first has no features
            hot = b.node("OneHotEncoder", [col.name], f"{col.name}_onehot",
                         domain=ML_DOMAIN, cats_strings=cats, zeros=1)
            axes = b.const(np.array([1], dtype=np.int64), "axes")
            parts.append(b.node("Squeeze", [hot, axes], f"{col.name}_onehot2d"))
    x = b.node("Concat", parts, f"{name}_raw", axis=1)
    if any(c.kind == "numeric" for c in pre.inputs):
        nan = b.node("IsNaN", [x], f"{name}_missing")
        x = b.node("Where", [nan, b.const(fill, f"{name}_impute"), x], f"{name}_filled")
    x = b.node("Sub", [x, b.const(pre.mean, f"{name}_mean")], f"{name}_centered")
    return b.node("Div", [x, b.const(pre.scale, f"{name}_scale")], name)


def emit_image(b: OnnxBuilder, pre, name: str) -> str:
    """The raw uint8 input ``name`` [N, H, W, C] and its preprocessing; returns the floats."""
    b.add_input(name, TensorProto.UINT8, ["N", *pre.shape])
    x = b.node("Cast", [name], "pixels", to=TensorProto.FLOAT)
    x = b.node("Div", [x, b.const(np.array(pre.scale, np.float32), "scale")], "scaled")
    x = b.node("Sub", [x, b.const(pre.mean, "mean")], "centered")
    return b.node("Div", [x, b.const(pre.std, "std")], f"{name}_features")


def emit_sequence(b: OnnxBuilder, pre, name: str) -> str:
    """The raw float32 input ``name`` [N, window, F] and its scaling; returns the features."""
    b.add_input(name, TensorProto.FLOAT, ["N", *pre.shape])
    x = b.node("Sub", [name, b.const(pre.offset, "feature_offset")], f"{name}_centered")
    return b.node("Div", [x, b.const(pre.scale, "feature_scale")], f"{name}_features")


def emit_sequence_output(b: OnnxBuilder, pre, out: str) -> str:
    """A sequence model's regression output in the target's units (unchanged when the
    target was not scaled)."""
    if not pre.target_scaled:
        return out
    x = b.node("Mul", [out, b.const(np.array([pre.target_scale], np.float32),
                                    "target_scale")], "prediction_scaled")
    return b.node("Add", [x, b.const(np.array([pre.target_offset], np.float32),
                                     "target_offset")], "prediction_units")


def emit_tensor(b: OnnxBuilder, pre, name: str) -> str:
    """A float32 tensor input taken as it is."""
    b.add_input(name, TensorProto.FLOAT, ["N", *pre.shape])
    return name


def emit_text_input(b: OnnxBuilder, pre, name: str) -> str:
    """The raw string column ['N', 1] and its tokenizer + vocabulary; returns the ids."""
    from dlspec.onnx.text import emit_text

    b.add_input(pre.column, TensorProto.STRING, ["N", 1])
    flat = b.node("Reshape", [pre.column, b.const(np.array([-1], np.int64), "flat")],
                  f"{pre.column}_strings")
    ids, _ = emit_text(b, flat, pre.encoder)
    return ids


EMITTERS = {"table": emit_table, "image": emit_image, "sequence": emit_sequence,
            "tensor": emit_tensor, "text": emit_text_input}
# What follows the network for an input kind's regression output (its target's units).
OUTPUT_EMITTERS = {"sequence": emit_sequence_output}
