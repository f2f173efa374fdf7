"""Training kernels for the recurrent ops (lstm, gru, rnn and their bias-free twins).

The ops' own vjp recomputes the forward pass; these kernels keep what it computed (the
activated gates, cell and hidden states of every step) in float32 buffers allocated once
per batch size, and spend as few NumPy calls per time step as they can: at the sizes
recurrent layers run at (a batch of 32, 64 units) a call costs about as much as the
arithmetic in it.

- Everything per step is feature-major, (features, batch): a step's gates are one
  contiguous (gates*H, N) block and each gate a contiguous (H, N) block in it, so every
  elementwise call runs over contiguous memory.
- Each step's previous hidden state and input sit in one block of a buffer
  ``xh`` (T+1, H + F + 1, N): rows [h; x; 1]. A step's pre-activations are then ONE matrix
  product, ``[U; W; b]^T @ xh[k]``, written straight into that step's gate block: no
  separate projection of the inputs and no additions. The loop writes h_{k+1} into
  ``xh[k+1, :H]``; ``xh[0, :H]`` keeps the zero initial state.
- ``[U; W; b]`` is built once per training step in the order the loop wants (lstm: o, i,
  f, c, so the three sigmoid gates are adjacent), with sigmoid gates' columns halved:
  sigmoid(x) = 0.5 tanh(x / 2) + 0.5, so one tanh covers all four LSTM gates and an affine
  step finishes the sigmoid ones.
- Per step the loop makes one product and a handful of elementwise calls (lstm: 7, gru:
  9, rnn: 1); the rest is done for all steps at once. Where it ends up (LSTM, 8 -> 64
  units, 50 steps, batch 32): each step's product is one single-threaded OpenBLAS call
  at about the core's peak (5-6 us), about half of a training step in all; most of the
  rest is NumPy's per-call cost (0.3-1.6 us a call at these sizes), so calls are what the
  loops economise: outputs positional, constants 0-d float32 arrays, views prebuilt,
  np.dot for the per-step products (0.3 us a call less than np.matmul).
- Backward, every factor that does not depend on the incoming gradient (gate derivatives
  times the values they meet) is computed for all steps at once before the loop, so a
  step is a few multiplies and one product with the recurrent kernel (lstm: 3 + 1).
- The loop writes each step's pre-activation gradients into its own contiguous block;
  one transposing copy after it lays all steps' out time-major inside each row
  ``d`` (gates*H, T, N), and one more lays xh out the same way, so the gradients of U,
  W and b are ONE product, xh @ d^T (the stacked hidden states are already in xh), and
  the input's gradient one more (only when a sink wants it). The copies cost less than
  the strided per-step writes they save.

Sinks by input index: 0 the sequence, 1 the kernel, 2 the recurrent kernel, 3 the bias.
tests/ops/test_recurrent.py checks each kernel against the ops' pure rules.
"""

from __future__ import annotations

import numpy as np

from dlspec.engine.kernels import Kernel, aligned
from dlspec.ops.recurrent import RECURRENT_OPS
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS


def recurrent_kernel(node, views: dict, slot: dict) -> tuple[Kernel, dict] | None:
    """The training kernel of a recurrent op whose weights are parameters, with its roles
    (input index -> (node, input index)); None for any other node."""
    cell = RECURRENT_OPS.get(node.op.name)
    if cell is None or any(v.id not in views for v in node.inputs[1:]):
        return None
    kernel = _KERNELS[cell](node, slot, views)
    return kernel, {i: (node, i) for i in range(len(node.inputs))}


