"""Checks of the model's graph that need no shapes: names, references, cycles, arity.

Run on the canonical spec (``normalize``): every node names what it reads (``from``), and
each problem is reported at the node's own place with a did-you-mean where a name is
close to one that exists. Shape problems are found when the graph is lowered
(``dlspec.graph.lower``), also at the node.
"""

from __future__ import annotations

from collections.abc import Callable

from dlspec.errors import Location, SpecError
from dlspec.graph.layers import LAYERS
from dlspec.graph.program import CycleError, NodeDef, topological_order
from dlspec.spec.diagnose import did_you_mean
from dlspec.spec.diagnose import spec_error as _err
from dlspec.spec.normalize import node_layer

Locate = Callable[[tuple, bool], Location]


def _listed(names) -> str:
    names = sorted(names)
    return ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")


class _Scope:
    """The names one graph (the model, or a block) can refer to."""

    def __init__(self, where: tuple, inputs: list[str], nodes: dict, outputs: list[str],
                 blocks: dict, locate: Locate, also_read: tuple = ()) -> None:
        self.where, self.inputs, self.nodes, self.outputs = where, inputs, nodes, outputs
        self.blocks, self.locate = blocks, locate
        self.also_read = set(also_read)   # names a loss reads
        self.errors: list[SpecError] = []
        # names readable by `from`: inputs, nodes, and each call's block outputs as call.out
        self.values = set(inputs) | set(nodes)
        for name, node in nodes.items():
            block = blocks.get(node.get("call"))
            if block is not None:
                self.values |= {f"{name}.{o}" for o in block["outputs"]}

    def err(self, path: tuple, message: str, code: str = "semantic-graph",
            key: bool = False) -> None:
        self.errors.append(_err(self.locate, (*self.where, *path), message, code, key))

    def run(self) -> list[SpecError]:
        for name in set(self.inputs) & set(self.nodes):
            self.err(("nodes", name), f"'{name}' is both an input and a node; give them "
                     "different names", key=True)
        for name, node in self.nodes.items():
            self.node(name, node)
        for i, out in enumerate(self.outputs):
            if out not in self.values or out in self.inputs:
                options = [v for v in self.values if v not in self.inputs]
                self.err(("outputs", i), f"output '{out}' is not a node"
                         f"{did_you_mean(out, options)}; nodes: {_listed(options)}")
        self.cycles()
        if not self.errors:
            self.unread()
        return self.errors

    def node(self, name: str, node: dict) -> None:
        layer = node_layer(node)
        kinds = [k for k in (layer, "share" if "share" in node else None,
                             "call" if "call" in node else None) if k]
        if len(kinds) != 1:
            what = "nothing" if not kinds else " and ".join(repr(k) for k in kinds)
            self.err(("nodes", name), f"node '{name}' has {what}; a node is one layer (e.g. "
                     "dense: {units: 8}), share: NODE or call: BLOCK", key=True)
            return
        if "weights" in node and layer is None:
            self.err(("nodes", name, "weights"), "weights belong to the node that owns the "
                     f"parameters; '{name}' {kinds[0]}s them", key=True)
        sources = node["from"]
        if not sources:
            self.err(("nodes", name), f"node '{name}' needs from: the model has "
                     f"{len(self.inputs)} inputs ({_listed(self.inputs) or 'none'}), so say "
                     "which one it reads", key=True)
            return
        for i, src in enumerate(sources):
            if src not in self.values:
                self.err(("nodes", name, "from", i), f"'{src}' is not an input or a node"
                         f"{did_you_mean(src, self.values)}; known: {_listed(self.values)}")
            elif src == name:
                self.err(("nodes", name, "from", i), f"node '{name}' reads itself")
        if "share" in node:
            self.share(name, node["share"])
            layer = self._layer_of(node["share"])
        if "call" in node:
            self.call(name, node)
            return
        if layer is not None:
            self.arity(name, layer, len(sources))

    def _layer_of(self, name: str, seen: tuple = ()) -> str | None:
        node = self.nodes.get(name)
        if node is None or name in seen:
            return None
        return node_layer(node) or (self._layer_of(node["share"], (*seen, name))
                                    if "share" in node else None)

    def share(self, name: str, other: str) -> None:
        path = ("nodes", name, "share")
        if other not in self.nodes:
            self.err(path, f"'{other}' is not a node{did_you_mean(other, self.nodes)}; nodes: "
                     f"{_listed(self.nodes)}")
        elif other == name:
            self.err(path, f"node '{name}' shares its own parameters; name another node")
        elif "call" in self.nodes[other]:
            self.err(path, f"'{other}' calls a block; call the block again (call: "
                     f"{self.nodes[other]['call']}) to share its parameters")
        else:
            layer = self._layer_of(other)
            if layer is None:
                self.err(path, f"'{other}' shares in a circle; share the node that has the "
                         "layer")
            elif not LAYERS[layer].weighted:
                self.err(path, f"'{other}' is a {layer} layer, which has no parameters to "
                         f"share; write the layer itself ({layer}: ...)")

    def call(self, name: str, node: dict) -> None:
        block = node["call"]
        if self.where != ("model",):
            self.err(("nodes", name, "call"), "a block cannot call a block; call both from "
                     "model.nodes")
            return
        if block not in self.blocks:
            self.err(("nodes", name, "call"), f"'{block}' is not a block"
                     f"{did_you_mean(block, self.blocks)}; blocks: "
                     f"{_listed(self.blocks) or 'none (define them under model.blocks)'}")
            return
        want = self.blocks[block]["inputs"]
        if len(node["from"]) != len(want):
            self.err(("nodes", name, "from"), f"block '{block}' takes {len(want)} input(s) "
                     f"({', '.join(want)}), in that order; from names {len(node['from'])}")

    def arity(self, name: str, layer: str, n: int) -> None:
        want = LAYERS[layer].arity
        written = getattr(self.locate, "written", lambda p: p)((*self.where, "nodes", name))
        if want is None and n < 2 and written[:2] == ("model", "layers"):
            self.err(("nodes", name), f"{layer} joins two or more inputs, which a list of "
                     "layers cannot give it; write the model as named nodes (model.nodes) "
                     f"and give {layer} from: [a, b]", key=True)
        elif want is None and n < 2:
            self.err(("nodes", name, "from"), f"{layer} joins two or more inputs; from names "
                     f"{n} (e.g. from: [a, b])")
        elif want is not None and n != want:
            self.err(("nodes", name, "from"), f"{layer} reads {want} input; from names {n} "
                     "(join them first with add, concat or multiply)")

    def cycles(self) -> None:
        defs = [NodeDef(n, node_layer(d), {}, tuple(d["from"])) for n, d in self.nodes.items()]
        try:
            topological_order(defs, self.inputs)
        except CycleError as e:
            self.err(("nodes", e.path[0], "from"), "these nodes read each other in a cycle: "
                     f"{' -> '.join(e.path)}; a graph must lead from the inputs to the "
                     "outputs without returning")

    def unread(self) -> None:
        read = {src.split(".")[0] if src not in self.nodes else src
                for node in self.nodes.values() for src in node["from"]}
        read |= {o.split(".")[0] if o not in self.nodes else o for o in self.outputs}
        read |= self.also_read
        for i, name in enumerate(self.inputs):
            if name not in read:
                self.err(("inputs", name) if self.where == ("model",) else ("inputs", i),
                         f"input '{name}' is read by no node; remove it, or name it in a "
                         "node's from", key=True)
        for name in self.nodes:
            if name not in read:
                self.err(("nodes", name), f"nothing reads node '{name}': it is not an output "
                         "and no node names it in from (list it in outputs, or remove it)",
                         key=True)


