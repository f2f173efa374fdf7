"""Image data: IDX files (MNIST's own format), NPZ archives and folders of images.

Every reader checks sizes before it allocates (a file's header never decides
how much memory is taken) and reports problems as located ``DataError``s.
Pillow is optional: only folders of image files need it.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlspec.errors import DataError, Location

MAX_BYTES = 4 << 30  # default limit on the pixels (or values) one file may hold
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CHUNK = 1 << 20


@dataclass
class ImageSet:
    """Labelled images: ``x`` uint8 (N, H, W, C), ``y`` int64 indices into ``classes``."""

    x: np.ndarray
    y: np.ndarray
    classes: list
    source: str

    def __len__(self) -> int:
        return len(self.y)


def _error(source: str, message: str, code: str = "data-idx") -> DataError:
    return DataError(message, Location(source), code=code)


def read_idx(path: str | os.PathLike, *, limit: int = MAX_BYTES) -> np.ndarray:
    """Read an IDX file, gzipped (detected by its magic bytes) or not.

    The header is checked against the data's actual length before the array is
    allocated; a gzip stream is never decompressed past the size the header
    implies. Returns a native-endian array of the header's dtype and shape.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if f.read(2) != b"\x1f\x8b":
                f.seek(0)
                return _read_idx_stream(f, source, size, limit, None)
            f.seek(max(size - 4, 0))
            isize = int.from_bytes(f.read(4), "little")  # uncompressed size mod 2**32
            f.seek(0)
            return _read_idx_stream(gzip.GzipFile(fileobj=f), source, size, limit, isize)
    except DataError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise _error(source, f"corrupt gzip stream: {e}") from None
    except OSError as e:
        raise _error(source, f"cannot read data file: {e.strerror or e}", "data-file") from None


def _read_idx_stream(f, source: str, size: int, limit: int, isize: int | None) -> np.ndarray:
    dtype, dims, head = _idx_header(f, source, limit)
    nbytes = math.prod(dims) * dtype.itemsize
    claim = f"the header says {'x'.join(map(str, dims))} {dtype.name} ({nbytes:,} bytes of data)"
    if isize is None:
        if size - head != nbytes:
            raise _error(source, f"{claim} but the file holds {size - head:,}")
    elif isize != (head + nbytes) % 2**32:
        # The trailer disagrees (or the file has several gzip members): count
        # the decompressed bytes, never more than one past the expected end.
        got = head + _drain(f, nbytes + 1)
        if got != head + nbytes:
            more = "more than " if got > head + nbytes else ""
            raise _error(source, f"{claim} but the gzip stream decompresses to {more}"
                                 f"{got - head:,} bytes of data")
        f.seek(0)  # a GzipFile rewinds by starting over
        f.read(head)
    buf = np.empty(nbytes, dtype=np.uint8)
    view, done = memoryview(buf), 0
    while done < nbytes:
        n = f.readinto(view[done:done + _CHUNK * 16])
        if not n:
            raise _error(source, f"{claim} but the data ends after {done:,} bytes")
        done += n
    if isize is not None and f.read(1):
        raise _error(source, f"{claim} but the gzip stream holds more data")
    arr = buf.view(dtype).reshape(dims)
    return arr if dtype.isnative or dtype.itemsize == 1 else arr.astype(dtype.newbyteorder("="))


def _idx_header(f, source: str, limit: int) -> tuple[np.dtype, tuple[int, ...], int]:
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_TYPES or \
            not 1 <= magic[3] <= 8:
        raise _error(source, f"not an IDX file (magic bytes {magic.hex() or 'missing'}; "
                             "expected 0000 + a type code 08-0e + 1-8 dimensions, e.g. 00000803)")
    ndim = magic[3]
    raw = f.read(4 * ndim)
    if len(raw) < 4 * ndim:
        raise _error(source, f"IDX header truncated: {ndim} dimensions announced")
    dims = struct.unpack(f">{ndim}I", raw)
    if max(dims) > 2**31:
        raise _error(source, f"IDX dimension {max(dims):,} is larger than 2**31")
    dtype = np.dtype(_IDX_TYPES[magic[2]])
    nbytes = math.prod(dims) * dtype.itemsize
    if nbytes > limit:
        raise _error(source, f"the header says {'x'.join(map(str, dims))} {dtype.name} "
                             f"({nbytes:,} bytes), over the limit of {limit:,} bytes")
    return dtype, dims, 4 + 4 * ndim


def _drain(f, cap: int) -> int:
    """Bytes left in ``f``, reading no more than ``cap``."""
    total = 0
    while total < cap and (chunk := f.read(min(_CHUNK, cap - total))):
        total += len(chunk)
    return total


