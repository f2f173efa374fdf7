"""Training kernels: the units a training plan runs, each computing one or more graph nodes.

A kernel writes its result into buffers it owns, one set per batch size (64-byte aligned,
allocated once, reused every step), keeps what its backward pass needs (the im2col
patches, the pooled maxima, which window offset won), and writes gradients only where the backward
schedule says one is needed: the first layer computes none for the data.

- ``OpKernel``: any node, through its op's pure rules (fresh arrays each step).
- ``DenseKernel``: ``matmul`` by a parameter, then optionally ``add`` of a bias, ``relu``.
- ``ConvKernel``: ``conv2d`` by a parameter (one group), then optionally ``add`` of a bias,
  ``relu`` and a ``maxpool2d`` whose windows neither overlap nor pad. It pools the
  convolution's output *before* adding the bias and applying relu (max commutes with
  both: they are non-decreasing per channel), so those act on the pooled values only, and
  it computes only the outputs the pool reads. Its im2col rows are ordered pooling-window
  offset first, so each offset's outputs are one contiguous block: it multiplies one block
  at a time into a running maximum and records, one bool per output, where each offset
  beat all offsets before it; the convolution's unpooled output is never kept, and the
  backward pass routes the gradient by those records (``WindowMax``). The tie rule is the
  max-pool op's: the first maximum of a window, in row-major order, gets the gradient.
  A 3x3, stride-1 convolution of 8 or more input channels runs as Winograd tiles instead
  (``dlspec.engine.winograd``), with the same pooling records.
- ``TallProduct``: a weight gradient summed over many rows, in row panels where OpenBLAS
  would thread one product poorly.

The tests (tests/ops/test_fused.py) check each fused kernel against the unfused nodes'
own rules: the same values and gradients, within float32 rounding.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlspec.ops.conv import tap_span

_ALIGN = 64  # bytes
_ROW = 512   # elementwise passes over (m, o) arrays see them as rows of about this many values
_SMALL = 4096  # ... when they hold at least this many
_PANEL = 1 << 19  # TallProduct: rows per panel times result elements, about


def aligned_zeros(n: int) -> np.ndarray:
    """A zeroed float32 vector of length n whose data starts on a 64-byte boundary."""
    return aligned((n,))


def aligned(shape: tuple, dtype=np.float32) -> np.ndarray:
    """A zeroed array whose data starts on a 64-byte boundary."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.zeros(n + _ALIGN // dtype.itemsize, dtype=dtype)
    off = (-raw.ctypes.data % _ALIGN) // dtype.itemsize
    return raw[off:off + n].reshape(shape)


def held(obj) -> list[np.ndarray]:
    """The arrays an object (a kernel's buffers) holds, one level of objects down."""
    out = []
    for a in vars(obj).values():
        if isinstance(a, np.ndarray):
            out.append(a)
        elif hasattr(a, "__dict__"):
            out.extend(v for v in vars(a).values() if isinstance(v, np.ndarray))
    return out


class Sink:
    """Where a kernel sends the gradient of one of its inputs: a value's gradient slot, or
    a parameter's view of the gradient buffer. ``first``: the first contribution in the
    backward pass (assign; later ones accumulate)."""

    __slots__ = ("slot", "view", "first", "_tmp")

    def __init__(self, slot: int, view: np.ndarray | None) -> None:
        self.slot, self.view, self.first = slot, view, True
        self._tmp: np.ndarray | None = None

    def out(self) -> np.ndarray:
        """The array to write a parameter's gradient into; then call ``done``."""
        if self.first:
            return self.view
        if self._tmp is None:
            self._tmp = aligned(self.view.shape)
        return self._tmp

    def done(self) -> None:
        if not self.first:
            self.view += self._tmp

    def give(self, g: list, value: np.ndarray) -> None:
        if self.view is not None:
            if self.first:
                np.copyto(self.view, value)
            else:
                self.view += value
        elif self.first or g[self.slot] is None:
            g[self.slot] = value
        else:  # never in place: a vjp may return one array for two inputs
            g[self.slot] = g[self.slot] + value

    def nothing(self) -> None:
        """No gradient flows here this step: a parameter's gradient is zero."""
        if self.view is not None and self.first:
            self.view[...] = 0


