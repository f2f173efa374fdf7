"""Tests for dlspec.spec.yamlload: safe, bounded, located YAML loading."""

from __future__ import annotations

import math
import os
import time
import tracemalloc

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlspec.errors import Diagnostics, Location, SpecError
from dlspec.spec.yamlload import (
    Limits,
    Loaded,
    Resolver12,
    SpecLoader,
    load_yaml,
    load_yaml_file,
)

F = "spec.yaml"
DEFAULT = Limits()


def errors(text: str | bytes, limits: Limits = DEFAULT) -> list[SpecError]:
    with pytest.raises(Diagnostics) as info:
        load_yaml(text, F, limits)
    for item in info.value.items:
        assert isinstance(item, SpecError)
        assert item.location.file == F and item.location.line >= 1 and item.location.col >= 1
    return info.value.items


def one_error(text: str | bytes, code: str, limits: Limits = DEFAULT) -> SpecError:
    (item,) = errors(text, limits)
    assert item.code == code, str(item)
    return item


def at(item: SpecError) -> tuple[int, int]:
    return item.location.line, item.location.col


def value(text: str):
    return load_yaml(f"v: {text}\n", F).data["v"]


# --- the loader class and the YAML 1.2 core schema -------------------------------------------


def test_loader_is_a_pure_python_safe_loader_with_the_12_resolver():
    assert issubclass(SpecLoader, yaml.SafeLoader)
    assert not issubclass(SpecLoader, getattr(yaml, "CSafeLoader", ()))
    assert issubclass(Resolver12, yaml.resolver.BaseResolver)
    assert not issubclass(Resolver12, yaml.resolver.Resolver)
    # YAML 1.1 booleans such as yes/on have no resolver at all
    assert "y" not in SpecLoader.yaml_implicit_resolvers
    assert "o" not in SpecLoader.yaml_implicit_resolvers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e-3", 0.001), ("1E3", 1000.0), (".5", 0.5), ("-2.5e+4", -25000.0), ("1.", 1.0),
        ("+1.5", 1.5), (".inf", math.inf), ("-.inf", -math.inf), ("+.INF", math.inf),
        ("1e999999", math.inf), ("0x1F", 31), ("0o17", 15), ("010", 10), ("-7", -7), ("+5", 5),
        ("0", 0), ("true", True), ("True", True), ("TRUE", True), ("false", False),
        ("False", False), ("FALSE", False), ("null", None), ("Null", None), ("NULL", None),
        ("~", None), ("", None), ("yes", "yes"), ("no", "no"), ("on", "on"), ("off", "off"),
        ("y", "y"), ("n", "n"), ("Yes", "Yes"), ("1_000", "1_000"), ("1:30", "1:30"),
        ("0b11", "0b11"), ("-0x1F", "-0x1F"), ("0o19", "0o19"), ("12e", "12e"),
        ("2001-12-14", "2001-12-14"), ("2001-12-14 21:59:43", "2001-12-14 21:59:43"),
        ("'1'", "1"), ('"true"', "true"), ("'null'", "null"), ("<<", "<<"), ("=", "="),
        ("!!str 12", "12"), ("!!int '12'", 12), ("!!float 1", 1.0), ("!!bool 'true'", True),
        ("!!null ''", None), ("! 12", "12"),
    ],
)
def test_scalars_follow_yaml_12_core_schema(text, expected):
    got = value(text)
    assert got == expected and type(got) is type(expected)


def test_nan():
    assert math.isnan(value(".nan")) and math.isnan(value(".NaN"))


def test_on_and_yes_are_plain_string_keys():
    assert load_yaml("on: 1\nyes: 2\nno: 3\n", F).data == {"on": 1, "yes": 2, "no": 3}


@pytest.mark.parametrize("text", ["!!bool yes", "!!int 1_000", "!!float abc", "!!null 0"])
def test_explicit_standard_tag_with_wrong_text_is_an_error(text):
    item = one_error(f"v: {text}\n", "yaml-tag")
    assert at(item) == (1, 4)


