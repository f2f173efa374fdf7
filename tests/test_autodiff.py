"""Reverse mode over the IR: accumulation, frozen params and long chains.

Gradients from a training ``Plan`` are checked against float64 central
differences of an independent NumPy formula of the same graph.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dlspec.engine.plan import ParamBuffer, Plan
from dlspec.graph.ir import Graph, GraphBuilder, Value


def _normal(scale: float = 1.0):
    return lambda rng, shape: (rng.standard_normal(shape) * scale).astype(np.float32)


def _train(graph: Graph, seed: Value, x: np.ndarray | None, g_seed: np.ndarray,
           rng_seed: int = 0) -> tuple[ParamBuffer, np.ndarray]:
    """Initialise params, run forward and backward once; returns the buffer and the output."""
    graph.output = seed
    buffer = ParamBuffer(graph)
    buffer.initialize(np.random.default_rng(rng_seed))
    plan = Plan(graph, buffer, seed=seed)
    s = plan.new_slots()
    if x is not None:
        s[plan.input_slots[0]] = x
    plan.forward(s)
    plan.backward(s, g_seed)
    return buffer, s[plan.output_slot]


def _central_differences(f, w: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f / d w, elementwise, in float64."""
    w = w.astype(np.float64)
    grad = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        wp, wm = w.copy(), w.copy()
        wp[idx] += eps
        wm[idx] -= eps
        grad[idx] = (f(wp) - f(wm)) / (2 * eps)
    return grad


def test_x_times_x_gradient_is_2x() -> None:
    gb = GraphBuilder()
    gb.begin_layer("sq")
    x = gb.param("x", (3, 4), _normal())
    out = gb.op("mul", x, x)
    g = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)

    buffer, _ = _train(gb.graph, out, None, g)
    xv = buffer.views[0].astype(np.float64)
    np.testing.assert_allclose(buffer.grad_views[0], 2 * xv * g, rtol=1e-6, atol=1e-7)


def test_backward_twice_assigns_rather_than_doubles() -> None:
    gb = GraphBuilder()
    gb.begin_layer("sq")
    x = gb.param("x", (5,), _normal())
    out = gb.op("mul", x, x)
    gb.graph.output = out
    buffer = ParamBuffer(gb.graph)
    buffer.initialize(np.random.default_rng(0))
    plan = Plan(gb.graph, buffer, seed=out)
    g = np.ones(5, dtype=np.float32)
    for _ in range(2):
        s = plan.new_slots()
        plan.forward(s)
        plan.backward(s, g)
        np.testing.assert_allclose(buffer.grad_views[0], 2 * buffer.views[0], rtol=1e-6)


def _relu_plus_identity(gb: GraphBuilder, x: Value, w: Value) -> Value:
    """h = x @ W used twice: out = relu(h) + h."""
    h = gb.op("matmul", x, w)
    return gb.op("add", gb.op("relu", h), h)


def _two_matmuls_of_one_param(gb: GraphBuilder, x: Value, w: Value) -> Value:
    """W used by two nodes: out = x @ W + tanh(x @ W)."""
    return gb.op("add", gb.op("matmul", x, w), gb.op("tanh", gb.op("matmul", x, w)))


ORACLES = {
    "value_used_twice": (_relu_plus_identity,
                         lambda x, w: np.maximum(x @ w, 0) + x @ w),
    "param_used_twice": (_two_matmuls_of_one_param,
                         lambda x, w: x @ w + np.tanh(x @ w)),
}


@pytest.mark.parametrize("case", sorted(ORACLES))
def test_value_with_two_consumers_matches_finite_differences(case: str) -> None:
    build, numpy_f = ORACLES[case]
    gb = GraphBuilder()
    x = gb.input("x", (None, 3))
    gb.begin_layer("dense")
    w = gb.param("kernel", (3, 5), _normal())
    out = build(gb, x, w)

    rng = np.random.default_rng(7)
    xv = rng.standard_normal((6, 3)).astype(np.float32)
    g = rng.standard_normal((6, 5)).astype(np.float32)
    buffer, y = _train(gb.graph, out, xv, g)

    x64, g64 = xv.astype(np.float64), g.astype(np.float64)
    w64 = buffer.views[0].astype(np.float64)
    assert np.abs(x64 @ w64).min() > 1e-3, "a pre-activation sits on relu's kink"
    np.testing.assert_allclose(y, numpy_f(x64, w64),
                               rtol=1e-5, atol=1e-6)
    expected = _central_differences(lambda wv: float(np.sum(numpy_f(x64, wv) * g64)), w64)
    np.testing.assert_allclose(buffer.grad_views[0], expected, rtol=1e-4, atol=1e-5)


def test_frozen_param_gets_no_gradient() -> None:
    gb = GraphBuilder()
    x = gb.input("x", (None, 3))
    gb.begin_layer("hidden")
    w1 = gb.param("kernel", (3, 4), _normal())
    b1 = gb.param("bias", (4,), _normal(0.1), trainable=False)
    h = gb.op("tanh", gb.op("add", gb.op("matmul", x, w1), b1))
    gb.begin_layer("out")
    w2 = gb.param("kernel", (4, 2), _normal(), trainable=False)
    b2 = gb.param("bias", (2,), _normal(0.1))
    out = gb.op("add", gb.op("matmul", h, w2), b2)

    rng = np.random.default_rng(3)
    xv = rng.standard_normal((5, 3)).astype(np.float32)
    g = rng.standard_normal((5, 2)).astype(np.float32)
    buffer, _ = _train(gb.graph, out, xv, g)

    names = [p.value.name for p in gb.graph.params]
    grads = dict(zip(names, buffer.grad_views, strict=True))
    assert not grads["hidden.bias"].any()
    assert not grads["out.kernel"].any()
    assert np.abs(grads["hidden.kernel"]).min() > 0
    np.testing.assert_allclose(grads["out.bias"], g.sum(axis=0), rtol=1e-6)
    for (start, size), p in zip(buffer.offsets, gb.graph.params, strict=True):
        assert (buffer.trainable[start:start + size] == p.trainable).all(), p.value.name
    # Frozen params and alignment padding alike: nothing is ever written there.
    assert not buffer.grad[~buffer.trainable].any()


def test_long_chain_runs_without_recursion_error() -> None:
    n_nodes = 5_000
    assert n_nodes > sys.getrecursionlimit()
    gb = GraphBuilder()
    h = gb.input("x", (None, 8))
    for i in range(n_nodes // 2):
        gb.begin_layer(f"l{i}")
        h = gb.op("tanh", gb.op("add", h, gb.param("bias", (8,), _normal(0.01))))
    assert len(gb.graph.nodes) == n_nodes

    rng = np.random.default_rng(0)
    xv = rng.standard_normal((4, 8)).astype(np.float32)
    buffer, y = _train(gb.graph, h, xv, np.ones((4, 8), dtype=np.float32))
    assert y.shape == (4, 8)
    assert np.isfinite(buffer.grad).all()
    # The first bias feeds everything downstream, so it gets a gradient.
    assert np.abs(buffer.grad_views[0]).sum() > 0
