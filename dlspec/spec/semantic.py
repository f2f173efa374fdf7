"""Semantic checks: what the schema cannot say. Each check is a small named function.

They run on the canonical spec (``normalize``) and report through ``locate``,
so every message carries the line and column of the place to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dlspec.data.preprocess import check_steps, steps_for
from dlspec.engine.losses import LOSSES
from dlspec.engine.metrics import METRICS
from dlspec.errors import Location, SpecError
from dlspec.spec import sequence
from dlspec.spec.diagnose import did_you_mean, missing_column, named_columns_missing
from dlspec.spec.diagnose import spec_error as _err
from dlspec.spec.program import target_loss
from dlspec.spec.program_check import check_program

Locate = Callable[[tuple, bool], Location]
TASK_WORDS = {"binary": "a binary classifier", "multiclass": "a multi-class classifier",
              "regression": "a regression model"}


def check_sections(spec: dict, locate: Locate) -> list[SpecError]:
    """Training needs data and a train section together; a spec with neither describes a
    model whose weights it gives (export it, or study it with dlspec.gradients)."""
    if spec["data"] is not None and spec["train"] is None:
        return [_err(locate, ("data",), "a data section needs a train section (at least "
                     "train: {loss: ...}) to be trained on", "semantic-sections", key=True)]
    if spec["train"] is not None and spec["data"] is None:
        return [_err(locate, ("train",), "a train section needs data to train on: add a "
                     "data section with its source", "semantic-sections", key=True)]
    return []


def check_inputs(spec: dict, locate: Locate) -> list[SpecError]:
    """Each input's kind fits the data: tables may split their columns over several
    inputs, images and sequences feed exactly one input; tensors need a shape and no data."""
    from dlspec.spec.normalize import data_kind

    kind = data_kind(spec["data"])
    inputs = spec["model"]["inputs"]
    out = []
    rest, seen = [], {}
    for name, entry in inputs.items():
        path = ("model", "inputs", name)
        k = entry["kind"]
        if k == "noise":   # drawn by the trainer, whatever the data is
            continue
        if kind is None and k != "tensor":
            out.append(_err(locate, (*path, "kind"), f"a {k} input needs data: with no data "
                            "section, inputs are tensors of a declared shape (e.g. x: {shape: "
                            "[2]})", "semantic-input"))
        elif kind is not None and k != kind:
            out.append(_err(locate, (*path, "kind") if "kind" in entry else path,
                            f"input '{name}' is {k}, but the data ({spec['data']['source']}) "
                            f"gives {kind}s", "semantic-input", key="kind" not in entry))
        if k == "tensor" and entry.get("shape") is None:
            out.append(_err(locate, path, f"input '{name}' needs its shape (one example's, "
                            "without the batch axis, e.g. shape: [2])", "semantic-input",
                            key=True))
        if k == "table":
            if entry["columns"] is None:
                rest.append(name)
            for i, col in enumerate(entry["columns"] or []):
                if col in seen:
                    out.append(_err(locate, (*path, "columns", i), f"column '{col}' is read by"
                                    f" inputs '{seen[col]}' and '{name}'; give each column to "
                                    "one input", "semantic-input"))
                seen.setdefault(col, name)
            if "shape" in entry:
                out.append(_err(locate, (*path, "shape"), "a table input's width comes from "
                                "its columns and their preprocessing; remove shape",
                                "semantic-input"))
    if len(rest) > 1:
        out.append(_err(locate, ("model", "inputs", rest[1]), f"inputs '{rest[0]}' and "
                        f"'{rest[1]}' both take the remaining columns; list the columns of all"
                        " but one", "semantic-input", key=True))
    fed = [n for n, e in inputs.items() if e["kind"] != "noise"]
    if kind in ("image", "sequence") and len(fed) > 1:
        out.append(_err(locate, ("model", "inputs"), f"{kind} data feeds one input; the model "
                        f"declares {len(fed)} (besides noise)", "semantic-input", key=True))
    return out


def check_model_form(raw: dict, locate: Locate) -> list[SpecError]:
    """On the spec as written: the model is the sequential list or the named graph, and the
    list's layer names are unique (the canonical form keys nodes by them)."""
    model = raw.get("model") or {}
    graph = [k for k in ("inputs", "nodes", "outputs", "blocks") if k in model]
    if "layers" in model and graph:
        return [_err(locate, ("model", graph[0]), f"model.layers and model.{graph[0]} cannot "
                     "be combined: write the model as a list of layers, or as named nodes "
                     "(nodes: {name: {dense: 8, from: x}}) with inputs and outputs",
                     "semantic-model", key=True)]
    if "layers" not in model and "nodes" not in model:
        return [_err(locate, ("model",), "the model needs nodes (named: nodes: {h: {dense: 8}})"
                     " or layers (a list: layers: [{dense: 8}])", "semantic-model", key=True)]
    out = []
    seen: dict[str, int] = {}
    from dlspec.spec.normalize import layer_names

    for i, (item, name) in enumerate(zip(model.get("layers", []),
                                         layer_names(model.get("layers", [])), strict=True)):
        (type_, _), = item.items()
        if name in seen:
            out.append(_err(locate, ("model", "layers", i, type_, "name"),
                            f"duplicate layer name '{name}' (also layers[{seen[name]}])",
                            "semantic-duplicate-name"))
        seen.setdefault(name, i)
    return out


