"""Every op in the registry against independent oracles.

Gradients: float64 central differences in the dot-product form
<g, J v> == <vjp(g), v>. Forward pass: onnxruntime running the op's own ONNX
emission. One parametrised test per rule walks ``dlspec.ops.OPS``.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from dlspec.errors import ShapeError
from dlspec.graph.ir import GraphBuilder
from dlspec.onnx.builder import OnnxBuilder
from dlspec.ops import OPS, get_op
from dlspec.ops.registry import unbroadcast
from dlspec.opsets import DEFAULT_OPSET, ir_version_for

EPS = 1e-6
RTOL, ATOL = 1e-3, 1e-5
SEEDS = (0, 1, 2)
OP_NAMES = sorted(OPS)


def _sample(name: str, seed: int):
    op = OPS[name]
    xs, attrs = op.sample(np.random.default_rng(seed))
    if op.arity is None:
        assert len(xs) >= 2, f"{name}: a variadic op's sample should join several inputs"
    else:
        assert len(xs) == op.arity, f"{name}: sample gives {len(xs)} inputs, arity is {op.arity}"
    return op, xs, attrs


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", OP_NAMES)
def test_vjp_matches_central_differences(name: str, seed: int) -> None:
    op, xs32, attrs = _sample(name, seed)
    xs = [x.astype(np.float64) for x in xs32]
    y = op.forward(*xs, **attrs)
    rng = np.random.default_rng(1000 + seed)
    g = rng.standard_normal(y.shape)

    grads = op.vjp(g, y, *xs, **attrs)
    assert len(grads) == len(xs), f"{name}: vjp returns {len(grads)} entries for {len(xs)} inputs"
    # Only an op declared gradient-free on every input (stop_gradient, by definition)
    # may give no gradient at all.
    assert any(gi is not None for gi in grads) or set(op.no_grad) == set(range(len(xs))), \
        f"{name}: vjp gives no gradient at all"

    for i, gi in enumerate(grads):
        if i in op.no_grad:
            assert gi is None, f"{name}: input {i} is data (no_grad), yet has a gradient"
            continue
        if gi is None:
            # Only train-only ops have inputs without a gradient: dropout's mask, and the
            # inference form and moving statistics that batchnorm_train ignores in training.
            assert op.train_only, f"{name}: input {i} has no gradient"
            continue
        assert gi.shape == xs[i].shape, f"{name}: gradient {i} has shape {gi.shape}"
        v = rng.standard_normal(xs[i].shape)

        def f(t: float, i: int = i, v: np.ndarray = v) -> float:
            shifted = list(xs)
            shifted[i] = xs[i] + t * v
            return float(np.sum(g * op.forward(*shifted, **attrs)))

        numeric = (f(EPS) - f(-EPS)) / (2 * EPS)
        analytic = float(np.sum(gi * v))
        np.testing.assert_allclose(analytic, numeric, rtol=RTOL, atol=ATOL,
                                   err_msg=f"{name}: input {i}")


@pytest.mark.parametrize("name", OP_NAMES)
def test_forward_and_vjp_keep_float32_and_shape_rule_agrees(name: str) -> None:
    op, xs, attrs = _sample(name, 0)
    y = op.forward(*xs, **attrs)
    assert y.dtype == np.float32, f"{name}: forward gives {y.dtype} for float32 inputs"
    assert tuple(op.shape(*(x.shape for x in xs), **attrs)) == y.shape

    g = np.asarray(np.random.default_rng(1).standard_normal(y.shape), dtype=np.float32)
    for i, gi in enumerate(op.vjp(g, y, *xs, **attrs)):
        if gi is not None:
            assert gi.dtype == np.float32, f"{name}: gradient {i} is {gi.dtype}"


@pytest.mark.parametrize("name", OP_NAMES)
def test_shape_rule_keeps_dynamic_batch_axis(name: str) -> None:
    op, xs, attrs = _sample(name, 0)
    # The first input carries the batch axis; the others are weights or broadcast, except
    # for ops whose inputs are all batches (joins, losses and their targets).
    batched = len(xs) if op.arity is None or op.no_grad else 1
    # (0-d inputs, as loss_sum's losses, have no batch axis.)
    shapes = [(None, *x.shape[1:]) if x.ndim else () for x in xs[:batched]] + \
        [x.shape for x in xs[batched:]]
    out = op.shape(*shapes, **attrs)
    y = op.forward(*xs, **attrs)
    if y.ndim == 0:  # a loss: the batch is reduced to one number
        assert out == () and y.shape == (), f"{name}: {shapes} -> {out}"
        return
    assert out[0] is None, f"{name}: {shapes} -> {out}"
    assert tuple(out[1:]) == y.shape[1:]


def _one_node_model(name: str, xs: list[np.ndarray], attrs: dict,
                    out_shape: tuple) -> onnx.ModelProto:
    op = OPS[name]
    b = OnnxBuilder(DEFAULT_OPSET)
    types = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}
    names = [b.add_input(f"x{i}", types[x.dtype], list(x.shape)) for i, x in enumerate(xs)]
    out = op.emit(b, names, **attrs)
    b.add_output(out, TensorProto.FLOAT, list(out_shape))
    # Inputs the emitted graph does not read (dropout's mask) are not declared.
    used = {i for n in b.nodes for i in n.input}
    b.inputs = [vi for vi in b.inputs if vi.name in used]
    return helper.make_model(
        b.graph(f"op_{name}"),
        opset_imports=[helper.make_opsetid("", DEFAULT_OPSET)],
        ir_version=ir_version_for(DEFAULT_OPSET),
    )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name", OP_NAMES)
def test_onnx_emission_matches_numpy_forward(name: str, seed: int) -> None:
    op, xs, attrs = _sample(name, seed)
    # The exported model is the inference model: a train-only op passes x through.
    expected = xs[0] if op.train_only else op.forward(*xs, **attrs)
    model = _one_node_model(name, xs, attrs, expected.shape)
    onnx.checker.check_model(model, full_check=True)

    sess = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"])
    feeds = {i.name: xs[int(i.name[1:])] for i in sess.get_inputs()}
    (got,) = sess.run(None, feeds)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize(("g_shape", "shape"), [
    ((4, 5), (4, 5)),
    ((4, 5), (5,)),
    ((4, 5), (1, 5)),
    ((4, 5), (4, 1)),
    ((4, 5), (1, 1)),
    ((4, 5), ()),
    ((2, 3, 4), (3, 1)),
    ((2, 3, 4), (1, 3, 4)),
    ((2, 1, 4), (1, 1)),
])
def test_unbroadcast_is_the_adjoint_of_broadcasting(g_shape: tuple, shape: tuple) -> None:
    rng = np.random.default_rng(0)
    g = rng.standard_normal(g_shape)
    x = rng.standard_normal(shape)
    r = unbroadcast(g, shape)
    assert r.shape == shape
    # <g, broadcast(x)> == <unbroadcast(g), x> for every x ...
    np.testing.assert_allclose(np.sum(g * np.broadcast_to(x, g_shape)), np.sum(r * x),
                               rtol=1e-12, atol=1e-12)
    # ... and explicitly: the sum of g over the broadcast axes.
    lead = len(g_shape) - len(shape)
    expected = g.sum(axis=tuple(range(lead)))
    for ax, d in enumerate(shape):
        if d == 1:
            expected = expected.sum(axis=ax, keepdims=True)
    np.testing.assert_allclose(r, expected, rtol=1e-12, atol=1e-12)


def test_matmul_inner_dimension_mismatch_names_op_and_shapes() -> None:
    with pytest.raises(ShapeError, match=r"matmul") as info:
        get_op("matmul").shape((4, 3), (5, 2))
    msg = str(info.value)
    assert "(4, 3)" in msg, msg
    assert "(5, 2)" in msg, msg


def test_matmul_shape_error_through_graph_builder_names_layer() -> None:
    gb = GraphBuilder()
    x = gb.input("x", (None, 3))
    gb.begin_layer("dense_1")
    w = gb.param("kernel", (5, 2), lambda rng, s: np.zeros(s, np.float32))
    with pytest.raises(ShapeError) as info:
        gb.op("matmul", x, w)
    msg = str(info.value)
    for part in ("dense_1", "matmul", "(N, 3)", "(5, 2)"):
        assert part in msg, msg


def test_broadcast_mismatch_names_op_and_shapes() -> None:
    with pytest.raises(ShapeError) as info:
        get_op("add").shape((4, 5), (3,))
    msg = str(info.value)
    for part in ("add", "(4, 5)", "(3)"):
        assert part in msg, msg
