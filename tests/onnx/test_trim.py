"""export: {inputs, outputs} trims the ONNX model; onnxruntime is the oracle of each export.

Data-less specs with inline weights give values computed here by hand; trained specs are
checked against the engine's values of the exported nodes. Untrimmed exports keep their
bytes (SHA-256s taken before trimming existed).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

import dlspec
from dlspec.cli import app
from dlspec.engine.network import Network
from dlspec.errors import Diagnostics, ExportError
from dlspec.graph.trim import trim
from dlspec.onnx.export import build_model
from dlspec.onnx.parity import contract_of
from dlspec.spec.compile import compile_graph
from dlspec.spec.load import load_spec
from tests.conftest import EXAMPLES, SPECS

runner = CliRunner()


def write(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- untrimmed exports: the same bytes as before export trimming existed -----------------

UNTRIMMED = {  # dlspec 0.1.0 at 0184870, before export.inputs/outputs
    "forward_relu": "566c8833dbb48c786eb75df56531943e960c788a6a22ece9096f835e58d42b8b",
    "forward_two_hidden": "1a8faddbb3fe3c21f51ed69df6d1cdac94f36da15110a70d045556d99cd6da50",
    "graph_product": "74b45b130a703c4e78508d35f0a616091e92ea26276fe80cec41eafa05f2ff6d",
}


@pytest.mark.parametrize("name", sorted(UNTRIMMED))
def test_an_untrimmed_spec_exports_the_same_bytes(tmp_path, name):
    out = tmp_path / f"{name}.onnx"
    dlspec.export_spec(load_spec(SPECS / f"{name}.yaml"), out)
    assert sha(out) == UNTRIMMED[name]


def test_an_untrimmed_trained_model_keeps_its_bytes(tmp_path):
    result = dlspec.train(load_spec(SPECS / "breast_cancer.yaml", ["train.epochs=2"]),
                          run_dir=tmp_path / "run")
    assert sha(result.run_dir / "model.onnx") == \
        "5fd5885ff5dcf0e30cd144de08e4bd09f6a50f0d90cd37ba806937533fdb0510"


def test_listing_the_models_own_outputs_exports_the_untrimmed_graph(tmp_path):
    for name in ("forward_relu", "graph_product"):
        a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
        spec = load_spec(SPECS / f"{name}.yaml")
        dlspec.export_spec(spec, a)
        outputs = ",".join(spec.model.outputs)
        dlspec.export_spec(load_spec(SPECS / f"{name}.yaml", [f"export.outputs=[{outputs}]"]),
                           b)
        ma, mb = onnx.load(a), onnx.load(b)
        for m in (ma, mb):  # the specs differ (export.outputs), so do their hashes
            (h,) = [p for p in m.metadata_props if p.key == "dlspec.spec_sha256"]
            h.value = ""
        assert ma.SerializeToString() == mb.SerializeToString(), name


# -- data-less specs: values by hand -------------------------------------------------------

def test_the_product_graph_exports_its_sum_alone(tmp_path):
    spec = load_spec(SPECS / "graph_product.yaml", ["export.outputs=[s]"])
    out = tmp_path / "s.onnx"
    report = dlspec.export_spec(spec, out)
    assert report["parity"]["max_abs_diff"] == 0.0
    model = onnx.load(out)
    assert [i.name for i in model.graph.input] == ["x", "y"]        # z is not read by s
    assert [o.name for o in model.graph.output] == ["s"]
    assert [n.op_type for n in model.graph.node] == ["Add", "Identity"]
    (s,) = session(out).run(None, {"x": np.array([2, 1], np.float32),
                                   "y": np.array([3, -4], np.float32)})
    np.testing.assert_array_equal(s, [5, -3])
    c = contract_of(model)
    assert (c.task, c.outputs, c.widths, c.decoded) == ("none", ["s"], [1], False)


TWO_OUTPUTS = """\
dlspec: 1
name: two_outputs
model:
  inputs:
    a: {shape: [2]}
    b: {shape: [2]}
  nodes:
    ha:
      dense: {units: 2, activation: relu}
      from: a
      weights: {kernel: [[1, -1], [2, 0.5]], bias: [0.5, 0]}
    hb:
      dense: {units: 1}
      from: b
      weights: {kernel: [[3], [-2]], bias: [1]}
    both: {concat: {}, from: [ha, hb]}
    y:
      dense: {units: 1}
      weights: {kernel: [[1], [1], [1]], bias: [0]}
  outputs: [y, ha]