def check_metrics(spec: dict, locate: Locate) -> list[SpecError]:
    if spec["train"] is None:
        return []
    loss = target_loss(spec["train"])
    task = LOSSES[loss].task
    fits = sorted(m for m, d in METRICS.items() if task in d.tasks)
    return [_err(locate, ("train", "metrics", i),
                 f"metric '{m}' does not apply to {TASK_WORDS[task]} (trained with "
                 f"{loss}); use one of: {', '.join(fits)}", "semantic-metric")
            for i, m in enumerate(spec["train"]["metrics"]) if task not in METRICS[m].tasks]


def monitor_names(spec: dict) -> list[str]:
    t = spec["train"]
    named = [n for losses in [t.get("losses") or {}, *[p.get("losses") or {}
                                                      for p in t.get("phases") or ()]]
             for n in losses]
    sums = [f"{n}_loss" for opts in [t.get("optimizers") or {}, *[p.get("optimizers") or {}
                                                             for p in t.get("phases") or ()]]
            for n, e in opts.items() if len(e.get("minimize") or ()) > 1]
    names = list(dict.fromkeys(["loss", *named, *sums, *t["metrics"]]))
    return names + [f"val_{n}" for n in names]


def check_early_stopping(spec: dict, locate: Locate) -> list[SpecError]:
    es = spec["train"] and spec["train"]["early_stopping"]
    if es is None or spec["data"] is None:
        return []
    path = ("train", "early_stopping", "monitor")
    options = monitor_names(spec)
    if es["monitor"] not in options:
        return [_err(locate, path, f"cannot monitor '{es['monitor']}'"
                     f"{did_you_mean(es['monitor'], options)}; options: {', '.join(options)}",
                     "semantic-monitor")]
    if es["monitor"].startswith("val_") and spec["data"]["split"]["validation"] == 0:
        return [_err(locate, path, f"monitoring '{es['monitor']}' needs a validation split; "
                     "set data.split.validation (e.g. 0.1)", "semantic-monitor")]
    return []


def check_split(spec: dict, locate: Locate) -> list[SpecError]:
    if spec["data"] is None:
        return []
    s = spec["data"]["split"]
    if s["test"] + s["validation"] >= 1:
        return [_err(locate, ("data", "split"), f"test ({s['test']}) + validation "
                     f"({s['validation']}) leave no rows for training; their sum must be < 1",
                     "semantic-split")]
    return []


