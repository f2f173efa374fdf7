"""Pictures as plain PNG files, with no imaging library: image grids, an RBM's or a dense
layer's filters, and originals above their reconstructions.

- ``png_bytes``: an 8-bit grayscale (h, w) or RGB (h, w, 3) uint8 array -> PNG file bytes
  (zlib + struct; one IDAT chunk, every row with filter type 0).
- ``grid``: images (n, h, w) or (n, h, w, 1 | 3) -> one uint8 picture of tiles, scaled to
  [0, 1] globally, per image, or not at all (clipped), ``pad`` pixels between tiles.
- ``filters_grid``: a kernel (n_visible, n_hidden) -> each hidden unit's weights as a tile,
  contrast-scaled per tile.
- ``pairs_grid``: a row of originals above a row of their reconstructions, and so on.
"""

from __future__ import annotations

import math
import struct
import zlib

import numpy as np

SCALES = ("global", "each", "none")
_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def png_bytes(image: np.ndarray, *, level: int = 6) -> bytes:
    """The bytes of a PNG file holding ``image``: uint8, (h, w) grayscale or (h, w, 3) RGB."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise ValueError(f"png_bytes: expected a uint8 array, got {a.dtype}")
    if a.ndim == 2:
        color = 0
    elif a.ndim == 3 and a.shape[2] == 3:
        color = 2
    else:
        raise ValueError(f"png_bytes: expected shape (h, w) or (h, w, 3), got {a.shape}")
    h, w = a.shape[:2]
    if h == 0 or w == 0:
        raise ValueError(f"png_bytes: an image needs at least one pixel, got shape {a.shape}")
    rows = np.zeros((h, 1 + a[0].size), np.uint8)  # a leading 0: filter type None
    rows[:, 1:] = a.reshape(h, -1)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)
    return (_SIGNATURE + _chunk(b"IHDR", ihdr)
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _chunk(b"IEND", b""))


def _unit(images: np.ndarray, scale: str) -> np.ndarray:
    """float64 images scaled to [0, 1]; a constant image (or set) becomes 0.5."""
    x = np.asarray(images, np.float64)
    if scale == "none":
        return np.clip(x, 0.0, 1.0)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    axes = tuple(range(1, x.ndim)) if scale == "each" else None
    lo = x.min(axis=axes, keepdims=True)
    span = x.max(axis=axes, keepdims=True) - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(span > 0, (x - lo) / np.where(span > 0, span, 1.0), 0.5)
    return out


def _as_images(images, who: str) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[3] == 1:
        x = x[..., 0]
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[3] == 3)) or len(x) == 0:
        raise ValueError(f"{who}: expected images of shape (n, h, w) or (n, h, w, 1 | 3) "
                         f"with n >= 1, got {x.shape}")
    return x


def _tiles(cells: list, shape: tuple, cols: int, pad: int, background: float) -> np.ndarray:
    """Cells (each a [0, 1] image of ``shape`` or None for an empty cell) in rows of ``cols``,
    as one uint8 picture."""
    rows = math.ceil(len(cells) / cols)
    h, w = shape[:2]
    out = np.full((rows * h + (rows + 1) * pad, cols * w + (cols + 1) * pad, *shape[2:]),
                  background, np.float64)
    for i, cell in enumerate(cells):
        if cell is not None:
            r, c = divmod(i, cols)
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            out[y:y + h, x:x + w] = cell
    return np.round(out * 255).astype(np.uint8)


def _check_layout(cols: int, pad: int, background: float) -> None:
    if not isinstance(cols, int | np.integer) or cols < 1:
        raise ValueError(f"cols must be a positive integer, got {cols!r}")
    if not isinstance(pad, int | np.integer) or pad < 0:
        raise ValueError(f"pad must be a non-negative integer, got {pad!r}")
    if not 0 <= background <= 1:
        raise ValueError(f"background must be in [0, 1], got {background!r}")


def grid(images, cols: int, pad: int = 1, *, scale: str = "global",
         background: float = 0.5) -> np.ndarray:
    """Images in rows of ``cols`` tiles, ``pad`` pixels of ``background`` (0 black, 1 white)
    around each, as a uint8 picture for ``png_bytes``.

    Args:
        images: (n, h, w) or (n, h, w, 1) grayscale, or (n, h, w, 3) RGB, any numbers.
        scale: "global" (min..max of all images to 0..1), "each" (each image its own
            min..max) or "none" (values already in [0, 1], clipped). A constant image, or
            set, becomes mid-gray.

    Returns:
        uint8 (H, W) or (H, W, 3), H = rows * h + (rows + 1) * pad, and so on.
    """
    _check_layout(cols, pad, background)
    x = _unit(_as_images(images, "grid"), scale)
    return _tiles(list(x), x.shape[1:], cols, pad, background)


def filters_grid(kernel, image_shape: tuple, cols: int, pad: int = 1, *,
                 background: float = 0.5) -> np.ndarray:
    """Each hidden unit's incoming weights (a column of ``kernel`` (n_visible, n_hidden))
    as a tile of ``image_shape`` (h, w) or (h, w, c), contrast-scaled per tile."""
    k = np.asarray(kernel)
    if k.ndim != 2 or int(np.prod(image_shape)) != k.shape[0]:
        raise ValueError(f"filters_grid: a kernel of shape (n_visible, n_hidden) with "
                         f"n_visible = {int(np.prod(image_shape))} (image_shape "
                         f"{tuple(image_shape)}) expected, got {k.shape}")
    return grid(k.T.reshape(k.shape[1], *image_shape), cols, pad, scale="each",
                background=background)


def pairs_grid(originals, reconstructions, cols: int, pad: int = 1, *,
               image_shape: tuple | None = None, scale: str = "global",
               background: float = 0.5) -> np.ndarray:
    """A row of ``cols`` originals above a row of their reconstructions, then the next
    ``cols`` of each, and so on. Both sets share one scaling (global: the min..max of
    both), so a reconstruction's grays compare with its original's.

    Args:
        originals, reconstructions: the same shape, images as ``grid`` takes, or rows of
            flat pixels (n, h * w) with ``image_shape``.
    """
    _check_layout(cols, pad, background)
    a, b = np.asarray(originals), np.asarray(reconstructions)
    if a.shape != b.shape:
        raise ValueError(f"pairs_grid: originals {a.shape} and reconstructions {b.shape} "
                         f"differ in shape")
    if image_shape is not None:
        a, b = (x.reshape(len(x), *image_shape) for x in (a, b))
    a = _as_images(a, "pairs_grid")
    both = _unit(np.concatenate([a, _as_images(b, "pairs_grid")]), scale)
    ua, ub = both[:len(a)], both[len(a):]
    cells: list = []
    for start in range(0, len(a), cols):
        for half in (ua, ub):
            row = list(half[start:start + cols])
            cells += row + [None] * (cols - len(row))
    return _tiles(cells, a.shape[1:], cols, pad, background)
