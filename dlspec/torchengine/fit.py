"""The torch engine's training loop, on one process or as one rank of a DDP group.

It starts from the NumPy engine's initial weights (the same initializers and seed
stream), walks the same batch order (the same seeded permutation per epoch, dealt to the
ranks by a ``DistributedSampler`` with ``set_epoch``) and draws the same dropout masks, so
one worker follows the NumPy engine step for step (within float32 rounding), and W workers
follow one worker: rank r of W takes rows r, r+W, ... of each global batch, and DDP
averages the gradients of those equal shares. Evaluation, metrics and early stopping are
the NumPy engine's own (every rank holds the same weights after each step, so every rank
decides to stop at the same epoch without talking to the others).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler

from dlspec.engine import metrics as M
from dlspec.engine.loop import Monitor, evaluate
from dlspec.engine.network import Network
from dlspec.engine.state import (
    AUGMENT_STREAM,
    INIT_STREAM,
    NOISE_STREAM,
    SHUFFLE_STREAM,
    FitResult,
    rng,
)
from dlspec.errors import TrainingDiverged
from dlspec.tasks import TASKS
from dlspec.torchengine.module import GraphModule
from dlspec.torchengine.optim import make_optimizer, optimizer_state


class SeededSampler(DistributedSampler):
    """A DistributedSampler whose epoch order is the NumPy engine's: the e-th permutation
    of the spec's shuffle stream (or the rows in order), padded to a multiple of the ranks
    and dealt round-robin, as DistributedSampler deals its own."""

    def __init__(self, n: int, seed: int, shuffle: bool, world: int = 1, rank: int = 0):
        super().__init__(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed)
        self._rng = rng(seed, SHUFFLE_STREAM)
        self._orders: list[np.ndarray] = []

    def global_order(self) -> np.ndarray:
        """Every rank's rows of this epoch, padded: rank r takes positions r, r+W, ..."""
        n = len(self.dataset)
        if not self.shuffle:
            order = np.arange(n)
        else:
            while len(self._orders) < self.epoch:
                self._orders.append(self._rng.permutation(n))
            order = self._orders[self.epoch - 1]
        pad = self.total_size - n
        return np.concatenate([order, order[:pad]]) if pad else order

    def __iter__(self):
        return iter(self.global_order()[self.rank::self.num_replicas].tolist())


SMALL_MODEL = 100_000   # parameters: below, one thread per process is fastest


