"""Tables at scale: load + fit + train and predict on 1M- and 10M-row resamples of the churn CSV.

    python benchmarks/tables.py                        # 1M rows, this checkout
    python benchmarks/tables.py --rows 1e6,1e7 --before /tmp/dlspec-0184870 \\
        [--pyarrow DIR] [--repeat 3] [--cache DIR] [--json out.json]

The resamples (rows drawn with replacement, seed 0, from ../shared/data/churn's 10,000)
are written once into the cache folder (default: $TMPDIR/dlspec-tables), never into the
checkout. ``--before`` names another dlspec checkout (``git archive COMMIT | tar -x -C
DIR``); every measurement runs in a child process per checkout, so each has its own
peak RSS (``ru_maxrss`` of the child). Each checkout's modules are byte-compiled first,
as an installed package's are, so that no child spends its time compiling them.
``--pyarrow DIR`` adds a column run with DIR (a ``pip install --target DIR pyarrow``) on
the children's path.

Per checkout and size:
- load: ``load_spec`` + the table input's ``load`` (read the CSV, encode, split, fit the
  preprocessing, transform every split): seconds and peak RSS;
- train: ``dlspec train specs/churn.yaml`` for one epoch at batch 256 (load, the epoch,
  metrics, export and its parity check): wall seconds and peak RSS;
- predict: ``dlspec predict`` of the resample through one exported churn model (trained
  once, by this checkout, on the real 10,000 rows) to a CSV file: rows/s and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHURN = ROOT.parent / "shared" / "data" / "churn" / "Churn_Modelling.csv"
SPEC = ROOT / "specs" / "churn.yaml"

_LOAD = """
import resource, sys, time
t = time.perf_counter()
from dlspec.spec.load import load_spec
from dlspec.inputs.table import load_table
spec = load_spec(sys.argv[1], [f"data.source={sys.argv[2]}"])
ds = load_table(spec)
took = time.perf_counter() - t
x = ds.x["train"][next(iter(ds.x["train"]))]
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, x.shape[0], x.dtype)
"""

_RUN = """
import resource, runpy, sys, time
t = time.perf_counter()
sys.argv = ["dlspec", *sys.argv[1:]]
try:
    runpy.run_module("dlspec", run_name="__main__")
except SystemExit as e:
    if e.code:
        raise
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
      file=sys.stderr)