class _RecurrentKernel(Kernel):
    """What the cells share: the [h; x; 1] blocks, the output, and the weight and input
    gradients after backpropagation through time. A cell sets ``blocks`` (H-row blocks of
    a step's gates) and supplies ``_prepare`` (fill ``self.wu``), ``_scan``, ``_bptt``
    (fill each step's gradients in ``b.steps``) and, when its gradient blocks are not the
    parameters' own columns, ``_weight_grads``. ``lead`` blocks before and ``spare``
    blocks after a step's gradients (in ``b.steps``) are scratch rows a cell may write
    beside them."""

    blocks = 1
    lead = 0
    spare = 0

    def __init__(self, node, slot: dict, views: dict) -> None:
        x, w, u, *b = node.inputs
        self.nodes, self.sinks = (node,), {}
        self.x, self.out = slot[x.id], slot[node.output.id]
        self.w, self.u = views[w.id], views[u.id]
        self.bias = views[b[0].id] if b else None
        attrs = node.attrs
        self.h = attrs["units"]
        self.seq = attrs.get("return_sequences", False)
        self.act = RNN_ACTIVATIONS[attrs.get("activation", "tanh")]
        self.rec = RNN_ACTIVATIONS[attrs.get("recurrent_activation", "sigmoid")]
        self.t, self.f = x.shape[1], x.shape[2]
        self.k = self.h + self.f + (self.bias is not None)       # rows of xh
        self.wu = aligned((self.k, self.blocks * self.h))         # [U; W; b], loop order

    def _allocate(self, b, n: int) -> None:
        t, h, width = self.t, self.h, self.blocks * self.h
        b.n = n
        b.xh = aligned((t + 1, self.k, n))   # step k's [h; x; 1]: one contiguous block
        if self.bias is not None:
            b.xh[:, -1] = 1
        b.hs = b.xh[:, :h]                   # h_0 (zeros), ..., h_T: (T+1, H, N)
        b.xt = aligned((self.k, t, n))       # xh time-major in each row, for xh @ d^T
        b.gates = aligned((t, width, n))     # each step's product, then its activations
        b.y = aligned((n, t, h) if self.seq else (n, h))
        # Each step's pre-activation gradients, with the cell's scratch blocks around them,
        # in one contiguous (rows, N) block: a step's calls then run over contiguous memory
        # (written through strided (gates*H, T, N) views they took twice as long).
        b.steps = aligned((t, (self.lead + self.blocks + self.spare) * h, n))
        b.d = aligned((width, t, n))         # all steps' gradients, time-major in each row
        b.dwu = aligned((self.k, width))
        b.dh, b.tmp_h = aligned((h, n)), aligned((h, n))
        if 0 in self.sinks:
            b.dxt, b.dx = aligned((self.f, t, n)), aligned((n, t, self.f))

    def forward(self, s, b):
        x = s[self.x]
        if b.n != x.shape[0]:
            self._allocate(b, x.shape[0])
        np.copyto(b.xh[:-1, self.h:self.h + self.f], x.transpose(1, 2, 0))
        self._prepare()
        self._scan(b)
        np.copyto(b.y, b.hs[1:].transpose(2, 0, 1) if self.seq else b.hs[-1].T)
        s[self.out] = b.y

    def backward(self, s, g, b):
        gy = self.incoming(g)
        if gy is None:
            return
        sinks = self.sinks
        self._bptt(gy, b)
        lead = self.lead * self.h
        np.copyto(b.d, b.steps[:, lead:lead + self.blocks * self.h].transpose(1, 0, 2))
        m = self.t * b.n
        d = b.d.reshape(-1, m)
        if sinks.keys() & {1, 2, 3}:
            np.copyto(b.xt, b.xh[:-1].transpose(1, 0, 2))
            np.matmul(b.xt.reshape(self.k, m), d.T, out=b.dwu)
            h, f = self.h, self.f
            for role, rows in ((2, b.dwu[:h]), (1, b.dwu[h:h + f]), (3, b.dwu[h + f:])):
                if role in sinks:
                    self._weight_grads(role, rows, sinks[role].out())
                    sinks[role].done()
        if 0 in sinks:
            np.matmul(self.w, d[:self.w.shape[1]], out=b.dxt.reshape(self.f, m))
            np.copyto(b.dx, b.dxt.transpose(2, 1, 0))
            sinks[0].give(g, b.dx)

    def _weight_grads(self, role: int, rows: np.ndarray, out: np.ndarray) -> None:
        """A parameter's gradient from its rows of xh @ d^T (columns in d's order)."""
        np.copyto(out, rows.reshape(out.shape))

    def _dh(self, gy: np.ndarray, k: int, b) -> np.ndarray:
        """The hidden state's gradient at step k, (H, N): what came back from step k+1
        (in b.dh) plus what the output sends it directly."""
        if not self.seq:
            return gy.T if k == self.t - 1 else b.dh
        if k == self.t - 1:
            np.copyto(b.dh, gy[:, k].T)
        else:
            np.add(b.dh, gy[:, k].T, out=b.dh)
        return b.dh

    def _fill(self, src_cols, dst_cols, scale=None) -> None:
        """Copy column blocks of U, W (and b) into ``wu``'s rows, optionally scaled."""
        h, f = self.h, self.f
        parts = [(self.u, self.wu[:h]), (self.w, self.wu[h:h + f])]
        if self.bias is not None:
            parts.append((self.bias.reshape(1, -1), self.wu[h + f:]))
        for src, dst in parts:
            for a, z in zip(src_cols, dst_cols, strict=True):
                np.copyto(dst[:, z], src[:, a])
        if scale is not None:
            np.multiply(self.wu, scale, out=self.wu)