"""


def test_a_data_less_spec_of_two_outputs_exports_one(tmp_path):
    path = write(tmp_path, TWO_OUTPUTS + "export: {outputs: [ha], inputs: [a]}\n")
    out = tmp_path / "ha.onnx"
    dlspec.export_spec(load_spec(path), out)
    model = onnx.load(out)
    assert [i.name for i in model.graph.input] == ["a"]
    assert [o.name for o in model.graph.output] == ["ha"]
    assert sorted(i.name for i in model.graph.initializer) == ["ha.bias", "ha.kernel"]
    a = np.array([[1, 2], [-3, 1]], np.float32)
    (got,) = session(out).run(None, {"a": a})
    want = np.maximum(a @ np.array([[1, -1], [2, 0.5]], np.float32) + [0.5, 0], 0)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_the_other_output_takes_both_inputs(tmp_path):
    path = write(tmp_path, TWO_OUTPUTS + "export: {outputs: [y]}\n")
    out = tmp_path / "y.onnx"
    dlspec.export_spec(load_spec(path), out)
    model = onnx.load(out)
    assert [i.name for i in model.graph.input] == ["a", "b"]
    assert [o.name for o in model.graph.output] == ["y"]
    a, b = np.array([[1, 2]], np.float32), np.array([[1, 1]], np.float32)
    (got,) = session(out).run(None, {"a": a, "b": b})
    ha = np.maximum(a @ np.array([[1, -1], [2, 0.5]], np.float32) + [0.5, 0], 0)
    np.testing.assert_allclose(got, ha.sum(1, keepdims=True) + (3 - 2 + 1), rtol=1e-6)


def test_listed_inputs_set_the_order_of_the_models_inputs(tmp_path):
    path = write(tmp_path, TWO_OUTPUTS + "export: {outputs: [y], inputs: [b, a]}\n")
    dlspec.export_spec(load_spec(path), tmp_path / "y.onnx")
    assert [i.name for i in onnx.load(tmp_path / "y.onnx").graph.input] == ["b", "a"]


def test_a_trimmed_export_needs_only_the_weights_it_exports(tmp_path):
    text = TWO_OUTPUTS.replace("      weights: {kernel: [[3], [-2]], bias: [1]}\n", "")
    with pytest.raises(Diagnostics, match="'hb' has no weights given"):
        dlspec.export_spec(load_spec(write(tmp_path, text)), tmp_path / "all.onnx")
    path = write(tmp_path, text + "export: {outputs: [ha]}\n", "ha.yaml")
    assert dlspec.export_spec(load_spec(path), tmp_path / "ha.onnx")["parity"]["rows"] == 16


TIED = """\
dlspec: 1
name: tied
model:
  inputs:
    x: {shape: [3]}
  nodes:
    enc:
      dense: {units: 3, activation: tanh}
      from: x
      weights: {kernel: [[0.5, -1, 0], [1, 0.25, -0.5], [0, 2, 1]], bias: [0.1, 0, -0.2]}
    dec: {share: enc, from: enc}
    head:
      dense: {units: 1}
      weights: {kernel: [[1], [2], [3]], bias: [0]}
  outputs: [head]
