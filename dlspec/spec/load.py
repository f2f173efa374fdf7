"""Loading a spec: YAML with marks -> --set overrides -> schema -> canonical form -> semantics.

Every problem of a stage is collected and raised together as ``Diagnostics``;
a later stage runs only when the earlier ones found nothing (semantic checks
on a schema-invalid spec would report noise).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

from dlspec.data.table import read_csv
from dlspec.errors import DataError, Diagnostics, Location, SpecError
from dlspec.graph.resources import DEFAULT_LIMIT
from dlspec.spec import paths, semantic, sequence
from dlspec.spec.compile import compile_graph
from dlspec.spec.diagnose import schema_errors
from dlspec.spec.graphcheck import check_graph
from dlspec.spec.model import Spec, build
from dlspec.spec.normalize import normalize
from dlspec.spec.program import RecipeConflict
from dlspec.spec.schema import load_schema
from dlspec.spec.yamlload import Limits, Loaded, load_yaml, load_yaml_file

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*|\[\d+\]")


def parse_override(text: str) -> tuple[tuple, object]:
    """``a.b[0].c=value`` -> (('a', 'b', 0, 'c'), value); the value is read as YAML 1.2."""
    where = Location(f"--set {text}")
    key, sep, value = text.partition("=")
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", key.strip())
    if not sep or not key.strip() or "".join(p if p[0] == "[" else f".{p}" for p in parts) \
            .lstrip(".") != key.strip() or not all(_KEY.fullmatch(p) for p in parts):
        raise Diagnostics([SpecError("expected KEY.PATH=VALUE, e.g. train.epochs=5 or "
                                     "model.layers[0].dense.units=8", where, code="override")])
    path = tuple(int(p[1:-1]) if p[0] == "[" else p for p in parts)
    if not value.strip():
        return path, None
    try:
        # wrap so scalars, flow lists and mappings all parse as one document
        parsed = load_yaml(f"v: {value}", f"--set {text}").data["v"]
    except Diagnostics as d:
        raise Diagnostics([SpecError(f"cannot read the value: {d.items[0].message}", where,
                                     code="override")]) from None
    return path, parsed


def apply_override(data: dict, path: tuple, value, where: Location) -> None:
    node = data
    for i, p in enumerate(path[:-1]):
        nxt = path[i + 1]
        if isinstance(p, int):
            if not isinstance(node, list) or p >= len(node):
                raise _bad_path(path[: i + 1], where)
        elif not isinstance(node, dict):
            raise _bad_path(path[: i + 1], where)
        elif p not in node or node[p] is None:
            node[p] = [] if isinstance(nxt, int) else {}
        node = node[p]
    last = path[-1]
    if isinstance(last, int):
        if not isinstance(node, list) or last >= len(node):
            raise _bad_path(path, where)
    elif not isinstance(node, dict):
        raise _bad_path(path, where)
    node[last] = value


def _bad_path(path: tuple, where: Location) -> Diagnostics:
    from dlspec.spec.diagnose import path_str

    return Diagnostics([SpecError(f"'{path_str(path)}' does not exist in the spec", where,
                                  code="override")])


class _Locator:
    """Locations in the file, or the --set flag for overridden paths. Paths are canonical
    (``normalize``); ``written`` maps canonical prefixes to where they were written (a
    ``model.layers`` item is canonical ``model.nodes.<name>``)."""

    def __init__(self, loaded: Loaded, overrides: dict[tuple, Location],
                 written_map: dict | None = None) -> None:
        self.loaded, self.overrides = loaded, overrides
        self.written_map = written_map or {}

    def written(self, path: tuple) -> tuple:
        """``path`` as written in the file."""
        path = tuple(path)
        for n in range(len(path), 0, -1):
            if path[:n] in self.written_map:
                return self.written_map[path[:n]] + path[n:]
        return path

    def __call__(self, path: tuple, key: bool = False) -> Location:
        path = self.written(path)
        for n in range(len(path), 0, -1):
            if tuple(path[:n]) in self.overrides:
                return self.overrides[tuple(path[:n])]
        return self.loaded.location(self._as_written(tuple(path)), key)

    def _as_written(self, path: tuple) -> tuple:
        """The file's path for a canonical one: normalize() wraps a shorthand list in a
        key (``standardize: [a, b]`` -> ``{columns: [a, b]}``), so the canonical path
        ``(..., 'columns', 1)`` is ``(..., 1)`` in the file."""
        marks = self.loaded.value_marks
        for i in range(1, len(path) - 1):
            if path[:i + 1] not in marks:
                shorter = path[:i] + path[i + 1:]
                if isinstance(path[i], str) and isinstance(path[i + 1], int) \
                        and path[:i] in marks and shorter[:i + 1] in marks:
                    return shorter
                break
        return path


def load_spec(source: str | Path, overrides: Sequence[str] = (), *, check_data: bool = True,
              limits: Limits | None = None, max_memory: int = DEFAULT_LIMIT) -> Spec:
    """Load and validate a spec file.

    Args:
        source: the spec's path.
        overrides: ``KEY.PATH=VALUE`` strings, applied before validation; a relative
            path among them (``data.source=PATH``) is relative to the current directory.
        check_data: also check column names against the data file's header
            (skipped, without error, when the data file does not exist).
        max_memory: refuse a spec whose training step needs more bytes (estimated
            from shapes, with the input width known from the header or taken as 1).

    Raises:
        Diagnostics: every problem found, each located.
    """
    loaded = load_yaml_file(source, limits or Limits())
    return resolve(loaded, overrides, base=Path(source).resolve().parent, check_data=check_data,
                   max_memory=max_memory)


def resolve(loaded: Loaded, overrides: Sequence[str] = (), *, base: Path,
            check_data: bool = True, max_memory: int = DEFAULT_LIMIT) -> Spec:
    data = loaded.data
    where: dict[tuple, Location] = {}
    for text in overrides:
        path, value = parse_override(text)
        loc = Location(f"--set {text}")
        apply_override(data, path, value, loc)
        where[path] = loc
    locate = _Locator(loaded, where)
    errors = schema_errors(data, load_schema(), locate)
    if errors:
        raise Diagnostics(errors)
    typed = paths.anchor_command_line(data, where, Path.cwd())
    errors = semantic.check_model_form(data, locate)
    if errors:
        raise Diagnostics(errors)
    try:
        canonical, written = normalize(data, base)
    except RecipeConflict as e:
        raise Diagnostics([SpecError(
            f"train.recipe {e.recipe} writes train.{e.key}, and the spec writes it "
            "differently; remove one (spec.lock.yaml shows what the recipe writes)",
            locate(("train", e.key), True), path=f"train.{e.key}",
            code="semantic-recipe")]) from None
    locate = _Locator(loaded, where, written)
    source_text = typed.get(paths.SOURCE, canonical["data"]["source"]) \
        if canonical["data"] is not None else None
    errors = semantic.check_spec(canonical, locate) + check_graph(canonical, locate)
    header, header_errors = read_header(canonical, base, locate)
    if check_data and header is not None:
        errors += header_errors or semantic.check_columns(
            canonical, header, source_text, locate)
    width = None
    if check_data and not errors and sequence.is_sequence(canonical):
        errors, width = check_series_data(canonical, base, locate, source_text)
    if errors:
        raise Diagnostics(errors)
    spec = build(canonical, loaded.file, base, locate)
    if source_text is not None and source_text != canonical["data"]["source"]:
        # messages name the path as typed
        spec = dataclasses.replace(spec, data=dataclasses.replace(spec.data,
                                                                  source_text=source_text))
    shapes = input_shapes_hint(spec, canonical, header, width)
    if shapes is not None:
        compile_graph(spec, shapes, limit=max_memory, init=False)
    return spec


def input_shapes_hint(spec: Spec, canonical: dict, header: list[str] | None,
                      width: int | None = None) -> dict[str, tuple] | None:
    """Each input's example shape as far as it is known without reading the data (None:
    unknown): declared shapes, else what the data's kind and header tell."""
    shapes = {}
    for inp in spec.model.inputs:
        if inp.shape is not None:
            shapes[inp.name] = inp.shape
            continue
        hint = input_shape_hint(canonical, header, width, inp.columns,
                                Path(spec.file).resolve().parent)
        if hint is None:
            return None
        shapes[inp.name] = (hint,) if isinstance(hint, int) else tuple(hint)
    return shapes


