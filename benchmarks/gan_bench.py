#!/usr/bin/env python
"""A GAN training step: dlspec's NumPy engine vs PyTorch CPU eager.

    python benchmarks/gan_bench.py [--quick] [--repeats N] [--json OUT.json]

The dense GAN of specs/mnist_gan.yaml: generator 100-256-512-1024-784 (leaky relu, tanh),
discriminator 784-512-256-1 (leaky relu, dropout 0.3, sigmoid), batch 64, one Adam
(lr 2e-4, beta_1 0.5) per network. One step is the recipe's [d, g]: the discriminator on
a real batch and on G(z1) (no gradient into G), then the generator through D on G(z2).
dlspec runs `dlspec.engine.trainer.fit` for one epoch of `steps` batches (its plans are
compiled inside the timed region); PyTorch the idiomatic loop (zero_grad, D(real),
D(G(z1).detach()), backward, step; zero_grad, D(G(z2)), backward, step), its noise drawn
from the same NumPy stream. Synthetic N(0, 1) "images".
"""

from __future__ import annotations

import dataclasses
import sys

import loops
import numpy as np

KEY, BATCH, Z = "gan", 64, 100
LABEL = "GAN step [d, g]: G 100-256-512-1024-784, D 784-512-256-1, batch 64"

SPEC = """\
dlspec: 1
name: gan_bench
data: {source: mnist}
model:
  inputs:
    image: {shape: [784]}
    z: {noise: {normal: [100]}}
  blocks:
    disc:
      inputs: [x]
      nodes:
        h1: {dense: {units: 512, activation: leaky_relu}, from: x}
        drop1: {dropout: DROP}
        h2: {dense: {units: 256, activation: leaky_relu}}
        drop2: {dropout: DROP}
        p: {dense: {units: 1, activation: sigmoid}}
  nodes:
    gen1: {dense: {units: 256, activation: leaky_relu}, from: z}
    gen2: {dense: {units: 512, activation: leaky_relu}}
    gen3: {dense: {units: 1024, activation: leaky_relu}}
    fake: {dense: {units: 784, activation: tanh}}
    d_real: {call: disc, from: image}
    d_fake: {call: disc, from: fake}
  outputs: [fake]
train:
  recipe:
    gan: {generator: ["gen*", "fake.*"], discriminator: "disc.*", real: d_real, fake: d_fake}
  batch_size: 64
  epochs: 1
  shuffle: false
"""


def synthetic(rows: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (np.tanh(rng.standard_normal((rows, 784), dtype=np.float32)),
            np.zeros(rows, dtype=np.int64))


class DlspecGan:
    """fit() over ``steps`` batches: the program's two plans, each step [d, g]."""

    def __init__(self, x: np.ndarray, seed: int = 0, drop: float = 0.3) -> None:
        from dlspec.engine.network import Network
        from dlspec.spec.compile import compile_graph

        spec = loops.load_spec_text(SPEC.replace("DROP", str(drop)), "gan")
        self.spec = spec
        compiled = compile_graph(spec, {"image": (784,)}, classes=1)
        self.net, self.program = Network(compiled.graph), compiled.program
        self.x = x
        self.seed = seed

    def reset(self) -> None:
        """fit() starts from fresh weights, optimizers and streams itself."""

    def run(self, steps: int) -> float:
        from dlspec.engine.trainer import fit

        rows = steps * BATCH
        train = dataclasses.replace(self.spec.train, seed=self.seed)
        x = {"train": {"image": self.x[:rows]}, "validation": {"image": self.x[:0]}}
        y = {"train": np.zeros(rows, np.int64), "validation": np.zeros(0, np.int64)}
        result, _ = fit(self.net, train, "multiclass", x, y, program=self.program)
        return result.history[-1]["g_loss"]


class TorchGan:
    """The idiomatic PyTorch GAN loop over the same batches, noise from the same stream."""

    def __init__(self, x: np.ndarray, seed: int = 0, drop: float = 0.3) -> None:
        import torch
        from torch import nn

        self.torch, self.seed = torch, seed
        torch.manual_seed(seed)
        act = nn.LeakyReLU(0.2)
        self.g = nn.Sequential(nn.Linear(Z, 256), act, nn.Linear(256, 512), act,
                               nn.Linear(512, 1024), act, nn.Linear(1024, 784), nn.Tanh())
        self.d = nn.Sequential(nn.Linear(784, 512), act, nn.Dropout(drop),
                               nn.Linear(512, 256), act, nn.Dropout(drop), nn.Linear(256, 1))
        self.x = torch.from_numpy(x)
        self.reset()

    def reset(self) -> None:
        torch = self.torch
        torch.manual_seed(self.seed)
        for m in [*self.g.modules(), *self.d.modules()]:
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=2e-4, betas=betas, eps=1e-7)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=2e-4, betas=betas, eps=1e-7)
        from dlspec.engine.state import LATENT_STREAM, rng

        self.latent = rng(self.seed, LATENT_STREAM)

    def run(self, steps: int) -> float:
        torch = self.torch
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        g, d = self.g, self.d
        loss = None
        for i in range(steps):
            real = self.x[i * BATCH:(i + 1) * BATCH]
            z = torch.from_numpy(self.latent.standard_normal((len(real), Z), dtype=np.float32))
            self.opt_d.zero_grad()
            d_real, d_fake = d(real), d(g(z).detach())
            loss_d = bce(d_real, torch.ones_like(d_real)) + \
                bce(d_fake, torch.zeros_like(d_fake))
            loss_d.backward()
            self.opt_d.step()
            z = torch.from_numpy(self.latent.standard_normal((len(real), Z), dtype=np.float32))
            self.opt_g.zero_grad()
            d_fake = d(g(z))
            loss = bce(d_fake, torch.ones_like(d_fake))
            loss.backward()
            self.opt_g.step()
        return float(loss.detach())


def dlspec_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> DlspecGan:
    return DlspecGan(x, seed)


def torch_loop(x: np.ndarray, y: np.ndarray, seed: int = 0) -> TorchGan:
    return TorchGan(x, seed)


def parity(steps: int = 5) -> float:
    """Max |dlspec - torch| over all weights after ``steps`` identical steps from the same
    weights and noise (dropout off: the two draw their masks differently)."""
    from dlspec.engine.state import INIT_STREAM, rng

    x, _ = synthetic(BATCH * steps, seed=7)
    d, t = DlspecGan(x, seed=3, drop=0.0), TorchGan(x, seed=3, drop=0.0)
    d.net.buffer.initialize(rng(3, INIT_STREAM))
    start = d.net.buffer.state()
    names = {"g": ("gen1", "gen2", "gen3", "fake"), "d": ("disc.h1", "disc.h2", "disc.p")}
    layers = [m for m in t.g if hasattr(m, "weight")] + [m for m in t.d if hasattr(m, "weight")]
    pairs = list(zip(layers, [*names["g"], *names["d"]], strict=True))
    with t.torch.no_grad():
        for m, name in pairs:
            m.weight.copy_(t.torch.from_numpy(start[f"{name}.kernel"].T.copy()))
            m.bias.copy_(t.torch.from_numpy(start[f"{name}.bias"]))
    d.run(steps)
    t.run(steps)
    end = d.net.buffer.state()
    worst = 0.0
    for m, name in pairs:
        worst = max(worst, float(np.abs(end[f"{name}.kernel"] - m.weight.detach().numpy().T)
                                 .max()), float(np.abs(end[f"{name}.bias"] -
                                                       m.bias.detach().numpy()).max()))
    return worst


if __name__ == "__main__":
    sys.exit(loops.main(sys.modules[__name__]))
