"""dlspec: a declarative model-spec compiler.

A network, its data and its training in one YAML file: validated, lowered to
a graph, trained by a NumPy engine, exported to ONNX with its preprocessing.
The public API is imported lazily so that ``dlspec --help`` stays fast.
"""

from dlspec.version import __version__

_API = {"load_spec": "dlspec.spec.load", "train": "dlspec.training",
        "export": "dlspec.exporting", "export_spec": "dlspec.exporting",
        "predict": "dlspec.runtime.serve", "load_run": "dlspec.trained",
        "gradients": "dlspec.study", "Spec": "dlspec.spec.model"}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'dlspec' has no attribute {name!r}")
