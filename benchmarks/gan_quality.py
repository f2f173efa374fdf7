#!/usr/bin/env python
"""How good a trained GAN's digits are, judged by a digit classifier trained apart.

    python benchmarks/gan_quality.py GAN_RUN CLASSIFIER_RUN [--samples 1000] [--seed 0]
                                     [--json OUT.json] [--picture OUT.png]

GAN_RUN is a run of specs/mnist_gan.yaml (its model.onnx the generator alone: noise in,
image out, exported with `export: {inputs: [z], outputs: [fake]}`); CLASSIFIER_RUN a run of
specs/mnist_cnn.yaml (its model.onnx takes raw uint8 pixels (N, 28, 28, 1) and gives
`probabilities` and `label`). Both run in onnxruntime, not in dlspec's engine.

The generator gets ``--samples`` latent codes drawn from its noise input's distribution
(the run's spec.lock.yaml: normal mean/std or uniform low/high) with a NumPy generator
seeded by ``--seed``. Its outputs are in the image input's preprocessed space (for the spec:
pixels / 255, then (x - 0.5) / 0.5, so tanh's [-1, 1]); the run's preprocess.json undoes
that, and the pixels are rounded and clipped to uint8, the classifier's input contract.

Prints the mean top-class probability (how sure the classifier is that a sample is some
digit), the share of samples given each digit (a collapsed generator draws few of them),
and whether the goal holds: every digit at least 3 %, mean top probability at least 0.85.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import yaml

GOAL_SHARE, GOAL_TOP = 0.03, 0.85


def latent_codes(run: Path, n: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded draws for every noise input of the run's spec, by input name."""
    lock = yaml.safe_load((run / "spec.lock.yaml").read_text())
    gen = np.random.default_rng(seed)
    codes = {}
    for name, e in lock["model"]["inputs"].items():
        noise = e.get("noise")
        if e.get("kind") != "noise" or not noise:
            continue
        if "normal" in noise:
            shape = (n, *noise["normal"])
            codes[name] = (noise.get("mean", 0.0) + noise.get("std", 1.0)
                           * gen.standard_normal(shape)).astype(np.float32)
        else:
            shape = (n, *noise["uniform"])
            codes[name] = gen.uniform(noise.get("low", -1.0), noise.get("high", 1.0),
                                      shape).astype(np.float32)
    if not codes:
        raise SystemExit(f"{run}: its spec has no noise input; is it a GAN's run?")
    return codes


def generated_pixels(run: Path, codes: dict[str, np.ndarray]) -> np.ndarray:
    """The generator's images as raw uint8 pixels (N, H, W, C)."""
    import onnxruntime as ort

    from dlspec.trained import read_preprocess

    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in codes]
    if missing:
        raise SystemExit(f"{run}/model.onnx takes {names}, not only noise ({missing}): "
                         "export the generator alone (export: {inputs: [z], outputs: [fake]})")
    values = session.run(None, {n: codes[n] for n in names})[0]
    inputs, _ = read_preprocess(run)
    image = next((p for p in inputs.values() if hasattr(p, "pixels")), None)
    if image is None:
        raise SystemExit(f"{run}: no image input, so no pixel scale to undo")
    values = values.reshape(len(values), *image.shape)
    return np.clip(np.round(image.pixels(values)), 0, 255).astype(np.uint8)


def classify(run: Path, pixels: np.ndarray) -> np.ndarray:
    """The classifier's probabilities (N, classes) for uint8 images."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    if inp.type != "tensor(uint8)":
        raise SystemExit(f"{run}/model.onnx takes {inp.type}, not raw uint8 pixels")
    out = [o.name for o in session.get_outputs()]
    return session.run([out[out.index("probabilities")]], {inp.name: pixels})[0]


def quality(gan: Path, classifier: Path, n: int, seed: int) -> tuple[dict, np.ndarray]:
    pixels = generated_pixels(gan, latent_codes(gan, n, seed))
    probs = classify(classifier, pixels)
    labels = probs.argmax(axis=1)
    shares = np.bincount(labels, minlength=probs.shape[1]) / len(labels)
    top = float(probs.max(axis=1).mean())
    result = {
        "gan_run": str(gan), "classifier_run": str(classifier), "samples": n, "seed": seed,
        "mean_top_probability": round(top, 4),
        "share_per_digit": {str(d): round(float(s), 4) for d, s in enumerate(shares)},
        "min_share": round(float(shares.min()), 4),
        "confident_share": round(float((probs.max(axis=1) >= 0.9).mean()), 4),
        "pixel_mean": round(float(pixels.mean()), 2),
        "goal": {"every_digit_at_least": GOAL_SHARE, "mean_top_at_least": GOAL_TOP,
                 "met": bool(shares.min() >= GOAL_SHARE and top >= GOAL_TOP)},
    }
    return result, pixels[np.argsort(labels, kind="stable")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("gan_run", type=Path)
    ap.add_argument("classifier_run", type=Path)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the numbers here")
    ap.add_argument("--picture", type=Path,
                    help="a PNG of the first 100 samples, sorted by the classifier's digit")
    a = ap.parse_args(argv)
    result, by_label = quality(a.gan_run, a.classifier_run, a.samples, a.seed)
    shares = result["share_per_digit"]
    print(f"{a.samples} samples of {a.gan_run} (seed {a.seed}), labelled by "
          f"{a.classifier_run}")
    print(f"mean top-class probability {result['mean_top_probability']:.4f} "
          f"(goal >= {GOAL_TOP}); samples with top probability >= 0.9: "
          f"{result['confident_share']:.1%}")
    print("share per digit: " + "  ".join(f"{d}: {s:.1%}" for d, s in shares.items()))
    print(f"smallest share {result['min_share']:.1%} (goal >= {GOAL_SHARE:.0%}); goal "
          + ("met" if result["goal"]["met"] else "not met"))
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")
    if a.picture:
        from dlspec.pictures import grid, png_bytes

        step = max(1, len(by_label) // 100)
        a.picture.write_bytes(png_bytes(grid(by_label[::step][:100] / 255.0, 10, scale="none")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
