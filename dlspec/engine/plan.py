"""Execution plans: a graph compiled once into flat lists of kernels over slots.

Running a plan is a loop over prebound kernels reading and writing a list of
arrays by integer index; nothing walks the graph or looks up a dict per step.
Parameters live in one flat, 64-byte-aligned float32 buffer (and gradients in
a twin buffer), so optimizers update everything in a few large ufunc calls.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from dlspec.autodiff import ancestors, backward_schedule
from dlspec.graph.ir import Graph, Value

_ALIGN = 16  # float32 elements per 64 bytes


def aligned_zeros(n: int) -> np.ndarray:
    """A zeroed float32 vector of length n whose data starts on a 64-byte boundary."""
    raw = np.zeros(n + _ALIGN, dtype=np.float32)
    off = (-raw.ctypes.data % 64) // 4
    return raw[off:off + n]


class ParamBuffer:
    """All parameters of a graph in one flat buffer, with a view per parameter."""

    def __init__(self, graph: Graph) -> None:
        self.params = graph.params
        self.offsets: list[tuple[int, int]] = []
        pos = 0
        for p in self.params:
            self.offsets.append((pos, p.size))
            pos += -(-p.size // _ALIGN) * _ALIGN
        self.flat = aligned_zeros(pos)
        self.grad = aligned_zeros(pos)
        self.views = [self._view(self.flat, i) for i in range(len(self.params))]
        self.grad_views = [self._view(self.grad, i) for i in range(len(self.params))]
        mask = np.zeros(pos, dtype=bool)
        for (start, size), p in zip(self.offsets, self.params, strict=True):
            mask[start:start + size] = p.trainable
        self.trainable = mask

    def _view(self, buf: np.ndarray, i: int) -> np.ndarray:
        start, size = self.offsets[i]
        return buf[start:start + size].reshape(self.params[i].shape)

    def initialize(self, rng: np.random.Generator) -> None:
        for p, view in zip(self.params, self.views, strict=True):
            view[...] = p.init(rng, p.shape)

    def state(self) -> dict[str, np.ndarray]:
        return {p.value.name: v.copy() for p, v in zip(self.params, self.views, strict=True)}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        for p, view in zip(self.params, self.views, strict=True):
            view[...] = arrays[p.value.name]


class Plan:
    """Forward (and, for training, backward) kernels of one graph.

    Args:
        graph: the IR.
        buffer: the parameters the plan reads (and whose gradients it writes).
        seed: the value the loss is attached to (None: an inference plan).
    """

    def __init__(self, graph: Graph, buffer: ParamBuffer, seed: Value | None = None) -> None:
        self.graph = graph
        self.training = seed is not None
        values = graph.values
        self.slot = {v.id: i for i, v in enumerate(values)}
        self.n_slots = len(values)
        self.input_slots = [self.slot[v.id] for v in graph.inputs]
        self.noise_slots = [(self.slot[n.value.id], n.rate) for n in graph.noises]
        self.output_slot = self.slot[graph.output.id]
        self._param_slots = [(self.slot[p.value.id], v)
                             for p, v in zip(graph.params, buffer.views, strict=True)]
        self.forward_steps: list[tuple] = []
        self.backward_steps: list[tuple] = []
        self.state_updates: list[tuple] = []
        self.seed_slot = self.slot[seed.id] if seed is not None else None
        if self.training:
            self._compile_training(buffer, seed)
        else:
            self._compile_inference()

    def _compile_inference(self) -> None:
        alias = {}
        for node in self.graph.nodes:
            ins = tuple(alias.get(self.slot[v.id], self.slot[v.id]) for v in node.inputs)
            out = self.slot[node.output.id]
            if node.op.train_only:
                alias[out] = ins[0]
                continue
            self.forward_steps.append((partial(node.op.forward, **node.attrs), ins, out))
        self.output_slot = alias.get(self.output_slot, self.output_slot)

    def _compile_training(self, buffer: ParamBuffer, seed: Value) -> None:
        views = {p.value.id: v for p, v in zip(self.graph.params, buffer.views, strict=True)}
        for node in ancestors(seed):
            ins = tuple(self.slot[v.id] for v in node.inputs)
            self.forward_steps.append((partial(node.op.forward, **node.attrs), ins,
                                       self.slot[node.output.id]))
            if node.op.update is not None:
                targets = {i: views[v.id] for i, v in enumerate(node.inputs) if v.id in views}
                self.state_updates.append((partial(node.op.update, **node.attrs), ins,
                                           self.slot[node.output.id], targets))
        trainable = [p for p in self.graph.params if p.trainable]
        steps = backward_schedule(self.graph, seed, [p.value for p in trainable])
        grad_view = {p.value.id: g
                     for p, g in zip(self.graph.params, buffer.grad_views, strict=True)}
        for step in steps:
            node = step.node
            targets = []
            for t in step.targets:
                # mode 0 assign, 1 accumulate (never in place: vjps may return
                # one array for two inputs), 2 write into the parameter's grad
                # view, 3 add into it.
                if t.value.id in grad_view:
                    targets.append((t.index, grad_view[t.value.id], 2 if t.first else 3))
                else:
                    targets.append((t.index, self.slot[t.value.id], 0 if t.first else 1))
            self.backward_steps.append((
                partial(node.op.vjp, **node.attrs), self.slot[node.output.id],
                tuple(self.slot[v.id] for v in node.inputs), tuple(targets)))

    def new_slots(self) -> list:
        s: list = [None] * self.n_slots
        for i, view in self._param_slots:
            s[i] = view
        return s

    def forward(self, s: list) -> None:
        for fn, ins, out in self.forward_steps:
            s[out] = fn(*[s[i] for i in ins])

    def update_state(self, s: list) -> None:
        """Move stateful parameters (moving statistics) after a training forward pass."""
        for fn, ins, out, targets in self.state_updates:
            for i, value in fn(s[out], *[s[j] for j in ins]).items():
                np.copyto(targets[i], value)

    def backward(self, s: list, g_seed: np.ndarray) -> None:
        """Gradients of the loss into the parameter gradient buffer, given dL/d(seed)."""
        g: list = [None] * self.n_slots
        g[self.seed_slot] = g_seed
        for vjp, out, ins, targets in self.backward_steps:
            if g[out] is None:  # nothing flows back through this node (e.g. an ignored input)
                for _, dst, mode in targets:
                    if mode == 2:
                        dst[...] = 0
                continue
            grads = vjp(g[out], s[out], *[s[i] for i in ins])
            for k, dst, mode in targets:
                gk = grads[k]
                if gk is None:
                    if mode == 2:
                        dst[...] = 0
                    continue
                if mode == 0:
                    g[dst] = gk
                elif mode == 1:
                    g[dst] = gk if g[dst] is None else g[dst] + gk
                elif mode == 2:
                    np.copyto(dst, gk)
                else:
                    dst += gk
