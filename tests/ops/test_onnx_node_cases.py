"""ONNX's own backend node tests against dlspec's NumPy kernels.

Every node case whose model is exactly one node of an op type in ``ONNX_TO_DLSPEC``
runs through ``OPS[name].forward`` and is compared with ONNX's expected output at
rtol 1e-3 / atol 1e-5 (docs: RELIABILITY.md, "How it is tested").

Where the cases come from: onnx up to 1.22 ships them on disk under
``onnx/backend/test/data/node/<case>/{model.onnx, test_data_set_*/{input,output}_*.pb}``;
onnx 1.23 removed those files from the wheel (onnx PR #7959) and builds the very same
cases in memory, reached through ``onnx.backend.test.loader.load_model_tests(kind="node")``.
The directory is read when it exists, the in-memory cases otherwise.

A case is skipped only for a reason that is not a kernel difference: an input dtype other
than float32, an opset whose semantics dlspec does not implement, an attribute dlspec does
not model, or shapes its shape rule rejects (the ShapeError message is the reason).
Numeric mismatches fail; a known kernel difference is an xfail(strict=True) in KNOWN_BUGS.

Image ops are channels-first in ONNX and channels-last in dlspec: their mappings carry an
adapter that moves the case's inputs to dlspec's layout (NCHW -> NHWC, [O, C, KH, KW] ->
[KH, KW, C, O]), turns its attributes into the op's (``auto_pad`` into explicit pads) and
maps dlspec's output back to ONNX's layout for the comparison.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from dlspec.errors import ShapeError
from dlspec.ops import OPS
from dlspec.ops.conv import same_pads

RTOL, ATOL = 1e-3, 1e-5
NODE_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"


@dataclass(frozen=True)
class Mapping:
    """How one ONNX op type runs as a dlspec op.

    attrs: ONNX attribute name -> (dlspec keyword, ONNX default when absent).
    min_opset: the first opset whose semantics the dlspec op implements.
    min_run: how many cases must run (not skip), so the collection cannot go empty.
    adapt: instead of ``attrs``, ``(attributes, inputs) -> (inputs, attrs, to_onnx)``: the
        case in dlspec's layout and terms, and a map of dlspec's output to ONNX's layout;
        raises ``Unmodelled`` (the message is the skip reason).
    """

    op: str
    attrs: dict[str, tuple[str, Any]] = field(default_factory=dict)
    min_opset: int = 1
    opset_reason: str = ""
    min_run: int = 1
    adapt: Callable[[dict, list], tuple[list, dict, Callable]] | None = None


class Unmodelled(Exception):
    """A case the dlspec op cannot express; the message says why (the skip reason)."""


def _same(y: np.ndarray) -> np.ndarray:
    return y


def _nhwc(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 3, 1)


def _nchw(y: np.ndarray) -> np.ndarray:
    return y.transpose(0, 3, 1, 2)


def _only(op_type: str, attributes: dict, modelled: set[str]) -> None:
    unknown = sorted(set(attributes) - modelled)
    if unknown:
        raise Unmodelled(f"attribute(s) {unknown} of {op_type} are not modelled by dlspec")


def _image(op_type: str, x: np.ndarray) -> None:
    if x.ndim != 4:
        raise Unmodelled(f"{x.ndim - 2}-D {op_type}: dlspec's image ops are 2-D over "
                         "(N, H, W, C) batches")


def _pads(attributes: dict, hw: tuple, kernel: tuple, strides: tuple, dilations: tuple) -> tuple:
    """ONNX's pads (top, left, bottom, right: dlspec's order too), ``auto_pad`` worked out."""
    auto = attributes.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    if auto == "NOTSET":
        return tuple(int(p) for p in attributes.get("pads", (0, 0, 0, 0)))
    if auto == "VALID":
        return (0, 0, 0, 0)
    (t, b), (left, r) = (same_pads(n, k, s, d, upper=auto == "SAME_UPPER")
                         for n, k, s, d in zip(hw, kernel, strides, dilations, strict=True))
    return (t, left, b, r)


def _conv(attributes: dict, inputs: list) -> tuple:
    _only("Conv", attributes, {"auto_pad", "dilations", "group", "kernel_shape", "pads",
                               "strides"})
    if len(inputs) != 2:
        raise Unmodelled("Conv with a bias input: dlspec adds the bias with its own add op")
    x, w = inputs
    _image("Conv", x)
    strides = tuple(attributes.get("strides", (1, 1)))
    dilations = tuple(attributes.get("dilations", (1, 1)))
    pads = _pads(attributes, x.shape[2:], w.shape[2:], strides, dilations)
    attrs = {"strides": strides, "pads": pads, "dilations": dilations,
             "groups": attributes.get("group", 1)}
    return [_nhwc(x), w.transpose(2, 3, 1, 0)], attrs, _nchw


def _pool(op_type: str, extra: dict[str, str]):
    def adapt(attributes: dict, inputs: list) -> tuple:
        _only(op_type, attributes, {"auto_pad", "ceil_mode", "dilations", "kernel_shape",
                                    "pads", "strides", *extra})
        (x,) = inputs
        _image(op_type, x)
        if attributes.get("ceil_mode", 0):
            raise Unmodelled("ceil_mode=1 (output size rounded up) is not modelled: dlspec's "
                             "pooling rounds down, as Keras and PyTorch do by default")
        if any(d != 1 for d in attributes.get("dilations", (1, 1))):
            raise Unmodelled("dilated pooling is not modelled by dlspec's pooling ops")
        kernel = tuple(attributes["kernel_shape"])
        strides = tuple(attributes.get("strides", (1, 1)))   # ONNX's default: stride 1
        attrs = {"kernel": kernel, "strides": strides,
                 "pads": _pads(attributes, x.shape[2:], kernel, strides, (1, 1))}
        attrs.update({kw: bool(attributes.get(name, 0)) for name, kw in extra.items()})
        return [_nhwc(x)], attrs, _nchw
    return adapt


def _global_avgpool(attributes: dict, inputs: list) -> tuple:
    _only("GlobalAveragePool", attributes, set())
    (x,) = inputs
    _image("GlobalAveragePool", x)
    return [_nhwc(x)], {}, lambda y: y[:, :, None, None]     # (N, C) -> (N, C, 1, 1)


def _flatten(attributes: dict, inputs: list) -> tuple:
    _only("Flatten", attributes, {"axis"})
    (x,) = inputs
    axis = attributes.get("axis", 1)
    if axis % max(x.ndim, 1) != 1 or not -x.ndim <= axis <= x.ndim:
        raise Unmodelled(f"Flatten at axis {axis}: dlspec's flatten keeps the batch axis and "
                         "flattens the rest (axis 1)")
    return [x], {}, _same


def _reshape(attributes: dict, inputs: list) -> tuple:
    _only("Reshape", attributes, set())     # allowzero=1 is not modelled
    x, shape = inputs
    target = [int(d) for d in shape]
    if not target or target[0] not in (0, x.shape[0]):
        raise Unmodelled(f"Reshape {x.shape} -> {target} changes the first (batch) axis; "
                         "dlspec's reshape keeps it")
    if 0 in target[1:]:
        raise Unmodelled(f"Reshape to {target}: 0 (copy the input's size) past the batch axis "
                         "is not modelled")
    return [x], {"shape": tuple(target[1:])}, _same


def _batchnorm(attributes: dict, inputs: list) -> tuple:
    _only("BatchNormalization", attributes, {"epsilon", "momentum", "training_mode"})
    if attributes.get("training_mode", 0):
        raise Unmodelled("training_mode=1 (batch statistics, updated running statistics as "
                         "extra outputs): dlspec's training form is batchnorm_train, which is "
                         "train-only and never exported")
    x, *rest = inputs
    r = x.ndim
    # momentum only moves the running statistics in training mode.
    to_last = x.transpose(0, *range(2, r), 1)
    return ([to_last, *rest], {"epsilon": attributes.get("epsilon", 1e-5)},
            lambda y: y.transpose(0, r - 1, *range(1, r - 1)))


def _gemm(attributes: dict, inputs: list) -> tuple:
    """Gemm, Y = alpha * A' @ B' + beta * C, as dlspec's dense layer computes it: the
    transposes move to the inputs, the matmul op does the product, and the bias
    (dlspec's add, broadcast over the batch) goes on afterwards."""
    from dlspec.ops import OPS

    _only("Gemm", attributes, {"alpha", "beta", "transA", "transB"})
    a, b, *c = inputs
    a = a.T if attributes.get("transA", 0) else a
    b = b.T if attributes.get("transB", 0) else b
    alpha, beta = attributes.get("alpha", 1.0), attributes.get("beta", 1.0)

    def to_onnx(y: np.ndarray) -> np.ndarray:
        y = OPS["mul"].forward(y, np.float32(alpha)) if alpha != 1.0 else y
        if not c:
            return y
        bias = c[0] if beta == 1.0 else OPS["mul"].forward(c[0], np.float32(beta))
        return OPS["add"].forward(y, bias)
    return [a, b], {}, to_onnx


def _sce(attributes: dict, inputs: list) -> tuple:
    """ONNX's softmax cross-entropy as dlspec's cce_logits: mean reduction over (N, K)
    scores and class indices, no weights or ignored index."""
    _only("SoftmaxCrossEntropyLoss", attributes, {"reduction"})
    reduction = attributes.get("reduction", b"mean")
    if reduction != b"mean":
        raise Unmodelled(f"reduction {reduction.decode()!r}: dlspec's losses are the "
                         "batch's mean")
    if len(inputs) != 2 or inputs[0].ndim != 2:
        raise Unmodelled("class weights or scores of more than two axes: dlspec's "
                         "cce_logits takes (N, K) scores and (N,) class indices")
    return list(inputs), {}, _same


def _recurrent(op_type: str, onnx_gates: tuple[int, ...]):
    """ONNX's time-major LSTM/RNN with [1, gates*H, in] weights (ONNX's gate order) as
    dlspec's batch-major op with Keras' (in, gates*H) weights: ``onnx_gates`` lists the
    ONNX gate blocks in Keras' order. A missing B is zeros; ONNX's input and recurrent
    biases always add, so they are one bias here. Y_h [1, N, H] is the output."""
    def adapt(attributes: dict, inputs: list) -> tuple:
        _only(op_type, attributes, {"hidden_size"})
        if len(inputs) > 4:
            raise Unmodelled(f"{op_type} with sequence_lens, an initial state or peepholes: "
                             "dlspec's recurrent layers start from zeros and run every step")
        x, w, r, *b = inputs
        h = attributes["hidden_size"]
        cols = np.concatenate([np.arange(j * h, (j + 1) * h) for j in onnx_gates])
        width = len(cols)
        bias = (b[0][0, :width] + b[0][0, width:])[cols] if b else np.zeros(width, np.float32)
        return ([x.transpose(1, 0, 2), w[0].T[:, cols], r[0].T[:, cols], bias],
                {"units": h}, lambda y: y[None])
    return adapt


_SOFTMAX_OLD = ("Softmax before opset 13 flattens the input to 2-D at `axis` (default 1) and "
                "normalises over all trailing axes; dlspec's softmax is the opset-13 "
                "single-axis form")

ONNX_TO_DLSPEC: dict[str, Mapping] = {
    "Relu": Mapping("relu"),
    "Sigmoid": Mapping("sigmoid", min_run=2),
    "Tanh": Mapping("tanh", min_run=2),
    "Softplus": Mapping("softplus", min_run=2),
    # ONNX's LeakyRelu default alpha is 0.01 (dlspec's own layer default, 0.2, is not ONNX's).
    "LeakyRelu": Mapping("leaky_relu", {"alpha": ("alpha", 0.01)}, min_run=3),
    "Elu": Mapping("elu", {"alpha": ("alpha", 1.0)}, min_run=3),
    "Softmax": Mapping("softmax", {"axis": ("axis", -1)}, min_opset=13,
                       opset_reason=_SOFTMAX_OLD, min_run=5),
    "Add": Mapping("add", min_run=2),
    "Mul": Mapping("mul", min_run=3),
    # dlspec's matmul is (batch, features) @ (features, units): ONNX's 1-D, batched and
    # broadcast MatMul cases are refused by its shape rule and skip with that message.
    "MatMul": Mapping("matmul"),
    "Gemm": Mapping("matmul", adapt=_gemm, min_run=8),
    "Conv": Mapping("conv2d", adapt=_conv, min_run=6),
    "MaxPool": Mapping("maxpool2d", adapt=_pool("MaxPool", {}), min_run=8),
    "AveragePool": Mapping("avgpool2d", min_run=10, adapt=_pool(
        "AveragePool", {"count_include_pad": "count_include_pad"})),
    "GlobalAveragePool": Mapping("global_avgpool", adapt=_global_avgpool, min_run=2),
    "Flatten": Mapping("flatten", adapt=_flatten, min_run=3),
    "Reshape": Mapping("reshape", adapt=_reshape, min_run=4),
    "BatchNormalization": Mapping("batchnorm", adapt=_batchnorm, min_run=2),
    # ONNX LSTM gates i, o, f, c; Keras' i, f, c, o.
    "LSTM": Mapping("lstm", adapt=_recurrent("LSTM", (0, 2, 3, 1)), min_run=2),
    "RNN": Mapping("rnn", adapt=_recurrent("RNN", (0,)), min_run=3),
    # dlspec joins along an axis of one example: the batch axis (0) is refused by the shape
    # rule, so those cases skip with its message.
    "Concat": Mapping("concat", {"axis": ("axis", None)}, min_run=3),
    "SoftmaxCrossEntropyLoss": Mapping("cce_logits", adapt=_sce, min_run=1),
}

# dlspec ops that no ONNX node case exercises, with the reason.
NO_NODE_CASE: dict[str, str] = {
    "stop_gradient": ("exported as Identity (its difference is only in training: no gradient "
                      "flows through it); checked against onnxruntime in "
                      "tests/ops/test_registry.py"),
    "loss_sum": ("a composite of Mul and Add (the weighted sum of several losses); its "
                 "emission is checked against onnxruntime in tests/ops/test_registry.py"),
    "dropout": ("train-only: exported as Identity; ONNX's Dropout cases test either the "
                "inference identity or a seeded training mask dlspec does not reproduce"),
    "batchnorm_train": ("train-only: exported as Identity of its inference form (batchnorm); "
                        "ONNX's training-mode BatchNormalization cases also return updated "
                        "running statistics, which this pure op does not produce"),
    "gru": ("ONNX's GRU node cases all use linear_before_reset=0 (Keras' reset_after=False); "
            "dlspec's gru is Keras' default reset_after=True (ONNX's linear_before_reset=1), "
            "checked against torch.nn.GRU and onnxruntime in tests/ops/test_recurrent.py"),
    "gru_nobias": "the bias-free twin of gru (the same rules, no bias input); see gru",
    "lstm_nobias": ("the bias-free twin of lstm (the same rules, no bias input); ONNX's LSTM "
                    "cases run through lstm, a missing B as zeros"),
    "rnn_nobias": ("the bias-free twin of rnn (the same rules, no bias input); ONNX's RNN "
                   "cases run through rnn, a missing B as zeros"),
    "bce_logits": ("a composite (ONNX has no sigmoid cross-entropy node); its emission is "
                   "checked against onnxruntime in tests/ops/test_registry.py"),
    "mse": ("a composite (ONNX has no squared-error node); its emission is checked against "
            "onnxruntime in tests/ops/test_registry.py"),
    "mae": ("a composite (ONNX has no absolute-error node); its emission is checked against "
            "onnxruntime in tests/ops/test_registry.py"),
}

# Case name -> precise reason, for a real kernel difference that cannot be fixed here.
KNOWN_BUGS: dict[str, str] = {}


@dataclass
class NodeCase:
    name: str
    model: onnx.ModelProto
    onnx_op: str
    opset: int
    attributes: dict[str, Any]
    data_sets: list[tuple[list[Any], list[Any]]]


def _as_array(value: Any) -> np.ndarray | None:
    """An input or output as an ndarray; None for a sequence or optional value."""
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, np.ndarray | np.generic):
        return np.asarray(value)
    return None


