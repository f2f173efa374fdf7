"""Specs for labelled images (IDX, NPZ, a folder of class folders): a small CNN."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dlspec.errors import DataError, Location
from dlspec.scaffold.columns import TargetInfo
from dlspec.scaffold.common import (
    Builder,
    Context,
    head,
    output_layer,
    source_line,
    train_section,
)
from dlspec.scaffold.yamltext import scalar


@dataclass(frozen=True)
class Images:
    """What was read: the images' shape, classes and largest pixel, and how to name the files."""

    shape: tuple[int, int, int]      # height, width, channels
    classes: list[str]
    counts: list[int]
    max_pixel: int
    labels: str | None = None        # IDX: the labels file, as written in the spec
    test: dict | None = None         # a separate test set: {source, labels}, as written


def _target(images: Images, source: str) -> TargetInfo:
    k = len(images.classes)
    if k < 2:
        raise DataError(f"every image has the same label ({images.classes[0]}): there is "
                        "nothing to predict", Location(source), code="data-target")
    shown = ", ".join(f"{c}: {n:,}" for c, n in zip(images.classes[:10], images.counts[:10],
                                                    strict=True))
    shown += ", ..." if k > 10 else ""
    task = "binary" if k == 2 else "multiclass"
    return TargetInfo("label", task, f"{k} classes ({shown})", images.classes, images.counts)


def image_spec(images: Images, ctx: Context) -> Builder:
    """A CNN spec in the style of specs/digits_cnn.yaml, sized by the image size."""
    target = _target(images, ctx.source)
    h, w, c = images.shape
    n = sum(images.counts)
    b = Builder()
    mode = {1: "grayscale", 3: "RGB"}.get(c, f"{c}-channel")
    head(b, ctx.schema_ref, ctx.read, ctx.name,
         f"Classify the {h}x{w} {mode} images of {ctx.file} into {len(images.classes)} "
         "classes.")
    b.line(0, "data:")
    source_line(b, ctx.source)
    if images.labels:
        b.choose(2, f"labels: {scalar(images.labels)}", "data.labels", images.labels,
                 "the IDX file of the labels, beside the images")
    b.note(2, f"Classes: {target.reason}.")
    scale = 255 if images.max_pixel > 127 or images.max_pixel == 0 else images.max_pixel
    why = "pixels are bytes 0..255: scale 255 maps them to [0, 1]" if scale == 255 else \
        f"pixels run 0..{scale} (the largest value in the file): scale {scale} maps them " \
        "to [0, 1]"
    b.line(2, "preprocess:")
    b.choose(4, f"- scale: {scale}", "data.preprocess.scale", scale,
             f"{why}; inside the exported model, which takes raw pixels")
    side = min(h, w)
    shift = max(1, round(side / 14))
    b.line(2, "augment:")
    b.choose(4, f"- shift: {shift}", "data.augment.shift", shift,
             f"random shifts of up to {shift} px (about 7% of the side), training batches only;"
             " add flip: horizontal for photos, not for digits or letters")
    if images.test:
        b.choose(2, "test:", "data.test", images.test,
                 "the separate test set found beside the training files")
        for key, value in images.test.items():
            b.line(4, f"{key}: {scalar(value)}")
        split = {"validation": 0.1, "stratify": True}
        why_split = "10% of the training images for validation (early stopping), stratified"
    else:
        split = {"test": 0.2, "validation": 0.1, "stratify": True}
        why_split = "20% for the final test, 10% for validation (early stopping); stratified"
    b.choose(2, f"split: {scalar(split)}", "data.split", split, why_split)
    _cnn(b, images, target)
    train_section(b, target.task, lr=0.001, batch_size=64 if n >= 5000 else 32,
                  epochs=15 if n >= 20_000 else 40, patience=5 if n >= 20_000 else 6,
                  why_batch=f"{n:,} images", why_epochs="an upper bound: early stopping ends "
                  "training sooner")
    return b


def _cnn(b: Builder, images: Images, target: TargetInfo) -> None:
    h, w, _ = images.shape
    side = min(h, w)
    blocks = min(2 if side <= 32 else 3 if side <= 96 else 4, int(math.log2(side)))
    first = 16 if side <= 16 else 32
    dense = 64 if side <= 16 else 128
    dropout = 0.25 if side <= 16 else 0.5
    flat = side <= 32
    last_side = side // 2 ** blocks
    b.line(0, "model:")
    b.note(2, f"{blocks} blocks of 3x3 convolution (padding same) and 2x2 max-pooling for "
              f"{h}x{w} images, {first} filters doubling per block: {side} px shrink to "
              f"{last_side}; then "
              + ("flatten" if flat else "global average pooling (large images: a flatten "
                 "would make the dense layer huge)")
              + f", a dense layer of {dense} with dropout {dropout}, and the output.")
    b.line(2, "layers:")
    for i in range(blocks):
        conv = {"filters": min(first << i, 256), "kernel_size": 3, "padding": "same",
                "activation": "relu"}
        b.choose(4, f"- conv2d: {scalar(conv)}", "model.layers", {"conv2d": conv},
                 "convolution", comment="")
        b.choose(4, "- max_pool2d: 2", "model.layers", {"max_pool2d": 2}, "pooling",
                 comment="")
    pool = "flatten" if flat else "global_avg_pool2d"
    b.choose(4, f"- {pool}:", "model.layers", {pool: None}, pool, comment="")
    hidden = {"units": dense, "activation": "relu", "initializer": "he_uniform"}
    b.choose(4, f"- dense: {scalar(hidden)}", "model.layers", {"dense": hidden}, "hidden layer",
             comment="")
    b.choose(4, f"- dropout: {dropout}", "model.layers", {"dropout": dropout}, "dropout",
             comment="")
    output_layer(b, target.task, target.classes)
