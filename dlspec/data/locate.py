"""Is a spec's data on this machine? Answered the one way training finds it."""

from __future__ import annotations

from pathlib import Path

from dlspec.spec.model import Spec


def missing_data(spec: Spec) -> list[str]:
    """What of the spec's data is not here, one phrase each (empty: all of it is).

    Files are looked for where training reads them (paths resolved as the spec and
    --set say); a built-in dataset in $DLSPEC_DATA, then the cache, each file verified
    as training verifies it, and nothing downloaded.

    Raises:
        DataError: a copy of a built-in dataset's file that is not the published one.
    """
    from dlspec.data.builtin import missing_files

    d = spec.data
    test = spec.resolved["data"].get("test")
    sources = [(d.format, d.source, d.source_text, d.labels)]
    if d.test is not None:
        sources.append((d.test["format"], d.test["source"], test["source"], d.test["labels"]))
    out = []
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
