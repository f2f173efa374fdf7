"""Spatial ops on channels-last images (N, H, W, C): conv2d, max/average pooling, global pooling.

NumPy runs them NHWC (PERF-NOTES, lever 4). Convolution is im2col + ONE GEMM: the input is
copied, one strided slice per kernel tap (KH*KW copies, no loop over pixels; padding is
clipped, never materialised), into an (N*OH*OW, KH*KW*C) matrix that multiplies the
[KH, KW, C/groups, O] kernel seen as (KH*KW*C/groups, O); its gradient is the transposed
GEMMs and col2im, the same KH*KW slices added back. Pooling is elementwise work over the
KH*KW strided views of the (padded) input.
ONNX is NCHW, so each emission is Transpose -> op -> Transpose back; onnxruntime cancels
the adjacent pairs between consecutive layers.

Attributes: ``kernel`` (kh, kw), ``strides`` (sh, sw), ``pads`` (top, left, bottom, right),
``dilations`` (dh, dw), all explicit ints (layers turn 'same'/'valid' into pads with
``same_pads``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from dlspec.ops.registry import OpDef, f32, register, shape_error

TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]
KERNEL_TO_OIHW = [3, 2, 0, 1]  # [KH, KW, C/groups, O] -> ONNX's [O, C/groups, KH, KW]


def pair(v: int | Sequence[int]) -> tuple[int, int]:
    """``3`` -> (3, 3); ``[3, 5]`` -> (3, 5)."""
    if isinstance(v, int | np.integer):
        return int(v), int(v)
    a, b = v
    return int(a), int(b)


def out_size(size: int, k: int, stride: int, before: int, after: int, dilation: int = 1) -> int:
    """Output length of a window of ``k`` taps (``dilation`` apart) sliding by ``stride``."""
    return (size + before + after - dilation * (k - 1) - 1) // stride + 1


def same_pads(size: int, k: int, stride: int, dilation: int = 1,
              upper: bool = True) -> tuple[int, int]:
    """(before, after) padding giving ceil(size / stride) outputs.

    ``upper`` puts the odd pixel after (TensorFlow/Keras 'same', ONNX SAME_UPPER);
    otherwise before (ONNX SAME_LOWER).
    """
    n_out = -(-size // stride)
    total = max((n_out - 1) * stride + dilation * (k - 1) + 1 - size, 0)
    small = total // 2
    return (small, total - small) if upper else (total - small, small)


def _geometry(op: str, x: tuple, kernel, strides, pads, dilations, *others) -> tuple[int, int]:
    """(OH, OW) of a window op on an NHWC shape; ShapeError naming the op and shapes."""
    if len(x) != 4:
        raise shape_error(op, "expects an image batch (N, H, W, C)", x, *others)
    values = (*kernel, *strides, *dilations)
    if len(kernel) != 2 or len(strides) != 2 or len(dilations) != 2 or len(pads) != 4 \
            or min(values) < 1 or min(pads) < 0:
        raise shape_error(op, f"needs positive kernel {tuple(kernel)}, strides {tuple(strides)}"
                          f" and dilations {tuple(dilations)}, and 4 pads >= 0 "
                          f"{tuple(pads)}", x, *others)
    t, left, b, r = pads
    oh = out_size(x[1], kernel[0], strides[0], t, b, dilations[0])
    ow = out_size(x[2], kernel[1], strides[1], left, r, dilations[1])
    if oh < 1 or ow < 1:
        raise shape_error(op, f"a {kernel[0]}x{kernel[1]} window (dilations {tuple(dilations)},"
                          f" pads {tuple(pads)}) does not fit the {x[1]}x{x[2]} image", x, *others)
    return oh, ow


def _pad(x: np.ndarray, pads, value: float) -> np.ndarray:
    t, left, b, r = pads
    if not (t or left or b or r):
        return x
    n, h, w, c = x.shape
    xp = np.full((n, h + t + b, w + left + r, c), value, dtype=x.dtype)
    xp[:, t:t + h, left:left + w] = x
    return xp


def _crop(dxp: np.ndarray, pads, shape: tuple) -> np.ndarray:
    t, left, *_ = pads
    if dxp.shape == shape:
        return dxp
    return np.ascontiguousarray(dxp[:, t:t + shape[1], left:left + shape[2]])


def _windows(kernel, strides, dilations, oh: int, ow: int) -> Iterator[tuple]:
    """The padded input's strided view seen by each kernel offset (i, j), in row-major order."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    for i in range(kh):
        for j in range(kw):
            yield (slice(None), slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                   slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def _out_hw(xp: np.ndarray, kernel, strides, dilations) -> tuple[int, int]:
    return (out_size(xp.shape[1], kernel[0], strides[0], 0, 0, dilations[0]),
            out_size(xp.shape[2], kernel[1], strides[1], 0, 0, dilations[1]))


# ----------------------------------------------------------------------------- conv2d

def _conv_shape(x, w, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    if len(w) != 4:
        raise shape_error("conv2d", "expects a kernel [KH, KW, C/groups, O]", x, w)
    oh, ow = _geometry("conv2d", x, w[:2], strides, pads, dilations, w)
    if groups < 1 or x[3] != w[2] * groups or w[3] % groups:
        raise shape_error("conv2d", f"with groups={groups} the kernel needs C/groups = "
                          f"{x[3]}/{groups} input channels and a multiple of {groups} outputs",
                          x, w)
    return (x[0], oh, ow, w[3])


def tap_span(size: int, offset: int, stride: int, before: int, n_out: int) -> tuple[slice, slice]:
    """Along one axis, for the kernel tap at ``offset``: the outputs whose tap reads a real
    (not padding) pixel, and those pixels."""
    r0 = max(0, -(-(before - offset) // stride))
    r1 = max(r0, min(n_out, (size - 1 + before - offset) // stride + 1))
    first = r0 * stride + offset - before
    return slice(r0, r1), slice(first, first + (r1 - r0 - 1) * stride + 1 if r1 > r0 else first,
                                stride)


def _taps(x_shape: tuple, kernel, strides, pads, dilations, oh: int, ow: int) -> Iterator:
    """(region of the (N, OH, OW, KH, KW, C) patches, input view) per kernel tap (i, j), with
    padding clipped away: im2col and col2im never build a padded copy of the image."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    t, left, *_ = pads
    cols = [tap_span(x_shape[2], j * dw, sw, left, ow) for j in range(kw)]
    for i in range(kh):
        out_r, in_r = tap_span(x_shape[1], i * dh, sh, t, oh)
        for j, (out_c, in_c) in enumerate(cols):
            yield (slice(None), out_r, out_c, i, j), (slice(None), in_r, in_c)


def _im2col(x: np.ndarray, kernel, strides, pads, dilations) -> tuple[np.ndarray, int, int]:
    """(N*OH*OW, KH*KW*C) patches: one strided copy per kernel tap (zeros where padded)."""
    (n, h, w, c), (kh, kw), (t, left, b, r) = x.shape, kernel, pads
    oh = out_size(h, kh, strides[0], t, b, dilations[0])
    ow = out_size(w, kw, strides[1], left, r, dilations[1])
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for out, view in _taps(x.shape, kernel, strides, pads, dilations, oh, ow):
        cols[out] = x[view]
        if any(pads):   # zero what the tap reads from padding: the border strips only
            _, rows, cs, i, j = out
            cols[:, :rows.start, :, i, j] = cols[:, rows.stop:, :, i, j] = 0
            cols[:, rows, :cs.start, i, j] = cols[:, rows, cs.stop:, i, j] = 0
    return cols.reshape(n * oh * ow, kh * kw * c), oh, ow


def _by_group(cols: np.ndarray, taps: int, groups: int) -> np.ndarray:
    """(M, taps*C) -> (groups, M, taps*C/groups): each group's patches as one matrix."""
    m = cols.shape[0]
    return cols.reshape(m, taps, groups, -1).transpose(2, 0, 1, 3).reshape(groups, m, -1)


def _conv2d(x, w, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    kh, kw, _, o = w.shape
    cols, oh, ow = _im2col(x, (kh, kw), strides, pads, dilations)
    if groups == 1:
        y = cols @ w.reshape(-1, o)
    else:
        wg = w.reshape(-1, groups, o // groups).transpose(1, 0, 2)   # (G, K*Cg, Og)
        y = (_by_group(cols, kh * kw, groups) @ wg).transpose(1, 0, 2).reshape(-1, o)
    return y.reshape(x.shape[0], oh, ow, o)


def _conv2d_vjp(g, y, x, w, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    kh, kw, cg, o = w.shape
    cols, oh, ow = _im2col(x, (kh, kw), strides, pads, dilations)
    g2 = g.reshape(-1, o)
    if groups == 1:
        dw = (cols.T @ g2).reshape(w.shape)
        dcols = g2 @ w.reshape(-1, o).T
    else:
        og = o // groups
        gg = g2.reshape(-1, groups, og).transpose(1, 0, 2)           # (G, M, Og)
        wg = w.reshape(-1, groups, og).transpose(1, 0, 2)            # (G, K*Cg, Og)
        dw = (_by_group(cols, kh * kw, groups).transpose(0, 2, 1) @ gg)  # (G, K*Cg, Og)
        dw = dw.transpose(1, 0, 2).reshape(w.shape)
        dcols = (gg @ wg.transpose(0, 2, 1)).reshape(groups, -1, kh * kw, cg)
        dcols = dcols.transpose(1, 2, 0, 3)                          # (M, K, G, Cg)
    # col2im: each tap's patch gradients added back where the patch was read.
    dc = dcols.reshape(x.shape[0], oh, ow, kh, kw, x.shape[3])
    dx = np.zeros(x.shape, dtype=dc.dtype)
    for out, view in _taps(x.shape, (kh, kw), strides, pads, dilations, oh, ow):
        dx[view] += dc[out]
    return dx, dw


def _emit_conv2d(b, names, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1):
    x, w = names
    xt = b.node("Transpose", [x], "conv_in", perm=TO_NCHW)
    wt = b.node("Transpose", [w], "conv_kernel", perm=KERNEL_TO_OIHW)
    y = b.node("Conv", [xt, wt], "conv", strides=_ints(strides), pads=_ints(pads),
               dilations=_ints(dilations), group=int(groups))
    return b.node("Transpose", [y], "conv2d", perm=TO_NHWC)


def _ints(v) -> list[int]:
    return [int(i) for i in v]


def _sample_conv2d(rng):
    groups = int(rng.choice([1, 2]))
    attrs = {"strides": pair(rng.integers(1, 3, 2)), "pads": tuple(int(p) for p in
             rng.integers(0, 3, 4)), "dilations": pair(rng.integers(1, 3, 2)), "groups": groups}
    return [f32(rng, 2, 7, 9, 4), f32(rng, 3, 2, 4 // groups, 6)], attrs


register(OpDef("conv2d", 2, _conv_shape, _conv2d, _conv2d_vjp, _emit_conv2d, _sample_conv2d))


# ----------------------------------------------------------------------------- pooling

def _pool_shape(op):
    def shape(x, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0), **_):
        oh, ow = _geometry(op, x, kernel, strides, pads, (1, 1))
        if max(pads[0], pads[2]) >= kernel[0] or max(pads[1], pads[3]) >= kernel[1]:
            # A window of padding only would have no maximum and no average.
            raise shape_error(op, f"pads {tuple(pads)} must be smaller than the kernel "
                              f"{tuple(kernel)}", x)
        return (x[0], oh, ow, x[3])
    return shape


def _overlap(kernel, strides) -> bool:
    return strides[0] < kernel[0] or strides[1] < kernel[1]


def _maxpool2d(x, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0)):
    xp = _pad(x, pads, -np.inf)
    oh, ow = _out_hw(xp, kernel, strides, (1, 1))
    views = _windows(kernel, strides, (1, 1), oh, ow)
    y = xp[next(views)].copy()
    for view in views:
        np.maximum(y, xp[view], out=y)
    return y


def _maxpool2d_vjp(g, y, x, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0)):
    # Each output's gradient goes to the first position (row-major in the window) holding
    # the maximum; `free` marks outputs whose maximum has not been found yet.
    xp = _pad(x, pads, -np.inf)
    oh, ow = y.shape[1:3]
    dxp = np.zeros(xp.shape, dtype=g.dtype)
    free = np.ones(y.shape, dtype=bool)
    overlap = _overlap(kernel, strides)
    for view in _windows(kernel, strides, (1, 1), oh, ow):
        hit = xp[view] == y
        hit &= free
        free ^= hit
        if overlap:
            dxp[view] += g * hit
        else:
            np.multiply(g, hit, out=dxp[view])
    return (_crop(dxp, pads, x.shape),)


def _avg_count(x_shape, kernel, strides, pads, count_include_pad, dtype):
    """Divisor per output: kh*kw, or (count_include_pad false) the window's real pixels."""
    if count_include_pad or not any(pads):
        return dtype.type(kernel[0] * kernel[1])
    ones = _pad(np.ones((1, x_shape[1], x_shape[2], 1), dtype=dtype), pads, 0)
    oh, ow = _out_hw(ones, kernel, strides, (1, 1))
    return sum(ones[view] for view in _windows(kernel, strides, (1, 1), oh, ow))


def _avgpool2d(x, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0), count_include_pad=False):
    xp = _pad(x, pads, 0)
    oh, ow = _out_hw(xp, kernel, strides, (1, 1))
    views = _windows(kernel, strides, (1, 1), oh, ow)
    y = xp[next(views)].copy()
    for view in views:
        y += xp[view]
    y /= _avg_count(x.shape, kernel, strides, pads, count_include_pad, x.dtype)
    return y


def _avgpool2d_vjp(g, y, x, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0),
                   count_include_pad=False):
    t, left, b, r = pads
    dxp = np.zeros((x.shape[0], x.shape[1] + t + b, x.shape[2] + left + r, x.shape[3]),
                   dtype=g.dtype)
    gs = g / _avg_count(x.shape, kernel, strides, pads, count_include_pad, g.dtype)
    overlap = _overlap(kernel, strides)
    for view in _windows(kernel, strides, (1, 1), *y.shape[1:3]):
        if overlap:
            dxp[view] += gs
        else:
            dxp[view] = gs
    return (_crop(dxp, pads, x.shape),)


def _emit_pool(onnx_op, hint):
    def emit(b, names, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0), **extra):
        xt = b.node("Transpose", names, f"{hint}_in", perm=TO_NCHW)
        y = b.node(onnx_op, [xt], hint.replace("2d", ""), kernel_shape=_ints(kernel),
                   strides=_ints(strides), pads=_ints(pads),
                   **{k: int(v) for k, v in extra.items()})
        return b.node("Transpose", [y], hint, perm=TO_NHWC)
    return emit


def _pool_attrs(rng) -> dict:
    kernel = (3, int(rng.integers(2, 4)))
    return {"kernel": kernel, "strides": pair(rng.integers(1, 4, 2)),
            "pads": (int(rng.integers(0, 3)), int(rng.integers(0, kernel[1])),
                     int(rng.integers(0, 3)), int(rng.integers(0, kernel[1])))}


def _distinct(rng, *shape) -> np.ndarray:
    """Values in [-1, 1) at least 2/size apart: every window's maximum is unique."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * (2.0 / n) - 1.0).astype(np.float32)


register(OpDef("maxpool2d", 1, _pool_shape("maxpool2d"), _maxpool2d, _maxpool2d_vjp,
               _emit_pool("MaxPool", "maxpool2d"),
               lambda rng: ([_distinct(rng, 2, 7, 9, 3)], _pool_attrs(rng))))

register(OpDef("avgpool2d", 1, _pool_shape("avgpool2d"), _avgpool2d, _avgpool2d_vjp,
               _emit_pool("AveragePool", "avgpool2d"),
               lambda rng: ([f32(rng, 2, 7, 9, 3)], {**_pool_attrs(rng),
                            "count_include_pad": bool(rng.integers(0, 2))})))


# ----------------------------------------------------------------------------- global pooling

def _global_shape(x):
    if len(x) != 4:
        raise shape_error("global_avgpool", "expects an image batch (N, H, W, C)", x)
    return (x[0], x[3])


def _global_avgpool_vjp(g, y, x):
    dx = np.empty(x.shape, dtype=g.dtype)
    dx[...] = (g * g.dtype.type(1.0 / (x.shape[1] * x.shape[2])))[:, None, None, :]
    return (dx,)


def _emit_global_avgpool(b, names):
    xt = b.node("Transpose", names, "gap_in", perm=TO_NCHW)
    y = b.node("GlobalAveragePool", [xt], "gap")              # (N, C, 1, 1)
    return b.node("Flatten", [y], "global_avgpool", axis=1)


register(OpDef("global_avgpool", 1, _global_shape, lambda x: x.mean(axis=(1, 2)),
               _global_avgpool_vjp, _emit_global_avgpool,
               lambda rng: ([f32(rng, 2, 5, 7, 3)], {})))
