"""Training written as data, compiled onto the lowered graph: each named loss attached as
an op, each optimizer's objective (its loss, or the weighted sum of its losses), the
parameters each optimizer owns, and the phases the training loop runs.

Checked here, each at the key to change: a loss that cannot read its output or target
(a cross-entropy on an output that does not end in its activation, a target of another
size), a trainable parameter that no optimizer owns or two do, an optimizer whose loss
does not reach its parameters, a glob that matches nothing.
"""

from __future__ import annotations

import fnmatch

from dlspec.engine.losses import LOSSES
from dlspec.engine.program import LossTerm, Objective, Phase, Program, RBMPhase
from dlspec.errors import Diagnostics, ShapeError, SpecError
from dlspec.graph.heads import TARGET, Target, _activation, check_head
from dlspec.graph.ir import Graph, GraphBuilder, Param, Value
from dlspec.spec.diagnose import spec_error
from dlspec.spec.model import EarlyStopping, Spec
from dlspec.tasks import TASKS


class _Compiler:
    def __init__(self, spec: Spec, graph: Graph, classes: int | None, width: int) -> None:
        self.spec, self.graph = spec, graph
        self.classes, self.width = classes, width
        self.errors: list[SpecError] = []
        self.losses: dict[str, LossTerm] = {}
        self.data_target: Value | None = None

    def error(self, path: tuple, message: str, code: str, key: bool = False) -> None:
        self.errors.append(spec_error(self.spec.locate, path, message, code, key))

    # ------------------------------------------------------------------ losses
    def value(self, name: str) -> Value | None:
        g = self.graph
        return g.node_values.get(name) or g.input_map.get(name)

    def attach(self, where: tuple, key: str, name: str, e) -> None:
        """Loss ``name`` (``e``: its canonical entry) as an op of the graph."""
        path = (*where, "losses", name)
        loss = LOSSES[e["loss"]]
        out = self.value(e["output"])
        if out is None:
            return   # reported by the spec's checks
        reads = out
        if loss.fuses:
            act = _activation(out)
            if act is None or act.op.name != loss.fuses:
                have = act.op.name if act is not None else "the input itself"
                self.error((*path, "output"), f"loss '{name}' ({loss.name}) reads the logits of"
                           f" a final {loss.fuses}, but '{e['output']}' ends in {have}; end it"
                           f" with activation: {loss.fuses}, or use another loss",
                           "semantic-loss-output")
                return
            reads = act.inputs[0]
        gb = GraphBuilder.extend(self.graph)
        target, constant = e.get("target"), None
        try:
            if target is None:
                y = self._data_target(gb, path, name, loss, out)
                if y is None:
                    return
            elif isinstance(target, str):
                y = self.value(target)
                if y is None:
                    return
            else:
                constant = float(target)
                y = gb.input(f"{key}.target", (None, *reads.shape[1:]), kind="target")
            gb.begin_layer(f"loss.{key}")
            value = gb.op(loss.op, reads, y)
        except ShapeError as err:
            self.error((*path, "target") if target is not None else (*path, "output"),
                       f"loss '{name}': {err}", "semantic-loss-output")
            return
        self.graph.losses[key] = value
        self.losses[key] = LossTerm(key, value, y if constant is not None else
                                    (y if target is None else None), constant)

    def _data_target(self, gb, path, name, loss, out: Value) -> Value | None:
        task = TASKS[loss.task]
        problems = check_head(self.graph, name, loss, Target(loss.task, self.classes,
                                                             self.width, "the target"), out)
        if problems:
            for p in problems:
                self.error((*path, "output"), f"loss '{name}': {p}", "semantic-loss-output")
            return None
        if self.data_target is None:
            shape = () if task.classifier else (self.width,)
            self.data_target = gb.input(TARGET, (None, *shape), kind="target")
        return self.data_target

    # ------------------------------------------------------------------ optimizers
    def objectives(self, where: tuple, optimizers, losses: dict, prefix: str,
                   frozen: set[str]) -> dict[str, Objective]:
        trainable = [p for p in self.graph.params if p.trainable and p.name not in frozen]
        owners: dict[str, list[str]] = {p.name: [] for p in trainable}
        out = {}
        for name, e in optimizers.items():
            path = (*where, "optimizers", name)
            globs = list(e["params"])
            mine: list[Param] = []
            for i, glob in enumerate(globs):
                hits = [p for p in trainable if fnmatch.fnmatchcase(p.name, glob)]
                if not hits and glob != "*":
                    names = [p.name for p in trainable]
                    self.error((*path, "params", i) if len(globs) > 1 else (*path, "params"),
                               f"optimizer '{name}': '{glob}' matches no trainable parameter; "
                               f"parameters: {', '.join(names[:12])}"
                               f"{' ...' if len(names) > 12 else ''}", "semantic-optimizer")
                mine += [p for p in hits if p not in mine]
            for p in mine:
                owners[p.name].append(name)
            keys = [f"{prefix}{loss}" for loss in e["minimize"] if f"{prefix}{loss}" in
                    self.losses]
            if len(keys) != len(e["minimize"]):
                continue   # a loss that failed to attach is reported already
            terms = [self.losses[k] for k in keys]
            weights = tuple(float(losses[k.removeprefix(prefix)]["weight"]) for k in keys)
            if len(terms) == 1 and weights == (1.0,):
                seed = terms[0].value
            else:
                gb = GraphBuilder.extend(self.graph)
                gb.begin_layer(f"objective.{prefix}{name}")
                seed = gb.op("loss_sum", *[t.value for t in terms], weights=weights)
            reached = _reached(seed)
            lost = [p.name for p in mine if p.name not in reached]
            if lost:
                self.error((*path, "params"), f"optimizer '{name}' minimizes "
                           f"{' + '.join(e['minimize'])}, which does not reach "
                           f"{', '.join(lost[:8])}{' ...' if len(lost) > 8 else ''}; "
                           "narrow its params, or minimize a loss that depends on them",
                           "semantic-optimizer")
            (kind, hyper), = ((k, v) for k, v in e.items() if k not in ("params", "minimize"))
            out[name] = Objective(name, seed, mine, kind, hyper, tuple(keys))
        none = [p for p, who in owners.items() if not who]
        if none:
            self.error((*where, "optimizers"), f"no optimizer trains {', '.join(none[:8])}"
                       f"{' ...' if len(none) > 8 else ''}; add them to an optimizer's params,"
                       " or freeze them (train.params: [{match: ..., frozen: true}])",
                       "semantic-optimizer", key=True)
        for p, who in owners.items():
            if len(who) > 1:
                self.error((*where, "optimizers", who[1], "params"), f"'{p}' is trained by "
                           f"both {who[0]} and {who[1]}; each parameter has one optimizer",
                           "semantic-optimizer")
                break
        return out


