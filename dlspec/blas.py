"""Which kernels and how many threads the loaded OpenBLAS runs, for ``dlspec doctor`` and
the benchmarks.

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

    fn = _openblas_function("get_corename")
    if fn is None:
        return None
    fn.restype = ctypes.c_char_p
    return fn().decode("ascii", "replace")


def threads() -> int | None:
    """How many threads the loaded OpenBLAS uses for a large product (its default is one
    per CPU; ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` change it), or None where that
    cannot be asked."""
    import ctypes

    fn = _openblas_function("get_num_threads")
    if fn is None:
        return None
    fn.restype = ctypes.c_int
    return int(fn())


def describe_threads() -> str:
    """The BLAS threads against the CPUs this process may use."""
    n = threads()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if n is None:
        return "unknown"
    pin = [f"{k}={os.environ[k]}" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
           if os.environ.get(k)]
    return f"{n} of {cpus} CPUs" + (f" (set by {', '.join(pin)})" if pin else "")


def _openblas_function(what: str):
    """A function of the OpenBLAS numpy loaded (scipy-openblas' prefixed 64-bit names
    first), or None."""
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
        for name in (f"scipy_openblas_{what}64_", f"scipy_openblas_{what}",
                     f"openblas_{what}64_", f"openblas_{what}"):
            fn = getattr(lib, name, None)
            if fn is not None:
                return fn
    return None
