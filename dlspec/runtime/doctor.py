"""`dlspec doctor`: what dlspec runs on here (versions, providers, CUDA, BLAS)."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import io
import platform
import sys

PACKAGES = ("numpy", "onnx", "onnxruntime", "onnxruntime-gpu", "pyyaml", "jsonschema",
            "typer", "rich")


def _version(package: str) -> str | None:
    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return None


def _blas() -> str:
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - older numpy prints instead
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            np.show_config()
        return " ".join(buf.getvalue().split())[:120]


def _cuda_works() -> str:
    """Start a CUDA session on a one-node model: 'yes', or why not."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "no CUDA provider in this onnxruntime (install dlspec[gpu])"
    if hasattr(ort, "preload_dlls"):
        with contextlib.suppress(Exception):
            ort.preload_dlls()
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "probe",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        s = ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                 providers=["CUDAExecutionProvider", "CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return f"no: {str(e).splitlines()[0]}"
    used = s.get_providers()[0]
    return "yes" if used == "CUDAExecutionProvider" else f"no: fell back to {used}"


def report() -> list[tuple[str, str]]:
    """(item, value) rows."""
    import onnxruntime as ort

    from dlspec.version import __version__

    rows = [("dlspec", __version__), ("python", sys.version.split()[0]),
            ("platform", platform.platform())]
    rows += [(p, v) for p in PACKAGES if (v := _version(p))]
    if _version("onnxruntime") and _version("onnxruntime-gpu"):
        rows.append(("warning", "onnxruntime and onnxruntime-gpu are both installed; "
                                "keep only one (see the README)"))
    rows.append(("onnxruntime providers", ", ".join(ort.get_available_providers())))
    rows.append(("CUDA works", _cuda_works()))
    rows.append(("BLAS", _blas()))
    from dlspec import blas

    rows.append(("BLAS kernels", blas.describe()))
    rows.append(("BLAS threads", blas.describe_threads()))
    return rows
