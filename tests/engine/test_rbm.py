"""The RBM engine against independent oracles: a straightforward float64 NumPy
implementation drawing the same random numbers, and exact expectations computed by
enumerating every state of a tiny RBM."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.engine.rbm import RBM
from tests.conftest import EXAMPLES


def sig(x):
    return 1 / (1 + np.exp(-x))


def reference(W, b, c, v0, *, k, visible, rng, chain=None, persistent=False):
    """CD-k / PCD-k written plainly in float64, drawing float32 uniforms and normals from
    ``rng`` in the order the engine documents. Returns (gW, gb, gc, err, chain)."""
    W, b, c, v0 = (np.asarray(a, np.float64) for a in (W, b, c, v0))
    n = len(v0)

    def mean_v(h):
        x = h @ W.T + c
        return sig(x) if visible == "binary" else x

    def sample_v(m):
        if visible == "binary":
            return (rng.random(m.shape, dtype=np.float32) < m).astype(np.float64)
        return m + rng.standard_normal(m.shape, dtype=np.float32)

    ph0 = sig(v0 @ W + b)
    h0 = (rng.random(ph0.shape, dtype=np.float32) < ph0).astype(np.float64)
    if persistent:
        err = np.mean((v0 - mean_v(h0)) ** 2)
        if chain is None:
            chain = h0.copy()
        elif len(chain) < n:
            chain = np.concatenate([chain, h0[len(chain):]])
        h = chain[:n].copy()
    else:
        h = h0
    for step in range(k):
        last = step == k - 1
        v = mean_v(h)
        if step == 0 and not persistent:
            err = np.mean((v0 - v) ** 2)
        if persistent or not last:
            v = sample_v(v)
        ph = sig(v @ W + b)
        if persistent or not last:
            h = (rng.random(ph.shape, dtype=np.float32) < ph).astype(np.float64)
    if persistent:
        chain = chain.copy()
        chain[:n] = h
    gW = -(v0.T @ ph0 - v.T @ ph) / n
    gb = -(ph0.sum(0) - ph.sum(0)) / n
    gc = -(v0.sum(0) - v.sum(0)) / n
    return gW, gb, gc, err, chain


def tiny(nv=12, nh=7, seed=0, scale=0.5):
    r = np.random.default_rng(seed)
    return (r.normal(0, scale, (nv, nh)).astype(np.float32),
            r.normal(0, 0.3, nh).astype(np.float32), r.normal(0, 0.3, nv).astype(np.float32))


def batch(n, nv, visible, seed):
    r = np.random.default_rng(seed)
    if visible == "binary":
        return (r.random((n, nv)) < 0.4).astype(np.float32)
    return r.normal(0, 1, (n, nv)).astype(np.float32)


@pytest.mark.parametrize("visible", ["binary", "gaussian"])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("persistent", [False, True])
def test_gradients_match_a_float64_reference(visible, k, persistent):
    W, b, c = tiny()
    rbm = RBM(W, b, visible=visible, cd_k=k, persistent=persistent,
              rng=np.random.default_rng(5), visible_bias=c)
    ref_rng, chain = np.random.default_rng(5), None
    sgd = OPTIMIZERS["sgd"].make(rbm.flat.size, {"lr": 0.05})
    # 9 rows, then 9, then a smaller last batch of 4, then 9 again: PCD's chains persist
    for i, n in enumerate([9, 9, 4, 9]):
        v0 = batch(n, 12, visible, seed=100 + i)
        gW, gb, gc, err, chain = reference(rbm.kernel, rbm.bias, rbm.visible_bias, v0, k=k,
                                           visible=visible, rng=ref_rng, chain=chain,
                                           persistent=persistent)
        got = rbm.gradients(v0)
        assert got == pytest.approx(err, rel=1e-5, abs=1e-7)
        np.testing.assert_allclose(rbm.grad[:W.size].reshape(W.shape), gW, rtol=1e-4,
                                   atol=2e-6)
        np.testing.assert_allclose(rbm.grad[W.size:W.size + 7], gb, rtol=1e-4, atol=2e-6)
        np.testing.assert_allclose(rbm.grad[W.size + 7:], gc, rtol=1e-4, atol=2e-6)
        sgd.step(rbm.flat, rbm.grad)
    # both sides drew the same numbers, no more and no fewer
    assert rbm.rng.random() == ref_rng.random()


def test_layout_views_and_copies():
    W, b, c = tiny(5, 3)
    rbm = RBM(W, b, rng=np.random.default_rng(0))
    assert rbm.flat.ctypes.data % 64 == 0 and rbm.grad.ctypes.data % 64 == 0
    assert rbm.flat.dtype == np.float32 and rbm.flat.size == 5 * 3 + 3 + 5
    np.testing.assert_array_equal(rbm.flat, np.concatenate([W.ravel(), b, np.zeros(5)]))
    for view in (rbm.kernel, rbm.bias, rbm.visible_bias):
        assert np.shares_memory(view, rbm.flat)
    assert not np.shares_memory(rbm.kernel, W)  # copied: the caller's arrays stay put
    rbm.flat[:] = 1
    assert W[0, 0] != 1 and rbm.kernel[0, 0] == 1 and rbm.visible_bias[-1] == 1
    rbm2 = RBM(W, b, rng=np.random.default_rng(0), visible_bias=c)
    np.testing.assert_array_equal(rbm2.visible_bias, c)


def test_misuse_is_refused_with_the_shapes():
    W, b, _ = tiny(5, 3)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\)"):
        RBM(W, b[:2], rng=rng)
    with pytest.raises(ValueError, match="visible must be one of"):
        RBM(W, b, rng=rng, visible="softmax")
    with pytest.raises(ValueError, match="cd_k must be a positive integer"):
        RBM(W, b, rng=rng, cd_k=0)
    with pytest.raises(ValueError, match=r"shape \(n, 5\).*got shape \(4, 6\)"):
        RBM(W, b, rng=rng).gradients(np.zeros((4, 6), np.float32))


def test_same_seed_same_weights_bit_for_bit():
    def train(seed, persistent):
        W, b, _ = tiny(20, 8)
        rbm = RBM(W, b, rng=np.random.default_rng(seed), cd_k=2, persistent=persistent)
        opt = OPTIMIZERS["adam"].make(rbm.flat.size, {"lr": 0.01})
        for i in range(6):
            rbm.gradients(batch(16 if i < 5 else 7, 20, "binary", seed=i))
            opt.step(rbm.flat, rbm.grad)
        return rbm.flat.copy()

    for persistent in (False, True):
        assert np.array_equal(train(3, persistent), train(3, persistent))
        assert not np.array_equal(train(3, persistent), train(4, persistent))


def test_persistent_chains_carry_over_and_a_smaller_batch_uses_the_first():
    W, b, c = tiny(6, 4, scale=1.0)
    rbm = RBM(W, b, visible_bias=c, persistent=True, rng=np.random.default_rng(1))
    rbm.gradients(batch(8, 6, "binary", 0))
    first = rbm._chain.copy()
    rbm.gradients(batch(3, 6, "binary", 1))
    assert rbm._chain.shape == (8, 4)
    np.testing.assert_array_equal(rbm._chain[3:], first[3:])  # the rest of the chains wait
    # a fresh (non-persistent) start from the same data and draws gives another update
    pcd = RBM(W, b, visible_bias=c, persistent=True, rng=np.random.default_rng(1))
    cd = RBM(W, b, visible_bias=c, persistent=False, rng=np.random.default_rng(1))
    for v in (batch(64, 6, "binary", 2), batch(64, 6, "binary", 3)):
        pcd.gradients(v)
        cd.gradients(v)
    assert not np.allclose(pcd.grad, cd.grad, atol=1e-3)


# -- exact expectations of a 4 x 3 RBM by enumerating its 16 x 8 states ------------------

V_ALL = np.array(list(itertools.product([0, 1], repeat=4)), np.float64)
H_ALL = np.array(list(itertools.product([0, 1], repeat=3)), np.float64)
DATA = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 1, 0], [0, 1, 0, 0],
                 [0, 0, 0, 1]], np.float32)


def bernoulli(p, states):
    """P(states | p): rows of p (m, d) against the 2^d states (s, d) -> (m, s)."""
    return np.prod(np.where(states[None] == 1, p[:, None], 1 - p[:, None]), axis=2)


def exact_ll_gradient(W, b, c):
    """Negative gradient of the data's mean log-likelihood (the exact counterpart of what
    CD estimates), by summing over all 128 joint states."""
    W, b, c = (a.astype(np.float64) for a in (W, b, c))
    logp = V_ALL @ W @ H_ALL.T + (V_ALL @ c)[:, None] + (H_ALL @ b)[None]  # -E(v, h)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    ph_data = sig(DATA @ W + b)
    gW = -(DATA.T @ ph_data / len(DATA) - V_ALL.T @ p @ H_ALL)
    gb = -(ph_data.mean(0) - p.sum(0) @ H_ALL)
    gc = -(DATA.mean(0) - p.sum(1) @ V_ALL)
    return gW, gb, gc


def exact_cd_expectation(W, b, c, k):
    """E[the CD-k estimate] with binary visible units as the engine defines it, exactly:
    the hidden chain h0 ~ p(h|v0), k - 1 Gibbs transitions (visible states sampled), then
    the last reconstruction's probabilities vk = p(v|h) and p(h|vk)."""
    W, b, c = (a.astype(np.float64) for a in (W, b, c))
    pv_of_h = sig(H_ALL @ W.T + c)                                     # (8, 4)
    trans = bernoulli(pv_of_h, V_ALL) @ bernoulli(sig(V_ALL @ W + b), H_ALL)  # (8, 8)
    ph_data = sig(DATA @ W + b)
    q = bernoulli(ph_data, H_ALL).mean(0) @ np.linalg.matrix_power(trans, k - 1)  # (8,)
    ph_recon = sig(pv_of_h @ W + b)                                    # (8, 3)
    gW = -(DATA.T @ ph_data / len(DATA) - pv_of_h.T @ (q[:, None] * ph_recon))
    gb = -(ph_data.mean(0) - q @ ph_recon)
    gc = -(DATA.mean(0) - q @ pv_of_h)
    return gW, gb, gc


