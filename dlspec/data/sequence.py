"""Sequence data: a time-ordered series cut into sliding windows, and their fitted scaling.

A window is ``window`` consecutive rows (oldest first) of the feature columns,
one example of shape (window, features); its target is the target column
``horizon`` rows after the window's last row. Scaling (standardize, minmax) is
per feature column, the same at every time step, fitted on the training
period only; with a regression loss the target can be scaled too, and the
prediction is turned back into the target's units, in NumPy and in ONNX alike
(``x * scale + offset``, the same float32 operations in the same order).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlspec.errors import DataError, Location, ModelError

SEQUENCE_INPUT = "window"
SCALERS = ("standardize", "minmax")
_FORMAT = 1


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """Every window of ``window`` consecutive rows of ``values`` (T, F), oldest first.

    Returns a C-contiguous float32 (T - window + 1, window, F) array (empty when
    T < window): window i holds rows i .. i + window - 1.
    """
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"values must be (time, features), got shape {values.shape}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(values) < window:
        return np.empty((0, window, values.shape[1]), dtype=np.float32)
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)  # (n, F, window)
    return np.ascontiguousarray(view.transpose(0, 2, 1))


def window_count(rows: int, window: int, horizon: int) -> int:
    """How many (window, target) examples a series of ``rows`` rows gives (0 when too short)."""
    return max(rows - window - horizon + 1, 0)


def target_rows(n_windows: int, window: int, horizon: int) -> np.ndarray:
    """The row of each window's target: window i ends at row i + window - 1."""
    return np.arange(n_windows, dtype=np.int64) + window - 1 + horizon


@dataclass(frozen=True)
class SequenceInput:
    """What the exported model takes: windows of ``columns`` (in this order), ``window`` long.

    ``horizon``: the prediction is for the target that many rows after a window's
    last row. ``columns`` is empty for a model trained on arrays (.npz), whose
    features have no names; ``width`` is the number of features either way.
    """

    window: int
    horizon: int
    width: int
    columns: tuple[str, ...] = ()
    input: str = SEQUENCE_INPUT

    def describe(self) -> str:
        """One line for people: what the model takes and what it predicts."""
        names = f" ({', '.join(self.columns)})" if self.columns else ""
        return (f"windows of {self.window} time steps x {self.width} feature(s){names}, raw "
                f"float32 '{self.input}' (N, {self.window}, {self.width}); the prediction is "
                f"for {self.horizon} step(s) after a window's last row")

    def to_dict(self) -> dict:
        return {"input": self.input, "window": self.window, "horizon": self.horizon,
                "width": self.width, "columns": list(self.columns)}

    @classmethod
    def from_dict(cls, d: dict) -> SequenceInput:
        """Rebuild from ``to_dict``; raises KeyError, TypeError or ValueError when malformed."""
        out = cls(int(d["window"]), int(d["horizon"]), int(d["width"]),
                  tuple(str(c) for c in d["columns"]), str(d["input"]))
        if out.window < 1 or out.horizon < 1 or out.width < 1:
            raise ValueError(f"window, horizon and width must be >= 1, got {d!r}")
        if out.columns and len(out.columns) != out.width:
            raise ValueError(f"{len(out.columns)} columns for width {out.width}")
        return out


def array_columns(width: int) -> list[str]:
    """The names of an .npz's unnamed features: x0, x1, ..."""
    return [f"x{j}" for j in range(width)]


