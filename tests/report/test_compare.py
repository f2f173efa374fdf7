"""The comparison page: only the differing resolved-spec keys beside the metrics, the
curves overlaid with a legend; on three real churn runs of different --set values."""

from __future__ import annotations

import re

import dlspec
from dlspec.report import RunFiles, render_compare, report_runs
from dlspec.report.compare import differing, flatten
from tests.conftest import SPECS
from tests.report.fake_runs import fake_run


def test_flatten_and_differing_keys():
    a = {"train": {"epochs": 3, "optimizer": {"adam": {"lr": 0.001}}},
         "model": {"nodes": [{"dense": {"units": 6}}, {"dense": {"units": 1}}]},
         "lock": {"spec_sha256": "x"}}
    b = {"train": {"epochs": 3, "optimizer": {"adam": {"lr": 0.01}}},
         "model": {"nodes": [{"dense": {"units": 8}}, {"dense": {"units": 1}}]},
         "lock": {"spec_sha256": "y"}}
    c = {"train": {"epochs": 3, "optimizer": {"adam": {"lr": 0.001}}, "seed": 4},
         "model": {"nodes": [{"dense": {"units": 6}}, {"dense": {"units": 1}}]},
         "lock": {"spec_sha256": "z"}}
    assert flatten(a)["model.nodes[0].dense.units"] == 6
    assert flatten({"m": {"metrics": ["accuracy", "auc"]}}) == {"m.metrics": ["accuracy", "auc"]}
    assert differing([a, b]) == ["train.optimizer.adam.lr", "model.nodes[0].dense.units"]
    assert differing([a, c]) == ["train.seed"]   # absent in one: a difference
    assert differing([a, a]) == []               # the lock's own hashes never count


def test_a_comparison_of_identical_specs_says_so(tmp_path):
    runs = [RunFiles.from_dir(fake_run(tmp_path / n)) for n in "ab"]
    html = render_compare(runs)
    assert "the same resolved spec" in html and "2 runs compared" in html


def test_a_run_named_twice_is_one_run(tmp_path):
    r = fake_run(tmp_path / "toy" / "one")
    (tmp_path / "toy" / "latest").symlink_to("one")
    out = report_runs([r, tmp_path / "toy" / "latest"], tmp_path / "x.html")
    assert "<h1>toy" in out.read_text() and "runs compared" not in out.read_text()


def test_three_churn_runs_with_different_settings(tmp_path, churn_csv):
    base = [f"data.source={churn_csv}", "train.epochs=3", "data.split.validation=0.1"]
    sets = [[], ["model.layers[0].dense.units=12"], ["train.optimizer={adam: {lr: 0.01}}"]]
    runs = [dlspec.train(SPECS / "churn.yaml", [*base, *s], run_dir=tmp_path / f"r{i}",
                         report=False).run_dir for i, s in enumerate(sets)]
    out = report_runs(runs, tmp_path / "compare.html")
    html = out.read_text()
    table = html[html.index('<table id="differences">'):].split("</table>")[0]
    keys = re.findall(r"<tr><th>([^<]+)</th>", table)
    spec_keys = keys[1:keys.index("epochs (best)")]
    assert spec_keys == ["model.nodes.dense_1.dense.units", "train.optimizer.adam.lr"], keys
    assert "test accuracy" in keys and "validation loss" in keys
    units = re.search(r"<tr><th>model.nodes.dense_1.dense.units</th>(.*?)</tr>", table)[1]
    assert re.findall(r'<td class="num">([^<]+)</td>', units) == ["6", "12", "6"]
    # one chart per group, each run a color, a legend naming run and column
    for name in ("A loss", "B loss", "C loss", "A val_loss", "C val_auc"):
        assert f">{name}</text>" in html
    titles = re.findall(r"<svg[^>]*><title>([^<]+)</title>", html)
    assert titles == ["loss", "accuracy", "precision", "recall", "auc", "seconds (cumulative)"]