def tiny_exact_rbm():
    r = np.random.default_rng(11)
    return (r.normal(0, 1.0, (4, 3)).astype(np.float32), r.normal(0, 0.5, 3).astype(np.float32),
            r.normal(0, 0.5, 4).astype(np.float32))


def mean_gradient(rbm, calls, burn_in=0):
    v0 = np.tile(DATA, (500, 1))  # 3,000 chains
    for _ in range(burn_in):
        rbm.gradients(v0)
    total = np.zeros(rbm.grad.size)
    for _ in range(calls):
        rbm.gradients(v0)
        total += rbm.grad
    return np.split(total / calls, [12, 15])


@pytest.mark.parametrize("k", [1, 4])
def test_cd_k_averages_to_its_exact_expectation(k):
    # 40 calls x 3,000 independent chains = 120,000 draws of each term, whose standard
    # deviation is at most 0.5 (a product of numbers in [0, 1]): a standard error of at
    # most 0.0015 (measured: below 0.0008), so atol 0.006 is at least 4 standard errors. A
    # wrong sign, a missing term or a wrong sampling order moves the terms by 0.05 or more.
    W, b, c = tiny_exact_rbm()
    rbm = RBM(W, b, visible_bias=c, cd_k=k, rng=np.random.default_rng(0))
    got = mean_gradient(rbm, calls=40)
    for g, want in zip(got, exact_cd_expectation(W, b, c, k), strict=True):
        np.testing.assert_allclose(g.reshape(want.shape), want, atol=0.006)


