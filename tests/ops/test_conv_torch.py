"""conv2d and 2-D pooling against PyTorch: forward values and gradients (torch.autograd).

dlspec is channels-last (N, H, W, C) with [KH, KW, C, O] kernels; torch is NCHW with
[O, C, KH, KW]: inputs are permuted on the way in and results on the way out. Asymmetric
padding is an explicit F.pad in torch (its conv2d pads symmetrically).
"""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.ops import OPS
from dlspec.ops.conv import same_pads

torch = pytest.importorskip("torch", reason="PyTorch is the test oracle for conv and pooling")
F = torch.nn.functional

RTOL, ATOL = 1e-4, 1e-5


def _nchw(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))).requires_grad_(True)


def _nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def _check(name, got, want, what, scaled=False):
    # scaled: sums of thousands of float32 products differ by rounding relative to their
    # size, not absolutely; the absolute tolerance then scales with the largest value.
    atol = ATOL * max(1.0, float(np.abs(want).max())) if scaled else ATOL
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=f"{name}: {what}")


CONV_CASES = {
    # name: (kernel, strides, padding, dilations, groups)
    "valid_s1": ((3, 3), (1, 1), "valid", (1, 1), 1),
    "valid_s2": ((3, 3), (2, 2), "valid", (1, 1), 1),
    "same_s1": ((3, 3), (1, 1), "same", (1, 1), 1),
    "same_s2": ((3, 3), (2, 2), "same", (1, 1), 1),
    "same_s2_k4x2": ((4, 2), (2, 2), "same", (1, 1), 1),
    "explicit_asymmetric_s2": ((3, 3), (2, 1), (2, 0, 1, 3), (1, 1), 1),
    "dilation2": ((3, 3), (1, 1), "valid", (2, 2), 1),
    "dilation2_same_s2": ((3, 3), (2, 2), "same", (2, 2), 1),
    "kernel_1x1": ((1, 1), (1, 1), "valid", (1, 1), 1),
    "pads_beyond_kernel": ((3, 3), (2, 3), (4, 1, 3, 5), (1, 1), 1),   # taps reading only zeros
}


def _pads(padding, hw, kernel, strides, dilations):
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        (t, b), (left, r) = (same_pads(n, k, s, d) for n, k, s, d in
                             zip(hw, kernel, strides, dilations, strict=True))
        return (t, left, b, r)
    return padding


def _conv_against_torch(name, x, w, kernel, strides, padding, dilations, groups,
                        scaled=False):
    pads = _pads(padding, x.shape[1:3], kernel, strides, dilations)
    attrs = {"strides": strides, "pads": pads, "dilations": dilations, "groups": groups}
    op = OPS["conv2d"]
    y = op.forward(x, w, **attrs)
    assert y.shape == op.shape(x.shape, w.shape, **attrs)
    g = np.random.default_rng(7).standard_normal(y.shape).astype(np.float32)
    dx, dw = op.vjp(g, y, x, w, **attrs)

    xt, wt = _nchw(x), torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
    wt.requires_grad_(True)
    t, left, b, r = pads
    yt = F.conv2d(F.pad(xt, (left, r, t, b)), wt, stride=strides, dilation=dilations,
                  groups=groups)
    yt.backward(torch.from_numpy(np.ascontiguousarray(g.transpose(0, 3, 1, 2))))
    _check(name, y, _nhwc(yt), "forward", scaled)
    _check(name, dx, _nhwc(xt.grad), "dx", scaled)
    _check(name, dw, wt.grad.numpy().transpose(2, 3, 1, 0), "dw", scaled)


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_matches_torch(name):
    kernel, strides, padding, dilations, groups = CONV_CASES[name]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 9, 3)).astype(np.float32)
    w = rng.standard_normal((*kernel, 3, 5)).astype(np.float32)
    _conv_against_torch(name, x, w, kernel, strides, padding, dilations, groups)


@pytest.mark.parametrize(("c", "o", "groups"), [(4, 6, 2), (4, 8, 4), (6, 6, 6)])
def test_grouped_and_depthwise_conv2d_match_torch(c, o, groups):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 9, c)).astype(np.float32)
    w = rng.standard_normal((3, 3, c // groups, o)).astype(np.float32)
    _conv_against_torch(f"groups={groups}", x, w, (3, 3), (2, 1), "same", (1, 1), groups)


def test_conv2d_at_mnist_scale_matches_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 28, 28, 1)).astype(np.float32)
    w = rng.standard_normal((5, 5, 1, 16)).astype(np.float32) * 0.2
    _conv_against_torch("mnist", x, w, (5, 5), (1, 1), "same", (1, 1), 1, scaled=True)


POOL_CASES = {
    # name: (kernel, strides, symmetric pad)
    "k3_s2_p1": ((3, 3), (2, 2), 1),
    "k3_s2_p0": ((3, 3), (2, 2), 0),
    "k2_s2": ((2, 2), (2, 2), 0),          # non-overlapping windows (the CNN default)
    "k3x2_s1_p1x0": ((3, 2), (1, 1), (1, 0)),
    "k2_s1": ((2, 2), (1, 1), 0),
}


def _pool_inputs(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Distinct values, so every window's maximum (and max pooling's gradient) is unique.
    return (rng.permutation(2 * 7 * 9 * 3).reshape(2, 7, 9, 3) / 100 - 1).astype(np.float32)


