"""The parity gate: from the same initial weights and the same batch order, the torch
engine (one worker) ends k steps where the NumPy engine ends, within float32 rounding,
for every spec in specs/ that has data."""

from __future__ import annotations

import numpy as np
import pytest

from dlspec.inputs import load_dataset
from dlspec.spec.load import load_spec
from dlspec.training import _augment, compile_network, lr_scale

torch = pytest.importorskip("torch", reason="the torch engine needs torch (the torch extra)")

from dlspec.engine.trainer import INIT_STREAM, rng  # noqa: E402
from dlspec.engine.trainer import fit as numpy_fit  # noqa: E402
from dlspec.torchengine.fit import fit_any as torch_fit  # noqa: E402
from dlspec.torchengine.module import GraphModule  # noqa: E402
from tests.conftest import SPECS  # noqa: E402

STEPS = 6
# float32: the two engines sum in different orders (BLAS, im2col vs torch's conv), so
# gradients differ in their last bits. Almost every parameter then agrees to RTOL/ATOL
# (at least BULK of each tensor's elements). Adam divides by sqrt(v): where a gradient is
# near zero that rounding becomes a visible share of the step, so the few other elements
# are held to MOVE of the largest distance training moved any element of the tensor.
RTOL, ATOL, BULK, MOVE = 2e-4, 2e-5, 0.995, 0.05


def _data_overrides(spec: str, request, monkeypatch) -> list[str]:
    if spec.startswith("churn"):
        return [f"data.source={request.getfixturevalue('churn_csv')}"]
    if spec.startswith("airline_"):
        return [f"data.source={request.getfixturevalue('airline_csv')}"]
    if spec.startswith("mnist_"):
        monkeypatch.setenv("DLSPEC_DATA", str(request.getfixturevalue("mnist_dir").parent))
        monkeypatch.setenv("DLSPEC_CACHE", str(request.getfixturevalue("tmp_path") / "cache"))
        return ["data.subset.train=600", "data.subset.test=100"]
    return []


def _first_rows(x, y, rows: int):
    cut = {k: (v[:rows] if k == "train" else v[:0]) for k, v in x.items()} \
        if not isinstance(x["train"], dict) else \
        {k: {n: a[:rows] if k == "train" else a[:0] for n, a in v.items()} for k, v in x.items()}
    return cut, {k: (v[:rows] if k == "train" else v[:0]) for k, v in y.items()}


SPEC_NAMES = sorted(p.name for p in SPECS.glob("*.yaml"))


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_torch_matches_numpy_after_k_steps(name, request, monkeypatch):
    if load_spec(SPECS / name, check_data=False).data is None:
        pytest.skip(f"{name} has no data: nothing to train (its weights are in the spec)")
    spec = load_spec(SPECS / name, ["train.epochs=1", "train.early_stopping=null",
                                    *_data_overrides(name, request, monkeypatch)])
    ds = load_dataset(spec)
    x, y = _first_rows(ds.x, ds.y, STEPS * spec.train.batch_size)
    nets, steps = [], []
    for engine in ("numpy", "torch"):
        compiled, net = compile_network(spec, ds, init=False)
        # a training program (a GAN's optimizers, a DBN's phases): each phase over the
        # same rows; RBM phases pretrain on them too (not on every unlabeled image)
        program = compiled.program
        if engine == "numpy":
            result, _ = numpy_fit(net, spec.train, ds.target.task, x, y,
                                  augment=_augment(spec, ds), lr_scale=lr_scale(net),
                                  program=program)
        else:
            result, _ = torch_fit(net, spec.train, ds.target.task, x, y,
                                  augment=_augment(spec, ds), program=program)
        steps.append(result.steps)
        nets.append(net.buffer.state())
    assert steps[0] == steps[1] > 0
    ours, theirs = nets
    assert ours.keys() == theirs.keys()
    _, fresh = compile_network(spec, ds, init=False)
    fresh.buffer.initialize(rng(spec.train.seed, INIT_STREAM))
    start = fresh.buffer.state()
    for k in ours:
        close = np.isclose(theirs[k], ours[k], rtol=RTOL, atol=ATOL)
        assert close.mean() >= BULK, f"{name}: {k}: {close.mean():.2%} of elements agree"
        move = float(np.abs(ours[k] - start[k]).max())
        diff = float(np.abs(theirs[k] - ours[k]).max())
        assert diff <= MOVE * move + ATOL, f"{name}: {k}: differs by {diff}, moved {move}"
    # at inference (dropout and batch norm's training form pass through) the module
    # computes the NumPy engine's forward pass
    module = GraphModule(net.graph, theirs).eval()
    rows = {k: v[:16] for k, v in (x["train"] if isinstance(x["train"], dict)
                                   else {net.input_names[0]: x["train"]}).items()}
    for i in spec.model.inputs:   # noise inputs (a GAN's latent code): seeded draws
        if i.kind == "noise":
            rows[i.name] = np.random.default_rng(0).standard_normal(
                (16, *i.shape)).astype(np.float32)
    with torch.no_grad():
        env = module({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in rows.items()})
    net.buffer.load(theirs)
    _, want = net.forward(rows)
    np.testing.assert_allclose(env[net.graph.output.id].numpy(), want, rtol=1e-4, atol=1e-5)
    # the check means something only if training moved the weights
    moved = max(float(np.abs(ours[k] - start[k]).max()) for k in ours)
    assert moved > 10 * ATOL, f"{name}: {STEPS} steps moved no weight past {10 * ATOL}"
