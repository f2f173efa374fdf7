"""`dlspec train` on generated, plausible specs: it trains (exit 0) or stops with located
messages (exit 1), never an internal error or a traceback; and validate agrees with it.

Each example is a spec drawn across the layer, activation, loss, optimizer, metric and
task space, on the shipped data (examples/data/breast_cancer.csv as a table,
examples/data/digits.npz as images) and on two small sequences written here (a noisy
sine as a dated CSV, and an .npz of windows), with about half of the models ending the
way their task wants. It is validated and trained for one short epoch, both through the
command line, in process:

- ``dlspec train`` exits 0; or 1, every problem it prints located (``FILE:LINE[:COL]:``,
  in the spec or the data file); or 3, a diverged run, which is a result. Never 70 (an
  internal error), never a traceback, never a Python warning.
- ``dlspec validate`` and ``dlspec train`` agree: a spec that validate rejects, train
  rejects too; and when train rejects a spec with a ``SpecError`` (a problem located in
  the spec, not a ``DataError`` in a data file), validate must have rejected it as well,
  unless the error's code is in ``NEEDS_VALUES``: reasons only the data's values give
  (the classes found, what the trained model computes on them), which validate does
  not read. Everything else a SpecError says is
  knowable from the spec and the data's header (a CSV's columns, an array file's
  shapes; for a series, validate reads its values too), so validate must report it.

Both commands run in process through Typer's CliRunner, so exit codes and messages are
the command line's own; the exception behind an exit 1 is read from the CLI's reporter.
The CI run draws 300 examples (about 15 s); the long run is opt-in (its thousands of
examples would dominate the suite): ``DLSPEC_TRAIN_FUZZ=3000 python -m pytest -m slow -s
tests/cli/test_train_fuzz.py`` prints its counts.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import warnings
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dlspec.cli import app
from dlspec.engine.losses import LOSSES
from dlspec.engine.metrics import METRICS
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.errors import Diagnostic, Diagnostics, SpecError
from dlspec.graph.layers import ACTIVATIONS, LAYERS
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS
from tests.conftest import EXAMPLES

runner = CliRunner()
cli_app = importlib.import_module("dlspec.cli.app")  # the module (dlspec.cli.app is the Typer)
CI_EXAMPLES = 300
SLOW_EXAMPLES = int(os.environ.get("DLSPEC_TRAIN_FUZZ", "0"))
# SpecError codes whose reason is in the data's values, which validate does not read: the
# classes of a target column, a label array or a series' target (their number against
# binary_crossentropy's two, or against the softmax output's units); an exported model
# that disagrees with the engine on the held-out rows (export-parity).
NEEDS_VALUES = {"semantic-classes", "export-parity"}
LOCATED = re.compile(r"^(?!\d+ \|)(?P<file>\S.*?):(?P<line>\d+)(:\d+)?: ")
BREAST_CANCER = EXAMPLES / "breast_cancer.csv"
DIGITS = EXAMPLES / "digits.npz"
FEATURES = ["mean_radius", "mean_texture", "mean_area", "worst_radius", "se_area"]

# Choices come from the registries (the first of each is where hypothesis shrinks to), so
# a new activation, optimizer, metric or loss is drawn without a change here.
DENSE_ACTS = ["relu", *sorted(set(ACTIVATIONS) - {"relu"})]
RNN_ACTS = ["tanh", *sorted(set(RNN_ACTIVATIONS) - {"tanh"})]
OPTIMIZER_NAMES = ["adam", *sorted(set(OPTIMIZERS) - {"adam"})]
METRIC_NAMES = sorted(METRICS)
LOSS_OF = {task: sorted(n for n, loss in LOSSES.items() if loss.task == task)
           for task in ("binary", "multiclass", "regression")}
OUT_ACT = {"binary": "sigmoid", "multiclass": "softmax", "regression": "linear"}
# Layer types the generator draws; test_every_layer_type_is_drawn keeps it the registry's.
DRAWN_LAYERS = {"dense", "dropout", "activation", "batch_norm", "flatten", "reshape", "conv2d",
                "max_pool2d", "avg_pool2d", "global_avg_pool2d", "lstm", "gru", "simple_rnn",
                "add", "concat", "multiply", "stop_gradient"}
JOINS = ["add", "concat", "multiply"]


# ------------------------------------------------------------------------------ the data

def write_series(folder: Path) -> dict[str, Path]:
    """A dated noisy sine (300 rows) with a second feature, an up/down column and a
    three-level column; and an .npz of 120 windows (12 steps, 2 features) with float,
    binary and three-class targets."""
    rng = np.random.default_rng(0)
    n = 300
    t = np.arange(n)
    value = np.sin(t / 8) * 10 + 50 + rng.normal(0, 1, n)
    other = np.cos(t / 5) + rng.normal(0, 0.1, n)
    up = np.where(np.diff(value, prepend=value[0]) >= 0, "up", "down")
    level = np.select([value < 45, value < 55], ["low", "mid"], "high")
    lines = ["date,value,other,direction,level"]
    lines += [f"2020-01-{1 + i % 28:02d}T{i // 28:02d},{v:.4f},{o:.4f},{u},{lv}"
              for i, (v, o, u, lv) in enumerate(zip(value, other, up, level, strict=True))]
    csv_path = folder / "series.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    x = rng.normal(0, 1, (120, 12, 2)).astype(np.float32)
    s = x[:, :, 0].sum(axis=1)
    npz = {}
    for name, y in (("float", s.astype(np.float32)), ("binary", (s > 0).astype(np.int64)),
                    ("classes", np.digitize(s, [-2, 2]).astype(np.int64))):
        npz[name] = folder / f"windows_{name}.npz"
        np.savez(npz[name], x=x, y=y)
    return {"series": csv_path, **npz}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return write_series(tmp_path_factory.mktemp("series"))


# ------------------------------------------------------------------------------ the specs

class Draw:
    """Choices for the generator, from hypothesis (``data.draw``)."""

    def __init__(self, draw) -> None:
        self.draw = draw

    def pick(self, options):
        return self.draw(st.sampled_from(list(options)))

    def int(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def coin(self, percent: int) -> bool:
        """True with about ``percent`` % probability (hypothesis shrinks to False)."""
        return self.draw(st.integers(0, 99)) >= 100 - percent


def dense(d: Draw, units: int | None = None, act: str | None = None) -> dict:
    p = {"units": units or d.int(1, 16), "activation": act or d.pick(DENSE_ACTS)}
    if d.coin(20):
        p["initializer"] = d.pick(["he_uniform", "glorot_normal", "uniform", "zeros", "ones"])
    if d.coin(10):
        p["bias"] = False
    return {"dense": p}


def recurrent(d: Draw, seq: bool | None = None) -> dict:
    p = {"units": d.int(1, 8), "activation": d.pick(RNN_ACTS),
         "return_sequences": d.coin(50) if seq is None else seq}
    if d.coin(15):
        p["use_bias"] = False
    if d.coin(15):
        p["recurrent_activation"] = d.pick(RNN_ACTS)
    kind = d.pick(["lstm", "gru", "simple_rnn"])
    if kind == "simple_rnn":
        p.pop("recurrent_activation", None)
    return {kind: p}


def conv(d: Draw) -> dict:
    return {"conv2d": {"filters": d.int(1, 6), "kernel_size": d.int(1, 4),
                       "padding": d.pick(["same", "valid"]), "strides": d.int(1, 2),
                       "activation": d.pick(DENSE_ACTS)}}


def pool(d: Draw) -> dict:
    kind = d.pick(["max_pool2d", "avg_pool2d", "global_avg_pool2d"])
    if kind == "global_avg_pool2d":
        return {kind: None}
    return {kind: {"pool_size": d.int(1, 3), "padding": d.pick(["valid", "same"])}}


def any_layer(d: Draw) -> dict:
    kind = d.pick(["dense", "dropout", "activation", "batch_norm", "flatten", "conv2d", "pool",
                   "recurrent", "reshape", "join", "stop_gradient"])
    if kind == "stop_gradient":  # what comes before it is not trained: a located error
        return {"stop_gradient": None}
    if kind == "join":  # in a list of layers, a join has one input: a located error
        return {d.pick(JOINS): None}
    if kind == "dense":
        return dense(d)
    if kind == "dropout":
        return {"dropout": d.pick([0.0, 0.1, 0.5])}
    if kind == "activation":
        return {"activation": d.pick(DENSE_ACTS)}
    if kind == "batch_norm":
        return {"batch_norm": {"activation": d.pick(DENSE_ACTS)} if d.coin(50) else None}
    if kind == "flatten":
        return {"flatten": None}
    if kind == "conv2d":
        return conv(d)
    if kind == "pool":
        return pool(d)
    if kind == "recurrent":
        return recurrent(d)
    return {"reshape": d.pick([[-1], [8, 8, 1], [4, 4, -1], [12, -1], [-1, 2]])}


def body(d: Draw, kind: str) -> list[dict]:
    """Hidden layers: mostly ones that fit the kind of input, some of any type."""
    layers = []
    for _ in range(d.int(0, 3)):
        if d.coin(25):
            layers.append(any_layer(d))
        elif kind == "image":
            layers.append(d.pick([conv, pool, lambda d: {"batch_norm": None},
                                  lambda d: {"dropout": 0.2}])(d))
        elif kind == "sequence":
            layers.append(recurrent(d, seq=True) if d.coin(70) else
                          d.pick([{"dropout": 0.1}, {"batch_norm": None}]))
        else:
            layers.append(dense(d) if d.coin(70) else
                          d.pick([{"dropout": 0.2}, {"batch_norm": None},
                                  {"activation": "relu"}]))
    return layers


def head(d: Draw, kind: str, task: str, width: int) -> list[dict]:
    """The layers a task wants at the end: into (N, width) with the task's activation."""
    pre = []
    if kind == "image":
        pre = [d.pick([{"flatten": None}, {"global_avg_pool2d": None}])]
    elif kind == "sequence":
        pre = [d.pick([{"flatten": None}, recurrent(d, seq=False)])]
    act = OUT_ACT[task]
    if d.coin(30):  # the activation in a layer of its own, maybe after a train-only op
        between = d.pick([[], [{"dropout": 0.2}], [{"flatten": None}]])
        last = d.pick([{"activation": act}, {"batch_norm": {"activation": act}}])
        return [*pre, dense(d, width, "linear"), *between, last]
    return [*pre, dense(d, width, act), *([d.pick([{"dropout": 0.1}, {"flatten": None}])]
                                          if d.coin(15) else [])]


