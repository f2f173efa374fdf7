"""The exported model's contract on a report: the raw inputs it takes, its outputs, its
opset and IR version, read from model.onnx's metadata."""

from __future__ import annotations

import hashlib
import json
from html import escape

from dlspec.report.html import table
from dlspec.report.runfiles import RunFiles

CONTRACT_KEY = "dlspec.contract"
SHOWN_CATEGORIES = 6


def _input_row(c: dict) -> list:
    kind = str(c.get("kind", ""))
    detail = ""
    cats = c.get("categories") or []
    if cats:
        shown = ", ".join(map(str, cats[:SHOWN_CATEGORIES]))
        detail = f"{len(cats)} categories: {shown}" + (", ..." if len(cats) > 6 else "")
    elif c.get("shape"):
        detail = "shape (N, " + ", ".join(map(str, c["shape"])) + ")"
    elif isinstance(c.get("impute"), (int, float)):
        detail = f"training mean {c['impute']:.4g}"
    return [str(c.get("name", "")), kind, detail]


def model_summary(run: RunFiles) -> list[str]:
    """HTML parts describing model.onnx, or [] when the run has none."""
    data = run.read("model.onnx")
    if data is None:
        return []
    import onnx

    rows = [["file", f"model.onnx, {len(data):,} bytes"],
            ["SHA-256", hashlib.sha256(data).hexdigest()]]
    try:
        model = onnx.load_from_string(data)
    except Exception as e:  # noqa: BLE001 - a damaged model is reported, not raised
        return [table(["", "value"], rows),
                f'<p class="muted">model.onnx cannot be read: {escape(str(e))[:300]}</p>']
    rows += [["IR version", model.ir_version],
             ["opsets", ", ".join(f"{o.domain or 'ai.onnx'} {o.version}"
                                  for o in model.opset_import)]]
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        contract = json.loads(meta.get(CONTRACT_KEY, "null")) or {}
    except ValueError:
        contract = {}
    parts = []
    if contract:
        rows += [["task", contract.get("task", "")], ["target", contract.get("target", "")],
                 ["outputs", ", ".join(map(str, contract.get("outputs", [])))]]
        if contract.get("classes"):
            rows.append(["classes", ", ".join(map(str, contract["classes"]))])
        seq = contract.get("sequence")
        if isinstance(seq, dict):
            rows.append(["sequence", ", ".join(f"{k} {v}" for k, v in seq.items()
                                               if not isinstance(v, (list, dict)))])
        inputs = [c for c in contract.get("inputs", []) if isinstance(c, dict)]
        parts.append("<h3>Inputs, raw, as <code>dlspec predict</code> reads them</h3>"
                     + table(["input", "kind", "detail"], [_input_row(c) for c in inputs]))
    return [table(["", "value"], rows), *parts]
