"""`dlspec validate --deep`: prove, before training, that a spec's network exports and runs.

The graph is compiled, given seeded random weights, emitted to ONNX at the spec's opset
and loaded by the installed onnxruntime, whose outputs on random inputs must match the
engine's. Needs no data: the inputs are the network's own (features, images, windows).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from dlspec.engine.network import Network
from dlspec.errors import Location, SpecError
from dlspec.graph.ir import Graph
from dlspec.onnx.builder import OnnxBuilder
from dlspec.onnx.export import emit_network
from dlspec.onnx.parity import ATOL, RTOL
from dlspec.opsets import ir_version_for

ROWS = 3


def deep_check(graph: Graph, opset: int, name: str, where: Location) -> list[SpecError]:
    """Problems exporting a spec's compiled ``graph`` at ``opset`` or running it in
    onnxruntime (empty when it is fine), located at ``where`` (the spec's export.opset)."""
    import onnxruntime as ort

    def problem(message: str) -> list[SpecError]:
        return [SpecError(message, where, path="export.opset", code="deep-check")]

    net = Network(graph)
    net.buffer.initialize(np.random.default_rng(0))
    b = OnnxBuilder(opset)
    feeds = {}
    # an input some op reads as indices (a text input's token ids) is int64
    ids = {v.id for node in net.graph.nodes for i, v in enumerate(node.inputs)
           if i in node.op.index_inputs and v.kind == "input"}
    for v in net.graph.inputs:
        feeds[v.name] = b.add_input(v.name, TensorProto.INT64 if v.id in ids
                                    else TensorProto.FLOAT, ["N", *v.shape[1:]])
    outs = emit_network(b, net, feeds)
    for name, value in outs.items():
        b.add_output(value, TensorProto.FLOAT, ["N", *net.graph.outputs[name].shape[1:]])
    model = helper.make_model(b.graph(name),
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version_for(opset)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - checker and shape inference raise several types
        return problem(f"the network does not export at opset {opset}: "
                       f"{str(e).splitlines()[0]}")
    try:
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors are not one class
        return problem(f"onnxruntime {ort.__version__} cannot load opset {opset} / IR "
                       f"{model.ir_version}: {str(e).splitlines()[0]}")
    rng = np.random.default_rng(1)
    x = {v.name: _ids(rng, v, net) if v.id in ids else
         rng.standard_normal((ROWS, *v.shape[1:])).astype(np.float32)
         for v in net.graph.inputs}
    got = session.run([outs[n] for n in net.graph.outputs], x)
    want = net.outputs(x)
    for g, (name, w) in zip(got, want.items(), strict=True):
        if not np.allclose(g, w, rtol=RTOL, atol=ATOL):
            return problem(f"onnxruntime and the engine disagree on output '{name}' (max "
                           f"|diff| {float(np.abs(g - w).max()):.2e}); please report this")
    return []


def _ids(rng: np.random.Generator, v, net: Network) -> np.ndarray:
    """Right-padded token ids for ``v``, below the smallest embedding table reading it."""
    rows = min(p.shape[0] for node in net.graph.nodes if v in node.inputs
               for p in node.inputs if p.kind == "param")
    steps = v.shape[1]
    x = rng.integers(1, rows, size=(ROWS, steps)).astype(np.int64)
    lengths = rng.integers(0, steps + 1, size=ROWS)
    x[np.arange(steps)[None, :] >= lengths[:, None]] = 0
    return x