def _single_mapped_node(model: onnx.ModelProto) -> onnx.NodeProto | None:
    nodes = model.graph.node
    if len(nodes) != 1 or nodes[0].domain not in ("", "ai.onnx"):
        return None
    return nodes[0] if nodes[0].op_type in ONNX_TO_DLSPEC else None


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _case(name: str, model: onnx.ModelProto, node: onnx.NodeProto, data_sets) -> NodeCase:
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return NodeCase(name, model, node.op_type, _opset(model), attributes,
                    [([_as_array(x) for x in ins], [_as_array(y) for y in outs])
                     for ins, outs in data_sets])


def _read_tensors(set_dir: Path, kind: str) -> list[onnx.TensorProto]:
    files = sorted(set_dir.glob(f"{kind}_*.pb"), key=lambda f: int(f.stem.split("_")[1]))
    return [onnx.load_tensor(str(f)) for f in files]


def _from_directory(root: Path) -> list[NodeCase]:
    cases = []
    for case_dir in sorted(p for p in root.iterdir() if (p / "model.onnx").is_file()):
        model = onnx.load(str(case_dir / "model.onnx"), load_external_data=False)
        node = _single_mapped_node(model)
        if node is None:
            continue
        data_sets = [(_read_tensors(d, "input"), _read_tensors(d, "output"))
                     for d in sorted(case_dir.glob("test_data_set_*"))]
        cases.append(_case(case_dir.name, model, node, data_sets))
    return cases


