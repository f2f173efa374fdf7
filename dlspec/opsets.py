"""The one place that knows which ONNX opsets and IR version dlspec writes: a leaf module
(no dlspec imports), read by the spec schema (export.opset) and by onnx/ alike."""

from __future__ import annotations

DEFAULT_OPSET = 17
MIN_OPSET = 13  # Softmax/ReduceSum semantics dlspec emits exist from 13 on
MAX_OPSET = 21
TEXT_OPSET = 20  # text features: StringSplit exists from opset 20
ML_OPSET = 3  # ai.onnx.ml: LabelEncoder v2 and OneHotEncoder v1 are inside it


def ir_version_for(opset: int) -> int:
    """The oldest IR version that carries ``opset`` (what older runtimes load)."""
    from onnx import helper  # heavy; only export needs it

    for _release, ir, op, *_rest in helper.VERSION_TABLE:
        if op >= opset:
            return ir
    raise ValueError(f"opset {opset} is newer than this onnx release knows")
