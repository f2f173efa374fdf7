"""What `dlspec doctor` says about the BLAS kernels."""

import sys

import numpy as np
import pytest

from dlspec import blas


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_corename_names_the_kernels_of_numpys_openblas():
    if "openblas" not in str(np.show_config(mode="dicts")).lower():
        pytest.skip("this numpy does not use OpenBLAS")
    name = blas.corename()
    assert name and name.isprintable() and len(name) < 40


def test_describe_says_when_the_environment_pins_the_kernels(monkeypatch):
    monkeypatch.setattr(blas, "corename", lambda: "Haswell")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert blas.describe() == "Haswell (pinned by OPENBLAS_CORETYPE=Haswell)"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert blas.describe() == "Haswell"