export: {outputs: [dec]}
"""


def test_tied_weights_stay_one_initializer_per_parameter(tmp_path):
    out = tmp_path / "dec.onnx"
    dlspec.export_spec(load_spec(write(tmp_path, TIED)), out)
    model = onnx.load(out)
    names = [i.name for i in model.graph.initializer]
    assert sorted(names) == ["enc.bias", "enc.kernel"]   # once each; the head trimmed away
    matmuls = [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]
    assert len(matmuls) == 2 and all("enc.kernel" in n.input for n in matmuls)
    k = np.array([[0.5, -1, 0], [1, 0.25, -0.5], [0, 2, 1]], np.float32)
    bias = np.array([0.1, 0, -0.2], np.float32)
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    (got,) = session(out).run(None, {"x": x})
    np.testing.assert_allclose(got, np.tanh(np.tanh(x @ k + bias) @ k + bias), rtol=1e-5)


GAN = """\
dlspec: 1
name: gan_shape
model:
  inputs:
    z: {shape: [2]}
    image: {shape: [3]}
  nodes:
    fake:
      dense: {units: 3, activation: sigmoid}
      from: z
      weights: {kernel: [[1, 0, -1], [0.5, 2, 0]], bias: [0, 0, 0]}
    d_real: {call: disc, from: image}
    d_fake: {call: disc, from: fake}
    both: {concat: {}, from: [d_real, d_fake]}
  outputs: [both]
  blocks:
    disc:
      inputs: [x]
      nodes:
        h:
          dense: {units: 2, activation: relu}
          from: x
          weights: {kernel: [[1, 0], [0, 1], [1, 1]], bias: [0, 0]}
        p:
          dense: {units: 1, activation: sigmoid}
          weights: {kernel: [[1], [-1]], bias: [0]}
