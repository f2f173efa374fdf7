"""Per-epoch charts from history.csv, whatever its columns: the losses together, each
metric with its validation twin, time alone; best epoch, early stop and phase boundaries
marked. The same grouping overlays several runs."""

from __future__ import annotations

from dataclasses import dataclass

from dlspec.report.charts import PALETTE, Chart, Marker, Series, chart_svg
from dlspec.report.runfiles import History, RunFiles

X_COLUMNS = ("epoch",)
TIME_COLUMNS = ("seconds",)


@dataclass
class Group:
    """One chart's worth of history columns (``bases``: the names without ``val_``)."""

    title: str
    bases: list[str]


def base(column: str) -> str:
    return column[4:] if column.startswith("val_") and len(column) > 4 else column


def loss_names(lock: dict) -> set[str]:
    """The run's named losses (train.losses of the resolved spec), besides 'loss'."""
    losses = (lock.get("train") or {}).get("losses") if isinstance(lock.get("train"), dict) \
        else None
    if isinstance(losses, dict):
        return {str(k) for k in losses}
    if isinstance(losses, list):
        return {str(x.get("name")) for x in losses if isinstance(x, dict) and x.get("name")}
    return set()


def is_loss(name: str, named: set[str]) -> bool:
    return name in named or name == "loss" or name.endswith("loss")


def groups(columns: list[str], named_losses: set[str] = frozenset()) -> list[Group]:
    """The charts for these numeric history columns, in their first appearance's order:
    every loss in one chart, each other metric with its ``val_`` twin, time last."""
    bases = list(dict.fromkeys(base(c) for c in columns if c not in X_COLUMNS))
    losses = [b for b in bases if is_loss(b, named_losses)]
    times = [b for b in bases if b in TIME_COLUMNS]
    out = [Group("losses" if len(losses) > 1 else losses[0], losses)] if losses else []
    out += [Group(b, [b]) for b in bases if b not in losses and b not in times]
    out += [Group(f"{b} (cumulative)", [b]) for b in times]
    return out


def markers(run: RunFiles, hist: History) -> list[Marker]:
    """The best epoch, where early stopping stopped, and where each phase begins."""
    m = run.metrics
    xs = hist.x
    out = []
    best = m.get("best_epoch")
    if isinstance(best, (int, float)) and xs:
        out.append(Marker(float(best), f"best {best}", "#2ca02c"))
    if m.get("stopped_early") and xs and xs[-1] != best:
        out.append(Marker(xs[-1], "stopped", "#d62728"))
    phase = hist.text.get("phase")
    if phase:
        for i in range(1, len(phase)):
            if phase[i] != phase[i - 1]:
                out.append(Marker((xs[i - 1] + xs[i]) / 2, phase[i], "#9467bd"))
    return out


def _members(hist: History, group: Group) -> list[str]:
    return [c for b in group.bases for c in (b, f"val_{b}") if c in hist.numeric]


def run_charts(run: RunFiles) -> list[str]:
    """One SVG per group of the run's history; training solid, validation dashed."""
    hist = run.history
    if not hist.numeric:
        return []
    xs = hist.x
    marks = markers(run, hist)
    out = []
    for g in groups(list(hist.numeric), loss_names(run.lock)):
        series = [Series(c, xs, hist.numeric[c], PALETTE[g.bases.index(base(c)) % len(PALETTE)],
                         c.startswith("val_")) for c in _members(hist, g)]
        out.append(chart_svg(Chart(g.title, series, "epoch", g.title, marks,
                                   integer_x=True)))
    return out


def overlay_charts(runs: list[RunFiles], labels: list[str]) -> list[str]:
    """Several runs' histories, one chart per group: a color per run, validation dashed."""
    named = set().union(*(loss_names(r.lock) for r in runs))
    columns = list(dict.fromkeys(c for r in runs for c in r.history.numeric))
    out = []
    for g in groups(columns, named):
        series = []
        for k, (run, label) in enumerate(zip(runs, labels, strict=True)):
            hist = run.history
            series += [Series(f"{label} {c}", hist.x, hist.numeric[c],
                              PALETTE[k % len(PALETTE)], c.startswith("val_"))
                       for c in _members(hist, g)]
        out.append(chart_svg(Chart(g.title, series, "epoch", g.title, integer_x=True)))
    return out
