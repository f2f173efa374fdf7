"""Images: read the source (and test set), subset, split, and fit the preprocessing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from dlspec.data.image_prep import ImagePreprocessor
from dlspec.data.images import ImageSet, load_idx_pair, load_image_folder, load_npz
from dlspec.data.split import split_indices
from dlspec.engine.losses import LOSSES
from dlspec.errors import DataError, Diagnostics, Location, ModelError, SpecError
from dlspec.fsio import file_sha256
from dlspec.inputs.base import (
    HOLDOUT_ROWS,
    SPLITS,
    Dataset,
    InputKind,
    Target,
    check_classes,
)
from dlspec.spec.model import Spec, thaw

LABEL = "label"


def _read(src, locate_path: tuple, spec: Spec) -> tuple[ImageSet, list[Path]]:
    """One source (the spec's data or its test entry) as an ImageSet and its files."""
    fmt, source = src["format"], src["source"]
    if fmt == "builtin":
        from dlspec.data.builtin import DATASETS, fetch

        ds = DATASETS[str(source)]
        split = "test" if locate_path == ("data", "test") else "train"
        return ds.load(split), [fetch(ds, f"{split}_{k}") for k in ("images", "labels")]
    path = Path(source)
    if not path.exists():
        raise Diagnostics([SpecError(
            f"data not found: {path} (give another with --set "
            f"{'.'.join(locate_path)}.source=PATH)", spec.locate((*locate_path, "source"), False),
            path=".".join((*locate_path, "source")), code="data-file")])
    if fmt == "idx":
        return load_idx_pair(path, src["labels"]), [path, Path(src["labels"])]
    if fmt == "npz":
        return load_npz(path), [path]
    images = load_image_folder(path)
    return images, sorted(p for p in path.rglob("*") if p.is_file())


def _sha256(files: list[Path]) -> str:
    if len(files) == 1:
        return file_sha256(files[0])
    h = hashlib.sha256()
    for f in files:
        h.update(f"{f.name}:{file_sha256(f)}\n".encode())
    return h.hexdigest()


def _remap(test: ImageSet, classes: list) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in test.classes if c not in index]
    if unknown:
        raise DataError(f"the test set has classes the training data lacks: "
                        f"{', '.join(map(str, unknown[:5]))}", Location(test.source),
                        code="data-classes")
    lookup = np.array([index[c] for c in test.classes], dtype=np.int64)
    return lookup[test.y]


def _select(images: ImageSet, wanted: list | None, spec: Spec) -> ImageSet:
    """Only the images of the ``wanted`` classes (data.classes), relabelled in that order."""
    if not wanted:
        return images
    have = [str(c) for c in images.classes]
    missing = [w for w in wanted if str(w) not in have]
    if missing:
        raise Diagnostics([SpecError(
            f"class {missing[0]!r} is not in {images.source} (its classes: "
            f"{', '.join(have[:20])})", spec.locate(("data", "classes", wanted.index(missing[0])),
                                                   False),
            path="data.classes", code="data-classes")])
    index = np.array([have.index(str(w)) for w in wanted])
    lookup = np.full(len(have), -1, dtype=np.int64)
    lookup[index] = np.arange(len(wanted))
    mapped = lookup[images.y]
    keep = np.flatnonzero(mapped >= 0)
    return ImageSet(images.x[keep], mapped[keep], [images.classes[i] for i in index],
                    images.source)


def _subset(n: int, k: int | None, rng: np.random.Generator) -> np.ndarray:
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(rng.choice(n, size=k, replace=False))


