"""Specs for tables (an MLP on the columns) and time-ordered tables (a window network)."""

from __future__ import annotations

import math

from dlspec.data.table import Table
from dlspec.errors import DataError, Location, UsageError
from dlspec.scaffold.columns import DROP, Column, TargetInfo, read_column, read_target
from dlspec.scaffold.common import (
    Builder,
    Context,
    head,
    output_layer,
    source_line,
    train_section,
)
from dlspec.scaffold.yamltext import scalar

_SHOWN = 12  # feature names listed in the features comment


def _pow2_at_most(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1)))))


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (", ..." if len(names) > _SHOWN else "")


def _no_features(table: Table, columns: list[Column]) -> DataError:
    why = "; ".join(f"{c.name}: {c.reason}" for c in columns[:5])
    hint = "" if not any(c.kind == "date" for c in columns) else \
        "; for a time series, forecast the target from its own past with --sequence WINDOW"
    return DataError(f"no feature columns left to learn from (every column but the target is "
                     f"dropped: {why}){hint}", Location(table.source, 1), code="data-columns")


def _target_line(b: Builder, target: TargetInfo) -> None:
    b.choose(2, f"target: {scalar(target.name)}", "data.target", target.name, target.reason)


def _drops(b: Builder, dropped: list[Column]) -> None:
    if not dropped:
        return
    b.line(2, "drop:", "not features:")
    for c in dropped:
        b.choose(4, f"- {scalar(c.name)}", "data.drop", c.name, c.reason)


def _encodings(b: Builder, used: list[Column]) -> None:
    for use, why in (("onehot", "one 0/1 feature per category: no order is assumed"),
                     ("label_encode", "two values: one 0/1 feature")):
        cols = [c for c in used if c.use == use]
        if cols:
            b.line(4, f"- {use}:", why)
            for c in cols:
                b.choose(8, f"- {scalar(c.name)}", f"data.preprocess.{use}", c.name, c.reason)


def _features(b: Builder, used: list[Column], width: int) -> None:
    numeric = [c.name for c in used if c.use == "numeric"]
    coded = [f"{c.name} ({c.use})" for c in used if c.use != "numeric"]
    b.note(2, f"Features ({width} after encoding): "
              + (f"{len(numeric)} numeric ({_names(numeric)})" if numeric else "")
              + ("; " if numeric and coded else "") + ", ".join(coded) + ".")
    for c in used:
        if c.use == "numeric" and c.note:
            b.note(2, f"{c.name}: {c.reason}.")


def table_spec(table: Table, target_name: str, ctx: Context) -> Builder:
    """An MLP spec for predicting ``target_name`` from the other columns of ``table``."""
    target = read_target(table, target_name)
    columns = [read_column(table, c) for c in table.columns if c != target_name]
    used = [c for c in columns if c.use != DROP]
    if not used:
        raise _no_features(table, columns)
    width = sum(c.distinct if c.use == "onehot" else 1 for c in used)
    n = len(table)
    b = Builder()
    what = f" ({', '.join(target.classes[:5])}{', ...' if len(target.classes) > 5 else ''})" \
        if target.classes else ""
    head(b, ctx.schema_ref, ctx.read, ctx.name,
         f"Predict {target.name}{what} from {len(used)} columns of {ctx.file}.")
    b.line(0, "data:")
    source_line(b, ctx.source)
    _target_line(b, target)
    _drops(b, [c for c in columns if c.use == DROP])
    _features(b, used, width)
    b.line(2, "preprocess:")
    _encodings(b, used)
    b.choose(4, "- standardize: all", "data.preprocess.standardize", "all",
             "every feature to mean 0 and std 1, fitted on the training rows")
    classify = target.task != "regression"
    split = {"test": 0.2, "validation": 0.1, "stratify": classify}
    b.choose(2, f"split: {scalar(split)}", "data.split", split,
             "20% for the final test, 10% for validation (early stopping)"
             + ("; stratified: every split keeps the class shares" if classify else ""))
    _mlp(b, width, target)
    small = n < 1000
    big = target.largest > 10  # the output must grow to the target's own units
    why_lr = "Adam adapts each weight's step; 0.001 is its usual step"
    if small or big:
        why_lr = "a larger step than Adam's usual 0.001: " + "; ".join(
            ["few rows make few steps per epoch"] * small
            + [f"dlspec does not scale a table's target, and the output has to reach "
               f"values of {target.largest:g}"] * big)
    train_section(b, target.task, lr=0.01 if small or big else 0.001,
                  batch_size=16 if small else 32,
                  epochs=100 if n <= 50_000 else 30, patience=10, why_lr=why_lr,
                  why_batch=f"{'small batches for few rows' if small else 'a common default'}"
                            f" ({n:,} rows)",
                  why_epochs="an upper bound: early stopping ends training sooner")
    return b


