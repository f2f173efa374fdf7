"""``dlspec runs``: every run under a runs folder, newest first, with its state (finished,
interrupted at epoch E, diverged, running), epochs, best validation value, test
value and training time, read from its files without loading any weights."""

from __future__ import annotations

import json
from pathlib import Path

from dlspec.checkpoint import latest_checkpoint, read_manifest
from dlspec.checkpointing import RUN_FILE, STATUS_FILE, alive, read_json
from dlspec.errors import ModelError

_PREFERRED = ("accuracy", "auc", "mae", "loss")   # which value a row shows, in this order


def list_runs(root: str | Path = "runs", name: str | None = None) -> list[dict]:
    """One dict per run directory under ``root`` (of spec ``name`` alone when given):
    id, state, epochs, best_validation, test, seconds; newest first."""
    root = Path(root)
    folders = [root / name] if name else sorted(p for p in root.glob("*") if p.is_dir())
    rows = []
    for folder in folders:
        for run in folder.glob("*"):
            if run.is_dir() and not run.is_symlink() and not run.name.startswith(".") and \
                    ((run / RUN_FILE).is_file() or (run / "metrics.json").is_file()):
                rows.append(describe(run))
    return sorted(rows, key=lambda r: r.pop("order"), reverse=True)


def describe(run: Path) -> dict:
    status = read_json(run / STATUS_FILE) or {}
    metrics = read_json(run / "metrics.json")
    record = read_json(run / RUN_FILE) or {}
    state = status.get("state") or ("finished" if metrics else "unknown")
    row = {"id": f"{run.parent.name}/{run.name}", "path": str(run), "state": state,
           "started": str(record.get("started", run.name)), "epochs": None,
           "best_validation": None, "test": None, "seconds": None,
           "order": _started_ns(record, run)}
    if state == "finished" and metrics:
        row["epochs"] = metrics.get("epochs_run")
        row["seconds"] = metrics.get("training_seconds")
        row["test"] = _pick(metrics.get("test") or {})
        history = _history(run)
    else:
        history, seconds = _checkpoint_history(run)
        row["epochs"], row["seconds"] = len(history), seconds
        if state == "running" and not alive(status):
            state = "killed"
        if state in ("interrupted", "killed"):
            row["state"] = f"interrupted at epoch {status.get('epoch', len(history))}" \
                if state == "interrupted" else f"interrupted at epoch {len(history)} (killed)"
    row["best_validation"] = _best(history)
    return row


def _started_ns(record: dict, run: Path) -> int:
    """When the run started, to the nanosecond (run ids count seconds): run.json's
    record, else (a run from before checkpoints) when its folder last changed."""
    found = record.get("started_ns")
    if isinstance(found, int):
        return found
    try:
        return run.stat().st_mtime_ns
    except OSError:
        return 0


def _pick(split: dict) -> tuple[str, float] | None:
    for key in _PREFERRED:
        if isinstance(split.get(key), int | float):
            return key, float(split[key])
    return None


def _best(history: list[dict]) -> tuple[str, float] | None:
    """The best validation value over the epochs: the highest accuracy or AUC, else the
    lowest error or loss."""
    for key in _PREFERRED:
        values = [row[f"val_{key}"] for row in history
                  if isinstance(row.get(f"val_{key}"), int | float)]
        if values:
            return f"val_{key}", (max if key in ("accuracy", "auc") else min)(values)
    return None


def _history(run: Path) -> list[dict]:
    import csv

    try:
        with open(run / "history.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError:
        return []
    return [{k: _number(v) for k, v in row.items()} for row in rows]


def _number(text: str):
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def _checkpoint_history(run: Path) -> tuple[list[dict], float | None]:
    path = latest_checkpoint(run)
    if path is None:
        return [], None
    try:
        state = read_manifest(path).get("state") or {}
    except ModelError:
        return [], None
    history = state.get("history")
    history = history if isinstance(history, list) else []
    seconds = state.get("seconds")
    return [h for h in history if isinstance(h, dict)], \
        round(seconds, 3) if isinstance(seconds, int | float) else None


def as_json(rows: list[dict]) -> str:
    return json.dumps(rows, indent=2)
