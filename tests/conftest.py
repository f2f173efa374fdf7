"""Shared fixtures: where the real data sets are, and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
EXAMPLES = ROOT / "examples" / "data"
# The real data sets (churn, MNIST, ...) live beside the checkout, in ../shared/data.
SHARED_DATA = Path(os.environ.get("DLSPEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
CHURN_CSV = SHARED_DATA / "churn" / "Churn_Modelling.csv"
AIRLINE_CSV = SHARED_DATA / "timeseries" / "airline-passengers.csv"
SMS_TSV = SHARED_DATA / "text" / "SMSSpamCollection"


@pytest.fixture
def churn_csv() -> Path:
    if not CHURN_CSV.is_file():
        pytest.skip(f"{CHURN_CSV} is absent: the Kaggle churn data is not shipped with dlspec")
    return CHURN_CSV


@pytest.fixture
def airline_csv() -> Path:
    if not AIRLINE_CSV.is_file():
        pytest.skip(f"{AIRLINE_CSV} is absent: the airline-passengers series is not shipped "
                    "with dlspec")
    return AIRLINE_CSV


@pytest.fixture
def sms_tsv() -> Path:
    if not SMS_TSV.is_file():
        pytest.skip(f"{SMS_TSV} is absent: the SMS Spam Collection is not shipped with dlspec")
    return SMS_TSV


@pytest.fixture
def breast_cancer_csv() -> Path:
    return EXAMPLES / "breast_cancer.csv"


@pytest.fixture
def mnist_dir() -> Path:
    d = SHARED_DATA / "mnist"
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{d} is absent: MNIST's files are not shipped with dlspec")
    return d


# Property tests explore the same examples on every run (CI included): a failure found
# once is found again, and a green run means the same thing everywhere.
from hypothesis import settings  # noqa: E402

settings.register_profile("dlspec", derandomize=True, database=None)
settings.load_profile("dlspec")


def fill_step(net, plan, s: list, xb, yb, noise=None) -> None:
    """One batch into a training plan's slots: the input, the target, dropout masks (all
    ones without a ``noise`` generator)."""
    s[plan.input_slots[0]] = xb
    s[plan.target_slots[0]] = yb
    for slot, rate in plan.noise_slots:
        shape = (len(xb), *net.graph.values[slot].shape[1:])
        s[slot] = np.ones(shape, np.float32) if noise is None else \
            (noise.random(shape, dtype=np.float32) >= rate) * np.float32(1 / (1 - rate))


def train_step(net, plan, s: list, xb, yb, noise=None) -> float:
    """A training step's forward and backward passes through ``plan``; returns the loss."""
    fill_step(net, plan, s, xb, yb, noise)
    plan.forward(s)
    loss = float(s[plan.seed_slot])
    plan.backward(s)
    return loss
