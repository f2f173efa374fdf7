"""Turn jsonschema's errors into located, human diagnostics.

One function per kind of violation; each names the place (file:line:col and
the JSON path), what was expected, what was found, and a "did you mean" where
a name was misspelled.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from dlspec.errors import Location, SpecError, path_str

_KINDS = {  # what a name at the end of a path is, for messages
    "activation": "activation", "initializer": "initializer", "bias_initializer": "initializer",
    "loss": "loss", "metrics": "metric", "optimizer": "optimizer", "layers": "layer type",
    "preprocess": "preprocessing step",
}
_JSON_TYPES = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "null"}
_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "boolean": "true or false", "integer": "an integer", "number": "a number",
               "null": "null (empty)"}


def _is_number(checker, inst) -> bool:
    # JSON has no NaN or infinity; YAML 1.2's .nan would slip past every bound
    return isinstance(inst, (int, float)) and not isinstance(inst, bool) and \
        (isinstance(inst, int) or math.isfinite(inst))


def _is_integer(checker, inst) -> bool:
    # JSON Schema calls 8.0 an integer, but YAML 1.2 reads it as a float and the
    # engine needs an int (shapes, epochs, batch sizes)
    return isinstance(inst, int) and not isinstance(inst, bool)


_Validator = validators.extend(Draft202012Validator, type_checker=Draft202012Validator
                               .TYPE_CHECKER.redefine_many({"number": _is_number,
                                                            "integer": _is_integer}))


def did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


MAX_LISTED = 20  # names listed from a long vocabulary (a data file's columns)


def listing(options: Iterable, limit: int | None = None) -> str:
    """``a, b, c``; past ``limit`` names, the first ones and how many there are in all."""
    options = [str(o) for o in options]
    if limit is None or len(options) <= limit:
        return ", ".join(options)
    return ", ".join(options[:limit]) + f", ... ({len(options)} in all)"


def spec_error(locate: Callable[[tuple, bool], Location], path: tuple, message: str,
               code: str, key: bool = False) -> SpecError:
    """A SpecError located at ``path`` of the canonical spec (at its key with ``key``),
    named by its path as written in the file (``locate.written``, where it has one)."""
    written = getattr(locate, "written", None)
    shown = written(path) if written else path
    return SpecError(message, locate(path, key), path=path_str(shown), code=code)


def missing_column(locate, path: tuple, col: str, header: Iterable[str],
                   source: str) -> SpecError:
    """``col``, named at ``path``, is not a column of ``source``."""
    header = list(header)
    return spec_error(locate, path, f"column '{col}' is not in {source}"
                      f"{did_you_mean(col, header)}; its columns: "
                      f"{listing(header, MAX_LISTED)}", "semantic-column")


def named_columns_missing(data: dict, header: Iterable[str], source: str,
                          locate) -> list[SpecError]:
    """The target, ``drop`` and ``features`` columns a spec's data section names that the
    source's header lacks."""
    header = list(header)
    out = []
    if "target" in data and data["target"] not in header:
        out.append(missing_column(locate, ("data", "target"), data["target"], header, source))
    for key in ("drop", "features"):
        for i, col in enumerate(data[key] or []):
            if col not in header:
                out.append(missing_column(locate, ("data", key, i), col, header, source))
    return out


def _found(value) -> str:
    if isinstance(value, (dict, list)):
        return _JSON_TYPES[type(value)]
    text = repr(value) if isinstance(value, str) else str(value).lower() \
        if isinstance(value, bool) or value is None else str(value)
    return f"{_JSON_TYPES.get(type(value), type(value).__name__)} {text}" \
        if value is not None else "null"


def _kind(path: tuple) -> str | None:
    for p in reversed(path):
        if isinstance(p, str):
            return _KINDS.get(p)
    return None


def schema_errors(data, schema: dict, locate: Callable[[tuple, bool], Location]) -> list[SpecError]:
    """Every schema violation in ``data``, each located with ``locate(path, key)``; one
    message per mistake (see ``_one_per_place``)."""
    out: list[SpecError] = []
    for err in _one_per_place(_Validator(schema).iter_errors(data)):
        out.extend(_translate(err, locate))
    return out


_VALUE_CHECKS = frozenset({"enum", "const", "minimum", "maximum", "exclusiveMinimum",
                           "exclusiveMaximum", "multipleOf", "pattern", "minLength", "maxLength",
                           "minItems", "maxItems", "uniqueItems", "format"})


def _one_per_place(errors: Iterable[ValidationError]) -> list[ValidationError]:
    """A value of the wrong type fails its value checks too (``initializer: {constant: 1}``
    is not a string, nor one of the names): keep the type error alone at that place (its
    message lists the names, see ``_translate``)."""
    errors = list(errors)
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    return [e for e in errors
            if not (e.validator in _VALUE_CHECKS and tuple(e.absolute_path) in mistyped)]


