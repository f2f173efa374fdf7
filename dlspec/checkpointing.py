"""A run while it trains: where its checkpoints go, what state it is in, what Ctrl-C
does, and what resuming it checks.

    RUN/run.json      how the run started: spec file, --set overrides, the resolved spec,
                      its SHA-256, the data's SHA-256, the dlspec version
    RUN/status.json   running (with its pid) / interrupted / diverged / finished
    RUN/checkpoints/  the newest checkpoints (``dlspec.checkpoint``)

A resume reloads the spec as the run started it (or as given), and refuses, naming the
difference, a spec, data file or dlspec version other than the run's: only then is the
result bit-identical to the uninterrupted run.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np

from dlspec.checkpoint import (
    folder_of,
    latest_checkpoint,
    read_checkpoint,
    remove_temporaries,
    write_checkpoint,
)
from dlspec.engine.state import Snapshot, TrainState
from dlspec.errors import Location, ModelError, SpecError, path_str
from dlspec.fsio import atomic_write
from dlspec.version import __version__

RUN_FILE, STATUS_FILE = "run.json", "status.json"
PICTURE = "picture/"    # a picture made during training, kept in checkpoints as bytes


class Checkpoints:
    """The saver of one run (``dlspec.engine.state.Saver``): each snapshot becomes the
    next checkpoint file, with the run's identity and the pictures made so far."""

    def __init__(self, run_dir: Path, cfg, identity: dict, seq: int = 0,
                 pictures=None) -> None:
        self.folder = folder_of(run_dir)
        self.every, self.every_steps, self.keep = cfg["every"], cfg["every_steps"], cfg["keep"]
        self.identity, self.seq, self.pictures = identity, seq, pictures
        self.saved: tuple[int, int] | None = None   # (epoch, step) of the newest

    def save(self, snap: Snapshot) -> None:
        info = {"position": {"phase": snap.phase, "epoch": snap.epoch, "batch": snap.batch,
                             "stopped": snap.stopped}, **snap.info}
        arrays = dict(snap.arrays)
        if self.pictures is not None:
            info["pictures"] = self.pictures.listed
            arrays.update({PICTURE + name: np.frombuffer(data, np.uint8)
                           for name, data in self.pictures.files.items()})
        self.seq += 1
        try:
            write_checkpoint(self.folder, self.seq, {**self.identity, "state": info}, arrays,
                             self.keep)
        except OSError as e:
            raise ModelError(f"cannot write a checkpoint: {e.strerror or e}",
                             Location(str(self.folder)), code="write") from None
        self.saved = (len(info["history"]), int(info["steps"]))


def identity(spec, data_sha256: str) -> dict:
    return {"spec_sha256": spec.sha256, "data_sha256": data_sha256,
            "dlspec_version": __version__}


# Run files ---------------------------------------------------------------------------

def write_run_file(run_dir: Path, spec, overrides, data_sha256: str) -> None:
    from dlspec.spec.model import thaw

    record = {"spec_file": str(Path(spec.file).resolve()), "overrides": list(overrides),
              "cwd": os.getcwd(), "spec": thaw(spec.resolved), **identity(spec, data_sha256),
              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "started_ns": time.time_ns()}
    atomic_write(run_dir / RUN_FILE, json.dumps(record, indent=2, default=str).encode())


def read_json(path: Path) -> dict | None:
    """A small JSON object file, or None where it is missing or not one."""
    try:
        if path.stat().st_size > (64 << 20):
            return None
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def set_status(run_dir: Path, state: str, **fields) -> None:
    record = {"state": state, **fields, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if state == "running":
        record.update(pid=os.getpid(), host=socket.gethostname())
    atomic_write(run_dir / STATUS_FILE, json.dumps(record, indent=2).encode())


def alive(status: dict) -> bool:
    """Whether a 'running' status's process still runs (on this host)."""
    if status.get("host") != socket.gethostname():
        return True   # another machine's: take it at its word
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, KeyError, ValueError, TypeError):
        return False
    return True


# Ctrl-C ---------------------------------------------------------------------------------

