"""The JSON Schema of the model section: the sequential layer list, or named inputs,
nodes, outputs and blocks, with weights given inline or from a file, and init_from."""

from __future__ import annotations

from dlspec.spec.schema_parts import SHA_EXAMPLE, columns, d, one_key, params_object

MAX_LAYERS = 10_000


_NAME = r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$"


def _names(description: str, example: list, min_items: int = 1) -> dict:
    return d({"type": "array", "minItems": min_items, "maxItems": MAX_LAYERS,
               "uniqueItems": True, "items": {"type": "string", "pattern": _NAME}},
              description, example)


def _node_schema(node_layers: dict) -> dict:
    name = {"type": "string", "pattern": _NAME}
    tensor = {"oneOf": [{"type": "number"}, {"type": "array", "maxItems": 4096,
                                              "items": {"$ref": "#/$defs/tensor"}}]}
    weights = {"oneOf": [
        params_object({
            "file": d({"type": "string", "minLength": 1, "maxLength": 4096},
                       "an .npz holding one array per parameter (kernel, bias, ...), "
                       "relative to the spec", "weights/h.npz"),
            "sha256": d({"type": "string", "pattern": "^[0-9a-f]{64}$"},
                         "the file's SHA-256 (checked before it is read)", SHA_EXAMPLE)},
            ["file", "sha256"]),
        {"type": "object", "minProperties": 1, "maxProperties": 16,
         "propertyNames": {"pattern": "^[a-z_]{1,32}$", "not": {"enum": ["file", "sha256"]}},
         "additionalProperties": tensor}]}
    return {
        "type": "object", "additionalProperties": False,
        "description": "one node: a layer (written as its single key, as in model.layers), "
                       "share: NODE, or call: BLOCK; with from: the nodes or inputs it reads",
        "properties": {
            **node_layers,
            "from": d({"oneOf": [name, {"type": "array", "minItems": 1, "maxItems": 64,
                                         "items": name}]},
                       "the input(s) or node(s) this node reads (default: the node written "
                       "before it, or the model's only input); several for add, concat and "
                       "multiply", ["c1", "c2"]),
            "share": d(name, "apply this other node's layer with its parameters again (one"
                        " set of parameters; their gradients add up)", "encoder"),
            "call": d(name, "apply this block (model.blocks) with its parameters: every call"
                       " shares them", "discriminator"),
            "weights": d(weights, "the node's parameters given in the spec: arrays by name "
                          "(at most 4,096 values in all), or a file with its SHA-256; their "
                          "shapes are checked against the layer's", {"kernel": [[1, -1]],
                                                                     "bias": [0]}),
        }}


_shape = {"type": "array", "minItems": 1, "maxItems": 8,
          "items": {"type": "integer", "minimum": 1, "maximum": 10**9}}


def model_schema(layer_entries: dict, node_layers: dict) -> dict:
    node = _node_schema(node_layers)
    nodes = d({"type": "object", "minProperties": 1, "maxProperties": MAX_LAYERS,
                "propertyNames": {"pattern": _NAME}, "additionalProperties": node},
               "the nodes, by name, in the order they are written (a node reads the one "
               "written before it unless it says `from`)",
               {"hidden": {"dense": {"units": 8, "activation": "relu"}, "from": "x"},
                "out": {"dense": {"units": 1, "activation": "sigmoid"}}})
    input_entry = params_object({
        "kind": d({"type": "string", "enum": ["table", "image", "sequence", "tensor",
                                               "noise"]},
                   "what the input holds (default: the kind of data.source; tensor: float32 "
                   "arrays of `shape`, with no data section; noise: see `noise`)", "table"),
        "noise": d({"oneOf": [params_object({
            "normal": d(_shape, "one example's shape", [100]),
            "mean": d({"type": "number", "default": 0.0}, "the mean", 0.0),
            "std": d({"type": "number", "exclusiveMinimum": 0, "default": 1.0},
                     "the standard deviation", 1.0)}, ["normal"]),
            params_object({
                "uniform": d(_shape, "one example's shape", [100]),
                "low": d({"type": "number", "default": -1.0}, "the lower bound", -1.0),
                "high": d({"type": "number", "default": 1.0}, "the upper bound", 1.0),
            }, ["uniform"])]},
            "random numbers drawn for every batch from the training seed (a GAN's latent "
            "code); in the exported model an ordinary float32 input of this shape",
            {"normal": [100]}),
        "columns": d({"oneOf": [{"type": "null"}, columns("", [])]},
                      "table inputs: the raw columns this input reads (default, or null: every"
                      " feature column no other input names)", ["Age", "Balance"]),
        "shape": d({"oneOf": [{"type": "null"}, {"type": "array", "maxItems": 8, "items": {
            "type": "integer", "minimum": 1, "maximum": 10**9}}]},
            "one example's shape, without the batch axis (checked against the data where "
            "there is data; needed where there is none)", [28, 28, 1]),
    })
    return params_object({
        "layers": d({"type": "array", "minItems": 1, "maxItems": MAX_LAYERS,
                      "items": one_key(layer_entries, "layer")},
                     "the sequential form: layers in order, from the input to the output (the"
                     " same as model.nodes chained one after another)",
                     [{"dense": {"units": 6, "activation": "relu"}}]),
        "inputs": d({"type": "object", "minProperties": 1, "maxProperties": 64,
                      "propertyNames": {"pattern": _NAME},
                      "additionalProperties": {"oneOf": [{"type": "null"}, input_entry]}},
                     "named inputs (default: one, named by the data's kind: features, image"
                     " or window)", {"numeric": {"columns": ["Age", "Balance"]},
                                     "categorical": {"columns": ["Geography"]}}),
        "nodes": nodes,
        "outputs": _names("the model's outputs (default: the last node); the first is the "
                          "one the loss trains and predictions decode", ["out"]),
        "blocks": d({"type": "object", "maxProperties": 256,
                      "propertyNames": {"pattern": _NAME},
                      "additionalProperties": params_object({
                          "inputs": _names("the block's input names", ["x"]),
                          "nodes": nodes,
                          "outputs": _names("the block's outputs (default: its last node)",
                                            ["out"])}, ["inputs", "nodes"])},
                     "named sub-graphs, applied by nodes with `call:`; every call shares the"
                     " block's parameters (named block.node.param)",
                     {"disc": {"inputs": ["x"], "nodes": {"h": {"dense": 64}}}}),
        "init_from": d({"oneOf": [{"type": "null"}, params_object({
            "run": d({"type": "string", "minLength": 1, "maxLength": 4096},
                      "a run directory (or its latest pointer), relative to the spec",
                      "../runs/mnist_cnn/latest"),
            "rename": d({"type": "object", "maxProperties": 10_000,
                          "additionalProperties": {"type": "string", "pattern": _NAME}},
                         "source name -> name here: a parameter (conv1.kernel) or a node "
                         "(conv1: all its parameters)", {"dense_3": "old_head"}),
            "skip": d({"type": "array", "maxItems": 1000, "items": {
                "type": "string", "minLength": 1}}, "globs of source parameters not to load",
                ["dense_3.*"]),
        }, ["run"])]}, "start from another run's weights, matched strictly by parameter name: "
            "every source parameter is loaded or skipped", {"run": "../runs/base/latest",
                                                            "skip": ["out.*"]}),
    })


