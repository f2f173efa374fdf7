"""``dlspec train``: a spec's data loaded, its graph compiled once, trained, checked against
its own export, and written as a run directory."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlspec.checkpoint import folder_of, latest_checkpoint
from dlspec.checkpointing import (
    Checkpoints,
    identity,
    interruptible,
    load_snapshot,
    read_run,
    set_status,
    spec_changes,
    write_run_file,
)
from dlspec.engine.network import Network
from dlspec.engine.state import TrainState
from dlspec.engine.trainer import FitResult, fit
from dlspec.errors import (
    DataError,
    Diagnostics,
    DlspecError,
    Location,
    ModelError,
    RunFinished,
    SpecError,
    TrainingDiverged,
    TrainingInterrupted,
    UsageError,
    path_str,
)
from dlspec.fsio import fsync_dir
from dlspec.graph.resources import DEFAULT_LIMIT
from dlspec.inputs import KINDS, Dataset, load_dataset
from dlspec.program_run import Pictures
from dlspec.run_results import held_rows, results
from dlspec.runs import (
    check_run_dir,
    new_run_id,
    point_latest,
    preprocess_json,
    write_atomic,
)
from dlspec.spec.compile import compile_graph
from dlspec.spec.load import load_spec
from dlspec.spec.model import Spec, thaw
from dlspec.version import __version__


@dataclass
class TrainResult:
    run_dir: Path
    spec: Spec
    fit: FitResult
    metrics: dict        # the content of metrics.json
    note: str = ""       # what runtimes other than onnxruntime may get wrong (see onnx/portability)


def as_spec(spec: Spec | str | Path, overrides: Sequence[str] = ()) -> Spec:
    return spec if isinstance(spec, Spec) else load_spec(spec, overrides)


def _check_lock(spec: Spec, ds: Dataset) -> None:
    if spec.lock and spec.lock["data_sha256"] != ds.sha256:
        raise Diagnostics([SpecError(
            f"the data file changed since this lock was written: its SHA-256 is {ds.sha256}, "
            f"the lock expects {spec.lock['data_sha256']}",
            spec.locate(("lock", "data_sha256"), False), path="lock.data_sha256",
            code="lock-data")])
    want = (spec.lock or {}).get("vocabulary_sha256")
    got = _fitted(ds).get("vocabulary_sha256")
    if want and want != got:
        raise Diagnostics([SpecError(
            f"the vocabulary fitted on this data differs from the lock's: its SHA-256 is "
            f"{got}, the lock expects {want}", spec.locate(("lock", "vocabulary_sha256"), False),
            path="lock.vocabulary_sha256", code="lock-data")])


def _fitted(ds: Dataset) -> dict:
    """Fingerprints of what was fitted on the data and changes the model's input: a text
    input's vocabulary."""
    texts = [pre for pre in ds.inputs.values() if getattr(pre, "kind", "") == "text"]
    return {"vocabulary_sha256": texts[0].encoder.fingerprint()} if texts else {}


def _needs_training(spec: Spec) -> None:
    if spec.train is None or spec.data is None:
        raise Diagnostics([SpecError(
            "this spec has no data and train sections, so there is nothing to train; it can "
            "be exported as it is (dlspec export SPEC -o model.onnx) if it gives its weights",
            spec.locate((), False), code="semantic-sections")])


def compile_network(spec: Spec, ds: Dataset, limit: int = DEFAULT_LIMIT, *, init: bool = True):
    """The spec's graph at the data's shapes (the one lowering of a run) and its network;
    ``init=False`` plans model.init_from only when its run exists."""
    compiled = compile_graph(spec, ds.input_shapes, classes=ds.target.n_classes,
                             width=1, limit=limit, init=init)
    return compiled, Network(compiled.graph)


def lr_scale(net: Network) -> np.ndarray | None:
    """Per trainable element, its learning-rate factor (train.params lr_mult), or None."""
    buf = net.buffer
    if all(p.lr_mult == 1.0 for p in buf.params if p.trainable):
        return None
    scale = np.ones(buf.train_size, dtype=np.float32)
    for p, (start, size) in zip(buf.params, buf.offsets, strict=True):
        if p.trainable:
            scale[start:start + size] = p.lr_mult
    return scale


