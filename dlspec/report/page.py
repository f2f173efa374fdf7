"""One run's report: what a reviewer of a model change needs on one page.

Its name, state and headline metric; every loss and metric per epoch; the metrics table;
the confusion matrix; predicted against true (regression) or the forecast against the
truth (series); the run's pictures; the exported model's contract; the resolved spec with
its SHA-256; the data's fingerprint, versions and timing.
"""

from __future__ import annotations

import base64
from html import escape

from dlspec.report.charts import PALETTE, Chart, Series, chart_svg, heatmap_svg
from dlspec.report.curves import run_charts
from dlspec.report.html import fmt, grid, page, section, table
from dlspec.report.runfiles import RunFiles

SPLITS = ("validation", "test")
SKIP_METRICS = ("confusion_matrix",)
HEADLINE_ORDER = ("accuracy", "rmse", "mae", "f1", "auc", "mse", "loss")


def headline(metrics: dict) -> tuple[str, str, float] | None:
    """(split, metric, value) a reader looks at first: test (else validation) accuracy for
    a classifier, RMSE for a forecast, else the loss; a training program's first named
    loss."""
    for split in ("test", "validation"):
        rep = metrics.get(split) or {}
        for k in HEADLINE_ORDER:
            if isinstance(rep.get(k), (int, float)):
                return split, k, float(rep[k])
        for k, v in rep.items():
            if k != "rows" and isinstance(v, (int, float)) and not isinstance(v, bool):
                return split, k, float(v)
    return None


def state_line(m: dict) -> str:
    epochs, best = m.get("epochs_run"), m.get("best_epoch")
    words = [f"trained {fmt(epochs)} epochs" if epochs is not None else "trained"]
    if m.get("steps") is not None:
        words.append(f"{fmt(m['steps'])} steps")
    if m.get("training_seconds") is not None:
        words.append(f"in {m['training_seconds']:.2f} s")
    text = ", ".join(words)
    if m.get("stopped_early"):
        text += f"; stopped early, best epoch {best} restored" if best else "; stopped early"
    elif best is not None:
        text += f"; best epoch {best}"
    parity = m.get("export_parity") or {}
    if "max_abs_diff" in parity:
        text += (f"; export checked against the engine on {parity.get('rows', '?')} rows "
                 f"(max difference {parity['max_abs_diff']:.2g})")
    return text


def _header(run: RunFiles) -> str:
    m = run.metrics
    name = str(m.get("name") or run.lock.get("name") or run.label)
    top = headline(m)
    big = (f'<div class="headline" id="headline">{fmt(top[2])} <small>{escape(top[1])} on the '
           f"{escape(top[0])} split</small></div>" if top else
           '<div class="headline muted" id="headline">no held-out split to score</div>')
    desc = run.lock.get("description")
    return (f"<header><h1>{escape(name)} <small class=\"muted\">{escape(run.label)}</small>"
            f"</h1>" + (f"<div>{escape(str(desc))}</div>" if desc else "")
            + f'<div class="state">{escape(m.get("task", ""))} &middot; {escape(state_line(m))}'
            f"</div>{big}</header>")


def metrics_section(m: dict) -> str | None:
    splits = [s for s in SPLITS if m.get(s)]
    if not splits:
        return None
    keys = list(dict.fromkeys(k for s in splits for k, v in m[s].items()
                              if k not in SKIP_METRICS and not isinstance(v, (list, dict))))
    rows = [[k, *[m[s].get(k, "") for s in splits]] for k in keys]
    return section("metrics", "Metrics", [table(["metric", *splits], rows)])


def confusion_section(m: dict) -> str | None:
    classes = m.get("classes") or []
    figs = []
    for split in ("test", "validation"):
        cm = (m.get(split) or {}).get("confusion_matrix")
        if cm and len(cm) == len(classes):
            figs.append(heatmap_svg(cm, classes, f"{split} split: rows true, columns predicted"))
            break
    if not figs:
        return None
    return section("confusion", "Confusion matrix", [
        grid(figs), '<p class="muted">Counts of held-out examples; the last column gives '
        "each class's recall, the bottom row each predicted class's precision.</p>"])


def _pairs(pred: dict[str, list[float]]) -> list[tuple[str, str, str]]:
    return [(c[len("true"):].lstrip("_") or "", c, "predicted" + c[len("true"):])
            for c in pred if c.startswith("true") and "predicted" + c[len("true"):] in pred]


