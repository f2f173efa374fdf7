"""The head: which output a loss trains, what it must look like, and the loss node itself.

Decided once, on the lowered graph: a cross-entropy reads the logits feeding the output's
final sigmoid or softmax (stable for any logit, and fused with it in the engine); the
output's shape must fit the target (one sigmoid unit for a binary target, one unit per
class, one per regression target column, one per window rather than per time step). A
problem names the layer that must change and what would fit.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlspec.graph.ir import Graph, Node, Value
from dlspec.ops.registry import fmt_shape

TARGET = "target"
_RECURRENT = ("lstm", "gru", "simple_rnn")


@dataclass(frozen=True)
class Target:
    """What the loss compares the output with: the task, and (when the data is known)
    the number of classes or of regression target columns."""

    task: str
    classes: int | None = None
    width: int = 1
    name: str = "the target"

    @property
    def called(self) -> str:
        return self.name if self.name == "the target" else f"'{self.name}'"


class HeadError(ValueError):
    """A head that cannot train: ``layer`` is the node to change, ``param`` its parameter
    (units, activation, return_sequences) where one is to blame."""

    def __init__(self, message: str, layer: str, param: str | None = None,
                 classes: bool = False) -> None:
        super().__init__(message)
        self.layer, self.param = layer, param
        self.classes = classes   # known only from the data's values (its classes)


def _layer_types(graph: Graph) -> dict[str, str]:
    return {info.name: info.type for info in graph.layers}


def _back(value: Value):
    """The ops from ``value`` back along first inputs (train-only ones included)."""
    node = value.producer
    while node is not None:
        yield node
        node = node.inputs[0].producer if node.inputs else None


def _source(graph: Graph, value: Value, types: tuple[str, ...]) -> str | None:
    """The nearest layer of one of ``types`` that ``value`` comes from."""
    kinds = _layer_types(graph)
    return next((n.layer for n in _back(value) if kinds.get(n.layer) in types), None)


def _activation(value: Value) -> Node | None:
    """The op the value ends in, train-only ops (dropout) skipped."""
    return next((n for n in _back(value) if not n.op.train_only), None)


class HeadErrors(ValueError):
    """Every problem of one head."""

    def __init__(self, problems: list[HeadError]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


_ACTIVATIONS = ("relu", "sigmoid", "tanh", "softmax", "softplus", "leaky_relu", "elu")


def check_head(graph: Graph, name: str, loss, target: Target,
               value: Value | None = None) -> list[HeadError]:
    """Every reason ``loss`` cannot train output ``name`` (or the node ``value``, named
    ``name``) against ``target``."""
    out = graph.outputs[name] if value is None else value
    owner = _activation(out)
    last = owner.layer if owner is not None else name
    problems = []
    if loss.fuses:
        act = owner.op.name if owner is not None else "the input"
        kind = _layer_types(graph).get(last)
        if act != loss.fuses and kind in _RECURRENT:
            problems.append(HeadError(
                f"{loss.name} reads the logits of a final {loss.fuses}, but the output comes "
                f"from '{last}' ({kind}), whose activation is inside its recurrent cell; end "
                f"with a dense layer of activation: {loss.fuses}", last, "activation"))
        elif act != loss.fuses:
            act = act if act in _ACTIVATIONS or owner is None else "linear"
            problems.append(HeadError(f"{loss.name} needs a {loss.fuses} output, but the last "
                                      f"layer '{last}' ends in '{act}'; set activation: "
                                      f"{loss.fuses}", last, "activation"))
    try:
        _check_shape(graph, name, loss, target, last, out)
    except HeadError as e:
        problems.append(e)
    return problems


def _check_shape(graph: Graph, name: str, loss, target: Target, last: str,
                 out: Value) -> None:
    shape = out.shape
    units = _source(graph, out, ("dense", "conv2d", *_RECURRENT)) or last
    if len(shape) == 3:
        rnn = _source(graph, out, _RECURRENT)
        if rnn is not None:
            raise HeadError(f"'{rnn}' returns every time step, so the output is "
                            f"{fmt_shape(shape)}, but {target.called} is one value per window;"
                            f" set return_sequences: false on '{rnn}' and end with units: "
                            f"{target.width if target.task == 'regression' else 1} (or "
                            "flatten before the output layer)", rnn, "return_sequences")
    if len(shape) != 2:
        raise HeadError(f"the output '{name}' is {fmt_shape(shape)}, but {loss.name} needs "
                        "one vector per example (N, units); add flatten (or "
                        "global_avg_pool2d) and a dense output layer", last)
    width = shape[1]
    if target.task == "binary" and width != 1:
        raise HeadError(f"binary_crossentropy trains one sigmoid unit per target; the output"
                        f" layer has {width} units ('{units}'; use units: 1, or "
                        "categorical_crossentropy with softmax)", units, "units")
    if target.task == "multiclass":
        if width < 2:
            raise HeadError(f"categorical_crossentropy needs one output unit per class (at "
                            f"least 2); the output layer '{units}' has {width} (for two "
                            "classes, use units: 1 with sigmoid and binary_crossentropy)",
                            units, "units")
        if target.classes is not None and width != target.classes:
            raise HeadError(f"{target.called} has {target.classes} classes, so the softmax "
                            f"output needs units: {target.classes} ('{units}' has {width})",
                            units, "units", classes=True)
    if target.task == "regression" and width != target.width:
        cols = "1 column" if target.width == 1 else f"{target.width} columns"
        raise HeadError(f"{target.called} is {cols}, but the output has {width} values per "
                        f"example ('{units}'); {loss.name} compares them one to one: end with "
                        f"units: {target.width}", units, "units")


def attach_loss(graph: Graph, name: str, loss, target: Target, target_shape: tuple) -> Value:
    """Add the target input and the loss node reading output ``name`` (its logits, for a
    cross-entropy) to ``graph``; returns the loss value. ``loss`` is a loss's definition
    (``dlspec.engine.losses.LossDef``: its name, op and the activation it fuses with).

    Raises:
        HeadErrors: the output cannot be trained by this loss against this target.
    """
    from dlspec.graph.ir import GraphBuilder

    problems = check_head(graph, name, loss, target)
    if problems:
        raise HeadErrors(problems)
    out = graph.outputs[name]
    reads = _activation(out).inputs[0] if loss.fuses else out
    gb = GraphBuilder.extend(graph)
    y = gb.input(TARGET, (None, *target_shape), kind="target")
    gb.begin_layer("loss")
    graph.loss = gb.op(loss.op, reads, y)
    return graph.loss
