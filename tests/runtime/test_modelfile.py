"""The model-file scan that replaces importing onnx in predict: the same external-data
verdict and parameter count as onnx's own parse, and garbage refused or left to
onnxruntime, never a traceback."""

from __future__ import annotations

import random

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dlspec.runtime.modelfile import WireError, scan


def model(*tensors) -> bytes:
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Identity", [tensors[0].name], ["y"])], "g", [],
                          [out], list(tensors))
    return helper.make_model(g).SerializeToString()


def by_onnx(data: bytes) -> tuple[bool, int]:
    m = onnx.load_from_string(data)
    return (any(t.data_location == TensorProto.EXTERNAL for t in m.graph.initializer),
            sum(int(np.prod(t.dims)) for t in m.graph.initializer))


def test_parameter_count_and_no_external_data():
    data = model(numpy_helper.from_array(np.zeros((3, 4), np.float32), "w"),
                 numpy_helper.from_array(np.zeros(5, np.float32), "b"),
                 numpy_helper.from_array(np.array(2.0, np.float32), "s"))
    assert scan(data) == by_onnx(data) == (False, 18)


def test_external_data_is_seen():
    t = numpy_helper.from_array(np.zeros((3, 4), np.float32), "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    data = model(t)
    assert scan(data) == by_onnx(data) == (True, 12)


def test_packed_dims():
    def field(number: int, payload: bytes) -> bytes:  # a length-delimited field
        return bytes([number << 3 | 2, len(payload)]) + payload

    tensor = field(1, bytes([2, 3, 4])) + field(8, b"w")  # dims packed, then the name
    data = field(7, field(5, tensor))
    assert scan(data) == by_onnx(data) == (False, 24)


def test_garbage_is_a_wire_error_or_a_message():
    rng = random.Random(0)
    for _ in range(500):
        data = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 100)))
        try:
            external, params = scan(data)
        except WireError:
            continue
        assert isinstance(external, bool) and isinstance(params, int)


def test_truncated_model_is_a_wire_error():
    data = model(numpy_helper.from_array(np.zeros((3, 4), np.float32), "w"))
    with pytest.raises(WireError):
        scan(data[:-3] + b"\xff")
