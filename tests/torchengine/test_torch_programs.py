"""Training programs on the torch engine: a GAN's two optimizers ([d, d, g], dropout in
the discriminator), an autoencoder, RBM pretraining then fine-tuning, each as the NumPy
engine trains them, on one worker and on two."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dlspec

torch = pytest.importorskip("torch", reason="the torch engine needs torch (the torch extra)")

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "data" / "digits.npz"

GAN = f"""\
dlspec: 1
name: digits_gan
seed: 3
data:
  source: {DIGITS}
  preprocess: [{{scale: 16}}]
  split: {{test: 0.1, validation: 0.1}}
model:
  inputs:
    image: {{}}
    z: {{noise: {{normal: [4]}}}}
  blocks:
    disc:
      inputs: [x]
      nodes:
        flat: {{flatten: {{}}, from: x}}
        h: {{dense: {{units: 16, activation: leaky_relu}}}}
        drop: {{dropout: 0.25}}
        p: {{dense: {{units: 1, activation: sigmoid}}}}
  nodes:
    gen1: {{dense: {{units: 16, activation: leaky_relu}}, from: z}}
    gen2: {{dense: {{units: 64, activation: sigmoid}}}}
    fake: {{reshape: {{target_shape: [8, 8, 1]}}}}
    d_real: {{call: disc, from: image}}
    d_fake: {{call: disc, from: fake}}
  outputs: [fake]
train:
  losses:
    d_real: {{loss: binary_crossentropy, output: d_real, target: 1}}
    d_fake: {{loss: binary_crossentropy, output: d_fake, target: 0}}
    g: {{loss: binary_crossentropy, output: d_fake, target: 1}}
  optimizers:
    d: {{adam: {{lr: 0.002}}, params: "disc.*", minimize: [d_real, d_fake]}}
    g: {{adam: {{lr: 0.002}}, params: "gen*", minimize: g}}
  step: [d, d, g]
  batch_size: 64
  epochs: 2
export: {{inputs: [z], outputs: [fake]}}
"""

DBN = f"""\
dlspec: 1
name: digits_dbn
seed: 1
data:
  source: {DIGITS}
  preprocess: [{{scale: 16}}]
model:
  nodes:
    flat: {{flatten: {{}}}}
    h1: {{dense: {{units: 24, activation: sigmoid}}}}
    out: {{dense: {{units: 10, activation: softmax}}}}
train:
  loss: categorical_crossentropy
  optimizer: {{sgd: {{lr: 0.1, momentum: 0.9}}}}
  recipe:
    dbn: {{layers: [h1], epochs: 2, lr: 0.05}}
  batch_size: 32
  epochs: 2
  metrics: [accuracy]
"""


def _weights(run) -> dict:
    with np.load(run / "weights.npz") as z:
        return {k: z[k] for k in z.files}


def _train(tmp_path, text: str, name: str, engine: str, workers: int = 1):
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return dlspec.train(path, [f"train.engine={engine}"], run_dir=tmp_path / f"{name}_{engine}"
                        f"{workers}", workers=workers)


def _close(a: dict, b: dict, rtol: float, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=rtol, atol=atol, err_msg=k)


def test_a_gan_trains_on_torch_as_on_numpy(tmp_path):
    ours = _train(tmp_path, GAN, "gan", "numpy")
    theirs = _train(tmp_path, GAN, "gan", "torch")
    # float32, two optimizers over 2 x 26 steps: the engines round differently
    _close(_weights(ours.run_dir), _weights(theirs.run_dir), rtol=2e-3, atol=2e-4)
    h1, h2 = ours.fit.history, theirs.fit.history
    assert [sorted(h) for h in h1] == [sorted(h) for h in h2]
    for a, b in zip(h1, h2, strict=True):
        for k in ("d_real", "d_fake", "g", "d_loss", "val_g"):
            assert abs(a[k] - b[k]) <= 1e-3 * max(1.0, abs(a[k])), k
    with np.load(theirs.run_dir / "optimizer.npz") as z:
        names = set(z.files)
    # every optimizer's state, by optimizer and parameter
    assert "d/disc.h.kernel/exp_avg" in names and "g/gen1.kernel/exp_avg" in names
    assert theirs.metrics["export_parity"]["max_abs_diff"] < 1e-4


def test_a_gan_on_two_workers_follows_one(tmp_path):
    one = _train(tmp_path, GAN, "gan", "torch")
    two = _train(tmp_path, GAN, "gan", "torch", workers=2)
    # the all-reduce sums the two halves in another order; the last batch of an epoch
    # (1,437 rows: 29 left) splits 15 / 14, each rank's gradient weighted by its rows
    _close(_weights(one.run_dir), _weights(two.run_dir), rtol=1e-3, atol=1e-4)
    m1, m2 = (json.loads((r.run_dir / "metrics.json").read_text()) for r in (one, two))
    assert m1["steps"] == m2["steps"]
    assert [h["epoch"] for h in two.fit.history] == [1, 2]


def test_rbm_pretraining_then_fine_tuning_on_torch(tmp_path):
    ours = _train(tmp_path, DBN, "dbn", "numpy")
    theirs = _train(tmp_path, DBN, "dbn", "torch")
    _close(_weights(ours.run_dir), _weights(theirs.run_dir), rtol=2e-3, atol=2e-4)
    phases = [h.get("phase") for h in theirs.fit.history]
    assert phases == [h.get("phase") for h in ours.fit.history] and len(set(phases)) == 2
    assert abs(theirs.metrics["test"]["accuracy"] - ours.metrics["test"]["accuracy"]) <= 0.02
