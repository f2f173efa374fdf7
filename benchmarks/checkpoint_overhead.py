#!/usr/bin/env python
"""What checkpointing every epoch costs the MNIST CNN (specs/mnist_cnn.yaml): training with
checkpoints vs without, paired and interleaved.

    DLSPEC_DATA=/path/to/data python benchmarks/checkpoint_overhead.py [--pairs N]
        [--epochs E] [--rows R] [--json OUT.json]

Each pair trains the same spec twice from the same seed, once with a checkpoint written
at the end of every epoch (``train.checkpoint: {every: 1}``, into a temporary folder under
runs/, on the same disk as the runs) and once without, in alternating order (ABBA...), so a machine
whose load drifts slows both sides alike. Reported: the median of the per-pair ratios
(with / without) of wall time and of this process's CPU time (less sensitive to other
processes on a shared machine), their spread, and the time of the checkpoint writes
themselves (the directly measured cost: their sum over the run's training time). The
data are loaded and the network compiled outside the timed region, after one untimed
warm-up run; the timed region is ``fit()``, evaluation of the validation split every
epoch included.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlspec.checkpointing import Checkpoints, identity  # noqa: E402
from dlspec.engine.state import TrainState  # noqa: E402
from dlspec.engine.trainer import fit  # noqa: E402
from dlspec.inputs import load_dataset  # noqa: E402
from dlspec.spec.load import load_spec  # noqa: E402
from dlspec.training import _augment, compile_network, lr_scale  # noqa: E402


class TimedCheckpoints(Checkpoints):
    """Checkpoints that also add up how long their writes take."""

    seconds = 0.0

    def save(self, snap) -> None:
        t = time.perf_counter()
        super().save(snap)
        self.seconds += time.perf_counter() - t


def one_run(spec, ds, checkpoints: bool, folder: Path) -> tuple[float, float, float]:
    """(training seconds, CPU seconds of this process, seconds spent writing
    checkpoints)."""
    compiled, net = compile_network(spec, ds)
    state = TrainState(spec.train.seed)
    if checkpoints:
        state.saver = TimedCheckpoints(folder, spec.train.checkpoint,
                                       identity(spec, ds.sha256))
    t, cpu = time.perf_counter(), time.process_time()
    fit(net, spec.train, ds.target.task, ds.x, ds.y, augment=_augment(spec, ds),
        lr_scale=lr_scale(net), program=compiled.program, state=state)
    return (time.perf_counter() - t, time.process_time() - cpu,
            state.saver.seconds if checkpoints else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--rows", type=int, default=0, help="train on this many rows (0: all)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sets = [f"train.epochs={args.epochs}", "train.early_stopping=null"]
    if args.rows:
        sets.append(f"data.subset={{train: {args.rows}}}")
    spec = load_spec(ROOT / "specs" / "mnist_cnn.yaml", sets)
    ds = load_dataset(spec)
    rows = []
    (ROOT / "runs").mkdir(exist_ok=True)   # ignored by git, on the runs' disk
    with tempfile.TemporaryDirectory(dir=ROOT / "runs") as tmp:
        one_run(spec, ds, False, Path(tmp) / "warm-up")  # first-call costs, not counted
        for i in range(args.pairs):
            order = (True, False) if i % 2 == 0 else (False, True)
            pair = {}
            for with_ckpt in order:
                seconds, cpu, writing = one_run(spec, ds, with_ckpt, Path(tmp) / f"run{i}")
                side = "with" if with_ckpt else "without"
                pair[side], pair[f"{side}_cpu"] = seconds, cpu
                if with_ckpt:
                    pair["writing"] = writing
            pair["ratio"] = pair["with"] / pair["without"]
            pair["cpu_ratio"] = pair["with_cpu"] / pair["without_cpu"]
            rows.append(pair)
            print(f"pair {i + 1}: without {pair['without']:.2f} s, with {pair['with']:.2f} s "
                  f"(writes {pair['writing']:.3f} s), ratio {pair['ratio']:.4f}, CPU time "
                  f"ratio {pair['cpu_ratio']:.4f}", flush=True)
    report = {"spec": "specs/mnist_cnn.yaml", "epochs": args.epochs,
              "train_rows": len(ds.y["train"]), "pairs": rows}
    for key in ("ratio", "cpu_ratio"):
        values = [r[key] for r in rows]
        report[f"median_{key}"] = statistics.median(values)
        report[f"range_{key}"] = [min(values), max(values)]
    report["median_write_share"] = statistics.median(r["writing"] / r["with"] for r in rows)
    print(f"median ratio with/without checkpoints: wall {report['median_ratio']:.4f} "
          f"(range {report['range_ratio'][0]:.4f} to {report['range_ratio'][1]:.4f}), CPU "
          f"{report['median_cpu_ratio']:.4f} (range {report['range_cpu_ratio'][0]:.4f} to "
          f"{report['range_cpu_ratio'][1]:.4f}); the checkpoint writes themselves are "
          f"{100 * report['median_write_share']:.2f}% of training time")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
