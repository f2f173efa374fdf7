"""One worker of a DDP training: ``python -m dlspec.torchengine.worker JOB`` with
torchrun's environment. See ``dlspec.torchengine.launch``."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np


def main(job: Path) -> int:
    import torch.distributed as dist

    from dlspec.errors import DlspecError
    from dlspec.inputs import load_dataset
    from dlspec.spec.load import load_spec
    from dlspec.spec.transfer import load_init
    from dlspec.torchengine.fit import fit_any
    from dlspec.torchengine.launch import FAILURE, OPTIMIZER, RESULT, WEIGHTS
    from dlspec.training import _augment, compile_network

    rank = int(os.environ["RANK"])
    # gloo: the engine's tensors live on the CPU (nccl would need them on a GPU)
    dist.init_process_group("gloo", timeout=timedelta(minutes=10))
    try:
        spec = load_spec(job / "spec.lock.yaml")
        ds = load_dataset(spec)
        compiled, net = compile_network(spec, ds, int(os.environ["DLSPEC_MAX_MEMORY"]))
        init = load_init(compiled.init) if compiled.init is not None else None

        def report(epoch: int, logs: dict) -> None:
            if rank == 0:
                print(json.dumps(logs), flush=True)

        result, state = fit_any(net, spec.train, ds.target.task, ds.x, ds.y, report,
                                augment=_augment(spec, ds), init=init,
                                program=compiled.program, pretrain=ds.pretrain)
        dist.barrier()   # no rank tears the group down while another still uses it
    except DlspecError as e:
        if rank == 0:
            (job / FAILURE).write_text(json.dumps({"type": type(e).__name__,
                                                   "message": str(e)}))
        return 1
    finally:
        dist.destroy_process_group()
    if rank == 0:
        np.savez(job / WEIGHTS, **net.buffer.state())
        np.savez(job / OPTIMIZER, **state)
        # (an RBM phase's trained RBMs stay here: the parent draws no filters from them)
        record = dataclasses.asdict(dataclasses.replace(result, rbm={}))
        (job / RESULT).write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    status = main(Path(sys.argv[1]))
    # Leave without running C++ static destructors: at interpreter exit, torch's gloo
    # threads can be torn down in an order that aborts ("terminate called without an
    # active exception", seen under load) after the work is done and written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
