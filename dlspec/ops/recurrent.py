"""Recurrent ops over a whole sequence: ``lstm``, ``gru`` and ``rnn`` (Keras' LSTM, GRU
and SimpleRNN), each fused over all time steps, and a bias-free twin of each
(``lstm_nobias``, ...: an op has a fixed number of inputs, and ``use_bias: false`` has no
bias parameter, as in Keras).

Input x is (batch, time, features); the initial state is zeros. Weights are laid out as
Keras keeps them, so a Keras user recognises them: ``kernel`` (features, gates*units),
``recurrent_kernel`` (units, gates*units), gate blocks side by side in Keras' order

    lstm  i, f, c, o     bias (4*units,)
    gru   z, r, h        bias (2, 3*units): input bias, then recurrent bias
    rnn   (one block)    bias (units,)

The GRU is Keras' ``reset_after=True`` form (its default, and cuDNN's): the reset gate
multiplies the recurrent projection after the matrix product, h~ = act(x W_h + b_h +
r * (h U_h + b'_h)), which is what ONNX's GRU expresses with ``linear_before_reset=1``.

Attributes: ``units``; ``return_sequences`` (true: every step's hidden state (batch, time,
units); false: the last one (batch, units)); ``activation`` (candidate and cell output);
``recurrent_activation`` (the gates; lstm and gru).

The forward pass projects the inputs of all time steps with ONE matrix product, then runs
one (batch, units) @ (units, gates*units) product per step. The vjp recomputes the
forward pass's gates (it receives only the inputs and output) and runs backpropagation
through time; the engine's training kernels (dlspec.engine.recurrent_kernels) keep them.

ONNX: the LSTM/GRU/RNN operators, time-major ([time, batch, features], so no ``layout``
attribute: it exists only from opset 14 and dlspec writes 13 on), weights as
[1, gates*units, features] in ONNX's gate order (LSTM i, o, f, c), built from the Keras
layout with Transpose/Gather nodes that onnxruntime folds into constants.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlspec.ops.registry import OpDef, f32, register, shape_error
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS, onnx_activation_attrs

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
ONNX_OPS = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}
# ONNX's gate order as Keras gate indices: LSTM i, o, f, c from Keras i, f, c, o.
ONNX_GATE_ORDER = {"lstm": (0, 3, 1, 2), "gru": (0, 1, 2), "rnn": (0,)}


def bias_shape(cell: str, units: int) -> tuple[int, ...]:
    return (2, 3 * units) if cell == "gru" else (GATES[cell] * units,)


# ----------------------------------------------------------------------------- shape

def _shape_rule(op: str, cell: str) -> Callable:
    def shape(x, w, u, b=None, *, units, return_sequences=False, **_):
        shapes = (x, w, u) if b is None else (x, w, u, b)
        if len(x) != 3:
            raise shape_error(op, "needs (batch, time, features) input", x)
        n, t, f = x
        if t is not None and t < 1:
            raise shape_error(op, "needs at least one time step", x)
        width = GATES[cell] * units
        want = [(f, width), (units, width)] + ([] if b is None else [bias_shape(cell, units)])
        if [tuple(s) for s in shapes[1:]] != want:
            raise shape_error(op, f"with {f} features and {units} units needs kernel "
                              f"({f}, {width}), recurrent kernel ({units}, {width})"
                              + ("" if b is None else f" and bias {bias_shape(cell, units)}"),
                              *shapes)
        return (n, t, units) if return_sequences else (n, units)
    return shape


# ----------------------------------------------------------------------------- pure rules

def _project(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """x W (+ b) for every time step in one matrix product, time-major (T, N, width)."""
    n, t, f = x.shape
    p = x.reshape(n * t, f) @ w
    if b is not None:
        p += b
    return p.reshape(n, t, -1).transpose(1, 0, 2)


def _output(hs: np.ndarray, return_sequences: bool, mask=None) -> np.ndarray:
    """(T+1, N, H) states, the zero initial state first -> the op's output. With a mask
    (T, N, 1), padded steps output zeros (as ONNX's Y with sequence_lens)."""
    if not return_sequences:
        return hs[-1]
    seq = hs[1:] if mask is None else hs[1:] * mask
    return np.ascontiguousarray(seq.transpose(1, 0, 2))


def _step_grad(g: np.ndarray, k: int, t: int, return_sequences: bool, mask=None):
    """The output's gradient reaching the hidden state of step k directly."""
    if return_sequences:
        return g[:, k] if mask is None else g[:, k] * mask[k]
    return g if k == t - 1 else 0


def _weight_grads(x, w, hs, dproj, drec, b, cell):
    """Gradients of x, kernel, recurrent kernel (and bias) from the time-major gradients of
    the input projection ``dproj`` and of the recurrent projection ``drec``."""
    t, n, width = dproj.shape
    flat, rflat = dproj.reshape(t * n, width), drec.reshape(t * n, width)
    xt = x.transpose(1, 0, 2).reshape(t * n, -1)
    dx = (flat @ w.T).reshape(t, n, -1).transpose(1, 0, 2)
    dw = xt.T @ flat
    du = hs[:-1].reshape(t * n, -1).T @ rflat
    if b is None:
        return dx, dw, du
    db = np.stack([flat.sum(axis=0), rflat.sum(axis=0)]) if cell == "gru" else flat.sum(axis=0)
    return dx, dw, du, db


def _acts(activation: str, recurrent_activation: str):
    return RNN_ACTIVATIONS[activation], RNN_ACTIVATIONS[recurrent_activation]


def _lstm_scan(x, w, u, b, units, act, rec, mask=None):
    """Time-major traces: activated gates (T, N, 4H) in Keras order i, f, c, o; cell and
    hidden states (T+1, N, H), the zero initial state first. ``mask`` (T, N, 1): a padded
    step (0) keeps the states of the step before."""
    h = units
    proj = _project(x, w, b)
    t, n, _ = proj.shape
    gates = np.empty(proj.shape, dtype=proj.dtype)
    cs = np.zeros((t + 1, n, h), dtype=proj.dtype)
    hs = np.zeros_like(cs)
    for k in range(t):
        z = proj[k] + hs[k] @ u
        i, f, c, o = rec(z[:, :h]), rec(z[:, h:2 * h]), act(z[:, 2 * h:3 * h]), rec(z[:, 3 * h:])
        gates[k] = np.concatenate([i, f, c, o], axis=1)
        cs[k + 1] = f * cs[k] + i * c
        hs[k + 1] = o * act(cs[k + 1])
        if mask is not None:
            _keep(mask[k], cs, hs, k)
    return gates, cs, hs


def _keep(m, cs, hs, k):
    """Padded rows (m == 0) of step k keep the states of step k - 1."""
    for states in (cs, hs):
        if states is not None:
            states[k + 1] = np.where(m > 0, states[k + 1], states[k])


def _lstm(x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
          recurrent_activation="sigmoid", mask=None):
    _, _, hs = _lstm_scan(x, w, u, b, units, *_acts(activation, recurrent_activation), mask)
    return _output(hs, return_sequences, mask)


def _lstm_vjp(g, y, x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
              recurrent_activation="sigmoid", mask=None):
    act, rec = _acts(activation, recurrent_activation)
    gates, cs, hs = _lstm_scan(x, w, u, b, units, act, rec, mask)
    t, h = gates.shape[0], units
    dz = np.empty(gates.shape, dtype=np.result_type(gates, g))
    dh = dc = 0
    for k in reversed(range(t)):
        dh = dh + _step_grad(g, k, t, return_sequences, mask)
        # NOTE: a padded step passes dh and dc to the step before unchanged and sends
        # nothing into its gates: m masks what enters the cell, (1 - m) what bypasses it.
        m = 1 if mask is None else mask[k]
        i, f, c, o = (gates[k][:, j * h:(j + 1) * h] for j in range(4))
        tc = act(cs[k + 1])
        dc_all = dc + dh * m * o * act.grad(tc)
        dcm = dc_all * m
        dz[k] = np.concatenate([dcm * c * rec.grad(i), dcm * cs[k] * rec.grad(f),
                                dcm * i * act.grad(c), dh * m * tc * rec.grad(o)], axis=1)
        if mask is None:
            dh = dz[k] @ u.T
            dc = dc_all * f
        else:
            dh = dz[k] @ u.T + (1 - m) * dh
            dc = dcm * f + (1 - m) * dc_all
    return _weight_grads(x, w, hs, dz, dz, b, "lstm")


def _gru_scan(x, w, u, b, units, act, rec, mask=None):
    """Time-major traces: activated gates (T, N, 3H) z, r, h~; the recurrent projection of
    the candidate, h U_h + b'_h (T, N, H); hidden states (T+1, N, H)."""
    h = units
    proj = _project(x, w, None if b is None else b[0])
    t, n, _ = proj.shape
    gates = np.empty(proj.shape, dtype=proj.dtype)
    rec_h = np.empty((t, n, h), dtype=proj.dtype)
    hs = np.zeros((t + 1, n, h), dtype=proj.dtype)
    for k in range(t):
        rp = hs[k] @ u
        if b is not None:
            rp = rp + b[1]
        z = rec(proj[k][:, :h] + rp[:, :h])
        r = rec(proj[k][:, h:2 * h] + rp[:, h:2 * h])
        cand = act(proj[k][:, 2 * h:] + r * rp[:, 2 * h:])
        gates[k] = np.concatenate([z, r, cand], axis=1)
        rec_h[k] = rp[:, 2 * h:]
        hs[k + 1] = z * hs[k] + (1 - z) * cand
        if mask is not None:
            _keep(mask[k], None, hs, k)
    return gates, rec_h, hs


def _gru(x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
         recurrent_activation="sigmoid", mask=None):
    _, _, hs = _gru_scan(x, w, u, b, units, *_acts(activation, recurrent_activation), mask)
    return _output(hs, return_sequences, mask)


def _gru_vjp(g, y, x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
             recurrent_activation="sigmoid", mask=None):
    act, rec = _acts(activation, recurrent_activation)
    gates, rec_h, hs = _gru_scan(x, w, u, b, units, act, rec, mask)
    t, h = gates.shape[0], units
    dtype = np.result_type(gates, g)
    dproj, drec = np.empty(gates.shape, dtype=dtype), np.empty(gates.shape, dtype=dtype)
    dh = 0
    for k in reversed(range(t)):
        dh = dh + _step_grad(g, k, t, return_sequences, mask)
        m = 1 if mask is None else mask[k]
        bypass = 0 if mask is None else (1 - m) * dh      # a padded step passes dh on
        dh = dh * m
        z, r, cand = (gates[k][:, j * h:(j + 1) * h] for j in range(3))
        da = dh * (1 - z) * act.grad(cand)              # through the candidate's activation
        dzp = dh * (hs[k] - cand) * rec.grad(z)
        drp = da * rec_h[k] * rec.grad(r)
        dproj[k] = np.concatenate([dzp, drp, da], axis=1)
        drec[k] = np.concatenate([dzp, drp, da * r], axis=1)
        dh = dh * z + drec[k] @ u.T + bypass
    return _weight_grads(x, w, hs, dproj, drec, b, "gru")


def _rnn_scan(x, w, u, b, act, mask=None):
    """Hidden states (T+1, N, H), the zero initial state first."""
    proj = _project(x, w, b)
    t, n, _ = proj.shape
    hs = np.zeros((t + 1, n, u.shape[0]), dtype=proj.dtype)
    for k in range(t):
        hs[k + 1] = act(proj[k] + hs[k] @ u)
        if mask is not None:
            _keep(mask[k], None, hs, k)
    return hs


def _rnn(x, w, u, b=None, *, units, return_sequences=False, activation="tanh", mask=None):
    return _output(_rnn_scan(x, w, u, b, RNN_ACTIVATIONS[activation], mask),
                   return_sequences, mask)


def _rnn_vjp(g, y, x, w, u, b=None, *, units, return_sequences=False, activation="tanh",
             mask=None):
    act = RNN_ACTIVATIONS[activation]
    hs = _rnn_scan(x, w, u, b, act, mask)
    t = hs.shape[0] - 1
    dproj = np.empty(hs[1:].shape, dtype=np.result_type(hs, g))
    dh = 0
    for k in reversed(range(t)):
        dh = dh + _step_grad(g, k, t, return_sequences, mask)
        if mask is None:
            dproj[k] = dh * act.grad(hs[k + 1])
            dh = dproj[k] @ u.T
        else:   # a padded step passes dh on and sends nothing into the cell
            dproj[k] = dh * mask[k] * act.grad(hs[k + 1])
            dh = dproj[k] @ u.T + (1 - mask[k]) * dh
    return _weight_grads(x, w, hs, dproj, dproj, b, "rnn")


# ----------------------------------------------------------------------------- ONNX

def _axes(b, *axes: int) -> str:
    return b.const(np.array(axes, dtype=np.int64), "axes")


def _gate_rows(cell: str, units: int) -> np.ndarray | None:
    """Indices taking Keras' gate blocks to ONNX's order (None: the orders agree)."""
    order = ONNX_GATE_ORDER[cell]
    if order == tuple(range(len(order))):
        return None
    return np.concatenate([np.arange(j * units, (j + 1) * units) for j in order])


def _onnx_weight(b, name: str, rows: np.ndarray | None, hint: str) -> str:
    """Keras (in, gates*units) -> ONNX [1, gates*units, in]."""
    wt = b.node("Transpose", [name], f"{hint}_t", perm=[1, 0])
    if rows is not None:
        wt = b.node("Gather", [wt, b.const(rows, f"{hint}_gates")], f"{hint}_gates", axis=0)
    return b.node("Unsqueeze", [wt, _axes(b, 0)], hint)


def _onnx_bias(b, cell: str, name: str, units: int, rows: np.ndarray | None) -> str:
    """Keras bias -> ONNX B [1, 2*gates*units]: input biases, then recurrent biases."""
    if cell == "gru":   # (2, 3H) is already [input, recurrent]
        return b.node("Reshape", [name, b.const(np.array([1, -1], np.int64), "shape")],
                      "gru_B")
    if rows is not None:
        name = b.node("Gather", [name, b.const(rows, f"{cell}_bias_gates")],
                      f"{cell}_bias_gates", axis=0)
    zeros = b.const(np.zeros(GATES[cell] * units, np.float32), f"{cell}_recurrent_bias")
    both = b.node("Concat", [name, zeros], f"{cell}_bias", axis=0)
    return b.node("Unsqueeze", [both, _axes(b, 0)], f"{cell}_B")


def _emitter(cell: str, masked: bool = False) -> Callable:
    """The ONNX emission; ``masked``: the op's second input is the lengths (N,), given to
    the operator as ``sequence_lens`` (int32)."""
    def emit(b, names, *, units, return_sequences=False, activation="tanh",
             recurrent_activation="sigmoid"):
        if masked:
            x, lengths, w, u, *bias = names
        else:
            x, w, u, *bias = names
        rows = _gate_rows(cell, units)
        inputs = [b.node("Transpose", [x], f"{cell}_time_major", perm=[1, 0, 2]),
                  _onnx_weight(b, w, rows, f"{cell}_W"), _onnx_weight(b, u, rows, f"{cell}_R")]
        inputs.append(_onnx_bias(b, cell, bias[0], units, rows) if bias else "")
        if masked:
            inputs.append(b.node("Cast", [lengths], f"{cell}_sequence_lens", to=6))  # INT32
        else:
            inputs = [i for i in inputs if i]
        act, rec = _acts(activation, recurrent_activation)
        acts = {"lstm": [rec, act, act], "gru": [rec, act], "rnn": [act]}[cell]
        extra = {"linear_before_reset": 1} if cell == "gru" else {}
        y, y_h = b.node(ONNX_OPS[cell], inputs, cell, outputs=2, hidden_size=int(units),
                        **onnx_activation_attrs(acts), **extra)
        if return_sequences:   # Y [T, 1, N, H] -> (N, T, H)
            yt = b.node("Transpose", [y], f"{cell}_batch_major", perm=[2, 0, 1, 3])
            return b.node("Squeeze", [yt, _axes(b, 2)], f"{cell}_sequences")
        return b.node("Squeeze", [y_h, _axes(b, 0)], f"{cell}_last")   # Y_h [1, N, H]
    return emit


# ----------------------------------------------------------------------------- registry

SMOOTH = ("tanh", "sigmoid", "softplus", "linear", "elu")  # no kinks: finite differences


def _sampler(cell: str, with_bias: bool) -> Callable:
    def sample(rng):
        units, features = int(rng.integers(3, 6)), int(rng.integers(2, 4))
        width = GATES[cell] * units
        # Small weights keep every gate away from saturation, where gradients vanish.
        xs = [f32(rng, 3, 4, features), f32(rng, features, width, low=-0.6, high=0.6),
              f32(rng, units, width, low=-0.6, high=0.6)]
        if with_bias:
            xs.append(f32(rng, *bias_shape(cell, units), low=-0.5, high=0.5))
        attrs = {"units": units, "return_sequences": bool(rng.integers(0, 2)),
                 "activation": str(rng.choice(SMOOTH))}
        if cell != "rnn":
            attrs["recurrent_activation"] = str(rng.choice(("sigmoid", "tanh", "softplus")))
        return xs, attrs
    return sample


_RULES = {"lstm": (_lstm, _lstm_vjp), "gru": (_gru, _gru_vjp), "rnn": (_rnn, _rnn_vjp)}

for _cell, (_forward, _vjp) in _RULES.items():
    for _bias in (True, False):
        _name = _cell if _bias else f"{_cell}_nobias"
        register(OpDef(_name, 4 if _bias else 3, _shape_rule(_name, _cell), _forward, _vjp,
                       _emitter(_cell), _sampler(_cell, _bias)))

RECURRENT_OPS = {f"{c}{s}": c for c in GATES for s in ("", "_nobias")}  # op name -> cell
