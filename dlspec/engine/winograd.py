"""A 3x3, stride-1 convolution as Winograd's minimal filtering F(2x2, 3x3).

Each 2x2 block of outputs (a *tile*) reads a 4x4 block of the input, and tiles step by
2, so neighbouring input blocks overlap by two rows or columns. With d a 4x4 input
block and g a 3x3 filter (one input and one output channel), the tile is

    y = A^T [(G g G^T) * (B^T d B)] A          (* elementwise, over 4x4)

which costs 16 multiplications instead of im2col's 36. Summed over channels, the
elementwise products of all tiles become 16 matrix products, one per position xi of the
4x4 transformed block: M[xi] = V[xi] @ U[xi], with V[xi] (tiles, C) the transformed
inputs and U[xi] (C, O) the transformed filters. The transforms are linear maps with
entries 0, +-1/2, +-1/4 and +-1, each one small matrix product here (kron(B^T, B^T)
over the 16 gathered taps of all tiles at once, and so on). For the convolution of a CNN
after its first layer (32 -> 64 channels on 13x13 images, batch 64) that is 2.25x fewer
multiply-adds than im2col's single product, forward and in both backward products, and a
16-tap gather in place of im2col's larger 9-taps-per-output one.

The backward pass is the transpose of the same linear maps:

    dM = A dY A^T;  dU[xi] = V[xi]^T dM[xi];  dg = G^T dU G  (summed over xi)
    dV[xi] = dM[xi] U[xi]^T;  dd = B dV B^T, added back into the overlapping blocks.

Tiles are the windows of a following 2x2 max-pool (stride 2, unpadded), so the pool is
a max over the tile's four outputs: the same running max and first-maximum records as
ConvKernel (kernels.WindowMax). Without a pool the tiles' outputs are written back to
their places (an odd output edge computes a tile that is half outside, on zeros).
Padding, and the zero border an odd unpooled edge needs, come from a zero-bordered copy
of the input.

F(2x2, 3x3)'s rounding error is a few float32 ulps of the result (the transforms are
exact for small integers, so integer-valued test data tie exactly as im2col's do). The
tests (tests/ops/test_fused.py) compare this kernel with the unfused conv2d, add, relu,
maxpool2d rules.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dlspec.engine.kernels import BiasRelu, Kernel, WindowMax, aligned, ones_row

_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
_G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)
B16 = np.kron(_BT, _BT)   # (xi, tap of the 4x4 input block), both row-major
G16 = np.kron(_G, _G)     # (xi, tap of the 3x3 filter)
A4 = np.kron(_AT, _AT)    # (output of the 2x2 tile, xi)
_B16T, _G16T, _A4T = (np.ascontiguousarray(a.T) for a in (B16, G16, A4))

# Below this many input channels the transforms cost more than the products they save
# (a first layer reading 1 or 3 channels stays with im2col).
MIN_CHANNELS = 8


def winograd_fits(kernel_shape: tuple, strides, dilations, pool) -> bool:
    """Whether a conv2d (+ optional 2x2 max-pool) is computed by WinogradConvKernel."""
    kh, kw, c, _ = kernel_shape
    return ((kh, kw) == (3, 3) and tuple(strides) == (1, 1) and tuple(dilations) == (1, 1)
            and (pool is None or tuple(pool) == (2, 2)) and c >= MIN_CHANNELS)


class WinogradConvKernel(Kernel):
    """y = maxpool2x2(relu(conv2d_3x3(x, w) + bias)), the bias, relu and pool optional.

    Args:
        shape: the input's (H, W, C).
        pool: (2, 2) or None.
    """

    def __init__(self, nodes, x: int, shape: tuple, w: np.ndarray, bias: np.ndarray | None,
                 relu: bool, pool: tuple | None, out: int, sinks: dict,
                 pads=(0, 0, 0, 0)) -> None:
        self.nodes, self.x, self.w, self.bias, self.relu = tuple(nodes), x, w, bias, relu
        self.out, self.sinks, self.shape, self.pool = out, sinks, tuple(shape), pool
        h, wd, c = shape
        top, left, bottom, right = pads
        self.c, self.o = c, w.shape[3]
        self.oh, self.ow = h + top + bottom - 2, wd + left + right - 2
        if pool is None:
            self.th, self.tw = -(-self.oh // 2), -(-self.ow // 2)
        else:
            self.th, self.tw = self.oh // 2, self.ow // 2
        # The (padded) input the tiles read: rows and columns 0 .. 2 * tiles + 1.
        self.rows, self.cols = 2 * self.th + 2, 2 * self.tw + 2
        self.padded = any(pads) or self.rows > h or self.cols > wd
        self.at = (top, left)
        # The part of the input that lands inside: x[:, :hh, :ww] -> xp[:, top:, left:].
        self.hh, self.ww = min(h, self.rows - top), min(wd, self.cols - left)
        self.w9 = w.reshape(9, c * self.o)
        # Unpooled: each position (r, c) of a tile, and how many tile rows and columns of
        # it are real outputs (an odd edge's last tile is half outside).
        self.phases = [(r, c_, len(range(r, self.oh, 2)), len(range(c_, self.ow, 2)))
                       for r in range(2) for c_ in range(2)]

    def _allocate(self, b, n: int) -> None:
        c, o, th, tw = self.c, self.o, self.th, self.tw
        p = n * th * tw
        b.n, b.p = n, p
        if self.padded:
            b.xp = aligned((n, self.rows, self.cols, c))   # its border stays zero
        b.d = aligned((16, p, c))     # gathered taps; then dV
        b.v = aligned((16, p, c))     # transformed inputs; then dD
        b.u = aligned((16, c, o))
        b.m = aligned((16, p, o))     # products; then dM
        b.yq = aligned((4, p, o))     # the tiles' outputs, output-major
        if self.pool is not None:
            b.window = WindowMax(4, p, o)
            b.pz = b.yq[0]            # the running max, over offset 0's outputs
            b.y = aligned((p, o)) if (self.bias is not None or self.relu) else b.pz
            b.act, b.ones = BiasRelu(p, o, self.bias, self.relu), ones_row(p)
            b.gz = aligned((p, o)) if self.relu else None
            b.out = b.y.reshape(n, th, tw, o)
        else:
            b.act, b.ones = BiasRelu(4 * p, o, self.bias, self.relu), ones_row(4 * p)
            b.gz = aligned((4 * p, o)) if self.relu else None
            b.out = aligned((n, self.oh, self.ow, o))
            b.places = self._places(b.out, b.yq)
        b.dy = aligned((4, p, o))     # zero where an unpooled tile is outside: never written
        if 1 in self.sinks:
            b.dut = aligned((16, o, c))
            b.dw9 = aligned((9, o, c))
        if 0 in self.sinks:
            b.f = aligned((2, 2, n, th + 1, tw + 1, c))
            b.dx = aligned((n, *self.shape))
            if self.padded:
                b.dxp = aligned((n, self.rows, self.cols, c))

    def _places(self, out: np.ndarray, yq: np.ndarray) -> list[tuple]:
        """(output view, tile-output view) pairs, one per position in the tile, cropped
        to the outputs that exist."""
        y6 = yq.reshape(2, 2, out.shape[0], self.th, self.tw, self.o)
        return [(out[:, r::2, c::2], y6[r, c, :, :rows, :cols])
                for r, c, rows, cols in self.phases]

    @staticmethod
    def _blocks(a: np.ndarray, count: tuple, lead: int = 4) -> np.ndarray:
        """A view (lead, lead, N, TH, TW, C) of an (N, H, W, C) array: [r, c, n, i, j] is
        pixel (2i + r, 2j + c) of image n."""
        s_n, s_h, s_w, s_c = a.strides
        return as_strided(a, (lead, lead, a.shape[0], *count, a.shape[3]),
                          (s_h, s_w, s_n, 2 * s_h, 2 * s_w, s_c))

    def forward(self, s, b):
        x = s[self.x]
        if b.n != x.shape[0]:
            self._allocate(b, x.shape[0])
        if self.padded:
            top, left = self.at
            np.copyto(b.xp[:, top:top + self.hh, left:left + self.ww],
                      x[:, :self.hh, :self.ww])
            x = b.xp
        n, p, c, o = b.n, b.p, self.c, self.o
        np.copyto(b.d.reshape(4, 4, n, self.th, self.tw, c),
                  self._blocks(x, (self.th, self.tw)))
        np.matmul(B16, b.d.reshape(16, p * c), out=b.v.reshape(16, p * c))
        np.matmul(G16, self.w9, out=b.u.reshape(16, c * o))
        np.matmul(b.v, b.u, out=b.m)
        np.matmul(A4, b.m.reshape(16, p * o), out=b.yq.reshape(4, p * o))
        if self.pool is not None:
            for k in range(1, 4):
                b.window.fold(k, b.pz, b.yq[k])
            if self.bias is not None or self.relu:
                b.act.forward(b.pz, b.y)
        else:
            flat = b.yq.reshape(4 * p, o)
            if self.bias is not None or self.relu:
                b.act.forward(flat, flat)
            for dst, src in b.places:
                np.copyto(dst, src)
        s[self.out] = b.out

    def backward(self, s, g, b):
        gy = self.incoming(g)
        if gy is None:
            return
        sinks, n, p, c, o = self.sinks, b.n, b.p, self.c, self.o
        if self.pool is not None:
            gz = b.act.backward(gy.reshape(p, o), b.y, b.gz)
        else:
            dy6 = b.dy.reshape(2, 2, n, self.th, self.tw, o)
            for r, col, rows, cols in self.phases:
                np.copyto(dy6[r, col, :, :rows, :cols], gy[:, r::2, col::2])
            gz = b.act.backward(b.dy.reshape(4 * p, o), b.yq.reshape(4 * p, o), b.gz)
        if 2 in sinks:
            sink = sinks[2]
            np.matmul(b.ones, gz, out=sink.out().reshape(1, -1))
            sink.done()
        if self.pool is not None:
            b.window.route(gz, b.dy)
            dy = b.dy
        else:
            dy = gz.reshape(4, p, o)
        dm = b.m
        np.matmul(_A4T, dy.reshape(4, p * o), out=dm.reshape(16, p * o))
        if 1 in sinks:
            sink = sinks[1]
            np.matmul(dm.transpose(0, 2, 1), b.v, out=b.dut)
            np.matmul(_G16T, b.dut.reshape(16, o * c), out=b.dw9.reshape(9, o * c))
            np.copyto(sink.out().reshape(9, c, o), b.dw9.transpose(0, 2, 1))
            sink.done()
        if 0 in sinks:
            dv, dd = b.d, b.v
            np.matmul(dm, b.u.transpose(0, 2, 1), out=dv)
            np.matmul(_B16T, dv.reshape(16, p * c), out=dd.reshape(16, p * c))
            self._scatter(dd, b)
            sinks[0].give(g, b.dx)

    def _scatter(self, dd: np.ndarray, b) -> None:
        """Add the blocks' gradients dd (16 taps, tiles, C) back into the input's: pixel
        (2i + r, 2j + c), r and c in {0, 1}, gets tap (r + 2a, c + 2b) of tile
        (i - a, j - b) for a, b in {0, 1}. In ``f`` (2, 2, N, TH + 1, TW + 1, C), pixels
        by (r, c) first, that is four additions of shifted (2, 2, N, TH, TW, C) blocks;
        then one strided copy puts them in place (measured 3 % off a CNN step against
        adding rows, then columns)."""
        th, tw, f = self.th, self.tw, b.f
        d6 = dd.reshape(4, 4, b.n, th, tw, self.c)
        f[:, :, :, :th, :tw] = d6[:2, :2]
        f[:, :, :, th] = 0
        f[:, :, :, :th, tw] = 0
        np.add(f[:, :, :, 1:, :tw], d6[2:, :2], out=f[:, :, :, 1:, :tw])
        np.add(f[:, :, :, :th, 1:], d6[:2, 2:], out=f[:, :, :, :th, 1:])
        np.add(f[:, :, :, 1:, 1:], d6[2:, 2:], out=f[:, :, :, 1:, 1:])
        # Rows and columns past the tiles' reach (an odd edge before a pool) stay zero.
        if not self.padded:
            np.copyto(self._blocks(b.dx, (th + 1, tw + 1), lead=2), f)
            return
        np.copyto(self._blocks(b.dxp, (th + 1, tw + 1), lead=2), f)
        top, left = self.at
        np.copyto(b.dx[:, :self.hh, :self.ww],
                  b.dxp[:, top:top + self.hh, left:left + self.ww])
