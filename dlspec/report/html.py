"""The page shell every report shares: one self-contained HTML file, its policy forbidding
any fetch, its styles inline, and small helpers for tables and sections."""

from __future__ import annotations

import math
from html import escape

# Nothing may be fetched or run: styles inline, images only as data: URIs, no script.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0;
 background:#f6f7f9}
main{max-width:1340px;margin:0 auto;padding:18px 24px 40px}
header{background:#fff;border:1px solid #ddd;border-radius:6px;padding:14px 18px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 6px}
.state{color:#444}
.headline{font-size:28px;font-weight:600;margin-top:6px}
.headline small{font-size:13px;font-weight:400;color:#666}
.grid{display:flex;flex-wrap:wrap;gap:12px}
.grid svg,.grid img{background:#fff;border:1px solid #ddd;border-radius:4px}
table{border-collapse:collapse;background:#fff;margin:4px 0}
th,td{border:1px solid #ddd;padding:3px 9px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f2f5}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:12px;
 max-height:520px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px}
figure img{max-width:600px;border:0}
figcaption{font-size:12px;color:#555;margin-top:4px}
.muted{color:#777}
code{font-size:12px}
"""


def page(title: str, body: list[str]) -> str:
    """A whole HTML document: ``body`` parts inside <main>."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<meta name=\"generator\" content=\"dlspec report\">"
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>\n<body><main>\n"
            + "\n".join(body) + "\n</main></body></html>\n")


def section(ident: str, title: str, parts: list[str]) -> str:
    return (f'<section id="{ident}"><h2>{escape(title)}</h2>\n' + "\n".join(parts)
            + "\n</section>")


def fmt(v) -> str:
    """A value for a table cell: 4 significant decimals for floats, ints as they are."""
    if isinstance(v, bool) or v is None:
        return escape(str(v).lower() if isinstance(v, bool) else "")
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3) else f"{v:.4f}"
    return escape(str(v))


def table(headers: list[str], rows: list[list], cls: str = "") -> str:
    """An HTML table; numbers right-aligned, everything escaped."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{fmt(c)}</td>' if isinstance(c, (int, float))
                         and not isinstance(c, bool) else f"<td>{fmt(c)}</td>" for c in r)
        + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def grid(items: list[str]) -> str:
    return '<div class="grid">' + "".join(items) + "</div>"
