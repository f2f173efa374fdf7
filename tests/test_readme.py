"""Every README block that shows what a command prints is that command's real output.

A checked block is marked by an HTML comment right before it, naming the commands:

    <!-- checked by tests/test_readme.py:
    $ dlspec export runs/breast_cancer/latest -o breast_cancer.onnx
    $ head -n 3 predictions.csv
    -->

The commands run in order, in one fresh checkout-like folder (specs/, examples/,
schemas/ and the example inputs of tests/readme/) shared by the whole README, so a
block may use what an earlier one made; the block shows what the last command prints
(stdout and stderr, without a terminal), after a "$ command" line of its own if it
starts with one. Only truly volatile parts are normalised: timings, rates and run ids.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import ROOT

README = ROOT / "README.md"
MARK = "<!-- checked by tests/test_readme.py:"
_BLOCK = re.compile(re.escape(MARK) + r"\n(?P<commands>(?:\$ [^\n]+\n)+)-->\n"
                    r"```[a-z]*\n(?P<shown>.*?)```", re.S)
_VOLATILE = [  # (pattern, what it becomes): values that differ on every run
    (re.compile(r"\b\d{8}-\d{6}-[0-9a-f]{4}\b"), "<run-id>"),
    (re.compile(r"\bin \d+\.\d+ s\b"), "in <seconds> s"),
    (re.compile(r"\([\d,]+ rows/s\)"), "(<rate> rows/s)"),
]


def checked_blocks() -> list[tuple[list[str], str]]:
    return [([c[2:] for c in m["commands"].splitlines()], m["shown"])
            for m in _BLOCK.finditer(README.read_text(encoding="utf-8"))]


def normalised(text: str) -> list[str]:
    for pattern, stand_in in _VOLATILE:
        text = pattern.sub(stand_in, text)
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def execute(command: str, *, may_fail: bool = False) -> str:
    """What ``command`` prints; ``dlspec ...`` through the CLI, ``head -n N FILE``."""
    words = shlex.split(command)
    if words[0] == "dlspec":
        r = CliRunner().invoke(app, words[1:])
        assert r.exit_code in ((0, 1) if may_fail else (0,)), (command, r.output)
        return r.output
    if words[:2] == ["head", "-n"] and len(words) == 4:
        lines = Path(words[3]).read_text().splitlines(keepends=True)
        return "".join(lines[:int(words[2])])
    raise AssertionError(f"README marks a command the test cannot run: {command}")


def test_every_command_transcript_is_checked():
    text = README.read_text(encoding="utf-8")
    transcripts = text.count("```\n$ ")
    assert transcripts == sum(shown.startswith("$ ") for _, shown in checked_blocks())
    assert len(checked_blocks()) >= 4


def test_readme_outputs_are_real(tmp_path, monkeypatch):
    tree = tmp_path / "checkout"
    for folder in ("specs", "examples", "schemas"):
        shutil.copytree(ROOT / folder, tree / folder)
    for example in (ROOT / "tests" / "readme").iterdir():
        shutil.copy(example, tree / example.name)
    monkeypatch.chdir(tree)
    blocks = checked_blocks()
    assert len(blocks) >= 4, "the README's checked blocks are gone"
    for commands, shown in blocks:
        for command in commands[:-1]:
            execute(command)
        if shown.startswith("$ "):
            first, _, shown = shown.partition("\n")
            assert first == f"$ {commands[-1]}"
        assert normalised(execute(commands[-1], may_fail=True)) == normalised(shown), \
            commands[-1]