"""


@pytest.mark.parametrize("export, inputs, outputs, initializers", [
    ("{inputs: [z], outputs: [fake]}", ["z"], ["fake"], ["fake.bias", "fake.kernel"]),
    ("{inputs: [z], outputs: [d_fake]}", ["z"], ["d_fake"],
     ["disc.h.bias", "disc.h.kernel", "disc.p.bias", "disc.p.kernel", "fake.bias",
      "fake.kernel"]),
    ("{outputs: [d_real, fake]}", ["z", "image"], ["d_real", "fake"],
     ["disc.h.bias", "disc.h.kernel", "disc.p.bias", "disc.p.kernel", "fake.bias",
      "fake.kernel"]),
    ("{outputs: [d_real.h]}", ["image"], ["d_real.h"], ["disc.h.bias", "disc.h.kernel"]),
])
def test_a_gans_parts_export_alone(tmp_path, export, inputs, outputs, initializers):
    out = tmp_path / "part.onnx"
    report = dlspec.export_spec(load_spec(write(tmp_path, GAN + f"export: {export}\n")), out)
    assert report["parity"]["max_abs_diff"] <= 1e-6
    model = onnx.load(out)
    assert [i.name for i in model.graph.input] == inputs
    assert [o.name for o in model.graph.output] == outputs
    assert sorted(i.name for i in model.graph.initializer) == initializers


def test_the_generator_alone_computes_the_generator(tmp_path):
    out = tmp_path / "g.onnx"
    dlspec.export_spec(load_spec(write(tmp_path, GAN + "export: {outputs: [fake]}\n")), out)
    z = np.array([[1, -1], [0, 2]], np.float32)
    (got,) = session(out).run(None, {"z": z})
    k = np.array([[1, 0, -1], [0.5, 2, 0]], np.float32)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(z @ k))), rtol=1e-6)


def test_the_spec_check_and_the_graph_agree_on_what_each_node_reads(tmp_path):
    from dlspec.spec.exportcheck import _reads
    from dlspec.spec.load import load_yaml_file
    from dlspec.spec.normalize import normalize

    path = write(tmp_path, GAN)
    spec = load_spec(path)
    graph = compile_graph(spec, {i.name: i.shape for i in spec.model.inputs}).graph
    canonical, _ = normalize(load_yaml_file(path).data, tmp_path)
    m = canonical["model"]
    reads = _reads(list(m["inputs"]), m["nodes"], m["blocks"])
    for name in ("fake", "d_real", "d_fake", "both"):
        assert set(reads[name]) == set(trim(graph, [name]).inputs), name


def test_build_model_refuses_names_that_do_not_fit_the_graph(tmp_path):
    spec = load_spec(write(tmp_path, GAN))
    graph = compile_graph(spec, {i.name: i.shape for i in spec.model.inputs}).graph
    net = Network(graph)
    net.buffer.initialize(np.random.default_rng(0))
    from dlspec.data.tensor import TensorInput

    inputs = {i.name: TensorInput(i.name, i.shape) for i in spec.model.inputs}
    kw = dict(opset=17, name="g", spec_sha256="0" * 64)
    with pytest.raises(ExportError, match="'nope' is not a node"):
        build_model(net, inputs, None, outputs=["nope"], **kw)
    with pytest.raises(ExportError, match="output 'd_fake' reads input 'z'"):
        build_model(net, inputs, None, outputs=["d_fake"], input_names=["image"], **kw)
    with pytest.raises(ExportError, match="no exported output reads input 'image'"):
        build_model(net, inputs, None, outputs=["fake"], input_names=["z", "image"], **kw)


# -- located mistakes ------------------------------------------------------------------

@pytest.mark.parametrize("export, column, message", [
    ("{outputs: [fak]}", 20, "export.outputs[0]: 'fak' is not a node (did you mean 'fake'?)"),
    ("{outputs: [z]}", 20, "export.outputs[0]: 'z' is an input; export.outputs names nodes"),
    ("{inputs: [zz], outputs: [fake]}", 19, "export.inputs[0]: 'zz' is not an input of the "
     "model (did you mean 'z'?)"),
    ("{inputs: [image], outputs: [d_fake]}", 37, "export.outputs[0]: output 'd_fake' needs "
     "input 'z' (node 'fake' reads it), which export.inputs does not list; add 'z' to "
     "export.inputs, or export another node"),
    ("{inputs: [z, image], outputs: [fake]}", 22, "export.inputs[1]: no exported output "
     "reads input 'image' (export.outputs: fake); remove it from export.inputs"),
    ("{inputs: [z]}", 10, "export.inputs: output 'both' needs input 'image' (node 'd_real' "
     "reads it)"),
])
def test_export_mistakes_are_located_at_the_key_to_change(tmp_path, export, column, message):
    path = write(tmp_path, GAN + f"export: {export}\n")
    line = len(GAN.splitlines()) + 1
    r = runner.invoke(app, ["validate", str(path)])
    assert r.exit_code == 1
    assert f"{path}:{line}:{column}: {message}" in r.output, r.output
    assert "Traceback" not in r.output


def test_export_lists_are_checked_by_the_schema(tmp_path):
    path = write(tmp_path, GAN + "export: {outputs: [fake, fake]}\n")
    with pytest.raises(Diagnostics, match="export.outputs"):
        load_spec(path)
    path = write(tmp_path, GAN + "export: {outputs: []}\n")
    with pytest.raises(Diagnostics, match="export.outputs"):
        load_spec(path)


# -- trained specs -----------------------------------------------------------------------

def test_a_trained_classifier_exports_a_hidden_layer_undecoded(tmp_path):
    spec = load_spec(SPECS / "breast_cancer.yaml", ["train.epochs=2",
                                                     "export.outputs=[dense_2]"])
    result = dlspec.train(spec, run_dir=tmp_path / "run")
    assert result.metrics["export_parity"]["rows"] > 0
    model = onnx.load(result.run_dir / "model.onnx")
    c = contract_of(model)
    assert (c.task, c.outputs, c.widths, c.decoded) == ("none", ["dense_2"], [8], False)
    assert [o.name for o in model.graph.output] == ["dense_2"]
    assert "dense_3.kernel" not in {i.name for i in model.graph.initializer}
    # onnxruntime against the engine's values of that node, on raw rows
    run = dlspec.load_run(result.run_dir)
    from dlspec.data.table import read_csv

    table = read_csv(EXAMPLES / "breast_cancer.csv")
    rows = np.arange(20)
    feeds = c.feeds(table, rows)
    (got,) = session(result.run_dir / "model.onnx").run(None, feeds)
    x = {n: pre.transform(table, rows) for n, pre in run.inputs.items()}
    want = run.net.values(x, ["dense_2"])["dense_2"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # `dlspec export RUN` writes the same model again; predict writes the raw values
    r = runner.invoke(app, ["export", str(result.run_dir), "-o", str(tmp_path / "h.onnx")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "h.onnx").read_bytes() == (result.run_dir / "model.onnx").read_bytes()
    out = tmp_path / "p.csv"
    r = runner.invoke(app, ["predict", str(tmp_path / "h.onnx"),
                            str(EXAMPLES / "breast_cancer.csv"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    lines = out.read_text().splitlines()
    assert lines[0] == ",".join(f"dense_2_{i}" for i in range(8))
    assert len(lines) == 1 + 569
    first = np.array([float(v) for v in lines[1].split(",")], np.float32)
    np.testing.assert_allclose(first, got[0], rtol=1e-6)


def test_a_trained_head_listed_with_a_hidden_layer_stays_decoded(tmp_path):
    spec = load_spec(SPECS / "breast_cancer.yaml", ["train.epochs=2",
                                                     "export.outputs=[dense_1, dense_3]"])
    result = dlspec.train(spec, run_dir=tmp_path / "run")
    c = contract_of(onnx.load(result.run_dir / "model.onnx"))
    assert c.task == "binary" and c.outputs == ["probabilities", "label", "dense_1"]


BLOCKS = f"""\
dlspec: 1
name: blocks
data:
  source: {EXAMPLES / "breast_cancer.csv"}
  target: diagnosis
  preprocess: [{{standardize: all}}]
