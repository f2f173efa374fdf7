"""A spec's graph to study: every node's value and the gradient of one output.

    values, grads = dlspec.gradients("specs/graph_product.yaml", {"x": 2.0, "y": 3.0,
                                                                   "z": 4.0}, "g")

``values`` maps every input, parameter and node name to its value; ``grads`` maps every input name
and every parameter name (``node.param``) to the gradient of the sum of ``output`` with
respect to it. The graph runs as at inference (dropout passes its input through, batch
norm uses its moving statistics), by the ops' own rules in float64: a forward pass in
order, then each op's vector-Jacobian product in reverse, gradients adding up where a
value is used twice. This is backpropagation on a computational graph, as a learner
computes it by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from dlspec.autodiff import ancestors
from dlspec.errors import DataError, Diagnostics, SpecError
from dlspec.spec.model import Spec


def _spec(spec: Spec | str | Path) -> Spec:
    from dlspec.spec.load import load_spec

    return spec if isinstance(spec, Spec) else load_spec(spec, check_data=False)


def _batched(spec: Spec, inputs: Mapping) -> tuple[dict[str, np.ndarray], bool]:
    """The inputs as float64 batches, and whether they came without their batch axis."""
    declared = {i.name: i.shape for i in spec.model.inputs}
    unknown = sorted(set(inputs) - set(declared))
    missing = sorted(set(declared) - set(inputs))
    if unknown or missing:
        raise DataError(f"the model's inputs are {', '.join(sorted(declared))}; "
                        + (f"got unknown {', '.join(unknown)}" if unknown else
                           f"missing {', '.join(missing)}"), code="usage")
    arrays = {n: np.asarray(v, dtype=np.float64) for n, v in inputs.items()}
    flags = set()
    for name, x in arrays.items():
        shape = declared[name]
        if shape is None:
            flags.add(False)
        elif x.shape == tuple(shape):
            flags.add(True)
        elif x.shape[1:] == tuple(shape):
            flags.add(False)
        else:
            raise DataError(f"input '{name}' takes examples of shape {tuple(shape)} (or a batch"
                            f" of them), got {x.shape}", code="usage")
    if len(flags) > 1:
        raise DataError("give every input with its batch axis, or every input without",
                        code="usage")
    single = flags == {True}
    return ({n: x[None] for n, x in arrays.items()} if single else arrays), single


def gradients(spec: Spec | str | Path, inputs: Mapping, output: str,
              seed: int | None = None, params: Mapping | None = None) -> tuple[dict, dict]:
    """Evaluate the spec's graph on ``inputs`` and differentiate the sum of ``output``.

    Args:
        spec: a spec file or a loaded Spec. Parameters the spec does not give start from
            their initializers, seeded by ``seed`` (default: the spec's seed).
        params: values for parameters by name (``node.param``), instead of those.
        inputs: input name -> array: one example (the input's shape) or a batch.
        output: the node to differentiate (its values are summed).

    Returns:
        (values, grads): plain dicts of float64 NumPy arrays, without the batch axis when
        the inputs came without it.

    Raises:
        Diagnostics: an output that is not a node. DataError: inputs that do not fit.
    """
    from dlspec.engine.plan import ParamBuffer
    from dlspec.graph.lower import lower_model

    spec = _spec(spec)
    x, single = _batched(spec, inputs)
    shapes = {name: a.shape[1:] for name, a in x.items()}
    graph = lower_model(spec.model.program(shapes), spec.locate)
    if output not in graph.node_values:
        from dlspec.spec.diagnose import did_you_mean

        raise Diagnostics([SpecError(f"'{output}' is not a node"
                                     f"{did_you_mean(output, graph.node_values)}; nodes: "
                                     f"{', '.join(graph.node_values)}", code="usage")])
    buffer = ParamBuffer(graph)
    buffer.initialize(np.random.default_rng(spec.seed if seed is None else seed))
    given = dict(params or {})
    unknown = sorted(set(given) - {p.name for p in graph.params})
    if unknown:
        raise DataError(f"no parameter {unknown[0]}; the parameters are "
                        f"{', '.join(p.name for p in graph.params)}", code="usage")
    env = {v.id: x[v.name] for v in graph.inputs}
    for p, view in zip(graph.params, buffer.views, strict=True):
        value = np.asarray(given.get(p.name, view), dtype=np.float64)
        if value.shape != p.shape:
            raise DataError(f"{p.name} is {p.shape}, got {value.shape}", code="usage")
        env[p.value.id] = value
    target = graph.node_values[output]
    for node in graph.nodes:
        if node.op.train_only:
            env[node.output.id] = env[node.inputs[0].id]
        else:
            env[node.output.id] = node.op.forward(*[env[v.id] for v in node.inputs],
                                                  **node.attrs)
    grad = {target.id: np.ones_like(env[target.id])}
    for node in reversed(ancestors(target)):
        g = grad.get(node.output.id)
        if g is None:
            continue
        if node.op.train_only:
            parts = (g,) + (None,) * (len(node.inputs) - 1)
        else:
            parts = node.op.vjp(g, env[node.output.id], *[env[v.id] for v in node.inputs],
                                **node.attrs)
        for v, gv in zip(node.inputs, parts, strict=True):
            if gv is not None:
                grad[v.id] = gv if v.id not in grad else grad[v.id] + gv
    strip = (lambda a: np.asarray(a[0])) if single else (lambda a: a)
    values = {n: strip(x[n]) for n in x}
    values.update({p.name: env[p.value.id] for p in graph.params})
    values.update({n: strip(env[v.id]) for n, v in graph.node_values.items() if v.id in env})
    grads = {v.name: strip(grad.get(v.id, np.zeros_like(x[v.name]))) for v in graph.inputs}
    grads.update({p.name: grad.get(p.value.id, np.zeros(p.shape)) for p in graph.params})
    return values, grads
