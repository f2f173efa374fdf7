"""Property: any mutation of a valid spec resolves to a Spec or to located Diagnostics.

Each example starts from one of the specs in specs/, loaded with its marks,
and applies one to three random mutations to ``loaded.data``: delete a key or
list item at any depth, replace a value with one of another type, misspell a
key or a string value, or set a number far out of range. ``resolve`` must then
return a Spec or raise Diagnostics whose every item is located in the file
(line >= 1, col >= 1); any other exception is a bug.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlspec.errors import Diagnostic, Diagnostics
from dlspec.spec.load import resolve
from dlspec.spec.model import Spec
from dlspec.spec.yamlload import load_yaml

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))

OTHER_VALUES = [None, True, False, 0, 1, -1, 3, 0.5, -2.5, 8.0, "", "x", "relu", "dense",
                "val_loss", "all", [], [1, "a"], [{"dense": 1}], {}, {"a": 1}, {"dense": None},
                float("nan"), float("inf"), 2**70, "y" * 300]
FAR_NUMBERS = [-(10**9), 10**12, 2**70, -(2**70), 2**64 - 1, 1e300, -1e300, float("inf"),
               float("-inf"), float("nan"), -0.0, 1e-320, -1, 0]


def paths(data) -> list[tuple]:
    """Every path in ``data`` (the root is ``()``), depth first."""
    out, stack = [], [()]
    while stack:
        path = stack.pop()
        out.append(path)
        node = get(data, path)
        if isinstance(node, dict):
            stack.extend((*path, k) for k in node)
        elif isinstance(node, list):
            stack.extend((*path, i) for i in range(len(node)))
    return out


def get(data, path: tuple):
    for p in path:
        data = data[p]
    return data


def same_type(a, b) -> bool:
    return type(a) is type(b)


def misspell(draw, word: str) -> str:
    if not word:
        return "x"
    i = draw(st.integers(0, len(word) - 1))
    how = draw(st.sampled_from(["drop", "double", "swap", "insert", "case"]))
    if how == "drop" and len(word) > 1:
        return word[:i] + word[i + 1:]
    if how == "swap" and i + 1 < len(word) and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if how == "insert":
        return word[:i] + draw(st.sampled_from("aeiou_-1")) + word[i:]
    if how == "case" and word[i].lower() != word[i].upper():
        return word[:i] + word[i].swapcase() + word[i + 1:]
    return word[:i] + word[i] + word[i:]  # double a letter


def mutate(draw, data):
    """One mutation of ``data``, in place where possible; returns the (new) data."""
    every = paths(data)
    kind = draw(st.sampled_from(["delete", "retype", "misspell", "far"]))
    if kind == "delete":
        inner = [p for p in every if p]
        if not inner:
            return data
        path = draw(st.sampled_from(inner))
        del get(data, path[:-1])[path[-1]]
        return data
    if kind == "retype":
        path = draw(st.sampled_from(every))
        old = get(data, path) if path else data
        new = draw(st.sampled_from([v for v in OTHER_VALUES if not same_type(v, old)]))
        return set_at(data, path, copy.deepcopy(new))  # later mutations may edit it in place
    if kind == "misspell":
        names = [p for p in every if p and isinstance(p[-1], str)]
        words = [p for p in every if isinstance(get(data, p), str)]
        choices = [("key", p) for p in names] + [("value", p) for p in words]
        if not choices:
            return data
        what, path = draw(st.sampled_from(choices))
        if what == "value":
            return set_at(data, path, misspell(draw, get(data, path)))
        parent, key = get(data, path[:-1]), path[-1]
        new_key = misspell(draw, key)
        if new_key != key:
            # keep the key order, so the mutation is all that changes
            items = [(new_key if k == key else k, v) for k, v in parent.items()]
            parent.clear()
            parent.update(items)
        return data
    numbers = [p for p in every if isinstance(get(data, p), (int, float))
               and not isinstance(get(data, p), bool)]
    path = draw(st.sampled_from(numbers or every))
    return set_at(data, path, draw(st.sampled_from(FAR_NUMBERS)))


def set_at(data, path: tuple, value):
    if not path:
        return value
    get(data, path[:-1])[path[-1]] = value
    return data


def check(path: Path, draw) -> None:
    loaded = load_yaml(path.read_text(encoding="utf-8"), str(path))
    data = loaded.data
    for _ in range(draw(st.integers(1, 3))):
        data = mutate(draw, data)
    loaded.data = data
    try:
        spec = resolve(loaded, base=path.parent)
    except Diagnostics as exc:
        assert exc.items, "Diagnostics with no items"
        for d in exc.items:
            assert isinstance(d, Diagnostic), repr(d)
            loc = d.location
            assert loc is not None, f"unlocated: {d}"
            assert loc.file == str(path), str(d)
            assert loc.line >= 1 and loc.col >= 1, f"no line/column: {d}"
            assert d.message, repr(d)
        return
    assert isinstance(spec, Spec)
    assert spec.sha256  # the resolved form hashes


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_spec_resolves_or_reports_located_diagnostics(path: Path, data):
    check(path, data.draw)


def test_there_are_specs_to_mutate():
    assert len(SPECS) >= 2
