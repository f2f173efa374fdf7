"""Execution plans: a graph compiled once into flat lists of kernels over slots.

Running a plan is a loop over prebound kernels reading and writing a list of
arrays by integer index; nothing walks the graph or looks up a dict per step.
Parameters live in one flat, 64-byte-aligned float32 buffer (and gradients in
a twin buffer), so optimizers update everything in a few large ufunc calls.

A training plan fuses what it can (``dlspec.engine.kernels``: matmul + bias + relu,
conv2d + bias + relu + max-pool, 3x3 convolutions as Winograd tiles in
``dlspec.engine.winograd``) and its kernels write into buffers allocated once per
batch size: the arrays a training forward pass leaves in the slots are overwritten by the
next pass of the same batch size. ``fuse=False`` compiles one kernel per node through the
ops' own rules, fresh arrays each step: the reference the fused plan is tested against.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from dlspec.autodiff import ancestors, backward_schedule
from dlspec.engine.join_kernels import JoinKernel
from dlspec.engine.kernels import (
    ConvKernel,
    DenseKernel,
    Kernel,
    OpKernel,
    Sink,
    aligned_zeros,
    held,
)
from dlspec.engine.losses import LOSSES, LossKernel
from dlspec.engine.recurrent_kernels import recurrent_kernel
from dlspec.engine.winograd import WinogradConvKernel, winograd_fits
from dlspec.graph.ir import Graph, Node, Value
from dlspec.ops import get_op

__all__ = ["ParamBuffer", "Plan", "aligned_zeros"]

_ALIGN = 16  # float32 elements per 64 bytes
_FRAMES = 3  # batch sizes a training plan keeps buffers for (the full and the last batch)


class ParamBuffer:
    """All parameters of a graph in one flat buffer, with a view per parameter.

    The trainable parameters come first, so an optimizer updates ``flat[:train_size]``
    and keeps state for those alone; frozen parameters and non-trainable state (batch
    norm's moving statistics) follow.
    """

    def __init__(self, graph: Graph) -> None:
        self.params = graph.params
        self.offsets: list[tuple[int, int]] = [(0, 0)] * len(self.params)
        pos, train_size = 0, None
        # Trainable first, grouped by optimizer (a stable sort: one group keeps graph order),
        # so each optimizer updates one contiguous slice.
        for i in sorted(range(len(self.params)),
                        key=lambda i: (not self.params[i].trainable, self.params[i].group)):
            if train_size is None and not self.params[i].trainable:
                train_size = pos
            self.offsets[i] = (pos, self.params[i].size)
            pos += -(-self.params[i].size // _ALIGN) * _ALIGN
        self.train_size = pos if train_size is None else train_size
        self.flat = aligned_zeros(pos)
        self.grad = aligned_zeros(pos)
        self.views = [self._view(self.flat, i) for i in range(len(self.params))]
        self.grad_views = [self._view(self.grad, i) for i in range(len(self.params))]
        mask = np.zeros(pos, dtype=bool)
        for (start, size), p in zip(self.offsets, self.params, strict=True):
            mask[start:start + size] = p.trainable
        self.trainable = mask

    def group_slice(self, group: int) -> slice:
        """Where the trainable parameters of optimizer ``group`` lie in ``flat``."""
        spans = [(start, start + -(-size // _ALIGN) * _ALIGN)
                 for p, (start, size) in zip(self.params, self.offsets, strict=True)
                 if p.trainable and p.group == group]
        if not spans:
            return slice(0, 0)
        return slice(min(a for a, _ in spans), max(b for _, b in spans))

    @property
    def train_flat(self) -> np.ndarray:
        """The trainable parameters: what an optimizer updates."""
        return self.flat[:self.train_size]

    @property
    def train_grad(self) -> np.ndarray:
        return self.grad[:self.train_size]

    def _view(self, buf: np.ndarray, i: int) -> np.ndarray:
        start, size = self.offsets[i]
        return buf[start:start + size].reshape(self.params[i].shape)

    def initialize(self, rng: np.random.Generator) -> None:
        """Every parameter from its initializer, in graph order (so a parameter's values do
        not depend on which others are given), then the given ones (inline weights)."""
        for p, view in zip(self.params, self.views, strict=True):
            view[...] = p.init(rng, p.shape)
        for p, view in zip(self.params, self.views, strict=True):
            if p.given is not None:
                view[...] = p.given

    def state(self) -> dict[str, np.ndarray]:
        return {p.value.name: v.copy() for p, v in zip(self.params, self.views, strict=True)}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the parameters ``arrays`` names (by parameter name); the rest stay."""
        for p, view in zip(self.params, self.views, strict=True):
            if p.value.name in arrays:
                view[...] = arrays[p.value.name]


class Plan:
    """Forward (and, for training, backward) kernels of one graph.

    Args:
        graph: the IR.
        buffer: the parameters the plan reads (and whose gradients it writes).
        seed: what training differentiates: the graph's loss, or any value whose gradient
            the backward pass is given (None: an inference plan).
        fuse: let a training plan fuse nodes into kernels with reused buffers.
        wanted: what an inference plan computes (default: every node but the loss).
        wrt: the parameters a training plan's backward pass differentiates (default: every
            trainable one); the others get no gradient from it.
    """

    def __init__(self, graph: Graph, buffer: ParamBuffer, seed: Value | None = None,
                 fuse: bool = True, wanted: list[Value] | None = None,
                 wrt: list | None = None) -> None:
        self.graph = graph
        self.training = seed is not None
        values = graph.values
        self.slot = {v.id: i for i, v in enumerate(values)}
        self.n_slots = len(values)
        self.inputs = {v.name: self.slot[v.id] for v in graph.inputs}
        self.input_slots = list(self.inputs.values())
        self.target_slots = [self.slot[v.id] for v in graph.targets]
        self.noise_slots = [(self.slot[n.value.id], n.rate) for n in graph.noises]
        self._alias: dict[int, int] = {}
        self._param_slots = [(self.slot[p.value.id], v)
                             for p, v in zip(graph.params, buffer.views, strict=True)]
        self.forward_steps: list[tuple] = []
        self.kernels: list[Kernel] = []
        self._backward: list[int] = []   # indices of the kernels a backward pass runs
        self._frames: dict[int, tuple[list, list, list]] = {}
        self.state_updates: list[tuple] = []
        self.seed_slot = self.slot[seed.id] if seed is not None else None
        if self.training:
            self._compile_training(buffer, seed, fuse, wrt)
        else:
            self._compile_inference(wanted)

    def slot_of(self, value: Value) -> int:
        """Where a forward pass leaves ``value`` (a train-only op's output, at inference:
        its input's slot)."""
        i = self.slot[value.id]
        return self._alias.get(i, i)

    @property
    def output_slot(self) -> int:
        return self.slot_of(self.graph.output)

    @property
    def nodes(self) -> list[Node]:
        """The graph nodes a forward pass computes, in order."""
        if self.training:
            return [n for k in self.kernels for n in k.nodes]
        return list(self._inference_nodes)

    def _compile_inference(self, wanted: list[Value] | None) -> None:
        alias = self._alias
        self._inference_nodes = []
        if wanted is None:
            wanted = [n.output for n in self.graph.nodes if n.output is not self.graph.loss
                      and not any(v.kind == "target" for v in n.inputs)]
        needed = {id(n) for v in wanted for n in ancestors(v)}
        for node in self.graph.nodes:
            if id(node) not in needed:
                continue
            ins = tuple(alias.get(self.slot[v.id], self.slot[v.id]) for v in node.inputs)
            out = self.slot[node.output.id]
            if node.op.train_only:
                alias[out] = ins[0]
                continue
            self.forward_steps.append((partial(node.op.forward, **node.attrs), ins, out))
            self._inference_nodes.append(node)

    def _compile_training(self, buffer: ParamBuffer, seed: Value, fuse: bool,
                          wrt: list | None) -> None:
        views = {p.value.id: v for p, v in zip(self.graph.params, buffer.views, strict=True)}
        nodes = ancestors(seed)
        frozen = {p.value.id for p in self.graph.params if p.frozen}
        for node in nodes:
            if node.op.update is not None:
                ins = tuple(self.slot[v.id] for v in node.inputs)
                targets = {i: views[v.id] for i, v in enumerate(node.inputs)
                           if v.id in views and v.id not in frozen}
                self.state_updates.append((partial(node.op.update, **node.attrs), ins,
                                           self.slot[node.output.id], targets))
        trainable = [p for p in self.graph.params if p.trainable] if wrt is None else wrt
        steps = backward_schedule(self.graph, seed, [p.value for p in trainable])
        in_backward = {id(step.node) for step in steps}
        wanted = {(id(step.node), t.index) for step in steps for t in step.targets}
        grad_view = {p.value.id: g
                     for p, g in zip(self.graph.params, buffer.grad_views, strict=True)}

        def sink(node: Node, index: int) -> tuple[Sink, int] | None:
            """Where the gradient of ``node``'s input ``index`` goes (None: nowhere)."""
            if (id(node), index) not in wanted:
                return None
            v = node.inputs[index]
            return Sink(self.slot[v.id], grad_view.get(v.id)), v.id

        fuser = _Fuser(nodes, seed, views, self.slot) if fuse else None
        done: set[int] = set()
        routed: list[list[tuple[Sink, int]]] = []   # per kernel, its sinks and their values
        for node in nodes:
            if id(node) in done:
                continue
            match = fuser.match(node) if fuser else None
            if match is None:
                kernel, roles = OpKernel(node, self.slot), {i: (node, i)
                                                           for i in range(len(node.inputs))}
            else:
                kernel, roles = match
            pairs = []
            for role, (n, i) in roles.items():
                found = sink(n, i)
                if found is not None:
                    kernel.sinks[role] = found[0]
                    pairs.append(found)
            done.update(id(n) for n in kernel.nodes)
            self.kernels.append(kernel)
            routed.append(pairs)
        # The first contribution to each gradient, in the order the backward pass runs,
        # assigns; later ones accumulate.
        seen: set[int] = set()
        for i in reversed(range(len(self.kernels))):
            if id(self.kernels[i].nodes[-1]) not in in_backward:
                continue
            self._backward.append(i)
            for sk, vid in routed[i]:
                sk.first = vid not in seen
                seen.add(vid)

    def new_slots(self) -> list:
        s: list = [None] * self.n_slots
        for i, view in self._param_slots:
            s[i] = view
        return s

    def release(self) -> None:
        """Drop the buffers kept for every batch size (the next pass allocates afresh)."""
        self._frames.clear()

    def held_arrays(self) -> list[np.ndarray]:
        """Every array the kernels keep between steps, for every batch size seen."""
        return [a for *_, bufs in self._frames.values() for b in bufs for a in held(b)]

    def _frame(self, s: list) -> tuple[list, list, list]:
        """The kernels' forward and backward calls, bound to buffers for this batch size."""
        n = s[self.input_slots[0]].shape[0] if self.input_slots else 0
        frame = self._frames.get(n)
        if frame is None:
            if len(self._frames) >= _FRAMES:
                self._frames.pop(next(iter(self._frames)))
            bufs = [k.buffers() for k in self.kernels]
            frame = self._frames[n] = (
                [(k.forward, b) for k, b in zip(self.kernels, bufs, strict=True)],
                [(self.kernels[i].backward, bufs[i]) for i in self._backward], bufs)
        return frame

    def forward(self, s: list) -> None:
        if not self.training:
            for fn, ins, out in self.forward_steps:
                s[out] = fn(*[s[i] for i in ins])
            return
        for fn, b in self._frame(s)[0]:
            fn(s, b)

    def update_state(self, s: list) -> None:
        """Move stateful parameters (moving statistics) after a training forward pass."""
        for fn, ins, out, targets in self.state_updates:
            for i, value in fn(s[out], *[s[j] for j in ins]).items():
                np.copyto(targets[i], value)

    def backward(self, s: list, g_seed: np.ndarray | None = None) -> None:
        """Gradients into the parameter gradient buffer, given dL/d(seed) (for the graph's
        loss, nothing: it is 1)."""
        g: list = [None] * self.n_slots
        g[self.seed_slot] = _ONE if g_seed is None else g_seed
        for fn, b in self._frame(s)[1]:
            fn(s, g, b)


_ONE = np.float32(1)
_MATMUL, _ADD, _RELU = get_op("matmul"), get_op("add"), get_op("relu")
_CONV2D, _MAXPOOL = get_op("conv2d"), get_op("maxpool2d")
_LOSSES = {d.op: d.fn for d in LOSSES.values()}


class _Fuser:
    """Finds the chains a fused kernel computes: a matmul or conv2d by a parameter, then
    (each optional, each the only user of what it reads) add of a bias parameter, relu, and
    after a conv2d a max-pool with non-overlapping, unpadded windows."""

    def __init__(self, nodes: list[Node], seed: Value, views: dict, slot: dict) -> None:
        self.views, self.slot, self.seed = views, slot, seed
        self.users: dict[int, list[Node]] = {}
        for node in nodes:
            for v in node.inputs:
                self.users.setdefault(v.id, []).append(node)

    def _next(self, v: Value, op) -> Node | None:
        """The only user of ``v`` when it is ``op`` reading ``v`` first, and ``v`` can stay
        inside a kernel (it is not what the loss reads)."""
        users = self.users.get(v.id, [])
        if v is self.seed or len(users) != 1:
            return None
        node = users[0]
        if node.op is not op or node.inputs[0] is not v or node.op.update is not None:
            return None
        return node

    def _bias(self, v: Value, units: int) -> Node | None:
        node = self._next(v, _ADD)
        if node is None or node.inputs[1].id not in self.views \
                or tuple(node.inputs[1].shape) != (units,):
            return None
        return node

    def match(self, node: Node) -> tuple[Kernel, dict] | None:
        """A fused kernel starting at ``node`` and its roles (input index -> node, input),
        or None."""
        if node.op is _MATMUL:
            return self._dense(node)
        if node.op is _CONV2D:
            return self._conv(node)
        if node.op.name in _LOSSES:
            return LossKernel(node, self.slot, _LOSSES[node.op.name]), {0: (node, 0)}
        if node.op is _ADD:
            return self._join(node)
        return recurrent_kernel(node, self.views, self.slot)   # lstm, gru, rnn; else None

    def _join(self, node: Node):
        """add of two activations of one shape (a shortcut), then relu and a max-pool."""
        a, b = node.inputs
        if a.id in self.views or b.id in self.views or a.shape != b.shape or a is b:
            return None
        chain = [node]
        relu = self._next(node.output, _RELU)
        if relu is not None:
            chain.append(relu)
        pool = self._next(chain[-1].output, _MAXPOOL)
        window = None
        if pool is not None and len(a.shape) == 4:
            k = tuple(pool.attrs.get("kernel", (2, 2)))
            if k == tuple(pool.attrs.get("strides", (2, 2))) \
                    and not any(pool.attrs.get("pads", (0, 0, 0, 0))):
                chain.append(pool)
                window = k
        kernel = JoinKernel(chain, self.slot[a.id], self.slot[b.id], relu is not None, window,
                            self.slot[chain[-1].output.id], {})
        return kernel, {0: (node, 0), 1: (node, 1)}

    def _chain(self, node: Node, units: int) -> tuple[list[Node], Node | None, bool]:
        chain = [node]
        add = self._bias(node.output, units)
        if add is not None:
            chain.append(add)
        relu = self._next(chain[-1].output, _RELU)
        if relu is not None:
            chain.append(relu)
        return chain, add, relu is not None

    def _dense(self, node: Node):
        w = node.inputs[1]
        if w.id not in self.views:
            return None
        chain, add, relu = self._chain(node, w.shape[1])
        roles = {0: (node, 0), 1: (node, 1)}
        if add is not None:
            roles[2] = (add, 1)
        kernel = DenseKernel(chain, self.slot[node.inputs[0].id], self.views[w.id],
                             self.views[add.inputs[1].id] if add else None, relu,
                             self.slot[chain[-1].output.id], {})
        return kernel, roles

    def _conv(self, node: Node):
        w, attrs = node.inputs[1], node.attrs
        if w.id not in self.views or attrs.get("groups", 1) != 1:
            return None
        chain, add, relu = self._chain(node, w.shape[3])
        pool = self._next(chain[-1].output, _MAXPOOL)
        window = None
        if pool is not None:
            k = tuple(pool.attrs.get("kernel", (2, 2)))
            if k == tuple(pool.attrs.get("strides", (2, 2))) \
                    and not any(pool.attrs.get("pads", (0, 0, 0, 0))):
                chain.append(pool)
                window = k
        roles = {0: (node, 0), 1: (node, 1)}
        if add is not None:
            roles[2] = (add, 1)
        args = (chain, self.slot[node.inputs[0].id], node.inputs[0].shape[1:],
                self.views[w.id], self.views[add.inputs[1].id] if add else None, relu, window,
                self.slot[chain[-1].output.id], {})
        geometry = {k: attrs[k] for k in ("strides", "pads", "dilations") if k in attrs}
        if winograd_fits(w.shape, attrs.get("strides", (1, 1)),
                         attrs.get("dilations", (1, 1)), window):
            return WinogradConvKernel(*args, pads=attrs.get("pads", (0, 0, 0, 0))), roles
        return ConvKernel(*args, **geometry), roles
