"""Commented YAML, written line by line: the spec ``dlspec init`` writes.

A generic YAML dumper drops comments, and comments are the point here: every
choice is explained beside the line it made. Scalars are written plain where
dlspec's own YAML 1.2 loader and PyYAML (YAML 1.1, as editors read it) both
read them back as the same string, and double-quoted (JSON) otherwise.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field

import yaml

WIDTH = 100         # lines are wrapped to this width
COMMENT_AT = 36     # column where inline comments start, where the code leaves room
_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./ ()=+-]*")
# What JSON leaves as it is but YAML refuses (outside its printable set) or reads as a
# line break (NEL, LS, PS), which a quoted scalar folds into a space.
_UNPRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufffe\uffff]")
_PLAIN_BLOCK = re.compile(r"[A-Za-z0-9_./(][^\n#'\"]*")  # outside [] and {}: commas are fine


def scalar(value, *, block: bool = False) -> str:
    """One value as YAML flow text: numbers, booleans, null, strings, lists, mappings.

    ``block``: the value stands alone after ``key:`` (not inside [] or {}), where a
    plain string may hold commas.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {scalar(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = _PLAIN_BLOCK if block else _PLAIN
    if plain.fullmatch(text) and text == text.strip() and _reads_back(text):
        return text
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}",
                            json.dumps(text, ensure_ascii=False))


def _reads_back(text: str) -> bool:
    from dlspec.spec.yamlload import load_yaml

    try:
        return yaml.safe_load(f"v: {text}")["v"] == text and \
            load_yaml(f"v: {text}", "<scalar>").data["v"] == text
    except Exception:  # noqa: BLE001 - anything unreadable is simply quoted
        return False


@dataclass
class SpecText:
    """Lines of YAML, each with an optional comment, rendered with aligned comments."""

    rows: list[tuple[int, str, str]] = field(default_factory=list)  # (indent, code, comment)

    def line(self, indent: int, code: str, comment: str = "") -> None:
        """``code`` at ``indent`` spaces, with ``comment`` beside it (or above, if long)."""
        self.rows.append((indent, code, comment))

    def note(self, indent: int, text: str) -> None:
        """A comment on lines of its own, wrapped."""
        self.rows.append((indent, "", text))

    def render(self) -> str:
        out: list[str] = []
        for indent, code, comment in self.rows:
            pad = " " * indent
            if not code:
                out += _wrap(pad, comment)
                continue
            text = pad + code
            if not comment:
                out.append(text)
                continue
            at = max(COMMENT_AT, len(text) + 2)
            if at + 2 + len(comment) <= WIDTH:
                out.append(f"{text.ljust(at)}# {comment}")
            else:
                out += _wrap(pad, comment)
                out.append(text)
        return "\n".join(out) + "\n"


def _wrap(pad: str, text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=pad + "# ",
                         subsequent_indent=pad + "# ", break_on_hyphens=False,
                         break_long_words=False) or [pad + "#"]