def _from_memory() -> list[NodeCase]:
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        # onnx's case generators overflow casts etc. on purpose while building other ops' cases.
        warnings.simplefilter("ignore")
        tests = load_model_tests(kind="node")
    cases = []
    for t in tests:
        node = _single_mapped_node(t.model) if t.model is not None else None
        if node is not None:
            cases.append(_case(t.name, t.model, node, t.data_sets))
    return sorted(cases, key=lambda c: c.name)


def _load_cases() -> tuple[str, list[NodeCase]]:
    if NODE_DIR.is_dir() and any(NODE_DIR.iterdir()):
        return str(NODE_DIR), _from_directory(NODE_DIR)
    return "onnx.backend.test.loader.load_model_tests(kind='node')", _from_memory()


SOURCE, CASES = _load_cases()


def _prepare(case: NodeCase, m: Mapping, inputs: list) -> tuple[list, dict, Callable]:
    """One data set's inputs and the op's attributes in dlspec's terms, and the map of its
    output to ONNX's layout. Raises Unmodelled."""
    if m.adapt is not None:
        return m.adapt(case.attributes, list(inputs))
    attrs, reason = _translate(case, m)
    if reason:
        raise Unmodelled(reason)
    return list(inputs), attrs, _same


def _translate(case: NodeCase, m: Mapping) -> tuple[dict[str, Any], str | None]:
    unknown = sorted(set(case.attributes) - set(m.attrs))
    if unknown:
        return {}, f"attribute(s) {unknown} of {case.onnx_op} are not modelled by dlspec.{m.op}"
    attrs = {}
    for onnx_name, (kw, default) in m.attrs.items():
        attrs[kw] = case.attributes.get(onnx_name, default)
    return attrs, None


