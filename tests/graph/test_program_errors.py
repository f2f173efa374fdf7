"""Mistakes in a graph spec: each one located at its own node (or array), one message per
mistake, naming what would fit; several independent mistakes are all reported at once."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from dlspec.errors import Diagnostics
from dlspec.spec.load import load_spec

HEAD = """\
dlspec: 1
name: broken
model:
  inputs:
    x: {shape: [4]}
    y: {shape: [3]}
  nodes:
"""


def problems(tmp_path, nodes: str, tail: str = "") -> list[tuple[int, str]]:
    """(line, message) of every diagnostic of a spec made of HEAD + ``nodes`` + ``tail``."""
    path = tmp_path / "broken.yaml"
    path.write_text(HEAD + nodes + tail, encoding="utf-8")
    with pytest.raises(Diagnostics) as info:
        load_spec(path)
    return [(d.location.line, d.message) for d in info.value.items]


def line_of(nodes: str, marker: str) -> int:
    """The spec line (1-based) of the node line holding ``marker``."""
    lines = (HEAD + nodes).splitlines()
    return next(i for i, text in enumerate(lines, 1) if marker in text)


CASES = {
    "unknown from": (
        "    a: {dense: 2, from: x}\n    b: {dense: 2, from: yy}\n"
        "    j: {concat: {}, from: [a, b]}\n",
        "from: yy", "'yy' is not an input or a node (did you mean 'y'?)"),
    "unknown share": (
        "    a: {dense: 2, from: x}\n    b: {share: aa, from: y}\n"
        "    j: {concat: {}, from: [a, b]}\n",
        "share: aa", "did you mean 'a'?"),
    "unknown output": (
        "    a: {dense: 2, from: x}\n    b: {dense: 2, from: y}\n"
        "    j: {concat: {}, from: [a, b]}\n  outputs: [jj]\n",
        "outputs: [jj]", "did you mean 'j'?"),
    "unknown block": (
        "    a: {call: encodr, from: x}\n    b: {dense: 2, from: y}\n"
        "    j: {concat: {}, from: [a, b]}\n"
        "  blocks:\n    encoder:\n      inputs: [i]\n      nodes:\n"
        "        h: {dense: 2, from: i}\n",
        "call: encodr", "did you mean 'encoder'?"),
    "cycle": (
        "    a: {dense: 2, from: x}\n    b: {dense: 2, from: c}\n    c: {dense: 2, from: b}\n"
        "    j: {concat: {}, from: [a, c, y]}\n",
        "b: {dense: 2, from: c}", "in a cycle: b -> c -> b"),
    "add of two shapes": (
        "    a: {dense: 8, from: x}\n    b: {dense: 4, from: y}\n"
        "    j: {add: {}, from: [a, b]}\n",
        "j: {add", "add needs inputs of one shape, got (N, 8) and (N, 4)"),
    "multiply of two shapes": (
        "    j: {multiply: {}, from: [x, y]}\n",
        "j: {multiply", "multiply needs inputs of one shape, got (N, 4) and (N, 3)"),
    "a join of one input": (
        "    a: {dense: 2, from: x}\n    j: {add: {}, from: a}\n"
        "    k: {concat: {}, from: [j, y]}\n",
        "j: {add", "add joins two or more inputs"),
    "shared layer on another shape": (
        "    a: {dense: 2, from: x}\n    b: {share: a, from: y}\n"
        "    j: {concat: {}, from: [a, b]}\n",
        "b: {share", "applies the parameters of 'a' (a.kernel 4x2, a.bias 2) to inputs that "
        "would need 3x2, 2"),
    "input read by no node": (
        "    a: {dense: 2, from: x}\n",
        "y: {shape: [3]}", "input 'y' is read by no node"),
    "node nothing reads": (
        "    a: {dense: 2, from: x}\n    b: {dense: 2, from: y}\n"
        "    j: {concat: {}, from: [a, y]}\n",
        "b: {dense: 2", "nothing reads node 'b'"),
    "inline weights of the wrong shape": (
        "    h: {dense: 2, from: x, weights: {kernel: [[1, 2, 3], [4, 5, 6], [7, 8, 9], [1, 2, 3]],"
        " bias: [0, 0]}}\n    j: {concat: {}, from: [h, y]}\n",
        "h: {dense", "h.kernel: expected 4x2 (4 inputs, 2 units), got 4x3"),
    "inline weights of a parameter the layer lacks": (
        "    h: {dense: 2, from: x, weights: {kernal: [[1, 2], [3, 4], [5, 6], [7, 8]]}}\n"
        "    j: {concat: {}, from: [h, y]}\n",
        "h: {dense", "the layer has no parameter 'kernal'; its parameters are bias, kernel"),
}


@pytest.mark.parametrize("case", CASES)
def test_one_mistake_one_located_message(tmp_path, case):
    nodes, marker, fragment = CASES[case]
    found = problems(tmp_path, nodes)
    assert len(found) == 1, found
    line, message = found[0]
    assert fragment in message
    assert line == line_of(nodes, marker), (line, message)


def test_independent_mistakes_are_all_reported(tmp_path):
    """A join of two shapes and a shared layer applied to another shape on another branch:
    two messages. What reads a failed node is skipped, not reported again."""
    nodes = ("    a: {dense: 8, from: x}\n    b: {dense: 4, from: x}\n"
             "    j: {add: {}, from: [a, b]}\n    after: {dense: 2}\n"
             "    s: {share: a, from: y}\n    k: {concat: {}, from: [after, s]}\n")
    found = problems(tmp_path, nodes)
    assert [line for line, _ in found] == [line_of(nodes, "j: {add"),
                                          line_of(nodes, "s: {share")], found
    assert "(N, 8) and (N, 4)" in found[0][1] and "applies the parameters of 'a'" in found[1][1]


def test_inline_weights_past_the_cap_ask_for_a_file(tmp_path):
    kernel = np.zeros((4, 1100)).tolist()
    nodes = (f"    h: {{dense: 1100, from: x, weights: {{kernel: {kernel}}}}}\n"
             "    j: {concat: {}, from: [h, y]}\n")
    found = problems(tmp_path, nodes)
    assert len(found) == 1 and "save them in an .npz" in found[0][1], found


def test_a_weights_file_with_another_sha256_is_refused(tmp_path):
    np.savez(tmp_path / "w.npz", kernel=np.ones((4, 2), np.float32),
             bias=np.zeros(2, np.float32))
    digest = hashlib.sha256((tmp_path / "w.npz").read_bytes()).hexdigest()
    good = ("    h: {dense: 2, from: x, weights: {file: w.npz, sha256: %s}}\n"
            "    j: {concat: {}, from: [h, y]}\n")
    path = tmp_path / "broken.yaml"
    path.write_text(HEAD + good % digest, encoding="utf-8")
    load_spec(path)  # the right digest loads
    found = problems(tmp_path, good % ("ab" * 32))
    assert len(found) == 1 and f"w.npz has SHA-256 {digest}, the spec expects" in found[0][1], found
