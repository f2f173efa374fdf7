"""The model section reads model.onnx's IR version, opsets and metadata from the protobuf
wire format itself; onnx's own parser is the oracle."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from dlspec.report.contract import fields, read_model


def _model(opsets, meta) -> bytes:
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                        [None, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    m.ir_version = 8
    helper.set_model_props(m, meta)
    return m.SerializeToString()


@pytest.mark.parametrize(("opsets", "meta"), [
    ([("", 17)], {"dlspec.contract": '{"task": "binary"}', "dlspec.name": "churn"}),
    ([("", 13), ("ai.onnx.ml", 3)], {"k\u00e9y": "v" * 300}),
    ([("", 21)], {}),
])
def test_read_model_agrees_with_onnx(opsets, meta):
    data = _model(opsets, meta)
    m = onnx.load_from_string(data)
    ir, got_opsets, got_meta = read_model(data)
    assert ir == m.ir_version == 8
    assert got_opsets == [(o.domain or "ai.onnx", o.version) for o in m.opset_import]
    assert got_meta == {p.key: p.value for p in m.metadata_props} == meta


@pytest.mark.parametrize("cut", [1, 7, -3])
def test_a_damaged_model_is_a_value_error(cut):
    data = _model([("", 17)], {"a": "b"})
    with pytest.raises(ValueError):
        fields(data[:cut] + b"\xff" if cut == 1 else data[:cut])