def _reached(seed: Value) -> set[str]:
    from dlspec.autodiff import ancestors

    return {v.name for n in ancestors(seed) for v in n.inputs if v.kind == "param"}


def _frozen(spec: Spec, graph: Graph, rules, where: tuple, c: _Compiler) -> set[str]:
    frozen: set[str] = set()
    for i, r in enumerate(rules):
        hits = [p for p in graph.params if fnmatch.fnmatchcase(p.name, r["match"])]
        if not hits:
            c.error((*where, "params", i, "match"), f"'{r['match']}' matches no parameter",
                    "semantic-params")
        for p in hits:
            if r.get("frozen"):
                frozen.add(p.name)
            elif r.get("frozen") is False:
                if not p.trainable:
                    c.error((*where, "params", i), f"'{p.name}' is frozen for the whole run "
                            "(train.params); freeze it in the phases that need it instead",
                            "semantic-params")
                frozen.discard(p.name)
    return frozen


def _rbm(graph: Graph, layer: str, r) -> RBMPhase:
    matmul = next(n for n in graph.nodes if n.layer == layer and n.op.name == "matmul")
    add = next(n for n in graph.nodes if n.layer == layer and n.op.name == "add")
    params = {p.value.id: p for p in graph.params}
    return RBMPhase(layer, matmul.inputs[0], params[matmul.inputs[1].id],
                    params[add.inputs[1].id], r["cd_k"], r["persistent"], r["visible"],
                    r.get("all_rows", False))


