"""Chunked prediction: raw rows in, one output row per input row out, in input order.

Two backends share the input contract and the output writers: onnxruntime
(the exported model, the production path) and the NumPy engine (a run
directory), so the two can be compared row by row.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from dlspec.data.table import iter_csv
from dlspec.errors import UsageError
from dlspec.runtime.contract import Contract

FORMATS = (".csv", ".jsonl", ".npy")
DEFAULT_BATCH = 65_536


def _format_value(v) -> str | float | int:
    if isinstance(v, (np.floating, float)):
        return float(f"{float(v):.9g}")
    if isinstance(v, np.integer):
        return int(v)
    return v


class Batch:
    """One chunk of predictions: the numeric block and (for classifiers) the labels."""

    def __init__(self, values: np.ndarray, labels: np.ndarray | None) -> None:
        self.values, self.labels = values, labels

    def rows(self) -> Iterator[list]:
        for i in range(len(self.values)):
            row = [_format_value(v) for v in self.values[i]]
            if self.labels is not None:
                row.append(_format_value(self.labels[i]))
            yield row


def onnx_runner(session, contract: Contract, on_unknown: str) -> Callable:
    names = contract.outputs

    def run(table) -> Batch:
        outs = session.run(names, contract.feeds(table, on_unknown=on_unknown))
        return Batch(outs[0], outs[1] if len(outs) > 1 else None)
    return run


def engine_runner(run, on_unknown: str) -> Callable:
    """Predict with the NumPy engine of a loaded run directory."""
    classes = np.array(run.target.classes, dtype=object)

    def predict(table) -> Batch:
        x = run.preprocessor.transform(table, on_unknown=on_unknown)
        _, out = run.net.forward(x)
        if run.target.task == "regression":
            return Batch(out, None)
        probs = run.net.probabilities(out)
        return Batch(probs, classes[np.argmax(probs, axis=1)])
    return predict


class _Writer:
    def __init__(self, out: Path | None, header: list[str]) -> None:
        self.out, self.header = out, header
        self.ext = out.suffix.lower() if out else ".csv"
        if self.ext not in FORMATS:
            raise UsageError(f"-o {out}: unknown output format '{self.ext}'; use one of "
                             f"{', '.join(FORMATS)}", code="usage")
        self.blocks: list[np.ndarray] = []
        self.fh = None
        # files appear complete or not at all: written aside, renamed at the end
        self.tmp = out.with_name(f".{out.name}.partial") if out else None

    def open(self):
        if self.ext == ".npy":
            return self
        if self.out:  # kept open across write() calls; close() ends it
            self.fh = open(self.tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115
        else:
            self.fh = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="",
                                       write_through=True)
        if self.ext == ".csv":
            self.csv = csv.writer(self.fh, lineterminator="\n")
            self.csv.writerow(self.header)
        return self

    def write(self, batch: Batch) -> None:
        if self.ext == ".npy":
            self.blocks.append(np.asarray(batch.values, dtype=np.float32))
        elif self.ext == ".csv":
            self.csv.writerows(batch.rows())
        else:
            for row in batch.rows():
                self.fh.write(json.dumps(dict(zip(self.header, row, strict=True))) + "\n")

    def close(self, ok: bool) -> None:
        if self.ext == ".npy":
            if ok:
                width = len(self.header) - (self.header[-1].startswith("predicted_"))
                data = np.concatenate(self.blocks) if self.blocks else \
                    np.zeros((0, width), np.float32)
                with open(self.tmp, "wb") as fh:
                    np.save(fh, data, allow_pickle=False)
        elif self.fh is not None:
            self.fh.flush()
            if self.out:
                self.fh.close()
            else:
                self.fh.detach()
        if self.out and self.tmp.exists():
            if ok:
                os.replace(self.tmp, self.out)
            else:
                self.tmp.unlink()


def predict_file(runner: Callable, contract: Contract, width: int, data: Path,
                 out: Path | None, batch_size: int = DEFAULT_BATCH,
                 progress: Callable[[int], None] | None = None) -> int:
    """Stream ``data`` through ``runner`` into ``out`` (stdout when None); returns the row count.

    ``.npy`` output holds the numeric block (probabilities or predictions) only.
    """
    writer = _Writer(out, contract.output_columns(width))
    n = 0
    chunks = iter_csv(data, batch_size, columns=contract.columns)
    writer.open()
    ok = False
    try:
        for table in chunks:
            if len(table) == 0:
                continue
            writer.write(runner(table))
            n += len(table)
            if progress:
                progress(n)
        ok = True
    finally:
        writer.close(ok)
    return n
