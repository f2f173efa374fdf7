"""The JSON Schema of training written as data: named losses, optimizers, the per-batch
step, phases (with RBM pretraining) and the recipes that expand into them."""

from __future__ import annotations

from dlspec.engine.losses import LOSSES
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.spec.schema_parts import d, params_object

_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


def _names(description: str, example) -> dict:
    one = {"type": "string", "minLength": 1, "maxLength": 256}
    return d({"oneOf": [one, {"type": "array", "minItems": 1, "maxItems": 256,
                              "items": one}]}, description, example)


def _optimizer_keys(optimizer_entries: dict) -> dict:
    """An optimizer written by its one name key beside other keys ({adam: {lr}, params})."""
    return dict(optimizer_entries)


def losses_schema() -> dict:
    loss = params_object({
        "loss": d({"type": "string", "enum": sorted(LOSSES)}, "which loss",
                  "binary_crossentropy"),
        "output": d({"type": "string", "minLength": 1, "maxLength": 256},
                    "the node (or input) the loss reads; a cross-entropy reads the logits "
                    "of its final sigmoid or softmax", "d_fake"),
        "target": d({"oneOf": [{"type": "number"},
                               {"type": "string", "minLength": 1, "maxLength": 256}]},
                    "what the output is compared with: a number (a GAN's 1 or 0), the name "
                    "of an input or node (an autoencoder's own input; no gradient flows "
                    "into it), or left out: the data's target", 1),
        "weight": d({"type": "number", "exclusiveMinimum": 0, "maximum": 1e6,
                     "default": 1.0}, "its factor where an optimizer minimises a sum", 1.0),
    }, ["loss", "output"])
    return d({"type": "object", "minProperties": 1, "maxProperties": 64,
              "propertyNames": {"pattern": _NAME}, "additionalProperties": loss},
             "named losses over graph nodes (instead of `loss`, which means one loss on the "
             "first output against the data's target)",
             {"recon": {"loss": "mse", "output": "decoded", "target": "image"}})


def optimizers_schema(optimizer_entries: dict) -> dict:
    entry = params_object({
        **_optimizer_keys(optimizer_entries),
        "params": _names("globs over parameter names this optimizer trains (default: "
                         "every trainable parameter)", "disc.*"),
        "minimize": _names("the loss (or losses, summed with their weights) it minimises "
                           "(default: every loss)", ["d_real", "d_fake"]),
    })
    return d({"type": "object", "minProperties": 1, "maxProperties": 16,
              "propertyNames": {"pattern": _NAME}, "additionalProperties": entry},
             "named optimizers, each written as {<optimizer>: {its parameters}, params: "
             "glob, minimize: loss}; every trainable parameter belongs to exactly one",
             {"d": {"adam": {"lr": 0.0002, "beta_1": 0.5}, "params": "disc.*",
                    "minimize": ["d_real", "d_fake"]},
              "g": {"adam": {"lr": 0.0002, "beta_1": 0.5}, "params": "gen.*",
                    "minimize": "g"}})


def _step() -> dict:
    return d({"type": "array", "minItems": 1, "maxItems": 64,
              "items": {"type": "string", "pattern": _NAME}},
             "per batch, the optimizers that step, in order (default: each once, in the "
             "order written); [d, d, g] gives the discriminator two steps", ["d", "g"])


