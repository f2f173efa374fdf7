"""``data.format`` written as an object: a delimited text file other than CSV with a header.

The spec says ``format: {delimiter: "\\t", header: false, columns: [label, message]}``;
the canonical form (what spec.lock.yaml holds) is ``format: csv`` with the dialect,
every default filled in, under ``data.csv``. A spec that keeps the default dialect has
no ``data.csv``, so its canonical form (and its hash) is what it was before dialects.
"""

from __future__ import annotations

from dlspec.data.csvparse import CSV, Dialect
from dlspec.spec.diagnose import spec_error as _err

_DEFAULTS = CSV.to_dict()


def check_data_form(raw: dict, locate) -> list:
    """On the spec as written: each data source's dialect is one that can be read."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return []
    out = []
    for where, src in ((("data",), data), (("data", "test"), data.get("test"))):
        if not isinstance(src, dict):
            continue
        fmt, written = src.get("format", "auto"), src.get("csv")
        if isinstance(fmt, dict) and written is not None:
            out.append(_err(locate, (*where, "csv"), "the dialect is given twice: in "
                            "format: {...} and in csv: {...}; keep one", "semantic-format",
                            key=True))
            continue
        if written is not None and fmt not in ("auto", "csv"):
            out.append(_err(locate, (*where, "csv"), f"'csv' applies to delimited text files,"
                            f" not to format {fmt}", "semantic-format", key=True))
            continue
        given = fmt if isinstance(fmt, dict) else written
        if given is None:
            continue
        at = (*where, "format") if isinstance(fmt, dict) else (*where, "csv")
        merged = {**_DEFAULTS, **given}
        delim, quote = merged["delimiter"], merged["quote"]
        if not delim.isascii() or delim in "\r\n":
            out.append(_err(locate, (*at, "delimiter"), f"the delimiter must be one ASCII "
                            f"character other than a line end, got {delim!r}",
                            "semantic-format"))
        if quote is not None and (not quote.isascii() or quote in "\r\n" or quote == delim):
            out.append(_err(locate, (*at, "quote"), f"the quote must be one ASCII character "
                            f"other than a line end and the delimiter, or null (no quoting), "
                            f"got {quote!r}", "semantic-format"))
        if not merged["header"] and not merged["columns"]:
            out.append(_err(locate, (*at, "header"), "a file without a header needs its "
                            "column names: add columns: [name, ...] in file order",
                            "semantic-format"))
    return out


def normalize_source(src: dict) -> None:
    """``src`` (data, or data.test) in canonical form: an object format becomes ``csv``
    with the dialect, defaults filled, under ``csv``."""
    fmt = src.get("format", "auto")
    if isinstance(fmt, dict):
        src["format"], src["csv"] = "csv", {**_DEFAULTS, **fmt}
    elif "csv" in src:
        src["csv"] = {**_DEFAULTS, **src["csv"]}


def dialect_of(src) -> Dialect:
    """The dialect of a canonical data source (data, or data.test): CSV unless ``csv``."""
    given = src.get("csv") if src is not None else None
    return CSV if given is None else Dialect.from_dict(given)
