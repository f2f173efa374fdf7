"""What a run of a training program (named losses, phases) leaves besides its weights: the
exported model of every output with its parity gate, and the pictures a person opens to
see what the model learned (reconstructions, RBM filters, generated samples).

A supervised spec goes through ``dlspec.training`` alone; these are for the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlspec.data.tensor import TensorInput
from dlspec.engine.network import Network
from dlspec.engine.plan import Plan
from dlspec.engine.program import Program
from dlspec.engine.state import rng
from dlspec.inputs import Dataset

SAMPLE_STREAM = 11      # the fixed latent codes of the sample grids
SAMPLES, SHOWN = 100, 10
SNAPSHOTS = 5           # sample grids written during training (and one at the end)


def program_inputs(spec, inputs: dict) -> dict:
    """The exported model's inputs: the data's ``inputs`` (name -> fitted preprocessing),
    then every noise input as a plain float32 tensor."""
    noise = {i.name: TensorInput(i.name, tuple(i.shape)) for i in spec.model.inputs
             if i.kind == "noise"}
    return {**inputs, **noise}


def export_program(spec, ds: Dataset, net: Network, held: np.ndarray):
    """The ONNX model of the spec's export outputs (default: every output, taking only the
    inputs they read: a GAN's generator does not ask for images), undecoded, and its parity
    against the engine on held-out rows (noise inputs: seeded draws, the same to both)."""
    from dlspec.onnx.export import build_model
    from dlspec.onnx.parity import check_model_parity
    from dlspec.training import located_parity

    inputs = program_inputs(spec, ds.inputs)
    model = build_model(net, inputs, None, opset=spec.opset, name=spec.name,
                        spec_sha256=spec.sha256,
                        outputs=spec.export_outputs or list(net.graph.outputs),
                        input_names=spec.export_inputs)
    return model, located_parity(spec, net, check_model_parity, model, net, ds.kind, inputs,
                                 "regression", ds.raw, held)


def node_values(net: Network, value, feeds: dict) -> np.ndarray:
    plan = Plan(net.graph, net.buffer, wanted=[value])
    s = plan.new_slots()
    for name, slot in plan.inputs.items():
        if name in feeds:
            s[slot] = feeds[name]
    plan.forward(s)
    return s[plan.slot_of(value)]


class Pictures:
    """The pictures of one run, by what its program trains: reconstructions of test images
    (a loss whose target is the image input), each RBM's filters (over image pixels),
    grids of samples from fixed latent codes (an output the size of an image, read from
    noise)."""

    def __init__(self, spec, ds: Dataset, net: Network, program: Program) -> None:
        self.spec, self.ds, self.net, self.program = spec, ds, net, program
        self.listed: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.image = None
        if ds.kind == "image":
            name = next(iter(ds.inputs))
            self.image = (name, tuple(ds.input_shapes[name]))
        self.total = sum(p.epochs for p in program.phases)

    # -------------------------------------------------------------- what to draw
    def _pixels(self) -> int:
        return int(np.prod(self.image[1])) if self.image else 0

    def _generator(self):
        """The output drawn as samples: the first output the size of an image that noise
        feeds."""
        if not self.image or not self.program.noise:
            return None
        from dlspec.autodiff import ancestors

        for value in self.net.graph.outputs.values():
            reads = {v.name for n in ancestors(value) for v in n.inputs}
            if int(np.prod(value.shape[1:])) == self._pixels() and \
                    reads & set(self.program.noise):
                return value
        return None

    def _images(self, values: np.ndarray) -> np.ndarray:
        h, w, *c = self.image[1]
        out = values.reshape(len(values), h, w, *c)
        return out[..., 0] if c == [1] else out

    def _shown(self, values: np.ndarray) -> tuple[np.ndarray, str]:
        """Values in the image input's preprocessed space as images to draw, and the grid's
        scaling: the preprocessing undone (pixels / 255, drawn as they are, so a generator's
        tanh in [-1, 1] under normalize {mean: 0.5, std: 0.5} is black to white, and a
        collapsed gray stays gray), or min..max when the input has no such inverse."""
        pre = self.ds.inputs[self.image[0]]
        images = self._images(values)
        if not hasattr(pre, "pixels"):
            return images, "global"
        pixels = pre.pixels(values.reshape(len(values), *self.image[1]))
        return self._images(pixels / np.float32(255)), "none"

    def _add(self, file: str, data: bytes, title: str) -> None:
        self.files[file] = data
        self.listed = [p for p in self.listed if p["file"] != file]
        self.listed.append({"file": file, "title": title})

    def samples(self, epoch: int | None) -> None:
        from dlspec.pictures import grid, png_bytes

        value = self._generator()
        if value is None:
            return
        from dlspec.engine.loop import draw_noise

        gen = rng(self.spec.train.seed, SAMPLE_STREAM)
        feeds = {n: draw_noise(dist, (SAMPLES, *self.net.graph.input_map[n].shape[1:]), gen)
                 for n, dist in self.program.noise.items()}  # as training draws them
        out, scale = self._shown(node_values(self.net, value, feeds))
        name = "samples.png" if epoch is None else f"samples_epoch{epoch:03d}.png"
        title = "Generated samples (fixed latent codes)" + \
            ("" if epoch is None else f", after epoch {epoch}")
        self._add(name, png_bytes(grid(out, SHOWN, scale=scale)), title)

    def on_epoch(self, callback: Callable | None) -> Callable:
        every = max(1, self.total // SNAPSHOTS)

        def on_epoch(epoch: int, logs: dict) -> None:
            if epoch % every == 0 and epoch != self.total:
                self.samples(epoch)
            if callback is not None:
                callback(epoch, logs)
        return on_epoch

    def reconstructions(self) -> None:
        from dlspec.pictures import pairs_grid, png_bytes

        if not self.image:
            return
        name = self.image[0]
        term = next((t for t in self.program.losses.values()
                     if t.target is None and t.value.producer is not None
                     and t.value.producer.inputs[1].name == name), None)
        if term is None:
            return
        split = next(s for s in ("test", "validation", "train") if len(self.ds.y[s]))
        x = self.ds.x[split][name][:SHOWN]
        recon = node_values(self.net, term.value.producer.inputs[0], {name: x})
        if term.value.producer.op.name == "bce_logits":  # it read the sigmoid's logits
            recon = (np.tanh(recon * 0.5) + 1) * 0.5
        (shown, scale), (redrawn, _) = self._shown(x), self._shown(recon)
        self._add("reconstructions.png",
                  png_bytes(pairs_grid(shown, redrawn, SHOWN, scale=scale)),
                  f"Test images (top) and their reconstructions (below), loss '{term.name}'")

    def filters(self, result) -> None:
        from dlspec.pictures import filters_grid, png_bytes

        for layer, rbm in result.rbm.items():
            kernel = rbm.kernel
            if not self.image or kernel.shape[0] != self._pixels():
                continue
            self._add(f"filters_{layer}.png",
                      png_bytes(filters_grid(kernel[:, :100], self.image[1][:2], SHOWN)),
                      f"Filters of RBM '{layer}': each hidden unit's weights over the pixels")

    def final(self, result) -> dict[str, bytes]:
        self.reconstructions()
        self.filters(result)
        self.samples(None)
        return self.files
