"""A tensor input: float32 arrays of a declared shape, taken as they are (no fitting)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlspec.data.preprocess import InputColumn
from dlspec.errors import ModelError


@dataclass
class TensorInput:
    """The identity transform of a declared float32 input (the shared preprocessor
    interface: see dlspec.data.preprocess.Preprocessor)."""

    kind: ClassVar[str] = "tensor"

    name: str
    shape: tuple[int, ...]

    @property
    def inputs(self) -> list[InputColumn]:
        return [InputColumn(self.name, "tensor", shape=self.shape)]

    @property
    def columns(self) -> list[str]:
        return [self.name]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def sequence_input(self) -> None:
        return None

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape[1:] != self.shape:
            raise ValueError(f"'{self.name}' takes examples of shape {self.shape}, got "
                             f"{x.shape[1:]}")
        return x

    def to_dict(self) -> dict:
        return {"kind": "tensor", "name": self.name, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict) -> TensorInput:
        try:
            return cls(str(d["name"]), tuple(int(v) for v in d["shape"]))
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"invalid preprocessing state: {e}", code="model-state") from None