def read_npz_windows(path: str | os.PathLike, *,
                     limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """x as float32 (n, window, features) and y (n,) from an .npz; bad arrays raise DataError."""
    from dlspec.data.images import MAX_BYTES, _npz_arrays

    source = str(path)
    x, y = _npz_arrays(source, ("x", "y"), MAX_BYTES if limit is None else limit)

    def err(message: str) -> DataError:
        return DataError(message, Location(source), code="data-npz")

    if x.ndim != 3 or 0 in x.shape:
        raise err(f"'x' must hold windows (examples, time steps, features), got shape "
                  f"{x.shape}")
    if x.dtype.kind not in "iuf":
        raise err(f"'x' must hold numbers, got {x.dtype.name}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iufU":
        raise err(f"'y' must hold one target per window, got shape {y.shape} {y.dtype.name}")
    if len(y) != len(x):
        raise err(f"{len(y):,} targets in 'y' for {len(x):,} windows in 'x'")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise err("'x' holds NaN or infinite values")
    return x, y


def scaling_kinds(columns: Sequence[str], target: str | None,
                  steps: Sequence[dict]) -> dict[str, str]:
    """Which scaler each column gets: {column: 'standardize' | 'minmax'}.

    'all' and 'numeric' mean every feature column and ``target`` (pass None when
    the target is not scaled: classification); a listed column may be either.
    Raises ValueError for a step that is not a scaler, an unknown column, or a
    column given two different scalers.
    """
    names = list(dict.fromkeys([*columns, *([target] if target else [])]))
    kinds: dict[str, str] = {}
    for i, step in enumerate(steps):
        (kind, args), = step.items()
        if kind not in SCALERS:
            raise ValueError(f"preprocess[{i}]: '{kind}' does not apply to sequence data; use "
                             f"{' or '.join(SCALERS)}")
        cols = args["columns"] if isinstance(args, dict) else args
        for name in names if cols in ("all", "numeric") else cols:
            if name not in names:
                raise ValueError(f"preprocess[{i}] ({kind}): {name!r} is not a feature"
                                 + (" or the target" if target else ""))
            if kinds.setdefault(name, kind) != kind:
                raise ValueError(f"preprocess[{i}] ({kind}): column {name!r} is already "
                                 f"scaled by {kinds[name]}; scale each column once")
    return kinds


def fit_scaler(values: np.ndarray, kind: str | None) -> tuple[np.ndarray, np.ndarray]:
    """float32 (offset, scale) per column of ``values`` (T, F): x -> (x - offset) / scale.

    standardize: mean and population std (as scikit-learn's StandardScaler);
    minmax: min and max - min, so the fitted rows map onto [0, 1] (as MinMaxScaler).
    A constant column keeps scale 1; ``kind`` None gives offset 0, scale 1.
    """
    v = np.asarray(values, dtype=np.float64)
    width = v.shape[1]
    if kind is None:
        return np.zeros(width, np.float32), np.ones(width, np.float32)
    if kind == "standardize":
        offset, scale = v.mean(axis=0), v.std(axis=0)
    elif kind == "minmax":
        offset, scale = v.min(axis=0), v.max(axis=0) - v.min(axis=0)
    else:
        raise ValueError(f"unknown scaler {kind!r}")
    scale[v.min(axis=0) == v.max(axis=0)] = 1.0
    return offset.astype(np.float32), scale.astype(np.float32)


@dataclass
class SequencePreprocessor:
    """The fitted transform of raw windows (N, window, F) and of the regression target
    (the shared preprocessor interface: see dlspec.data.preprocess.Preprocessor)."""

    kind: ClassVar[str] = "sequence"

    columns: list[str]               # feature names, in window order (x0, x1, ... for arrays)
    window: int
    horizon: int
    offset: np.ndarray               # float32 (F,): 0 where a feature is not scaled
    scale: np.ndarray                # float32 (F,): 1 where a feature is not scaled
    kinds: dict[str, str]            # column (target included) -> its scaler
    target: str
    target_offset: np.float32 = np.float32(0.0)
    target_scale: np.float32 = np.float32(1.0)
    named: bool = True               # False: trained on arrays, features have no names

    @property
    def shape(self) -> tuple[int, int]:
        """One example's shape: (window, features)."""
        return (self.window, len(self.columns))

    @property
    def input_shape(self) -> tuple[int, int]:
        return self.shape

    @property
    def feature_names(self) -> list[str]:
        return list(self.columns)

    @property
    def inputs(self) -> list:
        """The model's raw input: one float32 window tensor."""
        from dlspec.data.preprocess import InputColumn

        return [InputColumn(SEQUENCE_INPUT, "sequence")]

    @property
    def sequence_input(self) -> SequenceInput:
        return SequenceInput(self.window, self.horizon, len(self.columns),
                             tuple(self.columns) if self.named else ())

    @property
    def target_scaled(self) -> bool:
        return self.target in self.kinds

    @classmethod
    def fit(cls, rows: np.ndarray, columns: Sequence[str], steps: Sequence[dict], *,
            window: int, horizon: int, target: str, target_values: np.ndarray | None,
            named: bool = True) -> SequencePreprocessor:
        """Fit on the training period.

        Args:
            rows: (T, F) values of the feature columns over the training period
                (for arrays: every time step of every training window).
            steps: standardize / minmax steps (see ``scaling_kinds``).
            target_values: the regression target over the training period (None for a
                classifier: its target is never scaled). A target that is also a
                feature is scaled with that feature's parameters.
        """
        columns = list(columns)
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(columns) or len(rows) == 0:
            raise ValueError(f"expected ({len(columns)} features) rows to fit on, got "
                             f"shape {rows.shape}")
        regression = target_values is not None
        kinds = scaling_kinds(columns, target if regression else None, steps)
        offset = np.zeros(len(columns), np.float32)
        scale = np.ones(len(columns), np.float32)
        for j, name in enumerate(columns):
            o, s = fit_scaler(rows[:, j:j + 1], kinds.get(name))
            offset[j], scale[j] = o[0], s[0]
        out = cls(columns, window, horizon, offset, scale, kinds, target, named=named)
        if regression and target in kinds:
            if target in columns:
                j = columns.index(target)
                o, s = offset[j:j + 1], scale[j:j + 1]
            else:
                t = np.asarray(target_values, dtype=np.float64).reshape(-1, 1)
                o, s = fit_scaler(t, kinds[target])
            out.target_offset, out.target_scale = np.float32(o[0]), np.float32(s[0])
        return out

    def transform(self, windows: np.ndarray) -> np.ndarray:
        """The network's float32 input from raw windows (N, window, F)."""
        if windows.shape[1:] != self.shape:
            raise ValueError(f"windows are {windows.shape[1:]}, the model takes {self.shape}")
        return np.ascontiguousarray((windows.astype(np.float32) - self.offset) / self.scale)

    def scale_target(self, y: np.ndarray) -> np.ndarray:
        """What the network learns to predict: the scaled target, float32."""
        return ((np.asarray(y, dtype=np.float32) - self.target_offset)
                / self.target_scale).astype(np.float32)

    def unscale_target(self, out: np.ndarray) -> np.ndarray:
        """The network's regression output back in the target's units (as the ONNX graph)."""
        if not self.target_scaled:
            return out
        return (out * self.target_scale + self.target_offset).astype(np.float32)

    def to_dict(self) -> dict:
        return {"format": _FORMAT, "kind": "sequence", "columns": list(self.columns),
                "named": self.named, "window": self.window, "horizon": self.horizon,
                "offset": [float(v) for v in self.offset],
                "scale": [float(v) for v in self.scale], "kinds": dict(self.kinds),
                "target": self.target, "target_offset": float(self.target_offset),
                "target_scale": float(self.target_scale)}

    @classmethod
    def from_dict(cls, d: dict) -> SequencePreprocessor:
        """Rebuild from ``to_dict`` output; a malformed state raises ModelError."""
        try:
            if d["format"] != _FORMAT or d["kind"] != "sequence":
                raise ValueError("not a sequence preprocessing state of format 1")
            out = cls([str(c) for c in d["columns"]], int(d["window"]), int(d["horizon"]),
                      np.array(d["offset"], np.float32), np.array(d["scale"], np.float32),
                      {str(k): str(v) for k, v in d["kinds"].items()}, str(d["target"]),
                      np.float32(d["target_offset"]), np.float32(d["target_scale"]),
                      bool(d["named"]))
            if not len(out.offset) == len(out.scale) == len(out.columns) >= 1:
                raise ValueError("columns, offset and scale differ in length")
            if out.window < 1 or out.horizon < 1:
                raise ValueError("window and horizon must be >= 1")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"invalid preprocessing state: {e}", code="model-state") from None
        return out