def load_idx_pair(images_path: str | os.PathLike, labels_path: str | os.PathLike,
                  *, limit: int = MAX_BYTES) -> ImageSet:
    """An images IDX file (N, H, W) uint8 and its labels IDX file (N,) as an ImageSet."""
    images, labels = os.fspath(images_path), os.fspath(labels_path)
    x = _as_nhwc(read_idx(images, limit=limit), images, "data-idx")
    y = read_idx(labels, limit=limit)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise _error(labels, f"labels must be one integer per image, got shape {y.shape} "
                             f"{y.dtype.name}")
    if len(y) != len(x):
        raise _error(labels, f"{len(y):,} labels for {len(x):,} images in {images}")
    return _labelled(x, y, images)


def _as_nhwc(x: np.ndarray, source: str, code: str) -> np.ndarray:
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.dtype != np.uint8 or 0 in x.shape:
        raise _error(source, f"expected uint8 images (N, H, W) or (N, H, W, C), got shape "
                             f"{x.shape} {x.dtype.name}", code)
    return np.ascontiguousarray(x)


def _labelled(x: np.ndarray, labels: np.ndarray, source: str) -> ImageSet:
    classes, y = np.unique(labels, return_inverse=True)
    return ImageSet(x, y.reshape(-1).astype(np.int64), classes.tolist(), source)


def load_npz(path: str | os.PathLike, x_key: str = "x", y_key: str = "y",
             *, limit: int = MAX_BYTES) -> ImageSet:
    """Images (uint8) and labels (integers or strings) from an .npz archive."""
    source = os.fspath(path)
    x, y = _npz_arrays(source, (x_key, y_key), limit)
    x = _as_nhwc(x, source, "data-npz")
    if y.ndim != 1 or y.dtype.kind not in "iuU":
        raise _error(source, f"{y_key!r} must be one integer or string label per image, "
                             f"got shape {y.shape} {y.dtype.name}", "data-npz")
    if len(y) != len(x):
        raise _error(source, f"{len(y):,} labels in {y_key!r} for {len(x):,} images "
                             f"in {x_key!r}", "data-npz")
    return _labelled(x, y, source)


def image_shape(path: str | os.PathLike, fmt: str) -> tuple[int, ...] | None:
    """One image's (height, width, channels) as the header of an .npz's ``x`` or of an IDX
    file says, reading no pixels; None when the header does not tell (training reads the
    file, and reports what is wrong with it)."""
    source = os.fspath(path)
    try:
        if fmt == "npz":
            with zipfile.ZipFile(source) as z, z.open("x.npy") as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                    else np.lib.format.read_array_header_2_0
                shape = read(f)[0]
        elif fmt == "idx":
            with open(source, "rb") as raw:
                gz = raw.read(2) == b"\x1f\x8b"
                raw.seek(0)
                shape = _idx_header(gzip.GzipFile(fileobj=raw) if gz else raw, source,
                                    MAX_BYTES)[1]
        else:
            return None
    except (DataError, OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile,
            zlib.error):
        return None
    shape = tuple(shape)
    if len(shape) == 3:
        shape = (*shape, 1)
    return shape[1:] if len(shape) == 4 and 0 not in shape else None


