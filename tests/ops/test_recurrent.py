"""The recurrent ops (lstm, gru, rnn and their bias-free twins) against independent oracles.

The registry test (test_registry.py) already walks them: finite-difference gradients and
onnxruntime parity at the default opset. Here: PyTorch's nn.LSTM / nn.GRU / nn.RNN with
the same weights (values and every gradient), onnxruntime at the oldest, default and
newest opset dlspec writes and with every activation, the shape rule's messages, and the
engine's training kernels against the ops' own rules.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from dlspec.engine.plan import ParamBuffer, Plan
from dlspec.engine.recurrent_kernels import GRUKernel, LSTMKernel, RNNKernel
from dlspec.errors import ShapeError
from dlspec.graph.ir import GraphBuilder
from dlspec.onnx.builder import OnnxBuilder
from dlspec.ops import get_op
from dlspec.ops.recurrent import GATES, bias_shape
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS
from dlspec.opsets import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, ir_version_for
from tests.ops.test_fused import _compare

CELLS = tuple(GATES)
RTOL, ATOL = 1e-3, 1e-5


def _inputs(cell: str, bias: bool, n=3, t=5, f=3, units=4, seed=0, scale=0.5, dtype=np.float32):
    rng = np.random.default_rng(seed)
    width = GATES[cell] * units
    xs = [rng.standard_normal((n, t, f)), rng.uniform(-scale, scale, (f, width)),
          rng.uniform(-scale, scale, (units, width))]
    if bias:
        xs.append(rng.uniform(-scale, scale, bias_shape(cell, units)))
    return [x.astype(dtype) for x in xs]


def _op(cell: str, bias: bool):
    return get_op(cell if bias else f"{cell}_nobias")


# ----------------------------------------------------------------------------- PyTorch

def _torch_module(cell: str, xs: list[np.ndarray], units: int):
    """The torch module holding the same weights (float64), and a function taking its
    parameters' gradients back to dlspec's (Keras) layout."""
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for the recurrent ops")
    x, w, u, *b = xs
    f = x.shape[2]
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[cell]
    m = cls(f, units, batch_first=True, bias=bool(b)).double()
    # torch's gate order: LSTM i, f, g, o (Keras' i, f, c, o); GRU r, z, n (Keras' z, r, h).
    order = np.arange(GATES[cell] * units)
    if cell == "gru":
        order = np.concatenate([order[units:2 * units], order[:units], order[2 * units:]])
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.from_numpy(w.T[order].astype(np.float64)))
        m.weight_hh_l0.copy_(torch.from_numpy(u.T[order].astype(np.float64)))
        if b:
            b_in, b_rec = (b[0][0], b[0][1]) if cell == "gru" else (b[0], 0 * b[0])
            m.bias_ih_l0.copy_(torch.from_numpy(b_in[order].astype(np.float64)))
            m.bias_hh_l0.copy_(torch.from_numpy(b_rec[order].astype(np.float64)))
    inverse = np.argsort(order)

    def grads_back() -> list[np.ndarray]:
        out = [m.weight_ih_l0.grad.numpy().T[:, inverse], m.weight_hh_l0.grad.numpy().T[:, inverse]]
        if b:
            b_in, b_rec = m.bias_ih_l0.grad.numpy()[inverse], m.bias_hh_l0.grad.numpy()[inverse]
            # LSTM and RNN: dlspec has one bias, torch two that always get the same gradient.
            out.append(np.stack([b_in, b_rec]) if cell == "gru" else b_in)
        return out

    return torch, m, grads_back


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_matches_pytorch_values_and_gradients(cell: str, bias: bool, return_sequences: bool):
    units = 4
    xs = _inputs(cell, bias, units=units, scale=0.8, dtype=np.float64)
    torch, m, grads_back = _torch_module(cell, xs, units)
    op = _op(cell, bias)
    attrs = {"units": units, "return_sequences": return_sequences}
    y = op.forward(*xs, **attrs)

    xt = torch.from_numpy(xs[0]).requires_grad_(True)
    seq, _ = m(xt)
    want = seq if return_sequences else seq[:, -1]
    np.testing.assert_allclose(y, want.detach().numpy(), rtol=1e-10, atol=1e-12)

    g = np.random.default_rng(5).standard_normal(y.shape)
    (want * torch.from_numpy(g)).sum().backward()
    dx, *dweights = op.vjp(g, y, *xs, **attrs)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    for name, got, ref in zip(("kernel", "recurrent_kernel", "bias"), dweights, grads_back(),
                              strict=False):
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_in_float32_out(cell: str):
    xs = _inputs(cell, True)
    op = _op(cell, True)
    y = op.forward(*xs, units=4, return_sequences=True)
    assert y.dtype == np.float32 and y.shape == (3, 5, 4)
    grads = op.vjp(np.ones_like(y), y, *xs, units=4, return_sequences=True)
    assert [gi.dtype for gi in grads] == [np.float32] * 4
    assert [gi.shape for gi in grads] == [x.shape for x in xs]


def test_last_state_is_the_last_step_of_the_sequence():
    xs = _inputs("lstm", True)
    op = _op("lstm", True)
    seq = op.forward(*xs, units=4, return_sequences=True)
    np.testing.assert_array_equal(op.forward(*xs, units=4), seq[:, -1])


# ----------------------------------------------------------------------------- ONNX

def _run_onnx(op, xs: list[np.ndarray], attrs: dict, opset: int) -> np.ndarray:
    b = OnnxBuilder(opset)
    names = [b.add_input(f"x{i}", TensorProto.FLOAT, list(x.shape)) for i, x in enumerate(xs)]
    out = op.emit(b, names, **attrs)
    b.add_output(out, TensorProto.FLOAT, list(op.shape(*(x.shape for x in xs), **attrs)))
    model = helper.make_model(b.graph(op.name), opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=ir_version_for(opset))
    onnx.checker.check_model(model, full_check=True)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {f"x{i}": x for i, x in enumerate(xs)})
    return got


@pytest.mark.parametrize("opset", sorted({MIN_OPSET, DEFAULT_OPSET, MAX_OPSET}))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_onnx_matches_numpy_at_every_opset_end(cell, bias, return_sequences, opset):
    xs = _inputs(cell, bias, seed=opset)
    op = _op(cell, bias)
    attrs = {"units": 4, "return_sequences": return_sequences}
    got = _run_onnx(op, xs, attrs, opset)
    np.testing.assert_allclose(got, op.forward(*xs, **attrs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("recurrent_activation", ["sigmoid", "leaky_relu", "linear"])
@pytest.mark.parametrize("activation", sorted(RNN_ACTIVATIONS))
@pytest.mark.parametrize("cell", CELLS)
def test_onnx_matches_numpy_for_every_activation(cell, activation, recurrent_activation):
    """Including the pairs where one activation takes an alpha (and beta) and the other
    does not: onnxruntime must read each from its own place in the lists."""
    if cell == "rnn" and recurrent_activation != "sigmoid":
        pytest.skip("SimpleRNN has no recurrent activation")
    xs = _inputs(cell, True, seed=3)
    op = _op(cell, True)
    attrs = {"units": 4, "return_sequences": True, "activation": activation}
    if cell != "rnn":
        attrs["recurrent_activation"] = recurrent_activation
    got = _run_onnx(op, xs, attrs, DEFAULT_OPSET)
    np.testing.assert_allclose(got, op.forward(*xs, **attrs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", sorted(RNN_ACTIVATIONS))
def test_activation_derivatives_from_outputs(name: str):
    """deriv(f(x)) equals central differences of f at x (away from kinks)."""
    act = RNN_ACTIVATIONS[name]
    x = np.linspace(-3, 3, 40)
    x = x[np.abs(x) > 0.05]
    eps = 1e-6
    numeric = (act(x + eps) - act(x - eps)) / (2 * eps)
    np.testing.assert_allclose(act.grad(act(x)), numeric, rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("cell", CELLS)
def test_shape_rule_refuses_input_without_a_time_axis(cell: str):
    op = _op(cell, True)
    units = 4
    weights = [(30, GATES[cell] * units), (units, GATES[cell] * units), bias_shape(cell, units)]
    with pytest.raises(ShapeError) as info:
        op.shape((None, 30), *weights, units=units)
    assert str(info.value) == f"{cell}: needs (batch, time, features) input (got (N, 30))"
    assert op.shape((None, 7, 30), *weights, units=units) == (None, units)
    assert op.shape((None, 7, 30), *weights, units=units, return_sequences=True) == \
        (None, 7, units)


def test_shape_rule_names_the_expected_weights():
    with pytest.raises(ShapeError) as info:
        _op("gru", True).shape((None, 7, 3), (3, 12), (4, 12), (12,), units=4)
    msg = str(info.value)
    assert "kernel (3, 12), recurrent kernel (4, 12) and bias (2, 12)" in msg, msg
    assert "(N, 7, 3) and (3, 12) and (4, 12) and (12)" in msg, msg


# ----------------------------------------------------------------------------- engine kernels

KERNELS = {"lstm": LSTMKernel, "gru": GRUKernel, "rnn": RNNKernel}
ACTIVATION_PAIRS = [("tanh", "sigmoid"), ("relu", "tanh"), ("sigmoid", "softplus"),
                    ("linear", "sigmoid"), ("elu", "sigmoid"), ("leaky_relu", "tanh")]


def _normal(scale: float):
    return lambda r, s: (r.standard_normal(s) * scale).astype(np.float32)


def _recurrent_graph(cell: str, bias: bool, attrs: dict, t: int = 6, f: int = 3,
                     units: int = 5):
    """x * scale -> the recurrent op: the scale parameter makes the op's input gradient
    observable (a graph input's gradient is never computed)."""
    gb = GraphBuilder()
    gb.begin_layer("r")
    x = gb.input("x", (None, t, f))
    xs = gb.op("mul", x, gb.param("scale", (f,), lambda r, s: np.ones(s, np.float32)))
    width = GATES[cell] * units
    inputs = [xs, gb.param("kernel", (f, width), _normal(0.5)),
              gb.param("recurrent_kernel", (units, width), _normal(0.4))]
    if bias:
        inputs.append(gb.param("bias", bias_shape(cell, units), _normal(0.3)))
    y = gb.op(cell if bias else f"{cell}_nobias", *inputs, units=units, **attrs)
    return gb, y


@pytest.mark.parametrize(("activation", "recurrent_activation"), ACTIVATION_PAIRS)
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", CELLS)
def test_engine_kernel_matches_the_ops_rules(cell, bias, return_sequences, activation,
                                             recurrent_activation):
    attrs = {"return_sequences": return_sequences, "activation": activation}
    if cell != "rnn":   # (SimpleRNN has none; its activations still differ case by case)
        attrs["recurrent_activation"] = recurrent_activation
    gb, y = _recurrent_graph(cell, bias, attrs)
    data = np.random.default_rng(2).standard_normal((4, 6, 3)).astype(np.float32)
    _compare(gb, y, data, KERNELS[cell], 1)


@pytest.mark.parametrize("cell", CELLS)
def test_stacked_kernels_and_a_second_batch_size(cell: str):
    """Two layers (the first returning sequences feeds the second its input gradient), at
    two batch sizes in turn: each size keeps its own buffers."""
    gb = GraphBuilder()
    gb.begin_layer("r")
    x = gb.input("x", (None, 7, 2))
    h = x
    for j, (f, seq) in enumerate([(2, True), (4, False)]):
        width = GATES[cell] * 4
        h = gb.op(cell, h, gb.param(f"k{j}", (f, width), _normal(0.5)),
                  gb.param(f"u{j}", (4, width), _normal(0.4)),
                  gb.param(f"b{j}", bias_shape(cell, 4), _normal(0.3)),
                  units=4, return_sequences=seq)
    gb.graph.output = h
    buf = ParamBuffer(gb.graph)
    buf.initialize(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    plans = [Plan(gb.graph, buf, seed=h, fuse=fuse) for fuse in (False, True)]
    assert sum(isinstance(k, KERNELS[cell]) for k in plans[1].kernels) == 2
    for n in (5, 3, 5):
        data = rng.standard_normal((n, 7, 2)).astype(np.float32)
        g = rng.standard_normal((n, 4)).astype(np.float32)
        results = []
        for plan in plans:
            s = plan.new_slots()
            s[plan.input_slots[0]] = data
            plan.forward(s)
            buf.grad[...] = np.nan
            plan.backward(s, g)
            results.append((s[plan.seed_slot].copy(), buf.grad.copy()))
        (y0, g0), (y1, g1) = results
        np.testing.assert_allclose(y1, y0, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-5)


def test_frozen_weights_get_no_gradient_and_the_rest_do():
    gb, y = _recurrent_graph("lstm", True, {"return_sequences": False})
    for p in gb.graph.params:
        p.trainable = p.value.name != "r.recurrent_kernel"
    _compare(gb, y, np.ones((2, 6, 3), np.float32), LSTMKernel, 1)


@pytest.mark.parametrize(("t", "n"), [(1, 3), (4, 1)])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_engine_kernel_with_one_step_or_one_row(cell, return_sequences, t, n):
    gb, y = _recurrent_graph(cell, True, {"return_sequences": return_sequences}, t=t)
    data = np.random.default_rng(0).standard_normal((n, t, 3)).astype(np.float32)
    _compare(gb, y, data, KERNELS[cell], 1)