"""


def resample(rows: int, cache: Path) -> Path:
    """The churn CSV resampled to ``rows`` data rows (cached by size)."""
    out = cache / f"churn_{rows}.csv"
    if out.exists():
        return out
    lines = CHURN.read_bytes().splitlines(keepends=True)
    header, body = lines[0], np.array(lines[1:], dtype=object)
    rng = np.random.default_rng(0)
    tmp = out.with_suffix(".part")
    with open(tmp, "wb") as fh:
        fh.write(header)
        for start in range(0, rows, 1_000_000):
            pick = rng.integers(0, len(body), min(1_000_000, rows - start))
            fh.write(b"".join(body[pick].tolist()))
    tmp.replace(out)
    return out


def child(checkout: Path, code: str, args: list[str], extra: str | None,
          cwd: Path) -> tuple[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(checkout), *([extra] if extra else [])])}
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=cwd,
                       capture_output=True, text=True, check=False)
    if r.returncode:
        raise RuntimeError(f"{checkout}: {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return r.stdout, r.stderr


def measure(name: str, checkout: Path, extra: str | None, data: Path, rows: int,
            model: Path, work: Path, only: set[str]) -> dict:
    spec = checkout / "specs" / "churn.yaml"
    result: dict = {"checkout": name, "rows": rows}
    if "load" in only:
        out, _ = child(checkout, _LOAD, [str(spec), str(data)], extra, work)
        load_s, load_rss, train_rows, dtype = out.split()
        result.update(load_s=float(load_s), load_peak_rss=int(load_rss),
                      train_rows=int(train_rows), train_dtype=dtype)
    if "train" in only:
        run_dir = work / f"run-{name}-{rows}"
        _, err = child(checkout, _RUN, ["train", str(spec), "--set", f"data.source={data}",
                                        "--set", "train.epochs=1", "--set",
                                        "train.batch_size=256", "--quiet", "--run-dir",
                                        str(run_dir)], extra, work)
        shutil.rmtree(run_dir)  # the next repetition trains into the same folder
        train_s, train_rss = err.strip().splitlines()[-1].split()
        result.update(train_s=float(train_s), train_peak_rss=int(train_rss))
    if "predict" in only:
        _, err = child(checkout, _RUN, ["predict", str(model), str(data), "-o",
                                        str(work / "pred.csv")], extra, work)
        pred_s, pred_rss = err.strip().splitlines()[-1].split()
        result.update(predict_s=float(pred_s), predict_rows_per_s=rows / float(pred_s),
                      predict_peak_rss=int(pred_rss))
    print(json.dumps(result), file=sys.stderr, flush=True)
    return result


def medians(results: list[dict]) -> list[dict]:
    """One row per (rows, checkout): the median of each measurement over the repetitions."""
    groups: dict[tuple, list[dict]] = {}
    for r in results:
        groups.setdefault((r["rows"], r["checkout"]), []).append(r)
    out = []
    for (rows, name), rs in groups.items():
        row = {"checkout": name, "rows": rows, "repeats": len(rs)}
        for key in rs[0]:
            if key not in row and isinstance(rs[0][key], (int, float)):
                row[key] = float(np.median([r[key] for r in rs]))
        out.append(row)
    return out


def ratios(rows: list[dict]) -> str:
    """Speed-ups of every checkout over 'before' (time before / time now), per size."""
    keys = [("load", "load_s"), ("train", "train_s"), ("predict", "predict_s")]
    lines = ["| rows | checkout | " + " | ".join(f"{k} speed-up" for k, _ in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for r in rows:
        base = next((b for b in rows if b["rows"] == r["rows"] and b["checkout"] == "before"),
                    None)
        if base is None or r is base:
            continue
        cells = [f"{base[k] / r[k]:.2f}x" if k in r and k in base else "-" for _, k in keys]
        lines.append(f"| {r['rows']:,} | {r['checkout']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def table(results: list[dict]) -> str:
    mb = 1 << 20
    columns = [("load + fit (s)", "load_s", 1, ".2f"), ("load peak RSS (MB)", "load_peak_rss",
                                                        mb, ",.0f"),
               ("train 1 epoch (s)", "train_s", 1, ".2f"),
               ("train peak RSS (MB)", "train_peak_rss", mb, ",.0f"),
               ("predict (rows/s)", "predict_rows_per_s", 1, ",.0f"),
               ("predict peak RSS (MB)", "predict_peak_rss", mb, ",.0f")]
    lines = ["| rows | checkout | " + " | ".join(c[0] for c in columns) + " |",
             "|---|---|" + "---|" * len(columns)]
    for r in results:
        cells = [format(r[key] / unit, f) if key in r else "-" for _, key, unit, f in columns]
        lines.append(f"| {r['rows']:,} | {r['checkout']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="1e6", help="comma-separated sizes (default 1e6)")
    p.add_argument("--before", type=Path, help="another dlspec checkout to compare with")
    p.add_argument("--now", type=Path, default=ROOT,
                   help="the checkout measured as 'now' (default: this one)")
    p.add_argument("--pyarrow", help="a folder holding pyarrow, for a 'with pyarrow' column")
    p.add_argument("--cache", type=Path,
                   default=Path(tempfile.gettempdir()) / "dlspec-tables")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--only", default="load,train,predict",
                   help="what to measure: a comma-separated subset of load,train,predict")
    p.add_argument("--repeat", type=int, default=1,
                   help="repetitions, the checkouts interleaved in each; medians reported")
    a = p.parse_args(argv)
    if not CHURN.exists():
        print(f"the churn CSV is not at {CHURN}", file=sys.stderr)
        return 1
    a.cache.mkdir(parents=True, exist_ok=True)
    sizes = [int(float(s)) for s in a.rows.split(",")]
    now = a.now.resolve()
    checkouts = [("now", now, None)]
    if a.pyarrow:
        checkouts.append(("now + pyarrow", now, a.pyarrow))
    if a.before:
        checkouts.insert(0, ("before", a.before.resolve(), None))
    for _, checkout, _ in checkouts:  # as pip install does: no child compiles dlspec's source
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(checkout / "dlspec")],
                       check=True)
    with tempfile.TemporaryDirectory(dir=a.cache) as tmp:
        work = Path(tmp)
        child(now, _RUN, ["train", str(SPEC), "--set", f"data.source={CHURN}", "--set",
                           "train.epochs=2", "--quiet", "--run-dir", str(work / "model")],
              None, work)
        model = work / "model" / "model.onnx"
        results = []
        for rows in sizes:
            data = resample(rows, a.cache)
            for _ in range(a.repeat):
                for name, checkout, extra in checkouts:
                    results.append(measure(name, checkout, extra, data, rows, model, work,
                                           set(a.only.split(","))))
    summary = medians(results)
    text = table(summary)
    print(text)
    speedups = ratios(summary)
    if speedups:
        print()
        print(speedups)
    if a.json:
        a.json.write_text(json.dumps({"time": time.strftime("%Y-%m-%d %H:%M:%S"),
                                      "medians": summary, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
