"""onnxruntime sessions: safe model loading, provider choice, and a check of what runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dlspec.errors import Location, ModelError, UsageError
from dlspec.runtime.contract import CONTRACT_KEY, Contract

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


@dataclass
class LoadedModel:
    path: str
    session: object            # onnxruntime.InferenceSession
    contract: Contract
    metadata: dict
    provider: str              # the provider actually in use


def _read(path: Path) -> bytes:
    import onnx

    try:
        data = path.read_bytes()
        model = onnx.load_from_string(data)
    except OSError as e:
        raise ModelError(f"cannot read the model: {e.strerror or e}", Location(str(path)),
                         code="model-file") from None
    except Exception as e:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise ModelError(f"not an ONNX model ({type(e).__name__})", Location(str(path)),
                         code="model-file") from None
    for t in model.graph.initializer:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise ModelError("the model references external data files; dlspec loads "
                             "single-file models only", Location(str(path)), code="model-file")
    return data


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    """An onnxruntime session for a dlspec model on ``device`` (cpu, cuda or auto).

    Raises:
        ModelError: unreadable model, no dlspec contract, or onnxruntime refuses it.
        UsageError: ``cuda`` asked for but no working CUDA provider.
    """
    import onnxruntime as ort

    path = Path(path)
    data = _read(path)
    available = ort.get_available_providers()
    if device == "cuda" and PROVIDERS["cuda"] not in available:
        raise UsageError(f"--device cuda: onnxruntime has no CUDA provider here (available: "
                         f"{', '.join(available)}); install dlspec[gpu] on a CUDA machine",
                         code="device")
    want = [PROVIDERS["cuda"], PROVIDERS["cpu"]] if device in ("cuda", "auto") and \
        PROVIDERS["cuda"] in available else [PROVIDERS["cpu"]]
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(data, sess_options=opts, providers=want)
    except Exception as e:  # noqa: BLE001 - onnxruntime's errors are not one class
        raise ModelError(f"onnxruntime cannot load the model: {str(e).splitlines()[0]}",
                         Location(str(path)), code="model-load") from None
    in_use = session.get_providers()[0]
    if device == "cuda" and in_use != PROVIDERS["cuda"]:
        raise UsageError(f"--device cuda: onnxruntime fell back to {in_use}; the CUDA "
                         "provider failed to start (check the CUDA and cuDNN libraries)",
                         code="device")
    meta = dict(session.get_modelmeta().custom_metadata_map)
    if CONTRACT_KEY not in meta:
        raise ModelError("not a dlspec model (no input contract in its metadata)",
                         Location(str(path)), code="model-contract")
    contract = Contract.from_json(meta[CONTRACT_KEY], str(path))
    return LoadedModel(str(path), session, contract, meta, in_use)
