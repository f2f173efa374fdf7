"""Backpropagation on a computational graph, by hand and by dlspec.

    python examples/backprop_by_hand.py

g = (x + y) z (specs/graph_product.yaml). Forward: s = x + y, g = s z. Backward, by the
chain rule from g down: dg/dg = 1; dg/dz = s and dg/ds = z (a product passes each input
the other); the sum passes dg/ds on to both of its inputs unchanged, so dg/dx = dg/dy = z.
dlspec.gradients does the same walk over the spec's graph, op by op.
"""

from __future__ import annotations

from pathlib import Path

import dlspec

SPEC = Path(__file__).resolve().parent.parent / "specs" / "graph_product.yaml"


def by_hand(x: float, y: float, z: float) -> tuple[dict, dict]:
    s = x + y                  # forward
    g = s * z
    dg = 1.0                   # backward, from the output
    dz, ds = dg * s, dg * z
    dx, dy = ds, ds
    return {"s": s, "g": g}, {"x": dx, "y": dy, "z": dz}


def main() -> dict:
    inputs = {"x": 2.0, "y": 3.0, "z": 4.0}
    values, grads = by_hand(**inputs)
    got_values, got_grads = dlspec.gradients(SPEC, inputs, "g")
    for name, v in values.items():
        print(f"{name} = {v:g}  (dlspec: {float(got_values[name]):g})")
        assert float(got_values[name]) == v
    for name, d in grads.items():
        print(f"dg/d{name} = {d:g}  (dlspec: {float(got_grads[name]):g})")
        assert float(got_grads[name]) == d
    return {"values": values, "grads": grads}


if __name__ == "__main__":
    main()