def _npz_arrays(source: str, keys: tuple[str, ...], limit: int) -> list[np.ndarray]:
    """The arrays ``keys`` of an .npz, each header checked before it is read."""
    def err(message: str) -> DataError:
        return _error(source, message, "data-npz")
    try:
        if not zipfile.is_zipfile(source):
            raise err("not an .npz archive (np.savez writes one)")
        with np.load(source, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise err(f"no array {missing[0]!r} (the archive has {sorted(z.files)})")
            out = []
            for key in keys:
                info = z.zip.getinfo(key + ".npy")
                with z.zip.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                        else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                    stored = info.file_size - f.tell()
                if dtype.hasobject:
                    raise err(f"{key!r} is an object array, which only pickle can read, and "
                              "dlspec never unpickles; save numbers or strings instead")
                nbytes = math.prod(shape) * dtype.itemsize
                if nbytes != stored or nbytes > limit:
                    raise err(f"{key!r}: the header says {shape} {dtype.name} ({nbytes:,} "
                              f"bytes) but {stored:,} are stored (limit {limit:,})")
                out.append(z[key])
            return out
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise err(f"cannot read .npz archive: {e}") from None


def load_image_folder(root: str | os.PathLike, *, limit: int = MAX_BYTES) -> ImageSet:
    """Images in ``root/<class>/*.png`` (or .jpg, .jpeg, .bmp, .gif); needs Pillow.

    Classes are the sorted folder names; images are read in sorted order and
    must all have the same size and mode. Grayscale stays one channel, other
    modes become RGB; an alpha channel is dropped when fully opaque, refused
    otherwise.
    """
    source = os.fspath(root)
    if not os.path.isdir(source):
        raise _error(source, "not a folder (expected ROOT/<class>/<image>.png)", "data-images")
    folders = sorted(p for p in Path(source).iterdir() if p.is_dir() and
                     not p.name.startswith("."))
    if not folders:
        raise _error(source, "no class folders: expected ROOT/<class>/<image>.png",
                     "data-images")
    files, labels = [], []
    for label, folder in enumerate(folders):
        found = sorted(p for p in folder.iterdir() if _is_image(p))
        if not found:
            raise _error(str(folder), f"no images ({', '.join(IMAGE_SUFFIXES)}) in this class "
                                      "folder", "data-images")
        files += found
        labels += [label] * len(found)
    x = _read_images(files, source, limit)
    return ImageSet(x, np.array(labels, dtype=np.int64), [p.name for p in folders], source)


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()


def _read_images(files: list[Path], source: str, limit: int) -> np.ndarray:
    """Stack image files into uint8 (N, H, W, C); all must match the first."""
    try:
        from PIL import Image
    except ImportError:
        raise _error(source, "reading a folder of images needs Pillow: pip install pillow",
                     "data-images") from None
    first = _read_image(Image, files[0])
    if len(files) * first.nbytes > limit:
        raise _error(source, f"{len(files):,} images of {first.shape} need "
                             f"{len(files) * first.nbytes:,} bytes, over the limit of "
                             f"{limit:,}", "data-images")
    x = np.empty((len(files), *first.shape), dtype=np.uint8)
    x[0] = first
    for i, path in enumerate(files[1:], 1):
        image = _read_image(Image, path)
        if image.shape != first.shape:
            raise _error(str(path), f"image is {_describe(image)} but {files[0]} is "
                                    f"{_describe(first)}; all images must have the same size "
                                    "and mode", "data-images")
        x[i] = image
    return x


def _read_image(Image, path: Path) -> np.ndarray:
    """One image as uint8 (H, W, 1) or (H, W, 3)."""
    def err(message: str) -> DataError:
        return _error(str(path), message, "data-images")
    try:
        with Image.open(path) as im:
            if im.mode == "P":  # a palette of grays (as in GIFs of grayscale) stays gray
                pal = np.asarray(im.getpalette() or [0, 0, 0], dtype=np.uint8).reshape(-1, 3)
                mode = "L" if (pal == pal[:, :1]).all() else "RGB"
                im = im.convert(mode + "A" if "transparency" in im.info else mode)
            elif im.mode == "1":
                im = im.convert("L")
            if im.mode not in ("L", "LA", "RGB", "RGBA"):
                raise err(f"image mode {im.mode!r} is not supported; save it as 8-bit "
                          "grayscale or RGB")
            a = np.asarray(im, dtype=np.uint8)
            alpha = im.mode.endswith("A")
    except DataError:
        raise
    except Exception as e:  # Pillow raises many kinds (OSError, SyntaxError, bombs)
        raise err(f"cannot read image: {e}") from None
    if a.ndim == 2:
        a = a[..., None]
    if alpha:
        if not (a[..., -1] == 255).all():
            raise err("image has transparent pixels; flatten it onto a background first "
                      "(an alpha channel is dropped only when fully opaque)")
        a = a[..., :-1]
    return np.ascontiguousarray(a)


def _describe(a: np.ndarray) -> str:
    mode = {1: "grayscale", 3: "RGB"}.get(a.shape[2], f"{a.shape[2]}-channel")
    return f"{a.shape[1]}x{a.shape[0]} {mode}"


def read_images_for_predict(path: str | os.PathLike, *,
                            limit: int = MAX_BYTES) -> tuple[np.ndarray, list[str]]:
    """Images to predict on, uint8 (N, H, W, C), with a name per image.

    ``path`` is an IDX images file or an .npz (key 'x'), named by index, or an
    image file or a folder of images (searched recursively), named by path.
    """
    source = os.fspath(path)
    p = Path(source)
    if p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES:
        files = [p] if not p.is_dir() else sorted(
            f for f in p.rglob("*") if _is_image(f) and
            not any(part.startswith(".") for part in f.relative_to(p).parts))
        if not files:
            raise _error(source, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder",
                         "data-images")
        return _read_images(files, source, limit), [str(f) for f in files]
    if zipfile.is_zipfile(source):
        x = _as_nhwc(_npz_arrays(source, ("x",), limit)[0], source, "data-npz")
    else:
        x = _as_nhwc(read_idx(source, limit=limit), source, "data-idx")
    return x, [str(i) for i in range(len(x))]
