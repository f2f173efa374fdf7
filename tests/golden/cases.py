"""Trainings whose weights must never change: specs as they were written before the graph
form existed, each trained at small settings. ``python -m tests.golden.cases --record``
trains every case and writes the SHA-256 of its weights into ``weights.json``, keyed by
the BLAS kernels in use (the products round differently with other kernels, so a hash is
only comparable on the kernels it was recorded with). tests/golden/test_golden.py trains
them again and compares.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
EXAMPLES = ROOT / "examples" / "data"
HASHES = Path(__file__).with_name("weights.json")

DIGITS = str(EXAMPLES / "digits.npz")
BREAST = str(EXAMPLES / "breast_cancer.csv")

# Specs written inline: every layer type, activation, initializer, optimizer and loss of
# the sequential form, at least once.
_RNN_DIGITS = f"""\
dlspec: 1
name: rnn_digits
data: {{source: {DIGITS}, preprocess: [{{scale: 16}}], split: {{validation: 0.1}}}}
model:
  layers:
    - reshape: [8, 8]
    - gru: {{units: 12, return_sequences: true}}
    - simple_rnn: {{units: 10, return_sequences: true, activation: relu}}
    - lstm: {{units: 8, use_bias: false, recurrent_activation: tanh}}
    - dense: {{units: 10, activation: softmax, initializer: glorot_normal}}
train:
  loss: categorical_crossentropy
  optimizer: {{rmsprop: {{lr: 0.002, momentum: 0.5}}}}
  batch_size: 64
  epochs: 2
  metrics: [accuracy]
"""

_CONV_DIGITS = f"""\
dlspec: 1
name: conv_digits
data:
  source: {DIGITS}
  preprocess: [{{scale: 16}}, {{normalize: auto}}]
  augment: [{{shift: 1}}, {{flip: horizontal}}, {{rotate: 8}}]
  split: {{validation: 0.1}}
model:
  layers:
    - conv2d: {{filters: 8, kernel_size: 3, padding: [1, 0, 1, 2], activation: elu}}
    - batch_norm: {{activation: relu, momentum: 0.9}}
    - avg_pool2d: {{pool_size: 2, strides: 1}}
    - conv2d: {{filters: 8, kernel_size: 2, strides: 2, groups: 2, activation: leaky_relu,
               bias: false}}
    - conv2d: {{filters: 16, kernel_size: 3, padding: same, dilation: 2, activation: tanh,
               initializer: he_normal}}
    - max_pool2d: {{pool_size: 2, padding: same}}
    - global_avg_pool2d:
    - dense: {{units: 10, activation: softmax}}
train:
  loss: categorical_crossentropy
  optimizer: {{sgd: {{lr: 0.05, momentum: 0.9, nesterov: true}}}}
  batch_size: 50
  epochs: 2
  metrics: [accuracy]
  early_stopping: {{monitor: val_accuracy, patience: 1}}
"""

_WINOGRAD_DIGITS = f"""\
dlspec: 1
name: winograd_digits
data: {{source: {DIGITS}, preprocess: [{{scale: 16}}], split: {{test: 0.3}}}}
model:
  layers:
    - conv2d: {{filters: 8, kernel_size: 3, padding: same, activation: relu}}
    - conv2d: {{filters: 16, kernel_size: 3, padding: same, activation: relu}}
    - max_pool2d: 2
    - conv2d: {{filters: 8, kernel_size: 3, activation: relu}}
    - flatten:
    - dropout: 0.3
    - dense: {{units: 10, activation: softmax, bias_initializer: ones}}
train: {{loss: categorical_crossentropy, optimizer: adam, batch_size: 32, epochs: 1}}
"""

_REGRESSION_TABLE = f"""\
dlspec: 1
name: radius
data:
  source: {BREAST}
  target: mean_radius
  drop: [mean_perimeter, mean_area]
  features: null
  preprocess: [{{label_encode: [diagnosis]}}, {{minmax: numeric}}]
  split: {{test: 0.2, validation: 0.2}}
model:
  layers:
    - dense: {{units: 12, activation: softplus, initializer: normal}}
    - activation: sigmoid
    - dense: {{units: 6, activation: tanh, initializer: glorot_uniform}}
    - dropout: 0.1
    - dense: {{units: 1, initializer: zeros, bias: true}}
train:
  loss: mae
  optimizer: {{adagrad: {{lr: 0.05}}}}
  batch_size: 20
  epochs: 3
  metrics: [mse, mae]
  early_stopping: {{monitor: val_mae, patience: 2, restore_best: false}}
"""

_MSE_TABLE = _REGRESSION_TABLE.replace("loss: mae", "loss: mse").replace(
    "{adagrad: {lr: 0.05}}", "{sgd: {lr: 0.01}}").replace("name: radius", "name: radius_mse")

_ONEHOT_TABLE = f"""\
dlspec: 1
name: onehot
data:
  source: {BREAST}
  target: diagnosis
  features: [mean_radius, mean_texture, worst_area, diagnosis_bin]
  preprocess: [{{onehot: {{columns: [diagnosis_bin]}}}}, {{standardize: [mean_radius, worst_area]}}]
