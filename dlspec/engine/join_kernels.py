"""The kernel of a join: ``add`` of two activations of one shape (a residual shortcut),
then optionally ``relu`` and (for images) a max-pool whose windows neither overlap nor
pad, with every array in buffers reused from step to step.

Forward: z = a + b (in place into one buffer), relu in place, then the pool as a running
maximum over the window offsets' strided views, recording where each offset beat all the
offsets before it (``WindowMax``'s rule: a tie stays with the first maximum, as the
max-pool op's). Backward: the pooled gradient routed back by those records, masked by
relu, and given as it is to both inputs (the gradient of a sum is the same for each).
The unfused ops' rules are the reference (tests/ops/test_fused.py).
"""

from __future__ import annotations

import numpy as np

from dlspec.engine.kernels import Kernel, aligned


class JoinKernel(Kernel):
    def __init__(self, nodes, a: int, b: int, relu: bool, window: tuple | None, out: int,
                 sinks: dict) -> None:
        self.nodes, self.a, self.b, self.relu, self.window = tuple(nodes), a, b, relu, window
        self.out, self.sinks = out, sinks

    def _allocate(self, buf, shape: tuple) -> None:
        n = shape[0]
        buf.n, buf.z = n, aligned(shape)
        buf.mask = aligned(shape, bool) if self.relu else None
        buf.dz = aligned(shape) if self.window else None
        if self.window:
            kh, kw = self.window
            oh, ow = shape[1] // kh, shape[2] // kw
            buf.y = aligned((n, oh, ow, shape[3]))
            buf.win = aligned((kh * kw - 1, n, oh, ow, shape[3]), bool)
            buf.free = aligned((n, oh, ow, shape[3]), bool)
            buf.views = [(slice(None), slice(i, i + oh * kh, kh), slice(j, j + ow * kw, kw))
                         for i in range(kh) for j in range(kw)]

    def forward(self, s, buf):
        a, b = s[self.a], s[self.b]
        if buf.n != a.shape[0]:
            self._allocate(buf, a.shape)
        z = buf.z
        np.add(a, b, out=z)
        if self.relu:
            np.maximum(z, 0, out=z)
            np.greater(z, 0, out=buf.mask)
        if not self.window:
            s[self.out] = z
            return
        views, y, win = buf.views, buf.y, buf.win
        np.copyto(y, z[views[0]])
        for k in range(1, len(views)):
            zk = z[views[k]]
            np.greater(zk, y, out=win[k - 1])
            np.maximum(y, zk, out=y)
        s[self.out] = y

    def backward(self, s, g, buf):
        gy = self.incoming(g)
        if gy is None:
            return
        if self.window:
            dz, win, free = buf.dz, buf.win, buf.free
            if dz.shape[1] % self.window[0] or dz.shape[2] % self.window[1]:
                dz[...] = 0  # the edge no window covers
            # The first maximum of a window is the last offset that beat every offset before
            # it; offset 0 holds where none did.
            last = len(win)
            np.multiply(gy, win[last - 1], out=dz[buf.views[last]])
            np.logical_not(win[last - 1], out=free)
            for k in range(last - 1, 0, -1):
                first = win[k - 1]
                np.logical_and(first, free, out=first)
                np.logical_xor(free, first, out=free)
                np.multiply(gy, first, out=dz[buf.views[k]])
            np.multiply(gy, free, out=dz[buf.views[0]])
            if self.relu:
                np.multiply(dz, buf.mask, out=dz)
        elif self.relu:  # z is read by nothing once its consumers' gradients are in
            dz = np.multiply(gy, buf.mask, out=buf.z)
        else:
            dz = gy
        for sink in self.sinks.values():
            sink.give(g, dz)
