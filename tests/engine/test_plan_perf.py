"""The optimised training plan against the straightforward one, and its buffer reuse.

``Plan(..., fuse=False)`` runs one kernel per node through the ops' own rules with fresh
arrays each step: the reference. The fused plan (what ``Network.train_plan`` is) must
train the same curve within float32 rounding, and reuse its buffers from step to step.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from dlspec.engine.network import Network
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.engine.plan import Plan
from dlspec.spec.load import load_spec
from dlspec.spec.model import LayerSpec
from tests.conftest import SPECS


def _layer(type_: str, name: str, **params) -> LayerSpec:
    return LayerSpec(type_, name, {"name": name, **params})


def _dense(name: str, units: int, activation: str) -> LayerSpec:
    return _layer("dense", name, units=units, activation=activation,
                  initializer="glorot_uniform", bias=True, bias_initializer="zeros",
                  trainable=True)


def _churn_like() -> tuple[Network, np.ndarray, np.ndarray, int]:
    layers = [_dense("d1", 6, "relu"), _dense("d2", 6, "relu"), _dense("d3", 1, "sigmoid")]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 11)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    return Network(layers, 11, "binary_crossentropy"), x, y, 10


def _small_cnn() -> tuple[Network, np.ndarray, np.ndarray, int]:
    spec = load_spec(SPECS / "mnist_cnn.yaml", check_data=False)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 96)
    x = (rng.random((96, 28, 28, 1)) * 0.3 + y[:, None, None, None] / 10).astype(np.float32)
    x[:, :6] = 0  # a flat border: max-pool windows tie, as on real digits
    return Network(spec.layers, (28, 28, 1), spec.train.loss), x, y, 32


def _train(net: Network, plan: Plan, x: np.ndarray, y: np.ndarray, bs: int,
           steps: int) -> list[float]:
    net.buffer.initialize(np.random.default_rng(7))
    opt = OPTIMIZERS["adam"].make(net.buffer.flat.size, {"lr": 1e-2, "epsilon": 1e-7})
    noise = np.random.default_rng(8)
    s = plan.new_slots()
    losses = []
    for step in range(steps):
        start = step * bs % len(x)
        xb, yb = x[start:start + bs], y[start:start + bs]
        s[plan.input_slots[0]] = xb
        for slot, rate in plan.noise_slots:
            shape = (len(xb), *net.graph.values[slot].shape[1:])
            s[slot] = (noise.random(shape, dtype=np.float32) >= rate) * np.float32(1 / (1 - rate))
        plan.forward(s)
        loss, g = net.loss.fn(s[plan.seed_slot], yb)
        plan.backward(s, g)
        opt.step(net.buffer.flat, net.buffer.grad)
        losses.append(loss)
    return losses


@pytest.mark.parametrize("make", [_churn_like, _small_cnn], ids=["churn_mlp", "cnn"])
def test_fused_plan_trains_the_reference_curve(make) -> None:
    net, x, y, bs = make()
    reference = Plan(net.graph, net.buffer, seed=net.loss_input, fuse=False)
    want = _train(net, reference, x, y, bs, 20)
    want_weights = net.buffer.flat.copy()
    got = _train(net, net.train_plan, x, y, bs, 20)
    assert any(type(k).__name__ != "OpKernel" for k in net.train_plan.kernels)
    np.testing.assert_allclose(got, want, rtol=1e-4)
    # Adam turns any gradient into a step of about lr, so one that is zero in one plan and
    # rounding noise in the other moves its weight apart: compare the weights as a whole.
    # The CNN's plans round differently (other GEMM blockings), and a max-pool window whose
    # two largest values differ by rounding alone sends its gradient elsewhere: measured
    # over six data seeds, the relative difference after 20 steps was 5e-6 to 2.1e-3, with
    # the fused kernel's products per window offset as with one product for all offsets.
    # The tie rule itself is checked exactly in tests/ops/test_fused.py.
    diff = np.linalg.norm(net.buffer.flat - want_weights) / np.linalg.norm(want_weights)
    assert diff < (5e-3 if make is _small_cnn else 1e-4), diff
    assert got[-1] < got[0]


def _step(net: Network, plan: Plan, s: list, xb: np.ndarray, yb: np.ndarray) -> None:
    s[plan.input_slots[0]] = xb
    for slot, _ in plan.noise_slots:
        s[slot] = np.ones((len(xb), *net.graph.values[slot].shape[1:]), np.float32)
    plan.forward(s)
    _, g = net.loss.fn(s[plan.seed_slot], yb)
    plan.backward(s, g)


def test_buffers_are_reused_across_steps_and_batch_sizes() -> None:
    net, x, y, bs = _small_cnn()
    net.buffer.initialize(np.random.default_rng(0))
    plan = net.train_plan
    s = plan.new_slots()
    outs = [k.out for k in plan.kernels if type(k).__name__ != "OpKernel"]
    assert len(outs) == 4  # two conv blocks (conv, bias, relu, pool) and two dense layers

    def pointers() -> list[int]:
        return [s[i].ctypes.data for i in outs]

    _step(net, plan, s, x[:bs], y[:bs])
    first = pointers()
    _step(net, plan, s, x[bs:2 * bs], y[bs:2 * bs])
    assert pointers() == first
    _step(net, plan, s, x[:5], y[:5])        # the last, partial batch has its own buffers
    partial = pointers()
    assert all(a != b for a, b in zip(partial, first, strict=True))
    _step(net, plan, s, x[:bs], y[:bs])
    assert pointers() == first
    _step(net, plan, s, x[:5], y[:5])
    assert pointers() == partial
    assert all(p % 64 == 0 for p in first)
    assert plan.held_arrays()
    plan.release()
    assert plan.held_arrays() == []


def _peak_bytes(net: Network, plan: Plan, xb: np.ndarray, yb: np.ndarray) -> int:
    s = plan.new_slots()
    _step(net, plan, s, xb, yb)  # the fused plan allocates its buffers here
    tracemalloc.start()
    try:
        _step(net, plan, s, xb, yb)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


def test_a_training_step_allocates_no_activation_sized_arrays() -> None:
    net, x, y, bs = _small_cnn()
    net.buffer.initialize(np.random.default_rng(0))
    reference = Plan(net.graph, net.buffer, seed=net.loss_input, fuse=False)
    fresh = _peak_bytes(net, reference, x[:bs], y[:bs])
    reused = _peak_bytes(net, net.train_plan, x[:bs], y[:bs])
    largest = max(int(np.prod(v.shape[1:])) for v in net.graph.values if v.kind == "op") * bs * 4
    # What remains: the dropout mask, the loss's (N, 10) arrays, and NumPy's transient
    # copies for in-place additions into strided views (col2im).
    assert reused < largest < fresh / 4, (reused, largest, fresh)
