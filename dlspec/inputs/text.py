"""Text: one column of free text (data.text) -> token ids (N, max_length), int64.

The table is read with the spec's dialect (data.format), the target encoded, the rows
split (stratified for a classifier), and the tokenizer's vocabulary fitted on the
training rows only (dlspec.data.text). The run directory keeps it as ``vocabulary.txt``;
its SHA-256 is in ``preprocess.json`` and the lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dlspec.data.preprocess import InputColumn
from dlspec.data.split import split_indices
from dlspec.data.table import Table, missing_columns_error, read_csv
from dlspec.data.text import TextEncoder
from dlspec.errors import Diagnostics, SpecError
from dlspec.fsio import file_sha256
from dlspec.inputs import table as tables
from dlspec.inputs.base import SPLITS, Dataset, InputKind, encode_target
from dlspec.spec.model import Spec
from dlspec.tasks import TASKS

VOCABULARY = "vocabulary.txt"


@dataclass
class TextPreprocessor:
    """A fitted text column: raw strings -> right-padded token ids (N, max_length)."""

    kind: ClassVar[str] = "text"
    column: str
    encoder: TextEncoder

    @property
    def inputs(self) -> list[InputColumn]:
        return [InputColumn(self.column, "text")]

    @property
    def columns(self) -> list[str]:
        return [self.column]

    @property
    def input_shape(self) -> tuple[int]:
        return (self.encoder.max_length,)

    @property
    def sequence_input(self) -> None:
        return None

    def transform(self, table: Table, rows: np.ndarray | None = None, **_policies) -> np.ndarray:
        """The token ids of ``table``'s text column (every message is valid text: an empty
        one has no tokens)."""
        ids, _ = self.encoder.encode(messages(table, self.column, rows))
        return ids

    def to_dict(self) -> dict:
        return {"kind": self.kind, "column": self.column, **self.encoder.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> TextPreprocessor:
        return cls(str(d["column"]), TextEncoder.from_dict(d))


def messages(table: Table, column: str, rows: np.ndarray | None = None) -> list[str]:
    """The column's cells as they are (no stripping: a tokenizer decides what separates);
    a cell that is not a string (a number or null from JSON Lines, say) is a located
    DataError."""
    cells = table.cells[column] if rows is None else table.cells[column][rows]
    if cells.dtype.kind == "U":
        return cells.tolist()
    out = cells.tolist()
    for i, cell in enumerate(out):
        if not isinstance(cell, str):
            line = table.lines[i if rows is None else rows[i]]
            got = "null" if cell is None else f"{type(cell).__name__} {cell!r}"
            raise table.error(f"column {column!r}: expected text (a string), got {got}",
                              line, "data-type")
    return out


def _check_embeddings(spec: Spec, name: str, vocab_size: int) -> None:
    """Each embedding reading the text input has a row for every id."""
    errors = []
    for node in spec.model.nodes:
        if node.layer == "embedding" and name in node.inputs and \
                node.params["input_dim"] < vocab_size:
            where = (*node.where, "embedding", "input_dim")
            errors.append(SpecError(
                f"embedding '{node.name}' has {node.params['input_dim']} rows, but the "
                f"vocabulary fitted on the training rows has {vocab_size} ids (2 reserved "
                f"+ {vocab_size - 2} tokens); set input_dim: {vocab_size} or more, or "
                "limit data.text's vocab.max_size", spec.locate(where, False),
                path=".".join(map(str, where)), code="semantic-embedding"))
    if errors:
        raise Diagnostics(errors)


def load_text(spec: Spec) -> Dataset:
    """Read, check, split and tokenize a text spec's data.

    Raises:
        Diagnostics / DataError: a missing file or column, bad rows (file:line), classes
            that do not fit the loss, an embedding smaller than the vocabulary.
    """
    d = spec.data
    if not d.source.is_file():
        raise Diagnostics([SpecError(
            f"data file not found: {d.source} (give another with --set data.source=PATH)",
            spec.locate(("data", "source"), False), path="data.source", code="data-file")])
    (column, settings), = d.text.items()
    table = read_csv(d.source, dialect=d.dialect)
    missing = [c for c in (column, d.target) if c not in table.cells]
    if missing:
        raise missing_columns_error(str(d.source_text), table.columns, missing)
    target, y = encode_target(table, d.target, spec.train.target_loss, ("data", "target"),
                              spec.locate)
    s = d.split
    stratify = y if (s.stratify and TASKS[target.task].classifier) else None
    rows = dict(zip(SPLITS, split_indices(len(table), test=s.test, validation=s.validation,
                                          seed=spec.seed, stratify_labels=stratify),
                    strict=True))
    texts = messages(table, column)
    vocab = settings["vocab"]
    enc = TextEncoder.fit([texts[i] for i in rows["train"]], lowercase=settings["lowercase"],
                          tokenizer=settings["tokenizer"], max_length=settings["max_length"],
                          max_size=vocab["max_size"], min_count=vocab["min_count"])
    name = spec.model.inputs[0].name
    _check_embeddings(spec, name, enc.vocab_size)
    pre = TextPreprocessor(column, enc)
    ids, _ = enc.encode(texts)
    x = {k: {name: ids[r]} for k, r in rows.items()}
    return Dataset("text", {name: pre}, target, rows, x, {k: y[r] for k, r in rows.items()},
                   file_sha256(d.source), raw=table)


def describe(inputs: dict) -> str:
    (name, pre), = inputs.items()
    enc = pre.encoder
    return (f"text: {name} (column '{pre.column}'): {enc.tokenizer} tokens, "
            f"{'lowercased, ' if enc.lowercase else ''}{enc.vocab_size} ids, "
            f"max_length {enc.max_length}")


def extra_files(ds: Dataset) -> dict[str, bytes]:
    """The run directory's readable vocabulary."""
    (pre,) = ds.inputs.values()
    return {VOCABULARY: pre.encoder.to_text().encode()}


KIND = InputKind("text", TextPreprocessor, load_text, tables.HOLDOUT, tables.write_holdout,
                 lambda path: read_csv(path), describe, extra_files)
