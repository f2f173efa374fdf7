"""Training written as data, in canonical form: recipes expanded into named losses,
optimizers, the per-batch step and phases, every default filled.

A spec with ``train.loss`` and no ``losses`` is the supervised program: it keeps exactly
the canonical form it always had (nothing is added, so its SHA-256 and lock do not change);
``training_program`` spells it out for the engine. ``train.recipe`` expands here, so the
lock records the explicit form; a lock read back expands to the same keys.
"""

from __future__ import annotations

import copy

from dlspec.engine.optimizers import OPTIMIZERS

RBM_DEFAULTS = {"cd_k": 1, "persistent": False, "visible": "binary", "all_rows": False}
PROGRAM_KEYS = ("losses", "optimizers", "step", "phases")


class RecipeConflict(ValueError):
    """A key the recipe writes is also written, differently, by hand."""

    def __init__(self, key: str, recipe: str) -> None:
        super().__init__(key)
        self.key, self.recipe = key, recipe


def target_loss(t: dict) -> str:
    """The loss whose task encodes the data's target (see TrainSpec.target_loss)."""
    if t.get("loss"):
        return t["loss"]
    for losses in [t.get("losses") or {}, *[p.get("losses") or {} for p in t.get("phases")
                                            or ()]]:
        for e in losses.values():
            if e.get("target") is None:
                return e["loss"]
    return "categorical_crossentropy"


def optimizer_entry(opt) -> dict:
    """``adam`` or ``{adam: {lr: ...}}`` as ``{adam: {every parameter}}``."""
    if isinstance(opt, str):
        name, params = opt, {}
    else:
        (name, params), = opt.items()
    defaults = {k: copy.deepcopy(s["default"]) for k, s in OPTIMIZERS[name].params.items()
                if "default" in s}
    return {name: {**defaults, **(params or {})}}


def _as_list(x) -> list:
    return [x] if isinstance(x, str) else list(x)


def _losses(losses: dict) -> dict:
    return {name: {"loss": e["loss"], "output": e["output"],
                   **({"target": e["target"]} if e.get("target") is not None else {}),
                   "weight": float(e.get("weight", 1.0))}
            for name, e in losses.items()}


def _optimizers(opts: dict, losses: list[str]) -> dict:
    out = {}
    for name, e in opts.items():
        kind = next((k for k in e if k in OPTIMIZERS), "adam")
        out[name] = {**optimizer_entry({kind: e.get(kind)}),
                     "params": _as_list(e.get("params", "*")),
                     "minimize": _as_list(e.get("minimize", losses))}
    return out


def _default_optimizers(t: dict, losses: list[str]) -> dict:
    (name, params), = t["optimizer"].items()
    return {"optimizer": {name: dict(params), "params": ["*"], "minimize": list(losses)}}


def _phase(p: dict, i: int, t: dict) -> dict:
    out = {"name": p.get("name") or f"phase{i + 1}", "epochs": p["epochs"],
           "params": list(p.get("params") or [])}
    if p.get("losses"):
        out["losses"] = _losses(p["losses"])
    losses = list(out.get("losses") or t.get("losses") or {})
    if p.get("optimizers"):
        out["optimizers"] = _optimizers(p["optimizers"], losses)
    if p.get("optimizer") is not None:
        out["optimizer"] = optimizer_entry(p["optimizer"])
    if p.get("step"):
        out["step"] = list(p["step"])
    if p.get("rbm"):
        out["rbm"] = {**RBM_DEFAULTS, **p["rbm"]}
    if p.get("batch_size") is not None:
        out["batch_size"] = p["batch_size"]
    if "early_stopping" in p:
        es = p["early_stopping"]
        out["early_stopping"] = None if es is None else {
            "monitor": "val_loss", "patience": 5, "min_delta": 0.0, "restore_best": True, **es}
    return out


def expand_recipe(t: dict, model: dict) -> dict:
    """The explicit keys ``train.recipe`` stands for (raw form; normalized after)."""
    (kind, r), = t["recipe"].items()
    r = r or {}
    if kind == "supervised":
        return {}
    if kind == "autoencoder":
        inputs = [n for n, e in model["inputs"].items() if e["kind"] != "noise"]
        return {"losses": {"recon": {"loss": r.get("loss", "mse"),
                                     "output": r.get("output") or model["outputs"][0],
                                     "target": r.get("input") or inputs[0]}}}
    if kind == "gan":
        lr, beta = r.get("lr", 0.0002), r.get("beta_1", 0.5)
        real = 1.0 - float(r.get("label_smoothing", 0.0))
        adam = {"adam": {"lr": lr, "beta_1": beta}}
        return {
            "losses": {"d_real": {"loss": "binary_crossentropy", "output": r["real"],
                                  "target": real},
                       "d_fake": {"loss": "binary_crossentropy", "output": r["fake"],
                                  "target": 0.0},
                       "g_loss": {"loss": "binary_crossentropy", "output": r["fake"],
                                  "target": 1.0}},
            "optimizers": {"d": {**adam, "params": r["discriminator"],
                                 "minimize": ["d_real", "d_fake"]},
                           "g": {**copy.deepcopy(adam), "params": r["generator"],
                                 "minimize": ["g_loss"]}},
            "step": ["d"] * int(r.get("d_steps", 1)) + ["g"]}
    if kind == "dbn":
        sgd = {"sgd": {"lr": r.get("lr", 0.05), "momentum": r.get("momentum", 0.5)}}
        phases = [{"name": f"rbm_{layer}", "epochs": r.get("epochs", 5),
                   "batch_size": r.get("batch_size", 100), "optimizer": sgd,
                   "rbm": {"layer": layer, "cd_k": r.get("cd_k", 1),
                           "all_rows": bool(r.get("unlabeled", True))}}
                  for layer in r["layers"]]
        phases.append({"name": "finetune", "epochs": t["epochs"]})
        return {"phases": phases}
    raise ValueError(f"unknown recipe {kind!r}")


def normalize_program(t: dict, model: dict) -> None:
    """Fill train's program keys in canonical form, in place (a recipe expanded first).

    Raises:
        RecipeConflict: the spec writes a key its recipe writes, differently.
    """
    recipe = t.get("recipe")
    if recipe is not None:
        expanded = expand_recipe(t, model)
        for key, value in expanded.items():
            if key in t:
                mine = copy.deepcopy(t)
                mine.pop("recipe")
                theirs = {**mine, **{key: value}}
                _canonical(mine)
                _canonical(theirs)
                if mine[key] != theirs[key]:
                    raise RecipeConflict(key, next(iter(recipe)))
            t[key] = value
    _canonical(t)


def _canonical(t: dict) -> None:
    if t.get("losses"):
        t["losses"] = _losses(t["losses"])
        t["optimizers"] = _optimizers(t["optimizers"], list(t["losses"])) \
            if t.get("optimizers") else _default_optimizers(t, list(t["losses"]))
        t["step"] = list(t.get("step") or t["optimizers"])
    elif t.get("optimizers") or t.get("step"):
        t["optimizers"] = _optimizers(t.get("optimizers") or {}, [])
        t["step"] = list(t.get("step") or t["optimizers"])
    if t.get("phases"):
        t["phases"] = [_phase(p, i, t) for i, p in enumerate(t["phases"])]
