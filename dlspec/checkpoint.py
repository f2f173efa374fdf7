"""Checkpoint files: one uncompressed zip per checkpoint, written atomically and durably,
read back as untrusted input.

    RUN/checkpoints/ckpt-000012.zip   manifest.json + one .npy member per array
    RUN/checkpoints/latest            the name of the newest complete checkpoint

``manifest.json`` holds the format version, the dlspec version, the spec's SHA-256, the
data's fingerprint, the training state (JSON: position, history, RNG states, counters)
and, per array, its dtype, shape and SHA-256. A checkpoint is written to a temporary file
in the same folder, fsynced, renamed into place, the folder fsynced, and only then does
``latest`` move to it; so a kill at any moment leaves ``latest`` naming a complete file.

Reading trusts nothing: every member's .npy header is checked (a whitelisted dtype, a
shape whose bytes equal the stored bytes and fit in the file) before anything is
allocated, then its SHA-256; a lie, a truncation or an object array is a located
``ModelError``, never a large allocation or a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from dlspec.errors import Location, ModelError
from dlspec.fsio import atomic_writer, fsync_dir

FORMAT = 1
FOLDER = "checkpoints"
LATEST = "latest"
MANIFEST = "manifest.json"
DTYPES = {"<f4": np.float32, "<f8": np.float64, "<i8": np.int64, "|u1": np.uint8}
MAX_MANIFEST = 64 << 20
MAX_MEMBERS = 100_000
_NAME = re.compile(r"ckpt-(\d{6,})\.zip")


def folder_of(run_dir: Path) -> Path:
    return Path(run_dir) / FOLDER


def write_checkpoint(folder: Path, seq: int, meta: dict, arrays: dict[str, np.ndarray],
                     keep: int) -> Path:
    """Write checkpoint number ``seq`` (``meta``: JSON-able; ``arrays`` by name), point
    ``latest`` at it, and remove all but the newest ``keep``. Raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt-{seq:06d}.zip"
    listed = {}
    with atomic_writer(path) as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            arr = arr if arr.flags.c_contiguous else arr.copy()  # (0-d stays 0-d)
            listed[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape),
                            "sha256": hashlib.sha256(arr.data).hexdigest()}
            with zf.open(f"{name}.npy", "w", force_zip64=arr.nbytes > (1 << 30)) as out:
                np.lib.format.write_array(out, arr, allow_pickle=False)
        manifest = {**meta, "format": FORMAT, "arrays": listed}
        zf.writestr(MANIFEST, json.dumps(manifest, allow_nan=True, default=float))
    with atomic_writer(folder / LATEST) as fh:
        fh.write(path.name.encode())
    _prune(folder, keep, path.name)
    return path


def _prune(folder: Path, keep: int, newest: str) -> None:
    found = sorted((p for p in folder.iterdir() if _NAME.fullmatch(p.name)),
                   key=lambda p: int(_NAME.fullmatch(p.name).group(1)))
    for p in found[:-keep] if keep > 0 else found:
        if p.name != newest:
            p.unlink(missing_ok=True)
    fsync_dir(folder)


def remove_temporaries(folder: Path) -> None:
    """Delete what a killed writer left (``.NAME.XXXX.tmp``) and checkpoints newer than
    ``latest`` (complete, but never pointed at: the run resumes from ``latest``)."""
    if not folder.is_dir():
        return
    newest = latest_name(folder)
    limit = int(_NAME.fullmatch(newest).group(1)) if newest else -1
    for p in folder.iterdir():
        m = _NAME.fullmatch(p.name)
        if (p.name.startswith(".") and p.name.endswith(".tmp")) or (m and int(m.group(1))
                                                                    > limit):
            p.unlink(missing_ok=True)


def latest_name(folder: Path) -> str | None:
    try:
        name = (folder / LATEST).read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return name if _NAME.fullmatch(name) else None


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None when it has none."""
    folder = folder_of(run_dir)
    name = latest_name(folder)
    return folder / name if name else None


def read_manifest(path: Path) -> dict:
    """The manifest of a checkpoint alone (for listings), checked as ``read_checkpoint``
    checks it. Raises ModelError."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _manifest(zf, path)
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as e:
        raise _damaged(path, e) from None


def read_checkpoint(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays) of a checkpoint file, every header and hash checked.

    Raises:
        ModelError: a damaged or forged file, naming it and what is wrong.
    """
    try:
        limit = os.path.getsize(path)
        with zipfile.ZipFile(path) as zf:
            manifest = _manifest(zf, path)
            listed = manifest["arrays"]
            members = {n.removesuffix(".npy") for n in zf.namelist() if n != MANIFEST}
            if members != set(listed):
                raise ValueError(f"its arrays {_few(members)} differ from the manifest's "
                                 f"{_few(listed)}")
            arrays = {name: _read_array(zf, name, info, limit) for name, info in
                      listed.items()}
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, KeyError, TypeError) as e:
        raise _damaged(path, e) from None
    return manifest, arrays


def _few(names) -> str:
    names = sorted(names)
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _damaged(path: Path, e: Exception) -> ModelError:
    what = str(e) or type(e).__name__
    return ModelError(f"damaged checkpoint: {what}", Location(str(path)), code="checkpoint")


def _manifest(zf: zipfile.ZipFile, path: Path) -> dict:
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ValueError(f"{len(infos)} members (at most {MAX_MEMBERS})")
    try:
        info = zf.getinfo(MANIFEST)
    except KeyError:
        raise ValueError(f"no {MANIFEST}") from None
    if info.file_size > MAX_MANIFEST:
        raise ValueError(f"{MANIFEST} is {info.file_size} bytes")
    with zf.open(info) as fh:
        try:
            manifest = json.loads(fh.read(MAX_MANIFEST + 1))
        except ValueError as e:
            raise ValueError(f"{MANIFEST} is not JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"not a dlspec checkpoint of format {FORMAT}")
    if not isinstance(manifest.get("arrays"), dict):
        raise ValueError("its manifest lists no arrays")
    return manifest


def _read_array(zf: zipfile.ZipFile, name: str, info: dict, limit: int) -> np.ndarray:
    member = zf.getinfo(f"{name}.npy")
    with zf.open(member) as fh:
        version = np.lib.format.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"{name}: .npy version {version} is not supported")
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(fh)
        if dtype.str not in DTYPES or dtype.hasobject or fortran:
            raise ValueError(f"{name}: dtype {dtype} is not allowed (only "
                             f"{', '.join(DTYPES)}, C order)")
        if dtype.str != info["dtype"] or list(shape) != info["shape"]:
            raise ValueError(f"{name}: its header ({dtype.str} {list(shape)}) does not match "
                             f"the manifest ({info['dtype']} {info['shape']})")
        size = dtype.itemsize
        for d in shape:
            size *= d
        if size != member.file_size - fh.tell() or size > limit:
            raise ValueError(f"{name}: its shape {list(shape)} needs {size} bytes, "
                             f"{member.file_size - fh.tell()} are stored")
        data = fh.read(size)
    if len(data) != size:
        raise ValueError(f"{name}: truncated ({len(data)} of {size} bytes)")
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise ValueError(f"{name}: SHA-256 differs from the manifest")
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