def test_pcd_averages_to_the_exact_log_likelihood_gradient():
    # Persistent chains sample the model itself (their visible states are sampled), so once
    # they have mixed, the average update is the exact log-likelihood gradient. 3,000
    # chains x 40 calls after 10 calls of burn-in; successive calls of a chain are
    # correlated, but this RBM mixes within a few steps: the block-mean standard error
    # measured over 8 blocks of 5 calls is at most 0.0016, so atol 0.01 is about 6 of them
    # (measured deviation: 0.0007).
    W, b, c = tiny_exact_rbm()
    rbm = RBM(W, b, visible_bias=c, persistent=True, rng=np.random.default_rng(0))
    got = mean_gradient(rbm, calls=40, burn_in=10)
    exact = exact_ll_gradient(W, b, c)
    for g, want in zip(got, exact, strict=True):
        np.testing.assert_allclose(g.reshape(want.shape), want, atol=0.01)
    # The test has power: CD-1's expectation is not the likelihood's gradient here.
    cd1 = exact_cd_expectation(W, b, c, 1)
    assert max(np.abs(a - e).max() for a, e in zip(cd1, exact, strict=True)) > 0.05


def test_free_energy_is_minus_log_of_the_summed_joint():
    W, b, c = tiny_exact_rbm()
    for visible in ("binary", "gaussian"):
        rbm = RBM(W, b, visible_bias=c, visible=visible, rng=np.random.default_rng(0))
        v = V_ALL if visible == "binary" else np.random.default_rng(2).normal(0, 1, (5, 4))
        energy = -(v @ W.astype(np.float64) @ H_ALL.T) - (H_ALL @ b)[None]
        energy += (-(v @ c))[:, None] if visible == "binary" else \
            (0.5 * ((v - c) ** 2).sum(1))[:, None]
        want = -np.log(np.exp(-energy).sum(1))
        got = rbm.free_energy(v.astype(np.float32))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_reconstruct_and_hidden_probs_are_deterministic_mean_field():
    W, b, c = tiny()
    for visible in ("binary", "gaussian"):
        rbm = RBM(W, b, visible_bias=c, visible=visible, rng=np.random.default_rng(0))
        v = batch(10, 12, visible, 3)
        x = sig(v @ W.astype(np.float64) + b) @ W.T.astype(np.float64) + c
        want = sig(x) if visible == "binary" else x
        before = rbm.rng.bit_generator.state
        np.testing.assert_allclose(rbm.reconstruct(v), want, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rbm.hidden_probs(v), sig(v @ W.astype(np.float64) + b),
                                   rtol=1e-5, atol=1e-7)
        assert rbm.rng.bit_generator.state == before


