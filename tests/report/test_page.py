"""One run's page from run directories written by hand: its sections, generic history
columns (named losses, a phase column), pictures, predictions, and damaged files."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from dlspec.errors import ModelError
from dlspec.report import CSP, RunFiles, render_run, report_runs
from dlspec.report.curves import groups
from dlspec.report.runfiles import parse_history
from tests.report.fake_runs import CLASSIFIER, LOCK, fake_run

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEA"
                       "wS2OUAAAAABJRU5ErkJggg==")


class Page(HTMLParser):
    """What a test looks at: section ids, <svg> titles, <img> sources, every URL."""

    def __init__(self, html: str):
        super().__init__()
        self.sections, self.svg_titles, self.imgs, self.urls = [], [], [], []
        self._in_title = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(a["id"])
        if tag == "img":
            self.imgs.append(a["src"])
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "data")]
        self._in_title = tag == "title"

    def handle_data(self, data):
        if self._in_title:
            self.svg_titles.append(data)
            self._in_title = False


def page(run) -> tuple[str, Page]:
    html = render_run(RunFiles.from_dir(run))
    return html, Page(html)


def test_a_classifier_page_has_its_sections_and_fetches_nothing(tmp_path):
    html, p = page(fake_run(tmp_path / "r"))
    assert p.sections == ["curves", "metrics", "confusion", "spec", "run"]
    assert f'content="{CSP}"' in html and "default-src 'none'" in CSP
    assert "<script" not in html.lower() and "<link" not in html.lower()
    assert not p.urls and "url(" not in html
    assert re.search(r'id="headline">0\.8500 <small>accuracy on the test split', html)
    assert "stopped early, best epoch 2 restored" in html
    assert p.svg_titles.count("loss") == 1 and "accuracy" in p.svg_titles
    assert "test split: rows true, columns predicted" in p.svg_titles
    assert "a" * 64 in html and "b" * 64 in html   # spec and data SHA-256


def test_named_losses_and_a_phase_column_are_charted_generically(tmp_path):
    hist = [{"epoch": e, "phase": "pretrain" if e < 3 else "finetune", "d_loss": 1.0 / e,
             "g_loss": 2.0 / e, "recon": 0.5 / e, "accuracy": 0.1 * e, "val_accuracy": 0.1 * e,
             "seconds": 0.1 * e} for e in range(1, 6)]
    lock = {**LOCK, "train": {"losses": {"d_loss": {}, "g_loss": {}, "recon": {}}}}
    html, p = page(fake_run(tmp_path / "r", history=hist, lock=lock))
    assert p.svg_titles[1:4] == ["losses", "accuracy", "seconds (cumulative)"]  # [0]: <title>
    losses_svg = html[html.index("<title>losses</title>"):].split("</svg>")[0]
    assert all(f">{n}</text>" in losses_svg for n in ("d_loss", "g_loss", "recon"))
    assert "finetune</text>" in losses_svg      # the phase boundary, marked and named
    assert ">phase<" not in html                # a text column is no chart


def test_groups_pair_each_metric_with_its_validation_twin():
    cols = ["epoch", "loss", "mae", "val_loss", "val_mae", "kl_loss", "seconds"]
    got = [(g.title, g.bases) for g in groups(cols)]
    assert got == [("losses", ["loss", "kl_loss"]), ("mae", ["mae"]),
                   ("seconds (cumulative)", ["seconds"])]


def test_history_cells_that_are_not_numbers(tmp_path):
    h = parse_history("epoch,loss,phase\n1,0.5,a\n2,,a\n3,nan,b\n", "h.csv")
    assert h.text == {"phase": ["a", "a", "b"]} and h.x == [1.0, 2.0, 3.0]
    assert h.numeric["loss"][0] == 0.5 and all(v != v for v in h.numeric["loss"][1:])
    restart = parse_history("epoch,loss\n1,0.5\n2,0.4\n1,0.3\n", "h.csv")
    assert restart.x == [1.0, 2.0, 3.0]   # epochs counted again per phase: rows in order
    with pytest.raises(ModelError, match=r"h\.csv:3: row has 1 cells, the header 2"):
        parse_history("epoch,loss\n1,0.5\n2\n", "h.csv")


def test_pictures_listed_in_metrics_are_inlined(tmp_path):
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'
    metrics = {**CLASSIFIER, "pictures": [
        {"file": "recon.png", "title": "Test digits and their reconstructions"},
        {"file": "filters.svg"}, {"file": "gone.png", "title": "missing"},
        {"file": "../escape.png", "title": "outside"}]}
    (tmp_path / "escape.png").write_bytes(PNG)
    html, p = page(fake_run(tmp_path / "r", metrics=metrics,
                            files={"recon.png": PNG, "filters.svg": svg}))
    assert "pictures" in p.sections
    assert p.imgs == ["data:image/png;base64," + base64.b64encode(PNG).decode(),
                      "data:image/svg+xml;base64," + base64.b64encode(svg).decode()]
    assert "Test digits and their reconstructions" in html
    assert "gone.png: not in the run" in html and "../escape.png: not in the run" in html


def test_no_pictures_no_section_and_no_split_no_headline(tmp_path):
    metrics = {**CLASSIFIER, "validation": {}, "test": {}}
    html, p = page(fake_run(tmp_path / "r", metrics=metrics))
    assert "pictures" not in p.sections and "metrics" not in p.sections
    assert "confusion" not in p.sections and "no held-out split to score" in html


def test_validation_only_run_headlines_validation(tmp_path):
    html, _ = page(fake_run(tmp_path / "r", metrics={**CLASSIFIER, "test": {}}))
    assert "accuracy on the validation split" in html


def _predictions(n: int = 6) -> bytes:
    rows = "".join(f"{i * 1.5},{i * 1.5 + (-1) ** i * 0.2},test\n" for i in range(n))
    return ("true,predicted,split\n" + rows).encode()


def test_regression_predictions_and_series_forecast(tmp_path):
    reg = {**CLASSIFIER, "task": "regression", "classes": [],
           "test": {"rows": 6, "loss": 0.1, "mae": 0.2}, "validation": {}}
    html, p = page(fake_run(tmp_path / "reg", metrics=reg,
                            files={"holdout_predictions.csv": _predictions()}))
    assert "predictions" in p.sections and "confusion" not in p.sections
    assert "predicted against true" in p.svg_titles and "residuals (predicted - true)" in \
        p.svg_titles
    assert "The exported model on the 6 held-out rows (test)" in html
    lock = {**LOCK, "data": {"sequence": {"window": 3, "horizon": 1}}}
    html, p = page(fake_run(tmp_path / "series", metrics=reg, lock=lock,
                            files={"holdout_predictions.csv": _predictions()}))
    assert "forecast" in p.sections and "forecast against the truth" in p.svg_titles


@pytest.mark.parametrize(("text", "message"), [
    ("{not json", r"metrics\.json: .*metrics\.json is damaged \(not JSON"),
    ("[1, 2]", r"expected an object, got list"),
    ('{"test": [1]}', r"'test' should be a mapping, got list"),
])
def test_damaged_metrics_are_located_errors(tmp_path, text, message):
    run = fake_run(tmp_path / "r")
    (run / "metrics.json").write_text(text)
    with pytest.raises(ModelError, match=message) as e:
        report_runs([run])
    assert str(run / "metrics.json") in str(e.value)


def test_report_runs_writes_into_the_run_or_where_told(tmp_path):
    run = fake_run(tmp_path / "r")
    assert report_runs([run]) == run / "report.html" and (run / "report.html").is_file()
    out = report_runs([run], tmp_path / "elsewhere.html")
    assert out.read_text().startswith("<!DOCTYPE html>")
    json.loads((run / "metrics.json").read_text())  # untouched


def test_a_damaged_model_is_noted_on_the_page(tmp_path):
    html, p = page(fake_run(tmp_path / "r", files={"model.onnx": b"\x0a\xff\xff"}))
    assert "model" in p.sections and "model.onnx cannot be read: truncated" in html


def test_program_run_headlines_its_first_named_loss(tmp_path):
    # A GAN's metrics are its losses on the split: the first one heads the page.
    gan = {**CLASSIFIER, "task": "program", "classes": [],
           "test": {"rows": 100, "d_real": 0.03, "d_fake": 0.31, "g_loss": 1.31},
           "validation": {}}
    html, _ = page(fake_run(tmp_path / "r", metrics=gan))
    assert re.search(r'id="headline">0\.0300 <small>d_real on the test split', html)