def _threads(world: int, n_params: int) -> None:
    """The cores shared among the workers; a small model's ops are too short to split (on
    a busy 2-core machine two threads made breast_cancer's run 10x slower: 84 s vs 8.6 s).
    DLSPEC_TORCH_THREADS overrides."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wanted = os.environ.get("DLSPEC_TORCH_THREADS")
    n = int(wanted) if wanted else 1 if n_params < SMALL_MODEL else (cores or 1) // world
    torch.set_num_threads(max(1, n))


def fit(net: Network, train_spec, task: str, x: dict, y: dict,
        on_epoch: Callable[[int, dict], None] | None = None,
        augment: Callable | None = None, init: dict | None = None,
        ) -> tuple[FitResult, dict[str, np.ndarray]]:
    """Train ``net`` with torch; its buffer ends with the trained weights (as the NumPy
    engine's ``fit`` leaves them). Inside an initialised process group, one DDP rank.

    Returns:
        The fit's record, and the optimizer's state by ``<param>/<buffer>``.
    """
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    _threads(world, net.graph.n_params)
    t0 = time.perf_counter()
    seed, buf = train_spec.seed, net.buffer
    buf.initialize(rng(seed, INIT_STREAM))
    if init is not None:
        buf.load(init)
    graph = net.graph
    module = GraphModule(graph, buf.state())
    trainable = [(module.tensor(p.name), p.lr_mult) for p in graph.params if p.trainable]
    model = module
    if world > 1 and trainable:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(module)  # buffers (batch-norm statistics): rank 0's, every step
    opt = make_optimizer(train_spec.optimizer, train_spec.optimizer_params,
                         trainable)
    x = {s: v if isinstance(v, dict) else {net.input_names[0]: v} for s, v in x.items()}
    # from_numpy keeps each input's dtype: token ids stay int64 (indices, no gradient)
    xt = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in x["train"].items()}
    yt_np = y["train"]
    yt = torch.from_numpy(np.ascontiguousarray(yt_np))
    n, bs = len(yt_np), train_spec.batch_size
    local = bs // world
    sampler = SeededSampler(n, seed, train_spec.shuffle, world, rank)
    noise_rng = rng(seed, NOISE_STREAM)
    augment_rng = rng(seed, AUGMENT_STREAM) if world == 1 else \
        np.random.default_rng([seed, AUGMENT_STREAM, rank])
    first = net.input_names[0]
    target = graph.targets[0].name
    z_id, loss_id = net.loss_input.id, graph.loss.id
    es = train_spec.early_stopping
    monitor = Monitor(es, buf.flat) if es else None
    result = FitResult()
    for epoch in range(1, train_spec.epochs + 1):
        sampler.set_epoch(epoch)
        mine = torch.tensor(list(sampler), dtype=torch.long)
        seen = []
        total = torch.zeros(2, dtype=torch.float64)   # sum of loss * rows, rows
        module.train()
        for start in range(0, len(mine), local):
            idx = mine[start:start + local]
            rows = len(idx)
            feeds = {k: v.index_select(0, idx) for k, v in xt.items()}
            if augment is not None:
                feeds[first] = torch.from_numpy(np.ascontiguousarray(
                    augment(feeds[first].numpy(), augment_rng)))
            noise = {}
            for nz in graph.noises:   # the global batch's mask, this rank's rows of it
                shape = (rows * world, *nz.value.shape[1:])
                keep = noise_rng.random(shape, dtype=np.float32) >= nz.rate
                noise[nz.value.name] = torch.from_numpy(
                    (keep * np.float32(1 / (1 - nz.rate)))[rank::world])
            env = model(feeds, {target: yt.index_select(0, idx)}, noise)
            loss = env[loss_id]
            value = loss.item()
            if world == 1 and not math.isfinite(value):
                raise _diverged(epoch, result.steps + 1, value)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            result.steps += 1
            total += torch.tensor([value * rows, rows], dtype=torch.float64)
            if train_spec.metrics:
                seen.append(env[z_id].detach())
        if world > 1:
            dist.all_reduce(total)
        logs = {"epoch": epoch, "loss": float(total[0] / max(total[1], 1))}
        if not math.isfinite(logs["loss"]):
            raise _diverged(epoch, None, logs["loss"])
        buf.load(module.arrays())
        if train_spec.metrics:
            logs.update(_train_metrics(net, task, train_spec.metrics, seen, sampler, yt_np,
                                       world))
        scores = evaluate(net, x["validation"], y["validation"], task, train_spec.metrics)
        if scores and not math.isfinite(scores["loss"]):
            raise _diverged(epoch, None, scores["loss"], "validation loss")
        logs.update({f"val_{k}": v for k, v in scores.items()})
        logs["seconds"] = time.perf_counter() - t0
        if end_epoch(result, epoch, logs, on_epoch, monitor, buf.flat):
            break
    keep_best(result, monitor, es, buf.flat)
    result.seconds = time.perf_counter() - t0
    names = {id(t): name for name, t in module.named_graph_params()}
    return result, {"t": np.array(result.steps, dtype=np.int64), **optimizer_state(opt, names)}


def end_epoch(result: FitResult, epoch: int, logs: dict, on_epoch, monitor,
              flat: np.ndarray) -> bool:
    """Record a finished epoch, report it, and watch early stopping: True to stop."""
    result.history.append(logs)
    if on_epoch:
        on_epoch(epoch, logs)
    if monitor and monitor.update(epoch, logs, flat):
        result.stopped_early = True
        return True
    return False


def keep_best(result: FitResult, monitor, es, flat: np.ndarray) -> None:
    """After the epochs: the best epoch's weights back where early stopping restores them."""
    if monitor and es.restore_best:
        np.copyto(flat, monitor.best_weights)
    result.best_epoch = monitor.best_epoch if monitor else len(result.history)


def fit_any(net: Network, train_spec, task: str, x: dict, y: dict,
            on_epoch: Callable[[int, dict], None] | None = None, *,
            augment: Callable | None = None, init: dict | None = None, program=None,
            pretrain: dict | None = None) -> tuple[FitResult, dict[str, np.ndarray]]:
    """``fit`` for a spec of train.loss, ``program_fit.fit_program`` for a training
    program (named losses, several optimizers, phases)."""
    if program is None or program.supervised:
        return fit(net, train_spec, task, x, y, on_epoch, augment=augment, init=init)
    from dlspec.torchengine.program_fit import fit_program

    return fit_program(net, train_spec, task, x, y, program, on_epoch, augment=augment,
                       init=init, pretrain=pretrain)


def _train_metrics(net, task, names, seen, sampler, y, world) -> dict:
    """Metrics over the epoch's batches as trained (as the NumPy engine reports them): every
    rank's loss inputs, put back in the global order."""
    z = torch.cat(seen) if seen else torch.zeros((0, *net.loss_input.shape[1:]))
    if world > 1:
        parts = [torch.empty_like(z) for _ in range(world)]
        dist.all_gather(parts, z.contiguous())
        z = torch.stack(parts, dim=1).reshape(-1, *z.shape[1:])
    n = len(y)
    out = net.output_from_loss_input(z[:n].numpy())
    ye = y[sampler.global_order()[:n]]
    t = TASKS[task]
    return M.compute(names, task, t.truth(ye, out), t.scores(out))


def _diverged(epoch: int, step: int | None, loss: float, what: str = "loss"):
    at = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
    return TrainingDiverged(f"training diverged at {at}: the {what} is {loss} (try a smaller "
                            "learning rate)")
