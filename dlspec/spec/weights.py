"""Weights written in a spec: small arrays inline, larger ones in an .npz with its SHA-256.

    h:   {dense: {units: 2, activation: relu}, from: x,
          weights: {kernel: [[1, -1], [1, 1]], bias: [0, 0]}}
    big: {dense: 512, weights: {file: weights/big.npz, sha256: 3f2a...}}

Inline arrays hold at most ``MAX_INLINE`` values per node, so a spec stays a text a
person reads; a file is read only after its SHA-256 matches, each array's header is
checked before anything is allocated, and nothing is unpickled. Shapes are checked
against the layer's when the graph is lowered.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from dlspec.errors import DataError
from dlspec.fsio import file_sha256
from dlspec.spec.diagnose import spec_error as _err

MAX_INLINE = 4096
MAX_FILE_BYTES = 1 << 30


def _described(shape: tuple) -> str:
    if shape == ():
        return "a number"
    if len(shape) == 1:
        return f"{shape[0]} value{'s' if shape[0] != 1 else ''}"
    return "x".join(map(str, shape))


def _rectangular(value, path: tuple) -> tuple[list, tuple | None]:
    """(problems, shape) of a nested list of numbers (problems as (path, message))."""
    if not isinstance(value, list):
        return [], ()
    if not value:
        return [(path, "an empty array; give its values")], None
    shapes = []
    for i, item in enumerate(value):
        problems, shape = _rectangular(item, (*path, i))
        if problems:
            return problems, None
        shapes.append(shape)
    first = shapes[0]
    for i, shape in enumerate(shapes[1:], 1):
        if shape != first:
            what, want = _described(shape), _described(first)
            return [((*path, i), f"not a rectangular array: item {i} is {what}, item 0 "
                     f"{want}")], None
    return [], (len(value), *first)


def node_weights(node: dict, where: tuple, base: Path, locate) -> tuple[dict, list]:
    """The arrays a canonical node gives (float32, by parameter name) and the problems."""
    given = node.get("weights")
    if not given:
        return {}, []
    path = (*where, "weights")
    if "file" in given:
        return _from_file(given, path, base, locate)
    out, errors, total = {}, [], 0
    for name, value in given.items():
        problems, shape = _rectangular(value, (*path, name))
        if problems:
            errors += [_err(locate, p, m, "semantic-weights") for p, m in problems]
            continue
        array = np.asarray(value, dtype=np.float64)
        if not np.isfinite(array).all():
            errors.append(_err(locate, (*path, name), "holds NaN or an infinite value",
                               "semantic-weights"))
            continue
        if array.size and np.abs(array).max() > np.finfo(np.float32).max:
            errors.append(_err(locate, (*path, name), "holds a value too large for float32 "
                               f"(|x| > {np.finfo(np.float32).max:.3g})", "semantic-weights"))
            continue
        out[name] = array.astype(np.float32).reshape(shape)
        total += array.size
    if total > MAX_INLINE:
        errors.append(_err(locate, path, f"{total:,} values written inline (at most "
                           f"{MAX_INLINE:,}); save them in an .npz and give weights: {{file: "
                           "PATH, sha256: ...}", "semantic-weights", key=True))
    return out, errors


def _from_file(given: dict, path: tuple, base: Path, locate) -> tuple[dict, list]:
    from dlspec.data.images import _npz_arrays

    def problem(message: str, at: str = "file") -> tuple[dict, list]:
        return {}, [_err(locate, (*path, at), message, "semantic-weights")]

    file = (base / given["file"]).resolve()
    if not file.is_file():
        return problem(f"weights file not found: {file}")
    digest = file_sha256(file)
    if digest != given["sha256"]:
        return problem(f"{given['file']} has SHA-256 {digest}, the spec expects "
                       f"{given['sha256']}", "sha256")
    try:
        if not zipfile.is_zipfile(file):
            return problem(f"{given['file']} is not an .npz archive (np.savez writes one)")
        with zipfile.ZipFile(file) as z:
            names = tuple(n.removesuffix(".npy") for n in z.namelist())
        arrays = _npz_arrays(str(file), names, MAX_FILE_BYTES)
    except DataError as e:
        return problem(e.message)
    out = {}
    for name, array in zip(names, arrays, strict=True):
        if array.dtype.kind not in "iuf" or not np.isfinite(array).all():
            return problem(f"{given['file']}: '{name}' must hold finite numbers, got "
                           f"{array.dtype.name}")
        out[name] = array.astype(np.float32)
    return out, []