def _rbm() -> dict:
    return d(params_object({
        "layer": d({"type": "string", "minLength": 1, "maxLength": 256},
                   "the dense node (sigmoid activation) pretrained as an RBM on the data as "
                   "the nodes before it transform it", "h1"),
        "cd_k": d({"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
                  "Gibbs steps of contrastive divergence", 1),
        "persistent": d({"type": "boolean", "default": False},
                        "persistent contrastive divergence (chains kept across batches)",
                        False),
        "visible": d({"type": "string", "enum": ["binary", "gaussian"],
                      "default": "binary"},
                     "binary visible units (data in [0, 1]) or gaussian ones (standardized"
                     " data, unit variance)", "binary"),
        "all_rows": d({"type": "boolean", "default": False},
                      "pretrain on every training row, labelled or not (where "
                      "data.subset.train keeps fewer for the supervised phases)", True),
    }, ["layer"]), "pretrain a dense node as a restricted Boltzmann machine (its kernel and "
        "bias, plus a visible bias used only in training); the phase's optimizer applies the "
        "contrastive-divergence updates", {"layer": "h1", "cd_k": 1})


def phases_schema(optimizer_entries: dict, param_rules: dict,
                  early_stopping: dict) -> dict:
    optimizer = d({"oneOf": [{"type": "string", "enum": sorted(OPTIMIZERS)},
                             {"type": "object", "minProperties": 1, "maxProperties": 1,
                              "properties": optimizer_entries,
                              "additionalProperties": False}]},
                  "the phase's optimizer where it has one (an rbm phase, or the supervised "
                  "loss); default: train.optimizer", {"sgd": {"lr": 0.1, "momentum": 0.5}})
    phase = params_object({
        "name": d({"type": "string", "pattern": _NAME}, "shown in progress and history",
                  "pretrain_h1"),
        "epochs": d({"type": "integer", "minimum": 1, "maximum": 100_000},
                    "passes over the training split in this phase", 10),
        "losses": losses_schema(),
        "optimizers": optimizers_schema(optimizer_entries),
        "optimizer": optimizer,
        "step": _step(),
        "params": param_rules,
        "rbm": _rbm(),
        "batch_size": d({"type": "integer", "minimum": 1, "maximum": 1_000_000},
                        "rows per step in this phase (default: train.batch_size)", 100),
        "early_stopping": early_stopping,
    }, ["epochs"])
    return d({"type": "array", "minItems": 1, "maxItems": 64, "items": phase},
             "training in phases, one after another, each with its own epochs and (or "
             "inheriting train's) losses, optimizers and step, freezing or unfreezing by "
             "glob, or pretraining a layer as an RBM; train.epochs is then unused",
             [{"name": "rbm1", "epochs": 5, "rbm": {"layer": "h1"}},
              {"name": "finetune", "epochs": 20}])


def recipe_schema() -> dict:
    lr = {"type": "number", "exclusiveMinimum": 0, "maximum": 10}
    recipes = {
        "supervised": d({"type": "null"}, "one loss on the first output against the data's "
                        "target (what `loss` means)", None, examples=[None]),
        "autoencoder": d(params_object({
            "output": d({"type": "string"}, "the reconstruction node (default: the first "
                        "output)", "decoded"),
            "input": d({"type": "string"}, "the input it reconstructs (default: the only "
                       "data input)", "image"),
            "loss": d({"type": "string", "enum": ["mse", "mae", "binary_crossentropy"],
                       "default": "mse"}, "the reconstruction loss", "mse"),
        }), "minimise the reconstruction error of the output against its own input", {}),
        "gan": d(params_object({
            "generator": _names("globs over the generator's parameters", "gen.*"),
            "discriminator": _names("globs over the discriminator's parameters", "disc.*"),
            "real": d({"type": "string"}, "the discriminator's node on real data "
                      "(sigmoid output)", "d_real"),
            "fake": d({"type": "string"}, "the discriminator's node on generated data",
                      "d_fake"),
            "d_steps": d({"type": "integer", "minimum": 1, "maximum": 16, "default": 1},
                         "discriminator steps per generator step", 1),
            "lr": d({**lr, "default": 0.0002}, "Adam's learning rate for both", 0.0002),
            "beta_1": d({"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                         "default": 0.5}, "Adam's beta_1 for both (0.5, as DCGAN)", 0.5),
            "label_smoothing": d({"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                                  "default": 0.0},
                                 "the real target becomes 1 - this (one-sided smoothing)",
                                 0.1),
        }, ["generator", "discriminator", "real", "fake"]),
            "a generative adversarial network with the non-saturating loss: the "
            "discriminator learns real -> 1, fake -> 0; the generator learns fake -> 1",
            {"generator": "gen.*", "discriminator": "disc.*", "real": "d_real",
             "fake": "d_fake"}),
        "dbn": d(params_object({
            "layers": d({"type": "array", "minItems": 1, "maxItems": 16,
                         "items": {"type": "string"}}, "the dense nodes pretrained as RBMs,"
                        " greedily, first to last", ["h1", "h2"]),
            "epochs": d({"type": "integer", "minimum": 1, "maximum": 100_000, "default": 5},
                        "pretraining epochs per layer", 5),
            "cd_k": d({"type": "integer", "minimum": 1, "maximum": 1000, "default": 1},
                      "Gibbs steps of contrastive divergence", 1),
            "lr": d({**lr, "default": 0.05}, "SGD learning rate of the pretraining", 0.05),
            "momentum": d({"type": "number", "minimum": 0, "exclusiveMaximum": 1,
                           "default": 0.5}, "SGD momentum of the pretraining", 0.5),
            "batch_size": d({"type": "integer", "minimum": 1, "maximum": 1_000_000,
                             "default": 100}, "rows per pretraining step", 100),
            "unlabeled": d({"type": "boolean", "default": True},
                           "pretrain on every training row, with or without a label "
                           "(data.subset.train then limits the fine-tuning alone)", True),
        }, ["layers"]), "a deep belief net: each layer pretrained as an RBM on the one "
            "before's output, then the whole network fine-tuned with `loss` for "
            "train.epochs", {"layers": ["h1", "h2"], "epochs": 5}),
    }
    return d({"type": "object", "minProperties": 1, "maxProperties": 1,
              "properties": recipes, "additionalProperties": False},
             "a macro that expands into losses, optimizers, step and phases (spec.lock.yaml"
             " and dlspec inspect show the expansion)", {"gan": {
                 "generator": "gen.*", "discriminator": "disc.*", "real": "d_real",
                 "fake": "d_fake"}})


def program_keys(optimizer_entries: dict, param_rules: dict, early_stopping: dict) -> dict:
    """train's keys beyond the supervised ones."""
    return {
        "losses": losses_schema(),
        "optimizers": optimizers_schema(optimizer_entries),
        "step": _step(),
        "phases": phases_schema(optimizer_entries, param_rules, early_stopping),
        "recipe": recipe_schema(),
    }
