"""The parts every written spec shares: the choice record, the head, the task's output and
training section."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlspec.scaffold.yamltext import SpecText, scalar
from dlspec.version import __version__


@dataclass(frozen=True)
class Choice:
    """One decision ``dlspec init`` made: where in the spec, what, and why."""

    key: str        # a spec path: data.drop, data.preprocess.onehot, model.layers, ...
    value: object   # the column, the step, the number chosen
    reason: str


@dataclass(frozen=True)
class Context:
    """Where the spec will live and what was read, for its head and data.source."""

    schema_ref: str   # the modeline's target
    source: str       # data.source as written (relative to the spec's folder)
    name: str         # the spec's name
    read: str         # "all 569 rows of breast_cancer.csv", ...
    file: str         # the data file's name


@dataclass(frozen=True)
class Task:
    """What a task puts at the end of the network and in train."""

    loss: str
    activation: str
    metrics: tuple[str, ...]
    why: str


TASKS = {
    "binary": Task("binary_crossentropy", "sigmoid", ("accuracy", "precision", "recall", "f1",
                                                      "auc"), ""),
    "multiclass": Task("categorical_crossentropy", "softmax", ("accuracy", "f1"),
                       "softmax over the classes; f1 is the average over classes"),
    "regression": Task("mse", "linear", ("mae",), "one linear unit: the predicted value"),
}


@dataclass
class Builder:
    """The spec's text and the choices behind it, written together so they cannot drift."""

    text: SpecText = field(default_factory=SpecText)
    choices: list[Choice] = field(default_factory=list)
    task: str = ""  # set by train_section

    def line(self, indent: int, code: str, comment: str = "") -> None:
        self.text.line(indent, code, comment)

    def note(self, indent: int, text: str) -> None:
        self.text.note(indent, text)

    def choose(self, indent: int, code: str, key: str, value, reason: str,
               comment: str | None = None) -> None:
        """A line that records a choice; its comment is the reason unless given."""
        self.text.line(indent, code, reason if comment is None else comment)
        self.choices.append(Choice(key, value, reason))

    def render(self) -> str:
        return self.text.render()


def head(b: Builder, schema_ref: str, read: str, name: str, description: str) -> None:
    """The modeline, the note on how the spec was made, and the top-level keys."""
    b.line(0, f"# yaml-language-server: $schema={schema_ref}")
    b.note(0, f"Written by dlspec init (dlspec {__version__}) from {read}. Every choice is "
              "explained in the comment beside it: change what you know better, then "
              "`dlspec validate` checks the file and `dlspec train` trains it.")
    b.line(0, "dlspec: 1")
    b.line(0, f"name: {scalar(name)}", "runs go to runs/<name>/")
    b.line(0, f"description: {scalar(description, block=True)}")
    b.choose(0, "seed: 0", "seed", 0, "seeds the split and training: same seed, same weights")


def source_line(b: Builder, source: str, more: str = "") -> None:
    """``source:``, with where the path starts from."""
    where = "an absolute path" if source.startswith("/") else "relative to this file"
    b.line(2, f"source: {scalar(source)}", where + more)


def output_layer(b: Builder, task: str, classes: list[str]) -> None:
    """The network's last layer for ``task``, with what its output means."""
    t = TASKS[task]
    last = {"units": len(classes) if task == "multiclass" else 1, "activation": t.activation}
    why = f"one sigmoid unit: the probability of {classes[1]} (the second class in order)" \
        if task == "binary" else t.why
    b.choose(4, f"- dense: {scalar(last)}", "model.layers", {"dense": last}, why)


def train_section(b: Builder, task: str, *, lr: float, batch_size: int, epochs: int,
                  patience: int | None, why_batch: str, why_epochs: str,
                  why_lr: str = "Adam adapts each weight's step; a sound default") -> None:
    """``train:`` for ``task``, with Adam, early stopping (when ``patience``) and metrics."""
    t = TASKS[task]
    b.task = task
    b.line(0, "train:")
    b.choose(2, f"loss: {t.loss}", "train.loss", t.loss, {
        "binary": "cross-entropy of the sigmoid output against 0/1",
        "multiclass": "cross-entropy of the softmax output against the class",
        "regression": "mean squared error"}[task])
    b.choose(2, f"optimizer: {{adam: {{lr: {lr}}}}}", "train.optimizer", {"adam": {"lr": lr}},
             why_lr)
    b.choose(2, f"batch_size: {batch_size}", "train.batch_size", batch_size, why_batch)
    b.choose(2, f"epochs: {epochs}", "train.epochs", epochs, why_epochs)
    b.choose(2, f"metrics: {scalar(list(t.metrics))}", "train.metrics", list(t.metrics),
             "reported for validation and test" + ("; mse is the loss" if task == "regression"
                                                  else ""))
    if patience is not None:
        es = {"monitor": "val_loss", "patience": patience, "restore_best": True}
        b.choose(2, f"early_stopping: {scalar(es)}", "train.early_stopping", es,
                 f"stop after {patience} epochs without a better validation loss and keep the "
                 "best epoch's weights")
