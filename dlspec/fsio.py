"""Durable file writes shared by the run directory, exports and the dataset cache, and the
SHA-256 of a file (data files, weights files)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, fsync, rename.

    Raises OSError as the file system does; no temporary file is left behind.
    """
    with atomic_writer(path) as fh:
        fh.write(data)


@contextlib.contextmanager
def atomic_writer(path: Path):
    """A binary file handle whose content becomes ``path`` when the block ends: written to
    a temporary file beside it, fsynced, renamed, the folder fsynced. An exception in the
    block removes the temporary file and leaves ``path`` as it was; a kill leaves at most
    a ``.NAME.XXXX.tmp`` beside it. Raises OSError as the file system does."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks. Raises OSError."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
