"""A small helper for writing ONNX graphs node by node.

Every emitter (ops, preprocessing, output decoding) writes through one
``OnnxBuilder``, which hands out unique value names and collects nodes and
initializers. The ONNX opset and IR version live in ``dlspec.opsets``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ML_DOMAIN = "ai.onnx.ml"


class OnnxBuilder:
    """Collects nodes, initializers, inputs and outputs of one ONNX graph."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self.uses_ml = False
        self._names: set[str] = set()
        self._next: dict[str, int] = {}  # per hint: the next suffix to try (keeps fresh O(1))

    def fresh(self, hint: str) -> str:
        """A value name not used before, derived from ``hint``."""
        name, i = hint, self._next.get(hint, 1)
        if i > 1:
            name = f"{hint}_{i}"
        while name in self._names:
            i += 1
            name = f"{hint}_{i}"
        self._next[hint] = i + 1
        self._names.add(name)
        return name

    def reserve(self, name: str) -> str:
        """Claim an exact name (graph inputs and outputs); it must be free."""
        if name in self._names:
            raise ValueError(f"ONNX value name {name!r} is used twice")
        self._names.add(name)
        return name

    def const(self, array: np.ndarray, hint: str = "const") -> str:
        """Add ``array`` as an initializer and return its name."""
        name = self.fresh(hint)
        arr = np.asarray(array)
        if arr.dtype.kind in "OUS":
            tensor = helper.make_tensor(
                name, TensorProto.STRING, arr.shape, [str(v).encode() for v in arr.ravel()]
            )
        else:
            tensor = numpy_helper.from_array(arr, name)
        self.initializers.append(tensor)
        return name

    def node(self, op_type: str, inputs: list[str], hint: str | None = None, *,
             outputs: int = 1, domain: str = "", **attrs) -> str | list[str]:
        """Add one node; returns its output name (or names when ``outputs > 1``)."""
        base = hint or op_type.lower()
        outs = [self.fresh(base if k == 0 else f"{base}_{k}") for k in range(outputs)]
        if domain == ML_DOMAIN:
            self.uses_ml = True
        self.nodes.append(
            helper.make_node(op_type, inputs, outs, name=self.fresh(f"n_{base}"),
                             domain=domain, **attrs)
        )
        return outs[0] if outputs == 1 else outs

    def rename(self, value: str, name: str) -> str:
        """Make ``value`` available under the exact ``name`` (an Identity node)."""
        self.reserve(name)
        self.nodes.append(helper.make_node("Identity", [value], [name],
                                           name=self.fresh(f"n_{name}")))
        return name

    def add_input(self, name: str, elem_type: int, shape: list) -> str:
        self.reserve(name)
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def add_output(self, name: str, elem_type: int, shape: list) -> None:
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))

    def graph(self, name: str) -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, self.inputs, self.outputs,
                                 initializer=self.initializers)
