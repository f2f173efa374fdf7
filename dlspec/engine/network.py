"""A lowered model with its parameters: forward passes for evaluation and prediction, and
the compiled training plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from dlspec.autodiff import ancestors
from dlspec.engine.losses import LOSSES, LossDef
from dlspec.engine.plan import ParamBuffer, Plan
from dlspec.graph.heads import Target, attach_loss
from dlspec.graph.ir import Graph, Value
from dlspec.graph.lower import chain, lower_model
from dlspec.ops import get_op
from dlspec.tasks import TASKS

EVAL_BATCH = 4096
EVAL_BYTES = 256 << 20  # activations of one evaluation chunk
_BY_OP = {d.op: d for d in LOSSES.values()}


class Network:
    """A graph, its flat parameters and its compiled plans.

    ``graph.loss``, when the graph has one, is what training minimises; ``loss_input`` is
    what it reads (the logits, for a cross-entropy), and the first output is the head that
    predictions decode.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.buffer = ParamBuffer(graph)
        loss_node = graph.loss.producer if graph.loss is not None else None
        self.loss: LossDef | None = _BY_OP[loss_node.op.name] if loss_node else None
        self.loss_input: Value = loss_node.inputs[0] if loss_node else graph.output
        self.input_names = [v.name for v in graph.inputs]
        wanted = [*graph.outputs.values(), self.loss_input]
        self.infer_plan = Plan(graph, self.buffer, wanted=wanted)
        self._train_plan: Plan | None = None
        per_row = sum(int(np.prod(v.shape[1:], dtype=np.int64)) for v in graph.values
                      if v.kind not in ("param", "target") and v.shape) * 4 * 4  # x4: im2col
        self.eval_batch = int(max(1, min(EVAL_BATCH, EVAL_BYTES // max(per_row, 1))))

    @classmethod
    def chain(cls, layers: Sequence, input_shape: int | tuple[int, ...], loss: str | None,
              locate=None, classes: int | None = None) -> Network:
        """A sequential model (``layers`` one after another) with ``loss`` attached."""
        graph = lower_model(chain(layers, input_shape), locate)
        if loss is not None:
            attach(graph, loss, classes=classes)
        return cls(graph)

    @property
    def task(self):
        return TASKS[self.loss.task] if self.loss else None

    @property
    def train_plan(self) -> Plan:
        if self._train_plan is None:
            self._train_plan = Plan(self.graph, self.buffer, seed=self.graph.loss)
        return self._train_plan

    def _feeds(self, x) -> Mapping[str, np.ndarray]:
        return x if isinstance(x, Mapping) else {self.input_names[0]: x}

    def forward(self, x, batch: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(loss input, first output) for float32 examples ``x`` (an array for a model of
        one input, else a dict by input name), in chunks of ``batch`` (default: as many as
        keep a chunk's activations near 256 MiB)."""
        feeds = self._feeds(x)
        n = len(next(iter(feeds.values())))
        batch = batch or self.eval_batch
        plan = self.infer_plan
        zi, oi = plan.slot_of(self.loss_input), plan.slot_of(self.graph.output)
        zs, outs = [], []
        for start in range(0, max(n, 1), batch):
            s = plan.new_slots()
            for name, slot in plan.inputs.items():
                s[slot] = feeds[name][start:start + batch]
            plan.forward(s)
            zs.append(s[zi])
            outs.append(s[oi])
        return np.concatenate(zs), np.concatenate(outs)

    def outputs(self, x, batch: int | None = None) -> dict[str, np.ndarray]:
        """Every output of the model by name, for examples ``x``."""
        feeds = self._feeds(x)
        n = len(next(iter(feeds.values())))
        batch = batch or self.eval_batch
        plan = self.infer_plan
        slots = {name: plan.slot_of(v) for name, v in self.graph.outputs.items()}
        parts: dict[str, list] = {name: [] for name in slots}
        for start in range(0, max(n, 1), batch):
            s = plan.new_slots()
            for name, slot in plan.inputs.items():
                s[slot] = feeds[name][start:start + batch]
            plan.forward(s)
            for name, slot in slots.items():
                parts[name].append(s[slot])
        return {name: np.concatenate(p) for name, p in parts.items()}

    def values(self, x, names, batch: int | None = None) -> dict[str, np.ndarray]:
        """The values of the named nodes (any node, ``g.out`` of a block call, or an output)
        for examples ``x``; only the inputs they read need to be given."""
        from dlspec.graph.trim import named_value

        feeds = self._feeds(x)
        n = len(next(iter(feeds.values())))
        batch = batch or self.eval_batch
        wanted = {name: named_value(self.graph, name) for name in names}
        plan = Plan(self.graph, self.buffer, wanted=list(wanted.values()))
        slots = {name: plan.slot_of(v) for name, v in wanted.items()}
        parts: dict[str, list] = {name: [] for name in slots}
        for start in range(0, max(n, 1), batch):
            s = plan.new_slots()
            for name, slot in plan.inputs.items():
                if name in feeds:
                    s[slot] = feeds[name][start:start + batch]
            plan.forward(s)
            for name, slot in slots.items():
                parts[name].append(s[slot])
        return {name: np.concatenate(p) for name, p in parts.items()}

    def output_from_loss_input(self, z: np.ndarray) -> np.ndarray:
        """The network's output given what the loss reads (the logits, when it fuses)."""
        if self.loss_input is self.graph.output:
            return z
        op = get_op(self.loss.fuses)
        act = next(n for n in self.graph.nodes if n.op is op and n.inputs[0] is self.loss_input)
        return op.forward(z, **act.attrs)

    def probabilities(self, out: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K >= 2) from the output of a classifier."""
        return TASKS["binary"].scores(out)


def attach(graph: Graph, loss: str, *, classes: int | None = None, width: int = 1,
           output: str | None = None) -> Value:
    """Attach ``loss`` to the graph's first output (or ``output``): class indices (N,) as
    the target of a classifier, (N, width) values of a regression."""
    task = LOSSES[loss].task
    name = output or next(iter(graph.outputs))
    shape = () if TASKS[task].classifier else (width,)
    return attach_loss(graph, name, LOSSES[loss], Target(task, classes, width), shape)


def reachable_params(graph: Graph) -> set[str]:
    """Names of the parameters the loss depends on."""
    if graph.loss is None:
        return set()
    return {v.name for node in ancestors(graph.loss) for v in node.inputs if v.kind == "param"}