def predictions_section(run: RunFiles) -> str | None:
    """Regression: predicted against true and the residuals; a series: the forecast
    against the truth over the held-out period, then its residuals."""
    found = run.predictions
    if found is None:
        return None
    pred = found.numeric
    series_run = isinstance(run.lock.get("data"), dict) and run.lock["data"].get("sequence")
    split = (found.text.get("split") or [""])[0]
    figs = []
    for suffix, t, p in _pairs(pred):
        truth, guess = pred[t], pred[p]
        resid = [g - y for g, y in zip(guess, truth, strict=True)]
        name = f" ({suffix})" if suffix else ""
        if series_run:
            steps = [float(i + 1) for i in range(len(truth))]
            figs.append(chart_svg(Chart(
                f"forecast against the truth{name}", [
                    Series("truth", steps, truth, PALETTE[0]),
                    Series("forecast", steps, guess, PALETTE[1], True)],
                "held-out step (time order)", "target", integer_x=True, width=760)))
            figs.append(chart_svg(Chart(f"residuals (forecast - truth){name}", [
                Series("", steps, resid, PALETTE[3])], "held-out step", "residual",
                integer_x=True, zero_line=True)))
        else:
            figs.append(chart_svg(Chart(f"predicted against true{name}", [
                Series("", truth, guess, PALETTE[0])], "true", "predicted", lines=False,
                diagonal=True, width=420, height=400)))
            figs.append(chart_svg(Chart(f"residuals (predicted - true){name}", [
                Series("", guess, resid, PALETTE[3])], "predicted", "residual", lines=False,
                zero_line=True)))
    if not figs:
        return None
    n = len(next(iter(pred.values())))
    ident, title = ("forecast", "Forecast") if series_run else ("predictions", "Predictions")
    where = f"the {fmt(n)} held-out rows" + (f" ({split})" if split else "")
    return section(ident, title, [grid(figs), f'<p class="muted">The exported model on {where}'
                                  ", in the target's own units.</p>"])


def pictures_section(run: RunFiles) -> str | None:
    """Every picture metrics.json lists (a file of the run), inline as a data: URI."""
    listed = run.metrics.get("pictures") or []
    figs = []
    for item in listed:
        if not isinstance(item, dict) or not isinstance(item.get("file"), str):
            continue
        found = run.picture(item["file"])
        title = str(item.get("title") or item["file"])
        if found is None:
            figs.append(f'<figure><div class="muted">{escape(item["file"])}: not in the run '
                        f"(or not a picture)</div><figcaption>{escape(title)}</figcaption>"
                        "</figure>")
            continue
        mime, data = found
        uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        figs.append(f'<figure><img src="{uri}" alt="{escape(title)}">'
                    f"<figcaption>{escape(title)}</figcaption></figure>")
    return section("pictures", "Pictures", [grid(figs)]) if figs else None


def model_section(run: RunFiles) -> str | None:
    from dlspec.report.contract import model_summary

    summary = model_summary(run)
    return section("model", "Exported model", summary) if summary else None


def spec_section(run: RunFiles) -> str | None:
    if not run.lock_text:
        return None
    m = run.metrics
    data = run.lock.get("data") if isinstance(run.lock.get("data"), dict) else {}
    rows = [["spec SHA-256", m.get("spec_sha256", "")],
            ["data SHA-256", m.get("data_sha256", "")],
            ["data source", data.get("source", "")]]
    return section("spec", "Resolved spec (spec.lock.yaml)", [
        table(["", "value"], rows), f"<pre>{escape(run.lock_text)}</pre>"])


def run_section(run: RunFiles) -> str:
    m = run.metrics
    hist = run.history
    rows = [["dlspec version", m.get("dlspec_version", "")], ["task", m.get("task", "")],
            ["epochs", m.get("epochs_run", "")], ["steps", m.get("steps", "")],
            ["training seconds", m.get("training_seconds", "")]]
    sec = hist.numeric.get("seconds")
    if sec and m.get("epochs_run"):
        rows.append(["seconds per epoch", float(sec[-1]) / max(len(sec), 1)])
    for k, v in (m.get("export_parity") or {}).items():
        rows.append([f"export parity: {k}", v if not isinstance(v, list) else
                     ", ".join(map(str, v))])
    init = m.get("init_from")
    if isinstance(init, dict):
        rows.append(["initialised from", f"{init.get('run', '')} ({init.get('loaded', '?')} "
                     "parameters loaded)"])
    if run.path is not None:
        rows.append(["run directory", str(run.path)])
    return section("run", "Run", [table(["", "value"], rows)])


def render_run(run: RunFiles) -> str:
    """One run's report page (a whole HTML document)."""
    m = run.metrics
    charts = run_charts(run)
    parts = [_header(run)]
    scaled = any("scaled_loss" in (m.get(s) or {}) for s in SPLITS)
    note = ("Training solid, validation dashed; the best epoch (its weights kept) and where "
            "early stopping stopped are marked."
            + (" Losses and metrics per epoch are in the scaled units the network trained in; "
               "the metrics table and the forecast are in the target's own units."
               if scaled else ""))
    parts.append(section("curves", "Training curves", [
        grid(charts) if charts else '<p class="muted">No per-epoch history.</p>',
        f'<p class="muted">{note}</p>' if charts else ""]))
    for build in (metrics_section, confusion_section):
        s = build(m)
        if s:
            parts.append(s)
    for build in (predictions_section, pictures_section, model_section, spec_section):
        s = build(run)
        if s:
            parts.append(s)
    parts.append(run_section(run))
    name = str(m.get("name") or run.label)
    return page(f"{name}: dlspec report", parts)
