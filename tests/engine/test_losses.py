"""Losses against independent float64 formulas (value and gradient).

The oracle gradients are themselves checked by float64 central differences of
the oracle values; the float32 gradients dlspec returns are then compared with
those analytic float64 gradients (differencing the float32 loss is too noisy).
"""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.engine.losses import LOSSES

N, K = 12, 4
EPS = 1e-6


def _bce_value(z: np.ndarray, y: np.ndarray) -> float:
    p = 1 / (1 + np.exp(-z))
    y = y.reshape(z.shape)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _bce_grad(z, y):
    return (1 / (1 + np.exp(-z)) - y.reshape(z.shape)) / z.size


def _onehot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[y.astype(np.int64)]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    # z is bounded in these tests, so the unshifted form is exact enough in float64.
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _cce_value(z, y):
    return float(-np.mean(np.sum(_onehot(y, z.shape[1]) * _log_softmax(z), axis=1)))


def _cce_grad(z, y):
    return (np.exp(_log_softmax(z)) - _onehot(y, z.shape[1])) / z.shape[0]


def _regression_sample(rng):
    z = rng.uniform(-2, 2, (N, 3))
    # |z - y| >= 0.05, away from MAE's kink
    y = z + rng.choice([-1, 1], (N, 3)) * rng.uniform(0.05, 1.5, (N, 3))
    return z.astype(np.float32), y.astype(np.float32)


def _binary_sample(rng):
    return (rng.uniform(-4, 4, (N, 1)).astype(np.float32),
            rng.integers(0, 2, N).astype(np.float32))


def _multiclass_sample(rng):
    return rng.uniform(-4, 4, (N, K)).astype(np.float32), rng.integers(0, K, N)


# name -> (sample(rng) -> (z float32, y), value(z64, y64), dvalue/dz(z64, y64))
ORACLES = {
    "binary_crossentropy": (_binary_sample, _bce_value, _bce_grad),
    "categorical_crossentropy": (_multiclass_sample, _cce_value, _cce_grad),
    "mse": (_regression_sample,
            lambda z, y: float(np.mean((z - y) ** 2)),
            lambda z, y: 2 * (z - y) / z.size),
    "mae": (_regression_sample,
            lambda z, y: float(np.mean(np.abs(z - y))),
            lambda z, y: np.sign(z - y) / z.size),
}


def test_every_loss_has_an_oracle() -> None:
    assert set(ORACLES) == set(LOSSES)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_value_and_gradient_match_float64_oracle(name: str, seed: int) -> None:
    sample, value, grad = ORACLES[name]
    z, y = sample(np.random.default_rng(seed))
    z64, y64 = z.astype(np.float64), y.astype(np.float64)

    loss, dz = LOSSES[name].fn(z, y)
    assert isinstance(loss, float)
    assert dz.dtype == np.float32
    assert dz.shape == z.shape
    np.testing.assert_allclose(loss, value(z64, y64), rtol=1e-5)

    expected = grad(z64, y64)
    # The oracle's gradient is the derivative of the oracle's value ...
    v = np.random.default_rng(100 + seed).standard_normal(z.shape)
    numeric = (value(z64 + EPS * v, y64) - value(z64 - EPS * v, y64)) / (2 * EPS)
    np.testing.assert_allclose(np.sum(expected * v), numeric, rtol=1e-6, atol=1e-9)
    # ... and dlspec's float32 gradient matches it.
    np.testing.assert_allclose(dz, expected, rtol=1e-4, atol=1e-8)


def test_bce_is_finite_for_extreme_logits() -> None:
    z = np.array([[100.0], [-100.0], [100.0], [-100.0]], dtype=np.float32)
    y = np.array([1, 0, 0, 1], dtype=np.float32)
    loss, dz = LOSSES["binary_crossentropy"].fn(z, y)
    assert np.isfinite(loss)
    assert np.isfinite(dz).all()
    # right with certainty: 0; wrong with certainty: |z| each
    np.testing.assert_allclose(loss, 50.0, rtol=1e-6)
    np.testing.assert_allclose(dz.ravel(), [0, 0, 0.25, -0.25], atol=1e-7)


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.float32])
def test_cce_integer_and_onehot_labels_agree(label_dtype) -> None:
    rng = np.random.default_rng(0)
    z = rng.uniform(-3, 3, (N, K)).astype(np.float32)
    labels = rng.integers(0, K, N)
    onehot = np.eye(K, dtype=np.float32)[labels]
    fn = LOSSES["categorical_crossentropy"].fn

    loss_int, dz_int = fn(z, labels.astype(label_dtype))
    loss_hot, dz_hot = fn(z, onehot)
    assert loss_int == loss_hot
    np.testing.assert_array_equal(dz_int, dz_hot)
    assert dz_int.dtype == np.float32
