"""A trained model loaded back from its run directory: its spec, its network compiled
once with the weights loaded, its inputs' fitted transforms and its target."""

from __future__ import annotations

import json
from pathlib import Path

from dlspec.errors import Location, ModelError
from dlspec.runs import PREPROCESS_FORMAT, load_arrays, resolve_run_dir

__all__ = ["PREPROCESS_FORMAT", "Run", "load_run", "read_preprocess"]


def read_preprocess(run_dir: Path) -> tuple[dict, object]:
    """(fitted transforms by input name, Target) of a run; a run written before named
    inputs (one "preprocessing" state) reads as its one input, named by its kind."""
    from dlspec.data.tensor import TensorInput
    from dlspec.inputs import KINDS, Target
    from dlspec.spec.normalize import DEFAULT_INPUTS

    classes = {**{k.name: k.preprocessor for k in KINDS.values()}, "tensor": TensorInput}
    try:
        state = json.loads((run_dir / "preprocess.json").read_text())
        if "inputs" in state:
            raw = state["inputs"]
        else:
            kind = state["preprocessing"].get("kind", "table")
            raw = {DEFAULT_INPUTS[kind]: state["preprocessing"]}
        inputs = {name: classes[d.get("kind", "table")].from_dict(d) for name, d in raw.items()}
        return inputs, Target.from_dict(state["target"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"invalid preprocess.json: {e}", Location(str(run_dir)),
                         code="run-state") from None


class Run:
    """A trained model loaded back from its run directory: its spec, compiled network
    (weights loaded), fitted inputs and target."""

    def __init__(self, path: Path, spec, net, inputs: dict, target,
                 unfinished: str = "") -> None:
        self.path, self.spec, self.net, self.inputs, self.target = path, spec, net, inputs, target
        self.unfinished = unfinished   # what an unfinished run's weights are, in words

    @property
    def kind(self) -> str:
        """The input kind of the run's data (table, image or sequence)."""
        return next(iter(self.inputs.values())).kind

    @property
    def preprocessor(self):
        """The first input's fitted transform (a model of one input has no other)."""
        return next(iter(self.inputs.values()))


def spec_hash_of_lock(path: Path) -> str | None:
    """The hash a run's weights were recorded under: the lock file's spec as written
    (which is its resolved form)."""
    import yaml

    from dlspec.spec.model import spec_sha256

    try:
        data = yaml.safe_load(path.read_text())
        return spec_sha256(data) if isinstance(data, dict) else None
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return None


def load_run(path: str | Path) -> Run:
    """Load a run directory (or its ``latest`` pointer) back into an engine model.

    Raises:
        ModelError: a missing or inconsistent run directory.
    """
    from dlspec.spec.load import load_spec

    run_dir = resolve_run_dir(path)
    spec = load_spec(run_dir / "spec.lock.yaml", check_data=False)
    inputs, target = read_preprocess(run_dir)
    if not (run_dir / "weights.npz").is_file():
        return _unfinished(run_dir, spec, inputs, target)
    arrays, manifest = load_arrays(run_dir / "weights.npz", run_dir / "weights.json")
    if manifest["spec_sha256"] not in (spec.sha256, spec_hash_of_lock(run_dir /
                                                                      "spec.lock.yaml")):
        raise ModelError(f"weights were trained for spec {manifest['spec_sha256'][:12]}..., "
                         f"but spec.lock.yaml is {spec.sha256[:12]}...", Location(str(run_dir)),
                         code="run-mismatch")
    net = _network(spec, inputs, target)
    names = {p.value.name: p.shape for p in net.graph.params}
    if {k: tuple(v.shape) for k, v in arrays.items()} != names:
        raise ModelError("weights do not match the spec's layers", Location(str(run_dir)),
                         code="run-mismatch")
    net.buffer.load(arrays)
    return Run(run_dir, spec, net, inputs, target)


def _network(spec, inputs: dict, target):
    from dlspec.engine.network import Network
    from dlspec.spec.compile import compile_graph

    shapes = {name: _shape(pre.input_shape) for name, pre in inputs.items()}
    compiled = compile_graph(spec, shapes, classes=target.n_classes,
                             width=_regression_width(spec, target), init=False,
                             limit=1 << 62)
    return Network(compiled.graph)


def _unfinished(run_dir: Path, spec, inputs: dict, target) -> Run:
    """A run that has not finished, with the weights of its newest checkpoint: the best so
    far where early stopping keeps them (and restores them at the end), else the latest."""
    from dlspec.checkpoint import latest_checkpoint, read_checkpoint
    from dlspec.checkpointing import STATUS_FILE, read_json

    path = latest_checkpoint(run_dir)
    manifest, arrays = read_checkpoint(path)
    if manifest.get("spec_sha256") not in (spec.sha256, spec_hash_of_lock(
            run_dir / "spec.lock.yaml")):
        raise ModelError("the checkpoint was written for another spec than spec.lock.yaml",
                         Location(str(path)), code="run-mismatch")
    net = _network(spec, inputs, target)
    es = spec.train.early_stopping if spec.train else None
    best = "best_weights" in arrays and es is not None and es.restore_best
    flat = arrays["best_weights" if best else "flat"]
    if flat.shape != net.buffer.flat.shape:
        raise ModelError("the checkpoint's weights do not match the spec's layers",
                         Location(str(path)), code="run-mismatch")
    net.buffer.flat[...] = flat
    state = manifest.get("state") or {}
    history = state.get("history") or []
    status = read_json(run_dir / STATUS_FILE) or {}
    how = status.get("state", "unfinished")
    if how == "interrupted":
        how = f"interrupted at epoch {status.get('epoch')}"
    monitor = state.get("monitor") or {}
    which = (f"the best weights so far (epoch {monitor.get('best_epoch')})" if best else
             f"the weights after epoch {len(history)}")
    note = f"the run is unfinished ({how}): this is {which}"
    return Run(run_dir, spec, net, inputs, target, note)


def _shape(shape) -> tuple:
    return (shape,) if isinstance(shape, int) else tuple(shape)


def _regression_width(spec, target) -> int:
    """A regression head's width (one per target column; 1 today)."""
    return 1