def _skip_reason(case: NodeCase) -> str | None:
    """Why ``case`` cannot run against dlspec (never a numeric reason); None if it runs."""
    m = ONNX_TO_DLSPEC[case.onnx_op]
    op = OPS[m.op]
    if case.opset < m.min_opset:
        return f"opset {case.opset}: {m.opset_reason}"
    if m.adapt is None:
        _, reason = _translate(case, m)
        if reason:
            return reason
    if not case.data_sets:
        return "the case has no test data set"
    for inputs, outputs in case.data_sets:
        if any(x is None for x in inputs + outputs):
            return "sequence or optional values: dlspec ops take tensors only"
        try:
            inputs, attrs, _ = _prepare(case, m, inputs)
        except Unmodelled as e:
            return str(e)
        if (op.arity is not None and len(inputs) != op.arity) or len(outputs) != 1:
            return (f"{len(inputs)} input(s) and {len(outputs)} output(s); "
                    f"dlspec.{m.op} takes {op.arity} and gives 1")
        data = [x for i, x in enumerate(inputs) if i not in op.no_grad]  # targets: any dtype
        dtypes = sorted({str(x.dtype) for x in data + outputs} - {"float32"})
        if dtypes:
            return f"dlspec computes in float32 (this case uses {', '.join(dtypes)})"
        try:
            op.shape(*(x.shape for x in inputs), **attrs)
        except ShapeError as e:
            return f"dlspec's shape rule refuses it: {e}"
    return None


