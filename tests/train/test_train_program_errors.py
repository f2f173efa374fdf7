"""Mistakes in training written as data, each located at the key to change with one
message naming what would fit: a loss naming a node that does not exist, a parameter no
optimizer trains (or two do), an optimizer whose loss does not reach its parameters, an
rbm on a node that is not a sigmoid dense layer, a noise input without a shape, ..."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlspec.errors import Diagnostics
from dlspec.spec.load import load_spec

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "data" / "digits.npz"

MODEL = """\
dlspec: 1
name: broken
data:
  source: {digits}
  preprocess: [{{scale: 16}}]
model:
  inputs:
    image: {{}}
{noise}
  blocks:
    disc:
      inputs: [x]
      nodes:
        flat: {{flatten: {{}}, from: x}}
        h: {{dense: {{units: 8, activation: relu}}}}
        p: {{dense: {{units: 1, activation: sigmoid}}}}
  nodes:
    gen1: {{dense: {{units: 8, activation: {gen_act}}}, from: z}}
    gen2: {{dense: {{units: 64, activation: sigmoid}}}}
    fake: {{reshape: {{target_shape: [8, 8, 1]}}}}
    d_real: {{call: disc, from: image}}
    d_fake: {{call: disc, from: fake}}
  outputs: [fake]
train:
"""
NOISE = "    z: {noise: {normal: [4]}}"


def problems(tmp_path, train: str, noise: str = NOISE, gen_act: str = "relu"):
    path = tmp_path / "broken.yaml"
    text = MODEL.format(digits=DIGITS, noise=noise, gen_act=gen_act) + train
    path.write_text(text, encoding="utf-8")
    with pytest.raises(Diagnostics) as info:
        load_spec(path)
    lines = text.splitlines()
    return [(lines[d.location.line - 1].strip() if d.location.line else "", d.message)
            for d in info.value.items]


GOOD = """\
  losses:
    d_real: {loss: binary_crossentropy, output: d_real, target: 1}
    d_fake: {loss: binary_crossentropy, output: d_fake, target: 0}
    g: {loss: binary_crossentropy, output: d_fake, target: 1}
  optimizers:
    d: {adam: {lr: 0.001}, params: "disc.*", minimize: [d_real, d_fake]}
    g: {adam: {lr: 0.001}, params: "gen*", minimize: g}
  step: [d, g]
"""

CASES = {
    "a loss naming no node": (
        GOOD.replace("output: d_fake, target: 0", "output: d_fak, target: 0"),
        "d_fake: {loss", "reads 'd_fak', which is no node or input (did you mean 'd_fake'?)"),
    "a target naming no node": (
        GOOD.replace("output: d_real, target: 1", "output: d_real, target: imag"),
        "d_real: {loss", "compares with 'imag', which is no node or input (did you mean "
        "'image'?)"),
    "a parameter no optimizer trains": (
        GOOD.replace('params: "gen*"', 'params: "gen2.*"'),
        "optimizers:", "no optimizer trains gen1.kernel, gen1.bias"),
    "a parameter two optimizers train": (
        GOOD.replace('params: "disc.*"', 'params: ["disc.*", "gen1.*"]'),
        "g: {adam", "'gen1.kernel' is trained by both d and g"),
    "an optimizer whose loss does not reach its parameters": (
        GOOD.replace("minimize: g}", "minimize: d_real}"),
        "g: {adam", "minimizes d_real, which does not reach gen1.kernel"),
    "a glob that matches nothing": (
        GOOD.replace('params: "gen*"', 'params: ["gen*", "gne*"]'),
        "g: {adam", "'gne*' matches no trainable parameter"),
    "a step naming no optimizer": (
        GOOD.replace("step: [d, g]", "step: [d, gg]"),
        "step: [d, gg]", "no optimizer named 'gg' (did you mean 'g'?)"),
    "minimizing no loss": (
        GOOD.replace("minimize: [d_real, d_fake]", "minimize: [d_real, d_fakee]"),
        "d: {adam", "minimizes 'd_fakee', which is no loss (did you mean 'd_fake'?)"),
    "a cross-entropy on an output that is no sigmoid": (
        GOOD.replace("output: d_fake, target: 0", "output: gen1, target: 0"),
        "d_fake: {loss", "reads the logits of a final sigmoid, but 'gen1' ends in relu"),
    "a target of another size": (
        GOOD.replace("output: d_real, target: 1", "output: d_real, target: gen1"),
        "d_real: {loss", "prediction and target hold different numbers of values"),
    "loss and losses both": (
        "  loss: binary_crossentropy\n" + GOOD,
        "losses:", "train.loss (one loss on the first output) and train.losses"),
    "no loss at all": (
        "  epochs: 2\n", "train:", "missing required key 'loss'"),
    "an rbm on a node that is not dense": (
        "  phases:\n    - {epochs: 1, rbm: {layer: fake}}\n",
        "- {epochs: 1, rbm", "'fake' is reshape; an RBM pretrains a dense node"),
    "an rbm on a relu layer": (
        "  phases:\n    - {epochs: 1, rbm: {layer: gen1}}\n",
        "- {epochs: 1, rbm", "'gen1' has activation relu; an RBM's hidden units are binary"),
    "an rbm on no node": (
        "  phases:\n    - {epochs: 1, rbm: {layer: gen3}}\n",
        "- {epochs: 1, rbm", "no node named 'gen3' (did you mean 'gen2'?)"),
    "a recipe and its keys written differently": (
        "  recipe: {gan: {generator: 'gen*', discriminator: 'disc.*', real: d_real, "
        "fake: d_fake}}\n  step: [g, d]\n",
        "step: [g, d]", "train.recipe gan writes train.step, and the spec writes it "
        "differently"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_mistake_is_located(tmp_path, case):
    train, line, message = CASES[case]
    found = problems(tmp_path, train)
    assert any(line in at and message in text for at, text in found), found


def test_a_noise_input_needs_its_shape(tmp_path):
    found = problems(tmp_path, GOOD, noise="    z: {noise: {normal: []}}")
    assert any(at.startswith("z: {noise") for at, _ in found), found


def test_a_noise_input_without_a_distribution(tmp_path):
    found = problems(tmp_path, GOOD, noise="    z: {noise: {shape: [4]}}")
    assert any(at.startswith("z: {noise") for at, _ in found), found


def test_the_recipe_expansion_loads_back(tmp_path):
    """A lock records a recipe and its expansion; reading it back expands to the same."""
    from dlspec.spec.model import thaw

    path = tmp_path / "gan.yaml"
    path.write_text(MODEL.format(digits=DIGITS, noise=NOISE, gen_act="relu") +
                    "  recipe: {gan: {generator: 'gen*', discriminator: 'disc.*', "
                    "real: d_real, fake: d_fake, d_steps: 2}}\n")
    spec = load_spec(path)
    t = thaw(spec.resolved["train"])
    assert t["step"] == ["d", "d", "g"]
    assert t["optimizers"]["d"]["minimize"] == ["d_real", "d_fake"]
    import yaml

    again = tmp_path / "again.yaml"
    again.write_text(yaml.safe_dump({k: v for k, v in thaw(spec.resolved).items()
                                     if v is not None}, sort_keys=False))
    assert load_spec(again).sha256 == spec.sha256
