"""onnxruntime sessions: safe model loading, device choice, and a check of what really runs.

On CUDA, large batches go through I/O binding: numeric inputs are placed in
device memory once and outputs are copied back once, instead of onnxruntime's
per-call staging. String inputs (the tabular preprocessing) always stay on the
host, where onnxruntime runs those ops anyway.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlspec.errors import Location, ModelError, UsageError
from dlspec.runtime.contract import CONTRACT_KEY, Contract

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# TF32 matmuls (onnxruntime's default on Ampere and newer) differ from the CPU by ~1e-3;
# dlspec promises CPU-equal predictions within 1e-4, so CUDA runs in full float32.
CUDA_OPTIONS = {"use_tf32": "0"}
BIND_MIN_ROWS = 256          # below this, a plain run is as fast
AUTO_CUDA_MIN_PARAMS = 100_000  # smaller models are faster on the CPU (PERF-NOTES)


class DeviceSession:
    """An InferenceSession whose ``run`` uses I/O binding on CUDA for large batches."""

    def __init__(self, session, provider: str) -> None:
        self.session, self.provider = session, provider
        # I/O binding is for numeric tensors only (string outputs crash copy_outputs_to_cpu
        # in onnxruntime 1.31, and string ops run on the host anyway).
        self.numeric = {o.name for o in session.get_outputs() if o.type != "tensor(string)"}
        self.cuda = provider == PROVIDERS["cuda"]

    def __getattr__(self, name):  # get_inputs, get_outputs, get_modelmeta, ...
        return getattr(self.session, name)

    def run(self, output_names, feeds: dict):
        rows = max((len(v) for v in feeds.values()), default=0)
        names = output_names or [o.name for o in self.session.get_outputs()]
        if not self.cuda or rows < BIND_MIN_ROWS or not set(names) <= self.numeric or \
                any(v.dtype == object for v in feeds.values()):
            return self.session.run(output_names, feeds)
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(
                name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), "cuda", 0))
        for name in names:
            binding.bind_output(name, "cpu")  # onnxruntime copies each output back once
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()


@dataclass
class LoadedModel:
    path: str
    session: DeviceSession
    contract: Contract
    metadata: dict
    provider: str              # the provider actually in use


def _read(path: Path):
    """The model's bytes and parameter count; a model with external data is refused."""
    from dlspec.runtime.modelfile import WireError, scan

    try:
        data = path.read_bytes()
        external, n_params = scan(data)
    except OSError as e:
        raise ModelError(f"cannot read the model: {e.strerror or e}", Location(str(path)),
                         code="model-file") from None
    except WireError:
        raise ModelError("not an ONNX model (DecodeError)", Location(str(path)),
                         code="model-file") from None
    if external:
        raise ModelError("the model references external data files; dlspec loads "
                         "single-file models only", Location(str(path)), code="model-file")
    return data, n_params


def choose_providers(device: str, available: list[str], n_params: int) -> list:
    """The provider list for ``device`` (cpu, cuda or auto)."""
    cuda, cpu = PROVIDERS["cuda"], PROVIDERS["cpu"]
    if device == "cuda":
        if cuda not in available:
            raise UsageError(f"--device cuda: onnxruntime has no CUDA provider here "
                             f"(available: {', '.join(available)}); install dlspec[gpu] on a "
                             "CUDA machine (see the README)", code="device")
        return [(cuda, CUDA_OPTIONS), cpu]
    if device == "auto" and cuda in available and n_params >= AUTO_CUDA_MIN_PARAMS:
        return [(cuda, CUDA_OPTIONS), cpu]
    return [cpu]


def _preload(providers: list) -> None:
    import onnxruntime as ort

    if any(p[0] == PROVIDERS["cuda"] for p in providers if isinstance(p, tuple)) and \
            hasattr(ort, "preload_dlls"):
        # CUDA/cuDNN from pip-installed nvidia-* packages, if any; libraries that are
        # absent show up as a clear error when the session starts.
        with contextlib.suppress(Exception):
            ort.preload_dlls()


def load_model(path: str | Path, device: str = "cpu", threads: int = 0) -> LoadedModel:
    """An onnxruntime session for a dlspec model on ``device`` (cpu, cuda or auto);
    ``threads``: its intra-op threads (0: onnxruntime's choice).

    Raises:
        ModelError: unreadable model, no dlspec contract, or onnxruntime refuses it.
        UsageError: ``cuda`` asked for but no working CUDA provider.
    """
    import onnxruntime as ort

    path = Path(path)
    data, n_params = _read(path)
    want = choose_providers(device, ort.get_available_providers(), n_params)
    _preload(want)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(data, sess_options=opts, providers=want)
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors are not one class
        if device == "cuda":
            raise UsageError(f"--device cuda: the CUDA provider failed to start: "
                             f"{str(e).splitlines()[0]}", code="device") from None
        raise ModelError(f"onnxruntime cannot load the model: {str(e).splitlines()[0]}",
                         Location(str(path)), code="model-load") from None
    in_use = session.get_providers()[0]
    if device == "cuda" and in_use != PROVIDERS["cuda"]:
        raise UsageError(f"--device cuda: onnxruntime fell back to {in_use}; the CUDA "
                         "provider failed to start (check the CUDA and cuDNN libraries with "
                         "`dlspec doctor`)", code="device")
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if CONTRACT_KEY not in meta:
        raise ModelError("not a dlspec model (no input contract in its metadata)",
                         Location(str(path)), code="model-contract")
    contract = Contract.from_json(meta[CONTRACT_KEY], str(path))
    return LoadedModel(str(path), DeviceSession(session, in_use), contract, meta, in_use)
