"""Tests for dlspec.spec.load: the example specs, defaults, --set overrides,
the spec hash, and the published schema against the registries."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from dlspec.engine.losses import LOSSES
from dlspec.engine.metrics import METRICS
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.errors import Diagnostics, Location
from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.layers import ACTIVATIONS, LAYERS
from dlspec.ops.rnn_activations import RNN_ACTIVATIONS
from dlspec.opsets import DEFAULT_OPSET
from dlspec.spec import schema as schema_mod
from dlspec.spec.load import load_spec, parse_override, resolve
from dlspec.spec.model import thaw
from dlspec.spec.yamlload import load_yaml

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
CHURN = ROOT / "specs" / "churn.yaml"
BREAST = ROOT / "specs" / "breast_cancer.yaml"
DATA = ROOT / "examples" / "data" / "breast_cancer.csv"


def published() -> dict:
    return json.loads(schema_mod.schema_path().read_text(encoding="utf-8"))


def diagnostics(source, overrides=()) -> list:
    with pytest.raises(Diagnostics) as info:
        load_spec(source, overrides)
    return info.value.items


# --- the example specs ----------------------------------------------------------------


def test_there_are_example_specs():
    assert CHURN in SPECS and BREAST in SPECS


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_example_spec_loads(path: Path):
    spec = load_spec(path)
    assert spec.file == str(path)
    assert spec.model.nodes and (spec.train is None or spec.train.target_loss in LOSSES)
    if spec.data is None:  # a model whose weights the spec gives
        assert all(n.weights for n in spec.model.nodes if n.layer in ("dense", "conv2d"))
    elif spec.data.format == "builtin":  # a dataset's name, not a path
        assert str(spec.data.source) == spec.data.source_text
    else:
        assert spec.data.source == (path.parent / spec.data.source_text).resolve()


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_resolved_spec_validates_against_the_published_schema(path: Path):
    resolved = thaw(load_spec(path).resolved)
    errors = sorted(Draft202012Validator(published()).iter_errors(resolved), key=str)
    assert not errors, "\n".join(e.message for e in errors)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_resolved_spec_resolves_to_itself(path: Path):
    """The canonical form is a fixed point: written out and loaded again, nothing changes."""
    first = load_spec(path)
    text = yaml.safe_dump(thaw(first.resolved), sort_keys=False)
    again = resolve(load_yaml(text, "resolved.yaml"), base=path.parent)
    assert thaw(again.resolved) == thaw(first.resolved)
    assert again.sha256 == first.sha256


def test_churn_defaults_are_filled():
    spec = load_spec(CHURN)
    assert [layer.name for layer in spec.layers] == ["dense_1", "dense_2", "dense_3"]
    for layer in spec.layers:
        assert layer.type == "dense"
        p = layer.params
        assert p["bias"] is True and p["trainable"] is True
        assert p["bias_initializer"] == "zeros" and p["initializer"] == "uniform"
    assert [layer.params["units"] for layer in spec.layers] == [6, 6, 1]
    assert spec.train.optimizer == "adam"
    adam = {k: s["default"] for k, s in OPTIMIZERS["adam"].params.items()}
    assert dict(spec.train.optimizer_params) == adam
    assert adam == {"lr": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    assert spec.train.early_stopping is None and spec.train.shuffle is True
    assert spec.train.seed == spec.seed == 0
    assert spec.data.split.validation == 0.0 and spec.data.split.stratify is False
    assert spec.data.features is None
    assert spec.data.preprocess[0]["onehot"] == {"columns": ["Geography"], "drop_first": True}
    assert spec.data.preprocess[1]["label_encode"] == {"columns": ["Gender"]}
    assert spec.data.preprocess[2]["standardize"] == {"columns": "all"}
    assert spec.opset == 17


def test_breast_cancer_defaults_are_filled():
    spec = load_spec(BREAST)
    assert [(layer.type, layer.name) for layer in spec.layers] == [
        ("dense", "dense_1"), ("dropout", "dropout_1"), ("dense", "dense_2"), ("dense", "dense_3")]
    assert dict(spec.layers[1].params) == {"rate": 0.2}  # a node's name is its key
    assert spec.layers[3].params["initializer"] == "glorot_uniform"
    assert spec.opset == DEFAULT_OPSET  # no export section
    assert spec.resolved["export"] == {"opset": DEFAULT_OPSET}
    assert dict(spec.train.optimizer_params) == {
        "lr": 0.003, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    es = spec.train.early_stopping
    assert (es.monitor, es.patience, es.min_delta, es.restore_best) == ("val_loss", 12, 0.0, True)
    assert spec.train.seed == 42  # train.seed defaults to the spec's seed


# --- --set overrides ------------------------------------------------------------------


def test_override_epochs():
    assert load_spec(CHURN, ["train.epochs=3"]).train.epochs == 3


def test_override_layer_units():
    spec = load_spec(CHURN, ["model.layers[0].dense.units=8"])
    assert spec.layers[0].params["units"] == 8
    assert spec.layers[1].params["units"] == 6


def test_override_optimizer_mapping():
    spec = load_spec(CHURN, ["train.optimizer={sgd: {lr: 0.1, momentum: 0.9}}"])
    assert spec.train.optimizer == "sgd"
    assert dict(spec.train.optimizer_params) == {"lr": 0.1, "momentum": 0.9, "nesterov": False}


def test_overrides_apply_in_order():
    spec = load_spec(CHURN, ["train.epochs=3", "train.epochs=4", "train.batch_size=1"])
    assert (spec.train.epochs, spec.train.batch_size) == (4, 1)


def test_override_values_are_yaml_1_2():
    spec = load_spec(BREAST, ["train.optimizer.adam.lr=1e-3", "train.shuffle=false"])
    assert spec.train.optimizer_params["lr"] == 0.001
    assert spec.train.shuffle is False
    (d,) = diagnostics(CHURN, ["train.shuffle=yes"])
    assert "expected true or false, got a string 'yes'" in d.message


def test_override_with_a_bad_value_is_located_at_the_flag():
    (d,) = diagnostics(CHURN, ["train.epochs=abc"])
    assert d.location == Location("--set train.epochs=abc")
    assert d.path == "train.epochs"
    assert "expected an integer, got a string 'abc'" in d.message
    assert str(d).startswith("--set train.epochs=abc: train.epochs: ")


def test_override_errors_below_the_override_are_located_at_the_flag():
    (d,) = diagnostics(CHURN, ["train.optimizer={sgd: {lr: -1}}"])
    assert d.location == Location("--set train.optimizer={sgd: {lr: -1}}")
    assert d.path == "train.optimizer.sgd.lr" and "must be > 0" in d.message


def test_errors_elsewhere_stay_located_in_the_file(tmp_path):
    """An override does not take over the location of a problem it did not cause."""
    spec = copy_spec(BREAST, tmp_path, lambda t: t.replace("batch_size: 16", "batch_size: 0"))
    items = diagnostics(spec, ["train.epochs=abc", "train.metrics=[accuracy, acuracy]"])
    where = {d.path: d.location for d in items}
    assert where["train.epochs"] == Location("--set train.epochs=abc")
    assert where["train.metrics[1]"] == Location("--set train.metrics=[accuracy, acuracy]")
    line = spec.read_text().splitlines().index("  batch_size: 0") + 1
    assert where["train.batch_size"] == Location(str(spec), line, 15)


def test_override_with_a_bad_path():
    (d,) = diagnostics(CHURN, ["model.layers[9].dense.units=1"])
    assert d.location == Location("--set model.layers[9].dense.units=1")
    assert "'model.layers[9]' does not exist in the spec" in d.message


def test_override_through_a_scalar_is_a_bad_path():
    (d,) = diagnostics(CHURN, ["train.epochs.x=1"])
    assert "does not exist in the spec" in d.message
    # churn writes `optimizer: adam`, so there is no mapping to reach into
    (d,) = diagnostics(CHURN, ["train.optimizer.adam.lr=0.1"])
    assert "'train.optimizer.adam' does not exist in the spec" in d.message


@pytest.mark.parametrize("text", ["train.epochs", "=5", "train..epochs=3", ".train=1",
                                  "train.epochs[x]=1", "train epochs=1", ""])
def test_override_with_bad_syntax(text):
    with pytest.raises(Diagnostics) as info:
        parse_override(text)
    (d,) = info.value.items
    assert d.location == Location(f"--set {text}")
    assert "expected KEY.PATH=VALUE" in d.message and "train.epochs=5" in d.message


def test_override_with_unreadable_yaml_value():
    (d,) = diagnostics(CHURN, ["train.metrics=[accuracy"])
    assert d.location == Location("--set train.metrics=[accuracy")
    assert d.message.startswith("cannot read the value: ")


def test_parse_override():
    assert parse_override("model.layers[0].dense.units=8") == (
        ("model", "layers", 0, "dense", "units"), 8)
    assert parse_override("train.optimizer={adam: {lr: 0.1}}") == (
        ("train", "optimizer"), {"adam": {"lr": 0.1}})
    assert parse_override("train.early_stopping=") == (("train", "early_stopping"), None)
    assert parse_override("name=a=b") == (("name",), "a=b")


# --- the spec's hash ------------------------------------------------------------------


def copy_spec(src: Path, folder: Path, edit=lambda text: text) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / src.name
    out.write_text(edit(src.read_text(encoding="utf-8")), encoding="utf-8")
    return out


def test_sha256_changes_with_an_override():
    base = load_spec(BREAST).sha256
    assert load_spec(BREAST, ["train.epochs=3"]).sha256 != base
    assert load_spec(BREAST, ["train.epochs=100"]).sha256 == base  # the value it had


def test_sha256_ignores_comments_and_layout(tmp_path):
    base = load_spec(BREAST).sha256
    # same text but comments and blank lines (the data path, unchanged, points nowhere here)
    edited = copy_spec(BREAST, tmp_path / "specs", lambda t: "# a new comment\n\n" + t.replace(
        "seed: 42", "seed: 42   # the answer").replace("model:", "\nmodel:  # the network"))
    assert load_spec(edited).sha256 == base


def test_sha256_ignores_where_the_data_lives(tmp_path):
    base = load_spec(BREAST).sha256
    moved_data = tmp_path / "elsewhere" / "bc.csv"
    moved_data.parent.mkdir()
    shutil.copyfile(DATA, moved_data)
    moved = copy_spec(BREAST, tmp_path / "specs",
                      lambda t: t.replace("../examples/data/breast_cancer.csv",
                                          "../elsewhere/bc.csv"))
    spec = load_spec(moved)
    assert spec.data.source == moved_data.resolve()
    assert spec.sha256 == base


def test_sha256_changes_with_content(tmp_path):
    base = load_spec(BREAST).sha256
    edited = copy_spec(BREAST, tmp_path, lambda t: t.replace(
        "../examples/data/breast_cancer.csv", str(DATA)).replace("patience: 12", "patience: 11"))
    assert load_spec(edited).sha256 != base


# --- the published schema against the registries --------------------------------------


def test_schema_file_is_up_to_date():
    on_disk = schema_mod.schema_path().read_text(encoding="utf-8")
    assert on_disk == schema_mod.render(), (
        f"{schema_mod.schema_path()} differs from the registries; "
        "run `python -m dlspec.spec.schema --write` and commit the result")


def test_loader_uses_the_published_file():
    assert schema_mod.load_schema() == published()


def property_schemas(node, name: str) -> list[dict]:
    """Every schema given for a property called ``name``, anywhere in ``node``."""
    found, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            props = n.get("properties")
            if isinstance(props, dict) and isinstance(props.get(name), dict):
                found.append(props[name])
            stack.extend(n.values())
        elif isinstance(n, list):
            stack.extend(n)
    return found


def enum_values(node) -> set:
    """The enum values of ``node`` and its oneOf/anyOf/items branches."""
    out, stack = set(), [node]
    while stack:
        n = stack.pop()
        if isinstance(n, dict):
            out.update(n.get("enum", []))
            stack.extend(n.get("oneOf", []) + n.get("anyOf", []))
            if isinstance(n.get("items"), dict):
                stack.append(n["items"])
    return out


def train_props() -> dict:
    return published()["properties"]["train"]["properties"]


def test_schema_layer_types_match_the_registry():
    layer_item = published()["properties"]["model"]["properties"]["layers"]["items"]
    assert set(layer_item["properties"]) == set(LAYERS)
    for name, layer in LAYERS.items():
        entry = layer_item["properties"][name]
        objects = [b for b in entry.get("oneOf", [entry]) if b.get("type") == "object"]
        assert len(objects) == 1, name
        assert set(objects[0]["properties"]) == set(layer.params), name
        assert set(objects[0].get("required", [])) == set(layer.required), name


def test_schema_activations_match_the_registry():
    found = property_schemas(published(), "activation")
    assert found, "no 'activation' property in the schema"
    # Recurrent layers take the elementwise ones only (ONNX's LSTM/GRU/RNN cannot apply
    # softmax): their own registry, checked against their layers in test_layers_rnn.py.
    for s in found:
        assert enum_values(s) in (set(ACTIVATIONS), set(RNN_ACTIVATIONS))


@pytest.mark.parametrize("prop", ["initializer", "bias_initializer"])
def test_schema_initializers_match_the_registry(prop):
    found = property_schemas(published(), prop)
    assert found, f"no '{prop}' property in the schema"
    for s in found:
        assert enum_values(s) == set(INITIALIZERS)


def test_schema_optimizers_match_the_registry():
    opt = train_props()["optimizer"]
    (by_name,) = [b for b in opt["oneOf"] if b.get("type") == "string"]
    (as_key,) = [b for b in opt["oneOf"] if b.get("type") == "object"]
    assert set(by_name["enum"]) == set(OPTIMIZERS)
    assert set(as_key["properties"]) == set(OPTIMIZERS)
    for name, o in OPTIMIZERS.items():
        (params,) = [b for b in as_key["properties"][name]["oneOf"] if b.get("type") == "object"]
        assert set(params["properties"]) == set(o.params), name
        for key, s in o.params.items():
            assert "default" in s, f"{name}.{key} has no default"


def test_schema_losses_match_the_registry():
    assert set(train_props()["loss"]["enum"]) == set(LOSSES)


def test_schema_metrics_match_the_registry():
    assert enum_values(train_props()["metrics"]) == set(METRICS)


def every_property(node, path="") -> list[tuple[str, object]]:
    out, stack = [], [(node, path)]
    while stack:
        n, p = stack.pop()
        if isinstance(n, dict):
            props = n.get("properties")
            if isinstance(props, dict):
                out.extend((f"{p}/properties/{k}", v) for k, v in props.items())
            stack.extend((v, f"{p}/{k}") for k, v in n.items())
        elif isinstance(n, list):
            stack.extend((v, f"{p}[{i}]") for i, v in enumerate(n))
    return sorted(out, key=lambda pv: pv[0])


PROPERTIES = every_property(published())


def test_schema_has_properties():
    assert len(PROPERTIES) > 50


@pytest.mark.parametrize(
    "path, sub",
    PROPERTIES,
    ids=[p for p, _ in PROPERTIES])
def test_every_schema_property_has_a_description(path, sub):
    assert isinstance(sub, dict) and isinstance(sub.get("description"), str) \
        and sub["description"].strip(), f"{path} has no description"
