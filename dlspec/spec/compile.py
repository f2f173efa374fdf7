"""A spec's graph, compiled: lowered at the inputs' shapes, its loss attached, its
parameters ruled (train.params, model.init_from) and its memory estimated.

Validation compiles it at the shapes the data's header tells (before any data is read);
training compiles it once more at the data's real shapes and keeps that graph for the run.
Every problem found here is located at the node, rule or key to change.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

from dlspec.engine.losses import LOSSES
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.errors import Diagnostics, SpecError, path_str
from dlspec.graph.heads import HeadError, HeadErrors, Target, attach_loss
from dlspec.graph.ir import Graph
from dlspec.graph.lower import lower_model
from dlspec.graph.resources import DEFAULT_LIMIT, Estimate, estimate, human
from dlspec.spec.diagnose import spec_error
from dlspec.spec.model import Spec
from dlspec.tasks import TASKS


@dataclass
class Compiled:
    graph: Graph
    estimate: Estimate | None
    init: object | None        # transfer.InitPlan
    program: object | None = None   # engine.program.Program (None: the supervised one)


def node_where(spec: Spec, name: str) -> tuple:
    """The written place of node ``name`` (a block call's inner node: the call)."""
    nodes = {n.name: n for n in spec.model.nodes}
    for block in spec.model.blocks.values():
        for n in block.nodes:
            nodes.setdefault(f"{block.name}.{n.name}", n)
    head = name if name in nodes else name.split(".")[0]
    node = nodes.get(head)
    return node.where if node else ("model",)


def _head_error(spec: Spec, e: HeadError) -> SpecError:
    where = node_where(spec, e.layer)
    node = next((n for n in spec.model.nodes if n.where == where), None)
    path = where
    if node is not None and node.layer:  # the layer's key, or the parameter to change
        path = (*where, node.layer, e.param) if e.param and e.param in node.params \
            else (*where, node.layer)
    return SpecError(str(e), spec.locate(path, False), path=path_str(path),
                     code="semantic-classes" if e.classes else "semantic-loss-output")


def attach(spec: Spec, graph: Graph, classes: int | None = None, width: int = 1) -> None:
    """Attach the spec's loss to its first output (raises located Diagnostics)."""
    loss = LOSSES[spec.train.loss]
    task = TASKS[loss.task]
    d = spec.data
    name = (d.target or ("y" if d.sequence else "label")) if d is not None else "the target"
    try:
        attach_loss(graph, spec.model.outputs[0], loss,
                    Target(loss.task, classes, width, name), () if task.classifier else (width,))
    except HeadErrors as e:
        raise Diagnostics([_head_error(spec, p) for p in e.problems]) from None


def apply_param_rules(spec: Spec, graph: Graph) -> None:
    """train.params: freeze or slow the parameters each glob matches (a later rule wins)."""
    names = [p.name for p in graph.params]
    errors = []
    for rule in spec.train.params if spec.train else ():
        where = ("train", "params", rule.index)
        hits = [p for p in graph.params if fnmatch.fnmatchcase(p.name, rule.match)]
        if not hits:
            close = difflib.get_close_matches(rule.match, names, n=3, cutoff=0.5)
            hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
            errors.append(spec_error(spec.locate, (*where, "match"), f"'{rule.match}' matches"
                                     f" no parameter{hint}; parameters: "
                                     f"{', '.join(names[:12])}{' ...' if len(names) > 12 else ''}",
                                     "semantic-params"))
            continue
        if rule.frozen and rule.lr_mult is not None:
            errors.append(spec_error(spec.locate, where, "a frozen parameter has no learning "
                                     "rate; give frozen or lr_mult, not both",
                                     "semantic-params"))
            continue
        for p in hits:
            if rule.frozen:
                p.trainable, p.frozen = False, True
            elif rule.frozen is False and p.frozen:
                p.trainable, p.frozen = True, False
            if rule.lr_mult is not None:
                p.lr_mult = float(rule.lr_mult)
    if errors:
        raise Diagnostics(errors)


def unreached(spec: Spec, graph: Graph) -> None:
    """Every trainable parameter must be one the loss reaches (else it would never train)."""
    from dlspec.engine.network import reachable_params

    reached = reachable_params(graph)
    lost = [p for p in graph.params if p.trainable and p.name not in reached]
    if not lost:
        return
    by_layer: dict[str, list[str]] = {}
    for p in lost:
        by_layer.setdefault(p.layer, []).append(p.name)
    errors = []
    for layer, names in by_layer.items():
        where = node_where(spec, layer)
        errors.append(SpecError(
            f"the loss does not reach {', '.join(names)}: it trains the output "
            f"'{spec.model.outputs[0]}', which does not depend on '{layer}'; freeze them "
            f"(train.params: [{{match: '{layer}.*', frozen: true}}]) or give them weights and "
            "trainable: false", spec.locate(where, True), path=path_str(where),
            code="semantic-unreached"))
    raise Diagnostics(errors)


def memory(spec: Spec, graph: Graph, limit: int) -> Estimate | None:
    """A training step's memory, refused above ``limit`` (located at the node with the
    most parameters)."""
    if spec.train is None:
        return None
    opt = OPTIMIZERS[spec.train.optimizer]
    est = estimate(graph, spec.train.batch_size,
                   opt.state_per_param(dict(spec.train.optimizer_params)))
    if est.total > limit:
        big = max(graph.layers, key=lambda info: info.n_params).name if graph.layers else ""
        where = node_where(spec, big)
        raise Diagnostics([SpecError(
            f"a training step needs about {est.describe()}, more than the limit of "
            f"{human(limit)}; make the model or the batch smaller, or raise --max-memory",
            spec.locate(where, False), path=path_str(where), code="resources")])
    return est


def compile_graph(spec: Spec, shapes: Mapping[str, tuple], *, classes: int | None = None,
                  width: int = 1, limit: int = DEFAULT_LIMIT, init: bool = True) -> Compiled:
    """The spec's graph at input ``shapes``, with its loss (when it trains), param rules,
    init_from plan (when its run exists, or ``init`` demands it) and memory estimate.

    Raises:
        Diagnostics: every problem, located.
    """
    graph = lower_model(spec.model.program(shapes), spec.locate)
    apply_param_rules(spec, graph)
    program = None
    if spec.train is not None:
        if spec.train.loss is not None:
            attach(spec, graph, classes, width)
        if spec.train.program is None:
            unreached(spec, graph)
        else:
            from dlspec.spec.objectives import build_program

            program = build_program(spec, graph, classes, width)
    plan = None
    if spec.model.init_from is not None and (init or spec.model.init_from.run.exists()):
        from dlspec.spec.transfer import plan_init

        plan = plan_init(spec.model.init_from, {p.name: p.shape for p in graph.params},
                         spec.locate)
    return Compiled(graph, memory(spec, graph, limit), plan, program)