def input_shape_hint(canonical: dict, header: list[str] | None,
                     width: int | None = None, columns=None,
                     base: Path | None = None) -> int | tuple | None:
    """One example's shape as far as it is known without reading the data (None: unknown).

    For a table, the number of feature columns (``columns``, when the input names them;
    one-hot encoding only widens it, so the memory estimate stays a lower bound); for a
    built-in dataset, its image shape; for sequence data (window, features), with
    ``width`` features when the caller read them from an .npz (else 1 there, as for a CSV
    that is not found).
    """
    d = canonical["data"]
    if d is None:
        return None
    if columns:
        return len(columns)
    if sequence.is_sequence(canonical):
        if d["format"] == "csv" and header:
            width = len(sequence.feature_columns(canonical, header))
        return (d["sequence"]["window"], max(width or 1, 1))
    if d["format"] == "csv":
        return max(len(semantic.feature_columns(canonical, header)), 1) if header else 1
    if d["format"] == "builtin":
        from dlspec.data.builtin import DATASETS

        return DATASETS[d["source"]].shape if d["source"] in DATASETS else None
    if base is not None:
        from dlspec.data.images import image_shape

        return image_shape(base / d["source"], d["format"])
    return None


def check_series_data(canonical: dict, base: Path, locate,
                      source_text: str | None = None) -> tuple[list[SpecError], int | None]:
    """Sequence data's values checked against the spec (nothing when the file is absent).

    Returns the located problems and, for an .npz, its number of features. Messages
    name the data as ``source_text`` (default: as the spec writes it).
    """
    from dlspec.data.sequence import read_npz_windows

    d = canonical["data"]
    shown = source_text or d["source"]
    path = data_path(canonical, base)
    if d["format"] not in sequence.SEQUENCE_FORMATS or not path.is_file():
        return [], None
    try:
        if d["format"] == "npz":
            x, y = read_npz_windows(path)
            return sequence.check_npz_windows(canonical, x, y, shown, locate), x.shape[2]
        header = read_csv(path, max_rows=0).columns
        table = read_csv(path, columns=[*sequence.feature_columns(canonical, header),
                                        d["target"]])
    except DataError as e:
        return [SpecError(f"cannot read the data file: {e.message}", locate(("data", "source")),
                          path="data.source", code="data-file")], None
    return sequence.check_series(canonical, table, shown, locate), None


def data_path(canonical: dict, base: Path) -> Path:
    return (base / canonical["data"]["source"]).resolve()


def read_header(canonical: dict, base: Path, locate) -> tuple[list[str] | None, list[SpecError]]:
    """The data file's header (None when the file does not exist), or a located error."""
    if canonical["data"] is None:
        return None, []
    path = data_path(canonical, base)
    if canonical["data"]["format"] != "csv" or not path.is_file():
        return None, []
    try:
        return read_csv(path, max_rows=0).columns, []
    except DataError as e:
        return [], [SpecError(f"cannot read the data file: {e.message}",
                              locate(("data", "source")), path="data.source", code="data-file")]