@contextlib.contextmanager
def interruptible(state: TrainState):
    """The first SIGINT asks the loop to checkpoint after this step and stop
    (``state.stop``); a second raises KeyboardInterrupt at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame) -> None:
        if state.stop:
            raise KeyboardInterrupt
        state.stop = True

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# Resuming -------------------------------------------------------------------------------

def read_run(run_dir: Path) -> tuple[Path, dict, dict]:
    """(run dir, run.json, status.json) of a run to resume.

    Raises:
        ModelError: not a run directory, or one without its run.json.
    """
    p = Path(run_dir)
    if p.is_file() and p.name == "latest":
        p = p.parent / p.read_text().strip()
    p = p.resolve() if p.is_symlink() else p
    if not p.is_dir():
        why = "it is a file" if p.exists() else "it does not exist"
        raise ModelError(f"not a run directory ({why})", Location(str(run_dir)),
                         code="run-missing")
    record = read_json(p / RUN_FILE)
    if record is None or not isinstance(record.get("spec_file"), str) or \
            not isinstance(record.get("overrides"), list):
        raise ModelError(f"not a run directory that can be resumed: no readable {RUN_FILE}",
                         Location(str(run_dir)), code="run-missing")
    return p, record, read_json(p / STATUS_FILE) or {}


def spec_changes(spec, record: dict) -> list[SpecError]:
    """What differs between the spec the run started with and ``spec``, each located."""
    from dlspec.spec.model import thaw

    new = json.loads(json.dumps(thaw(spec.resolved), default=str))
    found: list[tuple[tuple, object, object]] = []
    _diff(record.get("spec"), new, (), found)
    errors = []
    for path, old, now in found[:20]:
        where = spec.locate(path, False) if _has(new, path) else spec.locate(path[:-1], True)
        errors.append(SpecError(
            f"changed since the run started: {_short(old)} then, {_short(now)} now; resume "
            "with the spec as it was, or train anew", where, path=path_str(path),
            code="resume-spec"))
    if not errors:  # same content, another hash: say so with the two hashes
        errors.append(SpecError(f"the spec's SHA-256 is {spec.sha256}, the run's "
                                f"{record.get('spec_sha256')}", spec.locate((), False),
                                code="resume-spec"))
    return errors


def _diff(old, new, path: tuple, out: list) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for k in dict.fromkeys([*old, *new]):
            _diff(old.get(k, _MISSING), new.get(k, _MISSING), (*path, k), out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, (*path, i), out)
    elif old != new:
        out.append((path, old, new))


_MISSING = "(not set)"


def _has(data, path: tuple) -> bool:
    for k in path:
        try:
            data = data[k]
        except (KeyError, IndexError, TypeError):
            return False
    return data is not _MISSING


def _short(value) -> str:
    text = value if value is _MISSING else json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def load_snapshot(run_dir: Path, expect: dict) -> tuple[Snapshot | None, int, dict]:
    """The newest checkpoint of a run as a snapshot (None: the run has none yet, it
    starts over), its number, and the pictures it holds (file -> bytes, with "listed").

    Raises:
        ModelError: a damaged checkpoint, or one of another spec, data or version.
    """
    folder = folder_of(run_dir)
    remove_temporaries(folder)
    path = latest_checkpoint(run_dir)
    if path is None:
        if (folder / "latest").exists():
            raise ModelError("damaged checkpoint pointer: it names no checkpoint file",
                             Location(str(folder / "latest")), code="checkpoint")
        return None, 0, {}
    if not path.is_file():
        raise ModelError("the newest checkpoint is missing", Location(str(path)),
                         code="checkpoint")
    manifest, arrays = read_checkpoint(path)
    for key, what in (("spec_sha256", "spec"), ("data_sha256", "data"),
                      ("dlspec_version", "dlspec version")):
        if manifest.get(key) != expect[key]:
            raise ModelError(f"this checkpoint was written for {what} {manifest.get(key)}, "
                             f"the run is {expect[key]}", Location(str(path)),
                             code="checkpoint")
    try:
        info = manifest["state"]
        pos = info["position"]
        snap = Snapshot(int(pos["phase"]), int(pos["epoch"]), int(pos["batch"]),
                        bool(pos["stopped"]), info, {k: v for k, v in arrays.items()
                                                     if not k.startswith(PICTURE)})
        pictures = {k.removeprefix(PICTURE): v.tobytes() for k, v in arrays.items()
                    if k.startswith(PICTURE)}
        listed = info.get("pictures", [])
        if not isinstance(listed, list) or "flat" not in arrays:
            raise ValueError("its state is incomplete")
    except (KeyError, TypeError, ValueError) as e:
        what = f"its state lacks {e}" if isinstance(e, KeyError) else str(e)
        raise ModelError(f"damaged checkpoint: {what}", Location(str(path)),
                         code="checkpoint") from None
    seq = int(path.stem.removeprefix("ckpt-"))
    return snap, seq, {"files": pictures, "listed": listed}
