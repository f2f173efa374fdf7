"""The torch engine: a spec's compiled graph trained by PyTorch, on one process or as
DistributedDataParallel over several (gloo on CPU, nccl where CUDA is).

- ``ops``: the torch form of every op in the registry (``TORCH_OPS``);
- ``module``: the graph as a ``torch.nn.Module``, one submodule per layer;
- ``optim``: torch.optim configured from the spec, one group per learning-rate multiplier;
- ``fit``: the training loop (one rank of a DDP group, or alone);
- ``program_fit``: the loop of a training program (named losses, several optimizers, phases);
- ``launch``: N worker processes started the way torchrun starts them;
- ``worker``: what each of them runs;
- ``export``: a run as a PyTorch project (model.py, weights, a torchrun train.py).

Importing this package does not import torch: ``check`` runs before any process starts.
"""

from __future__ import annotations

import importlib.util
import os
import re

from dlspec.errors import Diagnostics, SpecError, UsageError

EXTRA = "python -m pip install 'dlspec[torch]'"


def attr_name(name: str) -> str:
    """A layer or parameter name as a Python identifier (torch refuses dots in names)."""
    out = re.sub(r"\W", "_", name)
    return f"_{out}" if out[:1].isdigit() or not out else out


def index_inputs(graph) -> set[int]:
    """Ids of the graph inputs some op reads as indices (a text input's token ids,
    ``OpDef.index_inputs``): int64 data, never float32 and never differentiated."""
    return {v.id for node in graph.nodes for i, v in enumerate(node.inputs)
            if i in node.op.index_inputs and v.kind == "input"}


def full_hyper(name: str, hyper) -> dict:
    """An optimizer's hyperparameters, every default filled (dlspec's defaults)."""
    from dlspec.engine.optimizers import OPTIMIZERS

    return {k: s["default"] for k, s in OPTIMIZERS[name].params.items()} | dict(hyper)


def torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def external_world() -> int:
    """WORLD_SIZE set by torchrun or a cluster launcher (1 when absent)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def check(spec, workers: int = 1) -> None:
    """Refuse, with one located message, an engine or worker count this spec cannot train
    with: before any data is read or any process starts."""
    engine = spec.train.engine
    where = ("train", "engine")
    at = spec.locate(where, False)
    if workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if engine != "torch":
        if workers > 1:
            raise UsageError(f"--workers {workers} trains with torch's DistributedDataParallel:"
                             " add --engine torch (or train.engine: torch in the spec)")
        return
    if not torch_installed():
        raise Diagnostics([SpecError(
            f"train.engine torch needs PyTorch, which is not installed: {EXTRA}",
            at, path="train.engine", code="torch-missing")])
    from dlspec.ops import OPS

    missing = sorted(set(OPS) - set(supported_ops()))
    if missing:   # a new op without its torch form
        raise Diagnostics([SpecError(
            f"the torch engine has no form of op(s) {', '.join(missing)}; train with "
            "engine: numpy", at, path="train.engine", code="torch-op")])
    world = workers if workers > 1 else external_world()
    bs = spec.train.batch_size
    if bs % world:
        raise Diagnostics([SpecError(
            f"batch_size {bs} is the global batch of all {world} workers, so it must divide "
            f"by {world}: use batch_size {bs - bs % world or world} or "
            f"{bs + world - bs % world}", spec.locate(("train", "batch_size"), False),
            path="train.batch_size", code="torch-batch")])


def supported_ops() -> tuple[str, ...]:
    """The ops the torch engine can run (imports torch)."""
    from dlspec.torchengine.ops import TORCH_OPS

    return tuple(TORCH_OPS)