# --- tags: nothing but plain data, nothing runs ------------------------------------------


def test_python_object_apply_is_refused_and_nothing_runs(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd))
    item = one_error('a: 1\nrun: !!python/object/apply:os.system ["echo hi"]\n', "yaml-tag")
    assert at(item) == (2, 6)
    assert "!!python/object/apply:os.system" in item.message
    assert calls == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: !custom x\n", (1, 4)),
        ("a: !!python/name:os.system\n", (1, 4)),
        ("a:\n  - !!binary aGk=\n", (2, 5)),
        ("a: !!timestamp 2001-12-14\n", (1, 4)),
        ("a: !!set {x: null}\n", (1, 4)),
        ("a: !!omap [{x: 1}]\n", (1, 4)),
        ("a: !!python/object:collections.OrderedDict {x: 1}\n", (1, 4)),
        ("a: !!str {x: 1}\n", (1, 4)),
        ("a: !!map [1]\n", (1, 4)),
        ("!custom k: v\n", (1, 1)),
        ("%TAG !! tag:evil.com,2000:\n---\na: !!str x\n", (3, 4)),
    ],
)
def test_non_standard_tags_are_refused_with_their_location(text, where):
    assert at(one_error(text, "yaml-tag")) == where


# --- limits, checked before anything is built ------------------------------------------------


def _laughs(levels: int = 9, width: int = 9) -> str:
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_fast_with_little_memory():
    text = _laughs()
    start = time.perf_counter()
    item = one_error(text, "yaml-nodes")
    assert time.perf_counter() - start < 1.0
    assert item.location.line > 1
    tracemalloc.start()
    try:
        one_error(text, "yaml-nodes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 * 2**20


def test_small_expansion_loads_and_limit_is_exact():
    text = "a: &a [1, 2]\nb: [*a, *a]\n"  # root, 2 keys, a (3), b (1 + 3 + 3): 13 nodes
    assert load_yaml(text, F, Limits(max_nodes=13)).data == {"a": [1, 2], "b": [[1, 2], [1, 2]]}
    one_error(text, "yaml-nodes", Limits(max_nodes=12))


def test_too_many_plain_nodes_are_refused_while_composing():
    text = "a: [" + ", ".join(["0"] * 50) + "]\n"
    item = one_error(text, "yaml-nodes", Limits(max_nodes=20))
    assert item.location.line == 1


@pytest.mark.parametrize("kind", ["flow", "block"])
def test_depth_limit_is_exact(kind):
    def nested(depth: int) -> str:
        if kind == "flow":
            return "a: " + "[" * (depth - 1) + "]" * (depth - 1) + "\n"
        keys = "".join("  " * i + f"k{i}:\n" for i in range(depth - 1))  # + a mapping each
        return keys + "  " * (depth - 1) + "x: 1\n"

    lim = Limits(max_depth=10)
    load_yaml(nested(10), F, lim)
    item = one_error(nested(11), "yaml-depth", lim)
    assert "deeper than 10" in item.message


def test_default_depth_64_is_allowed():
    load_yaml("a: " + "[" * 63 + "]" * 63 + "\n", F)
    one_error("a: " + "[" * 64 + "]" * 64 + "\n", "yaml-depth")


def test_100k_nested_brackets_are_refused_fast():
    start = time.perf_counter()
    item = one_error("[" * 100_000, "yaml-depth")
    assert time.perf_counter() - start < 1.0
    assert at(item) == (1, 65)


def test_recursion_error_inside_pyyaml_becomes_a_located_error():
    # with the depth limit lifted, Python's own recursion limit is hit: still no traceback
    item = one_error("[" * 5000, "yaml-depth", Limits(max_depth=10**6))
    assert item.location.line == 1


@pytest.mark.parametrize(
    "exc", [ValueError("x"), OverflowError(), UnicodeDecodeError("utf-8", b"", 0, 1, "x")]
)
def test_any_other_exception_inside_pyyaml_becomes_a_located_error(monkeypatch, exc):
    def explode(self):
        self.forward(3)
        raise exc

    monkeypatch.setattr(SpecLoader, "get_single_node", explode)
    item = one_error("a:\n  b: 1\n", "yaml-syntax")
    assert at(item) == (2, 1) and type(exc).__name__ in item.message


def test_alias_limit_is_exact():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 5) + "]\n"
    load_yaml(text, F, Limits(max_aliases=5))
    item = one_error(text, "yaml-aliases", Limits(max_aliases=4))
    assert at(item) == (2, 1 + len("b: [*a, *a, *a, *a, "))


