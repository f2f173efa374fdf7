"""What ``predict`` must know of an ONNX file before onnxruntime opens it, read straight from
the protobuf wire format: whether a top-level initializer keeps its data in an external
file (refused: dlspec loads single-file models only), and the parameter count (the
``auto`` device's choice). Importing the onnx package for this costs ~0.4 s of start-up
(its ml_dtypes extension), a sixth of predicting a million rows.

The fields read (onnx.proto): ModelProto.graph = 7; GraphProto.initializer = 5;
TensorProto.dims = 1 (int64, packed or not), TensorProto.data_location = 14 (EXTERNAL = 1).
"""

from __future__ import annotations

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_EXTERNAL = 1


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise WireError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes, pos: int, end: int):
    """(field number, wire type, value) of a message's fields: an int for varints, the
    (start, stop) slice of a length-delimited field, None for fixed-width ones."""
    while pos < end:
        key, pos = _varint(data, pos, end)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise WireError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(data, pos, end)
        elif wire == _LEN:
            size, pos = _varint(data, pos, end)
            value, pos = (pos, pos + size), pos + size
        elif wire in (_I64, _I32):
            value, pos = None, pos + (8 if wire == _I64 else 4)
        else:
            raise WireError(f"wire type {wire}")
        if pos > end:
            raise WireError("truncated field")
        yield field, wire, value


def scan(data: bytes) -> tuple[bool, int]:
    """``(some initializer has external data, parameter count)`` of a serialized ModelProto.

    Raises WireError for bytes that are not a protobuf message.
    """
    external, params = False, 0
    for field, wire, value in _fields(data, 0, len(data)):
        if field != 7 or wire != _LEN:
            continue
        for gfield, gwire, gvalue in _fields(data, *value):
            if gfield != 5 or gwire != _LEN:
                continue
            dims, location = [], 0
            for tfield, twire, tvalue in _fields(data, *gvalue):
                if tfield == 1 and twire == _VARINT:
                    dims.append(tvalue)
                elif tfield == 1 and twire == _LEN:
                    pos, stop = tvalue
                    while pos < stop:
                        dim, pos = _varint(data, pos, stop)
                        dims.append(dim)
                elif tfield == 14 and twire == _VARINT:
                    location = tvalue
            external |= location == _EXTERNAL
            count = 1
            for d in dims:
                count *= d - (1 << 64) if d >= 1 << 63 else d  # int64 in two's complement
            params += count
    return external, params
