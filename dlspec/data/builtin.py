"""Built-in datasets: a registry of published files, found locally or downloaded.

A file is looked for as DIR/<dataset>/<file name> in each of ``data_dirs()``
and used only when its size and SHA-256 match the published ones; otherwise it
is downloaded into the cache (verified before it is moved into place).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlspec.data.images import ImageSet, load_idx_pair
from dlspec.errors import DataError, Location
from dlspec.fsio import atomic_write, fsync_dir
from dlspec.version import __version__

ROLES = ("train_images", "train_labels", "test_images", "test_labels")
TIMEOUT_S = 30.0
_CHUNK = 1 << 16


class _Refused(Exception):
    """A download that arrived but is not the published file."""


@dataclass(frozen=True)
class RemoteFile:
    """A published file: its name, SHA-256, size in bytes and where to get it (in order)."""

    name: str
    sha256: str
    size: int
    urls: tuple[str, ...]


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset of IDX files; ``files`` maps each of ``ROLES`` to its RemoteFile."""

    name: str
    description: str
    files: dict[str, RemoteFile]
    shape: tuple[int, int, int]     # one image: height, width, channels

    def load(self, split: str, *, download: bool = True,
             progress: Callable[[int, int], None] | None = None) -> ImageSet:
        """The 'train' or 'test' split as an ImageSet (fetching the files if needed)."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        images, labels = (fetch(self, f"{split}_{kind}", download=download, progress=progress)
                          for kind in ("images", "labels"))
        return load_idx_pair(images, labels)


_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/",
                  "http://yann.lecun.com/exdb/mnist/")


def _mnist(role: str, name: str, sha256: str, size: int) -> tuple[str, RemoteFile]:
    return role, RemoteFile(name, sha256, size, tuple(m + name for m in _MNIST_MIRRORS))


DATASETS: dict[str, BuiltinDataset] = {
    "mnist": BuiltinDataset("mnist", "MNIST handwritten digits: 28x28 grayscale, 10 classes, "
                            "60,000 train and 10,000 test images", dict([
        _mnist("train_images", "train-images-idx3-ubyte.gz",
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        _mnist("train_labels", "train-labels-idx1-ubyte.gz",
               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        _mnist("test_images", "t10k-images-idx3-ubyte.gz",
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        _mnist("test_labels", "t10k-labels-idx1-ubyte.gz",
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ]), (28, 28, 1)),
}


def cache_dir() -> Path:
    """$DLSPEC_CACHE, else $XDG_CACHE_HOME/dlspec, else ~/.cache/dlspec."""
    if os.environ.get("DLSPEC_CACHE"):
        return Path(os.environ["DLSPEC_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dlspec"


def data_dirs() -> list[Path]:
    """Where datasets are looked for: $DLSPEC_DATA (os.pathsep-separated), then the cache."""
    extra = [Path(d) for d in os.environ.get("DLSPEC_DATA", "").split(os.pathsep) if d]
    return [*extra, cache_dir()]


def fetch(dataset: str | BuiltinDataset, role: str, *, download: bool = True,
          progress: Callable[[int, int], None] | None = None,
          timeout: float = TIMEOUT_S) -> Path:
    """The verified local path of one of a dataset's files, downloading it if needed.

    Args:
        dataset: a name in DATASETS, or a BuiltinDataset.
        role: one of ROLES.
        progress: called as ``progress(bytes_done, total)`` while downloading.
    """
    ds = DATASETS.get(dataset) if isinstance(dataset, str) else dataset
    if ds is None:
        raise DataError(f"unknown built-in dataset {dataset!r} (known: {sorted(DATASETS)})",
                        code="data-builtin")
    if role not in ds.files:
        raise ValueError(f"{ds.name} has no file {role!r} (roles: {sorted(ds.files)})")
    file = ds.files[role]
    found = _local(ds, file, download)
    if found is not None:
        return found
    if not download:
        raise _missing(ds, file, "and downloading is off")
    return _download(ds, file, cache_dir() / ds.name / file.name, progress, timeout)


def missing_files(dataset: str) -> list[str]:
    """The names of a dataset's files that ``fetch`` would have to download (none: every
    file is here, verified, in $DLSPEC_DATA or the cache).

    Raises:
        DataError: a copy in $DLSPEC_DATA that is not the published file.
    """
    ds = DATASETS[dataset]
    return [f.name for f in ds.files.values() if _local(ds, f, download=True) is None]


def _local(ds: BuiltinDataset, file: RemoteFile, download: bool) -> Path | None:
    """The verified copy of ``file`` in ``data_dirs()``, or None."""
    cache = cache_dir() / ds.name / file.name
    for folder in data_dirs():
        path = folder / ds.name / file.name
        if not path.is_file():
            continue
        problem = _verify(path, file)
        if problem is None:
            return path
        if path != cache or not download:  # a bad copy is never used, nor a user's replaced
            raise DataError(f"{problem}; this is not the published {file.name} (replace or "
                            "remove it)", Location(str(path)), code="data-hash")
    return None


def _verify(path: Path, file: RemoteFile) -> str | None:
    """None when ``path`` holds ``file``, else what is wrong with it."""
    st = path.stat()
    if st.st_size != file.size:
        return f"size {st.st_size:,} bytes, expected {file.size:,}"
    try:
        if _sidecar(path).read_text() == _stamp(file, path):
            return None
    except OSError:
        pass
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK * 16):
                digest.update(chunk)
    except OSError as e:
        raise DataError(f"cannot read data file: {e.strerror or e}", Location(str(path)),
                        code="data-file") from None
    if digest.hexdigest() != file.sha256:
        return f"sha256 {digest.hexdigest()}, expected {file.sha256}"
    _record(path, file)
    return None


def _stamp(file: RemoteFile, path: Path) -> str:
    st = path.stat()
    return f"{file.sha256} {st.st_size} {st.st_mtime_ns}\n"


def _record(path: Path, file: RemoteFile) -> None:
    """Remember that ``path`` was verified (only a cache: failing to write changes nothing)."""
    with contextlib.suppress(OSError):
        _sidecar(path).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(_sidecar(path), _stamp(file, path).encode())


def _sidecar(path: Path) -> Path:
    """Where the check of ``path`` is recorded: beside a cached file, else in cache/verified/.

    Folders in $DLSPEC_DATA may be shared or read-only, so dlspec writes nothing there.
    """
    cache = cache_dir()
    if path.parent.parent == cache:
        return path.with_name(path.name + ".sha256")
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return cache / "verified" / f"{path.name}.{key}.sha256"


def _download(ds: BuiltinDataset, file: RemoteFile, target: Path,
              progress: Callable[[int, int], None] | None, timeout: float) -> Path:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the cache folder: {e.strerror or e}",
                        Location(str(target.parent)), code="data-download") from None
    reasons = []
    for url in file.urls:
        try:
            _download_one(url, file, target, progress, timeout)
            return target
        except (OSError, http.client.HTTPException, ValueError, _Refused) as e:
            reasons.append(f"{url}: {_reason(e)}")
    raise _missing(ds, file, "and every download failed:\n  " + "\n  ".join(reasons))


def _download_one(url: str, file: RemoteFile, target: Path,
                  progress: Callable[[int, int], None] | None, timeout: float) -> None:
    """Stream ``url`` into a temp file beside ``target``; verify, fsync, rename."""
    request = urllib.request.Request(url, headers={"User-Agent": f"dlspec/{__version__}"})
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as r:
            length = r.headers.get("Content-Length")
            if length and length.isdigit() and int(length) != file.size:
                raise _Refused(f"the server sends {int(length):,} bytes, expected {file.size:,}")
            digest, done = hashlib.sha256(), 0
            while chunk := r.read(min(_CHUNK, file.size + 1 - done)):
                done += len(chunk)
                if done > file.size:
                    raise _Refused(f"more than the expected {file.size:,} bytes")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(done, file.size)
            if done != file.size:
                raise _Refused(f"got {done:,} bytes, expected {file.size:,}")
            if digest.hexdigest() != file.sha256:
                raise _Refused(f"sha256 {digest.hexdigest()}, expected {file.sha256}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    _record(target, file)


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _missing(ds: BuiltinDataset, file: RemoteFile, why: str) -> DataError:
    where = ", ".join(str(d / ds.name) for d in data_dirs())
    names = ", ".join(f.name for f in ds.files.values())
    return DataError(
        f"{ds.name}: {file.name} is not in {where} {why}\nTo place the files yourself, "
        f"set DLSPEC_DATA=DIR and put them in DIR/{ds.name}/ ({names})",
        Location(str(cache_dir() / ds.name / file.name)), code="data-download")
