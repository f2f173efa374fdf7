"""The model's contract: which raw columns it takes and what its outputs mean.

The exporter writes the contract into the ONNX metadata; ``predict`` reads it
back and checks every input chunk against it before onnxruntime runs, so a bad
file ends in one located message and never in a raw onnxruntime error.

Format 2 adds each numeric input's training mean (``impute``), which the
graph uses for a NaN input; models of format 1 load, but cannot impute.
Format 3 (written only for sequence models) adds ``sequence``: the window the
model takes and the columns it is cut from. A model trained on delimited text
other than CSV with a header carries its dialect under ``csv`` (any format; older
readers ignore the key), and ``predict`` reads text input that way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from dlspec.data.csvparse import CSV, Dialect
from dlspec.data.preprocess import InputColumn, check_categories, check_policies, numeric_input
from dlspec.data.sequence import SequenceInput
from dlspec.data.table import Table, require_columns
from dlspec.errors import ModelError

CONTRACT_KEY = "dlspec.contract"
CONTRACT_FORMAT = 2
SEQUENCE_FORMAT = 3
READABLE_FORMATS = (1, 2, 3)


@dataclass
class Contract:
    inputs: list[InputColumn]
    target: str
    task: str                          # binary | multiclass | regression
    classes: list = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    sequence: SequenceInput | None = None
    widths: list[int] = field(default_factory=list)  # undecoded outputs: values per example
    dialect: Dialect = CSV             # how the training data's text was written

    @property
    def columns(self) -> list[str]:
        return [c.name for c in self.inputs]

    @property
    def kind(self) -> str:
        """The raw data the model reads: table, image, sequence or tensor."""
        if self.sequence is not None:
            return "sequence"
        kinds = {c.kind for c in self.inputs}
        return "image" if "image" in kinds else "tensor" if "tensor" in kinds else "table"

    @property
    def decoded(self) -> bool:
        """The first output is a task's head (probabilities and label, or a prediction)."""
        return self.task in ("binary", "multiclass", "regression")

    def output_columns(self, width: int) -> list[str]:
        """Names of the prediction table's columns (a sequence model cut from named columns
        names its regression output for the horizon: ``Passengers_t+1``, t being the row
        of a window's last step); a model of no task names each output's values."""
        if not self.decoded:
            return [c for name, w in zip(self.outputs, self.widths or [width], strict=False)
                    for c in ([name] if w == 1 else [f"{name}_{i}" for i in range(w)])]
        if self.task == "regression":
            seq = self.sequence
            name = f"{self.target}_t+{seq.horizon}" if seq and seq.columns else self.target
            return [name] if width == 1 else [f"{name}_{i}" for i in range(width)]
        return [f"prob_{c}" for c in self.classes] + [f"predicted_{self.target}"]

    def to_json(self) -> str:
        extra = {"sequence": self.sequence.to_dict()} if self.sequence else {}
        if self.widths:
            extra["widths"] = list(self.widths)
        if self.dialect != CSV:
            extra["csv"] = self.dialect.to_dict()
        return json.dumps({
            "format": SEQUENCE_FORMAT if self.sequence else CONTRACT_FORMAT,
            "inputs": [c.to_dict() for c in self.inputs],
            "target": self.target, "task": self.task, "classes": list(self.classes),
            "outputs": list(self.outputs), **extra})

    @classmethod
    def from_json(cls, text: str, source: str) -> Contract:
        try:
            d = json.loads(text)
            if d["format"] not in READABLE_FORMATS:
                raise ValueError(f"contract format {d['format']} is not supported")
            inputs = [InputColumn.from_dict(c, need_impute=d["format"] >= 2)
                      for c in d["inputs"]]
            sequence = SequenceInput.from_dict(d["sequence"]) if d["format"] >= 3 else None
            dialect = Dialect.from_dict(d["csv"]) if "csv" in d else CSV
            return cls(inputs, d["target"], d["task"], list(d["classes"]), list(d["outputs"]),
                       sequence, [int(w) for w in d.get("widths", [])], dialect)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelError(f"the model's dlspec contract is invalid: {e}",
                             code="model-contract") from None

    def feeds(self, table: Table, rows: np.ndarray | None = None, *,
              on_unknown: str = "error", on_missing: str = "error") -> dict[str, np.ndarray]:
        """onnxruntime inputs for ``table``; bad cells raise located DataErrors first.

        With ``on_missing="error"`` a missing value, and with ``on_unknown="error"``
        an unseen category, is refused here; otherwise a missing number goes in as
        NaN and a category as its text ("" when missing), which the graph encodes
        exactly as ``Preprocessor.transform`` does.
        """
        check_policies(on_unknown, on_missing)
        require_columns(table, self.columns)
        out = {}
        for col in self.inputs:
            if col.kind == "numeric":
                out[col.name] = numeric_input(table, col, rows, on_missing).reshape(-1, 1)
            elif col.kind == "text":   # any string is a message (an empty one: no tokens)
                from dlspec.inputs.text import messages

                out[col.name] = np.array(messages(table, col.name, rows),
                                         dtype=object).reshape(-1, 1)
            else:
                cells = table.strings(col.name, rows)
                check_categories(table, col, cells, rows, on_unknown, on_missing)
                out[col.name] = cells.reshape(-1, 1)
        return out


def contract_inputs(inputs: dict) -> list[InputColumn]:
    """The raw inputs of a model reading ``inputs`` (input name -> fitted transform): a
    table's columns by their own names, any other kind's one tensor by its input's name."""
    import dataclasses

    out = []
    for name, pre in inputs.items():
        cols = pre.inputs
        if pre.kind not in ("table", "text"):
            cols = [dataclasses.replace(c, name=name) for c in cols]
        out += cols
    return out