def test_default_alias_limit():
    text = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    one_error(text, "yaml-aliases")


@pytest.mark.parametrize(
    ("text", "where"), [("a: &a [*a]\n", (1, 8)), ("a: &x {b: {c: *x}}\n", (1, 15))]
)
def test_recursive_alias_is_refused(text, where):
    assert at(one_error(text, "yaml-aliases")) == where


def test_ten_megabyte_string_is_refused_by_size(tmp_path):
    big = "a: " + "x" * (10 * 2**20) + "\n"
    start = time.perf_counter()
    item = one_error(big, "yaml-size")
    assert at(item) == (1, 1)
    one_error(big.encode(), "yaml-size")
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(Diagnostics) as info:
        load_yaml_file(path)
    (item,) = info.value.items
    assert item.code == "yaml-size" and item.location == Location(str(path), 1, 1)
    assert time.perf_counter() - start < 1.0


def test_size_limit_counts_utf8_bytes():
    text = "a: " + "é" * 5 + "\n"  # 14 bytes, 9 characters
    load_yaml(text, F, Limits(max_bytes=14))
    one_error(text, "yaml-size", Limits(max_bytes=13))


@pytest.mark.parametrize("digits", [101, 100_000])
def test_huge_integers_are_refused(digits):
    item = one_error(f"a: 1\nb: {'9' * digits}\n", "yaml-number")
    assert at(item) == (2, 4) and item.message.startswith("number too large")


def test_hundred_digit_integer_is_fine():
    assert value("9" * 100) == int("9" * 100)
    one_error("a: 0x" + "f" * 101 + "\n", "yaml-number")


# --- anchors, aliases and merge keys ------------------------------------------------------


def test_anchors_aliases_and_merge_keys_load():
    text = """\
base: &base {units: 8, activation: relu}
extra: &extra {dropout: 0.5, units: 99}
layers:
  - <<: *base
    units: 16
  - <<: [*base, *extra]
  - *base
"""
    data = load_yaml(text, F).data
    assert data["layers"] == [
        {"units": 16, "activation": "relu"},
        {"units": 8, "activation": "relu", "dropout": 0.5},
        {"units": 8, "activation": "relu"},
    ]


def test_alias_value_is_located_at_the_alias():
    loaded = load_yaml("a: &a [1]\nb: *a\nc:\n  - *a\n", F)
    assert loaded.value_marks[("b",)] == (2, 4)
    assert loaded.value_marks[("c", 0)] == (4, 5)
    assert loaded.value_marks[("b", 0)] == (1, 8)  # inside: where it was written


@pytest.mark.parametrize("text", ["a: &a 1\nb:\n  <<: *a\n", "b:\n  <<: [1]\n"])
def test_merging_a_non_mapping_is_an_error(text):
    one_error(text, "yaml-merge")


# --- keys -------------------------------------------------------------------------------


def test_duplicate_key_message_and_location():
    text = "model:\n  layers: 1\n  layers: 2\n"
    item = one_error(text, "yaml-duplicate-key")
    assert item.message == "duplicate key 'layers' (first defined at line 2)"
    assert str(item) == "spec.yaml:3:3: duplicate key 'layers' (first defined at line 2)"