def draw_data(d: Draw, files: dict[str, Path], task: str) -> tuple[str, dict, int]:
    """(kind of input, the data section, the output width the task needs)."""
    kind = d.pick(["table", "image", "sequence", "windows"])
    split = {"test": d.pick([0.2, 0.1, 0.0, 0.5]), "validation": d.pick([0.1, 0.0, 0.2, 0.5])}
    if kind == "table":
        target = {"regression": "mean_radius"}.get(task, "diagnosis")
        if d.coin(10):
            target = d.pick(["diagnosis", "mean_radius", "mean_area", "missing_column"])
        data = {"source": str(BREAST_CANCER), "target": target, "split": split}
        if d.coin(40):
            data["features"] = [c for c in FEATURES if c != target][:d.int(1, 4)]
        if d.coin(70):
            data["preprocess"] = [{d.pick(["standardize", "minmax"]): "all"}]
        if d.coin(5):
            data["preprocess"] = [{d.pick(["onehot", "label_encode"]): ["diagnosis"]}]
        if d.coin(5):
            data["drop"] = [d.pick(["diagnosis", "mean_area", "date"])]
        split["stratify"] = d.coin(50)
        return "table", data, {"binary": 1, "multiclass": 2, "regression": 1}[task]
    if kind == "image":
        data = {"source": str(DIGITS), "subset": {"train": d.pick([64, 128, 200, 20])},
                "split": split}
        if d.coin(70):
            data["preprocess"] = [d.pick([{"scale": 16}, {"normalize": "auto"}, {"scale": 255}])]
        if d.coin(15):
            data["augment"] = [{"shift": 1}]
        split["stratify"] = d.coin(30)
        return "image", data, {"binary": 1, "multiclass": 10, "regression": 1}[task]
    seq = {"window": d.pick([6, 3, 12, 1]), "horizon": d.pick([1, 2])}
    if kind == "windows":
        name = {"regression": "float", "binary": "binary", "multiclass": "classes"}[task]
        if d.coin(10):
            name = d.pick(["float", "binary", "classes"])
        data = {"source": str(files[name]), "sequence": {**seq, "window": 12, "horizon": 1},
                "split": split}
        if d.coin(60):
            data["preprocess"] = [{d.pick(["minmax", "standardize"]): "all"}]
        return "sequence", data, {"binary": 1, "multiclass": 3, "regression": 1}[task]
    target = {"regression": "value", "binary": "direction", "multiclass": "level"}[task]
    if d.coin(10):
        target = d.pick(["value", "direction", "level", "other"])
    data = {"source": str(files["series"]), "target": target, "sequence": seq, "split": split}
    if d.coin(90):
        data["drop"] = ["date", *([c for c in ("direction", "level") if c != target])]
    if d.coin(30):
        data["features"] = ["value", "other"][:d.int(1, 2)]
    if d.coin(70):
        data["preprocess"] = [{d.pick(["minmax", "standardize"]): "all"}]
    return "sequence", data, {"binary": 1, "multiclass": 3, "regression": 1}[task]


