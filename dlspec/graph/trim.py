"""What a chosen set of a graph's nodes needs: export trimming on the lowered graph.

``export: {outputs: [code]}`` exports an autoencoder's encoder, ``{inputs: [z], outputs:
[fake]}`` a GAN's generator. Given output names (any named node of the graph, not only the
model's outputs), ``trim`` finds the values they name, the nodes they depend on, and the
inputs those nodes read; the exporter writes only these. The spec's own check of the same
names (``dlspec.spec.exportcheck``) reports mistakes at their line before anything is
built; the errors here guard direct API use.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from dlspec.autodiff import ancestors
from dlspec.graph.ir import Graph, Node, Value


class TrimError(ValueError):
    """Output or input names that do not fit the graph."""


@dataclass(frozen=True)
class Trim:
    """``outputs``: each exported name's value, in the order given; ``inputs``: the graph
    inputs they read (in the order listed, else the graph's); ``nodes``: what computes
    them, in graph order."""

    outputs: dict[str, Value]
    inputs: tuple[str, ...]
    nodes: tuple[Node, ...]


def named_value(graph: Graph, name: str) -> Value:
    """The value of a named node (``h1``, a block call's output ``g.out``, a node inside a
    call ``g.h``) or of a model output."""
    value = graph.node_values.get(name, graph.outputs.get(name))
    if value is None:
        known = [*graph.node_values, *(o for o in graph.outputs if o not in graph.node_values)]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise TrimError(f"'{name}' is not a node of the graph{hint}; nodes: "
                        + ", ".join(known[:20]) + (" ..." if len(known) > 20 else ""))
    return value


def trim(graph: Graph, outputs: Sequence[str] | None = None,
         inputs: Sequence[str] | None = None) -> Trim:
    """The part of ``graph`` that computes ``outputs`` (default: the model's outputs).

    Raises:
        TrimError: an unknown name, an output that reads an input ``inputs`` does not
            list, or a listed input that no output reads.
    """
    names = list(outputs) if outputs is not None else list(graph.outputs)
    values = {name: named_value(graph, name) for name in names}
    needed: dict[int, Node] = {}
    reads: dict[str, str] = {}  # input name -> the first output that reads it
    for name, value in values.items():
        if value.kind == "input":
            raise TrimError(f"'{name}' is an input, not a node")
        for node in ancestors(value):
            needed[id(node)] = node
            for v in node.inputs:
                if v.kind == "input":
                    reads.setdefault(v.name, name)
    order = [v.name for v in graph.inputs if v.name in reads]
    if inputs is not None:
        known = {v.name for v in graph.inputs}
        for name in inputs:
            if name not in known:
                raise TrimError(f"'{name}' is not an input of the graph")
        for name in order:
            if name not in inputs:
                raise TrimError(f"output '{reads[name]}' reads input '{name}', which the "
                                "exported inputs do not list")
        for name in inputs:
            if name not in reads:
                raise TrimError(f"no exported output reads input '{name}'")
        order = list(inputs)
    nodes = tuple(n for n in graph.nodes if id(n) in needed)
    return Trim(values, tuple(order), nodes)
