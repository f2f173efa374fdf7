"""A compiled dlspec graph as a ``torch.nn.Module``.

One submodule per layer that owns parameters (named after the spec's node), each holding
its parameters under their own names: ``h1.kernel`` is ``module.h1.kernel``. A layer that
applies another's parameters again (``share:``, ``call:``) reads the owner's one
``nn.Parameter``, so its gradient is the sum over every use, as in the NumPy engine.
Non-trainable parameters (batch norm's moving statistics, ``trainable: false`` weights) are
buffers; frozen ones (``train.params: frozen``) are parameters without ``requires_grad``.
Inputs an op reads as indices (a text input's token ids, ``OpDef.index_inputs``) stay int64:
they are data, never cast to float and never given ``requires_grad``.

The forward pass walks the graph's nodes in order and returns every value it computed,
keyed by value id, so any loss can read any node (``value_of`` names them).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dlspec.graph.ir import Graph, Value
from dlspec.torchengine import attr_name, index_inputs
from dlspec.torchengine.ops import TORCH_OPS, TORCH_UPDATES


class GraphModule(nn.Module):
    """The graph's forward pass in torch; its parameters start as ``arrays`` gives them
    (by parameter name), float32."""

    def __init__(self, graph: Graph, arrays: dict[str, np.ndarray]) -> None:
        super().__init__()
        self.graph = graph
        self._where: dict[str, tuple[str, str]] = {}
        for p in graph.params:
            owner = attr_name(p.layer)
            if owner not in self._modules:
                self.add_module(owner, nn.Module())
            holder = self._modules[owner]
            short = attr_name(p.name.removeprefix(f"{p.layer}."))
            if hasattr(holder, short):
                raise ValueError(f"two parameters of layer {p.layer!r} are both {short!r} in "
                                 "torch")
            t = torch.from_numpy(np.array(arrays[p.name], dtype=np.float32, copy=True))
            if p.trainable or p.frozen:
                holder.register_parameter(short, nn.Parameter(t, requires_grad=p.trainable))
            else:
                holder.register_buffer(short, t)
            self._where[p.name] = (owner, short)
        self._frozen = {p.value.id for p in graph.params if p.frozen}
        self._index_inputs = index_inputs(graph)

    def tensor(self, name: str) -> torch.Tensor:
        """The parameter (or buffer) called ``name`` (``node.param``)."""
        owner, short = self._where[name]
        return getattr(self._modules[owner], short)

    def named_graph_params(self) -> list[tuple[str, torch.Tensor]]:
        return [(p.name, self.tensor(p.name)) for p in self.graph.params]

    def arrays(self) -> dict[str, np.ndarray]:
        """Every parameter by name, as float32 NumPy arrays (what a run directory holds)."""
        return {name: t.detach().cpu().numpy().copy() for name, t in self.named_graph_params()}

    def value_of(self, node: str) -> Value:
        """The value a spec node (or output) computes: the key of ``forward``'s result."""
        return self.graph.node_values.get(node) or self.graph.outputs[node]

    def forward(self, feeds: dict, targets: dict | None = None,
                noise: dict | None = None, only: set[int] | None = None,
                ) -> dict[int, torch.Tensor]:
        """Every value computable from ``feeds`` (input name -> tensor), ``targets`` (target
        name -> tensor; without them no loss is computed) and ``noise`` (noise name ->
        tensor, training only), by value id; ``only``: just the nodes whose outputs are
        these ids (one loss's, so batch norm's statistics move only where it reads)."""
        env: dict[int, torch.Tensor] = {}
        for v in self.graph.inputs:
            t = feeds[v.name]
            env[v.id] = t.long() if v.id in self._index_inputs else t   # token ids: int64
        for v in self.graph.targets:
            if targets is not None and v.name in targets:
                env[v.id] = targets[v.name]
        for n in self.graph.noises:
            if noise is not None and n.value.name in noise:
                env[n.value.id] = noise[n.value.name]
        for p in self.graph.params:
            env[p.value.id] = self.tensor(p.name)
        for node in self.graph.nodes:
            if only is not None and node.output.id not in only:
                continue
            passes = node.op.train_only and not self.training   # the identity, as exported
            if any(v.id not in env for v in (node.inputs[:1] if passes else node.inputs)):
                continue  # a loss without its target, or what reads it
            if passes:
                env[node.output.id] = env[node.inputs[0].id]
                continue
            xs = [env[v.id] for v in node.inputs]
            env[node.output.id] = TORCH_OPS[node.op.name](*xs, **node.attrs)
            update = TORCH_UPDATES.get(node.op.name)
            if update is not None and self.training:
                self._move_state(node, update(*xs, **node.attrs))
        return env

    @torch.no_grad()
    def _move_state(self, node, new: dict) -> None:
        for i, value in new.items():
            v = node.inputs[i]
            if v.kind == "param" and v.id not in self._frozen:
                self.tensor(v.name).copy_(value)
