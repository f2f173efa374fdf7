"""Which kind of data a spec names: a CSV table, IDX/NPZ images, a folder, a built-in set."""

from __future__ import annotations

from pathlib import Path

FORMATS = ("auto", "csv", "idx", "npz", "image_folder", "builtin")
IMAGE_FORMATS = frozenset({"idx", "npz", "image_folder", "builtin"})


def infer_format(source: str, base: Path, declared: str = "auto") -> str:
    """The format of ``source`` (relative to ``base``): declared, or guessed from the name."""
    if declared != "auto":
        return declared
    from dlspec.data.builtin import DATASETS

    path = base / source
    if source in DATASETS and not path.exists():
        return "builtin"
    if path.is_dir():
        return "image_folder"
    name = path.name.lower()
    if name.endswith(".npz"):
        return "npz"
    if "ubyte" in name or name.endswith((".idx", ".idx.gz")):
        return "idx"
    return "csv"
