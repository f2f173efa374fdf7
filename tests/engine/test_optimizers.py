"""Optimizer updates against torch.optim, the independent oracle."""

from __future__ import annotations

import io

import numpy as np
import pytest

from dlspec.engine.optimizers import OPTIMIZERS

torch = pytest.importorskip(
    "torch", reason="torch (test-only dependency) is the oracle for optimizer updates")

N = 1_000
STEPS = 20
RTOL, ATOL = 1e-5, 1e-6

# (id, optimizer, our hyperparameters beyond the defaults)
CASES = [
    ("sgd_defaults", "sgd", {}),
    ("sgd_plain", "sgd", {"lr": 0.1}),
    ("sgd_momentum", "sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd_nesterov", "sgd", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("adam_defaults", "adam", {}),
    ("adam", "adam", {"lr": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
    ("adagrad_defaults", "adagrad", {}),
    ("adagrad", "adagrad", {"lr": 0.05, "initial_accumulator": 0.5, "epsilon": 1e-6}),
    ("rmsprop_defaults", "rmsprop", {}),
    ("rmsprop", "rmsprop", {"lr": 0.01, "rho": 0.8, "epsilon": 1e-6}),
    ("rmsprop_momentum", "rmsprop", {"lr": 0.01, "rho": 0.9, "momentum": 0.7}),
]


def _full(name: str, hyper: dict) -> dict:
    return {k: s["default"] for k, s in OPTIMIZERS[name].params.items()} | hyper


def _torch_optimizer(name: str, hyper: dict, param):
    h = _full(name, hyper)
    if name == "sgd":
        return torch.optim.SGD([param], lr=h["lr"], momentum=h["momentum"],
                               nesterov=h["nesterov"])
    if name == "adam":
        return torch.optim.Adam([param], lr=h["lr"], betas=(h["beta_1"], h["beta_2"]),
                                eps=h["epsilon"])
    if name == "adagrad":
        return torch.optim.Adagrad([param], lr=h["lr"], eps=h["epsilon"],
                                   initial_accumulator_value=h["initial_accumulator"])
    if name == "rmsprop":
        return torch.optim.RMSprop([param], lr=h["lr"], alpha=h["rho"], eps=h["epsilon"],
                                   momentum=h["momentum"])
    raise AssertionError(f"no torch.optim counterpart for {name!r}; add one to this test")


def _problem(seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(N).astype(np.float32)
    grads = [rng.standard_normal(N).astype(np.float32) for _ in range(STEPS)]
    return p0, grads


def test_every_optimizer_has_a_case() -> None:
    assert {name for _, name, _ in CASES} == set(OPTIMIZERS)


@pytest.mark.parametrize(("name", "hyper"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_torch_optim(name: str, hyper: dict) -> None:
    p0, grads = _problem()
    p = p0.copy()
    ours = OPTIMIZERS[name].make(N, hyper)
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    theirs = _torch_optimizer(name, hyper, tp)

    for t, g in enumerate(grads, 1):
        ours.step(p, g)
        tp.grad = torch.from_numpy(g.copy())
        theirs.step()
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name} {hyper} at step {t}")
    assert p.dtype == np.float32
    assert all(b.dtype == np.float32 for b in ours.buffers.values())
    assert not np.array_equal(p, p0)


def _checkpoint(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Through an .npz, as a run directory stores it."""
    f = io.BytesIO()
    np.savez(f, **state)
    f.seek(0)
    with np.load(f) as z:
        return {k: z[k] for k in z.files}


@pytest.mark.parametrize(("name", "hyper"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_state_round_trip_continues_identically(name: str, hyper: dict) -> None:
    p0, grads = _problem(1)
    a = OPTIMIZERS[name].make(N, hyper)
    p = p0.copy()
    for g in grads[:10]:
        a.step(p, g)
    state = _checkpoint(a.state())

    b = OPTIMIZERS[name].make(N, hyper)
    b.load_state(state)
    assert b.t == a.t == 10
    q = p.copy()
    for g in grads[10:]:
        a.step(p, g)
        b.step(q, g)
    np.testing.assert_array_equal(p, q)
    assert q.dtype == np.float32


def test_state_is_a_snapshot() -> None:
    p0, grads = _problem(2)
    opt = OPTIMIZERS["adam"].make(N, {})
    opt.step(p0, grads[0])
    state = opt.state()
    before = {k: v.copy() for k, v in state.items()}
    opt.step(p0, grads[1])
    for k, v in before.items():
        np.testing.assert_array_equal(state[k], v, err_msg=k)