def load_image_dataset(spec: Spec) -> Dataset:
    """Images and labels of every split, preprocessed as the spec says."""
    d = spec.data
    main = {"format": d.format, "source": d.source, "labels": d.labels}
    train, files = _read(main, ("data",), spec)
    test, test_files = _read(d.test, ("data", "test"), spec) if d.test else (None, [])
    if d.format == "builtin" and d.test is None:
        test, test_files = _read({**main}, ("data", "test"), spec)
    train = _select(train, d.classes, spec)
    if test is not None:
        test = _select(test, d.classes, spec)
    where = ("data", "source")
    check_classes(spec.train.target_loss, list(train.classes), LABEL, where, spec.locate)
    rng = np.random.default_rng([spec.seed, 0])
    subset = dict(d.subset or {})
    keep = _subset(len(train), subset.get("train"), rng)
    x_all, y_all = train.x[keep], train.y[keep]
    s = d.split
    task = LOSSES[spec.train.target_loss].task
    stratify = y_all if s.stratify else None
    if test is not None:
        if test.x.shape[1:] != train.x.shape[1:]:
            raise DataError(f"test images are {test.x.shape[1:]}, training images "
                            f"{train.x.shape[1:]}", Location(test.source), code="data-images")
        tkeep = _subset(len(test), subset.get("test"), rng)
        tr, val, _ = split_indices(len(keep), test=0.0, validation=s.validation,
                                   seed=spec.seed, stratify_labels=stratify)
        te = len(keep) + np.arange(len(tkeep))
        x_all = np.concatenate([x_all, test.x[tkeep]])
        y_all = np.concatenate([y_all, _remap(test, train.classes)[tkeep]])
    else:
        tr, val, te = split_indices(len(keep), test=s.test, validation=s.validation,
                                    seed=spec.seed, stratify_labels=stratify)
    rows = dict(zip(SPLITS, (tr, val, te), strict=True))
    pre = ImagePreprocessor.fit(x_all[tr], [thaw(st) for st in d.preprocess])
    name = next(i.name for i in spec.model.inputs if i.kind != "noise")
    x = {k: {name: pre.transform(x_all[r])} for k, r in rows.items()}
    pretrain = None
    if _pretrains_on_all_rows(spec) and len(keep) < len(train):
        # every training image, labelled or not, but the validation and test ones
        held = np.zeros(len(train), dtype=bool)
        for split in ("validation", "test"):
            r = rows[split]
            held[keep[r[r < len(keep)]]] = True
        pretrain = {name: pre.transform(train.x[~held])}
    return Dataset("image", {name: pre}, Target(LABEL, task, list(train.classes)), rows, x,
                   {k: y_all[r] for k, r in rows.items()}, _sha256(files + test_files),
                   raw=x_all, pretrain=pretrain)


def _pretrains_on_all_rows(spec: Spec) -> bool:
    phases = (spec.train.program or {}).get("phases") or ()
    return any(p.get("rbm") and p["rbm"].get("all_rows") for p in phases)


HOLDOUT = "holdout.npz"
_ARRAY = "images"


def write_holdout(ds: Dataset, rows: np.ndarray) -> bytes:
    """Up to 512 held-out raw images, as an .npz."""
    import io

    buf = io.BytesIO()
    np.savez(buf, **{_ARRAY: ds.raw[rows[:HOLDOUT_ROWS]]})
    return buf.getvalue()


def read_holdout(path: Path, array: str = _ARRAY) -> np.ndarray:
    """The raw examples ``write_holdout`` kept."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return z[array]
    except FileNotFoundError:
        raise ModelError("the run's held-out rows are missing", Location(str(path)),
                         code="run-state") from None
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise ModelError(f"the run's held-out rows cannot be read (an .npz with an array "
                         f"'{array}' was expected): {e}", Location(str(path)),
                         code="run-state") from None


def describe(inputs: dict) -> str:
    (name, pre), = inputs.items()
    return (f"images: {' x '.join(map(str, pre.input_shape))} (height x width x channels), "
            f"raw uint8 pixels in the exported model's input '{name}'")


KIND = InputKind("image", ImagePreprocessor, load_image_dataset, HOLDOUT, write_holdout,
                 read_holdout, describe)
