"""The run directory: what ``train`` writes, and how (atomically, without pickle).

    runs/<name>/<run-id>/
        spec.lock.yaml    the resolved spec (every default filled) + data SHA-256
        weights.npz       parameters by name (plain .npy members, no pickle)
        weights.json      manifest: format, spec SHA-256, shape/dtype/SHA-256 per array
        optimizer.npz     every optimizer's state, as <optimizer>/<buffer>
        run.json          how the run started (spec file, --set overrides, hashes)
        status.json       running, interrupted, diverged or finished
        checkpoints/      while it trains (dlspec.checkpoint); removed once finished
        preprocess.json   fitted preprocessing and the target's classes
        metrics.json      validation/test metrics, confusion matrices, timings
        history.csv       one row per epoch
        curve.svg         the training curve
        model.onnx        the exported model
        report.html       the run's page (dlspec/report; unless train(report=False))
        holdout_predictions.csv   a regression's held-out rows, true and predicted
    runs/<name>/latest -> <run-id>

Every file is written atomically (a temporary file, fsync, rename); the results of a
finished run come last, then status.json says "finished".
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import time
import zipfile
from pathlib import Path

import numpy as np

from dlspec.errors import Location, ModelError
from dlspec.fsio import atomic_write

WEIGHTS_FORMAT = 1
LATEST = "latest"
REQUIRED = ("spec.lock.yaml", "weights.npz", "weights.json", "preprocess.json")
WEIGHTS = ("weights.npz", "weights.json")   # what an unfinished run has checkpoints for
MAX_ARRAY_BYTES = 8 << 30


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def _cannot_write(path: Path, e: OSError) -> ModelError:
    return ModelError(f"cannot write here: {e.strerror or e}", Location(str(path)),
                      code="write")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename.

    Raises:
        ModelError: the file cannot be written (a missing folder, permissions, a full disk).
    """
    try:
        atomic_write(path, data)
    except OSError as e:
        raise _cannot_write(Path(path), e) from None


def check_run_dir(run_dir: Path) -> None:
    """Refuse early a run directory that exists with content, or whose parent cannot be made.

    Raises:
        ModelError: with the path and the reason.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise ModelError("the run directory already exists and is not empty",
                         Location(str(run_dir)), code="run-exists")
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cannot_write(run_dir, e) from None
    if not os.access(run_dir.parent, os.W_OK):
        raise ModelError("cannot write here: permission denied", Location(str(run_dir)),
                         code="write")


def point_latest(run_dir: Path) -> None:
    """Make ``<parent>/latest`` point at ``run_dir`` (a relative symlink, swapped atomically)."""
    link = run_dir.parent / LATEST
    tmp = run_dir.parent / f".{LATEST}.{secrets.token_hex(4)}"
    try:
        os.symlink(run_dir.name, tmp)
        os.replace(tmp, link)
    except OSError:  # no symlinks here: a text file naming the run
        write_atomic(link, run_dir.name.encode())


def resolve_run_dir(path: str | Path) -> Path:
    """The run directory ``path`` names (following a ``latest`` pointer file)."""
    p = Path(path)
    if p.is_file() and p.name == LATEST:
        p = p.parent / p.read_text().strip()
    if not p.is_dir():
        raise ModelError("not a run directory (it does not exist)", Location(str(path)),
                         code="run-missing")
    missing = [f for f in REQUIRED if not (p / f).is_file()]
    if set(missing) <= set(WEIGHTS) and (p / "checkpoints" / "latest").is_file():
        missing = []  # an unfinished run: its newest checkpoint holds the weights
    if missing:
        raise ModelError(f"not a complete run directory: missing {', '.join(missing)}",
                         Location(str(path)), code="run-incomplete")
    return p


def run_of_model(model: Path, runs_root: Path = Path("runs")) -> str:
    """Which run directory an exported model file came from, in words, for a user who gave
    the file where a run directory is needed: the run holding the same model bytes, else
    one trained from the same spec, else where its runs live (named in its metadata)."""
    import onnx

    try:
        data = model.read_bytes()
        meta = {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    except Exception:  # noqa: BLE001 - not a readable ONNX model: nothing to say about it
        return "give the run directory the model was trained in"
    name = meta.get("dlspec.name")
    if not name:
        return "this model has no dlspec metadata naming its run"
    runs = sorted((p for p in (runs_root / name).glob("*") if p.is_dir() and not p.is_symlink()
                   and (p / "model.onnx").is_file()), reverse=True)  # run ids sort by time
    for run in runs:
        if (run / "model.onnx").read_bytes() == data:
            return f"it is the model of {run}: give that directory"
    for run in runs:
        try:
            trained = json.loads((run / "weights.json").read_text())["spec_sha256"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if trained == meta.get("dlspec.spec_sha256"):
            return f"{run} was trained from the same spec: give that directory"
    return (f"its metadata names it '{name}', whose runs live in {runs_root / name}/<run-id>/ "
            f"({runs_root / name / LATEST} is the newest); give the one it came from")


def model_file(path: str | Path) -> Path:
    """The .onnx file ``path`` names: itself, or a run directory's (or ``latest``'s) model."""
    p = Path(path)
    return resolve_run_dir(p) / "model.onnx" if p.is_dir() or p.name == LATEST else p


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_arrays(arrays: dict[str, np.ndarray], spec_sha256: str) -> tuple[bytes, bytes]:
    """(npz bytes, manifest JSON bytes) for float32 ``arrays``."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.ascontiguousarray(v) for k, v in arrays.items()})
    manifest = {"format": WEIGHTS_FORMAT, "spec_sha256": spec_sha256, "arrays": {
        k: {"shape": list(v.shape), "dtype": str(v.dtype),
            "sha256": sha256(np.ascontiguousarray(v).tobytes())} for k, v in arrays.items()}}
    return buf.getvalue(), json.dumps(manifest, indent=2).encode()


