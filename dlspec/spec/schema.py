"""The JSON Schema of spec format 1, generated from dlspec's registries.

``schemas/dlspec-1.schema.json`` is this function's output written to disk
(``python -m dlspec.spec.schema``); a test checks the file equals it, so layer
types, activations, initializers, optimizers, losses and metrics cannot drift
from what the code implements. The loader validates against the file itself.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path

from dlspec.data.builtin import DATASETS
from dlspec.data.sources import FORMATS
from dlspec.engine.losses import LOSSES
from dlspec.engine.metrics import METRICS
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.graph.layers import LAYERS
from dlspec.opsets import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET
from dlspec.spec.schema_model import model_schema
from dlspec.spec.schema_parts import SHA_EXAMPLE as _SHA_EXAMPLE
from dlspec.spec.schema_parts import columns as _columns
from dlspec.spec.schema_parts import d as _d
from dlspec.spec.schema_parts import one_key as _one_key
from dlspec.spec.schema_parts import params_object as _params_object
from dlspec.spec.schema_train import program_keys

FORMAT_VERSION = 1
SCHEMA_FILE = f"dlspec-{FORMAT_VERSION}.schema.json"
SCHEMA_ID = f"https://dlspec.dev/schemas/{SCHEMA_FILE}"
def _layer_schema(layer, named: bool = True) -> dict:
    """A layer's parameters: in model.layers with its ``name``; in model.nodes the node's
    key is its name."""
    params = layer.params if named else {k: v for k, v in layer.params.items() if k != "name"}
    obj = _params_object(params, layer.required)
    branches = [obj]
    if layer.shorthand:
        branches.insert(0, layer.params[layer.shorthand])
    if not layer.required:
        branches.append({"type": "null"})
    body = branches[0] if len(branches) == 1 else {"oneOf": branches}
    hint = f" A bare value sets `{layer.shorthand}`." if layer.shorthand else ""
    example = {k: layer.params[k]["examples"][0] for k in layer.required}
    return _d(body, layer.description + "." + hint, example)


def _preprocess_schema() -> dict:
    cols = _columns("raw columns this step applies to", ["Geography"])
    onehot = {"oneOf": [cols, _params_object({
        "columns": cols,
        "drop_first": _d({"type": "boolean", "default": False},
                         "drop the first category's column (avoids the dummy-variable trap)",
                         True)}, ["columns"])]}
    label = {"oneOf": [cols, _params_object({"columns": cols}, ["columns"])]}
    which = {"oneOf": [_d({"type": "string", "enum": ["all", "numeric"]},
                          "'all': every feature after encoding; 'numeric': features from"
                          " numeric columns", "all"), cols]}
    standardize = {"oneOf": [which["oneOf"][0], cols,
                             _params_object({"columns": _d(which, "'all', 'numeric' or a list"
                                                           " of raw columns", "all")},
                                            ["columns"])]}
    per_channel = {"oneOf": [{"type": "number"}, {"type": "array", "minItems": 1,
                                                  "maxItems": 4, "items": {"type": "number"}}]}
    normalize = {"oneOf": [_d({"type": "string", "enum": ["auto"]}, "fit mean and std per "
                              "channel on the training images", "auto"),
                           _params_object({
                               "mean": _d({**per_channel}, "per-channel mean (or one for all"
                                          " channels), after scaling", 0.1307),
                               "std": _d({**per_channel}, "per-channel standard deviation, "
                                         "after scaling", 0.3081)}, ["mean", "std"])]}
    return _one_key({
        "scale": _d({"type": "number", "exclusiveMinimum": 0, "maximum": 1e9},
                    "images: divide pixel values by this (255 maps bytes to [0, 1])", 255),
        "normalize": _d(normalize, "images: (x - mean) / std per channel, after scale",
                        {"mean": 0.1307, "std": 0.3081}),
        "onehot": _d(onehot, "one 0/1 feature per category seen in training", ["Geography"]),
        "label_encode": _d(label, "one feature: the category's index in the sorted vocabulary"
                           " (-1 when unseen)", ["Gender"]),
        "standardize": _d(standardize, "(x - mean) / std, fitted on the training split", "all"),
        "minmax": _d({**standardize}, "(x - min) / (max - min), fitted on the training split,"
                     " so training values map onto [0, 1]", "all"),
    }, "preprocessing step")


def _text_schema() -> dict:
    from dlspec.data.text import TOKENIZER_HELP

    return _params_object({
        "lowercase": _d({"type": "boolean", "default": True}, "lowercase the text first "
                        "(Unicode's simple lowercase mapping, one code point at a time, as "
                        "ONNX's StringNormalizer does)", True),
        "tokenizer": _d({"type": "string", "enum": sorted(TOKENIZER_HELP), "default": "words"},
                        "how a message splits into tokens: " + "; ".join(
                            f"{k}: {v}" for k, v in sorted(TOKENIZER_HELP.items())), "words"),
        "max_length": _d({"type": "integer", "minimum": 1, "maximum": 10_000, "default": 50},
                         "tokens per message: longer messages keep their first max_length, "
                         "shorter ones are padded with 0 on the right", 50),
        "vocab": _d(_params_object({
            "max_size": _d({"type": ["integer", "null"], "minimum": 1, "maximum": 10_000_000,
                            "default": None}, "keep at most this many tokens, the most "
                           "frequent (null: every token seen min_count times)", 10000),
            "min_count": _d({"type": "integer", "minimum": 1, "maximum": 1_000_000,
                             "default": 1}, "keep only tokens seen at least this many times "
                            "in the training split", 2),
        }), "the vocabulary, fitted on the training split", {"max_size": 10000,
                                                              "min_count": 2}),
    })


def build_schema() -> dict:
    """The schema as a dict, from the registries."""
    optimizer_entries = {
        name: _d({"oneOf": [{"type": "null"}, _params_object(o.params)]}, o.description,
                 {"lr": o.params["lr"]["default"]})
        for name, o in sorted(OPTIMIZERS.items())}
    layer_entries = {name: _layer_schema(layer) for name, layer in sorted(LAYERS.items())}
    metric_names = sorted(METRICS)
    source = _d({"type": "string", "minLength": 1, "maxLength": 4096},
                "a CSV file with a header row (other delimited text: see `format`), IDX"
                " images (with `labels`), an .npz (arrays x"
                " and y: images, or windows with data.sequence), a folder with one sub-folder"
                " of images per class, or a built-in"
                f" dataset ({', '.join(sorted(DATASETS))}); paths are relative to the spec",
                "../examples/data/breast_cancer.csv")
    labels = _d({"type": "string", "minLength": 1, "maxLength": 4096},
                "IDX sources: the labels file", "train-labels-idx1-ubyte.gz")
    dialect = {
        "delimiter": _d({"type": "string", "minLength": 1, "maxLength": 1, "default": ","},
                        "the field separator: one ASCII character (\"\\t\" for tab-separated "
                        "files)", "\t"),
        "quote": _d({"oneOf": [{"type": "string", "minLength": 1, "maxLength": 1},
                               {"type": "null"}], "default": '"'},
                    "the quote character (a quoted field may hold delimiters, line ends and "
                    "doubled quotes); null: no quoting, every character is data", "'"),
        "header": _d({"type": "boolean", "default": True},
                     "whether the first line names the columns", False),
        "columns": _columns("the column names, in file order: required when header is "
                            "false; with a header, the names it must have (or leave it out)",
                            ["label", "message"]),
    }
    fmt = _d({"oneOf": [
        _d({"type": "string", "enum": list(FORMATS), "default": "auto"},
           "how to read `source` (auto: from the name)", "csv"),
        _d(_params_object(dialect), "a delimited text file other than comma-separated with a"
           " header (spec.lock.yaml writes this as format: csv and data.csv)",
           {"delimiter": "\t", "header": False, "columns": ["label", "message"],
            "quote": None})]}, "how to read `source`: a format's name (auto: from the file"
             " name), or a delimited text file's delimiter, quoting and header", "csv")
    csv_dialect = _d(_params_object(dialect), "how the delimited text `source` is read, as "
                     "spec.lock.yaml writes it (write data.format: {delimiter: ...} instead)",
                     {"delimiter": "\t", "quote": None, "header": False,
                      "columns": ["label", "message"]})
    data = _params_object({
        "source": source,
        "format": fmt,
        "csv": csv_dialect,
        "labels": labels,
        "test": _d(_params_object({"source": source, "format": fmt, "csv": csv_dialect,
                                   "labels": labels},
                                  ["source"]),
                   "a separate held-out test set (built-in datasets use their own test split);"
                   " data.split.test is then not used", {"source": "t10k.npz"}),
        "classes": _d({"type": "array", "minItems": 2, "maxItems": 100_000, "uniqueItems": True,
                       "items": {"oneOf": [{"type": "integer"}, {"type": "string",
                                                                 "minLength": 1}]}},
                      "keep only the examples of these classes (the target's values, or "
                      "image labels): e.g. digits 5 to 9 of MNIST", [5, 6, 7, 8, 9]),
        "subset": _d(_params_object({
            "train": _d({"type": "integer", "minimum": 1}, "use this many training rows "
                        "(seeded random choice)", 5000),
            "test": _d({"type": "integer", "minimum": 1}, "use this many test rows", 1000)}),
            "train on part of the data (quick runs, CI)", {"train": 5000}),
        "augment": _d({"type": "array", "maxItems": 16, "default": [], "items": _one_key({
            "shift": _d({"type": "integer", "minimum": 1, "maximum": 64},
                        "shift images by up to this many pixels in each direction", 2),
            "flip": _d({"type": "string", "enum": ["horizontal", "vertical", "both"]},
                       "mirror images at random", "horizontal"),
            "rotate": _d({"type": "number", "exclusiveMinimum": 0, "maximum": 180},
                         "rotate images by up to this many degrees", 10),
        }, "augmentation")}, "random image transformations of each training batch (seeded;"
            " never applied to validation, test or the exported model)", [{"shift": 2}]),
        "target": _d({"type": "string", "minLength": 1}, "CSV sources: the column to "
                     "predict", "Exited"),
        "sequence": _d(_params_object({
            "window": _d({"type": "integer", "minimum": 1, "maximum": 100_000},
                         "time steps (rows) per example: the model's input is (window, "
                         "features)", 12),
            "horizon": _d({"type": "integer", "minimum": 1, "maximum": 100_000, "default": 1},
                          "CSV: the target is taken this many rows after a window's last row"
                          " (1: the next value)", 1),
        }, ["window"]),
            "time-ordered data cut into sliding windows. A CSV's rows must be in time "
            "order: each example is `window` consecutive rows of the feature columns (by "
            "default every column but the dropped ones, the target's own past included), "
            "oldest first, and its target is the target column `horizon` rows after the last "
            "of them. An .npz source holds the windows already: x (examples, window, "
            "features; the features are named x0, x1, ...) and y, one target per example. "
            "Examples are never shuffled before splitting: data.split.test takes the last "
            "windows (latest targets), data.split.validation the ones just before them, "
            "and training the rest, at the start. standardize and minmax are fitted on the "
            "training period only, the same for every time step; with a regression loss "
            "'all' (or naming it) scales the target too, and predictions, test metrics and "
            "the exported model's output are turned back into the target's units. The "
            "exported model takes raw float32 windows (N, window, features); `dlspec "
            "predict` cuts them from a time-ordered file itself",
            {"window": 12, "horizon": 1}),
        "text": _d({"type": "object", "minProperties": 1, "maxProperties": 1,
                    "propertyNames": {"minLength": 1},
                    "additionalProperties": _text_schema()},
                   "a column of free text, the model's one input (named as the column): "
                   "lowercased, split into tokens, each token looked up in a vocabulary "
                   "fitted on the training split (ids ordered by count, then token; 0 is "
                   "padding, 1 a token outside the vocabulary), cut or right-padded to "
                   "max_length. The exported model takes the raw string and does all of it "
                   "inside (ONNX opset 20 or newer); the run directory keeps the vocabulary "
                   "as vocabulary.txt. Read it with an embedding layer first",
                   {"message": {"tokenizer": "words", "max_length": 50,
                                "vocab": {"min_count": 2}}}),
        "drop": _d({**_columns("", []), "default": []}, "columns that are not features",
                   ["RowNumber", "CustomerId"]),
        "features": _d({"oneOf": [{"type": "null"}, _columns("", [])], "default": None},
                       "the feature columns (default: every column but the target and dropped"
                       " ones; for sequence data the target's past is a feature too)",
                       ["Age", "Balance"]),
        "preprocess": _d({"type": "array", "items": _preprocess_schema(), "default": [],
                          "maxItems": 1000},
                         "steps fitted on the training split and exported inside the model",
                         [{"onehot": ["Geography"]}, {"standardize": "all"}]),
        "split": _d(_params_object({
            "test": _d({"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.2},
                       "fraction of rows held out for the final test (sequence data: the"
                       " last windows)", 0.2),
            "validation": _d({"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                              "default": 0.0},
                             "fraction of rows for validation (early stopping, val_ metrics;"
                             " sequence data: the windows just before the test windows)",
                             0.1),
            "stratify": _d({"type": "boolean", "default": True},
                           "keep class proportions equal across splits (classification; "
                           "sequence data is split in time order, never stratified, and "
                           "defaults to false)", True),
        }), "how rows are split, seeded by the spec's seed (sequence data: in time order, see"
            " data.sequence)", {"test": 0.2, "validation": 0.1},
            default={}),
    }, ["source"])
    model = model_schema(layer_entries, {name: _layer_schema(layer, named=False)
                                          for name, layer in sorted(LAYERS.items())})
    early_stopping = _d({"oneOf": [{"type": "null"}, _params_object({
        "monitor": _d({"type": "string", "default": "val_loss"},
                      "loss or a metric, with val_ for the validation split", "val_loss"),
        "patience": _d({"type": "integer", "minimum": 0, "maximum": 100_000, "default": 5},
                       "epochs without improvement before stopping", 10),
        "min_delta": _d({"type": "number", "minimum": 0, "default": 0.0},
                        "smallest change that counts as an improvement", 0.0),
        "restore_best": _d({"type": "boolean", "default": True},
                           "end with the weights of the best epoch", True),
    })], "default": None}, "stop when the monitored value stops improving (a loss or metric"
        " by name; val_ for the validation split)", {"monitor": "val_loss", "patience": 10})
    param_rules = _d({"type": "array", "maxItems": 1000, "default": [], "items": _params_object({
        "match": _d({"type": "string", "minLength": 1, "maxLength": 256},
                    "a glob over parameter names (node.param: conv1.kernel, conv*.*, "
                    "head.*)", "conv*.*"),
        "frozen": _d({"type": "boolean"}, "true: these parameters never change (no "
                     "optimizer state; batch-norm statistics stop moving too)", True),
        "lr_mult": _d({"type": "number", "minimum": 0, "maximum": 1000},
                      "multiply the learning rate of these parameters (0.1: ten times "
                      "slower)", 0.1),
    }, ["match"])}, "per-parameter training rules, in order (a later rule wins where two"
        " match); a glob that matches no parameter is an error",
        [{"match": "conv*.*", "frozen": True}])
    train = _params_object({
        "loss": _d({"type": "string", "enum": sorted(LOSSES)},
                   "; ".join(f"{k}: {v.description}" for k, v in sorted(LOSSES.items())),
                   "binary_crossentropy"),
        "optimizer": _d({"oneOf": [{"type": "string", "enum": sorted(OPTIMIZERS)},
                                   _one_key(optimizer_entries, "optimizer")],
                         "default": "adam"},
                        "the optimizer, by name or as {name: {parameters}}",
                        {"adam": {"lr": 0.001}}),
        "batch_size": _d({"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 32},
                         "rows per gradient step", 10),
        "epochs": _d({"type": "integer", "minimum": 1, "maximum": 100_000, "default": 10},
                     "passes over the training split", 50),
        "metrics": _d({"type": "array", "uniqueItems": True, "default": [],
                       "items": {"type": "string", "enum": metric_names}},
                      "; ".join(f"{k}: {METRICS[k].description}" for k in metric_names),
                      ["accuracy", "auc"]),
        "early_stopping": early_stopping,
        "shuffle": _d({"type": "boolean", "default": True},
                      "reshuffle the training rows every epoch (seeded)", True),
        "seed": _d({"oneOf": [{"type": "null"}, {"type": "integer", "minimum": 0,
                                                  "maximum": 2**32 - 1}], "default": None},
                   "seed of weights, shuffling and dropout (default: the spec's seed), so the"
                   " split can stay fixed while this varies", 3),
        "params": param_rules,
        "engine": _d({"type": "string", "enum": ["numpy", "torch"], "default": "numpy"},
                     "what trains the model: numpy (dlspec's own engine, the reference) or "
                     "torch (PyTorch, needs the torch extra; dlspec train --workers N runs it "
                     "as N DDP processes; training programs too, RBM phases by the NumPy "
                     "engine's own); both write the same run directory (only numpy writes "
                     "checkpoints)", "torch"),
        "checkpoint": _d(_params_object({
            "every": _d({"type": "integer", "minimum": 1, "maximum": 100_000, "default": 1},
                        "write a checkpoint every this many epochs", 1),
            "every_steps": _d({"type": "integer", "minimum": 0, "maximum": 1 << 40,
                               "default": 0}, "also every this many steps, inside epochs "
                              "(0: only at epochs' ends); for long epochs", 500),
            "keep": _d({"type": "integer", "minimum": 1, "maximum": 1000, "default": 2},
                       "how many of the newest checkpoints to keep", 2),
        }), "checkpoints written while training, from which `dlspec train --resume RUN_DIR`"
            " continues exactly where the run stopped", {"every": 1, "keep": 2},
            default={}),
        **program_keys(optimizer_entries, param_rules, early_stopping),
    })
    _names = {"type": "array", "minItems": 1, "maxItems": 1000, "uniqueItems": True,
              "items": {"type": "string", "minLength": 1, "maxLength": 256}}
    export = _params_object({
        "opset": _d({"type": "integer", "minimum": MIN_OPSET, "maximum": MAX_OPSET,
                     "default": DEFAULT_OPSET}, "ONNX opset of the exported model",
                    DEFAULT_OPSET),
        "outputs": _d(_names, "trim the exported model to these nodes (any named node, or "
                      "CALL.NODE inside a block call; default: model.outputs): it keeps only what "
                      "they need, each parameter once. The head is decoded (probabilities "
                      "and label) only when it is listed; otherwise every output is exported"
                      " undecoded, as float tensors", ["code"]),
        "inputs": _d(_names, "the inputs the exported model takes, in this order (default: "
                     "those the outputs read); every input an output reads must be listed, "
                     "and every listed one read", ["z"]),
    })
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "$defs": {"tensor": {"oneOf": [{"type": "number"}, {
            "type": "array", "maxItems": 4096, "items": {"$ref": "#/$defs/tensor"}}]}},
        "title": f"dlspec spec, format {FORMAT_VERSION}",
        "description": "A neural network, its data and its training, in one file.",
        "type": "object",
        "required": ["dlspec", "name", "model"],
        "additionalProperties": False,
        "properties": {
            "dlspec": _d({"const": FORMAT_VERSION}, "the spec format version", FORMAT_VERSION),
            "name": _d({"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"},
                       "the model's name; runs go to runs/<name>/", "churn"),
            "description": _d({"type": "string", "maxLength": 10_000}, "free text", "..."),
            "seed": _d({"type": "integer", "minimum": 0, "maximum": 2**32 - 1, "default": 0},
                       "seed of the split, and of training unless train.seed is set", 7),
            "data": _d({**data, "type": ["object", "null"]}, "where the rows come from and how "
                       "they are prepared (none, or null: a model whose weights the spec gives)",
                       {"source": "../examples/data/breast_cancer.csv", "target": "diagnosis",
                        "preprocess": [{"standardize": "all"}]}),
            "model": _d(model, "the network",
                        {"layers": [{"dense": {"units": 16, "activation": "relu"}},
                                    {"dense": {"units": 1, "activation": "sigmoid"}}]}),
            "train": _d({**train, "type": ["object", "null"]}, "how the network is trained "
                        "(none, or null: with no data to train on)",
                        {"loss": "binary_crossentropy", "optimizer": "adam", "epochs": 50}),
            "export": _d({**export, "default": {}}, "how the model is exported to ONNX",
                         {"opset": DEFAULT_OPSET, "outputs": ["code"]}),
            "lock": _d(_params_object({
                "data_sha256": _d({"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                  "SHA-256 of the data file the run trained on",
                                  _SHA_EXAMPLE),
                "spec_sha256": _d({"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                  "SHA-256 of the resolved spec",
                                  "d4d861568a65d9028ce7285d74a1b7c926e8dcb783b3022aace81c1868d86d23"),
                "vocabulary_sha256": _d({"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                        "text data: SHA-256 of the vocabulary fitted on the "
                                        "training split (its settings and vocabulary.txt)",
                                        _SHA_EXAMPLE),
                "dlspec_version": _d({"type": "string"}, "dlspec version of the run", "0.1.0"),
            }, ["data_sha256"]), "written by dlspec train into spec.lock.yaml; training from a"
                " lock file refuses data whose SHA-256 differs",
                {"data_sha256": _SHA_EXAMPLE}),
        },
    }


def schema_path() -> Path:
    """The published schema file: inside the installed package, or schemas/ in a checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "_schemas" / SCHEMA_FILE, here.parent / "schemas" / SCHEMA_FILE):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{SCHEMA_FILE} is missing from the installation")


@cache
def load_schema() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))


def render() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":  # python -m dlspec.spec.schema [--write]
    text = render()
    if "--write" in sys.argv[1:]:
        (Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_FILE).write_text(text)
    else:
        sys.stdout.write(text)