def test_all_duplicate_keys_are_reported_at_any_depth():
    text = """\
a: 1
a: 2
b:
  - {x: 1, y: 2, x: 3}
  - c:
      d: 1
      d: 2
"""
    items = errors(text)
    assert [(i.code, at(i)) for i in items] == [
        ("yaml-duplicate-key", (2, 1)),
        ("yaml-duplicate-key", (4, 18)),
        ("yaml-duplicate-key", (7, 7)),
    ]
    assert "first defined at line 6" in items[2].message


def test_duplicate_merge_key():
    one_error("a: &a {x: 1}\nb:\n  <<: *a\n  <<: *a\n", "yaml-duplicate-key")


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("1: x\n", (1, 1)),
        ("a: {true: x}\n", (1, 5)),
        ("null: x\n", (1, 1)),
        ("a:\n  1.5: x\n", (2, 3)),
        ("? [a]\n: x\n", (1, 3)),
        ("? {a: 1}\n: x\n", (1, 3)),
        ("a:\n  - ? \n    : x\n", (2, 6)),
    ],
)
def test_keys_must_be_strings(text, where):
    item = one_error(text, "yaml-key")
    assert item.message.startswith("keys must be strings") and at(item) == where


def test_quoted_number_key_is_a_string():
    assert load_yaml("'1': x\n", F).data == {"1": "x"}


# --- document shape -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "   \n", "# only a comment\n", "---\n", "--- # c\n...\n", b""]
)
def test_empty_file(text):
    item = one_error(text, "yaml-empty")
    assert item.message == "the file is empty" and at(item) == (1, 1)


def test_multiple_documents():
    item = one_error("a: 1\n---\nb: 2\n", "yaml-multidoc")
    assert item.message == "only one YAML document per file" and at(item) == (2, 1)


@pytest.mark.parametrize(
    ("text", "found"),
    [("- 1\n", "a list"), ("hello\n", "a string"), ("3\n", "a number"), ("--- ~\n", "null"),
     ("true\n", "a boolean")],
)
def test_top_level_must_be_a_mapping(text, found):
    item = one_error(text, "yaml-root")
    assert item.message == f"a spec must be a mapping at the top level, got {found}"


# --- syntax and encoding -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("a:\t1\n", (1, 3), "found character '\\t' that cannot start any token"),
        ("a: 'abc\n", (2, 1), "found unexpected end of stream"),
        ("a: 1\n b: 2\n", (2, 3), "mapping values are not allowed here"),
        ("a:\n  - 1\n - 2\n", (3, 2), "expected <block end>"),
        ("a: *nope\n", (1, 4), "undefined alias"),
        ("a: [1, 2\n", (2, 1), "expected ',' or ']'"),
    ],
)
def test_syntax_errors_are_located(text, where, words):
    item = one_error(text, "yaml-syntax")
    assert at(item) == where and words in item.message


def test_control_character_is_located():
    assert at(one_error("a: 1\nb: x\x00y\n", "yaml-syntax")) == (2, 5)


def test_bad_utf8_is_located():
    item = one_error("a: 1\nb: é\xff\n".encode("latin-1"), "yaml-encoding")
    assert at(item) == (2, 4)


def test_bytes_with_bom_load():
    assert load_yaml(b"\xef\xbb\xbfa: \xc3\xa9\n", F).data == {"a": "é"}


# --- marks ---------------------------------------------------------------------------------


def test_marks_for_the_documented_example():
    loaded = load_yaml("model:\n  layers:\n    - dense: {units: 6}\n", F)
    path = ("model", "layers", 0, "dense", "units")
    assert loaded.value_marks[path] == (3, 22)
    assert loaded.key_marks[path] == (3, 15)
    assert loaded.value_marks[("model", "layers", 0)] == (3, 7)
    assert loaded.key_marks[("model", "layers")] == (2, 3)
    assert loaded.value_marks[()] == (1, 1)