def load_arrays(npz: Path, manifest_path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays checked against their manifest before allocation; no pickle.

    Raises:
        ModelError: a malformed file, or any mismatch with the manifest.
    """
    where = Location(str(npz))
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest["format"] != WEIGHTS_FORMAT:
            raise ValueError(f"format {manifest['format']} is not supported")
        expect = manifest["arrays"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"invalid weights manifest: {e}", Location(str(manifest_path)),
                         code="weights") from None
    out = {}
    try:
        with zipfile.ZipFile(npz) as zf:
            members = {n.removesuffix(".npy"): n for n in zf.namelist()}
            if set(members) != set(expect):
                raise ValueError(f"arrays {sorted(members)} differ from the manifest's "
                                 f"{sorted(expect)}")
            for name, member in members.items():
                info = expect[name]
                with zf.open(member) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, fortran, dtype = read_header(fh)
                    if dtype != np.dtype("<f4") or list(shape) != info["shape"] or fortran:
                        raise ValueError(f"{name}: {dtype} {shape} does not match the "
                                         f"manifest's {info['dtype']} {info['shape']}")
                    size = int(np.prod(shape, dtype=np.int64)) * 4
                    if size > MAX_ARRAY_BYTES or zf.getinfo(member).file_size - fh.tell() != size:
                        raise ValueError(f"{name}: stored size does not match its shape")
                    arr = np.frombuffer(fh.read(size), dtype="<f4").reshape(shape)
                if sha256(arr.tobytes()) != info["sha256"]:
                    raise ValueError(f"{name}: SHA-256 differs from the manifest")
                out[name] = arr.astype(np.float32)
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as e:
        raise ModelError(f"invalid weights: {e}", where, code="weights") from None
    return out, manifest


# Run contents --------------------------------------------------------------------------

PREPROCESS_FORMAT = 2   # preprocess.json: {"format": 2, "inputs": {name: state}, "target"}


def history_csv(history: list[dict]) -> bytes:
    import csv

    out = io.StringIO()
    keys = list(dict.fromkeys(k for row in history for k in row))
    w = csv.DictWriter(out, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    return out.getvalue().encode()


def preprocess_json(inputs: dict, target) -> bytes:
    """The fitted transform of every input, and the target."""
    return json.dumps({"format": PREPROCESS_FORMAT,
                       "inputs": {name: pre.to_dict() for name, pre in inputs.items()},
                       "target": target.to_dict()}, indent=2).encode()
