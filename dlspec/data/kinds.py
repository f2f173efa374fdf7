"""Do a table's columns hold what the spec reads them as? The check training makes while
fitting the preprocessing, run by ``validate`` over the whole file before any training."""

from __future__ import annotations

from dlspec.data.preprocess import encoded_columns, non_numeric
from dlspec.data.table import read_csv
from dlspec.engine.losses import LOSSES
from dlspec.errors import DataError
from dlspec.spec.model import Spec, thaw
from dlspec.spec.semantic import feature_columns


def check_kinds(spec: Spec) -> list[DataError]:
    """Each column of a table spec whose cells it cannot read as it means to (a feature
    no encoding step names that holds text; a regression target that is not numbers),
    located at the data file's line, the message naming the spec's place to fix.

    Nothing for other data, or when the data file is absent.
    """
    d = spec.data
    if d.format != "csv" or d.sequence is not None or not d.source.is_file():
        return []
    resolved = thaw(spec.resolved)
    header = read_csv(d.source, max_rows=0).columns
    numeric = [c for c in feature_columns(resolved, header)
               if c not in encoded_columns(resolved["data"]["preprocess"])]
    regression = LOSSES[spec.train.loss].task == "regression"
    table = read_csv(d.source, columns=[*numeric, *([d.target] if regression else [])])
    fix = ("data", "preprocess") if d.preprocess else ("data",)
    out = []
    for name in numeric:
        problem = non_numeric(table, name)
        if problem:
            out.append(_pointing(problem, spec, fix))
    if regression:
        try:
            table.numeric(d.target)  # as training reads a regression target
        except DataError as problem:
            out.append(_pointing(problem, spec, ("train", "loss")))
    return out


def _pointing(problem: DataError, spec: Spec, path: tuple) -> DataError:
    where = spec.locate(path, True)
    return DataError(f"{problem.message}; fix it at {where} ({'.'.join(path)})",
                     problem.location, code=problem.code)