def _params() -> list:
    params = []
    for case in CASES:
        marks = []
        reason = _skip_reason(case)
        if reason:
            marks.append(pytest.mark.skip(reason=reason))
        elif case.name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[case.name]))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


@pytest.mark.parametrize("case", _params())
def test_node_case_matches_onnx(case: NodeCase) -> None:
    m = ONNX_TO_DLSPEC[case.onnx_op]
    op = OPS[m.op]
    for i, (onnx_inputs, (expected,)) in enumerate(case.data_sets):
        inputs, attrs, to_onnx = _prepare(case, m, onnx_inputs)
        where = f"{case.name} data set {i}: dlspec.{m.op}(**{attrs})"
        kept = [x.copy() for x in inputs]
        y = np.asarray(op.forward(*kept, **attrs))
        for x, x0 in zip(kept, inputs, strict=True):
            np.testing.assert_array_equal(x, x0, err_msg=f"{where} changed its input")
        assert y.dtype == np.float32, f"{where} gives {y.dtype} for float32 inputs"
        y = to_onnx(y)
        assert y.shape == expected.shape, f"{where} gives shape {y.shape}, ONNX {expected.shape}"
        predicted = tuple(op.shape(*(x.shape for x in inputs), **attrs))
        predicted = to_onnx(np.empty(predicted, dtype=np.float32)).shape
        assert predicted == expected.shape, f"{where}: shape rule says {predicted}"
        np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL, err_msg=where)


