"""Forward propagation by hand, then the same network as a dlspec spec.

    python examples/forward_pass.py

The tutorial's first network: inputs (3, 5), two hidden relu nodes, one output. The
hand computation below and dlspec's own forward pass (specs/forward_relu.yaml, every
weight written in the spec) give the same 52, and so does the ONNX model exported from
the spec, run by onnxruntime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import dlspec

SPEC = Path(__file__).resolve().parent.parent / "specs" / "forward_relu.yaml"


def relu(v: float) -> float:
    return max(v, 0.0)


def by_hand(x: list[float]) -> float:
    node_0 = relu(x[0] * 2 + x[1] * 4)       # 3*2 + 5*4 = 26
    node_1 = relu(x[0] * 4 + x[1] * -5)      # 3*4 - 5*5 = -13 -> 0
    return node_0 * 2 + node_1 * 7           # 26*2 + 0*7 = 52


def main() -> dict:
    x = [3.0, 5.0]
    hand = by_hand(x)
    values, _ = dlspec.gradients(SPEC, {"x": x}, "output")
    print(f"by hand: {hand}")
    print(f"dlspec:  hidden {values['hidden'].tolist()}, output {values['output'].tolist()}")
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "forward.onnx"
        dlspec.export_spec(dlspec.load_spec(SPEC), model)
        rows = Path(tmp) / "inputs.csv"
        rows.write_text("x_0,x_1\n3,5\n")
        out = Path(tmp) / "out.csv"
        dlspec.predict(model, rows, out)
        onnx_value = float(out.read_text().splitlines()[1])
    print(f"onnxruntime, on the exported model: {onnx_value}")
    assert hand == float(values["output"][0]) == onnx_value == 52.0
    return {"hand": hand, "dlspec": float(values["output"][0]), "onnx": onnx_value}


if __name__ == "__main__":
    main()
