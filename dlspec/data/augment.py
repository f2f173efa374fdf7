"""On-the-fly image augmentation of training batches: shifts, flips, small rotations.

Seeded (one generator per training run), applied to each training batch only,
never to validation or test rows and never exported. Vectorised over the
batch: one gather per transformation, no Python loop over images.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _sample_grid(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, fill: np.ndarray):
    """x[n, rows[n, i, j], cols[n, i, j], :] with ``fill`` where the source is outside."""
    n, h, w, _ = x.shape
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    r, c = np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1)
    out = x[np.arange(n)[:, None, None], r, c]
    out[~inside] = fill
    return out


def make_augment(steps: Sequence[dict], fill: np.ndarray) -> Callable | None:
    """A function ``(batch, rng) -> batch`` for the spec's augment steps (None: no steps).

    ``fill`` (per channel) is what a blank, zero pixel becomes after preprocessing.
    """
    if not steps:
        return None
    shift = next((s["shift"] for s in steps if "shift" in s), 0)
    flip = next((s["flip"] for s in steps if "flip" in s), None)
    angle = next((s["rotate"] for s in steps if "rotate" in s), 0.0)
    fill = np.asarray(fill, dtype=np.float32)

    def augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n, h, w, _ = x.shape
        if flip in ("horizontal", "both"):
            x = np.where(rng.random(n)[:, None, None, None] < 0.5, x[:, :, ::-1], x)
        if flip in ("vertical", "both"):
            x = np.where(rng.random(n)[:, None, None, None] < 0.5, x[:, ::-1], x)
        if not shift and not angle:
            return np.ascontiguousarray(x)
        ii, jj = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        rows = np.broadcast_to(ii, (n, h, w)).astype(np.float64)
        cols = np.broadcast_to(jj, (n, h, w)).astype(np.float64)
        if angle:
            theta = np.deg2rad(rng.uniform(-angle, angle, n))[:, None, None]
            ci, cj = (h - 1) / 2, (w - 1) / 2
            di, dj = rows - ci, cols - cj
            rows = ci + np.cos(theta) * di - np.sin(theta) * dj
            cols = cj + np.sin(theta) * di + np.cos(theta) * dj
        if shift:
            rows = rows - rng.integers(-shift, shift + 1, n)[:, None, None]
            cols = cols - rng.integers(-shift, shift + 1, n)[:, None, None]
        return _sample_grid(x, np.rint(rows).astype(np.intp), np.rint(cols).astype(np.intp),
                            fill)

    return augment