def draw_train(d: Draw, task: str) -> dict:
    loss = d.pick(LOSS_OF[task]) if d.coin(85) else d.pick(sum(LOSS_OF.values(), []))
    name = d.pick(OPTIMIZER_NAMES)
    params = {}
    if d.coin(60):
        params["lr"] = d.pick([0.01, 0.001, 0.1, 0.05])
    if name == "sgd" and d.coin(50):
        params["momentum"] = d.pick([0.9, 0.0, 0.5])
        params["nesterov"] = d.coin(50)
    train = {"loss": loss, "optimizer": {name: params} if params else name,
             "batch_size": d.pick([16, 32, 8, 1, 64, 1000]), "epochs": d.pick([1, 2])}
    if d.coin(50):
        fits = [m for m in METRIC_NAMES if task in METRICS[m].tasks]
        train["metrics"] = [d.pick(fits if d.coin(80) else METRIC_NAMES)
                            for _ in range(d.int(1, 2))]
        train["metrics"] = list(dict.fromkeys(train["metrics"]))
    if d.coin(20):
        train["early_stopping"] = {"monitor": d.pick(["val_loss", "loss", "val_accuracy",
                                                      "val_mae"]), "patience": d.int(0, 2),
                                   "restore_best": d.coin(50)}
    if d.coin(10):
        train["shuffle"] = False
    return train


