"""A trained network and its fitted preprocessing -> one ONNX model taking raw columns.

The graph: raw columns (by name), images or sequence windows -> preprocessing ->
the network's ops (each op's own ``emit``) -> decoded outputs: class
probabilities and the predicted label in the target's own values, or the
regression prediction (in the target's units when it was scaled for training).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from dlspec.data.dataset import Target
from dlspec.data.preprocess import Preprocessor
from dlspec.engine.network import Network
from dlspec.errors import ExportError
from dlspec.onnx.builder import ML_DOMAIN, OnnxBuilder
from dlspec.onnx.portability import NOTE_KEY, portability_note
from dlspec.onnx.versions import ML_OPSET, ir_version_for
from dlspec.runtime.contract import CONTRACT_KEY, Contract
from dlspec.version import __version__

PROBABILITIES, LABEL, PREDICTION = "probabilities", "label", "prediction"


def emit_network(b: OnnxBuilder, net: Network, features: str) -> str:
    graph = net.graph
    names = {graph.inputs[0].id: features}
    for p, view in zip(graph.params, net.buffer.views, strict=True):
        names[p.value.id] = b.const(np.ascontiguousarray(view), p.value.name)
    for node in graph.nodes:
        if node.op.train_only:  # inference: the identity of its first input
            names[node.output.id] = names[node.inputs[0].id]
            continue
        names[node.output.id] = node.op.emit(b, [names[v.id] for v in node.inputs],
                                             **node.attrs)
    return names[graph.output.id]


def _classes_tensor(classes: list) -> np.ndarray:
    if all(isinstance(c, str) for c in classes):
        return np.array(classes, dtype=object)
    if all(isinstance(c, int) for c in classes):
        return np.array(classes, dtype=np.int64)
    return np.array(classes, dtype=np.float32)


def _emit_outputs(b: OnnxBuilder, out: str, width: int, target: Target) -> list[str]:
    if target.task == "regression":
        b.rename(out, PREDICTION)
        b.add_output(PREDICTION, TensorProto.FLOAT, ["N", width])
        return [PREDICTION]
    k = len(target.classes)
    if width == 1:  # sigmoid: p(class 1); class 0 gets 1 - p
        one = b.const(np.array(1.0, dtype=np.float32), "one")
        probs = b.node("Concat", [b.node("Sub", [one, out], "p0"), out], "probs", axis=1)
    else:
        probs = out
    b.rename(probs, PROBABILITIES)
    b.add_output(PROBABILITIES, TensorProto.FLOAT, ["N", k])
    index = b.node("ArgMax", [PROBABILITIES], "class_index", axis=1, keepdims=0)
    classes = _classes_tensor(target.classes)
    label = b.node("Gather", [b.const(classes, "classes"), index], "label_value", axis=0)
    b.rename(label, LABEL)
    elem = {np.dtype(np.int64): TensorProto.INT64, np.dtype(np.float32): TensorProto.FLOAT}
    b.add_output(LABEL, elem.get(classes.dtype, TensorProto.STRING), ["N"])
    return [PROBABILITIES, LABEL]


def build_model(net: Network, pre: Preprocessor, target: Target, *, opset: int,
                name: str, spec_sha256: str) -> onnx.ModelProto:
    """The checked ONNX model (``onnx.checker`` full check passed).

    Raises:
        ExportError: the graph cannot be built or fails the checker.
    """
    b = OnnxBuilder(opset)
    try:
        features = pre.emit(b)
        out = emit_network(b, net, features)
        sequence = pre.sequence_input
        if sequence and target.task == "regression":
            out = pre.emit_output(b, out)
        outputs = _emit_outputs(b, out, net.graph.output.shape[-1], target)
    except ValueError as e:  # e.g. a column named like an output
        raise ExportError(f"cannot export: {e}") from None
    imports = [helper.make_opsetid("", opset)]
    if b.uses_ml:
        imports.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
    model = helper.make_model(b.graph(name), opset_imports=imports,
                              producer_name="dlspec", producer_version=__version__)
    model.ir_version = ir_version_for(opset)
    contract = Contract(pre.inputs, target.name, target.task, target.classes, outputs, sequence)
    note = portability_note(model)
    helper.set_model_props(model, {
        "dlspec.version": __version__, "dlspec.spec_sha256": spec_sha256,
        "dlspec.name": name, CONTRACT_KEY: contract.to_json(), **({NOTE_KEY: note} if note
                                                                 else {})})
    what = "raw windows" if sequence else "raw columns"
    model.doc_string = f"dlspec model '{name}': {what} in, " + ", ".join(outputs) + " out"
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"the exported model fails onnx.checker: {e}") from None
    return model
