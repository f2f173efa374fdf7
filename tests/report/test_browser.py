"""Every spec's report in headless Chromium: it loads without a console message, fetches
nothing, and shows the sections its task needs.

"Fetches nothing" is checked twice, by independent means: the page's Content-Security-Policy
forbids every fetch (a blocked one is a console message, which fails the test), and
Chromium's network log must hold no request made for the page. Two canary pages show each
check catching a leak. Skips where Debian's ``chromium`` is not installed.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import dlspec
from dlspec.report import CSP
from tests.conftest import SPECS
from tests.report.fake_runs import CLASSIFIER, fake_run
from tests.test_end_to_end import REGRESSION_SPEC, spec_data  # noqa: F401 - a fixture

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install -y "
    "chromium); the reports are checked in a browser only where it is")
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]
CLASSIFIER_SECTIONS = ["curves", "metrics", "confusion", "model", "spec", "run"]
FORECAST_SECTIONS = ["curves", "metrics", "forecast", "model", "spec", "run"]
EXPECTED = {"airline_lstm.yaml": FORECAST_SECTIONS, "airline_mlp.yaml": FORECAST_SECTIONS}


def load(page: Path, tmp: Path) -> tuple[str, list[str], list[str]]:
    """Chromium's DOM of ``page`` after loading, the console messages it logged, and the
    URLs requested on the page's behalf (its network isolation key is the file://
    origin; Chromium's own background requests have other keys)."""
    netlog = tmp / f"{page.stem}.netlog.json"
    r = subprocess.run([CHROMIUM, *QUIET, f"--user-data-dir={tmp / 'profile'}",
                        "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}",
                        "--dump-dom", page.resolve().as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    fetched = [e["params"]["url"] for e in log["events"] if e["type"] == start
               and "file://" in e["params"].get("network_isolation_key", "")]
    return r.stdout, console, fetched


def check(page: Path, tmp: Path, sections: list[str]) -> str:
    dom, console, fetched = load(page, tmp)
    assert console == [], console
    assert fetched == []
    assert dom.rstrip().endswith("</html>")
    assert re.findall(r'<section id="(\w+)"', dom) == sections
    source = page.read_text()
    assert dom.count("<svg") == source.count("<svg") > 0  # every chart parsed as SVG
    assert f'content="{CSP}"' in dom
    return dom


def test_canaries_a_leaking_page_is_caught_by_each_check(tmp_path):
    leak = '<!DOCTYPE html><html><head>{}</head><body><img src="http://127.0.0.1:9/x.png">' \
           "</body></html>"
    guarded, bare = tmp_path / "guarded.html", tmp_path / "bare.html"
    guarded.write_text(leak.format(f'<meta http-equiv="Content-Security-Policy" '
                                   f'content="{CSP}">'))
    bare.write_text(leak.format(""))
    _, console, fetched = load(guarded, tmp_path)
    assert any("Content Security Policy" in line for line in console) and fetched == []
    _, console, fetched = load(bare, tmp_path)
    assert fetched == ["http://127.0.0.1:9/x.png"]


@pytest.mark.parametrize("spec", sorted(p.name for p in SPECS.glob("*.yaml")))
def test_every_specs_report_in_chromium(tmp_path, spec, spec_data):  # noqa: F811
    loaded = dlspec.load_spec(SPECS / spec, check_data=False)
    if loaded.data is None:
        pytest.skip(f"{spec} has no data: it is exported, never trained, so it has no run")
    run = dlspec.train(SPECS / spec, ["train.epochs=2", *spec_data(spec)],
                       run_dir=tmp_path / "run").run_dir
    check(run / "report.html", tmp_path, EXPECTED.get(spec, CLASSIFIER_SECTIONS))


def test_a_regression_report_in_chromium(tmp_path):
    rows = "\n".join(f"{x},{0.5 * x + 1}" for x in range(-50, 50))
    (tmp_path / "line.csv").write_text("x,y\n" + rows + "\n")
    (tmp_path / "line.yaml").write_text(REGRESSION_SPEC.replace("LR", "0.0001"))
    run = dlspec.train(tmp_path / "line.yaml", run_dir=tmp_path / "run").run_dir
    dom = check(run / "report.html", tmp_path,
                ["curves", "metrics", "predictions", "model", "spec", "run"])
    assert "predicted against true" in dom and "residuals (predicted - true)" in dom


def test_pictures_and_a_comparison_in_chromium(tmp_path):
    png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4"
                           "DwABBAEAwS2OUAAAAABJRU5ErkJggg==")
    metrics = {**CLASSIFIER, "pictures": [{"file": "grid.png", "title": "generated digits"}]}
    run = fake_run(tmp_path / "a", metrics=metrics, files={"grid.png": png})
    dlspec.report.report_runs([run])
    dom = check(run / "report.html", tmp_path,
                ["curves", "metrics", "confusion", "pictures", "spec", "run"])
    assert 'src="data:image/png;base64,' in dom
    other = fake_run(tmp_path / "b")
    out = dlspec.report.report_runs([run, other], tmp_path / "compare.html")
    check(out, tmp_path, ["comparison", "curves"])