def as_graph(d: Draw, kind: str, layers: list[dict]) -> dict:
    """The same layers as named nodes (each reads the one written before it), with a branch
    joined back in after one of them (add, concat or multiply of the node and a layer
    applied to it, which may share the node's parameters); as often as not the shapes do
    not fit, and that must be one located error too."""
    names = [f"n{i}" for i in range(len(layers))]
    nodes = {n: dict(layer) for n, layer in zip(names, layers, strict=True)}
    if not names or d.coin(25):
        return {"nodes": nodes}
    j = d.int(0, len(names) - 1)
    src = names[j]
    if d.coin(20) and next(iter(layers[j])) in ("dense", "conv2d"):
        branch = {"share": src}
    elif kind == "image":
        branch = d.pick([conv, lambda d: {"activation": "relu"}, pool])(d)
    else:
        branch = d.pick([dense, lambda d: {"activation": d.pick(DENSE_ACTS)},
                         lambda d: {"dropout": 0.1}])(d)
    join = {d.pick(JOINS): None, "from": [src, "branch"]}
    out = {}
    for n in names:
        out[n] = nodes[n]
        if n == src:
            out["branch"] = {**branch, "from": src}
            out["join"] = join
    return {"nodes": out}


def draw_spec(d: Draw, files: dict[str, Path]) -> dict:
    """A plausible spec: two thirds of them end the way their task wants (the rest, and
    the other choices that need not fit, leave about one in six specs that trains); a third
    are written as named graphs."""
    task = d.pick(["binary", "multiclass", "regression"])
    kind, data, width = draw_data(d, files, task)
    layers = body(d, kind)
    if d.coin(67):
        layers += head(d, kind, task, width)
    elif not layers or d.coin(50):
        layers.append(any_layer(d) if d.coin(50) else dense(d))
    model = as_graph(d, kind, layers) if d.coin(33) else {"layers": layers}
    spec = {"dlspec": 1, "name": "fuzz", "seed": d.int(0, 3), "data": data,
            "model": model, "train": draw_train(d, task)}
    if d.coin(20):
        spec["export"] = {"opset": d.int(13, 21)}
    return spec