def train(spec: Spec | str | Path | None = None, overrides: Sequence[str] = (), *,
          run_dir: str | Path | None = None, runs_root: str | Path = "runs",
          on_epoch: Callable[[int, dict], None] | None = None,
          max_memory: int = DEFAULT_LIMIT, resume: str | Path | None = None,
          report: bool = True, workers: int = 1) -> TrainResult | None:
    """Train a spec and write its run directory (checkpoints while it trains; weights,
    metrics, model.onnx at the end).

    Args:
        overrides: the ``--set`` overrides (applied here to a spec path; recorded for
            ``resume`` either way).
        run_dir: write the run exactly here (default ``runs_root/<name>/<run-id>``,
            with ``runs_root/<name>/latest`` pointing at it once it is finished).
        on_epoch: progress callback ``(epoch, logs)``.
        max_memory: refuse to train when a step would need more bytes than this.
        resume: continue this run directory from its newest checkpoint (``spec``: as
            the run started it when None, else checked to be the same).
        report: also write report.html (and a regression's held-out predictions).
        workers: train.engine torch only: DDP over this many local processes. Under an
            external torchrun every rank calls ``train``; only rank 0 writes the run (the
            others return None).

    Raises:
        Diagnostics, DataError: invalid spec or data. TrainingDiverged: non-finite loss.
        TrainingInterrupted: Ctrl-C (after a checkpoint). ModelError: a run that cannot be
        resumed. ExportError: the exported model fails its checks.
    """
    if resume is not None:
        return _resume(resume, spec, overrides, on_epoch, max_memory, report)
    if spec is None:
        raise UsageError("give a spec to train, or a run directory to resume", code="usage")
    spec = as_spec(spec, overrides)
    _needs_training(spec)
    if spec.train.engine != "numpy" or workers != 1:
        from dlspec.torchengine import check

        check(spec, workers)
    target = Path(run_dir) if run_dir is not None else \
        Path(runs_root) / spec.name / new_run_id()
    other = _other_rank(spec)  # under an external torchrun: rank 0 alone writes the run
    if not other:  # (another rank would find rank 0's first files there)
        check_run_dir(target)  # before training, not after
    ds = load_dataset(spec)
    _check_lock(spec, ds)
    compiled, net = compile_network(spec, ds, max_memory)
    if other:
        from dlspec.torchengine.run import train_torch

        init = None if compiled.init is None else _load_init(compiled.init)
        train_torch(spec, ds, net, init, None, workers, max_memory,
                    lambda folder: lock_yaml(spec, ds.sha256, folder, _fitted(ds)),
                    augment=_augment(spec, ds), program=compiled.program)
        return None
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ModelError(f"cannot write here: {e.strerror or e}", Location(str(target)),
                         code="write") from None
    held = held_rows(ds)
    kind = KINDS[ds.kind]
    for name, data in {"spec.lock.yaml": lock_yaml(spec, ds.sha256, target, _fitted(ds)),
                       "preprocess.json": preprocess_json(ds.inputs, ds.target),
                       kind.holdout: kind.write_holdout(ds, held),
                       **(kind.extra_files(ds) if kind.extra_files else {})}.items():
        write_atomic(target / name, data)
    write_run_file(target, spec, overrides, ds.sha256)
    return _train_run(spec, ds, compiled, net, target, None, on_epoch,
                      latest=run_dir is None, report=report, workers=workers,
                      max_memory=max_memory)


def _resume(run: str | Path, spec, overrides: Sequence[str], on_epoch,
            max_memory: int, report: bool = True) -> TrainResult:
    """Continue ``run`` from its newest checkpoint, after checking that the spec, the
    dlspec version, the checkpoint and the data are the run's (in that order: the cheap
    checks first, a damaged checkpoint refused before the data is read)."""
    target, record, status = read_run(run)
    if status.get("state") == "finished":
        raise RunFinished(f"{target}: this run is finished; nothing to resume")
    if spec is None:
        base = record.get("cwd")
        with _cwd(base if isinstance(base, str) and Path(base).is_dir() else None):
            spec = as_spec(record["spec_file"], record["overrides"])
        overrides = record["overrides"]
    else:
        spec = as_spec(spec, overrides)
    if spec.sha256 != record.get("spec_sha256"):
        raise Diagnostics(spec_changes(spec, record))
    if spec.train.engine != "numpy":
        raise ModelError("the torch engine writes no checkpoints: a run it trained cannot be "
                         "resumed; train it again", Location(str(target)), code="resume-engine")
    if record.get("dlspec_version") != __version__:
        raise ModelError(f"the run was started by dlspec {record.get('dlspec_version')}, this "
                         f"is {__version__}: an exact resume needs the same version",
                         Location(str(target)), code="resume-version")
    # the checkpoint before the data: a damaged one is refused at once
    snap = load_snapshot(target, identity(spec, record.get("data_sha256")))
    ds = load_dataset(spec)
    if ds.sha256 != record.get("data_sha256"):
        raise DataError(f"the data changed since the run started: its SHA-256 is now "
                        f"{ds.sha256}, the run was trained on {record.get('data_sha256')}",
                        Location(str(spec.data.source)), code="resume-data")
    compiled, net = compile_network(spec, ds, max_memory)
    return _train_run(spec, ds, compiled, net, target, snap, on_epoch,
                      latest=target.parent.name == spec.name, report=report,
                      max_memory=max_memory)


