"""Semantic checks: what the schema cannot say. Each check is a small named function.

They run on the canonical spec (``normalize``) and report through ``locate``,
so every message carries the line and column of the place to fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dlspec.data.preprocess import check_steps
from dlspec.engine.losses import LOSSES
from dlspec.engine.metrics import METRICS
from dlspec.errors import Location, SpecError
from dlspec.spec import sequence
from dlspec.spec.diagnose import did_you_mean, missing_column, named_columns_missing
from dlspec.spec.diagnose import spec_error as _err

Locate = Callable[[tuple, bool], Location]
TASK_WORDS = {"binary": "a binary classifier", "multiclass": "a multi-class classifier",
              "regression": "a regression model"}


def check_layer_names(spec: dict, locate: Locate) -> list[SpecError]:
    seen: dict[str, int] = {}
    out = []
    for i, item in enumerate(spec["model"]["layers"]):
        (type_, p), = item.items()
        name = p["name"]
        if name in seen:
            out.append(_err(locate, ("model", "layers", i, type_, "name"),
                            f"duplicate layer name '{name}' (also layers[{seen[name]}])",
                            "semantic-duplicate-name"))
        seen.setdefault(name, i)
    return out


def output_layer(spec: dict) -> tuple[int, str, dict]:
    """The layer that decides the output's activation (trailing dropouts skipped)."""
    layers = spec["model"]["layers"]
    for i in range(len(layers) - 1, -1, -1):
        (type_, p), = layers[i].items()
        if type_ != "dropout":
            return i, type_, p
    return 0, *next(iter(layers[0].items()))


def _last_units(spec: dict) -> tuple[int, int] | None:
    for i in range(len(spec["model"]["layers"]) - 1, -1, -1):
        (type_, p), = spec["model"]["layers"][i].items()
        if "units" in p:
            return i, p["units"]
    return None


def check_loss_fits_output(spec: dict, locate: Locate) -> list[SpecError]:
    loss = LOSSES[spec["train"]["loss"]]
    i, type_, p = output_layer(spec)
    out = []
    act = p.get("activation", "linear")
    if loss.fuses and act != loss.fuses:
        out.append(_err(locate, ("model", "layers", i, type_, "activation"),
                        f"{loss.name} needs a {loss.fuses} output, but the last layer "
                        f"'{p['name']}' ends in '{act}'; set activation: {loss.fuses}",
                        "semantic-loss-output"))
    last = _last_units(spec)
    if loss.task == "binary" and last and last[1] != 1:
        j, units = last
        (t, _), = spec["model"]["layers"][j].items()
        out.append(_err(locate, ("model", "layers", j, t, "units"),
                        f"binary_crossentropy trains one sigmoid unit per target; the output "
                        f"layer has {units} units (use units: 1, or categorical_crossentropy"
                        f" with softmax)", "semantic-loss-output"))
    if loss.task == "multiclass" and last and last[1] < 2:
        j, units = last
        (t, _), = spec["model"]["layers"][j].items()
        out.append(_err(locate, ("model", "layers", j, t, "units"),
                        f"categorical_crossentropy needs one output unit per class (at least 2); "
                        f"the output layer has {units} (for two classes, use units: 1 with "
                        f"sigmoid and binary_crossentropy)", "semantic-loss-output"))
    return out


def check_metrics(spec: dict, locate: Locate) -> list[SpecError]:
    task = LOSSES[spec["train"]["loss"]].task
    fits = sorted(m for m, d in METRICS.items() if task in d.tasks)
    return [_err(locate, ("train", "metrics", i),
                 f"metric '{m}' does not apply to {TASK_WORDS[task]} (trained with "
                 f"{spec['train']['loss']}); use one of: {', '.join(fits)}", "semantic-metric")
            for i, m in enumerate(spec["train"]["metrics"]) if task not in METRICS[m].tasks]


def monitor_names(spec: dict) -> list[str]:
    names = ["loss", *spec["train"]["metrics"]]
    return names + [f"val_{n}" for n in names]


def check_early_stopping(spec: dict, locate: Locate) -> list[SpecError]:
    es = spec["train"]["early_stopping"]
    if es is None:
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
    s = spec["data"]["split"]
    if s["test"] + s["validation"] >= 1:
        return [_err(locate, ("data", "split"), f"test ({s['test']}) + validation "
                     f"({s['validation']}) leave no rows for training; their sum must be < 1",
                     "semantic-split")]
    return []


def check_optimizer(spec: dict, locate: Locate) -> list[SpecError]:
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
    if sequence.is_sequence(spec):  # check_sequence
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
    if LOSSES[spec["train"]["loss"]].task == "regression":
        out.append(_err(locate, ("train", "loss"), "images are classified here: use "
                        "categorical_crossentropy (or binary_crossentropy for two classes)",
                        "semantic-loss-output"))
    return out


def check_target(spec: dict, locate: Locate) -> list[SpecError]:
    d = spec["data"]
    out = []
    if "target" not in d:
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
    if d["features"] == []:
        return [_err(locate, ("data", "features"), "no feature columns listed; list some, or "
                     "leave features out to use every column but the target and dropped ones",
                     "semantic-features")]
    return [_err(locate, ("data", "features", i), f"column '{col}' is both dropped and a "
                 "feature; remove it from one of data.drop and data.features",
                 "semantic-features")
            for i, col in enumerate(d["features"] or []) if col in d["drop"]]


CHECKS = [check_layer_names, check_loss_fits_output, check_metrics, check_early_stopping,
          check_split, check_optimizer, check_data_format, check_target, check_features,
          sequence.check_sequence]


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
        for problem in check_steps(features, d["preprocess"]):
            out.append(_err(locate, ("data", "preprocess"), problem, "semantic-preprocess"))
    return out
