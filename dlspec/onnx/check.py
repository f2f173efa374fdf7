"""`dlspec validate --deep`: prove, before training, that a spec's network exports and runs.

The network is lowered, given seeded random weights, emitted to ONNX at the
spec's opset and loaded by the installed onnxruntime, whose output on random
rows must match the engine's. Needs no data: the input is the feature vector.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from dlspec.engine.network import Network
from dlspec.errors import SpecError
from dlspec.onnx.builder import OnnxBuilder
from dlspec.onnx.export import emit_network
from dlspec.onnx.parity import ATOL, RTOL
from dlspec.onnx.versions import ir_version_for
from dlspec.spec.model import Spec

ROWS = 3


def deep_check(spec: Spec, input_shape: int | tuple) -> list[SpecError]:
    """Problems exporting or running the spec's network (empty when it is fine)."""
    import onnxruntime as ort

    where = spec.locate(("export", "opset"), False)

    def problem(message: str) -> list[SpecError]:
        return [SpecError(message, where, path="export.opset", code="deep-check")]

    net = Network(spec.layers, input_shape, spec.train.loss, spec.locate)
    net.buffer.initialize(np.random.default_rng(0))
    b = OnnxBuilder(spec.opset)
    shape = net.graph.inputs[0].shape
    b.add_input("features", TensorProto.FLOAT, ["N", *shape[1:]])
    out = emit_network(b, net, "features")
    b.add_output(out, TensorProto.FLOAT, ["N", *net.graph.output.shape[1:]])
    model = helper.make_model(b.graph(spec.name),
                              opset_imports=[helper.make_opsetid("", spec.opset)])
    model.ir_version = ir_version_for(spec.opset)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - checker and shape inference raise several types
        return problem(f"the network does not export at opset {spec.opset}: "
                       f"{str(e).splitlines()[0]}")
    try:
        session = ort.InferenceSession(model.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors are not one class
        return problem(f"onnxruntime {ort.__version__} cannot load opset {spec.opset} / IR "
                       f"{model.ir_version}: {str(e).splitlines()[0]}")
    x = np.random.default_rng(1).standard_normal((ROWS, *shape[1:])).astype(np.float32)
    got = session.run(None, {"features": x})[0]
    _, want = net.forward(x)
    if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
        return problem(f"onnxruntime and the engine disagree on this network (max |diff| "
                       f"{float(np.abs(got - want).max()):.2e}); please report this")
    return []
