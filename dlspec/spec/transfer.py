"""Transfer learning: start from another run's weights, matched strictly by name.

    model:
      init_from: {run: ../runs/digits04/latest, skip: ["head.*"], rename: {dense_1: hidden}}

Every parameter of the source run is either loaded (into the parameter of the same name
here, after ``rename``) or listed in ``skip``; a source parameter with no counterpart, or
one of another shape, is an error naming both shapes and the source's weights file.
Parameters here that nothing loads start from their initializers, as in a fresh run.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlspec.errors import Diagnostics, ModelError, SpecError
from dlspec.spec.diagnose import did_you_mean


@dataclass
class InitPlan:
    """What init_from does: source name -> name here for what it loads, and the rest."""

    source: Path                       # the run directory
    loads: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)    # here, loaded by nothing


def _dims(shape) -> str:
    return "x".join(map(str, shape)) or "a scalar"


def _manifest(run: Path) -> tuple[Path, dict]:
    from dlspec.runs import resolve_run_dir

    run_dir = resolve_run_dir(run)
    path = run_dir / "weights.json"
    try:
        return run_dir, {k: tuple(v["shape"]) for k, v in
                         json.loads(path.read_text())["arrays"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"cannot read the run's weights manifest: {e}", code="run-state") \
            from None


def _renamed(name: str, rename: dict) -> str:
    if name in rename:
        return rename[name]
    node, _, param = name.rpartition(".")
    return f"{rename[node]}.{param}" if node in rename else name


def plan_init(init, params: dict[str, tuple], locate) -> InitPlan:
    """Match the source run's parameters against ``params`` (name -> shape here).

    Raises:
        Diagnostics: a missing run, a source parameter that is neither loaded nor skipped,
            a shape that differs, a skip glob or rename that matches nothing.
    """
    where = ("model", "init_from")

    def err(path: tuple, message: str) -> SpecError:
        from dlspec.spec.diagnose import spec_error

        return spec_error(locate, (*where, *path), message, "semantic-init")

    try:
        run_dir, source = _manifest(init.run)
    except ModelError as e:
        raise Diagnostics([err(("run",), f"{init.run_text}: {e.message}")]) from None
    weights = run_dir / "weights.npz"
    plan, errors = InitPlan(run_dir), []
    rename = dict(init.rename)
    for i, glob in enumerate(init.skip):
        if not any(fnmatch.fnmatchcase(n, glob) for n in source):
            errors.append(err(("skip", i), f"'{glob}' matches no parameter of {weights}"
                              f"{did_you_mean(glob, source)}"))
    for key in rename:
        if key not in source and not any(n.rpartition(".")[0] == key for n in source):
            errors.append(err(("rename", key), f"'{key}' is not a parameter or node of "
                              f"{weights}{did_you_mean(key, source)}"))
    for name, shape in source.items():
        if any(fnmatch.fnmatchcase(name, g) for g in init.skip):
            plan.skipped.append(name)
            continue
        here = _renamed(name, rename)
        if here not in params:
            errors.append(err(("run",), f"{weights} has {name} ({_dims(shape)}), which is "
                              f"not a parameter here{'' if here == name else f' as {here}'}"
                              f"{did_you_mean(here, params)}; load it under another name "
                              "(rename) or skip it"))
        elif tuple(params[here]) != tuple(shape):
            errors.append(err(("run",), f"{name} is {_dims(shape)} in {weights}, but "
                              f"{here} is {_dims(params[here])} here; skip it, or give it the"
                              " same shape"))
        else:
            plan.loads[name] = here
    if errors:
        raise Diagnostics(errors)
    loaded = set(plan.loads.values())
    plan.fresh = [n for n in params if n not in loaded]
    return plan


def load_init(plan: InitPlan) -> dict[str, np.ndarray]:
    """The arrays ``plan`` loads, by their names here (checked against their manifest)."""
    from dlspec.runs import load_arrays

    arrays, _ = load_arrays(plan.source / "weights.npz", plan.source / "weights.json")
    return {here: arrays[name] for name, here in plan.loads.items()}
