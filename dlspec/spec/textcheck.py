"""Semantic checks of a text spec (data.text) that need no data: the text column is the
model's one input, read by an embedding; the export opset has StringSplit."""

from __future__ import annotations

from dlspec.opsets import TEXT_OPSET
from dlspec.spec.diagnose import spec_error as err


def check_text(spec: dict, locate) -> list:
    d = spec["data"]
    if d is None or not d.get("text"):
        return []
    (column,) = d["text"]
    out = []
    for key, what in (("sequence", "windows of a time series"), ("features", "other features"),
                      ("preprocess", "table preprocessing")):
        if d.get(key):
            out.append(err(locate, ("data", key), f"a text spec reads only its text column "
                           f"'{column}'; remove data.{key} ({what} cannot be combined with "
                           "data.text yet)", "semantic-text", key=True))
    if column == d.get("target"):
        out.append(err(locate, ("data", "text", column), f"the target '{column}' cannot also "
                       "be the text column", "semantic-text", key=True))
    if d.get("format") != "csv":
        out.append(err(locate, ("data", "source"), f"data.text reads a delimited text file "
                       f"(CSV or data.format: {{delimiter: ...}}), got {d.get('format')}",
                       "semantic-text"))
    opset = spec["export"]["opset"]
    if opset < TEXT_OPSET:
        out.append(err(locate, ("export", "opset"), f"text features are exported with "
                       f"StringSplit, which needs opset {TEXT_OPSET} or newer, got {opset}",
                       "semantic-text"))
    return out
