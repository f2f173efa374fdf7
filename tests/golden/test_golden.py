"""Specs of the sequential form train to the weights they trained to before the graph form
existed, bit for bit (hashes recorded by ``python -m tests.golden.cases --record`` at the
commit before it, per BLAS kernels and threads)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED_DATA
from tests.golden.cases import CASES, HASHES, kernels, train_case

_NEEDS = {"churn": SHARED_DATA / "churn" / "Churn_Modelling.csv",
          "airline": SHARED_DATA / "timeseries" / "airline-passengers.csv",
          "mnist": SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz"}


@pytest.mark.parametrize("name", sorted(CASES))
def test_old_specs_train_to_the_same_weights(name, tmp_path, monkeypatch):
    table = json.loads(HASHES.read_text())
    key = kernels()
    if key not in table:
        pytest.skip(f"no weights recorded for BLAS kernels/threads {key} (recorded: "
                    f"{', '.join(sorted(table))}); a hash only compares on the kernels it "
                    "was recorded with")
    needs = CASES[name][2]
    if needs and not _NEEDS[needs].is_file():
        pytest.skip(f"{_NEEDS[needs]} is absent")
    monkeypatch.delenv("DLSPEC_DATA", raising=False)
    monkeypatch.delenv("DLSPEC_CACHE", raising=False)
    assert train_case(name, tmp_path, SHARED_DATA) == table[key][name]
