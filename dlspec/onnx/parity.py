"""The export's parity gate: the engine and onnxruntime must agree on held-out raw rows."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlspec.engine.network import Network
from dlspec.errors import ExportError, ParityError
from dlspec.graph.ir import Graph
from dlspec.inputs.base import HOLDOUT_ROWS
from dlspec.tasks import TASKS

RTOL, ATOL = 1e-3, 1e-5
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


def table_rows(contract, inputs: dict, table) -> RawRows:
    """Raw CSV rows; unseen categories take the all-zeros path in both, as in the graph.
    Rows are numbered as in the whole table (a dataset keeps only some: ``Table.keep``)."""
    return RawRows(lambda r: contract.feeds(table, table.positions(r), on_unknown="zeros"),
                   lambda r: {n: pre.transform(table, table.positions(r), on_unknown="zeros")
                              for n, pre in inputs.items()})


def array_rows(contract, inputs: dict, raw: np.ndarray) -> RawRows:
    """Raw images (N, H, W, C) or windows (N, window, features) of the model's one input;
    a sequence model's regression output is turned back into the target's units."""
    (name, pre), = inputs.items()
    unscale = pre.unscale_target if pre.sequence_input is not None else None
    return RawRows(lambda r: {name: raw[r]}, lambda r: {name: pre.transform(raw[r])}, unscale)


RAW_ROWS = {"table": table_rows, "image": array_rows, "sequence": array_rows,
            "text": table_rows}


def engine_outputs(net: Network, x, task: str) -> np.ndarray:
    """What the NumPy engine predicts: class probabilities, or the regression output."""
    _, out = net.forward(x)
    return TASKS[task].scores(out)


def check_parity(session, output: str, net: Network, task: str, raw: RawRows,
                 rows: np.ndarray, output_name: str | None = None) -> dict:
    """Compare onnxruntime's ``output`` with the engine at batch size 1 and a larger batch.

    Returns a small report; raises ParityError on a mismatch beyond rtol/atol.
    """
    rows = rows[:HOLDOUT_ROWS]
    if len(rows) == 0:
        raise ExportError("no rows to check the exported model against")
    if output_name is not None:  # an exported output other than the head: as the engine
        want = net.values(raw.features(rows), [output_name])[output_name]
    else:
        want = engine_outputs(net, raw.features(rows), task)
        if raw.output is not None:
            want = raw.output(want)
    n = len(rows)
    worst = 0.0
    for pos in [np.array([i]) for i in range(min(SINGLE_ROWS, n))] + [np.arange(n)]:
        got = session.run([output], raw.feeds(rows[pos]))[0]
        ref = want[pos]
        # A NaN compares false with every bound: count it as the largest difference, unless
        # both give it (they agree; a model the engine trained into NaN is not export's to
        # judge).
        close = np.isclose(got, ref, rtol=RTOL, atol=ATOL, equal_nan=True)
        diff = np.where(close, np.nan_to_num(np.abs(got - ref)), np.abs(got - ref))
        diff = np.nan_to_num(diff, nan=np.inf)
        worst = max(worst, float(diff.max(initial=0.0)))
        excess = np.where(close, -np.inf, diff - RTOL * np.abs(ref)).reshape(len(pos), -1)
        if (excess > -np.inf).any():
            i = int(np.argmax(excess.max(axis=1)))
            raise ParityError(
                f"onnxruntime and the engine disagree on '{output}' at batch size "
                f"{len(pos)}: data row {int(rows[pos][i])} gives {got[i].tolist()} vs "
                f"{ref[i].tolist()} (rtol {RTOL}, atol {ATOL})")
    return {"rows": int(n), "batch_sizes": [1, int(n)], "max_abs_diff": worst, "rtol": RTOL,
            "atol": ATOL}


def cpu_session(model_bytes: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(model_bytes, sess_options=opts,
                                providers=["CPUExecutionProvider"])


def contract_of(model):
    from dlspec.runtime.contract import CONTRACT_KEY, Contract

    meta = {p.key: p.value for p in model.metadata_props}
    return Contract.from_json(meta[CONTRACT_KEY], "model")


def check_model_parity(model, net: Network, kind: str, inputs: dict, task: str, raw,
                       rows: np.ndarray) -> dict:
    """The exported ``model`` against the engine on held-out raw rows (``raw`` indexed by
    ``rows``): its decoded head, and every other output the model exports (a trimmed
    model's outputs, undecoded, against the engine's values of those nodes)."""
    contract = contract_of(model)
    session = cpu_session(model.SerializeToString())
    data = {n: pre for n, pre in inputs.items() if pre.kind != "tensor"}
    columns = [c for c in contract.inputs if c.kind != "tensor"]
    rows_of = RAW_ROWS[kind](dataclasses.replace(contract, inputs=columns), data, raw)
    rows_of = _with_tensors(rows_of, inputs, rows, model)
    report = None
    extra = list(contract.outputs)
    if contract.decoded:
        report = check_parity(session, contract.outputs[0], net, task, rows_of, rows)
        extra = [o for o in contract.outputs[1:] if o != "label"]
    for name in extra:
        one = check_parity(session, name, net, task, _output(rows_of, name), rows,
                           output_name=name)
        report = one if report is None else _worse(report, one)
    return report


def _with_tensors(raw: RawRows, inputs: dict, rows: np.ndarray, model) -> RawRows:
    """``raw`` with the inputs that no data gives (tensor inputs, e.g. a GAN's noise):
    seeded normal values per data row, the same to both; the exported model is fed only
    the inputs it takes (a trimmed one may take no data at all)."""
    taken = {i.name for i in model.graph.input}
    tensors = {n: pre for n, pre in inputs.items() if pre.kind == "tensor"}
    if not tensors and all(n in taken for n in inputs):
        return raw
    rows = rows[:HOLDOUT_ROWS]
    at = {int(r): i for i, r in enumerate(rows)}
    rng = np.random.default_rng(0)
    drawn = {n: rng.standard_normal((len(rows), *pre.shape)).astype(np.float32)
             for n, pre in tensors.items()}

    def of(r: np.ndarray) -> dict:
        pos = [at[int(v)] for v in r]
        return {n: x[pos] for n, x in drawn.items()}

    def feeds(r: np.ndarray) -> dict:
        return {n: v for n, v in {**raw.feeds(r), **of(r)}.items() if n in taken}

    return RawRows(feeds, lambda r: {**raw.features(r), **of(r)}, raw.output)


def _output(raw: RawRows, name: str) -> RawRows:
    return RawRows(raw.feeds, raw.features)


def _worse(a: dict, b: dict) -> dict:
    return a if a["max_abs_diff"] >= b["max_abs_diff"] else {**a,
                                                              "max_abs_diff": b["max_abs_diff"]}


def check_tensor_parity(model, net: Network, inputs: dict, rows: int = 16) -> dict:
    """A model of tensor inputs against the engine on seeded random inputs (every output)."""
    contract = contract_of(model)
    session = cpu_session(model.SerializeToString())
    taken = {i.name for i in model.graph.input}  # a trimmed model takes only what it reads
    inputs = {n: pre for n, pre in inputs.items() if n in taken}
    rng = np.random.default_rng(0)
    raw = {n: rng.standard_normal((rows, *pre.shape)).astype(np.float32)
           for n, pre in inputs.items()}
    rows_of = RawRows(lambda r: {n: x[r] for n, x in raw.items()},
                      lambda r: {n: x[r] for n, x in raw.items()})
    report = None
    for name in contract.outputs:
        one = check_parity(session, name, net, "regression", rows_of, np.arange(rows),
                           output_name=name)
        report = one if report is None else _worse(report, one)
    return report


def overflowing_activations(graph: Graph) -> list[tuple[str, str, object]]:
    """The recurrent activations of ``graph`` that onnxruntime computes by a formula that
    overflows where the engine's does not (``RecurrentActivation.onnx_overflow``): a likely
    cause of a parity failure. Each as (layer name, attribute, activation), in graph order."""
    from dlspec.ops.rnn_activations import RNN_ACTIVATIONS

    found = []
    for node in graph.nodes:
        for attr in ("activation", "recurrent_activation"):
            value = node.attrs.get(attr)
            act = RNN_ACTIVATIONS.get(value) if isinstance(value, str) else None
            if act is not None and act.onnx_overflow is not None:
                found.append((node.layer, attr, act))
    return found