model:
  layers:
    - dense: {{units: 4, activation: relu, initializer: he_uniform}}
    - dense: {{units: 2, activation: softmax, initializer: ones}}
train: {{loss: categorical_crossentropy, optimizer: {{adam: {{lr: 0.01, beta_1: 0.8}}}},
        batch_size: 16, epochs: 2, shuffle: false, seed: 5}}
"""


def _onehot_csv(folder: Path) -> Path:
    """The breast-cancer table with a coarse categorical column (radius bins as text)."""
    import csv

    with open(BREAST, newline="") as fh:
        src = list(csv.DictReader(fh))
    out = folder / "bc_bins.csv"
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=[*src[0], "diagnosis_bin"])
        w.writeheader()
        for r in src:
            r["diagnosis_bin"] = "big" if float(r["mean_radius"]) > 15 else \
                "mid" if float(r["mean_radius"]) > 12 else "small"
            w.writerow(r)
    return out


# name -> (spec file or inline text, overrides, data the case needs from ../shared)
CASES: dict[str, tuple[str, list[str], str | None]] = {
    "breast_cancer": ("breast_cancer.yaml", ["train.epochs=3"], None),
    "digits_cnn": ("digits_cnn.yaml", ["train.epochs=2"], None),
    "churn": ("churn.yaml", ["train.epochs=1"], "churn"),
    "airline_mlp": ("airline_mlp.yaml", ["train.epochs=5"], "airline"),
    "airline_lstm": ("airline_lstm.yaml", ["train.epochs=3"], "airline"),
    "mnist_cnn": ("mnist_cnn.yaml", ["data.subset.train=600", "data.subset.test=200",
                                     "train.epochs=1"], "mnist"),
    "rnn_digits": (_RNN_DIGITS, [], None),
    "conv_digits": (_CONV_DIGITS, [], None),
    "winograd_digits": (_WINOGRAD_DIGITS, [], None),
    "radius": (_REGRESSION_TABLE, [], None),
    "radius_mse": (_MSE_TABLE, [], None),
    "onehot": (_ONEHOT_TABLE, [], None),
}


def weights_sha256(run_dir: Path) -> str:
    """One hash over every parameter: name, shape and float32 bytes, in name order."""
    import numpy as np

    h = hashlib.sha256()
    with np.load(run_dir / "weights.npz", allow_pickle=False) as z:
        for name in sorted(z.files):
            a = np.ascontiguousarray(z[name], dtype=np.float32)
            h.update(f"{name}:{a.shape}\n".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def kernels() -> str:
    """The key hashes are recorded under: the BLAS kernels and the BLAS threads."""
    from dlspec.blas import corename, threads

    return f"{corename() or 'unknown'}/{threads() or 0}"


def train_case(name: str, folder: Path, shared_data: Path) -> str:
    """Train one case into ``folder`` and return its weights' SHA-256."""
    import os

    import dlspec

    spec, overrides, needs = CASES[name]
    overrides = list(overrides)
    if needs == "churn":
        overrides.append(f"data.source={shared_data / 'churn' / 'Churn_Modelling.csv'}")
    elif needs == "airline":
        overrides.append(
            f"data.source={shared_data / 'timeseries' / 'airline-passengers.csv'}")
    elif needs == "mnist":
        os.environ["DLSPEC_DATA"] = str(shared_data)
        os.environ["DLSPEC_CACHE"] = str(folder / "cache")
    if spec.endswith(".yaml"):
        path = SPECS / spec
    else:
        path = folder / f"{name}.yaml"
        text = spec
        if name == "onehot":
            text = text.replace(BREAST, str(_onehot_csv(folder)))
        path.write_text(text)
    result = dlspec.train(path, overrides, run_dir=folder / f"run_{name}")
    return weights_sha256(result.run_dir)


def record(shared_data: Path) -> dict:
    table = json.loads(HASHES.read_text()) if HASHES.is_file() else {}
    hashes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            hashes[name] = train_case(name, Path(tmp), shared_data)
            print(f"{name}: {hashes[name]}", file=sys.stderr)
    table[kernels()] = hashes
    HASHES.write_text(json.dumps(table, indent=2, sort_keys=True) + "\n")
    return hashes


if __name__ == "__main__":  # python -m tests.golden.cases --record [SHARED_DATA]
    if "--record" not in sys.argv:
        sys.exit("usage: python -m tests.golden.cases --record [SHARED_DATA]")
    args = [a for a in sys.argv[1:] if a != "--record"]
    record(Path(args[0]) if args else ROOT.parent / "shared" / "data")
