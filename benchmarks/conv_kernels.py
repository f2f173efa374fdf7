#!/usr/bin/env python
"""The training plan's two 3x3 convolution kernels on the same layers: im2col + one GEMM
per pooling-window offset (kernels.ConvKernel) vs Winograd F(2x2, 3x3) tiles
(winograd.WinogradConvKernel).

    python benchmarks/conv_kernels.py [--repeats N] [--json OUT.json]

Each layer is conv2d 3x3 stride 1 + bias + relu (+ 2x2 max-pool), fed by a per-channel
scale so the input's gradient is computed too; one forward and one backward pass per
step, the two kernels interleaved in one process. The plan picks Winograd from
winograd.MIN_CHANNELS input channels on: this table is where that number comes from.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlspec.engine import winograd  # noqa: E402
from dlspec.engine.plan import ParamBuffer, Plan  # noqa: E402
from dlspec.graph.ir import GraphBuilder  # noqa: E402

# (H, W, C in, C out, pads (top, left, bottom, right), 2x2 max-pool, batch)
LAYERS = [
    (13, 13, 32, 64, (0, 0, 0, 0), True, 64),    # the benchmark CNN's second layer
    (14, 14, 4, 16, (0, 0, 0, 0), True, 64),
    (14, 14, 8, 16, (0, 0, 0, 0), True, 64),
    (28, 28, 8, 16, (1, 1, 1, 1), False, 32),
    (28, 28, 16, 32, (1, 1, 1, 1), False, 32),
    (16, 16, 64, 64, (1, 1, 1, 1), True, 32),
    (32, 32, 3, 32, (1, 1, 1, 1), False, 32),    # an RGB first layer
]


def _step(layer: tuple, use_winograd: bool):
    h, w, c, o, pads, pool, n = layer
    winograd_min = winograd.MIN_CHANNELS
    winograd.MIN_CHANNELS = 1 if use_winograd else 10**9
    try:
        gb = GraphBuilder()
        gb.begin_layer("conv")
        x = gb.input("x", (None, h, w, c))
        xs = gb.op("mul", x, gb.param("scale", (c,), lambda r, s: np.ones(s, np.float32)))
        y = gb.op("conv2d", xs, gb.param("kernel", (3, 3, c, o), lambda r, s: (
            0.1 * r.standard_normal(s)).astype(np.float32)), strides=(1, 1), pads=pads,
                  dilations=(1, 1), groups=1)
        y = gb.op("add", y, gb.param("bias", (o,), lambda r, s: np.zeros(s, np.float32)))
        y = gb.op("relu", y)
        if pool:
            y = gb.op("maxpool2d", y, kernel=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0))
        gb.graph.output = y
        buf = ParamBuffer(gb.graph)
        buf.initialize(np.random.default_rng(0))
        plan = Plan(gb.graph, buf, seed=y, fuse=True)
    finally:
        winograd.MIN_CHANNELS = winograd_min
    fused = [k for k in plan.kernels if len(k.nodes) > 1]
    assert isinstance(fused[0], winograd.WinogradConvKernel) == use_winograd, fused
    s = plan.new_slots()
    s[plan.input_slots[0]] = np.random.default_rng(1).standard_normal(
        (n, h, w, c)).astype(np.float32)
    plan.forward(s)
    g = np.random.default_rng(2).standard_normal(s[plan.seed_slot].shape).astype(np.float32)

    def step() -> None:
        plan.forward(s)
        plan.backward(s, g)

    return step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20, help="steps per repetition")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    rows = []
    print(f"{'layer (H, W, C -> O, pads, pool, batch)':48s} {'im2col ms':>10s} "
          f"{'winograd ms':>12s} {'im2col/winograd':>16s}")
    for layer in LAYERS:
        steps = {k: _step(layer, k) for k in (False, True)}
        times: dict[bool, list[float]] = {False: [], True: []}
        for k in (False, True):
            for _ in range(3):
                steps[k]()
        for _ in range(args.repeats):
            for k in (False, True):
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    steps[k]()
                times[k].append((time.perf_counter() - t0) / args.steps * 1e3)
        a, b = float(np.median(times[False])), float(np.median(times[True]))
        h, w, c, o, pads, pool, n = layer
        name = f"{h}x{w}, {c} -> {o}, pads {pads}, {'pool 2x2' if pool else 'no pool'}, {n}"
        print(f"{name:48s} {a:10.3f} {b:12.3f} {a / b:15.2f}x")
        rows.append({"layer": name, "im2col_ms": a, "winograd_ms": b, "ratio": a / b,
                     "im2col_all": times[False], "winograd_all": times[True]})
    print(f"The plan uses Winograd from {winograd.MIN_CHANNELS} input channels on.")
    if args.json:
        args.json.write_text(json.dumps({"min_channels": winograd.MIN_CHANNELS,
                                         "layers": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