_HALF = np.array(0.5, np.float32)


def _blocks(h: int, *which: int) -> list[slice]:
    return [slice(j * h, (j + 1) * h) for j in which]


def _scale(h: int, *factors: float) -> np.ndarray | None:
    """Per-column factors of ``wu``, one per H-wide block; None when all are 1."""
    scale = np.repeat(np.array(factors, np.float32), h)
    return None if (scale == 1).all() else scale


class LSTMKernel(_RecurrentKernel):
    """lstm: step k's rows ``r[k]`` (5H, N) hold its gates in the order o, i, f, c (the
    sigmoid gates side by side), then c_k, the cell state it starts from. So [i, f] and
    [c~, c_k] are two aligned blocks: c_{k+1} = i c~ + f c_k is one multiply and one add,
    written into ``r[k+1]``. The gradients ``d`` are in Keras' order i, f, c, o, as the
    parameters keep them, with the cell gradient passed to the step before in the block
    ahead of them and dh fc in the block after: each is written together with its
    neighbours by one broadcast multiply."""

    blocks = 4
    lead = 1     # the cell gradient carried to the step before, dc f, beside d_i, d_f, d_c
    spare = 1    # dh fc, written beside d_o = dh fo by one multiply

    def __init__(self, node, slot, views) -> None:
        super().__init__(node, slot, views)
        h, rec, act = self.h, self.rec, self.act
        self.cols = (_blocks(h, 3, 0, 1, 2), _blocks(h, 0, 1, 2, 3))   # Keras -> loop order
        self.scale = _scale(h, rec.prescale, rec.prescale, rec.prescale, act.prescale)
        self.fast = rec.name == "sigmoid" and act.name == "tanh"

    def _prepare(self):
        self._fill(*self.cols, self.scale)

    def _allocate(self, b, n):
        super()._allocate(b, n)
        t, h = self.t, self.h
        b.r = aligned((t + 1, 5 * h, n))  # r[0]'s c_0: the zero initial cell state
        b.tc = aligned((t, h, n))         # activation(c_{k+1})
        b.ic_fc = aligned((2 * h, n))     # i c~ and f c_k
        b.ds = aligned((t, 3 * h, n))     # derivatives of the sigmoid gates o, i, f
        b.fa = aligned((t, 4 * h, n))     # (f, then d(i, f, c pre-activations)) / d(cell gradient)
        b.fofc = aligned((t, 2, h, n))    # fo and fc, side by side
        b.dc = aligned((h, n))
        r, hs, s6 = b.r, b.hs, b.steps.reshape(t, 6, h, n)
        b.fwd = [(b.xh[k], r[k][:4 * h], r[k][:3 * h], r[k][3 * h:4 * h], r[k][h:3 * h],
                  r[k][3 * h:], r[k + 1][4 * h:], b.tc[k], r[k][:h], hs[k + 1])
                 for k in range(t)]
        b.bwd = [(b.steps[k, h:5 * h], s6[k, 4:], s6[k, 5], s6[k, :4], b.fa[k].reshape(4, h, n),
                  b.fofc[k], s6[k + 1, 0] if k + 1 < t else None) for k in range(t)]

    def _scan(self, b):
        # Outputs are positional and constants 0-d float32 arrays: at these sizes a
        # keyword or a Python float costs a measurable part of the call.
        rec, act, fast, wut, ic_fc, half = self.rec, self.act, self.fast, self.wu.T, b.ic_fc, _HALF
        ic, fc = ic_fc[:self.h], ic_fc[self.h:]
        dot, tanh, multiply, add = np.dot, np.tanh, np.multiply, np.add
        for xh, g, sig, cand, i_f, cand_c, c_next, tc, o, h_next in b.fwd:
            dot(wut, xh, g)
            if fast:   # one tanh over the four gates; o, i, f were halved
                tanh(g, g)
                multiply(sig, half, sig)
                add(sig, half, sig)
            else:
                rec.inplace(sig)
                act.inplace(cand)
            multiply(i_f, cand_c, ic_fc)
            add(ic, fc, c_next)
            if fast:
                tanh(c_next, tc)
            else:
                act.into(c_next, tc)
            multiply(o, tc, h_next)

    def _factors(self, b) -> None:
        """For all steps at once, with ' the derivative w.r.t. the pre-activation:
        fa = (f, c~ i', c_k f', i c~') (the cell gradient's factors: to the step before,
        then to i, f, c~ in Keras' order), fo = act(c_{k+1}) o', fc = o act'(c_{k+1})."""
        h, r, fa, fo, fc = self.h, b.r[:-1], b.fa, b.fofc[:, 0], b.fofc[:, 1]
        o, i, cand = r[:, :h], r[:, h:2 * h], r[:, 3 * h:4 * h]
        np.copyto(fa[:, :h], r[:, 2 * h:3 * h])
        self.rec.deriv(r[:, :3 * h], b.ds)
        np.multiply(b.ds[:, h:], r[:, 3 * h:], out=fa[:, h:3 * h])   # (i', f') * (c~, c_k)
        self.act.deriv(cand, fa[:, 3 * h:])
        np.multiply(fa[:, 3 * h:], i, out=fa[:, 3 * h:])
        np.multiply(b.ds[:, :h], b.tc, out=fo)
        self.act.deriv(b.tc, fc)
        np.multiply(fc, o, out=fc)

    def _bptt(self, gy, b):
        """Per step three elementwise calls and the product with U: [d_o, dh fc] = dh
        [fo, fc]; dc = (dc f from the step after) + dh fc; [dc f, d_i, d_f, d_c] =
        dc [f, fa]."""
        self._factors(b)
        dc, dh, u, last, seq = b.dc, b.dh, self.u, self.t - 1, self.seq
        dot, multiply, add = np.dot, np.multiply, np.add
        for k in range(last, -1, -1):
            d, d_o_dhfc, dhfc, dcf_difc, fa, fofc, dcf_after = b.bwd[k]
            src = self._dh(gy, k, b) if seq else (gy.T if k == last else dh)
            multiply(src, fofc, d_o_dhfc)
            if k == last:
                cell = dhfc
            else:
                add(dcf_after, dhfc, dc)
                cell = dc
            multiply(cell, fa, dcf_difc)
            if k:
                dot(u, d, dh)


