"""A name outside a closed vocabulary gets the whole vocabulary listed, whether or not a
close name gave a did-you-mean (layer types, steps, optimizers, losses, ..., columns)."""

from __future__ import annotations

import pytest

from dlspec.data.preprocess import STEPS
from dlspec.engine.losses import LOSSES
from dlspec.engine.metrics import METRICS
from dlspec.engine.optimizers import OPTIMIZERS
from dlspec.errors import Diagnostics
from dlspec.graph.initializers import INITIALIZERS
from dlspec.graph.layers import ACTIVATIONS, LAYERS
from dlspec.spec.load import load_spec
from dlspec.spec.semantic import IMAGE_STEPS
from tests.conftest import EXAMPLES, SPECS

HEADER = EXAMPLES.joinpath("breast_cancer.csv").read_text().splitlines()[0].split(",")
CASES = [  # (--set override, what the message calls it, every valid name)
    ("model.layers[1]={conv3d: 3}", "layer type 'conv3d'", LAYERS),
    ("model.layers[1]={attention: {}}", "layer type 'attention'", LAYERS),
    ("data.preprocess=[{tokenize: all}]", "preprocessing step 'tokenize'",
     [*STEPS, *IMAGE_STEPS]),
    ("train.optimizer={lbfgs: {lr: 1}}", "optimizer 'lbfgs'", OPTIMIZERS),
    ("train.optimizer=lbfgs", "optimizer 'lbfgs'", OPTIMIZERS),
    ("model.layers[0].dense.activation=gelu", "activation 'gelu'", ACTIVATIONS),
    ("model.layers[0].dense.initializer=lecun", "initializer 'lecun'", INITIALIZERS),
    ("train.loss=hinge", "loss 'hinge'", LOSSES),
    ("train.metrics=[mcc]", "metric 'mcc'", METRICS),
    ("data.target=Outcome", "column 'Outcome' is not in", HEADER[:20]),
]


def test_every_closed_vocabulary_is_listed():
    for override, what, names in CASES:
        with pytest.raises(Diagnostics) as info:
            load_spec(SPECS / "breast_cancer.yaml", [override])
        [d] = info.value.items
        assert what in d.message, (override, d.message)
        listed = d.message.rpartition(": ")[2].split(", ")
        missing = [n for n in names if n not in listed]
        assert not missing, f"{override}: {missing} not listed in {d.message!r}"
    assert d.message.endswith(f", ... ({len(HEADER)} in all)")  # long ones are cut short