def _other_rank(spec: Spec) -> bool:
    """A torch engine rank other than 0 under an external launcher (it writes nothing)."""
    from dlspec.torchengine import external_world  # (imports no torch)

    return spec.train.engine == "torch" and external_world() > 1 \
        and int(os.environ.get("RANK", "0") or 0) != 0


def _load_init(plan) -> dict:
    from dlspec.spec.transfer import load_init

    return load_init(plan)


@contextlib.contextmanager
def _cwd(path: str | None):
    """Relative --set paths were relative to where the run started."""
    if path is None:
        yield
        return
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _train_run(spec: Spec, ds: Dataset, compiled, net: Network, target: Path, snap,
               on_epoch, *, latest: bool, report: bool = True, workers: int = 1,
               max_memory: int = DEFAULT_LIMIT) -> TrainResult | None:
    """Train (from ``snap``: (snapshot, its number, pictures), or from the start) with
    checkpoints in ``target``, then write the run's results there."""
    init = None
    snapshot, seq, kept = snap if snap is not None else (None, 0, {})
    if compiled.init is not None and snapshot is None:
        init = _load_init(compiled.init)
    program = compiled.program
    pictures = Pictures(spec, ds, net, program) if program is not None else None
    if pictures is not None and kept:
        pictures.files, pictures.listed = dict(kept["files"]), list(kept["listed"])
    if spec.train.engine == "torch":   # its own loop: no checkpoints, nothing to interrupt
        from dlspec.torchengine.run import train_torch

        fitted = train_torch(spec, ds, net, init,
                             pictures.on_epoch(on_epoch) if pictures else on_epoch, workers,
                             max_memory,
                             lambda folder: lock_yaml(spec, ds.sha256, folder, _fitted(ds)),
                             augment=_augment(spec, ds), program=program)
        return _finish(spec, ds, compiled, net, target, *fitted, pictures, latest=latest,
                       report=report)
    state = TrainState(spec.train.seed)
    state.saver = saver = Checkpoints(target, spec.train.checkpoint,
                                      identity(spec, ds.sha256), seq, pictures)
    state.resume = snapshot
    set_status(target, "running")
    try:
        with interruptible(state):
            result, opts = fit(net, spec.train, ds.target.task, ds.x, ds.y,
                               pictures.on_epoch(on_epoch) if pictures else on_epoch,
                               augment=_augment(spec, ds), init=init, lr_scale=lr_scale(net),
                               program=program, pretrain=ds.pretrain, state=state)
    except TrainingInterrupted as e:
        set_status(target, "interrupted", epoch=e.epoch, step=e.step)
        raise TrainingInterrupted(f"interrupted at epoch {e.epoch}, step {e.step:,}; resume "
                                  f"with: dlspec train --resume {target}", e.epoch,
                                  e.step) from None
    except KeyboardInterrupt:   # the second Ctrl-C: at once, from the newest checkpoint
        epoch, step = saver.saved or (0, 0)
        set_status(target, "interrupted", epoch=epoch, step=step)
        raise TrainingInterrupted(f"interrupted; resume from the newest checkpoint (epoch "
                                  f"{epoch}, step {step:,}) with: dlspec train --resume "
                                  f"{target}", epoch, step) from None
    except TrainingDiverged as e:
        epoch, step = saver.saved or (0, 0)
        kept_note = (f"; its last good checkpoint (epoch {epoch}, step {step:,}) is kept"
                     if saver.saved else "")
        set_status(target, "diverged", message=str(e))
        raise TrainingDiverged(f"{e}{kept_note}") from None
    except ModelError as e:
        if e.code == "checkpoint" and e.location is None:  # a snapshot that does not fit
            where = latest_checkpoint(target)
            raise ModelError(e.message, Location(str(where or target)),
                             code="checkpoint") from None
        raise
    return _finish(spec, ds, compiled, net, target, result, opts, pictures, latest=latest,
                   report=report)


