"""The four training-program specs (autoencoder, RBM, deep belief net, GAN) trained from the
command line on the real MNIST files, at small settings (seconds each): the numbers move the
right way, the pictures are written and listed, the exported parts open in onnxruntime.

The full runs and their numbers are in the README's "Training programs" section;
DLSPEC_LONG=1 also runs the autoencoder's full training against its goal (MSE <= 0.015,
about 40 s of one core)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import SPECS

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def mnist_env(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DLSPEC_DATA", str(mnist_dir.parent))
    monkeypatch.setenv("DLSPEC_CACHE", str(tmp_path / "cache"))  # never touch ~/.cache


def train(tmp_path: Path, spec: str, *sets: str) -> tuple[Path, dict, str]:
    """``dlspec train SPEC --set ...``: the run directory, its metrics and stdout."""
    run = tmp_path / "run"
    args = ["train", str(SPECS / spec), "--run-dir", str(run)]
    for s in sets:
        args += ["--set", s]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == str(run)
    return run, json.loads((run / "metrics.json").read_text()), r.stdout


def history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def pictures_listed(run: Path, metrics: dict, stdout: str) -> list[str]:
    """The pictures of metrics.json, each a PNG file, each printed by train."""
    files = [p["file"] for p in metrics["pictures"]]
    for f in files:
        assert (run / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"picture: {run / f}" in stdout
    return files


def session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_autoencoder_reconstructs_and_exports_its_encoder(tmp_path):
    run, m, out = train(tmp_path, "mnist_autoencoder.yaml", "data.subset.train=4000",
                        "data.subset.test=500", "train.epochs=4")
    rows = history(run)
    assert float(rows[-1]["recon"]) < float(rows[0]["recon"])
    assert m["test"]["recon"] < 0.05, m["test"]       # per pixel, pixels in [0, 1]
    assert "reconstructions.png" in pictures_listed(run, m, out)
    assert m["export_parity"]["max_abs_diff"] < 1e-4
    s = session(run / "model.onnx")      # the encoder: raw pixels in, the 32-number code out
    (inp,) = s.get_inputs()
    assert inp.type == "tensor(uint8)" and list(inp.shape[1:]) == [28, 28, 1]
    (code,) = s.run(None, {inp.name: np.zeros((3, 28, 28, 1), np.uint8)})
    assert code.shape == (3, 32)


def test_rbm_reconstruction_error_falls_and_filters_are_drawn(tmp_path):
    run, m, out = train(tmp_path, "mnist_rbm.yaml", "data.subset.train=3000",
                        "data.subset.test=200", "train.phases[0].epochs=3")
    recon = [float(r["recon"]) for r in history(run)]
    assert len(recon) == 3 and recon[0] > recon[1] > recon[2], recon
    assert "filters_hidden.png" in pictures_listed(run, m, out)


def test_dbn_pretrains_both_layers_then_fine_tunes(tmp_path):
    run, m, _ = train(tmp_path, "mnist_dbn.yaml", "data.subset.train=1000",
                      "data.subset.test=500", "train.recipe.dbn.epochs=1",
                      "train.recipe.dbn.unlabeled=false", "train.epochs=3")
    phases = [r["phase"] for r in history(run)]
    assert phases == ["rbm_h1", "rbm_h2", "finetune", "finetune", "finetune"], phases
    assert m["test"]["accuracy"] > 0.5, m["test"]
    assert {p["file"] for p in m["pictures"]} >= {"filters_h1.png"}


def test_gan_exports_its_generator_noise_in_images_out(tmp_path):
    run, m, out = train(tmp_path, "mnist_gan.yaml", "data.subset.train=1000",
                        "data.subset.test=200", "train.epochs=2")
    losses = history(run)[-1]
    assert all(np.isfinite(float(losses[k])) for k in ("d_real", "d_fake", "g_loss"))
    assert {"samples.png", "samples_epoch001.png"} <= set(pictures_listed(run, m, out))
    s = session(run / "model.onnx")
    (z,) = s.get_inputs()
    assert (z.name, z.type, list(z.shape[1:])) == ("z", "tensor(float)", [100])
    noise = np.random.default_rng(0).standard_normal((8, 100)).astype(np.float32)
    (fake,) = s.run(None, {"z": noise})
    assert fake.shape == (8, 28, 28, 1)
    assert fake.min() >= -1 and fake.max() <= 1 and fake.std() > 0   # tanh: pixels in [-1, 1]


@pytest.mark.skipif(os.environ.get("DLSPEC_LONG") != "1",
                    reason="the full autoencoder run (~40 s): set DLSPEC_LONG=1")
def test_autoencoder_full_run_reaches_its_goal(tmp_path):
    run, m, _ = train(tmp_path, "mnist_autoencoder.yaml")
    assert m["test"]["recon"] <= 0.015, m["test"]


def test_inspect_says_the_generator_goes_out_undecoded():
    """The GAN's head is its generator's image, not a classifier's: no labels to decode
    (the exported model's contract says `task none`)."""
    r = CliRunner().invoke(app, ["inspect", str(SPECS / "mnist_gan.yaml")])
    assert r.exit_code == 0, r.output
    assert "export: fake from z (5 of 17 nodes, 1,486,352 of 2,019,857 parameters; " \
        "undecoded)" in r.output


def test_gan_quality_labels_the_generators_samples_with_the_cnn(tmp_path, capsys):
    """benchmarks/gan_quality.py on a briefly trained GAN and CNN: the generator's tanh
    values become uint8 pixels the classifier takes, every sample gets a digit."""
    import runpy

    from tests.conftest import ROOT

    gan, _, _ = train(tmp_path / "gan", "mnist_gan.yaml", "data.subset.train=1000",
                      "data.subset.test=200", "train.epochs=1")
    cnn, _, _ = train(tmp_path / "cnn", "mnist_cnn.yaml", "data.subset.train=600",
                      "data.subset.test=200", "train.epochs=1")
    script = runpy.run_path(str(ROOT / "benchmarks" / "gan_quality.py"))
    capsys.readouterr()
    out = tmp_path / "q.json"
    assert script["main"]([str(gan), str(cnn), "--samples", "200", "--json", str(out),
                           "--picture", str(tmp_path / "q.png")]) == 0
    assert "mean top-class probability" in capsys.readouterr().out
    q = json.loads(out.read_text())
    assert q["samples"] == 200 and len(q["share_per_digit"]) == 10
    assert abs(sum(q["share_per_digit"].values()) - 1) < 1e-3
    assert 0.1 <= q["mean_top_probability"] <= 1
    assert 0 < q["pixel_mean"] < 255
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"
    pixels = script["generated_pixels"](gan, script["latent_codes"](gan, 4, 0))
    assert pixels.dtype == np.uint8 and pixels.shape == (4, 28, 28, 1)
