"""The export's parity gate: the engine and onnxruntime must agree on held-out rows."""

from __future__ import annotations

import numpy as np

from dlspec.data.preprocess import Preprocessor
from dlspec.data.table import Table
from dlspec.engine.network import Network
from dlspec.errors import ExportError

RTOL, ATOL = 1e-3, 1e-5
MAX_ROWS = 512
SINGLE_ROWS = 8


def engine_outputs(net: Network, pre: Preprocessor, table: Table, rows: np.ndarray,
                   task: str, on_unknown: str = "error") -> np.ndarray:
    """What the NumPy engine predicts for raw rows: probabilities, or the regression output."""
    _, out = net.forward(pre.transform(table, rows, on_unknown=on_unknown))
    return out if task == "regression" else net.probabilities(out)


def check_parity(session, contract, net: Network, pre: Preprocessor, table: Table,
                 rows: np.ndarray) -> dict:
    """Compare onnxruntime with the engine at batch size 1 and at one larger batch.

    Returns a small report; raises ExportError on a mismatch beyond rtol/atol.
    """
    rows = rows[:MAX_ROWS]
    if len(rows) == 0:
        raise ExportError("no rows to check the exported model against")
    want = engine_outputs(net, pre, table, rows, contract.task, on_unknown="zeros")
    name = contract.outputs[0]
    n = len(rows)
    worst = 0.0
    for pos in [np.array([i]) for i in range(min(SINGLE_ROWS, n))] + [np.arange(n)]:
        got = session.run([name], contract.feeds(table, rows[pos], on_unknown="zeros"))[0]
        ref = want[pos]
        diff = np.abs(got - ref)
        worst = max(worst, float(diff.max(initial=0.0)))
        excess = diff - RTOL * np.abs(ref)
        if (excess > ATOL).any():
            i = int(np.argmax(excess.max(axis=1)))
            raise ExportError(
                f"onnxruntime and the engine disagree at batch size {len(pos)}: data row "
                f"{int(rows[pos][i])} gives {got[i].tolist()} vs {ref[i].tolist()} "
                f"(rtol {RTOL}, atol {ATOL})")
    return {"rows": int(len(rows)), "batch_sizes": [1, int(len(rows))],
            "max_abs_diff": worst, "rtol": RTOL, "atol": ATOL}
