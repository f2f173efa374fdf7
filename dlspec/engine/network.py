"""A lowered model with its parameters: forward passes for evaluation and prediction."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlspec.engine.losses import LOSSES, LossDef
from dlspec.engine.plan import ParamBuffer, Plan
from dlspec.graph.ir import Graph, Value
from dlspec.graph.lower import lower, output_activation
from dlspec.ops import get_op

EVAL_BATCH = 4096
EVAL_BYTES = 256 << 20  # activations of one evaluation chunk


class Network:
    """The graph of a spec's layers, its flat parameters and its compiled plans."""

    def __init__(self, layers: Sequence, input_shape: int | tuple[int, ...], loss: str,
                 locate=None) -> None:
        """``input_shape``: features of a table, or (height, width, channels) of an image."""
        self.graph: Graph = lower(layers, input_shape, locate)
        self.input_shape = input_shape
        self.loss: LossDef = LOSSES[loss]
        self.buffer = ParamBuffer(self.graph)
        self.loss_input: Value = self._loss_input()
        self.infer_plan = Plan(self.graph, self.buffer)
        self._train_plan: Plan | None = None
        per_row = sum(int(np.prod(v.shape[1:], dtype=np.int64)) for v in self.graph.values
                      if v.kind != "param") * 4 * 4  # x4: im2col and temporaries
        self.eval_batch = int(max(1, min(EVAL_BATCH, EVAL_BYTES // max(per_row, 1))))

    def _loss_input(self) -> Value:
        out = self.graph.output
        if self.loss.fuses and output_activation(self.graph) == self.loss.fuses:
            node = out.producer
            while node.op.train_only:
                node = node.inputs[0].producer
            return node.inputs[0]  # the logits
        return out

    @property
    def train_plan(self) -> Plan:
        if self._train_plan is None:
            self._train_plan = Plan(self.graph, self.buffer, seed=self.loss_input)
        return self._train_plan

    def forward(self, x: np.ndarray, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(loss input, output) for float32 rows ``x``, in chunks of ``batch`` rows
        (default: as many as keep a chunk's activations near 256 MiB)."""
        batch = batch or self.eval_batch
        plan = self.infer_plan
        zi = plan.value_slot(self.loss_input)
        zs, outs = [], []
        for start in range(0, max(len(x), 1), batch):
            s = plan.new_slots()
            s[plan.input_slots[0]] = x[start:start + batch]
            plan.forward(s)
            zs.append(s[zi])
            outs.append(s[plan.output_slot])
        return np.concatenate(zs), np.concatenate(outs)

    def output_from_loss_input(self, z: np.ndarray) -> np.ndarray:
        """The network's output given what the loss reads (the logits, when it fuses)."""
        if self.loss_input is self.graph.output:
            return z
        op = get_op(self.loss.fuses)
        act = next(n for n in self.graph.nodes if n.op is op and n.inputs[0] is self.loss_input)
        return op.forward(z, **act.attrs)

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K >= 2) from the output of a classifier."""
        if out.shape[1] == 1:
            return np.concatenate([1 - out, out], axis=1)
        return out
