"""A training program (named losses, several optimizers, steps, phases) trained by torch.

The NumPy engine's loop (``dlspec.engine.loop.run_phase``) is the reference, and this one
walks the same path through the same random streams, so one worker ends where it ends
(within float32 rounding): the same epoch orders (one shuffle stream across phases), per
step the same noise inputs (the latent stream) and the same dropout masks (of the nodes
that step's loss depends on), each optimizer over the parameters it owns. An RBM phase is
contrastive divergence, not a gradient: every rank runs the NumPy engine's own (the same
seeds, the same result on each), and the torch phases after it start from its weights.

With W workers, rank r takes positions r, r+W, ... of each global batch (as the supervised
loop deals them) and each optimizer step averages its parameters' gradients over the ranks
with one all-reduce per parameter: what DistributedDataParallel does, done per optimizer,
so a step that leaves the other optimizer's parameters without a gradient (a GAN's
discriminator step and the generator) needs no "unused parameters" search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist

from dlspec.autodiff import ancestors
from dlspec.engine import metrics as M
from dlspec.engine.loop import Monitor, draw_noise, evaluate, evaluate_losses
from dlspec.engine.network import Network
from dlspec.engine.program import Phase, Program, constant_target
from dlspec.engine.state import (
    AUGMENT_STREAM,
    INIT_STREAM,
    LATENT_STREAM,
    NOISE_STREAM,
    SHUFFLE_STREAM,
    FitResult,
    TrainState,
)
from dlspec.tasks import TASKS
from dlspec.torchengine.fit import _diverged, _threads, end_epoch, keep_best
from dlspec.torchengine.module import GraphModule
from dlspec.torchengine.optim import make_optimizer, optimizer_state


class _Step:
    """One optimizer of a phase: what it minimises, the nodes that needs, and the noise
    (latent inputs, dropout masks) each of its steps draws."""

    def __init__(self, net: Network, phase: Phase, program: Program, name: str,
                 module: GraphModule) -> None:
        obj = phase.objectives[name]
        graph = net.graph
        nodes = ancestors(obj.seed)
        self.name, self.seed, self.losses = name, obj.seed, obj.losses
        self.only = {n.output.id for n in nodes}
        read = {v.id for n in nodes for v in n.inputs}
        self.latent = [(v.name, program.noise[v.name]) for v in graph.inputs
                       if v.name in program.noise and v.id in read]
        # the supervised plan draws every dropout mask; another, those its loss reads
        self.masks = [nz for nz in graph.noises if phase.supervised or nz.value.id in read]
        owned = [p for p in obj.params if p.name not in phase.frozen]
        self.params = [module.tensor(p.name) for p in owned]
        self.opt = make_optimizer(obj.optimizer, obj.hyper,
                                  [(t, p.lr_mult) for t, p in zip(self.params, owned,
                                                                  strict=True)])
        self.term_ids = [(t, program.losses[t].value.id) for t in obj.losses]


def fit_program(net: Network, train_spec, task: str, x: dict, y: dict, program: Program,
                on_epoch: Callable[[int, dict], None] | None = None,
                augment: Callable | None = None, init: dict | None = None,
                pretrain: dict | None = None) -> tuple[FitResult, dict[str, np.ndarray]]:
    """Train ``net`` by ``program`` with torch; its buffer ends with the trained weights.

    Returns:
        The fit's record, and every optimizer's state by ``<optimizer>/<param>/<buffer>``.
    """
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    _threads(world, net.graph.n_params)
    state = TrainState(train_spec.seed)
    buf = net.buffer
    buf.initialize(state.stream(INIT_STREAM))
    if init is not None:
        buf.load(init)
    x = {s: v if isinstance(v, dict) else {net.input_names[0]: v} for s, v in x.items()}
    result, opt_state = FitResult(), {}
    for phase in program.phases:
        if phase.rbm is not None:
            from dlspec.engine.rbm_phase import run_rbm_phase

            with np.errstate(over="ignore", invalid="ignore"):
                run_rbm_phase(net, phase, program, train_spec, x, pretrain, state, result,
                              on_epoch)
            continue
        module, steps = _run_phase(net, phase, program, train_spec, task, x, y, state,
                                   result, on_epoch, augment, world, rank)
        names = {id(t): p for p, t in module.named_graph_params()}
        opt_state = {f"{st.name}/{k}": v for st in steps
                     for k, v in optimizer_state(st.opt, names).items()}
    result.seconds = time.perf_counter() - state.t0
    return result, {"t": np.array(result.steps, dtype=np.int64), **opt_state}


def _run_phase(net, phase: Phase, program: Program, train_spec, task, x, y,
               state: TrainState, result: FitResult, on_epoch, augment, world: int,
               rank: int) -> tuple[GraphModule, list[_Step]]:
    buf, graph = net.buffer, net.graph
    module = GraphModule(graph, buf.state())
    for p in graph.params:
        if p.name in phase.frozen and p.trainable:
            module.tensor(p.name).requires_grad_(False)
    steps = {name: _Step(net, phase, program, name, module) for name in phase.objectives}
    order_of = [steps[name] for name in phase.step]
    shuffle_rng, noise_rng = state.stream(SHUFFLE_STREAM), state.stream(NOISE_STREAM)
    augment_rng = state.stream(AUGMENT_STREAM) if world == 1 else \
        np.random.default_rng([train_spec.seed, AUGMENT_STREAM, rank])
    latent_rng = state.stream(LATENT_STREAM)
    data = [v.name for v in graph.inputs if v.name not in program.noise and v.name in
            x["train"]]
    xt = {k: torch.from_numpy(np.ascontiguousarray(x["train"][k])) for k in data}
    yt = y["train"]
    n, bs = len(yt), phase.batch_size
    constants = {t.target.id: t for t in program.losses.values()
                 if t.target is not None and t.constant is not None}
    sup = phase.supervised
    sums_of = {f"{st.name}_loss": st for st in steps.values() if len(st.losses) > 1}
    es = phase.early_stopping
    monitor = Monitor(es, buf.flat) if es else None
    consts: dict = {}
    start_epoch = len(result.history)
    for e in range(1, phase.epochs + 1):
        epoch = start_epoch + e
        order = shuffle_rng.permutation(n) if train_spec.shuffle else np.arange(n)
        ye = yt[order]
        sums = torch.zeros(len(program.losses) + len(sums_of) + 1, dtype=torch.float64)
        slot = {name: i for i, name in enumerate([*program.losses, *sums_of])}
        seen = []
        module.train()
        for start in range(0, n, bs):
            rows = min(bs, n - start)
            mine = order[start:start + rows][rank::world]
            idx = torch.from_numpy(mine)
            feeds = {k: v.index_select(0, idx) for k, v in xt.items()}
            if augment is not None and data:
                feeds[data[0]] = torch.from_numpy(np.ascontiguousarray(
                    augment(feeds[data[0]].numpy(), augment_rng)))
            local = len(mine)
            done: set[str] = set()
            for st in order_of:
                step_feeds = dict(feeds)
                for name, distribution in st.latent:
                    shape = (rows, *graph.inputs[_input_index(graph, name)].shape[1:])
                    step_feeds[name] = torch.from_numpy(
                        draw_noise(distribution, shape, latent_rng)[rank::world])
                targets = {}
                for v in graph.targets:
                    term = constants.get(v.id)
                    targets[v.name] = torch.from_numpy(
                        constant_target(term, local, consts) if term is not None
                        else np.ascontiguousarray(ye[start:start + rows][rank::world]))
                masks = {}
                for nz in st.masks:
                    shape = (rows, *nz.value.shape[1:])
                    keep = noise_rng.random(shape, dtype=np.float32) >= nz.rate
                    masks[nz.value.name] = torch.from_numpy(
                        (keep * np.float32(1 / (1 - nz.rate)))[rank::world])
                for t in st.params:
                    t.grad = None
                if local == 0:  # a last batch smaller than the ranks: nothing here
                    for t in st.params:
                        t.grad = torch.zeros_like(t)
                    _average(st.params, local, rows)
                    st.opt.step()
                    continue
                env = module(step_feeds, targets, masks, only=st.only)
                loss = env[st.seed.id]
                value = loss.item()
                if world == 1 and not math.isfinite(value):
                    raise _diverged(epoch, result.steps + 1, value,
                                    "loss" if sup else f"loss '{st.losses[0]}'")
                if sup:
                    sums[-1] += value * local
                    if train_spec.metrics:
                        seen.append(env[net.loss_input.id].detach())
                else:
                    for name, vid in st.term_ids:
                        if name not in done:
                            sums[slot[name]] += float(env[vid].item()) * local
                            done.add(name)
                    total = f"{st.name}_loss"
                    if total in sums_of and total not in done:
                        sums[slot[total]] += value * local
                        done.add(total)
                loss.backward()
                if world > 1:
                    _average(st.params, local, rows)
                st.opt.step()
            result.steps += 1
        if world > 1:
            dist.all_reduce(sums)
        buf.load(module.arrays())
        logs: dict = {"epoch": epoch}
        if program.multi_phase:
            logs["phase"] = phase.name
        if sup:
            logs["loss"] = float(sums[-1]) / max(n, 1)
            if not math.isfinite(logs["loss"]):
                raise _diverged(epoch, None, logs["loss"])
            if train_spec.metrics:
                logs.update(_train_metrics(net, task, train_spec.metrics, seen, ye, world))
            scores = evaluate(net, x["validation"], y["validation"], task, train_spec.metrics)
        else:
            logs.update({name: float(sums[i]) / max(n, 1) for name, i in slot.items()})
            scores = evaluate_losses(net, program, x["validation"], y["validation"],
                                     state.seed, {k: st.seed for k, st in sums_of.items()})
        bad = next((k for k, v in {**logs, **scores}.items()
                    if (k in program.losses or k == "loss") and not math.isfinite(v)), None)
        if bad is not None:
            raise _diverged(epoch, None, {**logs, **scores}[bad], f"loss '{bad}'")
        logs.update({f"val_{k}": v for k, v in scores.items()})
        logs["seconds"] = time.perf_counter() - state.t0
        if end_epoch(result, epoch, logs, on_epoch, monitor, buf.flat):
            break
    keep_best(result, monitor, es, buf.flat)
    return module, list(steps.values())


def _average(params: list, local: int, rows: int) -> None:
    """The batch's mean gradient on every rank: each rank's mean over its ``local`` rows,
    weighted by them, summed over the ranks, over the batch's ``rows`` (exact where the
    ranks' shares differ, in a last, partial batch)."""
    for t in params:
        if t.grad is None:
            t.grad = torch.zeros_like(t)
        t.grad.mul_(local / rows)
        dist.all_reduce(t.grad)


