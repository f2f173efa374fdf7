"""The exported model's contract on a report: the raw inputs it takes, its outputs, its
opset and IR version, read from model.onnx's metadata.

The few top-level fields needed are read straight from the protobuf wire format: importing
onnx takes a second or more (ml_dtypes), longer than the whole report."""

from __future__ import annotations

import hashlib
import json
from html import escape

from dlspec.report.html import table
from dlspec.report.runfiles import RunFiles

CONTRACT_KEY = "dlspec.contract"
SHOWN_CATEGORIES = 6
IR_VERSION, OPSET_IMPORT, METADATA_PROPS = 1, 8, 14   # ModelProto field numbers


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("truncated varint")
        b = buf[i]
        i += 1
        out |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return out, i


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """A protobuf message's top-level (field number, value): ints for varints, bytes for
    length-delimited fields; fixed-width fields are skipped.

    Raises:
        ValueError: not a well-formed message.
    """
    out, i = [], 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
            out.append((num, value))
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > len(buf):
                raise ValueError("truncated field")
            out.append((num, buf[i:i + size]))
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
    return out


def read_model(data: bytes) -> tuple[int, list[tuple[str, int]], dict[str, str]]:
    """(IR version, [(opset domain, version)], metadata) of a serialized ONNX model."""
    ir, opsets, meta = 0, [], {}
    for num, value in fields(data):
        if num == IR_VERSION and isinstance(value, int):
            ir = value
        elif num == OPSET_IMPORT and isinstance(value, bytes):
            f = dict(fields(value))
            opsets.append((f.get(1, b"").decode() or "ai.onnx", int(f.get(2, 0))))
        elif num == METADATA_PROPS and isinstance(value, bytes):
            f = dict(fields(value))
            meta[f.get(1, b"").decode()] = f.get(2, b"").decode()
    return ir, opsets, meta


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
    rows = [["file", f"model.onnx, {len(data):,} bytes"],
            ["SHA-256", hashlib.sha256(data).hexdigest()]]
    try:
        ir, opsets, meta = read_model(data)
    except (ValueError, UnicodeDecodeError) as e:  # a damaged model is reported, not raised
        return [table(["", "value"], rows),
                f'<p class="muted">model.onnx cannot be read: {escape(str(e))[:300]}</p>']
    rows += [["IR version", ir], ["opsets", ", ".join(f"{d} {v}" for d, v in opsets)]]
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
