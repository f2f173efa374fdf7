"""The spec's file paths, and what each is relative to.

A path written in a spec file is relative to that file's folder; a path typed on the
command line (``--set data.source=PATH``) is relative to the current directory, as
with every other tool. ``PATH_KEYS`` lists the keys that hold paths: a new one is
added there, and --set, the lock file and the spec's hash all follow.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator
from pathlib import Path

SOURCE = ("data", "source")
PATH_KEYS: tuple[tuple[str, ...], ...] = (
    SOURCE,
    ("data", "labels"),
    ("data", "test", "source"),
    ("data", "test", "labels"),
)
# keys whose value may name a built-in dataset instead of a path (see data/sources.py)
_NAMES_BUILTIN = {SOURCE: ("data", "format"),
                  ("data", "test", "source"): ("data", "test", "format")}


def _get(data: dict, key: tuple):
    for k in key:
        if not isinstance(data, dict) or k not in data:
            return None
        data = data[k]
    return data


def _set(data: dict, key: tuple, value) -> None:
    for k in key[:-1]:
        data = data[k]
    data[key[-1]] = value


def present(data: dict) -> Iterator[tuple[tuple, str]]:
    """Each path key ``data`` holds a string under, with that string."""
    for key in PATH_KEYS:
        value = _get(data, key)
        if isinstance(value, str):
            yield key, value


def is_builtin_name(data: dict, key: tuple, base: Path) -> bool:
    """Whether the value at ``key`` names a built-in dataset rather than a file under
    ``base`` (the rule of ``data.sources.infer_format``)."""
    if key not in _NAMES_BUILTIN:
        return False
    from dlspec.data.builtin import DATASETS

    declared = _get(data, _NAMES_BUILTIN[key]) or "auto"
    value = _get(data, key)
    return declared == "builtin" or declared == "auto" and value in DATASETS and \
        not (base / value).exists()


def anchor_command_line(data: dict, overridden: Container[tuple], cwd: Path) -> dict[tuple, str]:
    """Make every relative path set on the command line absolute against ``cwd``.

    A key counts as set on the command line when it, or a mapping above it, is in
    ``overridden``. Returns each rewritten key's text as typed (for messages).
    """
    typed = {}
    for key, value in present(data):
        if not any(key[:n] in overridden for n in range(1, len(key) + 1)):
            continue
        if os.path.isabs(value) or is_builtin_name(data, key, cwd):
            continue
        _set(data, key, str((cwd / value).resolve()))
        typed[key] = value
    return typed


def relative_to(data: dict, folder: Path, base: Path) -> None:
    """Rewrite each path of the spec ``data`` (relative to ``base``, or absolute) relative
    to ``folder``: a lock file's paths, so that a checkout copied or cloned elsewhere,
    lock included, still finds its data. Built-in dataset names stay names; a path with
    no relative form (another drive) stays absolute."""
    for key, value in list(present(data)):
        if is_builtin_name(data, key, base):
            continue
        target = (base / value).resolve()
        try:
            _set(data, key, Path(os.path.relpath(target, folder.resolve())).as_posix())
        except ValueError:
            _set(data, key, str(target))


def without_paths(spec: dict) -> dict:
    """A copy of the spec (top level and ``data`` copied) without its paths: where the data
    lives is no part of what the spec means (the data is identified by its SHA-256)."""
    out = dict(spec)
    if not isinstance(spec.get("data"), dict):
        return out
    out["data"] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in spec["data"].items()}
    for key in PATH_KEYS:
        parent = _get(out, key[:-1])
        if isinstance(parent, dict):
            parent.pop(key[-1], None)
    return out