def _finish(spec: Spec, ds: Dataset, compiled, net: Network, target: Path,
            result: FitResult, opts: dict, pictures, *, latest: bool,
            report: bool) -> TrainResult:
    """Write a trained run's results into ``target``, mark it finished, drop its
    checkpoints."""
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_model_parity

    try:
        files, note = results(spec, ds, compiled, net, result, opts, pictures,
                              build_model, check_model_parity)
        if report:  # report.html, the page a reviewer opens: see dlspec/report
            from dlspec.report.at_train import report_files

            started = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file()}
            files.update(report_files({**started, **files}, ds, held_rows(ds)))
    except DlspecError:  # a model that fails its checks: no run (a resume would fail too)
        shutil.rmtree(target, ignore_errors=True)
        raise
    for name, data in files.items():
        write_atomic(target / name, data)
    set_status(target, "finished", epochs=len(result.history), steps=result.steps)
    shutil.rmtree(folder_of(target), ignore_errors=True)  # a finished run needs none
    fsync_dir(target)
    if latest:
        point_latest(target)
    metrics = json.loads(files["metrics.json"])
    return TrainResult(target, spec, result, metrics, note)


def lock_yaml(spec, data_sha256: str, run_dir: Path, fitted: dict | None = None) -> bytes:
    """spec.lock.yaml: the resolved spec (every default filled) and the data's SHA-256,
    its paths relative to ``run_dir`` (where the lock is written), so a checkout copied
    elsewhere, runs included, still finds its data."""
    import yaml

    from dlspec.spec.model import thaw
    from dlspec.spec.paths import relative_to
    from dlspec.version import __version__

    resolved = {k: v for k, v in thaw(spec.resolved).items() if v is not None}
    relative_to(resolved, run_dir, Path(spec.file).resolve().parent)
    resolved["lock"] = {"data_sha256": data_sha256, "spec_sha256": spec.sha256,
                        **(fitted or {}), "dlspec_version": __version__}
    head = (f"# Written by dlspec {__version__}: the spec as trained, every default filled in.\n"
            "# `dlspec train` on this file repeats the run (and checks the data's SHA-256).\n"
            "# Paths are relative to this file's folder.\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's is ~10x faster
    return (head + yaml.dump(resolved, Dumper=dumper, sort_keys=False,
                             allow_unicode=True)).encode()


def located_parity(spec: Spec, net: Network, check, *args) -> dict:
    """``check(*args)`` (the parity gate), its mismatch located in the spec: at a recurrent
    activation that onnxruntime computes by an overflowing formula, else at the model."""
    from dlspec.errors import ParityError
    from dlspec.onnx.parity import overflowing_activations
    from dlspec.spec.compile import node_where

    try:
        return check(*args)
    except ParityError as e:
        found = overflowing_activations(net.graph)
        if not found:
            raise Diagnostics([SpecError(
                f"{e}: the trained model is computed differently by the two, most likely "
                "because its values grow too large for float32 to agree (unscaled inputs, "
                "unbounded activations such as linear or relu recurrent gates); scale the "
                "inputs, bound the activations, or lower the learning rate",
                spec.locate(("model",), True), path="model", code="export-parity")]) from None
        name, attr, act = found[0]
        where = node_where(spec, name)
        node = next((n for n in spec.model.nodes if n.where == where), None)
        path = (*where, node.layer, attr) if node is not None and node.layer else where
        raise Diagnostics([SpecError(
            f"{e}: layer '{name}' uses {act.name}, which onnxruntime's recurrent ops compute "
            f"as {act.onnx_formula}, infinite past x = {act.onnx_overflow} where the engine's "
            f"stays finite; scale the inputs (e.g. preprocess: - standardize: all) or use "
            f"another {attr}", spec.locate(path, False), path=path_str(path),
            code="export-parity")]) from None


def _augment(spec: Spec, ds: Dataset):
    if not spec.data.augment:
        return None
    from dlspec.data.augment import make_augment

    shape = next(iter(ds.input_shapes.values()))
    blank = ds.preprocessor.transform(np.zeros((1, *shape), np.uint8))[0, 0, 0]
    return make_augment([thaw(a) for a in spec.data.augment], blank)