def _mlp(b: Builder, width: int, target: TargetInfo) -> None:
    k = len(target.classes)
    h1 = min(max(_pow2_at_most(width), 8), 128)
    h1 = max(h1, _pow2_at_most(2 * k - 1)) if k > 2 else h1
    h2 = max(h1 // 2, 4, k)
    b.line(0, "model:")
    classes = ", and at least the classes" if k > 2 else ""
    b.note(2, f"An MLP sized by its {width} input features: {h1} units (the largest power of "
              f"two up to {width}, kept within 8..128{classes}), then {h2}; dropout between "
              "them against overfitting; he_uniform suits relu.")
    b.line(2, "layers:")
    for units, extra in ((h1, "0.2"), (h2, None)):
        layer = {"units": units, "activation": "relu", "initializer": "he_uniform"}
        b.choose(4, f"- dense: {scalar(layer)}", "model.layers", {"dense": layer},
                 "hidden layer", comment="")
        if extra:
            b.choose(4, f"- dropout: {extra}", "model.layers", {"dropout": float(extra)},
                     "drops a fifth of the activations while training", comment="")
    output_layer(b, target.task, target.classes)


def sequence_spec(table: Table, target_name: str, window: int, ctx: Context) -> Builder:
    """A window spec: the previous ``window`` rows of every numeric column -> the next target."""
    target = read_target(table, target_name)
    columns = [read_column(table, c) for c in table.columns if c != target_name]
    for c in columns:
        if c.kind == "date":
            _check_time_order(table, c.name)
            c.reason = "the time axis: rows are in time order, so it is not needed as a feature"
        elif c.use not in (DROP, "numeric"):
            c.use, c.reason = DROP, f"{c.reason}; windows hold numbers only"
    used = [c for c in columns if c.use != DROP]
    windows = len(table) - window
    if windows < 10:
        raise UsageError(f"a window of {window} rows leaves {max(windows, 0)} windows in the "
                         f"{len(table):,} rows of {ctx.file} (each needs the next row as its "
                         f"target); use a window of at most {len(table) - 10}",
                         Location(f"--sequence {window}"), code="usage")
    width = window * (len(used) + 1)
    b = Builder()
    head(b, ctx.schema_ref, ctx.read, ctx.name,
         f"Forecast the next {target.name} from the previous {window} rows of {ctx.file}.")
    b.line(0, "data:")
    source_line(b, ctx.source, "; rows in time order")
    _target_line(b, target)
    _drops(b, [c for c in columns if c.use == DROP])
    seq = {"window": window, "horizon": 1}
    b.choose(2, f"sequence: {scalar(seq)}", "data.sequence", seq,
             f"{window} consecutive rows in, the next row's {target.name} out")
    b.note(2, f"Features of each time step: {_names([c.name for c in used] + [target.name])}"
              " (the target's own past included).")
    b.line(2, "preprocess:")
    b.choose(4, "- minmax: all", "data.preprocess.minmax", "all",
             "every column (the target too) onto [0, 1], fitted on the training period only; "
             "metrics come back in the target's units")
    split = {"test": 0.2, "validation": 0.1}
    b.choose(2, f"split: {scalar(split)}", "data.split", split,
             "in time order: test is the last 20% of the windows, validation the 10% before")
    units = 32 if width <= 64 else 64 if width <= 512 else 128
    b.line(0, "model:")
    b.note(2, f"A dense network on the flattened window ({window} x {len(used) + 1} = {width} "
              f"values): {units} relu units. For a recurrent network, put lstm: {{units: 32, "
              "activation: relu}} in place of flatten and the first dense layer.")
    b.line(2, "layers:")
    b.choose(4, "- flatten:", "model.layers", {"flatten": None}, "(window, features) -> one row",
             comment="")
    hidden = {"units": units, "activation": "relu"}
    b.choose(4, f"- dense: {scalar(hidden)}", "model.layers", {"dense": hidden}, "hidden layer",
             comment="")
    output_layer(b, target.task, target.classes)
    few = windows < 1000
    train_section(b, target.task, lr=0.003, batch_size=8 if few else 32,
                  epochs=200 if few else 50, patience=None,
                  why_batch=f"{windows:,} windows",
                  why_epochs="short series need many passes; no early stopping: the "
                             "validation windows are few and noisy")
    return b


def _check_time_order(table: Table, name: str) -> None:
    """Dates written year first must rise (or stay) from row to row."""
    cells = table.cells[name]
    if not (len(cells) and cells[0][:4].isdigit()):
        return  # day-first dates do not sort as text; trust the file's order
    back = [i for i in range(1, len(cells)) if cells[i] < cells[i - 1]]
    if back:
        i = back[0]
        raise DataError(f"--sequence needs rows in time order, but column {name!r} goes back "
                        f"from {cells[i - 1]!r} to {cells[i]!r}; sort the file by {name} first",
                        Location(table.source, int(table.lines[i])), code="data-order")
