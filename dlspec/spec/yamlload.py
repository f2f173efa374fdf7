"""Safe, bounded YAML loading for spec files, with line/column marks.

One YAML 1.2 (core schema) document per file, a mapping at the top, string
keys, no duplicate keys, standard tags only. Size, nesting depth, aliases and
node count (after alias expansion) are checked before any value is built.
Every problem is a located ``SpecError`` inside ``Diagnostics``; no other
exception escapes, whatever the input.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    ScalarEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from dlspec.errors import Diagnostics, Location, SpecError

_T = "tag:yaml.org,2002:"
STR, INT, FLOAT, BOOL, NULL = (_T + n for n in ("str", "int", "float", "bool", "null"))
MAP, SEQ, MERGE = _T + "map", _T + "seq", _T + "merge"
MAX_DIGITS = 100  # longer integers are hostile, and int() of them is quadratic

_NULL_RE = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL_RE = re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)\Z")
_FLOAT_RE = re.compile(
    r"(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)

Entry = tuple[str, Node, Node, Any]  # key, key node, value node, value mark


@dataclass(frozen=True)
class Limits:
    """Bounds checked before construction; each refusal is a located error."""

    max_bytes: int = 1 << 20
    max_depth: int = 64
    max_aliases: int = 100
    max_nodes: int = 100_000  # counted after alias expansion


@dataclass
class Loaded:
    """Plain data plus 1-based (line, col) marks keyed by JSON path tuples."""

    data: Any
    file: str
    value_marks: dict[tuple, tuple[int, int]] = field(default_factory=dict)
    key_marks: dict[tuple, tuple[int, int]] = field(default_factory=dict)

    def location(self, path: tuple, key: bool = False) -> Location:
        """Best location for ``path``: its key mark if ``key`` and present, else
        its value mark; a missing path falls back to its nearest ancestor."""
        path = tuple(path)
        while path and path not in self.value_marks:
            path = path[:-1]
        mark = (self.key_marks.get(path) if key else None) or self.value_marks.get(path)
        return Location(self.file, *(mark or (1, 1)))


class Resolver12(BaseResolver):
    """Implicit tags of the YAML 1.2 core schema, plus ``<<`` merge keys.

    Deriving from BaseResolver, not yaml.Resolver, keeps out YAML 1.1's
    yes/no/on/off booleans, sexagesimals, ``1_000``, ``010`` octal and timestamps.
    """


for _tag, _regex, _first in (
    (NULL, _NULL_RE, ["~", "n", "N", ""]),
    (BOOL, _BOOL_RE, list("tTfF")),
    (INT, _INT_RE, list("-+0123456789")),  # before FLOAT: "12" matches both
    (FLOAT, _FLOAT_RE, list("-+.0123456789")),
    (MERGE, re.compile(r"<<\Z"), ["<"]),
):
    Resolver12.add_implicit_resolver(_tag, _regex, _first)


def _error(file: str, message: str, mark: Any, code: str) -> SpecError:
    """A SpecError at a 0-based PyYAML mark (line 1, col 1 when there is none)."""
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return SpecError(message, Location(file, line, col), code=code)


def _fail(file: str, message: str, mark: Any, code: str) -> Diagnostics:
    return Diagnostics([_error(file, message, mark, code)])


class SpecLoader(Resolver12, yaml.SafeLoader):
    """Pure-Python SafeLoader (CLoader crashes on deep nesting) with the 1.2
    resolver, enforcing ``Limits`` while composing. Only its composer is used:
    values are built by ``_Builder``, so no constructor ever runs."""

    def __init__(self, text: str, file: str, limits: Limits) -> None:
        super().__init__(text)
        self.file, self.limits = file, limits
        self.depth = self.aliases = self.nodes = 0
        self.open_anchors: set[str] = set()
        # (id(parent), index or id(key node)) -> where an alias was written
        self.alias_marks: dict[tuple[int, int], Any] = {}

    def get_single_node(self) -> Node:
        self.get_event()  # STREAM-START
        if self.check_event(StreamEndEvent):
            raise _fail(self.file, "the file is empty", None, "yaml-empty")
        root = self.compose_document()
        if not self.check_event(StreamEndEvent):
            mark = self.peek_event().start_mark
            raise _fail(self.file, "only one YAML document per file", mark, "yaml-multidoc")
        if isinstance(root, ScalarNode) and root.tag == NULL and root.value == "" \
                and root.style is None:  # a bare `---`
            raise _fail(self.file, "the file is empty", None, "yaml-empty")
        return root

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event, lim = self.peek_event(), self.limits
        if isinstance(event, AliasEvent):
            self.aliases += 1
            if self.aliases > lim.max_aliases:
                raise _fail(self.file, f"more than {lim.max_aliases} aliases",
                            event.start_mark, "yaml-aliases")
            if event.anchor in self.open_anchors:  # would make a cycle
                raise _fail(self.file, f"alias *{event.anchor} is inside the value it refers to",
                            event.start_mark, "yaml-aliases")
            if parent is not None and index is not None:
                slot = index if isinstance(index, int) else id(index)
                self.alias_marks[(id(parent), slot)] = event.start_mark
            return super().compose_node(parent, index)
        self.nodes += 1
        if self.nodes > lim.max_nodes:
            raise _fail(self.file, f"more than {lim.max_nodes} values in the file",
                        event.start_mark, "yaml-nodes")
        if isinstance(event, ScalarEvent) and event.tag == "!":
            event.tag = STR  # YAML 1.2: `!` makes a scalar a string; PyYAML would resolve it
        nested = isinstance(event, CollectionStartEvent)
        self.depth += nested
        if self.depth > lim.max_depth:  # stops long before Python's recursion limit
            raise _fail(self.file, f"nested deeper than {lim.max_depth} levels",
                        event.start_mark, "yaml-depth")
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= nested
            self.open_anchors.discard(event.anchor)


def _prescan(text: str, file: str, limits: Limits) -> None:
    """Refuse an oversized document from libyaml's event stream, when PyYAML has it.

    The pure-Python composer needs ~16 µs a node, so a 1 MiB file of tiny values
    would take seconds to reach the node limit; libyaml's parser (iterative, and
    only its events are used: no C composer, which recurses) gets there in
    milliseconds. Syntax errors are left to the composer, for one kind of message.
    """
    if not getattr(yaml, "__with_libyaml__", False):
        return
    depth = nodes = aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, AliasEvent):
                aliases += 1
                if aliases > limits.max_aliases:
                    raise _fail(file, f"more than {limits.max_aliases} aliases",
                                event.start_mark, "yaml-aliases")
            elif isinstance(event, (ScalarEvent, CollectionStartEvent)):
                nodes += 1
                if nodes > limits.max_nodes:
                    raise _fail(file, f"more than {limits.max_nodes} values in the file",
                                event.start_mark, "yaml-nodes")
                depth += isinstance(event, CollectionStartEvent)
                if depth > limits.max_depth:
                    raise _fail(file, f"nested deeper than {limits.max_depth} levels",
                                event.start_mark, "yaml-depth")
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError:
        return


def _check_expansion(root: Node, file: str, limit: int) -> None:
    """Refuse a node graph whose alias expansion exceeds ``limit`` nodes.

    Sizes are memoised per node (post-order, explicit stack), so a billion
    laughs costs as much as its few distinct nodes. The graph is acyclic.
    """
    size: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in size:
            continue
        kids = node.value if isinstance(node, SequenceNode) else (
            [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else [])
        if not ready:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            continue
        size[id(node)] = total = 1 + sum(size[id(k)] for k in kids)
        if total > limit:
            raise _fail(file, f"this value expands to more than {limit} values through aliases",
                        node.start_mark, "yaml-nodes")


def _short(tag: str) -> str:
    return "!!" + tag[len(_T):] if tag.startswith(_T) else tag


def _describe(node: Node) -> str:
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, MappingNode):
        return "a mapping"
    kinds = {STR: "a string", INT: "a number", FLOAT: "a number", BOOL: "a boolean", NULL: "null"}
    return kinds.get(node.tag, f"a {_short(node.tag)} value")


def _tag_message(tag: str, kind: str) -> str:
    if tag in (STR, INT, FLOAT, BOOL, NULL, MAP, SEQ):
        return f"tag {_short(tag)} cannot be used on {kind}"
    return f"tag {_short(tag)} is not allowed; a spec holds only plain YAML values"


class _Builder:
    """Turns a checked node graph into plain data and marks, collecting errors."""

    def __init__(self, file: str, alias_marks: dict[tuple[int, int], Any]) -> None:
        self.loaded = Loaded(None, file)
        self.alias_marks = alias_marks
        self.errors: list[SpecError] = []
        self.memo: dict[int, list[Entry]] = {}

    def error(self, message: str, mark: Any, code: str) -> None:
        self.errors.append(_error(self.loaded.file, message, mark, code))

    def scalar(self, node: ScalarNode) -> Any:
        """The value of a scalar node under the YAML 1.2 core schema (None if bad)."""
        tag, text = node.tag, node.value
        if tag in (STR, MERGE):  # `<<` anywhere but a key is just text
            return text
        if tag == NULL and _NULL_RE.match(text):
            return None
        if tag == BOOL and _BOOL_RE.match(text):
            return text[0] in "tT"
        if tag == INT and _INT_RE.match(text):
            digits = text.lstrip("+-")
            if len(digits) > MAX_DIGITS:
                return self.error(f"number too large ({len(digits)} digits; at most {MAX_DIGITS})",
                                  node.start_mark, "yaml-number")
            base = {"0o": 8, "0x": 16}.get(digits[:2], 10)
            return int(text, 10) if base == 10 else int(digits[2:], base)
        if tag == FLOAT and _FLOAT_RE.match(text):
            special = text[-3:].lower() in ("inf", "nan")
            return float(text.replace(".", "") if special else text)
        if tag in (NULL, BOOL, INT, FLOAT):
            return self.error(f"{text!r} is not a valid {_short(tag)} under YAML 1.2",
                              node.start_mark, "yaml-tag")
        return self.error(_tag_message(tag, "a scalar"), node.start_mark, "yaml-tag")

    def key(self, knode: Node) -> str | None:
        """The key's text, or None after recording why it cannot be a key."""
        if isinstance(knode, ScalarNode) and knode.tag == STR:
            return knode.value
        if isinstance(knode, ScalarNode) and knode.tag not in (INT, FLOAT, BOOL, NULL):
            self.error(_tag_message(knode.tag, "a key"), knode.start_mark, "yaml-tag")
            return None
        found = _describe(knode)
        if isinstance(knode, ScalarNode):
            found += f": {knode.value or '(empty)'} (quote it to use it as a key)"
        self.error(f"keys must be strings, got {found}", knode.start_mark, "yaml-key")
        return None

    def merge(self, vnode: Node, into: dict[str, Entry]) -> None:
        """Standard ``<<``: a mapping or a list of them, earlier ones winning."""
        many = isinstance(vnode, SequenceNode) and vnode.tag == SEQ
        for src in vnode.value if many else [vnode]:
            if isinstance(src, MappingNode) and src.tag == MAP:
                for entry in self.pairs(src):
                    into.setdefault(entry[0], entry)
            else:
                self.error("'<<' must be given a mapping or a list of mappings",
                           src.start_mark, "yaml-merge")

    def pairs(self, node: MappingNode) -> list[Entry]:
        """A mapping's entries after merges (its own keys win), keys checked once."""
        if id(node) in self.memo:  # shared through aliases
            return self.memo[id(node)]
        merged: dict[str, Entry] = {}
        own: dict[str, Entry] = {}
        first: dict[str, Any] = {}  # key -> mark of its first definition, `<<` included
        for knode, vnode in node.value:
            is_merge = isinstance(knode, ScalarNode) and knode.tag == MERGE
            key = "<<" if is_merge else self.key(knode)
            if key is None:
                continue
            if key in first:
                self.error(f"duplicate key {key!r} (first defined at line {first[key].line + 1})",
                           knode.start_mark, "yaml-duplicate-key")
                continue
            first[key] = knode.start_mark
            if is_merge:
                self.merge(vnode, merged)
            else:
                mark = self.alias_marks.get((id(node), id(knode)), vnode.start_mark)
                own[key] = (key, knode, vnode, mark)
        merged.update(own)  # keeps merged keys' order, as PyYAML does
        self.memo[id(node)] = result = list(merged.values())
        return result

    def build(self, root: Node) -> Loaded:
        """Depth-first with an explicit stack, so no recursion limit applies."""
        box: list[Any] = [None]
        stack: list[tuple[Node, tuple, Any, Any, Any]] = [(root, (), box, 0, root.start_mark)]
        vmarks, kmarks = self.loaded.value_marks, self.loaded.key_marks
        while stack:
            node, path, parent, slot, mark = stack.pop()
            vmarks[path] = (mark.line + 1, mark.column + 1)
            todo: list[tuple[Node, tuple, Any, Any, Any]] = []
            if isinstance(node, ScalarNode):
                parent[slot] = self.scalar(node)
            elif node.tag != (SEQ if isinstance(node, SequenceNode) else MAP):
                self.error(_tag_message(node.tag, _describe(node)), node.start_mark, "yaml-tag")
            elif isinstance(node, SequenceNode):
                parent[slot] = items = [None] * len(node.value)
                for i, child in enumerate(node.value):
                    at = self.alias_marks.get((id(node), i), child.start_mark)
                    todo.append((child, (*path, i), items, i, at))
            else:
                parent[slot] = entries = {}
                for key, knode, vnode, at in self.pairs(node):
                    entries[key] = None  # fixes the key order now; the value comes later
                    kmarks[(*path, key)] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
                    todo.append((vnode, (*path, key), entries, key, at))
            stack.extend(reversed(todo))  # visit in document order
        self.loaded.data = box[0]
        return self.loaded