def test_init_visible_bias_is_the_clipped_logit_of_the_data_mean():
    W, b, _ = tiny(4, 3)
    v = np.array([[1, 0, 1, 0], [1, 0, 0, 0], [1, 0, 1, 1], [1, 0, 0, 0]], np.float32)
    rbm = RBM(W, b, rng=np.random.default_rng(0))
    rbm.init_visible_bias(v)
    p = np.clip([1.0, 0.0, 0.5, 0.25], 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(rbm.visible_bias, np.log(p / (1 - p)), rtol=1e-6)
    g = RBM(W, b, rng=np.random.default_rng(0), visible="gaussian")
    g.init_visible_bias(v)
    np.testing.assert_allclose(g.visible_bias, v.mean(0))


def test_reconstruction_error_falls_on_binarized_digits():
    with np.load(EXAMPLES / "digits.npz") as d:
        x = (d["x"].reshape(len(d["x"]), -1) > 7).astype(np.float32)  # 1,797 digits, 8x8
    rng = np.random.default_rng(0)
    rbm = RBM(rng.normal(0, 0.01, (64, 32)).astype(np.float32), np.zeros(32, np.float32),
              rng=rng)
    rbm.init_visible_bias(x)
    opt = OPTIMIZERS["sgd"].make(rbm.flat.size, {"lr": 0.1, "momentum": 0.5})
    errors = []
    for _ in range(8):
        order, total = rng.permutation(len(x)), 0.0
        for start in range(0, len(x), 50):  # the last batch has 47 rows
            rows = x[order[start:start + 50]]
            total += rbm.gradients(rows) * len(rows)
            opt.step(rbm.flat, rbm.grad)
        errors.append(total / len(x))
    assert all(a > b for a, b in zip(errors[:4], errors[1:5], strict=True)), errors
    assert errors[-1] < 0.6 * errors[0], errors
    # and the trained model prefers the digits to noise of the same density
    noise = (rng.random(x.shape) < x.mean()).astype(np.float32)
    assert rbm.free_energy(x).mean() < rbm.free_energy(noise).mean() - 5
