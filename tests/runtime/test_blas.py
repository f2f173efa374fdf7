"""What `dlspec doctor` says about the BLAS: its kernels and its threads."""

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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_threads_is_what_openblas_reports_and_the_environment_is_named(monkeypatch):
    if "openblas" not in str(np.show_config(mode="dicts")).lower():
        pytest.skip("this numpy does not use OpenBLAS")
    n = blas.threads()
    assert isinstance(n, int) and n >= 1
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert blas.describe_threads().startswith(f"{n} of ")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")   # read at load time: only the label
    assert blas.describe_threads().endswith("(set by OPENBLAS_NUM_THREADS=1)")


def test_threads_unknown_without_openblas(monkeypatch):
    monkeypatch.setattr(blas, "_openblas_function", lambda what: None)
    assert blas.threads() is None and blas.corename() is None
    assert blas.describe_threads() == "unknown"
