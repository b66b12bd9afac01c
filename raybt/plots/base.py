"""Shared pieces of the report figures: figure and PNG writing, axes
formatting, min/max downsampling, asset colours and styles, legends, event
times.  Every figure module draws on its own :class:`matplotlib.figure.Figure`
(no pyplot) and writes it with :func:`_save` (looked up on this module at
call time, so a test can wrap it).  Figures are laid out by
:class:`~raybt.plots.layout.FittedLayout` (margins in inches from the texts
actually drawn, at a fraction of the cost of constrained layout).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402

from raybt.plots.layout import FittedLayout, _canvas  # noqa: E402

DPI = 110
#: most points drawn per series: a min and a max per bucket, plus the first and last row
MAX_POINTS = 4000
#: above this many assets the figures summarise rather than draw every asset
MANY_ASSETS = 20
#: attribution bars: every asset up to this many, else the largest |PnL| ones plus "others"
MAX_BARS = 30
_BEST_WORST = 3  # sleeves named at each end of the equity figure at many assets
_LABELLED = 5  # frontier points labelled at each end (return / volatility) at many assets
_MAX_LABELS = 40  # asset labels per heatmap axis
_LOG_RATIO = 10.0  # equity curves spanning more than this factor get a log scale
#: a halted period is shaded at least this share of the time axis wide
_MIN_SPAN = 0.006
_ROW_BLOCK = 1 << 23  # elements per block when scanning an assets x bars array
_PORTFOLIO_COLOR = "#111111"
_POS, _NEG = "#2e8b57", "#c0392b"
# breaker trips, resumes, rebalances and halted periods: the same look in every figure
_TRIP, _RESUME, _REBAL, _HALT = "#b2182b", "#1a9850", "#1f77b4", "#fdae61"


# ------------------------------------------------------------------ helpers

def _figure(width: float, height: float, layout: str = "fitted") -> Figure:
    """A white ``width`` x ``height`` inch figure at :data:`DPI`.  ``layout``:
    ``"fitted"`` (default) sets its margins in inches from the texts actually
    drawn (:class:`FittedLayout`: 10-90 ms a report figure); ``"constrained"``
    is matplotlib's constrained layout (the extent of every artist, twice:
    40-180 ms), for a figure :class:`FittedLayout` cannot describe."""
    engine = FittedLayout() if layout == "fitted" else layout
    return Figure(figsize=(width, height), dpi=DPI, layout=engine, facecolor="white")


def _save(fig: Figure, path) -> Path:
    """Render with Agg and write an RGB PNG (zlib level 1: about half the
    encoding time of ``savefig``'s RGBA at level 6, files ~10 % larger)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas = _canvas(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(path, format="PNG",
                                                               compress_level=1)
    return path  # no fig.clear(): it rebuilds empty axes (~40 ms) for a figure about to go


def _title(ax, text: str, **kw) -> None:
    """``ax.set_title`` at a fixed height: matplotlib's automatic title
    placement measures the whole y axis again at every layout pass and draw."""
    ax.set_title(text, y=1.0, **kw)


def _no_data(ax, message: str = "no data") -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            fontsize=12, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _pct_axis(axis, decimals: int | None = None) -> None:
    axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=decimals))


def _money(v: float, _pos=None) -> str:
    if not math.isfinite(v):
        return "n/a"
    a = abs(v)
    if a >= 1e9:
        s = f"{v / 1e9:.2f}B"
    elif a >= 1e6:
        s = f"{v / 1e6:.2f}M"
    elif a >= 1e4:
        s = f"{v / 1e3:.1f}k"
    elif a >= 1e3:
        s = f"{v / 1e3:.2f}k"
    else:
        s = f"{v:.0f}"
    return s


def _money_tick(v: float, _pos=None) -> str:
    """Axis tick version of :func:`_money` (no trailing zeros: 2k, 2.5k, 1.25M)."""
    s = _money(v)
    if "." in s:
        num, unit = (s[:-1], s[-1]) if s[-1].isalpha() else (s, "")
        s = num.rstrip("0").rstrip(".") + unit
    return s


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _to_utc_index(index) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(index, utc=True))


def _to_times(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(values), utc=True))


def _dates(times) -> np.ndarray:
    """Timestamps as matplotlib date numbers (UTC), vectorised: matplotlib's
    own conversion of tz-aware times goes through Python objects one by one."""
    idx = _to_utc_index(times)
    return mdates.date2num(idx.tz_convert(None).to_numpy(dtype="datetime64[ns]"))


# ------------------------------------------------------------------ downsampling

