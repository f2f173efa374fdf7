"""Hostile specs through `dlspec validate`: each refused in under a second, with little
memory, a located message and exit code 1 (the done-means of the spec-review issue)."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from typer.testing import CliRunner

from dlspec.cli import app

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "\n".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ",".join([f"*{chr(97 + i)}"] * 9) + "]"
    for i in range(8)) + "\n"

HUGE_MODEL = """\
dlspec: 1
name: huge
data: {source: data.csv, target: y}
model:
  layers:
""" + "    - dense: 1000000\n" * 250 + """\
    - dense: {units: 1, activation: sigmoid}
train: {loss: binary_crossentropy}
"""

BOMBS = {
    "billion_laughs": (LAUGHS, "expands to more than 100000 values through aliases"),
    "deep_nesting": ("a: " + "[" * 100_000 + "\n", "nested deeper than 64 levels"),
    "ten_megabytes": ("a: '" + "x" * 10_000_000 + "'\n", "larger than the limit"),
    "python_object": ('dlspec: 1\nname: !!python/object/apply:os.system ["echo pwned"]\n',
                      "tag !!python/object/apply:os.system is not allowed"),
    "many_values": ("\n".join(f"k{i}: [1, 2, 3]" for i in range(50_000)) + "\n",
                    "more than 100000 values"),
    "petabyte_model": (HUGE_MODEL, "a training step needs about"),
}


@pytest.fixture(scope="module")
def warm():
    """Import what validate imports once, so the timing below is the refusal's own."""
    from tests.conftest import SPECS

    CliRunner().invoke(app, ["validate", str(SPECS / "breast_cancer.yaml")])


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_is_refused_fast_with_little_memory(tmp_path, name, warm):
    text, fragment = BOMBS[name]
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    runner = CliRunner()
    start = time.perf_counter()
    r = runner.invoke(app, ["validate", str(spec)])
    seconds = time.perf_counter() - start
    tracemalloc.start()  # a second run for memory: tracemalloc slows Python down
    runner.invoke(app, ["validate", str(spec)])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert r.exit_code == 1, r.output
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"{spec}:") and fragment in first, first
    assert "Traceback" not in r.output
    assert seconds < 1.0, f"{name} took {seconds:.2f} s"
    assert peak < 50 * 2**20, f"{name} allocated {peak / 2**20:.0f} MiB"


def test_petabyte_model_names_the_numbers(tmp_path):
    spec = tmp_path / "huge.yaml"
    spec.write_text(HUGE_MODEL)
    r = CliRunner().invoke(app, ["validate", str(spec)])
    assert "PiB" in r.stderr and "--max-memory" in r.stderr
    assert f"{spec}:7:7: model.layers[1]:" in r.stderr