def _input_index(graph, name: str) -> int:
    return next(i for i, v in enumerate(graph.inputs) if v.name == name)


def _train_metrics(net, task, names, seen, ye, world) -> dict:
    """Metrics over the epoch's batches as trained: every rank's loss inputs, put back in
    the epoch's order (rank r held positions r, r+W, ... of each batch)."""
    z = torch.cat(seen) if seen else torch.zeros((0, *net.loss_input.shape[1:]))
    if world > 1:
        sizes = torch.tensor([len(z)])
        counts = [torch.zeros_like(sizes) for _ in range(world)]
        dist.all_gather(counts, sizes)
        top = int(max(c.item() for c in counts))
        padded = torch.zeros((top, *z.shape[1:]), dtype=z.dtype)
        padded[:len(z)] = z
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        z = _interleave([p[:int(c.item())] for p, c in zip(parts, counts, strict=True)],
                        len(ye), world)
    out = net.output_from_loss_input(z.numpy())
    t = TASKS[task]
    return M.compute(names, task, t.truth(ye, out), t.scores(out))


def _interleave(parts: list, n: int, world: int) -> torch.Tensor:
    """Rank r's rows back at positions r, r+W, ... of the epoch (batch by batch, which is
    the same as over the whole epoch when each batch divides by W)."""
    out = torch.empty((n, *parts[0].shape[1:]), dtype=parts[0].dtype)
    for r, p in enumerate(parts):
        out[r::world] = p
    return out