def _too_big(file: str, limits: Limits) -> Diagnostics:
    return Diagnostics([SpecError(f"the file is larger than the limit of {limits.max_bytes} bytes",
                                  Location(file, 1, 1), code="yaml-size")])


def _line_col(before: str) -> tuple[int, int]:
    """1-based position just after ``before``."""
    return before.count("\n") + 1, len(before) - before.rfind("\n")


def _decode(text: str | bytes, file: str, limits: Limits) -> str:
    """Refuse oversized input before parsing; decode bytes as UTF-8."""
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise _too_big(file, limits)
    if isinstance(text, str):
        return text
    data = text.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        loc = Location(file, *_line_col(data[: exc.start].decode("utf-8", "replace")))
        raise Diagnostics([SpecError(f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                                     loc, code="yaml-encoding")]) from None


def _syntax(exc: yaml.MarkedYAMLError, file: str) -> Diagnostics:
    message = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    return _fail(file, message, exc.problem_mark or exc.context_mark, "yaml-syntax")


def load_yaml(text: str | bytes, file: str, limits: Limits = Limits()) -> Loaded:
    """Load one spec document from ``text``; ``file`` names it in locations.

    Raises:
        Diagnostics: one or more located ``SpecError`` (codes ``yaml-*``).
    """
    text = _decode(text, file, limits)
    loader = None
    try:
        _prescan(text, file, limits)
        loader = SpecLoader(text, file, limits)
        root = loader.get_single_node()
        _check_expansion(root, file, limits.max_nodes)
        if not isinstance(root, MappingNode):
            raise _fail(file, f"a spec must be a mapping at the top level, got {_describe(root)}",
                        root.start_mark, "yaml-root")
        builder = _Builder(file, loader.alias_marks)
        loaded = builder.build(root)
    except Diagnostics:
        raise
    except yaml.MarkedYAMLError as exc:
        raise _syntax(exc, file) from None
    except yaml.reader.ReaderError as exc:  # a control character in the text
        loc = Location(file, *_line_col(text[: exc.position]))
        raise Diagnostics([SpecError(f"unacceptable character #x{exc.character:04x}: {exc.reason}",
                                     loc, code="yaml-syntax")]) from None
    except Exception as exc:  # noqa: BLE001 - a PyYAML bug on hostile input must not escape
        code = "yaml-depth" if isinstance(exc, RecursionError) else "yaml-syntax"
        mark = loader.get_mark() if loader is not None else None
        raise _fail(file, f"cannot read the YAML ({type(exc).__name__})", mark, code) from None
    finally:
        if loader is not None:
            loader.dispose()
    if builder.errors:
        unique = {(e.location, e.code, e.message): e for e in builder.errors}  # aliased twice
        raise Diagnostics(list(unique.values()))
    return loaded


def load_yaml_file(path: str | os.PathLike, limits: Limits = Limits()) -> Loaded:
    """Load a spec file: its size is checked with ``os.stat`` before reading.

    Raises:
        Diagnostics: as :func:`load_yaml`; an unreadable path has code ``file``.
    """
    name = str(path)
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device could block or never end
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise OSError(0, f"it is {kind}")
        if info.st_size > limits.max_bytes:
            raise _too_big(name, limits)
        with open(path, "rb") as fh:
            data = fh.read(limits.max_bytes + 1)  # it may have grown since the stat
    except OSError as exc:
        raise Diagnostics([SpecError(f"cannot read the file: {exc.strerror or exc}",
                                     Location(name), code="file")]) from None
    return load_yaml(data, name, limits)
