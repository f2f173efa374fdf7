"""GPU inference check: CUDA provider in use, CUDA == CPU predictions, throughput at batch 4096.

    python benchmarks/gpu_check.py [--json OUT]

1. A 784-1024-1024-10 MLP (dlspec's own graph and ONNX emission, seeded weights):
   milliseconds per 4096-row batch on onnxruntime-CUDA with the input already in device
   memory (I/O binding), with a host->device copy per call, through DeviceSession.run,
   and on onnxruntime-CPU; CUDA outputs must equal CPU outputs within 1e-4.
2. The dlspec pipeline: a trained breast-cancer run predicted with --device cuda and
   --device cpu: the provider in use is checked and the predictions must agree within 1e-4.
Runs on a machine without CUDA too (the CUDA rows are then reported as unavailable).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH, REPS = 4096, 50


def mlp_model():
    import onnx
    from onnx import TensorProto, helper

    from dlspec.engine.network import Network
    from dlspec.onnx.builder import OnnxBuilder
    from dlspec.onnx.export import emit_network
    from dlspec.opsets import DEFAULT_OPSET, ir_version_for
    from dlspec.spec.model import LayerSpec

    def dense(name, units, act):
        return LayerSpec("dense", name, {"name": name, "units": units, "activation": act,
                                         "initializer": "glorot_uniform", "bias": True,
                                         "bias_initializer": "zeros", "trainable": True})

    net = Network.chain([dense("h1", 1024, "relu"), dense("h2", 1024, "relu"),
                         dense("out", 10, "softmax")], 784, "categorical_crossentropy")
    net.buffer.initialize(np.random.default_rng(0))
    b = OnnxBuilder(DEFAULT_OPSET)
    b.add_input("x", TensorProto.FLOAT, ["N", 784])
    (out,) = emit_network(b, net, {"features": "x"}).values()
    b.add_output(out, TensorProto.FLOAT, ["N", 10])
    model = helper.make_model(b.graph("mlp"), opset_imports=[helper.make_opsetid("",
                                                                               DEFAULT_OPSET)])
    model.ir_version = ir_version_for(DEFAULT_OPSET)
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString(), out, net


def timed(fn, reps=REPS):
    fn()
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times)}


def mlp_section(report):
    import onnxruntime as ort

    from dlspec.runtime.session import DeviceSession

    data, out, net = mlp_model()
    x = np.random.default_rng(1).standard_normal((BATCH, 784)).astype(np.float32)
    cpu = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    ref = cpu.run([out], {"x": x})[0]
    _, engine = net.forward(x)
    report["mlp_cpu_vs_engine_max_abs_diff"] = float(np.abs(ref - engine).max())
    report["mlp_ort_cpu"] = timed(lambda: cpu.run([out], {"x": x}), 10)
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        report["cuda"] = "unavailable: " + ", ".join(ort.get_available_providers())
        return
    tf32 = ort.InferenceSession(data, providers=["CUDAExecutionProvider",
                                                 "CPUExecutionProvider"])
    report["mlp_cuda_tf32_vs_cpu_max_abs_diff"] = float(
        np.abs(tf32.run([out], {"x": x})[0] - ref).max())
    report["mlp_cuda_tf32_host_input_run"] = timed(lambda: tf32.run([out], {"x": x}))
    from dlspec.runtime.session import CUDA_OPTIONS

    gpu = ort.InferenceSession(data, providers=[("CUDAExecutionProvider", CUDA_OPTIONS),
                                                "CPUExecutionProvider"])
    report["cuda_provider_in_use"] = gpu.get_providers()[0]
    x_dev = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    binding = gpu.io_binding()
    binding.bind_ortvalue_input("x", x_dev)
    binding.bind_output(out, "cuda")

    def device_input():
        gpu.run_with_iobinding(binding)
        binding.synchronize_outputs()

    report["mlp_cuda_device_input"] = timed(device_input)
    report["mlp_cuda_host_input_run"] = timed(lambda: gpu.run([out], {"x": x}))
    dev = DeviceSession(gpu, gpu.get_providers()[0])
    report["mlp_cuda_device_session_run"] = timed(lambda: dev.run([out], {"x": x}))
    got = dev.run([out], {"x": x})[0]
    report["mlp_cuda_vs_cpu_max_abs_diff"] = float(np.abs(got - ref).max())
    report["mlp_cuda_equals_cpu_1e-4"] = bool(np.allclose(got, ref, atol=1e-4))
    med = report["mlp_cuda_device_input"]["median_ms"]
    report["mlp_cuda_rows_per_s_device_input"] = BATCH / med * 1e3


def pipeline_section(report, tmp: Path):
    import dlspec
    from dlspec.runtime.session import load_model

    run = dlspec.train(ROOT / "specs" / "breast_cancer.yaml", ["train.epochs=5"],
                       run_dir=tmp / "run").run_dir
    data = ROOT / "examples" / "data" / "breast_cancer.csv"
    big = tmp / "big.csv"
    lines = data.read_text().splitlines()
    big.write_text("\n".join([lines[0], *(lines[1:] * 100)]) + "\n")  # 56,900 rows
    out = {}
    for device in ("cpu", "cuda", "auto"):
        try:
            t = time.perf_counter()
            rep = dlspec.predict(run / "model.onnx", big, tmp / f"{device}.csv", device=device)
            rep["seconds"] = time.perf_counter() - t
            out[device] = rep
        except Exception as e:  # noqa: BLE001 - reported, not raised
            out[device] = {"error": f"{type(e).__name__}: {e}"}
    report["pipeline"] = out
    if "error" not in out["cuda"]:
        assert out["cuda"]["provider"] == "CUDAExecutionProvider", out["cuda"]
        with open(tmp / "cpu.csv", newline="") as fa, open(tmp / "cuda.csv", newline="") as fb:
            a, b = list(csv.reader(fa)), list(csv.reader(fb))
        diff = max(abs(float(x) - float(y)) for ra, rb in zip(a[1:], b[1:], strict=True)
                   for x, y in zip(ra[:2], rb[:2], strict=True))
        labels = all(ra[2] == rb[2] for ra, rb in zip(a[1:], b[1:], strict=True))
        report["pipeline_cuda_vs_cpu"] = {"max_abs_diff": diff, "labels_equal": labels}
        assert diff <= 1e-4 and labels
        report["pipeline_model_provider"] = load_model(run / "model.onnx", "cuda").provider


def main() -> None:
    import onnxruntime as ort

    p = argparse.ArgumentParser()
    p.add_argument("--json")
    args = p.parse_args()
    report = {"onnxruntime": ort.__version__, "providers": ort.get_available_providers()}
    if hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
        except Exception as e:  # noqa: BLE001
            report["preload_dlls"] = str(e)
    for section in (mlp_section, pipeline_section):
        try:
            if section is mlp_section:
                section(report)
            else:
                with tempfile.TemporaryDirectory() as tmp:
                    section(report, Path(tmp))
        except Exception as e:  # noqa: BLE001 - report every section
            report[f"{section.__name__}_error"] = f"{type(e).__name__}: {e}"
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text)


if __name__ == "__main__":
    main()
