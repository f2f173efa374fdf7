"""Run directories written by hand, for report tests that need no training: each holds
what a run holds (the files a run directory must have, metrics.json, history.csv)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

CLASSIFIER = {
    "name": "toy", "dlspec_version": "0.1.0", "spec_sha256": "a" * 64, "data_sha256": "b" * 64,
    "task": "binary", "classes": ["no", "yes"], "epochs_run": 4, "best_epoch": 2,
    "stopped_early": True, "steps": 40, "training_seconds": 0.05,
    "validation": {"rows": 20, "loss": 0.4, "accuracy": 0.8,
                   "confusion_matrix": [[10, 2], [2, 6]]},
    "test": {"rows": 40, "loss": 0.35, "accuracy": 0.85,
             "confusion_matrix": [[20, 3], [3, 14]]},
    "export_parity": {"rows": 40, "batch_sizes": [1, 40], "max_abs_diff": 1e-7},
}
HISTORY = [{"epoch": e, "loss": 1 / e, "accuracy": 0.5 + e / 10, "val_loss": 1.1 / e,
            "val_accuracy": 0.5 + e / 11, "seconds": e * 0.01} for e in range(1, 5)]
LOCK = {"dlspec": 1, "name": "toy", "seed": 0,
        "train": {"loss": "binary_crossentropy", "epochs": 4, "batch_size": 10},
        "lock": {"data_sha256": "b" * 64, "spec_sha256": "a" * 64}}


def history_text(rows: list[dict]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)),
                       lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def fake_run(path: Path, metrics: dict | None = None, history: list[dict] | None = None,
             lock: dict | None = None, files: dict[str, bytes] | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "spec.lock.yaml").write_text(yaml.safe_dump(lock if lock is not None else LOCK,
                                                        sort_keys=False))
    for name in ("weights.npz", "weights.json", "preprocess.json"):
        (path / name).write_bytes(b"{}")
    (path / "metrics.json").write_text(json.dumps(metrics if metrics is not None
                                                  else CLASSIFIER))
    (path / "history.csv").write_text(history_text(history if history is not None
                                                   else HISTORY))
    for name, data in (files or {}).items():
        (path / name).write_bytes(data)
    return path
