"""Does a model's output fit its loss and its target? One function, on plain values.

``output_problems`` compares what a lowered model computes (the output's shape, with
None for the batch axis, and the op that produces it) with what the loss trains and
what the target is. It knows nothing of the spec's layout: a caller turns each problem
into a located error at the layer that must change (``OutputProblem.part`` says which),
for a sequential spec's last layers or for each output of a graph.
"""

from __future__ import annotations

from dataclasses import dataclass

from dlspec.engine.losses import LOSSES

TASK_WORDS = {"binary": "a binary classifier", "multiclass": "a multi-class classifier",
              "regression": "a regression model"}


@dataclass(frozen=True)
class TargetShape:
    """What one output is trained against.

    Attributes:
        task: binary, multiclass or regression.
        name: the target's name, for messages (a column, ``label``, ``y``).
        classes: a classifier's number of classes, when known (None: not read yet).
        columns: a regression target's number of columns.
        per_window: the examples are windows of a sequence, with one target each.
    """

    task: str
    name: str = "target"
    classes: int | None = None
    columns: int = 1
    per_window: bool = False


@dataclass(frozen=True)
class OutputProblem:
    """One misfit. ``part`` is what must change: ``rank`` (the layer that gives the output
    its axes), ``sequence`` (a recurrent layer that returns every step), ``width`` (the
    layer that sets the last axis), ``classes`` (the same, against the classes found in
    the data), ``activation`` (the output's activation) or ``loss``."""

    part: str
    message: str


def _shape(shape: tuple) -> str:
    return "(" + ", ".join("N" if d is None else str(d) for d in shape) + ")"


def output_problems(shape: tuple, producer: str | None, loss: str,
                    target: TargetShape) -> list[OutputProblem]:
    """Every way an output of ``shape`` made by op ``producer`` misfits ``loss`` and ``target``.

    Args:
        shape: the output's shape, batch axis first (None).
        producer: the op that makes the output at inference (train-only ops such as
            dropout skipped), e.g. ``sigmoid``, ``add`` or ``lstm``; None for an input.
        loss: the loss's name.
        target: what the output is trained against.

    Returns the problems (empty when the output fits), each with what would fit.
    """
    trains = LOSSES[loss]
    if trains.task != target.task:
        return [OutputProblem("loss", f"{loss} trains {TASK_WORDS[trains.task]}, but "
                              f"'{target.name}' is the target of {TASK_WORDS[target.task]}")]
    want = {"binary": 1, "multiclass": target.classes,
            "regression": target.columns}[target.task]
    fits = f"(N, {want})" if want else "(N, classes)"
    end = f"a dense layer of units: {want}" if want else "a dense layer of one unit per class"
    if len(shape) != 2:
        if len(shape) == 3 and target.per_window:
            return [OutputProblem("sequence", f"the output is {_shape(shape)}, a value per "
                                  f"time step, but each window has one target "
                                  f"('{target.name}'); set return_sequences: false (or "
                                  f"flatten the steps), then end with {end}")]
        return [OutputProblem("rank", f"the output is {_shape(shape)}, but {loss} needs one "
                              f"row per example, {fits}; flatten (or global_avg_pool2d for "
                              f"images), then end with {end}")]
    width = shape[1]
    out = []
    if target.task == "binary" and width != 1:
        out.append(OutputProblem("width", f"binary_crossentropy trains one sigmoid unit per "
                                 f"target; the output has {width} units (use units: 1, or "
                                 "categorical_crossentropy with softmax)"))
    elif target.task == "multiclass" and target.classes is not None and width != want:
        out.append(OutputProblem("classes", f"'{target.name}' has {want} classes, so the "
                                 f"softmax output needs units: {want} (it has {width})"))
    elif target.task == "multiclass" and width < 2:
        out.append(OutputProblem("width", "categorical_crossentropy needs one output unit "
                                 f"per class (at least 2); the output has {width} (for two "
                                 "classes, use units: 1 with sigmoid and binary_crossentropy)"))
    elif target.task == "regression" and width != want:
        cols = f"{want} column{'s' * (want != 1)}"
        out.append(OutputProblem("width", f"{loss} fits one output per target column: "
                                 f"'{target.name}' is {cols}, but the output has {width} "
                                 f"values per example; end with a dense layer of units: {want}"))
    if trains.fuses and producer != trains.fuses:
        made = f"'{producer}'" if producer else "the input itself"
        out.append(OutputProblem("activation", f"{loss} needs a {trains.fuses} output, but "
                                 f"the output comes from {made}; end with a dense (or "
                                 f"activation) layer with activation: {trains.fuses}"))
    elif producer == "softmax" and width == 1 and not out:
        out.append(OutputProblem("activation", "a softmax over one unit is always 1, so "
                                 f"nothing can be learned; use activation: "
                                 f"{'sigmoid' if target.task == 'binary' else 'linear'}"))
    return out
