"""Several runs on one page: what differs between their resolved specs (only the differing
keys) beside their metrics, and their curves overlaid with a legend."""

from __future__ import annotations

import json
import string
from html import escape

from dlspec.report.charts import PALETTE
from dlspec.report.curves import overlay_charts
from dlspec.report.html import fmt, grid, page, section
from dlspec.report.page import SKIP_METRICS, headline
from dlspec.report.runfiles import RunFiles

IGNORED = ("lock.",)   # the lock's own hashes and version differ whenever anything does


def flatten(value, prefix: str = "") -> dict[str, object]:
    """A nested spec as ``{dotted.path: leaf}``; lists of mappings by index
    (``model.nodes.h1.dense.units``, ``train.params[0].match``)."""
    out: dict[str, object] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def differing(specs: list[dict]) -> list[str]:
    """The dotted keys whose values are not the same in every spec (absent counts)."""
    flat = [flatten(s) for s in specs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return [k for k in keys if not k.startswith(IGNORED)
            and len({json.dumps(f[k], default=repr, sort_keys=True) if k in f else "\0absent"
                     for f in flat}) > 1]


def labels(n: int) -> list[str]:
    letters = string.ascii_uppercase
    return [letters[i] if i < 26 else f"R{i + 1}" for i in range(n)]


def _cell(v) -> str:
    """A spec value as written (0.001, not 0.0010)."""
    if isinstance(v, (dict, list, bool)) or v is None:
        return escape(json.dumps(v))
    return escape(repr(v) if isinstance(v, float) else str(v))


def comparison_table(runs: list[RunFiles], names: list[str]) -> str:
    """Runs as columns; rows: the run, its differing spec keys, then its metrics."""
    keys = differing([r.lock for r in runs])
    flat = [flatten(r.lock) for r in runs]
    head = "".join(f'<th><span style="color:{PALETTE[i % len(PALETTE)]}">&#9632;</span> '
                   f"{escape(n)}</th>" for i, n in enumerate(names))
    rows = [("run", [escape(r.label) for r in runs])]
    rows += [(k, [_cell(f[k]) if k in f else '<span class="muted">absent</span>'
                  for f in flat]) for k in keys]
    if not keys:
        rows.append(("(spec)", ['<span class="muted">the same resolved spec</span>'] * len(runs)))
    ms = [r.metrics for r in runs]
    rows.append(("epochs (best)", [f"{fmt(m.get('epochs_run'))} ({fmt(m.get('best_epoch'))})"
                                   for m in ms]))
    rows.append(("training seconds", [fmt(m.get("training_seconds")) for m in ms]))
    for split in ("validation", "test"):
        metric_keys = list(dict.fromkeys(k for m in ms for k, v in (m.get(split) or {}).items()
                                         if k not in SKIP_METRICS and k != "rows"
                                         and isinstance(v, (int, float))))
        rows += [(f"{split} {k}", [fmt((m.get(split) or {}).get(k)) for m in ms])
                 for k in metric_keys]
    body = "".join(f"<tr><th>{escape(k)}</th>" + "".join(
        f'<td class="num">{c}</td>' for c in cells) + "</tr>" for k, cells in rows)
    return f'<table id="differences"><thead><tr><th></th>{head}</tr></thead><tbody>{body}' \
           "</tbody></table>"


def render_compare(runs: list[RunFiles]) -> str:
    """The comparison page of several runs (a whole HTML document)."""
    names = labels(len(runs))
    spec_names = list(dict.fromkeys(str(r.metrics.get("name") or r.label) for r in runs))
    tops = []
    for n, r in zip(names, runs, strict=True):
        top = headline(r.metrics)
        if top:
            tops.append(f"{n}: {top[1]} {fmt(top[2])} ({top[0]})")
    header = (f"<header><h1>{escape(', '.join(spec_names))}: {len(runs)} runs compared</h1>"
              f'<div class="state">{escape("; ".join(tops))}</div></header>')
    charts = overlay_charts(runs, names)
    return page(f"{', '.join(spec_names)}: {len(runs)} runs compared", [
        header,
        section("comparison", "What differs, and the metrics", [
            comparison_table(runs, names),
            '<p class="muted">Only the resolved-spec keys whose values differ between the '
            "runs are listed.</p>"]),
        section("curves", "Training curves, overlaid", [
            grid(charts) if charts else '<p class="muted">No per-epoch history.</p>',
            '<p class="muted">One color per run; training solid, validation dashed.</p>'])])
