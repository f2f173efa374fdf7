"""``export: {inputs, outputs}`` checked against the model's graph, by name, before anything
is built: each exported output is a node, each listed input an input of the model, every
input an output reads is listed, and every listed one is read by an output.

Which inputs a node reads follows ``from`` (through a block call, only the block inputs
that the block's output depends on); ``share`` reuses parameters, not data, and adds
nothing. The lowered graph's own trimming (``dlspec.graph.trim``) finds the same sets.
"""

from __future__ import annotations

from collections.abc import Callable

from dlspec.errors import Location, SpecError
from dlspec.graph.program import NodeDef, topological_order
from dlspec.spec.diagnose import did_you_mean
from dlspec.spec.diagnose import spec_error as _err
from dlspec.spec.normalize import node_layer

Locate = Callable[[tuple, bool], Location]
Reads = dict[str, str]  # input name -> the node that reads it directly


def _listed(names) -> str:
    names = sorted(names)
    return ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")


def _reads(inputs: list[str], nodes: dict, blocks: dict) -> dict[str, Reads]:
    """For each exportable name (a node, or CALL.NODE of a block call), the inputs it reads
    and, for each, the node that reads it directly."""
    reads: dict[str, Reads] = {name: {name: ""} for name in inputs}
    deps = {name: _block_deps(b) for name, b in blocks.items()}
    order = topological_order([NodeDef(n, node_layer(d), {}, tuple(d["from"]))
                               for n, d in nodes.items()], inputs)

    def of(src: str, reader: str) -> Reads:
        got = reads.get(src, {})
        return {i: by or reader for i, by in got.items()}

    for ndef in order:
        name, node = ndef.name, nodes[ndef.name]
        sources = list(node["from"])
        block = blocks.get(node.get("call"))
        if block is None:
            reads[name] = {k: v for src in sources for k, v in of(src, name).items()}
            continue
        for inner, positions in deps[node["call"]].items():  # CALL.NODE, outputs included
            reads[f"{name}.{inner}"] = {k: v for i in sorted(positions) if i < len(sources)
                                        for k, v in of(sources[i], name).items()}
        reads[name] = {k: v for out in block["outputs"]
                       for k, v in reads[f"{name}.{out}"].items()}
    return reads


def _block_deps(block: dict) -> dict[str, set[int]]:
    """The block inputs (by position) each of the block's nodes reads."""
    positions = {name: {i} for i, name in enumerate(block["inputs"])}
    nodes = block["nodes"]
    order = topological_order([NodeDef(n, node_layer(d), {}, tuple(d["from"]))
                               for n, d in nodes.items()], block["inputs"])
    for ndef in order:
        positions[ndef.name] = set().union(*(positions.get(s, set())
                                             for s in nodes[ndef.name]["from"]))
    return {name: positions[name] for name in nodes}


def check_export(spec: dict, locate: Locate) -> list[SpecError]:
    """Every problem of export.inputs and export.outputs (run on a graph with no problems
    of its own)."""
    export = spec.get("export") or {}
    if "inputs" not in export and "outputs" not in export:
        return []
    model = spec["model"]
    inputs, nodes = list(model["inputs"]), model["nodes"]
    reads = _reads(inputs, nodes, model.get("blocks", {}))
    readable = [n for n in reads if n not in inputs]
    out: list[SpecError] = []
    written_outputs = "outputs" in export
    outputs = list(export.get("outputs", model["outputs"]))
    known = []
    for i, name in enumerate(outputs):
        path = ("export", "outputs", i)
        if name in inputs:
            out.append(_err(locate, path, f"'{name}' is an input; export.outputs names nodes "
                            f"(nodes: {_listed(readable)})", "semantic-export"))
        elif name not in reads:
            out.append(_err(locate, path, f"'{name}' is not a node"
                            f"{did_you_mean(name, readable)}; nodes: {_listed(readable)}",
                            "semantic-export"))
        else:
            known.append((i, name))
    listed = export.get("inputs")
    if listed is None:
        return out
    for j, name in enumerate(listed):
        if name not in inputs:
            out.append(_err(locate, ("export", "inputs", j), f"'{name}' is not an input of "
                            f"the model{did_you_mean(name, inputs)}; inputs: "
                            f"{_listed(inputs)}", "semantic-export"))
    if len(known) < len(outputs):
        return out
    read_by: dict[str, str] = {}
    for i, name in known:
        for inp, node in reads[name].items():
            read_by.setdefault(inp, name)
            if inp not in listed:
                where = ("export", "outputs", i) if written_outputs else ("export", "inputs")
                out.append(_err(locate, where, f"output '{name}' needs input '{inp}' (node "
                                f"'{node}' reads it), which export.inputs does not list; add "
                                f"'{inp}' to export.inputs, or export another node",
                                "semantic-export", key=not written_outputs))
    for j, name in enumerate(listed):
        if name in inputs and name not in read_by:
            out.append(_err(locate, ("export", "inputs", j), f"no exported output reads input"
                            f" '{name}' (export.outputs: {', '.join(outputs)}); remove it from "
                            "export.inputs", "semantic-export"))
    return out
