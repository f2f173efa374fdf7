"""`dlspec validate` on arbitrary input: always exit 0 or 1, problems located, no traceback.

Together these feed well over 2,000 generated files to the command.
"""

from __future__ import annotations

import random
import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dlspec.cli import app
from tests.conftest import SPECS

runner = CliRunner()
FUZZ = settings(max_examples=800, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
LOCATED = re.compile(r"^(?!\d+ \|)\S.*?:\d+(:\d+)?: ")  # not the echoed source line
YAMLISH = st.text(alphabet=st.sampled_from(list("{}[]:-&*!|>'\"#,?%@ \t\nabcdxyz019.e+_")),
                  max_size=200)


def _check(tmp_path, text: str) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    r = runner.invoke(app, ["validate", str(path)])
    assert r.exit_code in (0, 1), (r.exit_code, r.output, text)
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    # echoed lines show control characters escaped, never raw to the terminal
    assert all(c == "\n" or c.isprintable() for c in r.output), repr(r.output)
    if r.exit_code == 1:
        problems = [ln for ln in r.stderr.splitlines() if LOCATED.match(ln)]
        assert problems and all(ln.startswith(f"{path}:") for ln in problems), r.stderr


@FUZZ
@given(text=st.one_of(st.text(max_size=300), YAMLISH))
def test_arbitrary_text(tmp_path, text):
    _check(tmp_path, text.replace("\x00", ""))


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                             max_size=4),
    max_leaves=20)


@FUZZ
@given(data=st.dictionaries(st.sampled_from(["dlspec", "name", "data", "model", "train",
                                             "export", "seed", "x"]), JSONISH, max_size=6))
def test_yaml_shaped_data(tmp_path, data):
    _check(tmp_path, yaml.safe_dump(data, sort_keys=False))


SPEC_TEXTS = [p.read_text() for p in sorted(SPECS.glob("*.yaml"))]


@FUZZ
@given(seed=st.integers(0, 2**32 - 1), which=st.integers(0, len(SPEC_TEXTS) - 1))
def test_mutated_example_specs(tmp_path, seed, which):
    """Delete, duplicate, swap or garble lines and characters of a real spec."""
    rnd = random.Random(seed)
    lines = SPEC_TEXTS[which].splitlines()
    for _ in range(rnd.randint(1, 4)):
        i = rnd.randrange(len(lines))
        op = rnd.randrange(5)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rnd.randrange(len(lines))])
        elif op == 2 and lines[i]:
            j = rnd.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rnd.choice("x0:[]{}-' \t9.,") + lines[i][j + 1:]
        elif op == 3:
            lines[i] = re.sub(r"\d+(\.\d+)?", lambda m: rnd.choice(
                ["0", "-1", "1e99", "abc", "yes", "[]", "2.5"]), lines[i])
        else:
            lines[i] = re.sub(r"[a-z_]+", lambda m: m.group(0)[::-1], lines[i], count=1)
    _check(tmp_path, "\n".join(lines) + "\n")
