"""The torch op table against dlspec's registry: it covers every op (the list of
exceptions is empty), and each op's torch form computes what the NumPy forward computes
on the registry's own samples, its gradient what the op's vjp gives."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.ops import OPS

torch = pytest.importorskip("torch", reason="the torch engine needs torch (the torch extra)")

from dlspec.torchengine.ops import TORCH_OPS, TORCH_UPDATES  # noqa: E402

# Ops the torch engine cannot run; each would be refused with a located message at
# validate time (dlspec.torchengine.check). None today.
EXCEPTIONS: frozenset[str] = frozenset()


def test_the_table_covers_the_registry():
    assert set(TORCH_OPS) | EXCEPTIONS == set(OPS)
    assert not set(TORCH_OPS) - set(OPS), "a torch form of an op the registry lacks"
    assert {name for name, op in OPS.items() if op.update} == set(TORCH_UPDATES)


def _tensor(a):
    t = torch.from_numpy(np.array(a, copy=True))
    if t.is_floating_point():
        t.requires_grad_(True)
    return t


@pytest.mark.parametrize("name", sorted(OPS))
def test_forward_and_gradient_match_numpy(name):
    op = OPS[name]
    xs, attrs = op.sample(np.random.default_rng(0))
    want = op.forward(*xs, **attrs)
    ts = [_tensor(x) for x in xs]
    got = TORCH_OPS[name](*ts, **attrs)
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-5, atol=1e-6,
                               err_msg=f"{name} forward")
    g = np.random.default_rng(1).standard_normal(np.shape(want)).astype(np.float32)
    if not got.requires_grad:   # stop_gradient: no gradient on either side
        assert all(v is None for v in op.vjp(g, want, *xs, **attrs)), name
        return
    got.backward(torch.from_numpy(g))
    for i, (vjp, t) in enumerate(zip(op.vjp(g, want, *xs, **attrs), ts, strict=True)):
        if vjp is None or i in op.no_grad or not t.requires_grad:
            continue
        assert t.grad is not None, f"{name}: no gradient reaches input {i}"
        np.testing.assert_allclose(t.grad.numpy(), vjp, rtol=1e-4, atol=1e-5,
                                   err_msg=f"{name} gradient of input {i}")


def test_batchnorm_update_matches_numpy():
    op = OPS["batchnorm_train"]
    xs, attrs = op.sample(np.random.default_rng(0))
    want = op.update(op.forward(*xs, **attrs), *xs, **attrs)
    got = TORCH_UPDATES["batchnorm_train"](*(torch.from_numpy(x) for x in xs), **attrs)
    assert want.keys() == got.keys()
    for i in want:
        np.testing.assert_allclose(got[i].numpy(), want[i], rtol=1e-5, atol=1e-6)
