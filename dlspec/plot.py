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