def _es(e) -> EarlyStopping | None:
    return EarlyStopping(**e) if e else None


def build_program(spec: Spec, graph: Graph, classes: int | None, width: int) -> Program:
    """The phases of a spec written with train.losses, optimizers or phases (a supervised
    loss, where it has one, is attached first as the graph's loss).

    Raises:
        Diagnostics: every problem, located.
    """
    t, prog = spec.train, spec.train.program
    c = _Compiler(spec, graph, classes, width)
    if t.loss is not None:
        c.losses["loss"] = LossTerm("loss", graph.loss, graph.loss.producer.inputs[1])
        c.data_target = graph.loss.producer.inputs[1]
    for name, e in (prog.get("losses") or {}).items():
        c.attach(("train",), name, name, e)
    top: dict[str, Objective] = {}
    if prog.get("optimizers"):
        top = c.objectives(("train",), prog["optimizers"], prog.get("losses") or {}, "", set())
    for i, obj in enumerate(top.values()):
        for p in obj.params:
            p.group = i
    phases = []
    raw_phases = prog.get("phases") or [None]
    for i, ph in enumerate(raw_phases):
        phases.append(_phase(spec, graph, c, i, ph, top))
    if c.errors:
        raise Diagnostics(c.errors)
    noise = {i.name: i.noise for i in spec.model.inputs if i.kind == "noise"}
    only = len(phases) == 1 and phases[0].supervised
    return Program(phases, c.losses, supervised=only, noise=noise)


def _phase(spec: Spec, graph: Graph, c: _Compiler, i: int, ph, top: dict) -> Phase:
    t = spec.train
    if ph is None:
        return _objective_phase("train", t.epochs, t.batch_size, top, spec, c,
                                t.early_stopping, frozenset())
    where = ("train", "phases", i)
    bs = ph.get("batch_size") or t.batch_size
    es = _es(ph["early_stopping"]) if "early_stopping" in ph else t.early_stopping
    frozen = frozenset(_frozen(spec, graph, ph.get("params") or (), where, c))
    if ph.get("rbm"):
        opt = ph.get("optimizer") or {t.optimizer: t.optimizer_params}
        (name, hyper), = opt.items()
        return Phase(ph["name"], ph["epochs"], bs, rbm=_rbm(graph, ph["rbm"]["layer"],
                                                             ph["rbm"]),
                     optimizer=(name, hyper), frozen=frozen)
    objectives = top
    if ph.get("losses") or ph.get("optimizers"):
        prefix = f"{ph['name']}/"
        losses = ph.get("losses") or spec.train.program.get("losses") or {}
        for name, e in (ph.get("losses") or {}).items():
            c.attach(where, f"{prefix}{name}", name, e)
        if not ph.get("losses"):
            prefix = ""
        objectives = c.objectives(where, ph.get("optimizers") or
                                  spec.train.program["optimizers"], losses, prefix, frozen)
    phase = _objective_phase(ph["name"], ph["epochs"], bs, objectives, spec, c, es, frozen)
    if ph.get("step"):
        phase.step = list(ph["step"])
    if ph.get("optimizer") and phase.supervised:
        (name, hyper), = ph["optimizer"].items()
        obj = phase.objectives["optimizer"]
        obj.optimizer, obj.hyper = name, hyper
    return phase


def _objective_phase(name: str, epochs: int, bs: int, objectives: dict, spec: Spec,
                     c: _Compiler, es, frozen: frozenset) -> Phase:
    t = spec.train
    supervised = not objectives
    if supervised:
        trainable = [p for p in c.graph.params if p.trainable and p.name not in frozen]
        objectives = {"optimizer": Objective("optimizer", c.graph.loss, trainable,
                                             t.optimizer, t.optimizer_params, ("loss",))}
    step = list(spec.train.program.get("step") or objectives) if not supervised \
        else ["optimizer"]
    return Phase(name, epochs, bs, objectives, step, early_stopping=es, frozen=frozen,
                 supervised=supervised)
