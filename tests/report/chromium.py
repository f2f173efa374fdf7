"""Loading a report in headless Chromium (Debian's ``chromium``), for the report tests and
the every-spec test: the DOM after loading, the console messages, the requests made for
the page. ``CHROMIUM`` is None where it is not installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from dlspec.report import CSP

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = ("headless Chromium is not installed (Debian: apt-get install -y chromium); the "
           "reports are checked in a browser only where it is")
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions"]


def expected_sections(run_dir: Path, sequence: bool) -> list[str]:
    """The sections a trained run's report shows, by what the run holds: metrics where it
    has a held-out split, a confusion matrix for a classifier, predicted against true (a
    forecast, for a series) where train kept a regression's held-out predictions, the
    pictures metrics.json lists."""
    m = json.loads((run_dir / "metrics.json").read_text())
    splits = [m.get(s) or {} for s in ("validation", "test")]
    out = ["curves"] + (["metrics"] if any(splits) else [])
    if m.get("classes") and any("confusion_matrix" in s for s in splits):
        out.append("confusion")
    if (run_dir / "holdout_predictions.csv").is_file():
        out.append("forecast" if sequence else "predictions")
    if m.get("pictures"):
        out.append("pictures")
    return [*out, "model", "spec", "run"]


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
