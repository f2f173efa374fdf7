"""Which kernels the loaded OpenBLAS runs, for ``dlspec doctor`` and the benchmarks.

NumPy's wheels bundle OpenBLAS built for many CPUs; at load time it picks the kernels for
the CPU it detects, unless ``OPENBLAS_CORETYPE`` names others. The choice matters: on a
2-core AMD EPYC with AVX-512, a 2048x2048 float32 GEMM ran at 245 GFLOP/s with the AVX2
("Haswell") kernels and 463 GFLOP/s with the AVX-512 ("SkylakeX") ones OpenBLAS picks by
itself there, so a pinned ``OPENBLAS_CORETYPE`` (some machines set one, because older
OpenBLAS builds failed on their CPUs) is worth seeing in a report.
"""

from __future__ import annotations

import os


def pinned() -> str | None:
    """``OPENBLAS_CORETYPE`` as set in this environment, or None."""
    return os.environ.get("OPENBLAS_CORETYPE") or None


def describe() -> str:
    """The kernels in use, and whether the environment chose them."""
    name = corename() or "unknown"
    pin = pinned()
    return f"{name} (pinned by OPENBLAS_CORETYPE={pin})" if pin else name


def corename() -> str | None:
    """The kernels the loaded OpenBLAS runs (e.g. 'Haswell', 'SkylakeX'), or None where
    that cannot be asked (another BLAS, or no /proc)."""
    import ctypes

    import numpy  # noqa: F401 - loads the BLAS

    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename64_", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode("ascii", "replace")
    return None