def check_optimizer(spec: dict, locate: Locate) -> list[SpecError]:
    if spec["train"] is None:
        return []
    (name, p), = spec["train"]["optimizer"].items()
    if p.get("nesterov") and not p.get("momentum"):
        return [_err(locate, ("train", "optimizer", name, "nesterov"),
                     "nesterov needs momentum > 0", "semantic-optimizer")]
    return []


TABLE_STEPS = frozenset({"onehot", "label_encode", "standardize", "minmax"})
IMAGE_STEPS = frozenset({"scale", "normalize"})


def check_data_format(spec: dict, locate: Locate) -> list[SpecError]:
    """What each kind of data allows: a CSV needs a target; images need labels, not columns."""
    from dlspec.data.builtin import DATASETS
    from dlspec.data.sources import IMAGE_FORMATS

    d = spec["data"]
    out = []
    if d is None or sequence.is_sequence(spec):  # check_sequence
        return out
    images = d["format"] in IMAGE_FORMATS
    kind = "image" if images else "table"
    wrong = IMAGE_STEPS if not images else TABLE_STEPS
    for i, step in enumerate(d["preprocess"]):
        (name, _), = step.items()
        if name in wrong:
            out.append(_err(locate, ("data", "preprocess", i, name), f"'{name}' does not apply"
                            f" to {kind} data ({d['format']}); use "
                            f"{' or '.join(sorted(IMAGE_STEPS if images else TABLE_STEPS))}",
                            "semantic-preprocess", key=True))
    if not images:
        if "target" not in d:
            out.append(_err(locate, ("data",), "missing required key 'target': CSV data needs"
                            " the column to predict", "semantic-target", key=True))
        for key in ("labels", "augment"):
            if d.get(key):
                out.append(_err(locate, ("data", key), f"'{key}' applies to image data only",
                                "semantic-format", key=True))
        return out
    for key in ("target", "drop", "features"):
        if d.get(key):
            out.append(_err(locate, ("data", key), f"'{key}' applies to CSV data only; images "
                            "are labelled by their source", "semantic-format", key=True))
    for where, src in ((("data",), d), (("data", "test"), d.get("test"))):
        if src is None:
            continue
        if src["format"] == "idx" and not src.get("labels"):
            out.append(_err(locate, where, "IDX images need their labels file: add labels: "
                            "PATH", "semantic-format", key=True))
        if src["format"] == "builtin" and src["source"] not in DATASETS:
            out.append(_err(locate, (*where, "source"), f"unknown built-in dataset "
                            f"'{src['source']}'{did_you_mean(src['source'], DATASETS)}; known: "
                            f"{', '.join(sorted(DATASETS))}", "semantic-format"))
    if spec["train"] and LOSSES[target_loss(spec["train"])].task == "regression":
        out.append(_err(locate, ("train", "loss"), "images are classified here: use "
                        "categorical_crossentropy (or binary_crossentropy for two classes)",
                        "semantic-loss-output"))
    return out


def check_target(spec: dict, locate: Locate) -> list[SpecError]:
    d = spec["data"]
    out = []
    if d is None or "target" not in d:
        return out
    if d["target"] in d["drop"]:
        out.append(_err(locate, ("data", "drop", d["drop"].index(d["target"])),
                        f"the target '{d['target']}' is dropped", "semantic-target"))
    if d["features"] and d["target"] in d["features"] and not sequence.is_sequence(spec):
        out.append(_err(locate, ("data", "features", d["features"].index(d["target"])),
                        f"the target '{d['target']}' cannot also be a feature",
                        "semantic-target"))
    return out


def check_features(spec: dict, locate: Locate) -> list[SpecError]:
    d = spec["data"]
    if d is None:
        return []
    if d["features"] == []:
        return [_err(locate, ("data", "features"), "no feature columns listed; list some, or "
                     "leave features out to use every column but the target and dropped ones",
                     "semantic-features")]
    return [_err(locate, ("data", "features", i), f"column '{col}' is both dropped and a "
                 "feature; remove it from one of data.drop and data.features",
                 "semantic-features")
            for i, col in enumerate(d["features"] or []) if col in d["drop"]]


