"""``dlspec predict --workers N``: the chunks of a large input run through N processes, each
with its own onnxruntime session, and come back in input order.

The parent reads and writes (one reader, one writer: output order is input order); the
workers only run the model. At most ``2 N`` chunks are in flight, so memory stays bounded
whatever the input's size. Workers are spawned (not forked: onnxruntime's thread pools do
not survive a fork) and each runs its session on one intra-op thread, the cores being
shared among the workers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

_RUNNER: Callable | None = None


def _start(model: str, on_unknown: str, on_missing: str) -> None:
    global _RUNNER
    from dlspec.runtime.serve import onnx_runner
    from dlspec.runtime.session import load_model

    loaded = load_model(Path(model), "cpu", threads=1)
    _RUNNER = onnx_runner(loaded.session, loaded.contract, on_unknown, on_missing)


def _run(chunk):
    return _RUNNER(chunk)


class ParallelRunner:
    """Runs chunks on ``workers`` processes; ``map`` yields (chunk, result) in order."""

    def __init__(self, model: Path, workers: int, on_unknown: str, on_missing: str) -> None:
        self.pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                        initializer=_start,
                                        initargs=(str(model), on_unknown, on_missing))
        self.depth = 2 * workers

    def map(self, chunks: Iterable) -> Iterator[tuple]:
        pending: deque[tuple[object, Future]] = deque()
        for chunk in chunks:
            pending.append((chunk, self.pool.submit(_run, chunk)))
            if len(pending) >= self.depth:
                done, fut = pending.popleft()
                yield done, fut.result()
        while pending:
            done, fut = pending.popleft()
            yield done, fut.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