def check_graph(spec: dict, locate: Locate) -> list[SpecError]:
    """Every problem of the model's names, references and structure."""
    model = spec["model"]
    blocks = model.get("blocks", {})
    out = []
    if not model["nodes"]:
        return [_err(locate, ("model",), "the model has no nodes: write model.nodes (or "
                     "model.layers)", "semantic-graph", key=True)]
    if not model["inputs"]:
        if spec["train"] is not None:
            return []  # a train section without data: check_sections says so
        out.append(_err(locate, ("model",), "the model has no inputs: name them under "
                        "model.inputs with their shapes (e.g. x: {shape: [2]}), or give the"
                        " spec a data section", "semantic-graph", key=True))
        return out
    # What a loss reads is read, as an output is.
    read_by_losses = [name for t in [spec["train"] or {}] for losses in
                      [t.get("losses") or {}, *[p.get("losses") or {}
                                                for p in t.get("phases") or ()]]
                      for e in losses.values()
                      for name in (e["output"], e.get("target")) if isinstance(name, str)]
    out += _Scope(("model",), list(model["inputs"]), model["nodes"], model["outputs"],
                  blocks, locate, tuple(read_by_losses)).run()
    for name, block in blocks.items():
        out += _Scope(("model", "blocks", name), block["inputs"], block["nodes"],
                      block["outputs"], {}, locate).run()
    return out