CHECKS = [check_sections, check_inputs, check_metrics, check_early_stopping, check_split,
          check_optimizer, check_data_format, check_target, check_features,
          sequence.check_sequence, check_program]


def check_spec(spec: dict, locate: Locate) -> list[SpecError]:
    """Every semantic problem that needs no data."""
    return [e for check in CHECKS for e in check(spec, locate)]


def feature_columns(spec: dict, header: Sequence[str]) -> list[str]:
    if sequence.is_sequence(spec):
        return sequence.feature_columns(spec, header)
    d = spec["data"]
    if d["features"] is not None:
        return list(d["features"])
    return [c for c in header if c != d.get("target") and c not in d["drop"]]


def input_columns(spec: dict, features: Sequence[str]) -> dict[str, list[str]]:
    """Each table input's raw columns: as it lists them, or (for the one that does not)
    the features no other input lists, in the data's order."""
    inputs = {n: e for n, e in spec["model"]["inputs"].items() if e["kind"] == "table"}
    taken = {c for e in inputs.values() for c in e["columns"] or []}
    return {n: list(e["columns"]) if e["columns"] else [f for f in features if f not in taken]
            for n, e in inputs.items()}


def check_input_columns(spec: dict, header: Sequence[str], features: Sequence[str],
                        source: str, locate: Locate) -> list[SpecError]:
    """Table inputs read feature columns of the data, and none is left with no column."""
    d = spec["data"]
    out = []
    for name, entry in spec["model"]["inputs"].items():
        if entry["kind"] != "table":
            continue
        path = ("model", "inputs", name)
        for i, col in enumerate(entry["columns"] or []):
            if col in features:
                continue
            what = "the target" if col == d.get("target") else \
                "dropped" if col in d["drop"] else "not a feature" if col in header else None
            if what:
                out.append(_err(locate, (*path, "columns", i), f"column '{col}' is {what}; an"
                                " input reads feature columns", "semantic-input"))
            else:
                out.append(missing_column(locate, (*path, "columns", i), col, header, source))
    if not out and features:
        for name, cols in input_columns(spec, features).items():
            if not cols:
                out.append(_err(locate, ("model", "inputs", name), f"input '{name}' has no "
                                "columns left: the other inputs read every feature",
                                "semantic-input", key=True))
    return out


def check_columns(spec: dict, header: Sequence[str], source: str,
                  locate: Locate) -> list[SpecError]:
    """Columns the spec names that the data's header lacks, and preprocessing misuse."""
    d = spec["data"]
    out = []
    if "target" not in d:  # reported by check_data_format
        return out
    if sequence.is_sequence(spec):
        return sequence.check_series_columns(spec, header, source, locate)

    out += named_columns_missing(d, header, source, locate)

    def missing(path, col):
        out.append(missing_column(locate, path, col, header, source))

    features = feature_columns(spec, header)
    if not features and d["features"] is None:
        out.append(_err(locate, ("data", "drop") if d["drop"] else ("data", "target"),
                        f"no feature columns left: {source} has only the target and dropped "
                        "columns", "semantic-features"))
    out += check_input_columns(spec, header, features, source, locate)
    for i, step in enumerate(d["preprocess"]):
        (kind, arg), = step.items()
        cols = arg["columns"]
        for j, col in enumerate(cols if isinstance(cols, list) else []):
            if col not in features:
                what = "the target" if col == d["target"] else \
                    "dropped" if col in d["drop"] else None
                if what or col in header:
                    out.append(_err(locate, ("data", "preprocess", i, kind, "columns", j),
                                    f"column '{col}' is {what or 'not a feature'}; only "
                                    "features are preprocessed", "semantic-column"))
                else:
                    missing(("data", "preprocess", i, kind, "columns", j), col)
    if not out:
        for cols in input_columns(spec, features).values():
            for problem in check_steps(cols, steps_for(d["preprocess"], cols)):
                out.append(_err(locate, ("data", "preprocess"), problem, "semantic-preprocess"))
    return out
