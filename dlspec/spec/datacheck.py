"""The spec against its data on this machine, before any training: is the data here (found
the one way training finds it), and do a table's columns hold what the spec reads them as."""

from __future__ import annotations

from pathlib import Path

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
    if d is None or d.format != "csv" or d.sequence is not None or not d.source.is_file():
        return []
    resolved = thaw(spec.resolved)
    header = read_csv(d.source, max_rows=0).columns
    numeric = [c for c in feature_columns(resolved, header)
               if c not in encoded_columns(resolved["data"]["preprocess"])]
    regression = LOSSES[spec.train.target_loss].task == "regression"
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


def missing_data(spec: Spec) -> list[str]:
    """What of the spec's data (and model.init_from's run) is not here, one phrase each
    (empty: all of it is).

    Files are looked for where training reads them (paths resolved as the spec and
    --set say); a built-in dataset in $DLSPEC_DATA, then the cache, each file verified
    as training verifies it, and nothing downloaded.

    Raises:
        DataError: a copy of a built-in dataset's file that is not the published one.
    """
    from dlspec.data.builtin import missing_files

    out = []
    init = spec.model.init_from
    if init is not None and not init.run.exists():
        out.append(f"init_from's run {init.run} does not exist yet; train needs it")
    d = spec.data
    if d is None:
        return out
    test = spec.resolved["data"].get("test")
    sources = [(d.format, d.source, d.source_text, d.labels)]
    if d.test is not None:
        sources.append((d.test["format"], d.test["source"], test["source"], d.test["labels"]))
    for fmt, path, text, labels in sources:
        if fmt == "builtin":
            if missing_files(str(path)):
                out.append(f"{text} is not yet in $DLSPEC_DATA or the cache; train "
                           "downloads it")
            continue
        here = Path(path).is_dir() if fmt == "image_folder" else Path(path).is_file()
        if not here:
            out.append(f"data {'folder' if fmt == 'image_folder' else 'file'} {text} not "
                       "found, data checks skipped")
        if labels is not None and not Path(labels).is_file():
            out.append(f"labels file {labels} not found")
    return out
