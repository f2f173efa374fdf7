"""Input kinds: a table, images, sequences or text, each one record (``InputKind``) with
everything its kind changes: how the data loads and is prepared, its fitted transform,
the held-out rows a run keeps. Its ONNX emission and prediction reader are registered by
the same name in ``dlspec.onnx.preprocess`` and ``dlspec.runtime.readers``.

    ds = load_dataset(spec)        # -> Dataset: splits by input name, the target, raw rows
"""

from __future__ import annotations

from dlspec.inputs import image, sequence, table, text
from dlspec.inputs.base import SPLITS, Dataset, InputKind, Target
from dlspec.spec.model import Spec
from dlspec.spec.normalize import data_kind

KINDS: dict[str, InputKind] = {k.name: k for k in (table.KIND, image.KIND, sequence.KIND,
                                                   text.KIND)}


def load_dataset(spec: Spec) -> Dataset:
    """Read, check, split and prepare the spec's data for its model's inputs.

    Raises:
        Diagnostics / DataError: a missing file, columns the spec names that the header
            lacks, bad cells, or classes that do not fit the loss.
    """
    return KINDS[data_kind(spec.resolved["data"])].load(spec)


__all__ = ["KINDS", "SPLITS", "Dataset", "InputKind", "Target", "load_dataset"]