class Kernel:
    """One unit of a plan. ``nodes``: the graph nodes it computes; ``out``: the slot of the
    value it produces; ``sinks``: where the gradients of its inputs go, keyed by the input's
    index (``OpKernel``) or role (fused kernels: 0 the data, 1 the kernel, 2 the bias); an
    input without a sink needs no gradient."""

    nodes: tuple
    out: int
    sinks: dict

    def buffers(self) -> SimpleNamespace:
        """A holder for what the kernel keeps for one batch size, filled on first use."""
        return SimpleNamespace(n=-1)

    def forward(self, s: list, b) -> None:
        raise NotImplementedError

    def backward(self, s: list, g: list, b) -> None:
        raise NotImplementedError

    def incoming(self, g: list) -> np.ndarray | None:
        """dL/d(output); None when no gradient flows back through this kernel (e.g. from
        an ignored input), after telling each sink so."""
        gy = g[self.out]
        if gy is None:
            for sink in self.sinks.values():
                sink.nothing()
        return gy


class OpKernel(Kernel):
    """One node through its op's pure forward and vjp."""

    def __init__(self, node, slot: dict) -> None:
        self.nodes = (node,)
        self.fn = partial(node.op.forward, **node.attrs)
        self.vjp = partial(node.op.vjp, **node.attrs)
        self.ins = tuple(slot[v.id] for v in node.inputs)
        self.out = slot[node.output.id]
        self.sinks = {}

    def forward(self, s, b):
        s[self.out] = self.fn(*[s[i] for i in self.ins])

    def backward(self, s, g, b):
        gy = self.incoming(g)
        if gy is None:
            return
        grads = self.vjp(gy, s[self.out], *[s[i] for i in self.ins])
        for k, sink in self.sinks.items():
            if grads[k] is None:
                sink.nothing()
            else:
                sink.give(g, grads[k])


def _rows(m: int, o: int) -> int:
    """r: an (m, o) array seen as (m / r, o * r), so elementwise passes run long rows."""
    r = 1
    while o * r < _ROW and m % (2 * r) == 0:
        r *= 2
    return r


