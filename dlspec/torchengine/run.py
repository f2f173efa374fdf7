"""``train.engine: torch``: where the training runs. Alone in this process, as N local
DDP processes (``--workers N``), or as one rank under an external torchrun or cluster
launcher (its WORLD_SIZE, RANK and MASTER_ADDR/PORT in the environment)."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from dlspec.engine.state import FitResult


def train_torch(spec, ds, net, init: dict | None, on_epoch: Callable | None, workers: int,
                max_memory: int, lock: Callable[[Path], bytes], augment=None,
                program=None) -> tuple[FitResult, dict] | None:
    """(the fit's record, the optimizer's state); None on a rank other than 0.
    ``program``: a training program (named losses, optimizers, phases), else train.loss."""
    if workers > 1:
        from dlspec.torchengine.launch import launch

        return launch(lock, workers, net, on_epoch, max_memory)
    from dlspec.torchengine.fit import fit_any

    def fit(*args, **kw):
        return fit_any(*args, **kw, program=program, pretrain=ds.pretrain)

    args = (net, spec.train, ds.target.task, ds.x, ds.y)
    if int(os.environ.get("WORLD_SIZE", "1") or 1) == 1:
        return fit(*args, on_epoch, augment=augment, init=init)
    import torch.distributed as dist

    dist.init_process_group("gloo", timeout=timedelta(minutes=10))
    try:
        rank = dist.get_rank()
        out = fit(*args, on_epoch if rank == 0 else None, augment=augment, init=init)
        dist.barrier()   # no rank tears the group down while another still uses it
    finally:
        dist.destroy_process_group()
    return out if rank == 0 else None
