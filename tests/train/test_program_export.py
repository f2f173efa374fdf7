"""What a training program's run exports: without an `export` key, every output taking
only the inputs it reads (a GAN's generator: noise in, no images asked for), through
`dlspec train` and `dlspec export` alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

import dlspec

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "data" / "digits.npz"

GAN = f"""\
dlspec: 1
name: tiny_gan
data:
  source: {DIGITS}
  preprocess: [{{scale: 16}}]
model:
  inputs:
    image: {{}}
    z: {{noise: {{uniform: [3]}}}}
  blocks:
    disc:
      inputs: [x]
      nodes:
        flat: {{flatten: {{}}, from: x}}
        h: {{dense: {{units: 4, activation: relu}}}}
        p: {{dense: {{units: 1, activation: sigmoid}}}}
  nodes:
    gen: {{dense: {{units: 64, activation: sigmoid}}, from: z}}
    fake: {{reshape: {{target_shape: [8, 8, 1]}}}}
    d_real: {{call: disc, from: image}}
    d_fake: {{call: disc, from: fake}}
  outputs: [fake]
train:
  recipe:
    gan: {{generator: "gen*", discriminator: "disc.*", real: d_real, fake: d_fake}}
  epochs: 1
"""


def _inputs(path: Path) -> list[str]:
    return [i.name for i in onnx.load(str(path)).graph.input]


def test_a_program_exports_what_its_outputs_read(tmp_path):
    (tmp_path / "gan.yaml").write_text(GAN)
    run = dlspec.train(tmp_path / "gan.yaml", run_dir=tmp_path / "run").run_dir
    assert _inputs(run / "model.onnx") == ["z"]
    report = dlspec.export(run, tmp_path / "again.onnx")
    assert _inputs(tmp_path / "again.onnx") == ["z"] and report["parity"]["rows"] > 0
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])

    (fake,) = session.run(None, {"z": np.zeros((5, 3), np.float32)})
    assert fake.shape == (5, 8, 8, 1) and ((fake >= 0) & (fake <= 1)).all()
