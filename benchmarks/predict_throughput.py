#!/usr/bin/env python
"""Prediction throughput: `dlspec predict` on a one-million-row churn CSV, end to end.

    python benchmarks/predict_throughput.py [--rows N] [--repeats R] [--batch-size B]
                                            [--workdir DIR] [--json OUT.json]

1. Builds the CSV by repeating the rows of Churn_Modelling.csv (from
   $DLSPEC_SHARED_DATA, default ../shared/data beside the checkout) with small
   perturbations (credit score, age, balance, salary) until it has N rows
   (default 1,000,000: the file 100 times).
2. Trains the churn spec briefly: `dlspec train specs/churn.yaml --set
   data.source=... --set train.epochs=2 --run-dir DIR`.
3. Runs `dlspec predict DIR/model.onnx big.csv -o out.csv` (onnxruntime) and
   `dlspec predict DIR big.csv -o out.csv --backend numpy` (the NumPy engine),
   each R times, each in a fresh wrapper process whose RUSAGE_CHILDREN gives
   the peak RSS of exactly that one `dlspec` process.

Reported per backend: end-to-end wall time (process start to exit: imports,
model loading, reading, checks, inference, writing), rows/s from it, the rate
`dlspec` itself prints, and peak RSS. The targets for onnxruntime on a 2-core
machine: >= 200,000 rows/s and < 300 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DLSPEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHURN = SHARED / "churn" / "Churn_Modelling.csv"

# Runs one command; prints its wall time and (alone among this process's children) peak RSS.
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
use = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": done.returncode, "wall_s": wall, "peak_rss_mb": use.ru_maxrss / 1024,
                  "cpu_s": use.ru_utime + use.ru_stime, "stderr": done.stderr}))
"""


def build_csv(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` data rows: the churn file repeated, a few numbers nudged each time round."""
    lines = CHURN.read_text(encoding="utf-8").splitlines()
    header, data = lines[0], [line.split(",") for line in lines[1:] if line]
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(header + "\n")
        written, round_ = 0, 0
        while written < rows:
            out = []
            for f in data[:rows - written]:
                f = list(f)
                f[0] = str(int(f[0]) + round_ * len(data))
                f[3] = str(int(f[3]) + rnd.randint(-5, 5))
                f[6] = str(max(18, int(f[6]) + rnd.randint(-2, 2)))
                f[8] = f"{float(f[8]) * (1 + rnd.uniform(-0.01, 0.01)):.2f}"
                f[12] = f"{float(f[12]) * (1 + rnd.uniform(-0.01, 0.01)):.2f}"
                out.append(",".join(f))
            fh.write("\n".join(out) + "\n")
            written += len(out)
            round_ += 1


def dlspec(*args: str) -> list[str]:
    return [sys.executable, "-m", "dlspec", *args]


def measure(cmd: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], capture_output=True,
                          text=True, check=True)
    result = json.loads(done.stdout)
    if result["rc"] != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{result['stderr']}")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--workdir", type=Path, default=None,
                    help="Keep the CSV, run and outputs here (default: a temporary folder).")
    ap.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = ap.parse_args()
    if not CHURN.is_file():
        raise SystemExit(f"{CHURN} is absent (the Kaggle churn data); set DLSPEC_SHARED_DATA")

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        big, run = work / "big.csv", work / "run"
        if not big.exists() or big.read_bytes().count(b"\n") != args.rows + 1:
            print(f"building {big} ({args.rows:,} rows) ...", file=sys.stderr)
            build_csv(big, args.rows)
        if not (run / "model.onnx").exists():
            print("training churn for 2 epochs ...", file=sys.stderr)
            subprocess.run(dlspec("train", str(ROOT / "specs" / "churn.yaml"), "--set",
                                  f"data.source={CHURN}", "--set", "train.epochs=2",
                                  "--run-dir", str(run), "--quiet"),
                           check=True, stdout=subprocess.DEVNULL)
        extra = ["--batch-size", str(args.batch_size)] if args.batch_size else []
        cases = {
            "onnxruntime": dlspec("predict", str(run / "model.onnx"), str(big), "-o",
                                  str(work / "out-onnx.csv"), *extra),
            "numpy": dlspec("predict", str(run), str(big), "-o", str(work / "out-numpy.csv"),
                            "--backend", "numpy", *extra),
        }
        results = {}
        for name, cmd in cases.items():
            runs = [measure(cmd) for _ in range(args.repeats)]
            walls = [r["wall_s"] for r in runs]
            best = min(walls)
            results[name] = {
                "command": " ".join(cmd[2:]).replace(str(work), "$WORK"),
                "wall_s": walls, "rows_per_s_best": args.rows / best,
                "rows_per_s_median": args.rows / statistics.median(walls),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                "cpu_s": [r["cpu_s"] for r in runs],
                "dlspec_says": runs[0]["stderr"].strip().splitlines()[-1],
            }
        a = (work / "out-onnx.csv").read_text().splitlines()[1:1001]
        b = (work / "out-numpy.csv").read_text().splitlines()[1:1001]
        worst = max(abs(float(x.split(",")[1]) - float(y.split(",")[1]))
                    for x, y in zip(a, b, strict=True))

    report = {"rows": args.rows, "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "results": results,
              "onnx_vs_numpy_max_abs_diff_first_1000": worst}
    for name, r in results.items():
        print(f"{name:12s} {r['rows_per_s_best']:>10,.0f} rows/s best "
              f"({r['rows_per_s_median']:,.0f} median; wall {min(r['wall_s']):.2f} s, "
              f"cpu {min(r['cpu_s']):.2f} s)  peak RSS {r['peak_rss_mb']:.0f} MB")
        print(f"{'':12s} {r['dlspec_says']}")
    print(f"onnxruntime vs numpy, first 1,000 rows: max |diff| {worst:.2e}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
