"""The export's parity gate: the engine and onnxruntime must agree on held-out raw rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlspec.engine.network import Network
from dlspec.errors import ExportError, ParityError
from dlspec.graph.ir import Graph
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS, RecurrentActivation

RTOL, ATOL = 1e-3, 1e-5
MAX_ROWS = 512
SINGLE_ROWS = 8


@dataclass
class RawRows:
    """Raw input the exported model takes, and how the engine sees the same rows.

    ``feeds(rows)`` gives onnxruntime's inputs; ``features(rows)`` the engine's
    float32 input (the fitted preprocessing applied in NumPy); ``output``, when
    set, what the exported graph does after the network (a scaled target back
    into its units).
    """

    feeds: Callable[[np.ndarray], dict]
    features: Callable[[np.ndarray], np.ndarray]
    output: Callable[[np.ndarray], np.ndarray] | None = None


def table_rows(contract, pre, table) -> RawRows:
    """Raw CSV rows; unseen categories take the all-zeros path in both, as in the graph."""
    return RawRows(lambda r: contract.feeds(table, r, on_unknown="zeros"),
                   lambda r: pre.transform(table, r, on_unknown="zeros"))


def image_rows(pre, images: np.ndarray) -> RawRows:
    from dlspec.data.image_prep import IMAGE_INPUT

    return RawRows(lambda r: {IMAGE_INPUT: images[r]}, lambda r: pre.transform(images[r]))


def window_rows(pre, windows: np.ndarray) -> RawRows:
    """Raw windows (N, window, features) of sequence data."""
    from dlspec.data.sequence import SEQUENCE_INPUT

    return RawRows(lambda r: {SEQUENCE_INPUT: windows[r]}, lambda r: pre.transform(windows[r]),
                   pre.unscale_target)


def engine_outputs(net: Network, x: np.ndarray, task: str) -> np.ndarray:
    """What the NumPy engine predicts: class probabilities, or the regression output."""
    _, out = net.forward(x)
    return out if task == "regression" else net.probabilities(out)


def check_parity(session, output: str, net: Network, task: str, raw: RawRows,
                 rows: np.ndarray) -> dict:
    """Compare onnxruntime's ``output`` with the engine at batch size 1 and a larger batch.

    Returns a small report; raises ParityError on a mismatch beyond rtol/atol.
    """
    rows = rows[:MAX_ROWS]
    if len(rows) == 0:
        raise ExportError("no rows to check the exported model against")
    want = engine_outputs(net, raw.features(rows), task)
    if raw.output is not None:
        want = raw.output(want)
    n = len(rows)
    worst = 0.0
    for pos in [np.array([i]) for i in range(min(SINGLE_ROWS, n))] + [np.arange(n)]:
        got = session.run([output], raw.feeds(rows[pos]))[0]
        ref = want[pos]
        # A NaN compares false with every bound: count it as the largest difference, unless
        # both give it (they agree; a model the engine trained into NaN is not export's to judge).
        close = np.isclose(got, ref, rtol=RTOL, atol=ATOL, equal_nan=True)
        diff = np.where(close, np.nan_to_num(np.abs(got - ref)), np.abs(got - ref))
        diff = np.nan_to_num(diff, nan=np.inf)
        worst = max(worst, float(diff.max(initial=0.0)))
        excess = np.where(close, -np.inf, diff - RTOL * np.abs(ref))
        if (excess > -np.inf).any():
            i = int(np.argmax(excess.max(axis=1)))
            raise ParityError(
                f"onnxruntime and the engine disagree at batch size {len(pos)}: data row "
                f"{int(rows[pos][i])} gives {got[i].tolist()} vs {ref[i].tolist()} "
                f"(rtol {RTOL}, atol {ATOL})")
    return {"rows": int(n), "batch_sizes": [1, int(n)], "max_abs_diff": worst, "rtol": RTOL,
            "atol": ATOL}


def overflowing_activations(graph: Graph) -> list[tuple[str, str, RecurrentActivation]]:
    """The recurrent activations of ``graph`` that onnxruntime computes by a formula that
    overflows where the engine's does not (``RecurrentActivation.onnx_overflow``): a likely
    cause of a parity failure. Each as (layer name, attribute, activation), in graph order."""
    found = []
    for node in graph.nodes:
        for attr in ("activation", "recurrent_activation"):
            act = RNN_ACTIVATIONS.get(node.attrs.get(attr)) \
                if isinstance(node.attrs.get(attr), str) else None
            if act is not None and act.onnx_overflow is not None:
                found.append((node.layer, attr, act))
    return found
