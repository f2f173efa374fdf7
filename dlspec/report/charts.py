"""Small SVG charts, drawn without a plotting library: lines per epoch, scatter plots and
heat maps, with ticks, gridlines, legends and vertical markers.

Every chart is a plain string of SVG (no script, no external reference), so a page can
inline it and a file can hold it alone. Non-finite values (NaN, inf) are gaps in a line,
never a point; an empty chart says so in words.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf", "#7f7f7f", "#bcbd22"]
W, H = 640, 300
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 34, 46


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]: the first
    tick is at or below ``lo``, the last at or above ``hi``. A degenerate range is widened
    around its value; a non-finite one gives [0, 1]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0, 1.0]
    if lo > hi:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count - 1, 1)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    # round() keeps 0.1 * 3 from printing as 0.30000000000000004
    digits = max(0, -math.floor(math.log10(step)) + 2)
    return [round(k * step, digits) for k in range(first, last + 1)]


def tick_label(v: float, ticks: list[float]) -> str:
    """A tick's text with as many decimals as the tick step needs (and no more)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(v) or 1.0
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.2g}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if step * 10 ** decimals % 1 > 1e-6:  # a step of 2.5 needs one more decimal
        decimals += 1
    return f"{v:,.{decimals}f}"


@dataclass(frozen=True)
class Scale:
    """A linear map from data values [lo, hi] onto pixels [a, b] (b < a for a y axis)."""

    lo: float
    hi: float
    a: float
    b: float

    def __call__(self, v: float) -> float:
        return self.a + (self.b - self.a) * (v - self.lo) / (self.hi - self.lo)


@dataclass
class Series:
    """One line (or set of points) of a chart: x and y values, NaN where there is none."""

    name: str
    xs: list[float]
    ys: list[float]
    color: str = PALETTE[0]
    dashed: bool = False


@dataclass
class Marker:
    """A vertical line at ``x`` with a short label (the best epoch, a phase boundary)."""

    x: float
    label: str
    color: str = "#444"


@dataclass
class Chart:
    """Everything a line or scatter chart draws; ``svg()`` renders it."""

    title: str
    series: list[Series]
    x_label: str = ""
    y_label: str = ""
    markers: list[Marker] = field(default_factory=list)
    lines: bool = True          # False: points only (a scatter plot)
    diagonal: bool = False      # the line y = x (predicted against true)
    zero_line: bool = False     # the line y = 0 (residuals)
    width: int = W
    height: int = H
    integer_x: bool = False     # epochs: ticks on whole numbers only


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _extent(values: list[float]) -> tuple[float, float] | None:
    vs = [v for v in values if _finite(v)]
    return (min(vs), max(vs)) if vs else None


def _segments(s: Series) -> list[list[tuple[float, float]]]:
    """The runs of consecutive finite points of a series (a NaN breaks the line)."""
    out, cur = [], []
    for x, y in zip(s.xs, s.ys, strict=True):
        if _finite(x) and _finite(y):
            cur.append((x, y))
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def axes(chart: Chart) -> tuple[Scale, Scale, list[float], list[float]] | None:
    """The chart's x and y scales and ticks, or None when it has no finite point."""
    xs = [x for s in chart.series for x, y in zip(s.xs, s.ys, strict=True) if _finite(y)]
    ys = [y for s in chart.series for y in s.ys]
    ys += [m for m in (0.0,) if chart.zero_line]
    ex, ey = _extent(xs), _extent(ys)
    if ex is None or ey is None:
        return None
    if chart.diagonal:  # one square range, so y = x is the diagonal
        ex = ey = (min(ex[0], ey[0]), max(ex[1], ey[1]))
    if ex[0] == ex[1]:  # one x value (a single epoch): centred
        ex = (ex[0] - 1, ex[0] + 1)
    xt = nice_ticks(*ex, count=6)
    if chart.integer_x:
        xt = [t for t in xt if float(t).is_integer()] or xt
    if not chart.diagonal:  # lines span the data: epochs 1..n, not 0..n
        x_lo, x_hi = ex
    else:
        x_lo, x_hi = xt[0], xt[-1]
    yt = nice_ticks(*ey, count=5)
    sx = Scale(x_lo, x_hi, LEFT, chart.width - RIGHT)
    sy = Scale(yt[0], yt[-1], chart.height - BOTTOM, TOP)
    return sx, sy, [t for t in xt if x_lo - 1e-9 <= t <= x_hi + 1e-9], yt