model:
  inputs:
    left: {{columns: [mean_radius, mean_texture, mean_perimeter, mean_area]}}
    right: {{columns: [worst_radius, worst_texture, worst_perimeter, worst_area]}}
  nodes:
    l: {{call: encoder, from: left}}
    r: {{call: encoder, from: right}}
    both: {{concat: {{}}, from: [l, r]}}
    out: {{dense: {{units: 1, activation: sigmoid}}}}
  blocks:
    encoder:
      inputs: [x]
      nodes:
        h: {{dense: {{units: 6, activation: relu}}, from: x}}
        code: {{dense: {{units: 3, activation: tanh}}}}
train: {{loss: binary_crossentropy, optimizer: {{adam: {{lr: 0.02}}}}, epochs: 2}}
export: {{inputs: [left], outputs: [l]}}
"""


def test_a_trained_encoder_block_exports_with_its_inputs_columns_only(tmp_path):
    result = dlspec.train(write(tmp_path, BLOCKS), run_dir=tmp_path / "run")
    model = onnx.load(result.run_dir / "model.onnx")
    c = contract_of(model)
    assert c.columns == ["mean_radius", "mean_texture", "mean_perimeter", "mean_area"]
    assert (c.outputs, c.widths) == (["l"], [3])
    names = [i.name for i in model.graph.initializer]
    assert [n for n in names if n.startswith("encoder.")] == \
        ["encoder.h.kernel", "encoder.h.bias", "encoder.code.kernel", "encoder.code.bias"]
    assert not any(n.startswith("out.") for n in names)
    assert json.loads(json.dumps(result.metrics["export_parity"]))["max_abs_diff"] < 1e-5


def test_churn_branches_trimmed_to_one_branch(tmp_path, churn_csv):
    spec = load_spec(SPECS / "churn_branches.yaml", [f"data.source={churn_csv}",
                                                      "train.epochs=1",
                                                      "export.outputs=[numeric]"])
    result = dlspec.train(spec, run_dir=tmp_path / "run")
    model = onnx.load(result.run_dir / "model.onnx")
    c = contract_of(model)
    assert c.columns == ["CreditScore", "Age", "Tenure", "Balance", "NumOfProducts",
                         "HasCrCard", "IsActiveMember", "EstimatedSalary"]
    assert (c.task, c.outputs, c.widths) == ("none", ["numeric"], [8])
    assert sorted(i.name for i in model.graph.initializer if "." in i.name) == \
        ["numeric.bias", "numeric.kernel"]
    run = dlspec.load_run(result.run_dir)
    from dlspec.data.table import read_csv

    table = read_csv(churn_csv)
    rows = np.arange(0, 10_000, 97)
    (got,) = session(result.run_dir / "model.onnx").run(None, c.feeds(table, rows))
    want = run.net.values({n: pre.transform(table, rows) for n, pre in run.inputs.items()},
                          ["numeric"])["numeric"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_the_parity_gate_checks_the_trimmed_output_against_the_engine(tmp_path):
    from dlspec.errors import ParityError
    from dlspec.inputs import KINDS
    from dlspec.onnx.parity import check_model_parity

    spec = load_spec(SPECS / "breast_cancer.yaml", ["train.epochs=2",
                                                     "export.outputs=[dense_2]"])
    run = dlspec.load_run(dlspec.train(spec, run_dir=tmp_path / "run").run_dir)
    model = build_model(run.net, run.inputs, run.target, opset=17, name="bc",
                        spec_sha256=spec.sha256, outputs=["dense_2"])
    kind = KINDS[run.kind]
    raw = kind.read_holdout(run.path / kind.holdout)
    args = (model, run.net, run.kind, run.inputs, run.target.task, raw, np.arange(len(raw)))
    assert check_model_parity(*args)["max_abs_diff"] < 1e-5
    run.net.buffer.views[0][...] *= 2  # the engine's first kernel changes, the export's not
    with pytest.raises(ParityError, match="disagree on 'dense_2'"):
        check_model_parity(*args)


def test_the_numpy_backend_predicts_what_the_trimmed_model_does(tmp_path, churn_csv):
    spec = load_spec(SPECS / "churn_branches.yaml", [f"data.source={churn_csv}",
                                                      "train.epochs=1",
                                                      "export.outputs=[categoric]"])
    run_dir = dlspec.train(spec, run_dir=tmp_path / "run").run_dir
    data = tmp_path / "rows.csv"  # only the columns the branch reads
    lines = churn_csv.read_text().splitlines()[:50]
    header = lines[0].split(",")
    keep = [header.index("Geography"), header.index("Gender")]
    data.write_text("\n".join(",".join(line.split(",")[i] for i in keep) for line in lines))
    a, b = tmp_path / "onnx.csv", tmp_path / "numpy.csv"
    dlspec.predict(run_dir / "model.onnx", data, a)
    dlspec.predict(run_dir, data, b, backend="numpy")
    ta, tb = (np.loadtxt(p, delimiter=",", skiprows=1) for p in (a, b))
    assert a.read_text().splitlines()[0] == b.read_text().splitlines()[0] == \
        "categoric_0,categoric_1,categoric_2"
    assert ta.shape == (49, 3)
    np.testing.assert_allclose(ta, tb, rtol=1e-5, atol=1e-6)


def test_a_tensor_input_beside_the_data_is_drawn_for_the_parity_gate(tmp_path):
    """An input no data gives (a GAN's noise is one: a float32 tensor at export) gets the
    same seeded values in both; a part that reads only it exports without the data."""
    from dlspec.data.tensor import TensorInput
    from dlspec.errors import ParityError
    from dlspec.graph.lower import lower_model
    from dlspec.graph.program import InputDef, ModelDef, NodeDef
    from dlspec.inputs import KINDS
    from dlspec.onnx.parity import check_model_parity

    run = dlspec.load_run(dlspec.train(load_spec(SPECS / "breast_cancer.yaml",
                                                 ["train.epochs=1"]),
                                       run_dir=tmp_path / "run").run_dir)
    dense = {"activation": "tanh", "initializer": "glorot_uniform", "bias": True,
             "bias_initializer": "zeros", "trainable": True}
    graph = lower_model(ModelDef(
        (InputDef("features", (30,)), InputDef("z", (2,))),
        (NodeDef("h", "dense", {**dense, "units": 4}, ("features",)),
         NodeDef("g", "dense", {**dense, "units": 3}, ("z",)),
         NodeDef("both", "concat", {"axis": -1}, ("h", "g")),
         NodeDef("out", "dense", {**dense, "units": 1, "activation": "sigmoid"}, ("both",))),
        ("out",)))
    net = Network(graph)
    net.buffer.initialize(np.random.default_rng(0))
    inputs = {"features": run.inputs["features"], "z": TensorInput("z", (2,))}
    kind = KINDS["table"]
    raw = kind.read_holdout(run.path / kind.holdout)
    rows = np.arange(len(raw))
    for outputs, taken in ((None, 31), (["g"], 1), (["out", "g"], 31)):
        model = build_model(net, inputs, run.target, opset=17, name="n", spec_sha256="0" * 64,
                            outputs=outputs)
        assert len(model.graph.input) == taken
        assert check_model_parity(model, net, "table", inputs, "binary", raw,
                                  rows)["max_abs_diff"] < 1e-5
    net.buffer.views[graph.params.index(graph.param("g.kernel"))][...] += 1
    with pytest.raises(ParityError, match="disagree on 'probabilities'"):
        check_model_parity(model, net, "table", inputs, "binary", raw, rows)


def test_inspect_shows_what_the_export_keeps(tmp_path):
    path = write(tmp_path, GAN + "export: {inputs: [z], outputs: [d_fake]}\n")
    r = runner.invoke(app, ["inspect", str(path)])
    assert r.exit_code == 0, r.output
    assert "export: d_fake from z (3 of 6 nodes, 20 of 20 parameters; undecoded)" in r.output
    r = runner.invoke(app, ["inspect", str(path), "--set", "export.outputs=[fake]"])
    assert "export: fake from z (1 of 6 nodes, 9 of 20 parameters; undecoded)" in r.output
    dlspec.export_spec(load_spec(path), tmp_path / "d.onnx")
    r = runner.invoke(app, ["inspect", str(tmp_path / "d.onnx")])
    assert r.exit_code == 0, r.output
    assert "outputs: d_fake (1 value), undecoded float32; task none" in r.output


def test_export_node_picks_another_part_of_a_trained_run(tmp_path):
    run_dir = dlspec.train(write(tmp_path, BLOCKS), run_dir=tmp_path / "run").run_dir
    out = tmp_path / "right.onnx"
    r = runner.invoke(app, ["export", str(run_dir), "--node", "r", "-o", str(out)])
    assert r.exit_code == 0, r.output
    c = contract_of(onnx.load(out))
    assert c.columns == ["worst_radius", "worst_texture", "worst_perimeter", "worst_area"]
    assert (c.outputs, c.widths) == (["r"], [3])
    r = runner.invoke(app, ["export", str(run_dir), "--node", "rr", "-o", str(out)])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "'rr' is not a node of the graph (did you mean 'r'?)" in r.output
    r = runner.invoke(app, ["export", str(run_dir), "--node", "r", "--input", "left",
                            "-o", str(out)])
    assert r.exit_code == 1 and "output 'r' reads input 'right'" in r.output


def test_export_node_on_a_spec_is_checked_like_export_outputs(tmp_path):
    out = tmp_path / "s.onnx"
    r = runner.invoke(app, ["export", str(SPECS / "graph_product.yaml"), "--node", "s",
                            "--input", "y", "--input", "x", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert [i.name for i in onnx.load(out).graph.input] == ["y", "x"]
    r = runner.invoke(app, ["export", str(SPECS / "graph_product.yaml"), "--node", "ss",
                            "-o", str(out)])
    assert r.exit_code == 1
    assert "export.outputs[0]: 'ss' is not a node (did you mean 's'?)" in r.output
