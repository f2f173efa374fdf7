"""Training programs against PyTorch: a GAN's alternating steps ([d, g], each optimizer on
its own parameters, fresh noise per step) and an autoencoder's reconstruction loss,
reproduced step by step in torch from the same initial weights, batch order and noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from dlspec.engine.network import Network
from dlspec.engine.state import INIT_STREAM, LATENT_STREAM, SHUFFLE_STREAM, rng
from dlspec.engine.trainer import fit
from dlspec.spec.compile import compile_graph
from dlspec.spec.load import load_spec

torch = pytest.importorskip("torch", reason="PyTorch is the oracle of these tests")

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "data" / "digits.npz"
RTOL, ATOL = 2e-4, 2e-6   # float32 sums in another order, over a dozen steps

GAN = {
    "dlspec": 1, "name": "gan_oracle", "seed": 3,
    "data": {"source": str(DIGITS), "preprocess": [{"scale": 16}],
             "subset": {"train": 200}, "split": {"test": 0.2}},
    "model": {
        "inputs": {"image": {}, "z": {"noise": {"normal": [4]}}},
        "blocks": {"disc": {"inputs": ["x"], "nodes": {
            "flat": {"flatten": {}, "from": "x"},
            "h": {"dense": {"units": 8, "activation": "leaky_relu"}},
            "p": {"dense": {"units": 1, "activation": "sigmoid"}}}}},
        "nodes": {
            "gen1": {"dense": {"units": 8, "activation": "relu"}, "from": "z"},
            "gen2": {"dense": {"units": 64, "activation": "sigmoid"}},
            "fake": {"reshape": {"target_shape": [8, 8, 1]}},
            "d_real": {"call": "disc", "from": "image"},
            "d_fake": {"call": "disc", "from": "fake"}},
        "outputs": ["fake"]},
    "train": {"recipe": {"gan": {"generator": "gen*", "discriminator": "disc.*",
                                 "real": "d_real", "fake": "d_fake", "d_steps": 2,
                                 "lr": 0.01}},
              "batch_size": 32, "epochs": 2},
}


def _setup(tmp_path, doc):
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    spec = load_spec(path)
    from dlspec.inputs import load_dataset

    ds = load_dataset(spec)
    compiled = compile_graph(spec, ds.input_shapes, classes=ds.target.n_classes)
    return spec, ds, compiled


def _params(net: Network) -> dict[str, np.ndarray]:
    return net.buffer.state()


def _torch_params(start: dict) -> dict:
    return {k: torch.tensor(v, dtype=torch.float32, requires_grad=True)
            for k, v in start.items()}


def _dense(x, p, name, act):
    y = x @ p[f"{name}.kernel"] + p[f"{name}.bias"]
    return act(y)


def test_gan_steps_match_pytorch(tmp_path):
    spec, ds, compiled = _setup(tmp_path, GAN)
    net = Network(compiled.graph)
    start_net = Network(compile_graph(spec, ds.input_shapes,
                                      classes=ds.target.n_classes).graph)
    start_net.buffer.initialize(rng(spec.train.seed, INIT_STREAM))
    start = _params(start_net)
    fit(net, spec.train, ds.target.task, ds.x, ds.y, program=compiled.program)
    got = _params(net)

    p = _torch_params(start)
    leaky = torch.nn.LeakyReLU(0.2)

    def disc(x):
        h = _dense(x.reshape(len(x), -1), p, "disc.h", leaky)
        return _dense(h, p, "disc.p", lambda t: t)   # logits

    def gen(z):
        h = _dense(z, p, "gen1", torch.relu)
        return _dense(h, p, "gen2", torch.sigmoid)

    d_params = [p[k] for k in p if k.startswith("disc.")]
    g_params = [p[k] for k in p if k.startswith("gen")]
    opt_d = torch.optim.Adam(d_params, lr=0.01, betas=(0.5, 0.999), eps=1e-7)
    opt_g = torch.optim.Adam(g_params, lr=0.01, betas=(0.5, 0.999), eps=1e-7)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    x = torch.tensor(ds.x["train"]["image"])
    n, bs = len(x), spec.train.batch_size
    shuffle, latent = rng(spec.train.seed, SHUFFLE_STREAM), rng(spec.train.seed, LATENT_STREAM)
    for _ in range(spec.train.epochs):
        order = shuffle.permutation(n)
        for s in range(0, n, bs):
            real = x[order[s:s + bs]]
            rows = len(real)
            for _ in range(2):   # d_steps: 2
                z = torch.tensor(latent.standard_normal((rows, 4), dtype=np.float32))
                d_real, d_fake = disc(real), disc(gen(z))
                loss = bce(d_real, torch.ones_like(d_real)) + \
                    bce(d_fake, torch.zeros_like(d_fake))
                opt_d.zero_grad()
                grads = torch.autograd.grad(loss, d_params)
                for t, g in zip(d_params, grads, strict=True):
                    t.grad = g
                opt_d.step()
            z = torch.tensor(latent.standard_normal((rows, 4), dtype=np.float32))
            d_fake = disc(gen(z))
            loss = bce(d_fake, torch.ones_like(d_fake))
            grads = torch.autograd.grad(loss, g_params)
            for t, g in zip(g_params, grads, strict=True):
                t.grad = g
            opt_g.step()
    for name, value in p.items():
        np.testing.assert_allclose(got[name], value.detach().numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=name)
    assert any(not np.array_equal(got[k], start[k]) for k in got)


AUTOENCODER = {
    "dlspec": 1, "name": "ae_oracle", "seed": 5,
    "data": {"source": str(DIGITS), "preprocess": [{"scale": 16}],
             "subset": {"train": 150}, "split": {"test": 0.2}},
    "model": {"nodes": {
        "flat": {"flatten": {}},
        "code": {"dense": {"units": 6, "activation": "tanh"}},
        "decoded": {"dense": {"units": 64, "activation": "sigmoid"}}}},
    "train": {"recipe": {"autoencoder": {"loss": "binary_crossentropy"}},
              "optimizer": {"sgd": {"lr": 0.5, "momentum": 0.9}},
              "batch_size": 16, "epochs": 3},
}


def test_autoencoder_steps_match_pytorch(tmp_path):
    spec, ds, compiled = _setup(tmp_path, AUTOENCODER)
    net = Network(compiled.graph)
    start_net = Network(compile_graph(spec, ds.input_shapes,
                                      classes=ds.target.n_classes).graph)
    start_net.buffer.initialize(rng(spec.train.seed, INIT_STREAM))
    start = _params(start_net)
    result, _ = fit(net, spec.train, ds.target.task, ds.x, ds.y, program=compiled.program)
    got = _params(net)

    p = _torch_params(start)
    opt = torch.optim.SGD(list(p.values()), lr=0.5, momentum=0.9)
    x = torch.tensor(ds.x["train"]["image"]).reshape(-1, 64)
    n, bs = len(x), spec.train.batch_size
    shuffle = rng(spec.train.seed, SHUFFLE_STREAM)
    losses = []
    for _ in range(spec.train.epochs):
        order = shuffle.permutation(n)
        total = 0.0
        for s in range(0, n, bs):
            xb = x[order[s:s + bs]]
            logits = _dense(_dense(xb, p, "code", torch.tanh), p, "decoded", lambda t: t)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
        losses.append(total / n)
    for name, value in p.items():
        np.testing.assert_allclose(got[name], value.detach().numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=name)
    np.testing.assert_allclose([h["recon"] for h in result.history], losses, rtol=1e-5)
    assert losses[-1] < losses[0]
