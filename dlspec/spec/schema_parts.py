"""Small builders the spec format's JSON Schema is written with."""

from __future__ import annotations

SHA_EXAMPLE = "ee2a5c9d6daf3aed0d91c4d883a84ebb77d271447bebc0f0c80aafb0f288ceab"


def d(schema: dict, description: str, example=None, **extra) -> dict:
    out = {**schema, "description": description, **extra}
    if example is not None:
        out["examples"] = [example]
    return out


def columns(description: str, example: list) -> dict:
    return d({"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True,
               "maxItems": 100_000}, description, example)


def one_key(entries: dict[str, dict], what: str) -> dict:
    """An object with exactly one key naming the entry (``{adam: {lr: 0.01}}``)."""
    return {"type": "object", "minProperties": 1, "maxProperties": 1,
            "properties": entries, "additionalProperties": False,
            "description": f"one {what}, written as a single key"}


def params_object(props: dict, required=()) -> dict:
    out = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out
