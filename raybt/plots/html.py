"""HTML pieces of the report: the inline stylesheet, escaping, number
formats, tables and embedded PNGs (no scripts, no external resources)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

import numpy as np

_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;
background:#f4f5f7;color:#1d2330;font-size:14px;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:24px 28px 48px}
header.top{background:#1f3b73;color:#fff;padding:22px 28px}
header.top h1{margin:0 0 6px;font-size:24px}
header.top p{margin:2px 0;opacity:.92;overflow-wrap:anywhere}
h2{font-size:18px;margin:32px 0 10px;border-bottom:2px solid #d5dbe6;padding-bottom:4px}
section{background:#fff;border-radius:6px;padding:14px 18px 18px;margin-top:18px;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
section h2{margin-top:4px}
section h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid #e3e7ee;text-align:right;white-space:nowrap}
th{background:#eef1f6;font-weight:600}
td.l,th.l{text-align:left}
tr.total td{font-weight:600;border-top:2px solid #9aa5b8}
.pos{color:#1e7b45}.neg{color:#b3261e}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:10px}
.kpi{background:#f7f9fc;border:1px solid #e3e7ee;border-radius:5px;padding:8px 10px}
.kpi .v{font-size:18px;font-weight:600}
.kpi .k{font-size:12px;color:#5a6477}
figure{margin:8px 0 0}
figure img{max-width:100%;height:auto;border:1px solid #e3e7ee}
figcaption{font-size:13px;color:#4a5468;margin-top:4px}
pre{background:#f7f9fc;border:1px solid #e3e7ee;padding:10px;overflow-x:auto;font-size:12.5px}
.note{font-size:12.5px;color:#5a6477}
.scroll{overflow-x:auto}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _finite(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
        and math.isfinite(float(v))


def _pct(v, digits: int = 2) -> str:
    return f"{100.0 * float(v):.{digits}f} %" if _finite(v) else "n/a"


def _num(v, digits: int = 2) -> str:
    return f"{float(v):,.{digits}f}" if _finite(v) else "n/a"


def _int(v) -> str:
    return f"{int(v):,d}" if _finite(v) else "n/a"


def _signed_cls(v) -> str:
    if not _finite(v) or float(v) == 0:
        return ""
    return "pos" if float(v) > 0 else "neg"


def _td(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def _table(headers: list[str], rows: list[str], left=1) -> str:
    """A table; ``left`` = number of leading left-aligned columns, or a set
    of column indexes to left-align."""
    lefts = set(range(left)) if isinstance(left, int) else set(left)
    head = "".join(f'<th class="l">{_e(h)}</th>' if i in lefts else f"<th>{_e(h)}</th>"
                   for i, h in enumerate(headers))
    return (f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f"data:image/png;base64,{data}"
