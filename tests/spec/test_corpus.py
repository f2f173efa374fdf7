"""The corpus of broken specs: each file names the diagnostics it must produce.

Every file in ``corpus/`` is a small valid spec with one problem. Its first
lines say what is expected, one line per diagnostic::

    # expect: LINE:COL: <fragment of the message>

and no other diagnostic: one mistake, one message.

LINE and COL count in the file itself, comment lines included. The data
source points at the real breast-cancer CSV, so header checks run too.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlspec.errors import Diagnostic, Diagnostics
from dlspec.spec.load import load_spec

CORPUS = Path(__file__).parent / "corpus"
FILES = sorted(CORPUS.glob("*.yaml"))
EXPECT = re.compile(r"# expect: (\d+):(\d+): (.+)")


def expectations(path: Path) -> list[tuple[int, int, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = EXPECT.fullmatch(line.rstrip())
        if m:
            out.append((int(m[1]), int(m[2]), m[3]))
    return out


def test_corpus_is_large_enough():
    assert len(FILES) >= 40, f"only {len(FILES)} files in {CORPUS}"


def test_corpus_names_are_numbered():
    for path in FILES:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.yaml", path.name), path.name
    numbers = [p.name[:2] for p in FILES]
    assert len(set(numbers)) == len(numbers), "two corpus files share a number"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_file(path: Path):
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect: LINE:COL: message' line"
    with pytest.raises(Diagnostics) as info:
        load_spec(path)
    items: list[Diagnostic] = info.value.items
    assert items, "Diagnostics raised with no items"

    for d in items:
        assert isinstance(d, Diagnostic), repr(d)
        loc = d.location
        assert loc is not None, f"unlocated diagnostic: {d}"
        assert loc.file == str(path), f"{d} names file {loc.file!r}"
        assert loc.line >= 1 and loc.col >= 1, f"no line/column: {d}"
        assert str(d).startswith(f"{path}:{loc.line}:{loc.col}: "), str(d)

    report = "\n".join(str(d) for d in items)
    assert len(items) == len(expected), f"one message per mistake; diagnostics were:\n{report}"
    got = {(d.location.line, d.location.col) for d in items}
    want = {(line, col) for line, col, _ in expected}
    assert got == want, f"positions differ; diagnostics were:\n{report}"
    for line, col, fragment in expected:
        here = [str(d) for d in items if (d.location.line, d.location.col) == (line, col)]
        assert any(fragment in text for text in here), \
            f"{line}:{col}: no message contains {fragment!r}; diagnostics were:\n{report}"
