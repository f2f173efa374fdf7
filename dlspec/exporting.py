"""``dlspec export``: a run's model rebuilt and checked against its engine, or a spec whose
weights are all given written straight to ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlspec.errors import Diagnostics, ModelError, SpecError
from dlspec.runs import write_atomic
from dlspec.trained import load_run


def _opset(opset: int) -> int:
    from dlspec.opsets import MAX_OPSET, MIN_OPSET

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ModelError(f"--opset {opset}: dlspec exports opsets {MIN_OPSET} to {MAX_OPSET}",
                         code="usage")
    return opset


def export(run: str | Path, out: str | Path | None = None, *, opset: int | None = None,
           outputs: list[str] | None = None, inputs: list[str] | None = None) -> dict:
    """Rebuild the ONNX model of a run, check it against the engine, write it to ``out``.

    Args:
        outputs, inputs: export only these nodes, taking these inputs (default: the spec's
            export.outputs and export.inputs; ``outputs`` alone leaves the inputs to what
            the nodes read).

    Returns a report: the output path, opset, IR version, the parity check, the model's
    portability note (empty when there is none) and, for a run that has not finished,
    which of its checkpoint's weights were exported.
    """
    from dlspec.inputs import KINDS
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_model_parity
    from dlspec.onnx.portability import note_of
    from dlspec.program_run import program_inputs
    from dlspec.training import located_parity

    r = load_run(run)
    opset = _opset(opset or r.spec.opset)
    if outputs is None and inputs is None:
        outputs, inputs = r.spec.export_outputs, r.spec.export_inputs
    supervised = r.spec.train.loss is not None
    # a training program (GAN, autoencoder) exports its outputs undecoded, noise as inputs
    taken = r.inputs if supervised else program_inputs(r.spec, r.inputs)
    if not supervised and outputs is None:   # only the inputs its outputs read
        outputs = list(r.net.graph.outputs)
    model = build_model(r.net, taken, r.target if supervised else None, opset=opset,
                        name=r.spec.name, spec_sha256=r.spec.sha256, outputs=outputs,
                        input_names=inputs,
                        dialect=r.spec.data.dialect if r.spec.data else None)
    kind = KINDS[r.kind]
    raw = kind.read_holdout(r.path / kind.holdout)
    parity = located_parity(r.spec, r.net, check_model_parity, model, r.net, r.kind, taken,
                            r.target.task if supervised else "regression", raw,
                            np.arange(len(raw)))
    data = model.SerializeToString()
    out = Path(out) if out else Path(f"{r.spec.name}.onnx")
    write_atomic(out, data)
    return {"path": str(out), "opset": opset, "ir_version": model.ir_version, "parity": parity,
            "bytes": len(data), "note": note_of(model), "unfinished": r.unfinished}


def export_spec(spec, out: str | Path | None = None, *, opset: int | None = None) -> dict:
    """Write a spec with every parameter given (inline weights) as an ONNX model taking its
    inputs by name, after checking onnxruntime against the engine on seeded random inputs.

    Raises:
        Diagnostics: a spec that has a data section (train it), or a parameter with no
            weights given.
    """
    from dlspec.data.tensor import TensorInput
    from dlspec.engine.network import Network
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_tensor_parity
    from dlspec.onnx.portability import note_of
    from dlspec.spec.compile import compile_graph

    if spec.data is not None:
        raise Diagnostics([SpecError(
            "this spec trains on data: train it, then export its run (dlspec export "
            "runs/<name>/latest)", spec.locate(("data",), True), path="data",
            code="export-spec")])
    shapes = {i.name: i.shape for i in spec.model.inputs}
    graph = compile_graph(spec, shapes).graph
    read = None  # a trimmed export needs the weights of what it exports, no others
    if spec.export_outputs is not None or spec.export_inputs is not None:
        from dlspec.graph.trim import trim

        read = {v.id for node in trim(graph, spec.export_outputs, spec.export_inputs).nodes
                for v in node.inputs}
    missing = [p for p in graph.params if p.given is None
               and (read is None or p.value.id in read)]
    if missing:
        from dlspec.spec.compile import node_where

        errors = []
        for layer in dict.fromkeys(p.layer for p in missing):
            where = node_where(spec, layer)
            names = ", ".join(p.name for p in missing if p.layer == layer)
            errors.append(SpecError(f"'{layer}' has no weights given ({names}); give them "
                                    "with weights: {kernel: [...], ...}, or train the spec "
                                    "on data", spec.locate(where, True), code="export-spec"))
        raise Diagnostics(errors)
    net = Network(graph)
    net.buffer.initialize(np.random.default_rng(0))  # every parameter is given: this sets them
    inputs = {i.name: TensorInput(i.name, i.shape) for i in spec.model.inputs}
    model = build_model(net, inputs, None, opset=_opset(opset or spec.opset), name=spec.name,
                        spec_sha256=spec.sha256, outputs=spec.export_outputs,
                        input_names=spec.export_inputs)
    parity = check_tensor_parity(model, net, inputs)
    data = model.SerializeToString()
    out = Path(out) if out else Path(f"{spec.name}.onnx")
    write_atomic(out, data)
    return {"path": str(out), "opset": model.opset_import[0].version,
            "ir_version": model.ir_version, "parity": parity, "bytes": len(data),
            "note": note_of(model)}
