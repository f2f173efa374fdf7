"""The training plan's fused kernels against the unfused nodes' own rules.

Each case builds a small graph, compiles it twice (fused, and ``fuse=False``: one kernel
per node through the ops' forward and vjp) and compares the output and every gradient.
Integer-valued data make the max-pool's windows tie, so the tie rule is checked too.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.engine import winograd
from dlspec.engine.kernels import ConvKernel, DenseKernel
from dlspec.engine.plan import ParamBuffer, Plan
from dlspec.graph.ir import GraphBuilder


def _compare(gb: GraphBuilder, out, x: np.ndarray | None, kernel_type, n_fused: int,
             rtol: float = 1e-5, atol: float = 1e-5) -> None:
    gb.graph.output = out
    buf = ParamBuffer(gb.graph)
    buf.initialize(np.random.default_rng(0))
    results = []
    for fuse in (False, True):
        plan = Plan(gb.graph, buf, seed=out, fuse=fuse)
        if fuse:
            fused = [k for k in plan.kernels if isinstance(k, kernel_type)]
            assert len(fused) == 1 and len(fused[0].nodes) == n_fused, plan.kernels
        for _ in range(2):  # the second pass runs on reused buffers
            s = plan.new_slots()
            if x is not None:
                s[plan.input_slots[0]] = x
            plan.forward(s)
            y = s[plan.seed_slot].copy()
            g = np.random.default_rng(1).standard_normal(y.shape).astype(np.float32)
            buf.grad[...] = np.nan  # every gradient must be written
            plan.backward(s, g)
        results.append((y, buf.grad.copy()))
    (y0, g0), (y1, g1) = results
    assert y1.dtype == np.float32 and g1.dtype == np.float32
    np.testing.assert_allclose(y1, y0, rtol=rtol, atol=atol)
    for p, (start, size) in zip(buf.params, buf.offsets, strict=True):
        np.testing.assert_allclose(g1[start:start + size], g0[start:start + size], rtol=rtol,
                                   atol=atol, err_msg=p.value.name)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("x_is_param", [True, False])
def test_dense_kernel_matches_unfused(bias: bool, relu: bool, x_is_param: bool) -> None:
    rng = np.random.default_rng(3)
    gb = GraphBuilder()
    gb.begin_layer("d")
    normal = lambda r, s: r.standard_normal(s).astype(np.float32)  # noqa: E731
    # A parameter as the matmul's left input receives the kernel's input gradient.
    x = gb.param("x", (7, 5), normal) if x_is_param else gb.input("x", (None, 5))
    y = gb.op("matmul", x, gb.param("w", (5, 4), normal))
    if bias:
        y = gb.op("add", y, gb.param("b", (4,), normal))
    if relu:
        y = gb.op("relu", y)
    data = None if x_is_param else rng.standard_normal((7, 5)).astype(np.float32)
    _compare(gb, y, data, DenseKernel, 1 + bias + relu)


CONV_CASES = [
    # (image H, W, C), (KH, KW, O), strides, pads, dilations, pool window
    ((12, 12, 3), (3, 3, 4), (1, 1), (0, 0, 0, 0), (1, 1), (2, 2)),
    ((11, 13, 1), (3, 3, 4), (1, 1), (0, 0, 0, 0), (1, 1), (2, 2)),     # odd: pool drops
    ((10, 9, 2), (3, 2, 5), (2, 1), (1, 0, 2, 1), (1, 2), (2, 3)),      # padding, strides
    ((9, 9, 4), (2, 2, 3), (1, 1), (1, 1, 1, 1), (1, 1), (3, 3)),
    ((8, 8, 3), (3, 3, 2), (1, 1), (1, 1, 1, 1), (2, 2), None),          # no pool
    ((7, 6, 2), (1, 1, 3), (1, 1), (0, 0, 0, 0), (1, 1), (1, 1)),
]


# 3x3, stride 1, dilation 1, pool 2x2 or none: WinogradConvKernel's cases (odd and even
# sizes either side of the pool, padding on any side, an output edge half a tile wide).
WINOGRAD_CASES = [
    ((12, 12, 3), (3, 3, 4), (1, 1), (0, 0, 0, 0), (1, 1), (2, 2)),
    ((11, 13, 2), (3, 3, 4), (1, 1), (0, 0, 0, 0), (1, 1), (2, 2)),
    ((9, 10, 3), (3, 3, 5), (1, 1), (1, 0, 2, 1), (1, 1), (2, 2)),
    ((8, 8, 3), (3, 3, 2), (1, 1), (1, 1, 1, 1), (1, 1), None),
    ((7, 9, 2), (3, 3, 3), (1, 1), (0, 0, 0, 0), (1, 1), None),
    ((6, 5, 2), (3, 3, 3), (1, 1), (0, 2, 1, 0), (1, 1), None),
    ((4, 4, 1), (3, 3, 2), (1, 1), (0, 0, 0, 0), (1, 1), (2, 2)),    # one tile
    ((10, 10, 9), (3, 3, 6), (1, 1), (0, 0, 0, 0), (1, 1), (2, 2)),
]


@pytest.mark.parametrize("case", CONV_CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("ties", [True, False])
def test_conv_kernel_matches_unfused(case, bias: bool, relu: bool, ties: bool,
                                     monkeypatch) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 10**9)   # these cases test im2col
    _conv_case(case, bias, relu, ties, ConvKernel)


@pytest.mark.parametrize("case", WINOGRAD_CASES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("ties", [True, False])
def test_winograd_kernel_matches_unfused(case, bias: bool, relu: bool, ties: bool,
                                         monkeypatch) -> None:
    monkeypatch.setattr(winograd, "MIN_CHANNELS", 1)
    _conv_case(case, bias, relu, ties, winograd.WinogradConvKernel)


def test_kernel_choice_follows_the_channel_count() -> None:
    fits = winograd.winograd_fits
    assert fits((3, 3, 32, 64), (1, 1), (1, 1), (2, 2))
    assert fits((3, 3, 32, 64), (1, 1), (1, 1), None)
    assert not fits((3, 3, 1, 32), (1, 1), (1, 1), (2, 2))    # a first layer
    assert not fits((3, 3, 32, 64), (2, 2), (1, 1), None)
    assert not fits((3, 3, 32, 64), (1, 1), (2, 2), None)
    assert not fits((5, 5, 32, 64), (1, 1), (1, 1), None)
    assert not fits((3, 3, 32, 64), (1, 1), (1, 1), (3, 3))


def _conv_case(case, bias: bool, relu: bool, ties: bool, kernel_type) -> None:
    (h, w, c), (kh, kw, o), strides, pads, dilations, pool = case
    rng = np.random.default_rng(4)
    gb = GraphBuilder()
    gb.begin_layer("c")
    if ties:
        init = lambda r, s: rng.integers(-1, 2, size=s).astype(np.float32)  # noqa: E731
    else:
        init = lambda r, s: r.standard_normal(s).astype(np.float32)  # noqa: E731
    # A parameter scaling the image makes the convolution's input gradient observable.
    x = gb.input("x", (None, h, w, c))
    scale = gb.param("scale", (c,), lambda r, s: np.ones(s, np.float32))
    xs = gb.op("mul", x, scale)
    y = gb.op("conv2d", xs, gb.param("kernel", (kh, kw, c, o), init), strides=strides,
              pads=pads, dilations=dilations, groups=1)
    if bias:
        y = gb.op("add", y, gb.param("bias", (o,), lambda r, s: np.full(s, 0.5, np.float32)))
    if relu:
        y = gb.op("relu", y)
    if pool is not None:
        y = gb.op("maxpool2d", y, kernel=pool, strides=pool, pads=(0, 0, 0, 0))
    if ties:
        data = rng.integers(-2, 3, size=(3, h, w, c)).astype(np.float32)
        data[:, : h // 2] = 1  # flat regions: every window of them ties
    else:
        data = rng.standard_normal((3, h, w, c)).astype(np.float32)
    _compare(gb, y, data, kernel_type, 1 + bias + relu + (pool is not None))


def test_overlapping_or_padded_pool_is_not_fused() -> None:
    gb = GraphBuilder()
    gb.begin_layer("c")
    x = gb.input("x", (None, 8, 8, 2))
    y = gb.op("conv2d", x, gb.param("kernel", (3, 3, 2, 4), lambda r, s: r.standard_normal(
        s).astype(np.float32)), strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1)
    y = gb.op("maxpool2d", y, kernel=(3, 3), strides=(2, 2), pads=(0, 0, 0, 0))
    data = np.random.default_rng(0).standard_normal((2, 8, 8, 2)).astype(np.float32)
    _compare(gb, y, data, ConvKernel, 1)


def test_a_value_used_twice_is_not_fused_away() -> None:
    """h = x @ W feeds both relu and the sum: the matmul kernel must keep h."""
    gb = GraphBuilder()
    gb.begin_layer("d")
    x = gb.input("x", (None, 3))
    h = gb.op("matmul", x, gb.param("w", (3, 4), lambda r, s: r.standard_normal(s).astype(
        np.float32)))
    out = gb.op("add", gb.op("relu", h), h)
    data = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    _compare(gb, out, data, DenseKernel, 1)


@pytest.mark.parametrize("rows, k, o, panel", [
    (43264, 9, 32, 1024),    # a first convolution's weight gradient, and a remainder
    (4096, 9, 32, 1024),     # panels only
    (3000, 27, 32, 512),
    (2500, 9, 8, 0),         # fewer rows than two panels: one product
    (5000, 288, 64, 0),      # a large result: one product
])
def test_tall_product_is_the_transposed_product(rows: int, k: int, o: int,
                                                panel: int) -> None:
    from dlspec.engine.kernels import TallProduct

    rng = np.random.default_rng(rows)
    a = rng.standard_normal((rows, k)).astype(np.float32)
    b = rng.standard_normal((rows, o)).astype(np.float32)
    product = TallProduct(rows, k, o)
    assert product.r == panel
    out = np.full((k, o), np.nan, np.float32)
    product(a, b, out)
    want = a.astype(np.float64).T @ b.astype(np.float64)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * np.sqrt(rows))


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(("pool", "hw"), [(None, (6, 6)), (None, ()), ((2, 2), (6, 6)),
                                          ((2, 2), (7, 5)), ((3, 3), (7, 5))])
def test_join_kernel_matches_unfused(relu: bool, pool, hw) -> None:
    """add of two branches (a residual shortcut), relu, max-pool: one kernel, the unfused
    ops' values and gradients (integer data: tied windows and exact zeros for relu)."""
    from dlspec.engine.join_kernels import JoinKernel

    rng = np.random.default_rng(4)
    gb = GraphBuilder()
    gb.begin_layer("j")
    x = gb.input("x", (None, *hw, 3))
    scale = lambda r, s: r.integers(-2, 3, s).astype(np.float32)  # noqa: E731
    left = gb.op("mul", x, gb.param("a", (3,), scale))
    right = gb.op("mul", x, gb.param("b", (3,), scale))
    y = gb.op("add", left, right)
    n = 1
    if relu:
        y, n = gb.op("relu", y), n + 1
    if pool:
        y, n = gb.op("maxpool2d", y, kernel=pool, strides=pool, pads=(0, 0, 0, 0)), n + 1
    x_val = rng.integers(-3, 4, (4, *hw, 3)).astype(np.float32)
    _compare(gb, y, x_val, JoinKernel, n)
