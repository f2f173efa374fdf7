"""Reports in headless Chromium: they load without a console message, fetch nothing, and
show the sections their task needs (every spec's own report is checked by
tests/test_end_to_end.py's every-spec test, with the same helper, when Chromium is here).

"Fetches nothing" is checked twice, by independent means: the page's Content-Security-Policy
forbids every fetch (a blocked one is a console message, which fails the test), and
Chromium's network log must hold no request made for the page. Two canary pages show each
check catching a leak. Skips where Debian's ``chromium`` is not installed.
"""

from __future__ import annotations

import base64

import pytest

import dlspec
from dlspec.report import CSP
from tests.report.chromium import CHROMIUM, MISSING, check, load
from tests.report.fake_runs import CLASSIFIER, fake_run
from tests.test_end_to_end import REGRESSION_SPEC

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)


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