class GRUKernel(_RecurrentKernel):
    """gru (reset_after): a step's gates have four blocks, z, r, the candidate's input
    part x W_h + b_h and its recurrent part h U_h + b'_h (kept apart: the reset gate
    scales only the second). The recurrent biases of z and r join their input biases."""

    blocks = 4

    def __init__(self, node, slot, views) -> None:
        super().__init__(node, slot, views)
        h = self.h
        self.scale = _scale(h, self.rec.prescale, self.rec.prescale, 1, 1)
        self.u4 = aligned((h, 4 * h))     # [U_z, U_r, 0, U_h]: u4 @ d is dh's share

    def _prepare(self):
        h, f, wu = self.h, self.f, self.wu
        hx, hr = _blocks(h, 2, 3)
        wu[:h, hx] = 0
        wu[h:h + f, hr] = 0
        np.copyto(wu[:h, :2 * h], self.u[:, :2 * h])
        np.copyto(wu[:h, hr], self.u[:, 2 * h:])
        np.copyto(wu[h:h + f, :3 * h], self.w)
        np.copyto(self.u4, wu[:h])
        if self.bias is not None:
            bias = wu[h + f]
            np.add(self.bias[0, :2 * h], self.bias[1, :2 * h], out=bias[:2 * h])
            np.copyto(bias[hx], self.bias[0, 2 * h:])
            np.copyto(bias[hr], self.bias[1, 2 * h:])
        if self.scale is not None:
            np.multiply(wu, self.scale, out=wu)

    def _allocate(self, b, n):
        super()._allocate(b, n)
        t, h = self.t, self.h
        b.ds = aligned((t, 2 * h, n))
        b.fz, b.fh, b.fr = aligned((t, h, n)), aligned((t, h, n)), aligned((t, h, n))
        g, s4 = b.gates, b.steps.reshape(t, 4, h, n)
        b.fwd = [(g[k][:2 * h], *(g[k][s] for s in _blocks(h, 0, 1, 2, 3))) for k in range(t)]
        b.bwd = [(b.steps[k], *s4[k], g[k][:h], g[k][h:2 * h]) for k in range(t)]

    def _scan(self, b):
        xh, hs, tmp, rec, act, wut = b.xh, b.hs, b.tmp_h, self.rec, self.act, self.wu.T
        for k, (zr, z, r, cand, rh) in enumerate(b.fwd):
            np.dot(wut, xh[k], b.gates[k])
            rec.inplace(zr)
            np.multiply(r, rh, out=tmp)
            np.add(cand, tmp, out=cand)
            act.into(cand, cand)
            np.subtract(hs[k], cand, out=tmp)   # h = cand + z (h_prev - cand)
            np.multiply(z, tmp, out=tmp)
            np.add(cand, tmp, out=hs[k + 1])

    def _factors(self, b) -> None:
        """For all steps at once: fz = (h_prev - cand) z', fh = (1 - z) act'(cand),
        fr = (h_prev U_h + b'_h) r'."""
        h, g = self.h, b.gates
        z, cand, rh = g[:, :h], g[:, 2 * h:3 * h], g[:, 3 * h:]
        self.rec.deriv(g[:, :2 * h], b.ds)
        np.subtract(b.hs[:-1], cand, out=b.fz)
        np.multiply(b.fz, b.ds[:, :h], out=b.fz)
        self.act.deriv(cand, b.fh)
        np.subtract(1, z, out=b.fr)
        np.multiply(b.fh, b.fr, out=b.fh)
        np.multiply(rh, b.ds[:, h:], out=b.fr)

    def _bptt(self, gy, b):
        self._factors(b)
        tmp, u4 = b.tmp_h, self.u4
        for k in range(self.t - 1, -1, -1):
            d, d_z, d_r, d_hx, d_hr, z, r = b.bwd[k]
            dh = self._dh(gy, k, b)
            np.multiply(dh, b.fz[k], out=d_z)
            np.multiply(dh, b.fh[k], out=d_hx)
            np.multiply(d_hx, b.fr[k], out=d_r)
            np.multiply(d_hx, r, out=d_hr)
            if k:
                np.multiply(dh, z, out=tmp)
                np.dot(u4, d, b.dh)
                np.add(b.dh, tmp, out=b.dh)

    def _weight_grads(self, role, rows, out):
        h = self.h
        if role == 1:                                   # W: blocks z, r, candidate input
            np.copyto(out, rows[:, :3 * h])
            return
        recurrent = out if role == 2 else out[1:]       # U, b': blocks z, r, candidate rec.
        np.copyto(recurrent[:, :2 * h], rows[:, :2 * h])
        np.copyto(recurrent[:, 2 * h:], rows[:, 3 * h:])
        if role == 3:
            np.copyto(out[0], rows[0, :3 * h])