def _f(v: float) -> str:
    return f"{v:.1f}"


def chart_svg(chart: Chart) -> str:
    """The chart as an SVG element: title, gridlines with tick labels, axis labels, the
    series (lines or points), markers and a legend."""
    w, h = chart.width, chart.height
    rows = legend_rows(chart.series, w)
    full = h + 16 * len(rows)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{full}" '
            f'viewBox="0 0 {w} {full}" font-family="sans-serif" font-size="11" role="img">'
            f'<title>{escape(chart.title)}</title>'
            f'<rect width="{w}" height="{full}" fill="white"/>'
            f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(chart.title)}'
            '</text>')
    found = axes(chart)
    if found is None:
        return (head + f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle" fill="#777" '
                'class="empty">no values to draw</text></svg>')
    sx, sy, xt, yt = found
    parts = [head]
    for t in yt:
        y = _f(sy(t))
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{w - RIGHT}" y1="{y}" y2="{y}" '
                     'stroke="#e4e4e4"/>'
                     f'<text class="ytick" x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end">'
                     f'{tick_label(t, yt)}</text>')
    for t in xt:
        x = _f(sx(t))
        parts.append(f'<line class="grid" x1="{x}" x2="{x}" y1="{TOP}" y2="{h - BOTTOM}" '
                     'stroke="#f0f0f0"/>'
                     f'<text class="xtick" x="{x}" y="{h - BOTTOM + 15}" text-anchor="middle">'
                     f'{tick_label(t, xt)}</text>')
    parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{w - LEFT - RIGHT}" '
                 f'height="{h - TOP - BOTTOM}" fill="none" stroke="#999"/>')
    if chart.x_label:
        parts.append(f'<text x="{(LEFT + w - RIGHT) / 2}" y="{h - 10}" text-anchor="middle">'
                     f'{escape(chart.x_label)}</text>')
    if chart.y_label:
        parts.append(f'<text transform="translate(14 {(TOP + h - BOTTOM) / 2}) rotate(-90)" '
                     f'text-anchor="middle">{escape(chart.y_label)}</text>')
    if chart.diagonal:
        lo, hi = sx.lo, sx.hi
        parts.append(f'<line x1="{_f(sx(lo))}" y1="{_f(sy(lo))}" x2="{_f(sx(hi))}" '
                     f'y2="{_f(sy(hi))}" stroke="#999" stroke-dasharray="4 3"/>')
    if chart.zero_line:
        parts.append(f'<line x1="{LEFT}" x2="{w - RIGHT}" y1="{_f(sy(0.0))}" '
                     f'y2="{_f(sy(0.0))}" stroke="#999" stroke-dasharray="4 3"/>')
    for m in chart.markers:
        if sx.lo <= m.x <= sx.hi:
            x = _f(sx(m.x))
            # a label near an edge is anchored inside the chart, not cut by it
            at = (sx(m.x) - LEFT) / max(w - LEFT - RIGHT, 1)
            anchor = "end" if at > 0.9 else "start" if at < 0.1 else "middle"
            parts.append(f'<line class="marker" x1="{x}" x2="{x}" y1="{TOP}" y2="{h - BOTTOM}" '
                         f'stroke="{m.color}" stroke-dasharray="2 2"/>'
                         f'<text x="{x}" y="{TOP - 3}" text-anchor="{anchor}" fill="{m.color}" '
                         f'font-size="10">{escape(m.label)}</text>')
    for s in chart.series:
        dash = ' stroke-dasharray="6 3"' if s.dashed else ""
        for seg in _segments(s):
            pts = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y in seg)
            if chart.lines and len(seg) > 1:
                parts.append(f'<polyline class="series" fill="none" stroke="{s.color}" '
                             f'stroke-width="1.8"{dash} points="{pts}"/>')
            else:  # a lone point between gaps, a single epoch, or a scatter plot
                r = 2.2 if not chart.lines else 3
                parts += [f'<circle class="point" cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="{r}" '
                          f'fill="{s.color}" fill-opacity="0.75"/>' for x, y in seg]
    if rows:
        parts.append(_legend(rows, h))
    parts.append("</svg>")
    return "".join(parts)


def legend_rows(series: list[Series], width: int) -> list[list[tuple[Series, float]]]:
    """Legend entries laid out left to right under the chart: rows of (series, x)."""
    named = [s for s in series if s.name]
    rows, x = [[]], LEFT
    for s in named:
        span = 30 + 6.5 * len(s.name) + 14
        if rows[-1] and x + span > width - RIGHT:
            rows.append([])
            x = LEFT
        rows[-1].append((s, x))
        x += span
    return rows if named else []