def _pool_against_torch(op_name, name, kernel, strides, pad, torch_fn, **extra):
    ph, pw = (pad, pad) if isinstance(pad, int) else pad
    attrs = {"kernel": kernel, "strides": strides, "pads": (ph, pw, ph, pw), **extra}
    x = _pool_inputs(3)
    op = OPS[op_name]
    y = op.forward(x, **attrs)
    assert y.shape == op.shape(x.shape, **attrs)
    g = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
    (dx,) = op.vjp(g, y, x, **attrs)
    xt = _nchw(x)
    yt = torch_fn(xt, kernel, strides, (ph, pw))
    yt.backward(torch.from_numpy(np.ascontiguousarray(g.transpose(0, 3, 1, 2))))
    _check(name, y, _nhwc(yt), "forward")
    _check(name, dx, _nhwc(xt.grad), "dx")


@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_maxpool2d_matches_torch(name):
    _pool_against_torch("maxpool2d", name, *POOL_CASES[name], F.max_pool2d)


@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("name", sorted(POOL_CASES))
def test_avgpool2d_matches_torch(name, count_include_pad):
    def torch_avg(x, k, s, p):
        return F.avg_pool2d(x, k, s, p, count_include_pad=count_include_pad)
    _pool_against_torch("avgpool2d", name, *POOL_CASES[name], torch_avg,
                        count_include_pad=count_include_pad)


def test_global_avgpool_and_flatten_match_torch():
    x = _pool_inputs(5)
    g = np.random.default_rng(6).standard_normal((2, 3)).astype(np.float32)
    op = OPS["global_avgpool"]
    y = op.forward(x)
    (dx,) = op.vjp(g, y, x)
    xt = _nchw(x)
    yt = F.adaptive_avg_pool2d(xt, 1).flatten(1)
    yt.backward(torch.from_numpy(g))
    _check("global_avgpool", y, yt.detach().numpy(), "forward")
    _check("global_avgpool", dx, _nhwc(xt.grad), "dx")
    # Channels-last flattening is torch's flatten of the NHWC tensor: (H, W, C) order.
    flat = OPS["flatten"].forward(x)
    np.testing.assert_array_equal(flat, torch.from_numpy(x).flatten(1).numpy())


def test_maxpool2d_gradient_goes_to_the_first_maximum_on_ties():
    x = np.zeros((1, 3, 3, 1), dtype=np.float32)
    x[0, 1, 1, 0] = x[0, 1, 2, 0] = x[0, 2, 1, 0] = 1.0    # three tied maxima
    attrs = {"kernel": (2, 2), "strides": (1, 1), "pads": (0, 0, 0, 0)}
    op = OPS["maxpool2d"]
    y = op.forward(x, **attrs)
    (dx,) = op.vjp(np.ones_like(y), y, x, **attrs)
    # All four windows have maximum 1 and each contains (1, 1), which comes first in
    # row-major order in every one of them: it takes all four gradients.
    want = np.zeros_like(x)
    want[0, 1, 1, 0] = 4
    np.testing.assert_array_equal(dx, want)


@pytest.mark.parametrize("shape", [(6, 4), (4, 5, 7, 3)])
def test_batchnorm_ops_match_torch(shape):
    rng = np.random.default_rng(8)
    c = shape[-1]
    x = rng.standard_normal(shape).astype(np.float32) * 2 + 0.5
    gamma, beta = rng.uniform(0.5, 1.5, c).astype(np.float32), rng.standard_normal(c).astype(
        np.float32)
    mean, var = rng.standard_normal(c).astype(np.float32), rng.uniform(0.5, 2, c).astype(
        np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    eps = 1e-3
    to_cf = (0, len(shape) - 1, *range(1, len(shape) - 1))    # channels to axis 1, as torch
    to_cl = (0, *range(2, len(shape)), 1)

    def torch_bn(training, *stats):
        xt = torch.from_numpy(np.ascontiguousarray(x.transpose(to_cf))).requires_grad_(True)
        gt, bt = (torch.from_numpy(a.copy()).requires_grad_(True) for a in (gamma, beta))
        yt = F.batch_norm(xt, *stats, gt, bt, training=training, eps=eps)
        yt.backward(torch.from_numpy(np.ascontiguousarray(g.transpose(to_cf))))
        return (yt.detach().numpy().transpose(to_cl), xt.grad.numpy().transpose(to_cl),
                gt.grad.numpy(), bt.grad.numpy())

    # Inference form: given statistics.
    op = OPS["batchnorm"]
    y = op.forward(x, gamma, beta, mean, var, epsilon=eps)
    dx, dgamma, dbeta, _, _ = op.vjp(g, y, x, gamma, beta, mean, var, epsilon=eps)
    want = torch_bn(False, torch.from_numpy(mean.copy()), torch.from_numpy(var.copy()))
    for got, ref, what in zip((y, dx, dgamma, dbeta), want, ("y", "dx", "dgamma", "dbeta"),
                              strict=True):
        _check("batchnorm", got, ref, what, scaled=True)

    # Training form: the batch's own statistics (torch without running statistics).
    op = OPS["batchnorm_train"]
    a = np.zeros_like(x)
    y = op.forward(a, x, gamma, beta, mean, var, epsilon=eps)
    da, dx, dgamma, dbeta, dmean, dvar = op.vjp(g, y, a, x, gamma, beta, mean, var, epsilon=eps)
    assert da is None and dmean is None and dvar is None
    want = torch_bn(True, None, None)
    for got, ref, what in zip((y, dx, dgamma, dbeta), want, ("y", "dx", "dgamma", "dbeta"),
                              strict=True):
        _check("batchnorm_train", got, ref, what, scaled=True)
