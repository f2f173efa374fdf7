"""The training curve as a small standalone SVG (no plotting library needed)."""

from __future__ import annotations

import math
from html import escape

W, H, PAD = 640, 360, 48
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]


def training_curve_svg(history: list[dict], title: str) -> str:
    """Loss (and validation loss) per epoch, one polyline each."""
    series = [(k, [row.get(k) for row in history]) for k in ("loss", "val_loss")
              if any(isinstance(row.get(k), float) for row in history)]
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    n = max(len(history), 2)

    def xy(i: int, v: float) -> str:
        x = PAD + (W - 2 * PAD) * i / (n - 1)
        y = H - PAD - (H - 2 * PAD) * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{W}" height="{H}" fill="white"/>',
             f'<text x="{PAD}" y="24" font-size="14">{escape(title)}: loss per epoch</text>',
             f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#888"/>',
             f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{H - PAD}" stroke="#888"/>',
             f'<text x="{PAD - 4}" y="{PAD + 4}" text-anchor="end">{hi:.3g}</text>',
             f'<text x="{PAD - 4}" y="{H - PAD}" text-anchor="end">{lo:.3g}</text>',
             f'<text x="{W - PAD}" y="{H - PAD + 16}" text-anchor="end">epoch {len(history)}'
             '</text>']
    for k, (name, vs) in enumerate(series):
        pts = " ".join(xy(i, v) for i, v in enumerate(vs) if v is not None and math.isfinite(v))
        color = COLORS[k % len(COLORS)]
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{W - PAD}" y="{PAD + 16 * k}" text-anchor="end" '
                     f'fill="{color}">{name}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def confusion_svg(cm: list[list[int]], classes: list, title: str) -> str:
    """The confusion matrix as a heat map: rows true classes, columns predicted ones."""
    k = len(classes)
    cell = max(18, min(56, 480 // max(k, 1)))
    left, top = 90, 60
    w, h = left + k * cell + 20, top + k * cell + 40
    peak = max((max(r) for r in cm), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="10" y="20" font-size="14">{escape(title)}</text>',
             f'<text x="{left}" y="{top - 25}">predicted</text>',
             f'<text x="10" y="{top + 12}">true</text>']
    for j, c in enumerate(classes):
        parts.append(f'<text x="{left + j * cell + cell / 2:.0f}" y="{top - 8}" '
                     f'text-anchor="middle">{escape(str(c))[:8]}</text>')
    for i, (c, row) in enumerate(zip(classes, cm, strict=True)):
        y = top + i * cell
        parts.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4:.0f}" text-anchor="end">'
                     f'{escape(str(c))[:10]}</text>')
        for j, v in enumerate(row):
            shade = int(255 - 200 * v / peak)
            ink = "white" if v > peak / 2 else "black"
            parts.append(f'<rect x="{left + j * cell}" y="{y}" width="{cell}" height="{cell}" '
                         f'fill="rgb({shade},{shade},255)" stroke="#ccc"/>')
            parts.append(f'<text x="{left + j * cell + cell / 2:.0f}" y="{y + cell / 2 + 4:.0f}"'
                         f' text-anchor="middle" fill="{ink}">{v}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