def minmax_rows(values, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted row positions of a shape-preserving subsample of ``values``.

    ``values`` (1-D, finite) is cut into buckets of ``L = ceil(n / b)``
    consecutive rows (the last one shorter), ``b = (max_points - 2) // 2``;
    each bucket keeps the row of its minimum and of its maximum (the first
    one on ties), and the first and last rows are kept, so at most
    ``max_points`` rows remain and every peak and trough is drawn.  Inputs
    of at most ``max_points`` rows keep every row.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n <= max_points:
        return np.arange(n)
    n_buckets = max(1, (max_points - 2) // 2)
    size = -(-n // n_buckets)
    n_buckets = -(-n // size)
    pad = n_buckets * size - n
    # padding repeats the last value after it, so argmin/argmax (first occurrence) never pick it
    w = np.concatenate([v, np.full(pad, v[-1])]) if pad else v
    w = w.reshape(n_buckets, size)
    base = np.arange(n_buckets) * size
    return np.unique(np.concatenate([[0, n - 1], base + w.argmin(axis=1),
                                     base + w.argmax(axis=1)]))


def downsample(data: pd.Series, max_points: int = MAX_POINTS) -> pd.Series:
    """``data`` without its NaN rows, reduced to at most ``max_points`` rows
    that keep each bucket's minimum and maximum (see :func:`minmax_rows`).

    The result is a subset of the original rows (same index labels and
    values, in order): the first and last rows, and the extremes of every
    bucket, so drawdown troughs and equity peaks survive.  Short inputs are
    returned unchanged (as the same object when they have no NaN).
    """
    s = data if isinstance(data, pd.Series) else pd.Series(data)
    if s.isna().any():
        s = s.dropna()
    if len(s) <= max_points:
        return s
    return s.iloc[minmax_rows(s.to_numpy(dtype=np.float64), max_points)]


def _sample_rows(n: int, max_points: int = MAX_POINTS // 2) -> np.ndarray:
    """Every ``L``-th row (``L = ceil(n / max_points)``) from 0, and the last row."""
    step = max(1, -(-n // max_points))
    rows = np.arange(0, n, step)
    return rows if rows[-1] == n - 1 else np.append(rows, n - 1)


# tab10 then ten further colours that stay distinct from it (and readable on white)
#: tab10: ten hues far apart (CIELAB distance >= 27 between any two); a sleeve's
#: style beyond the tenth repeats a hue with another dash (and marker), so two
#: legend entries always differ in colour or in line style
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf"]
_LINESTYLES = ["-", (0, (5, 2)), (0, (1, 1.5)), (0, (5, 2, 1, 2))]
_MARKERS = ["o", "s", "^", "D"]


def asset_styles(assets: Iterable[str]) -> dict[str, dict]:
    """``{asset: {"color", "ls", "marker"}}``: the ten tab10 hues with a solid
    line and a circle, then the same hues dashed with a square, dotted with
    a triangle, dash-dotted with a diamond (up to 40 assets); beyond, a
    sampled continuous map (solid, circles)."""
    assets = list(assets)
    n = len(assets)
    if n <= len(_PALETTE) * len(_LINESTYLES):
        return {a: {"color": _PALETTE[i % 10], "ls": _LINESTYLES[i // 10],
                    "marker": _MARKERS[i // 10]} for i, a in enumerate(assets)}
    cmap = colormaps["turbo"]
    return {a: {"color": cmap(0.05 + 0.9 * i / max(n - 1, 1)), "ls": "-", "marker": "o"}
            for i, a in enumerate(assets)}


def asset_colors(assets: Iterable[str]) -> dict[str, tuple | str]:
    """Each asset's colour of :func:`asset_styles` (distinct up to ten assets;
    beyond, draw with the styles' dashes or markers too)."""
    return {a: s["color"] for a, s in asset_styles(assets).items()}


def _legend_outside(fig: Figure, ax, n_items: int, title: str | None = None,
                    handles=None) -> None:
    """Legend inside (best) for a few entries, outside the axes on the right
    (in columns of at most 22) for many."""
    kw = {} if handles is None else {"handles": handles}
    if n_items <= 5:
        ax.legend(loc="best", fontsize=9, framealpha=0.85, **kw)
        return
    ncol = max(1, math.ceil(n_items / 22))
    fs = 8 if n_items <= 22 else 7
    fig.legend(loc="outside right upper", fontsize=fs, ncol=ncol, frameon=False,
               title=title, title_fontsize=fs, **kw)


def _portfolio_series(equity) -> pd.Series:
    if isinstance(equity, pd.Series):
        return equity.astype(float)
    if "equity" in equity.columns:
        return equity["equity"].astype(float)
    cols = [c for c in equity.columns if c != "drawdown"]
    return equity[cols].sum(axis=1).astype(float)


def _breaker_spans(events: pd.DataFrame | None, end) -> list[tuple]:
    """(trip_time, resume_time or ``end``) pairs from an events table."""
    if events is None or len(events) == 0 or "event" not in events.columns:
        return []
    times = _to_times(events["decided_at"])
    kinds = events["event"].astype(str).str.lower()
    spans, start = [], None
    for t, k in zip(times, kinds):
        if "trip" in k and start is None:
            start = t
        elif "resume" in k and start is not None:
            spans.append((start, t))
            start = None
    if start is not None:
        spans.append((start, end))
    return spans


def _event_times(events: pd.DataFrame | None, word: str) -> pd.DatetimeIndex:
    if events is None or len(events) == 0 or "event" not in events.columns:
        return pd.DatetimeIndex([], tz="UTC")
    mask = events["event"].astype(str).str.lower().str.contains(word, regex=False)
    return _to_times(events.loc[mask, "decided_at"])


def _row_blocks(n_rows: int, n_cols: int, multiple: int = 1):
    """``(start, stop)`` row ranges of about :data:`_ROW_BLOCK` elements each
    (a multiple of ``multiple`` rows), so a scan over assets x bars never
    copies the whole array."""
    rows = max(multiple, (_ROW_BLOCK // max(n_cols, 1)) // multiple * multiple)
    return [(a, min(a + rows, n_rows)) for a in range(0, n_rows, rows)]


def _column_positions(frame: pd.DataFrame, names: list) -> np.ndarray | None:
    """Positions of ``names`` in ``frame``'s columns (None when they are all of them, in order)."""
    if list(frame.columns) == list(names):
        return None
    return frame.columns.get_indexer(names)


def _block(values: np.ndarray, a: int, b: int, cols: np.ndarray | None) -> np.ndarray:
    blk = values[a:b]
    return blk if cols is None else blk[:, cols]
