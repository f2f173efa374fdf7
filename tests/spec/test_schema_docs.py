"""The published schema documents every field: a description and an example each."""

from __future__ import annotations

import json

import jsonschema

from dlspec.spec.schema import schema_path


def _properties(node, path=""):
    if isinstance(node, dict):
        for k, v in node.get("properties", {}).items():
            yield f"{path}/{k}", v
            yield from _properties(v, f"{path}/{k}")
        for key in ("oneOf", "anyOf"):
            for i, v in enumerate(node.get(key, [])):
                yield from _properties(v, f"{path}/{key}[{i}]")
        if isinstance(node.get("items"), dict):
            yield from _properties(node["items"], f"{path}/items")


def test_every_field_has_a_description_and_an_example():
    schema = json.loads(schema_path().read_text())
    undocumented = [p for p, v in _properties(schema)
                    if not v.get("description") or ("examples" not in v and "const" not in v)]
    assert not undocumented, undocumented


def test_examples_are_valid_values_of_their_field():
    schema = json.loads(schema_path().read_text())
    bad = []
    for path, v in _properties(schema):
        for example in v.get("examples", []):
            sub = {k: x for k, x in v.items() if k not in ("examples", "default")}
            if isinstance(example, str) and example.endswith("..."):
                continue  # elided hashes and free text
            try:
                jsonschema.validate(example, sub)
            except jsonschema.ValidationError as e:
                bad.append((path, example, e.message))
    assert not bad, bad
