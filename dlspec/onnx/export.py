"""A network and its inputs' fitted preprocessing -> one ONNX model taking raw data.

The graph: each named input's raw data (columns by name, images, sequence windows,
tensors) -> its preprocessing -> the network's ops (each op's own ``emit``) -> the
outputs. The first output is the head: decoded into class probabilities and the
predicted label in the target's own values, or the regression prediction (in the
target's units when it was scaled for training); the model's other outputs are exported
as they are, under their node names. One initializer per parameter, however many nodes
share it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
from onnx import TensorProto, helper

from dlspec.engine.network import Network
from dlspec.errors import ExportError
from dlspec.inputs.base import Target
from dlspec.onnx.builder import ML_DOMAIN, OnnxBuilder
from dlspec.onnx.portability import NOTE_KEY, portability_note
from dlspec.onnx.preprocess import EMITTERS, OUTPUT_EMITTERS
from dlspec.opsets import ML_OPSET, ir_version_for
from dlspec.runtime.contract import CONTRACT_KEY, Contract, contract_inputs
from dlspec.tasks import TASKS
from dlspec.version import __version__

PROBABILITIES, LABEL, PREDICTION = "probabilities", "label", "prediction"


def emit_network(b: OnnxBuilder, net: Network, feeds: dict[str, str]) -> dict[str, str]:
    """The network's ops reading ``feeds`` (input name -> ONNX value); returns each model
    output's ONNX value by output name. Only what the outputs need is emitted."""
    graph = net.graph
    names = {graph.input_map[name].id: value for name, value in feeds.items()}
    plan = net.infer_plan
    needed = {v.id for node in plan.nodes for v in node.inputs}
    for p, view in zip(graph.params, net.buffer.views, strict=True):
        if p.value.id in needed:
            names[p.value.id] = b.const(np.ascontiguousarray(view), p.value.name)
    for node in graph.nodes:
        if node.op.train_only:  # inference: the identity of its first input
            names[node.output.id] = names.get(node.inputs[0].id)
            continue
        if any(v.id not in names for v in node.inputs):
            continue  # not needed by an output (the loss, or a branch no output reads)
        names[node.output.id] = node.op.emit(b, [names[v.id] for v in node.inputs],
                                             **node.attrs)
    return {name: names[v.id] for name, v in graph.outputs.items()}


def _classes_tensor(classes: list) -> np.ndarray:
    if all(isinstance(c, str) for c in classes):
        return np.array(classes, dtype=object)
    if all(isinstance(c, int) for c in classes):
        return np.array(classes, dtype=np.int64)
    return np.array(classes, dtype=np.float32)


def _emit_head(b: OnnxBuilder, out: str, width: int, target: Target) -> list[str]:
    if not TASKS[target.task].classifier:
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


def _sequence(inputs: dict):
    for name, pre in inputs.items():
        seq = pre.sequence_input
        if seq is not None:
            return pre, dataclasses.replace(seq, input=name)
    return None, None


def build_model(net: Network, inputs: dict, target: Target | None, *, opset: int,
                name: str, spec_sha256: str, dialect=None) -> onnx.ModelProto:
    """The checked ONNX model (``onnx.checker`` full check passed) of ``net`` reading the
    raw data of ``inputs`` (input name -> fitted preprocessor); ``target`` None exports the
    outputs undecoded.

    Raises:
        ExportError: the graph cannot be built or fails the checker.
    """
    b = OnnxBuilder(opset)
    graph = net.graph
    seq_pre, sequence = _sequence(inputs)
    try:
        feeds = {n: EMITTERS[pre.kind](b, pre, n) for n, pre in inputs.items()}
        outs = emit_network(b, net, feeds)
        head, *rest = graph.outputs
        if target is None:
            outputs = []
            rest = list(graph.outputs)
        else:
            out = outs[head]
            if seq_pre is not None and not TASKS[target.task].classifier:
                out = OUTPUT_EMITTERS["sequence"](b, seq_pre, out)
            outputs = _emit_head(b, out, graph.outputs[head].shape[-1], target)
        for o in rest:
            if o in outputs:
                raise ValueError(f"an output node is named '{o}', as the decoded head is")
            b.rename(outs[o], o)
            b.add_output(o, TensorProto.FLOAT, ["N", *graph.outputs[o].shape[1:]])
            outputs.append(o)
    except ValueError as e:  # e.g. a column named like an output
        raise ExportError(f"cannot export: {e}") from None
    imports = [helper.make_opsetid("", opset)]
    if b.uses_ml:
        imports.append(helper.make_opsetid(ML_DOMAIN, ML_OPSET))
    model = helper.make_model(b.graph(name), opset_imports=imports,
                              producer_name="dlspec", producer_version=__version__)
    model.ir_version = ir_version_for(opset)
    widths = [] if target is not None else \
        [int(np.prod(graph.outputs[o].shape[1:], dtype=np.int64)) for o in outputs]
    contract = Contract(contract_inputs(inputs),
                        target.name if target else "", target.task if target else "none",
                        target.classes if target else [], outputs, sequence, widths,
                        **({"dialect": dialect} if dialect is not None else {}))
    note = portability_note(model)
    helper.set_model_props(model, {
        "dlspec.version": __version__, "dlspec.spec_sha256": spec_sha256,
        "dlspec.name": name, CONTRACT_KEY: contract.to_json(), **({NOTE_KEY: note} if note
                                                                 else {})})
    what = "raw windows" if sequence else "raw inputs"
    model.doc_string = f"dlspec model '{name}': {what} in, " + ", ".join(outputs) + " out"
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
        raise ExportError(f"the exported model fails onnx.checker: {e}") from None
    return model