SAMPLE = """\
# comment
name: demo
model:
  input: [4]
  layers:
    - dense: {units: 6, activation: relu}
    - dropout:
        rate: 0.1
    - []
    - {}
    -
  empty:
optimizer: {name: adam, lr: 1e-3}
"""


def _paths(data, path=()):
    yield path, data
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*path, i))


def test_marks_cover_every_node():
    loaded = load_yaml(SAMPLE, F)
    paths = dict(_paths(loaded.data))
    assert set(loaded.value_marks) == set(paths)
    assert set(loaded.key_marks) == {p for p in paths if p and isinstance(p[-1], str)}
    lines = SAMPLE.splitlines()
    for p, (line, col) in loaded.key_marks.items():
        assert lines[line - 1][col - 1:].startswith(p[-1]), p
    assert loaded.value_marks[("model", "layers", 1, "dropout", "rate")] == (8, 15)
    assert loaded.value_marks[("optimizer", "lr")] == (13, 29)
    assert loaded.data["optimizer"]["lr"] == 0.001
    assert list(loaded.data) == ["name", "model", "optimizer"]


def test_location_prefers_key_and_falls_back_to_ancestors():
    loaded = load_yaml(SAMPLE, F)
    assert loaded.location(("model", "layers", 0, "dense", "units")) == Location(F, 6, 22)
    assert loaded.location(("model", "layers", 0, "dense", "units"), key=True) == Location(F, 6, 15)
    assert loaded.location(("model", "layers", 0, "dense", "nope")) == Location(F, 6, 14)
    rate_x = ("model", "layers", 1, "dropout", "rate", "x")
    assert loaded.location(rate_x, key=True) == Location(F, 8, 9)
    assert loaded.location(("model", "layers", 0), key=True) == Location(F, 6, 7)  # no key: value
    assert loaded.location(("nothing", 3)) == Location(F, 2, 1)
    assert isinstance(loaded, Loaded)


# --- files --------------------------------------------------------------------------------


def test_load_yaml_file(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("a: 1\n")
    loaded = load_yaml_file(path)
    assert loaded.data == {"a": 1} and loaded.file == str(path)
    assert load_yaml_file(str(path)).location(("a",)) == Location(str(path), 1, 4)


@pytest.mark.parametrize("make", ["missing", "directory"])
def test_unreadable_paths(tmp_path, make):
    path = tmp_path / "x.yaml"
    if make == "directory":
        path.mkdir()
    with pytest.raises(Diagnostics) as info:
        load_yaml_file(path)
    (item,) = info.value.items
    assert item.code == "file" and item.location == Location(str(path))
    assert item.message.startswith("cannot read the file")


def test_file_with_bad_encoding(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(Diagnostics) as info:
        load_yaml_file(path)
    (item,) = info.value.items
    assert item.code == "yaml-encoding" and item.location == Location(str(path), 2, 4)


# --- hostile input never escapes as anything but Diagnostics -----------------------------------


def _never_crashes(text: str) -> None:
    try:
        loaded = load_yaml(text, F)
    except Diagnostics as exc:
        assert exc.items
        for item in exc.items:
            assert item.location.line >= 1 and item.location.col >= 1, item
    else:
        assert isinstance(loaded.data, dict)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_arbitrary_text_never_crashes(text):
    _never_crashes(text)


YAMLISH = st.lists(
    st.sampled_from(list("{}[]:-&*!|>'\"#,?%@`\n\t ")
                    + ["a", "b", "key", "- ", ": ", "&a ", "*a", "<<", "!!str", "!!int", "!x",
                       "---", "...", "1", "1e3", "0x", "~", "true", "yes", "  ", "\n  "]),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(YAMLISH)
def test_yamlish_text_never_crashes(text):
    _never_crashes(text)