def _legend(rows: list[list[tuple[Series, float]]], top: float) -> str:
    out = []
    for i, row in enumerate(rows):
        y = top + 16 * i + 10
        for s, x in row:
            dash = ' stroke-dasharray="6 3"' if s.dashed else ""
            out.append(f'<line x1="{_f(x)}" x2="{_f(x + 24)}" y1="{y - 4}" y2="{y - 4}" '
                       f'stroke="{s.color}" stroke-width="2"{dash}/>'
                       f'<text class="legend" x="{_f(x + 30)}" y="{y}">{escape(s.name)}</text>')
    return '<g class="legend">' + "".join(out) + "</g>"


def heatmap_svg(matrix: list[list[int]], labels: list, title: str) -> str:
    """A confusion matrix as a heat map with counts: rows true classes, columns predicted
    ones; each row ends with its class's recall, each column with its precision."""
    k = len(labels)
    cell = max(22, min(64, 520 // max(k, 1)))
    left, top = 110, 58
    w, h = left + k * cell + 80, top + k * cell + 58
    peak = max((max(r) for r in matrix if r), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11" role="img">'
             f'<title>{escape(title)}</title><rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="10" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
             f'<text x="{left + k * cell / 2}" y="{top - 22}" text-anchor="middle">'
             'predicted</text>',
             f'<text x="{left + k * cell + 40}" y="{top - 8}" text-anchor="middle">recall</text>',
             f'<text x="{left - 8}" y="{top + k * cell + 20}" text-anchor="end">precision</text>',
             f'<text x="10" y="{top - 8}">true</text>']
    cols = [sum(r[j] for r in matrix) for j in range(k)]
    for j, c in enumerate(labels):
        parts.append(f'<text x="{left + j * cell + cell / 2:.0f}" y="{top - 8}" '
                     f'text-anchor="middle">{escape(str(c))[:10]}</text>')
        prec = matrix[j][j] / cols[j] if cols[j] else float("nan")
        parts.append(f'<text class="precision" x="{left + j * cell + cell / 2:.0f}" '
                     f'y="{top + k * cell + 20}" text-anchor="middle">{_pct(prec)}</text>')
    for i, (c, row) in enumerate(zip(labels, matrix, strict=True)):
        y = top + i * cell
        parts.append(f'<text x="{left - 8}" y="{y + cell / 2 + 4:.0f}" text-anchor="end">'
                     f'{escape(str(c))[:14]}</text>')
        for j, v in enumerate(row):
            shade = int(255 - 200 * v / peak)
            ink = "white" if v > peak / 2 else "black"
            parts.append(f'<rect class="cell" x="{left + j * cell}" y="{y}" width="{cell}" '
                         f'height="{cell}" fill="rgb({shade},{shade},255)" stroke="#ccc"/>'
                         f'<text x="{left + j * cell + cell / 2:.0f}" y="{y + cell / 2 + 4:.0f}"'
                         f' text-anchor="middle" fill="{ink}">{v}</text>')
        total = sum(row)
        rec = row[i] / total if total else float("nan")
        parts.append(f'<text class="recall" x="{left + k * cell + 40}" '
                     f'y="{y + cell / 2 + 4:.0f}" text-anchor="middle">{_pct(rec)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _pct(v: float) -> str:
    return "n/a" if not math.isfinite(v) else f"{100 * v:.1f}%"


def training_curve_svg(history: list[dict], title: str) -> str:
    """A run's loss and validation loss per epoch (the run directory's curve.svg)."""
    xs = [float(r.get("epoch", i + 1)) for i, r in enumerate(history)]
    series = [Series(k, xs, [_num(r.get(k)) for r in history], PALETTE[i], k.startswith("val_"))
              for i, k in enumerate(("loss", "val_loss"))
              if any(_finite(r.get(k)) for r in history)]
    svg = chart_svg(Chart(f"{title}: loss per epoch", series, "epoch", "loss",
                          integer_x=True))
    return svg + "\n"


def _num(v) -> float:
    return float(v) if _finite(v) else math.nan


def confusion_svg(cm: list[list[int]], classes: list, title: str) -> str:
    """The confusion matrix as a standalone SVG picture (``dlspec evaluate --picture``)."""
    return heatmap_svg(cm, classes, title) + "\n"