class RNNKernel(_RecurrentKernel):
    """rnn (SimpleRNN): h = act(x W + b + h_prev U), one product and the activation a
    step."""

    def __init__(self, node, slot, views) -> None:
        super().__init__(node, slot, views)
        self.scale = _scale(self.h, self.act.prescale)

    def _prepare(self):
        every = [slice(None)]
        self._fill(every, every, self.scale)

    def _allocate(self, b, n):
        super()._allocate(b, n)
        b.fd = aligned((self.t, self.h, n))

    def _scan(self, b):
        xh, hs, gates, act, wut = b.xh, b.hs, b.gates, self.act, self.wu.T
        tanh = act.name == "tanh"
        for k in range(self.t):
            np.dot(wut, xh[k], gates[k])
            if tanh:
                np.tanh(gates[k], out=hs[k + 1])
            else:
                act.inplace(gates[k])
                np.copyto(hs[k + 1], gates[k])

    def _bptt(self, gy, b):
        self.act.deriv(b.hs[1:], b.fd)
        d, fd, u = b.steps, b.fd, self.u
        for k in range(self.t - 1, -1, -1):
            np.multiply(self._dh(gy, k, b), fd[k], out=d[k])
            if k:
                np.dot(u, d[k], b.dh)


_KERNELS = {"lstm": LSTMKernel, "gru": GRUKernel, "rnn": RNNKernel}