def test_every_mapped_op_type_runs_enough_cases() -> None:
    assert CASES, f"no single-node case of {sorted(ONNX_TO_DLSPEC)} found in {SOURCE}"
    ran = Counter(c.onnx_op for c in CASES if _skip_reason(c) is None)
    short = {t: f"{ran[t]} < {m.min_run}" for t, m in ONNX_TO_DLSPEC.items() if ran[t] < m.min_run}
    assert not short, f"too few ONNX node cases run from {SOURCE}: {short}"


def test_dlspec_ops_without_an_onnx_node_case_are_listed() -> None:
    stale = {m.op for m in ONNX_TO_DLSPEC.values()} - set(OPS)
    assert not stale, f"ONNX_TO_DLSPEC maps to ops dlspec does not have: {sorted(stale)}"
    assert set(NO_NODE_CASE) <= set(OPS), "NO_NODE_CASE names ops dlspec does not have"
    covered = {ONNX_TO_DLSPEC[c.onnx_op].op for c in CASES if _skip_reason(c) is None}
    uncovered = set(OPS) - covered
    assert uncovered == set(NO_NODE_CASE), (
        f"dlspec ops with no ONNX node case run: {sorted(uncovered)}; listed as such: "
        f"{sorted(NO_NODE_CASE)}. Map a new op in ONNX_TO_DLSPEC, or list it in "
        "NO_NODE_CASE with the reason")


def test_known_bugs_name_real_cases() -> None:
    runnable = {c.name for c in CASES if _skip_reason(c) is None}
    assert set(KNOWN_BUGS) <= runnable, sorted(set(KNOWN_BUGS) - runnable)


def test_directory_layout_reads_the_same_cases(tmp_path: Path) -> None:
    """The on-disk reader (onnx <= 1.22) agrees with the cases in use, written in that layout."""
    for case in CASES:
        case_dir = tmp_path / case.name
        case_dir.mkdir()
        (case_dir / "model.onnx").write_bytes(case.model.SerializeToString())
        for i, (inputs, outputs) in enumerate(case.data_sets):
            set_dir = case_dir / f"test_data_set_{i}"
            set_dir.mkdir()
            for kind, arrays in (("input", inputs), ("output", outputs)):
                for j, x in enumerate(arrays):
                    tensor = numpy_helper.from_array(x)
                    (set_dir / f"{kind}_{j}.pb").write_bytes(tensor.SerializeToString())
    read = _from_directory(tmp_path)
    assert [c.name for c in read] == [c.name for c in CASES]
    for got, want in zip(read, CASES, strict=True):
        assert (got.onnx_op, got.opset, got.attributes) == (want.onnx_op, want.opset,
                                                            want.attributes), got.name
        assert len(got.data_sets) == len(want.data_sets), got.name
        for (gi, go), (wi, wo) in zip(got.data_sets, want.data_sets, strict=True):
            for g, w in zip(gi + go, wi + wo, strict=True):
                assert g.dtype == w.dtype and g.shape == w.shape, got.name
                np.testing.assert_array_equal(g, w, err_msg=got.name)
