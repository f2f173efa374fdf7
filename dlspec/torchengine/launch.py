"""Training on N processes, started the way torchrun starts them.

The parent writes the resolved spec (its lock, paths relative to a job folder) and starts
N ``python -m dlspec.torchengine.worker`` processes with torchrun's environment
(MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE). Each loads the
spec and its data itself, joins the process group and trains its share of each batch;
rank 0 reports every epoch on its stdout (one JSON line) and leaves the trained weights,
the fit's record and the optimizer's state in the job folder, from which the parent
writes the run directory as the NumPy engine does. Under an external torchrun (WORLD_SIZE
already set) no process is started: ``dlspec train`` itself is one rank.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dlspec.engine.state import FitResult
from dlspec.errors import DlspecError, TrainingDiverged

RESULT, WEIGHTS, OPTIMIZER, FAILURE = "result.json", "weights.npz", "optimizer.npz", "error.json"
ERRORS = {"TrainingDiverged": TrainingDiverged}


class WorkerError(DlspecError):
    """A worker process failed for a reason that is not the spec's."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(lock: Callable[[Path], bytes], workers: int, net, on_epoch: Callable | None,
           max_memory: int) -> tuple[FitResult, dict]:
    """Train on ``workers`` local processes; ``net``'s buffer ends with rank 0's weights."""
    with tempfile.TemporaryDirectory(prefix="dlspec-ddp-") as tmp:
        job = Path(tmp)
        (job / "spec.lock.yaml").write_bytes(lock(job))
        base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
                "WORLD_SIZE": str(workers), "LOCAL_WORLD_SIZE": str(workers),
                "DLSPEC_MAX_MEMORY": str(max_memory)}
        procs = []
        for rank in range(workers):
            env = {**base, "RANK": str(rank), "LOCAL_RANK": str(rank)}
            err = open(job / f"rank{rank}.err", "wb")  # noqa: SIM115 (closed below)
            procs.append((subprocess.Popen(
                [sys.executable, "-m", "dlspec.torchengine.worker", str(job)], env=env,
                stdout=subprocess.PIPE if rank == 0 else subprocess.DEVNULL, stderr=err), err))
        try:
            for line in procs[0][0].stdout:
                logs = json.loads(line)
                if on_epoch:
                    on_epoch(logs["epoch"], logs)
            codes = [p.wait() for p, _ in procs]
        finally:
            for p, err in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                err.close()
        if (job / FAILURE).is_file():
            failure = json.loads((job / FAILURE).read_text())
            raise ERRORS.get(failure["type"], WorkerError)(failure["message"])
        if any(codes):
            rank = next(r for r, c in enumerate(codes) if c)
            tail = (job / f"rank{rank}.err").read_text(errors="replace")[-2000:]
            raise WorkerError(f"torch worker {rank} of {workers} exited with status "
                              f"{codes[rank]}:\n{tail}")
        record = json.loads((job / RESULT).read_text())
        with np.load(job / WEIGHTS, allow_pickle=False) as z:
            net.buffer.load({k: z[k] for k in z.files})
        with np.load(job / OPTIMIZER, allow_pickle=False) as z:
            state = {k: z[k] for k in z.files}
    return FitResult(**record), state
