"""Fitted image preprocessing: uint8 pixels -> float32, in NumPy and inside the ONNX graph.

``x / scale``, then ``(x - mean) / std`` per channel, with the same float32
operations in the same order in both places, so the exported model takes raw
uint8 pixels and gives the engine's numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlspec.errors import ModelError

IMAGE_INPUT = "image"
_FORMAT = 1


@dataclass
class ImagePreprocessor:
    """Pixel scaling and per-channel standardization of uint8 images (the shared
    preprocessor interface: see dlspec.data.preprocess.Preprocessor)."""

    kind: ClassVar[str] = "image"

    shape: tuple[int, int, int]      # height, width, channels of one image
    scale: float                     # pixels are divided by this (1: not scaled)
    mean: np.ndarray                 # float32 (C,)
    std: np.ndarray                  # float32 (C,)

    @property
    def inputs(self) -> list:
        """The model's raw input contract: one uint8 image tensor."""
        from dlspec.data.preprocess import InputColumn

        return [InputColumn(IMAGE_INPUT, "image", shape=self.shape)]

    @property
    def columns(self) -> list[str]:
        return [IMAGE_INPUT]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.shape

    @property
    def sequence_input(self) -> None:
        return None

    @classmethod
    def fit(cls, x: np.ndarray, steps: Sequence[dict]) -> ImagePreprocessor:
        """Fit on the training images ``x`` (uint8 N, H, W, C); ``steps`` scale/normalize."""
        c = x.shape[-1]
        out = cls(tuple(int(d) for d in x.shape[1:]), 1.0, np.zeros(c, np.float32),
                  np.ones(c, np.float32))
        for step in steps:
            (kind, arg), = step.items()
            if kind == "scale":
                out.scale = float(arg)
            elif kind == "normalize" and arg == "auto":
                scaled = out._scaled(x)
                out.mean = scaled.mean(axis=(0, 1, 2), dtype=np.float64).astype(np.float32)
                std = scaled.std(axis=(0, 1, 2), dtype=np.float64)
                out.std = np.where(std > 0, std, 1.0).astype(np.float32)
            elif kind == "normalize":
                out.mean = _per_channel(arg["mean"], c, "mean")
                out.std = _per_channel(arg["std"], c, "std")
        return out

    def _scaled(self, x: np.ndarray) -> np.ndarray:
        return x.astype(np.float32) / np.float32(self.scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """float32 (N, H, W, C) from uint8 pixels."""
        if x.shape[1:] != self.shape:
            raise ValueError(f"images are {x.shape[1:]}, the model takes {self.shape}")
        return (self._scaled(x) - self.mean) / self.std

    def pixels(self, values: np.ndarray) -> np.ndarray:
        """``transform`` undone: float32 (N, H, W, C) values as raw pixels (float, not
        rounded or clipped), e.g. a generator's tanh outputs for a picture."""
        return (np.asarray(values, np.float32) * self.std + self.mean) * np.float32(self.scale)

    def to_dict(self) -> dict:
        return {"format": _FORMAT, "kind": "image", "shape": list(self.shape),
                "scale": self.scale, "mean": [float(v) for v in self.mean],
                "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict) -> ImagePreprocessor:
        try:
            if d["format"] != _FORMAT or d["kind"] != "image":
                raise ValueError("not an image preprocessing state of format 1")
            return cls(tuple(int(v) for v in d["shape"]), float(d["scale"]),
                       np.array(d["mean"], np.float32), np.array(d["std"], np.float32))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid preprocessing state: {e}", code="model-state") from None


def _per_channel(v, channels: int, what: str) -> np.ndarray:
    vals = np.atleast_1d(np.asarray(v, dtype=np.float64))
    if len(vals) == 1:
        vals = np.repeat(vals, channels)
    if len(vals) != channels:
        raise ValueError(f"normalize {what} has {len(vals)} values for {channels} channels")
    return vals.astype(np.float32)