class BiasRelu:
    """y = relu(h + bias) (either part optional) over an (m, o) array, as long rows (the
    bias tiled to their length) unless the array is small."""

    def __init__(self, m: int, o: int, bias: np.ndarray | None, relu: bool) -> None:
        r = _rows(m, o) if m * o >= _SMALL else 1
        self.shape = (m // r, o * r) if r > 1 else None
        self.bias = bias
        self.tile = aligned((r, o)) if bias is not None and r > 1 else None
        self.zeros = aligned((o * r,)) if relu else None
        self.mask = aligned((m, o), bool) if relu else None

    def forward(self, h: np.ndarray, y: np.ndarray) -> None:
        if self.shape is not None:
            h, y = h.reshape(self.shape), y.reshape(self.shape)
        if self.bias is not None:
            if self.tile is None:
                np.add(h, self.bias, out=y)
            else:
                self.tile[...] = self.bias
                np.add(h, self.tile.reshape(-1), out=y)
            h = y
        if self.zeros is not None:  # maximum with an array: several times faster than with 0
            np.maximum(h, self.zeros, out=y)
        elif h is not y:
            np.copyto(y, h)

    def backward(self, gy: np.ndarray, y: np.ndarray, gz: np.ndarray) -> np.ndarray:
        """dL/d(h + bias) given dL/dy (relu's derivative at 0 is 0, as the op's)."""
        if self.zeros is None:
            return gy
        np.greater(y, 0, out=self.mask)
        np.multiply(gy, self.mask, out=gz)
        return gz


class TallProduct:
    """out = a^T @ b for tall a (rows, k) and b (rows, o) with a small k x o result (a
    weight gradient summed over many rows: a first convolution's 9 taps x 32 filters over
    43,264 outputs). OpenBLAS splits such a product over its threads poorly: measured on
    that shape, one product takes 0.31-0.35 ms, while the rows cut into panels of 1,024
    (each product below the size OpenBLAS threads) and the panel results summed take
    0.14. Panels are used when the result has at most 2,048 elements and there are at
    least two panels; the rows that do not fill a panel go in one more product."""

    def __init__(self, rows: int, k: int, o: int) -> None:
        r = 1 << max(8, (_PANEL // (k * o)).bit_length() - 1) if k * o <= 2048 else 0
        self.r = r if r and rows >= 2 * r else 0
        self.k, self.o = k, o
        self.parts = rows // self.r if self.r else 0
        self.whole = self.parts * self.r
        self.tmp = aligned((self.parts, k, o)) if self.r else None
        self.rest = aligned((k, o)) if self.r and rows > self.whole else None

    def __call__(self, a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
        if not self.r:
            np.matmul(a.T, b, out=out)
            return
        n, r = self.whole, self.r
        np.matmul(a[:n].reshape(self.parts, r, self.k).transpose(0, 2, 1),
                  b[:n].reshape(self.parts, r, self.o), out=self.tmp)
        np.sum(self.tmp, axis=0, out=out)
        if self.rest is not None:
            np.matmul(a[n:].T, b[n:], out=self.rest)
            out += self.rest


class WindowMax:
    """A max-pool over q window offsets whose outputs come one (m, o) block per offset:
    the running max, where each offset beat all the offsets before it (strictly, so a tie
    stays with the first maximum, the max-pool op's rule), and the gradient routed back
    by those records."""

    def __init__(self, q: int, m: int, o: int) -> None:
        self.win = aligned((q - 1, m, o), bool)   # offset k + 1 beat offsets 0..k
        self.free = aligned((m, o), bool)

    def fold(self, k: int, pz: np.ndarray, zk: np.ndarray) -> None:
        """Offset k's outputs ``zk`` into the running max ``pz`` of offsets 0..k-1."""
        np.greater(zk, pz, out=self.win[k - 1])
        np.maximum(pz, zk, out=pz)

    def winners(self):
        """(k, mask) for k = q - 1 down to 0: where offset k is its window's first maximum,
        i.e. the last offset that beat every offset before it. Each mask is valid until
        the next one is asked for (the records are overwritten in place)."""
        win, free, last = self.win, self.free, len(self.win)
        yield last, win[last - 1]
        np.logical_not(win[last - 1], out=free)        # no later offset won
        for k in range(last - 1, 0, -1):
            np.logical_and(win[k - 1], free, out=win[k - 1])
            np.logical_xor(free, win[k - 1], out=free)
            yield k, win[k - 1]
        yield 0, free

    def route(self, gz: np.ndarray, dzq: np.ndarray) -> None:
        """dzq[k] (q, m, o): the pooled gradient gz where offset k is the window's first
        maximum; zero elsewhere."""
        for k, first in self.winners():
            np.multiply(gz, first, out=dzq[k])


def ones_row(m: int) -> np.ndarray:
    ones = aligned((1, m))
    ones[...] = 1
    return ones


class DenseKernel(Kernel):
    """y = relu(x @ w + bias), the bias and relu optional. Products through np.dot: for
    the tutorial's 11-6-6-1 network, whose steps are call overhead, 9 % off a step
    against np.matmul (its inputs are 2-D, where the two agree)."""

    def __init__(self, nodes, x: int, w: np.ndarray, bias: np.ndarray | None, relu: bool,
                 out: int, sinks: dict) -> None:
        self.nodes, self.x, self.w, self.bias, self.relu = tuple(nodes), x, w, bias, relu
        self.out, self.sinks = out, sinks

    def _allocate(self, b, n: int) -> None:
        units = self.w.shape[1]
        b.n, b.y, b.act = n, aligned((n, units)), BiasRelu(n, units, self.bias, self.relu)
        b.gz = aligned((n, units)) if self.relu else None
        b.ones = ones_row(n)
        b.dx = aligned((n, self.w.shape[0])) if 0 in self.sinks else None

    def forward(self, s, b):
        x = s[self.x]
        if b.n != x.shape[0]:
            self._allocate(b, x.shape[0])
        np.dot(x, self.w, b.y)
        if self.bias is not None or self.relu:
            b.act.forward(b.y, b.y)
        s[self.out] = b.y

    def backward(self, s, g, b):
        gy = self.incoming(g)
        if gy is None:
            return
        sinks = self.sinks
        gz = b.act.backward(gy, b.y, b.gz) if self.relu else gy
        sink = sinks.get(1)
        if sink is not None:
            np.dot(s[self.x].T, gz, sink.out())
            sink.done()
        sink = sinks.get(2)
        if sink is not None:
            np.dot(b.ones, gz, sink.out().reshape(1, -1))
            sink.done()
        sink = sinks.get(0)
        if sink is not None:
            np.dot(gz, self.w.T, b.dx)
            sink.give(g, b.dx)


class ConvKernel(Kernel):
    """y = maxpool(relu(conv2d(x, w) + bias)), the bias, relu and max-pool optional.

    Args:
        shape: the input's (H, W, C).
        pool: the max-pool's window (= its strides), or None.
    """

    def __init__(self, nodes, x: int, shape: tuple, w: np.ndarray, bias: np.ndarray | None,
                 relu: bool, pool: tuple | None, out: int, sinks: dict, strides=(1, 1),
                 pads=(0, 0, 0, 0), dilations=(1, 1)) -> None:
        self.nodes, self.x, self.w, self.bias, self.relu = tuple(nodes), x, w, bias, relu
        self.out, self.sinks, self.shape = out, sinks, tuple(shape)
        h, wd, c = shape
        kh, kw, _, o = w.shape
        (sh, sw), (dh, dw), (t, left, bt, r) = strides, dilations, pads
        oh = (h + t + bt - dh * (kh - 1) - 1) // sh + 1
        ow = (wd + left + r - dw * (kw - 1) - 1) // sw + 1
        self.pool = pool
        p0, p1 = pool or (1, 1)
        self.ph, self.pw = oh // p0, ow // p1
        self.q = p0 * p1
        self.k, self.c, self.o = kh * kw * c, c, o
        self.w2 = w.reshape(self.k, o)
        # cols: (window offset a, b; image; pooled row, col; tap i, j; channel). Each tap of
        # each offset reads the input with strides p*s, from a*s + i*d (less the padding).
        self.taps = []
        for a in range(p0):
            for b in range(p1):
                for i in range(kh):
                    out_r, in_r = tap_span(h, a * sh + i * dh, p0 * sh, t, self.ph)
                    for j in range(kw):
                        out_c, in_c = tap_span(wd, b * sw + j * dw, p1 * sw, left, self.pw)
                        if out_r.stop > out_r.start and out_c.stop > out_c.start:
                            self.taps.append(((a * p1 + b, slice(None), out_r, out_c, i, j),
                                              (slice(None), in_r, in_c)))
        # Without padding, im2col is one copy per window offset from a strided view of the
        # input (faster than a copy per tap, except for a single channel).
        self.strided = not any(pads) and c > 1
        self.offsets = [(a * sh, b * sw) for a in range(p0) for b in range(p1)]
        self.steps = (p0 * sh, p1 * sw, dh, dw)
        # col2im adds a row's KW taps at once where they read adjacent pixels (no padding,
        # unit column stride and dilation): runs of KW*C values instead of C. Windows of
        # neighbouring outputs overlap, so every G-th output column goes in one addition.
        self.rows_at_once = not any(pads) and sw == 1 and dw == 1
        self.gap = -(-kw // (p1 * sw))

    def _allocate(self, b, n: int) -> None:
        m = n * self.ph * self.pw
        o, q = self.o, self.q
        b.n, b.m = n, m
        b.cols = aligned((q * m, self.k))   # zero where a tap reads padding: never written
        b.cols7 = b.cols.reshape(q, n, self.ph, self.pw, *self.w.shape[:2], self.c)
        if q > 1:  # one window offset's convolution at a time, folded into the running max
            b.cq = b.cols.reshape(q, m, self.k)
            b.zt, b.pz = aligned((m, o)), aligned((m, o))
            b.pool = WindowMax(q, m, o)
        else:
            b.pz = aligned((m, o))
        b.y = aligned((m, o)) if (q > 1 and (self.bias is not None or self.relu)) else b.pz
        b.act = BiasRelu(m, o, self.bias, self.relu)
        b.ones = ones_row(m)
        b.gz = aligned((m, o)) if self.relu else None
        b.dw = TallProduct(m, self.k, o)      # per window offset when pooled
        if q > 1:
            b.dzk = aligned((m, o))             # one offset's share of the gradient
            b.dwq = aligned((q, self.k, o))     # ... and of the weight gradient
        if 0 in self.sinks:
            b.dcols = aligned((q * m, self.k))
            b.dcols7 = b.dcols.reshape(b.cols7.shape)
            b.dx = aligned((n, *self.shape))
            b.col2im = self._col2im_pairs(b.dx, b.dcols7)

    def _col2im_pairs(self, dx: np.ndarray, dcols7: np.ndarray) -> list[tuple]:
        """(input-gradient view, patch-gradient view) pairs whose sum is col2im."""
        if not self.rows_at_once:
            return [(dx[src], dcols7[dst]) for dst, src in self.taps]
        kh, kw = self.w.shape[:2]
        p0, p1 = self.pool or (1, 1)
        (row_step, _, dh, _), g = self.steps, self.gap
        n, c = dx.shape[0], self.c
        s_n, s_h, s_w, _ = dx.strides
        pairs = []
        for q in range(p0 * p1):
            a, b = divmod(q, p1)
            for i in range(kh):
                for first in range(g):
                    pw = len(range(first, self.pw, g))
                    if pw == 0:
                        continue
                    shape = (n, self.ph, pw, kw * c)
                    row = self.offsets[q][0] + i * dh
                    col = self.offsets[q][1] + first * p1
                    dst = as_strided(dx[:, row:, col:], shape, (s_n, row_step * s_h,
                                                                 g * p1 * s_w, 4))
                    src = dcols7[q, :, :, first::g, i]          # (n, ph, pw, kw, c)
                    src = as_strided(src, shape, src.strides[:3] + (4,), writeable=False)
                    pairs.append((dst, src))
        return pairs

    def _im2col(self, x: np.ndarray, b) -> None:
        if not self.strided:
            for dst, src in self.taps:
                b.cols7[dst] = x[src]
            return
        s_n, s_h, s_w, s_c = x.strides
        ph, pw, dh, dw = self.steps
        strides = (s_n, ph * s_h, pw * s_w, dh * s_h, dw * s_w, s_c)
        shape = b.cols7.shape[1:]
        for k, (r0, c0) in enumerate(self.offsets):
            np.copyto(b.cols7[k], as_strided(x[:, r0:, c0:], shape, strides, writeable=False))

    def forward(self, s, b):
        x = s[self.x]
        if b.n != x.shape[0]:
            self._allocate(b, x.shape[0])
        self._im2col(x, b)
        if self.q > 1:
            # Nothing of offset-sized (q m, o) is written: each product lands in one (m, o)
            # buffer and is folded into the running max.
            np.matmul(b.cq[0], self.w2, out=b.pz)
            for k in range(1, self.q):
                np.matmul(b.cq[k], self.w2, out=b.zt)
                b.pool.fold(k, b.pz, b.zt)
        else:
            np.matmul(b.cols, self.w2, out=b.pz)
        if self.bias is not None or self.relu:
            b.act.forward(b.pz, b.y)
        s[self.out] = b.y.reshape(b.n, self.ph, self.pw, self.o)

    def backward(self, s, g, b):
        gy = self.incoming(g)
        if gy is None:
            return
        sinks = self.sinks
        gz = b.act.backward(gy.reshape(b.m, self.o), b.y, b.gz)
        if 2 in sinks:
            sink = sinks[2]
            np.matmul(b.ones, gz, out=sink.out().reshape(1, -1))
            sink.done()
        dw, dx = sinks.get(1), 0 in sinks
        if self.q > 1 and (dw is not None or dx):
            # One offset at a time, while its share of the gradient is in cache: its rows'
            # weight gradient and patch gradients (measured 3 % off a CNN step against
            # routing all offsets first and multiplying once).
            dcq = b.dcols.reshape(self.q, b.m, self.k) if dx else None
            for k, first in b.pool.winners():
                np.multiply(gz, first, out=b.dzk)
                if dw is not None:
                    b.dw(b.cq[k], b.dzk, b.dwq[k])
                if dx:
                    np.matmul(b.dzk, self.w2.T, out=dcq[k])
            if dw is not None:
                np.sum(b.dwq, axis=0, out=dw.out().reshape(self.k, self.o))
                dw.done()
        elif self.q == 1:
            if dw is not None:
                b.dw(b.cols, gz, dw.out().reshape(self.k, self.o))
                dw.done()
            if dx:
                np.matmul(gz, self.w2.T, out=b.dcols)
        if dx:
            b.dx[...] = 0
            for dst, src in b.col2im:
                np.add(dst, src, out=dst)
            sinks[0].give(g, b.dx)