def _translate(err: ValidationError, locate) -> list[SpecError]:
    path = tuple(err.absolute_path)
    v, inst, sch = err.validator, err.instance, err.schema

    def diag(message, p=path, key=False, code=f"schema-{v}"):
        return SpecError(message, locate(p, key), path=path_str(p), code=code)

    if v in ("oneOf", "anyOf"):
        return _best_branch(err, locate)
    if v == "additionalProperties":
        allowed = list(sch.get("properties", {}))
        kind = _kind(path) if sch.get("maxProperties") == 1 else None
        return [diag(f"unknown {kind or 'key'} {k!r}" + did_you_mean(k, allowed)
                     + (f"; expected one of: {listing(sorted(allowed))}" if kind else
                        f"; allowed here: {listing(allowed)}"),
                     path + (k,), key=True, code="schema-unknown-key")
                for k in inst if k not in sch.get("properties", {})]
    if v == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        if _misspelled(missing, inst, sch):
            return []  # the unknown key's message says it (did you mean '<missing>'?)
        # at the key of the mapping that lacks it: a block mapping's value mark is
        # its first child's line, which would blame an unrelated key
        return [diag(f"missing required key '{missing}'", key=True)]
    if v == "type":
        want = sch["type"] if isinstance(sch["type"], list) else [sch["type"]]
        if "number" in want and isinstance(inst, float) and not math.isfinite(inst):
            return [diag(f"expected a finite number, got {inst}")]
        if "enum" in sch:  # a name was expected: say which ones (_one_per_place)
            kind = _kind(path)
            return [diag(f"expected {'an' if (kind or 'a')[0] in 'aeiou' else 'a'} "
                         f"{kind or 'value'} name, got {_found(inst)}; one of: "
                         f"{', '.join(str(o) for o in sch['enum'])}",
                         code="schema-unknown-name")]
        return [diag(f"expected {' or '.join(_TYPE_WORDS[t] for t in want)}, got {_found(inst)}")]
    if v == "enum":
        kind = _kind(path) or "value"
        options = [str(o) for o in sch["enum"]]
        hint = did_you_mean(inst, options) if isinstance(inst, str) else ""
        return [diag(f"unknown {kind} {inst!r}{hint}; expected one of: "
                     f"{', '.join(options)}", code="schema-unknown-name")]
    if v == "const":
        return [diag(f"expected {sch['const']!r}, got {_found(inst)}")]
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
              "exclusiveMaximum": "<"}[v]
        return [diag(f"must be {op} {sch[v]}, got {inst}")]
    if v in ("minProperties", "maxProperties") and sch.get("maxProperties") == 1:
        kind = (_kind(path) or "entry").removesuffix(" type")  # a layer, not a layer type
        article = "an" if kind[0] in "aeiou" else "a"
        example = next(iter(sch.get("properties", {"name": None})))
        return [diag(f"{article} {kind} is written as one key naming it (e.g. '{example}: ...'); "
                     f"got {len(inst)} keys: {', '.join(inst) or 'none'}")]
    if v in ("minItems", "maxItems"):
        return [diag(f"needs {'at least' if v == 'minItems' else 'at most'} {sch[v]} "
                     f"item(s), got {len(inst)}")]
    if v in ("minLength", "maxLength"):
        return [diag(f"needs {'at least' if v == 'minLength' else 'at most'} {sch[v]} "
                     f"character(s), got {len(inst)}")]
    if v == "pattern":
        return [diag(f"{inst!r} is not a valid name (letters, digits, '_', '.', '-'; "
                     f"pattern {sch['pattern']})")]
    if v == "uniqueItems":
        seen, dup = set(), None
        for x in inst:
            if repr(x) in seen:
                dup = x
                break
            seen.add(repr(x))
        return [diag(f"{dup!r} is listed twice")]
    return [diag(err.message)]


def _misspelled(missing: str, inst, sch: dict) -> bool:
    """Whether a key of ``inst`` that the schema does not allow is ``missing`` misspelled."""
    if not isinstance(inst, dict) or sch.get("additionalProperties") is not False:
        return False
    unknown = [k for k in inst if k not in sch.get("properties", {})]
    return any(difflib.get_close_matches(str(k), [missing], n=1, cutoff=0.6) for k in unknown)


def _matches_type(branch: dict, inst) -> bool:
    t = branch.get("type")
    if t is None:
        return True
    ts = t if isinstance(t, list) else [t]
    for name in ts:
        if name == "object" and isinstance(inst, dict) or name == "array" and \
                isinstance(inst, list) or name == "string" and isinstance(inst, str) or \
                name == "null" and inst is None or name == "boolean" and isinstance(inst, bool):
            return True
        if name in ("integer", "number") and isinstance(inst, (int, float)) and \
                not isinstance(inst, bool):
            return name == "number" or float(inst).is_integer()
    return False


def _best_branch(err: ValidationError, locate) -> list[SpecError]:
    """Report the errors of the branch the value was evidently meant for."""
    branches = err.schema[err.validator]
    by_branch: dict[int, list[ValidationError]] = {}
    for sub in err.context:
        by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [i for i, b in enumerate(branches) if _matches_type(b, err.instance)]
    for i in fitting:
        if by_branch.get(i):
            return [d for sub in _one_per_place(by_branch[i]) for d in _translate(sub, locate)]
    path = tuple(err.absolute_path)
    kinds = []
    for b in branches:
        t = b.get("type", "value")
        kinds.extend(t if isinstance(t, list) else [t])
    words = [_TYPE_WORDS.get(k, k) for k in dict.fromkeys(kinds)]
    if fitting:  # the value fits a branch's type but matched two: ambiguous schema
        return [SpecError(err.message, locate(path, False), path=path_str(path),
                          code="schema-oneOf")]
    return [SpecError(f"expected {' or '.join(words)}, got {_found(err.instance)}",
                      locate(path, False), path=path_str(path), code="schema-type")]
