"""Operator attributes that some ONNX runtimes are known to ignore.

Export checks every model against the training engine in onnxruntime, so onnxruntime's
numbers are the engine's. Other runtimes may not implement every attribute of every
operator; where a model relies on one that a runtime is known to get wrong, the model
carries a plain note saying so (metadata ``dlspec.note``), and export, train and
``inspect MODEL.onnx`` print it. ``GAPS`` is the list of what is known; a test runs
every recurrent cell with every activation in onnx's reference evaluator and checks that
a note is written exactly when that evaluator's numbers differ from onnxruntime's.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
from onnx import helper

NOTE_KEY = "dlspec.note"
REFERENCE = "onnx's reference evaluator (onnx.reference.ReferenceEvaluator)"


@dataclass(frozen=True)
class Gap:
    """A runtime that computes ``op_type`` correctly only for some values of an attribute."""

    op_type: str
    attribute: str
    runtime: str
    handled: tuple[tuple[str, ...], ...] | frozenset[str]  # the whole value, or each item
    instead: str                                            # what the runtime does otherwise

    def misses(self, value: list[str]) -> bool:
        if isinstance(self.handled, frozenset):
            return not set(value) <= self.handled
        return tuple(value) not in self.handled


GAPS = (
    # onnx 1.23: the LSTM and GRU classes take the attribute and never read it
    Gap("LSTM", "activations", REFERENCE, (("Sigmoid", "Tanh", "Tanh"),),
        "ignores it and computes Sigmoid, Tanh, Tanh, so its numbers differ"),
    Gap("GRU", "activations", REFERENCE, (("Sigmoid", "Tanh"),),
        "ignores it and computes Sigmoid, Tanh, so its numbers differ"),
    # its RNN reads the attribute but implements two of the functions
    Gap("RNN", "activations", REFERENCE, frozenset({"Tanh", "Affine"}),
        "implements only Tanh and Affine there and refuses to run the model"),
)


def _attribute(node: onnx.NodeProto, name: str) -> list[str] | None:
    for a in node.attribute:
        if a.name == name:
            value = helper.get_attribute_value(a)
            return [v.decode() if isinstance(v, bytes) else str(v) for v in value]
    return None


def portability_note(model: onnx.ModelProto) -> str:
    """The note for ``model`` (empty when it relies on nothing a known runtime ignores)."""
    notes = []
    for node in model.graph.node:
        for gap in GAPS:
            if node.op_type != gap.op_type:
                continue
            value = _attribute(node, gap.attribute)
            if value is not None and gap.misses(value):
                notes.append(f"{node.op_type} node '{node.name}' sets {gap.attribute} "
                             f"[{', '.join(value)}]: {gap.runtime} {gap.instead}")
    if not notes:
        return ""
    return ("; ".join(notes) + ". onnxruntime computes this model as the training engine "
            "does (checked at export); other runtimes may not")


def note_of(model) -> str:
    """An exported model's portability note (empty when there is none)."""
    return next((p.value for p in model.metadata_props if p.key == NOTE_KEY), "")