# ------------------------------------------------------------------------------ the checks

def run_spec(spec: dict, folder: Path) -> str:
    """Validate and train ``spec`` through the CLI; returns the outcome, or fails."""
    path = folder / "spec.yaml"
    text = yaml.safe_dump(spec, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    why = f"\n--- spec ---\n{text}"
    v = runner.invoke(app, ["validate", str(path), "--format", "json"])
    assert v.exit_code in (0, 1), f"validate exit {v.exit_code}: {v.output}{why}"
    validate_codes = {d["code"] for d in json.loads(v.stdout)}
    raised: list[BaseException] = []
    report = cli_app._report

    def record(e):
        raised.append(e)
        return report(e)

    run_dir = folder / "run"
    with mock.patch.object(cli_app, "_report", record), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = runner.invoke(app, ["train", str(path), "--run-dir", str(run_dir)])
    out = f"\n--- output ---\n{r.output}{why}"
    assert "Traceback" not in r.output and "internal error" not in r.output, out
    # a warning is printed with its source file and line: not a message for users
    shown = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    assert not shown, f"warnings: {shown}{out}"
    assert r.exit_code in (0, 1, 3), f"train exit {r.exit_code}{out}"
    if v.exit_code == 1:
        assert r.exit_code == 1, f"validate rejected ({validate_codes}), train did not{out}"
    if r.exit_code == 0:
        return "trained"
    assert len(raised) == 1, f"exit {r.exit_code} without a dlspec error{out}"
    e = raised[0]
    if r.exit_code == 3:
        assert "training diverged at epoch" in r.stderr, out
        return "diverged"
    items = e.items if isinstance(e, Diagnostics) else [e] if isinstance(e, Diagnostic) else []
    assert items, f"an unlocated error: {e!r}{out}"
    shown = [m for m in (LOCATED.match(ln) for ln in r.stderr.splitlines()) if m]
    assert len(shown) == len(items), f"{len(items)} problem(s), {len(shown)} located lines{out}"
    for d, m in zip(items, shown, strict=True):
        assert d.location is not None and d.location.line >= 1, f"unlocated: {d}{out}"
        assert Path(m["file"]).resolve() in {path.resolve(), _data_file(spec)}, out
    knowable = [d for d in items if isinstance(d, SpecError) and d.code not in NEEDS_VALUES]
    if knowable:
        assert v.exit_code == 1, f"train rejected ({knowable[0].code}) what validate " \
            f"accepted{out}"
    return "located"


def _data_file(spec: dict) -> Path:
    return Path(spec["data"]["source"]).resolve()


def fuzz(files: dict[str, Path], folder: Path, examples: int) -> Counter:
    """Draw and run ``examples`` specs; returns how many ended in each outcome."""
    tally: Counter = Counter()
    cases = itertools.count()

    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def one(data):
        spec = draw_spec(Draw(data.draw), files)
        case = folder / f"case{next(cases)}"
        case.mkdir()
        tally[run_spec(spec, case)] += 1

    one()
    return tally


def test_every_layer_type_is_drawn():
    assert set(LAYERS) == DRAWN_LAYERS, "teach the generator the new layer type"


def test_generated_specs_train_or_stop_with_located_messages(files, tmp_path):
    tally = fuzz(files, tmp_path, CI_EXAMPLES)
    print(f"train fuzz, {CI_EXAMPLES} examples: {dict(tally)}")
    assert sum(tally.values()) >= CI_EXAMPLES
    # the generator stays plausible: many train, and many are stopped
    assert tally["trained"] >= CI_EXAMPLES // 10 and tally["located"] >= CI_EXAMPLES // 10


@pytest.mark.slow
@pytest.mark.skipif(SLOW_EXAMPLES < 1, reason="set DLSPEC_TRAIN_FUZZ=3000 for the long run")
def test_generated_specs_long_run(files, tmp_path):
    tally = fuzz(files, tmp_path, SLOW_EXAMPLES)
    print(f"train fuzz, {SLOW_EXAMPLES} examples: {dict(tally)}")
    assert sum(tally.values()) >= SLOW_EXAMPLES
