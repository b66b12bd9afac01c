"""The figures of a portfolio run report, one function per PNG.

Every ``plot_*`` function takes pandas inputs and an output path, draws on
its own :class:`matplotlib.figure.Figure` (no pyplot, so no global figure
state survives a call), writes a PNG and returns the path.  Conventions:
fractions are shown as percent, timestamps are UTC.  Figures stay fast and
readable from a handful of assets to a thousand:

* long series are drawn with at most :data:`MAX_POINTS` points, keeping
  each bucket's minimum and maximum (:func:`downsample`), so peaks and
  drawdown troughs survive;
* above :data:`MANY_ASSETS` assets a figure summarises instead of drawing
  one artist per asset (sleeve percentile bands plus the best and worst
  sleeves named, the largest PnLs plus "others", a few labelled frontier
  points, a clustered heatmap without cell values) and says so in its title.

Empty or degenerate inputs give a figure with a "no data" note rather than
an error.
"""

from __future__ import annotations

import functools
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
from matplotlib.ticker import (  # noqa: E402
    FuncFormatter,
    LogLocator,
    NullFormatter,
    PercentFormatter,
)

from raybt import metrics as _m  # noqa: E402

__all__ = [
    "DPI", "MANY_ASSETS", "MAX_POINTS", "asset_colors", "asset_frontier_points",
    "cluster_order", "downsample", "minmax_rows", "plot_attribution", "plot_correlation",
    "plot_drawdown", "plot_equity", "plot_frontier", "plot_multipliers",
    "plot_rolling_sharpe", "rolling_window_bars",
]

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
_ROW_BLOCK = 1 << 23  # elements per block when scanning an assets x bars array
_PORTFOLIO_COLOR = "#111111"
_POS, _NEG = "#2e8b57", "#c0392b"
_TRIP, _RESUME, _REBAL, _HALT = "#c0392b", "#2e8b57", "#1f77b4", "#f4b6b6"


# ------------------------------------------------------------------ helpers

def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained", facecolor="white")


def _canvas(fig: Figure):
    """The figure's Agg canvas (made once: its renderer, and so matplotlib's
    text-size cache, is shared by a layout pass and the final draw)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)


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
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
            "#7f7f7f", "#bcbd22", "#17becf", "#000075", "#808000", "#f032e6", "#469990",
            "#800000", "#42d4f4", "#4b0082", "#aaaa00", "#ff6f61", "#5c3d11"]


def asset_colors(assets: Iterable[str]) -> dict[str, tuple | str]:
    """A distinct colour per asset (a fixed 20-colour palette, then a sampled
    continuous map beyond 20 assets)."""
    assets = list(assets)
    n = len(assets)
    if n <= len(_PALETTE):
        return {a: _PALETTE[i] for i, a in enumerate(assets)}
    cmap = colormaps["turbo"]
    return {a: cmap(0.05 + 0.9 * i / max(n - 1, 1)) for i, a in enumerate(assets)}


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


# ------------------------------------------------------------------ 1 equity

class _Sleeves:
    """The sleeves as growth of 1.0 from the first bar, without copying the
    assets x bars data: ``cumprod(1 + r)`` of the flow-adjusted returns (a
    1.0 row first) when ``returns`` holds every asset, else the sleeve
    equity divided by its first non-zero value."""

    def __init__(self, equity: pd.DataFrame, returns: pd.DataFrame | None, assets: list):
        self.assets = assets
        self.from_returns = returns is not None and set(assets) <= set(returns.columns)
        if self.from_returns:
            self.frame = returns
            self.times = _to_utc_index(equity.index[:1].append(returns.index))
        else:
            self.frame = equity
            self.times = _to_utc_index(equity.index)
        self.cols = _column_positions(self.frame, assets)

    @functools.cached_property
    def values(self) -> np.ndarray:
        return self.frame.to_numpy(dtype=np.float64)  # a view when the frame is one float block

    def column(self, asset) -> np.ndarray | None:
        """One sleeve's full growth series (None for a sleeve that never held equity)."""
        v = self.frame[asset].to_numpy(dtype=np.float64)
        if self.from_returns:
            g = np.empty(len(v) + 1)
            g[0] = 1.0
            np.cumprod(1.0 + np.where(np.isfinite(v), v, 0.0), out=g[1:])
            return g
        nz = np.flatnonzero((v != 0) & np.isfinite(v))
        return v / v[nz[0]] if len(nz) else None

    def samples(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, growth)``: every sleeve's growth (rows x assets) at evenly
        spaced rows including the first and last (NaN for a sleeve that
        never held equity)."""
        n, m = len(self.times), len(self.assets)
        rows = _sample_rows(n)
        if not self.from_returns:
            first = np.full(m, np.nan)
            for a, b in _row_blocks(n, m):
                blk = _block(self.values, a, b, self.cols)
                ok = (blk != 0) & np.isfinite(blk)
                hit = ok.any(axis=0) & np.isnan(first)
                first[hit] = blk[ok[:, hit].argmax(axis=0), np.flatnonzero(hit)]
                if not np.isnan(first).any():
                    break
            vals = self.values[rows] if self.cols is None else self.values[rows][:, self.cols]
            return rows, vals / first
        # growth[k * step] = prod(1 + r[:k * step]): products over segments of `step` returns
        step = rows[1] - rows[0] if len(rows) > 1 else 1
        full = (n - 1) // step * step
        segments = [np.ones((1, m))]
        blocks = _row_blocks(full, m, multiple=step)
        buf = np.empty((blocks[0][1] - blocks[0][0], m)) if blocks else None
        for a, b in blocks:
            segments.append(_segment_products(_block(self.values, a, b, self.cols), step,
                                              buf[:b - a]))
        if full < n - 1:
            tail = _block(self.values, full, n - 1, self.cols)
            segments.append(_segment_products(tail, n - 1 - full, np.empty(tail.shape)))
        return rows, np.cumprod(np.concatenate(segments), axis=0)


def _segment_products(r: np.ndarray, step: int, buf: np.ndarray) -> np.ndarray:
    """``prod(1 + r)`` over each run of ``step`` rows of ``r`` (a multiple of
    ``step`` rows), non-finite returns counted as 0; ``buf`` is scratch of
    ``r``'s shape."""
    np.add(r, 1.0, out=buf)
    out = buf[0::step].copy()
    for k in range(1, step):
        out *= buf[k::step]
    if not np.isfinite(out).all():  # a NaN/inf return somewhere: redo without it
        buf[~np.isfinite(buf)] = 1.0
        out = buf[0::step].copy()
        for k in range(1, step):
            out *= buf[k::step]
    return out


def _draw_line(ax, x: np.ndarray, values: np.ndarray, **kw):
    """One line through the finite points, reduced by :func:`minmax_rows`."""
    ok = np.isfinite(values)
    if not ok.all():
        x, values = x[ok], values[ok]
    rows = minmax_rows(values)
    return ax.plot(x[rows], values[rows], **kw)[0]


def plot_equity(equity: pd.DataFrame, path, *, returns: pd.DataFrame | None = None,
                assets: Iterable[str] | None = None, title: str = "Equity: portfolio vs sleeves"
                ) -> Path:
    """Portfolio equity (thick) and the sleeves, both as growth of 1.0 from
    the first bar.

    ``equity`` is the ``portfolio_equity`` frame.  When ``returns`` (the
    sleeves' flow-adjusted per-bar returns, e.g. ``analyse_run(...)["frames"]
    ["returns"]``) holds every asset, a sleeve's curve is ``cumprod(1 + r)``
    so rebalancing cash transfers do not show as jumps; otherwise it is the
    sleeve equity divided by its first non-zero value.  Up to
    :data:`MANY_ASSETS` sleeves each gets a coloured line and a legend entry
    (ordered by final value); beyond, the sleeves are shown as percentile
    bands (5-95 % and 25-75 % across sleeves at evenly spaced bars, median
    dashed) with the :data:`_BEST_WORST` best and worst by final value drawn
    and named.  When the curves span more than a factor of
    :data:`_LOG_RATIO` the growth axis is logarithmic (its label says so).
    """
    if assets is None:
        assets = [c for c in equity.columns if c not in ("equity", "drawdown")]
    assets = list(assets)
    fig = _figure(12, 6)
    ax = fig.add_subplot()
    port = _portfolio_series(equity)
    if len(port) == 0 or not np.isfinite(port.iloc[0]) or port.iloc[0] == 0:
        _no_data(ax, "no equity data")
        _title(ax, title)
        return _save(fig, path)

    sleeves = _Sleeves(equity, returns, assets)
    x = _dates(sleeves.times)
    handles: dict[str, object] = {}
    finals: dict[str, float] = {}
    if len(assets) <= MANY_ASSETS:
        colors = asset_colors(assets)
        lw = 1.0 if len(assets) <= 10 else 0.8
        for a in assets:
            g = sleeves.column(a)
            if g is None:
                continue
            handles[a] = _draw_line(ax, x, g, lw=lw, alpha=0.85, color=colors[a], label=a)
            finals[a] = g[np.isfinite(g)][-1] if np.isfinite(g).any() else -np.inf
    else:
        rows, grid = sleeves.samples()
        live = np.isfinite(grid).all(axis=0)
        n_live = int(live.sum())
        k = min(_BEST_WORST, n_live // 2)
        if n_live:
            t = x[rows]
            p5, p25, p50, p75, p95 = np.percentile(grid[:, live], [5, 25, 50, 75, 95], axis=1)
            band = "#4c72b0"
            handles["band95"] = ax.fill_between(t, p5, p95, color=band, alpha=0.16, lw=0,
                                                label="5-95 % of sleeves")
            handles["band50"] = ax.fill_between(t, p25, p75, color=band, alpha=0.32, lw=0,
                                                label="25-75 % of sleeves")
            handles["median"], = ax.plot(t, p50, color="#1f3b73", lw=1.3, ls="--",
                                         label="Median sleeve")
            finals.update({"band95": -1e300, "band50": -1e300, "median": float(p50[-1])})
        final = np.where(live, grid[-1], np.nan)
        order = np.argsort(-np.nan_to_num(final, nan=-np.inf), kind="stable")  # dead last
        named = ([(i, "Best", c) for i, c in zip(order[:k], ["#006d2c", "#31a354", "#74c476"])]
                 + [(i, "Worst", c) for i, c in zip(order[n_live - k:n_live][::-1],
                                                     ["#a50f15", "#de2d26", "#fb6a4a"])])
        for i, kind, color in named:
            label = f"{kind}: {assets[i]} ({final[i]:.2f})"
            handles[label] = _draw_line(ax, x, sleeves.column(assets[i]), lw=1.1, color=color,
                                        alpha=0.95, label=label, zorder=8)
            finals[label] = final[i]
    growth = (port / port.iloc[0]).to_numpy(dtype=np.float64)
    handles["Portfolio"] = _draw_line(ax, _dates(port.index), growth, lw=2.8,
                                      color=_PORTFOLIO_COLOR, label="Portfolio", zorder=10)
    finals["Portfolio"] = growth[np.isfinite(growth)][-1] if np.isfinite(growth).any() else 0.0
    ax.axhline(1.0, color="#888888", lw=0.8, ls=":", zorder=1)
    net = " net of rebalancing transfers" if sleeves.from_returns else ""
    if len(assets) > MANY_ASSETS:
        note = f" ({len(assets):,} sleeves{net}: percentile bands, best and worst {k} named)"
    else:
        note = f" (sleeves{net})" if net else ""
    _title(ax, title + note, fontsize=12)
    lo, hi = ax.dataLim.y0, ax.dataLim.y1
    if lo > 0 and hi / lo > _LOG_RATIO:  # curves from 0.1x to 10x: a ratio scale shows both
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_ylabel("Growth of 1.0 (start = 1.0, log scale)")
    else:
        ax.set_ylabel("Growth of 1.0 (start = 1.0)")
    ax.set_xlabel("Date (UTC)")
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.margins(x=0.01)
    # legend ordered like the curves' final values (top to bottom), the bands last
    ranked = sorted(handles, key=lambda k: -finals.get(k, -np.inf))
    _legend_outside(fig, ax, len(handles), handles=[handles[k] for k in ranked],
                    title="Ordered by final value" if len(handles) > 5 else None)
    return _save(fig, path)


# ------------------------------------------------------------------ 2 drawdown

def plot_drawdown(drawdown: pd.Series, path, *, events: pd.DataFrame | None = None,
                  breaker_level: float | None = None,
                  title: str = "Portfolio drawdown") -> Path:
    """Drawdown (positive fraction) filled downwards on a percent axis, with
    the breaker's trips (red), resumes (green) and halted spans (shaded)
    from ``events`` (columns ``decided_at``, ``event``) and an optional
    dashed line at the breaker threshold ``breaker_level``.  Long series
    keep each bucket's deepest and shallowest point (:func:`downsample`)."""
    fig = _figure(12, 4.5)
    ax = fig.add_subplot()
    dd = pd.Series(drawdown, dtype=float).dropna()
    if len(dd) == 0:
        _no_data(ax, "no drawdown data")
        _title(ax, title)
        return _save(fig, path)
    dd.index = _to_utc_index(dd.index)
    shown = -downsample(dd)
    x = _dates(shown.index)
    ax.fill_between(x, shown.to_numpy(), 0.0, color="#c0392b", alpha=0.35, lw=0,
                    label="Drawdown")
    ax.plot(x, shown.to_numpy(), color="#8e1b10", lw=0.8)
    end = dd.index[-1]
    for i, (t0, t1) in enumerate(_breaker_spans(events, end)):
        ax.axvspan(*_dates([t0, t1]), color="#777777", alpha=0.35, lw=0,
                   label="Breaker halted" if i == 0 else None)
    trips, resumes = _event_times(events, "trip"), _event_times(events, "resume")
    xaxis = ax.get_xaxis_transform()
    if len(trips):
        ax.vlines(_dates(trips), 0, 1, transform=xaxis, color=_TRIP, lw=1.2, label="Breaker trip")
    if len(resumes):
        ax.vlines(_dates(resumes), 0, 1, transform=xaxis, color=_RESUME, lw=1.2, ls="--",
                  label="Breaker resume")
    if breaker_level is not None and math.isfinite(breaker_level) and breaker_level > 0:
        ax.axhline(-breaker_level, color="#555555", lw=1.0, ls=":",
                   label=f"Breaker level ({breaker_level:.0%})")
    lo = min(float(shown.min()), -(breaker_level or 0.0))
    ax.set_ylim(lo * 1.12 if lo < 0 else -0.01, 0.0)
    _pct_axis(ax.yaxis)
    ax.set_ylabel("Drawdown from peak (%)")
    ax.set_xlabel("Date (UTC)")
    _title(ax, f"{title} (max {float(dd.max()):.2%})", fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(*_dates(dd.index[[0, -1]]))
    fig.legend(loc="outside lower center", ncol=5, fontsize=9, frameon=False)
    return _save(fig, path)


# ------------------------------------------------------------------ 3 correlation

def cluster_order(corr: pd.DataFrame) -> np.ndarray:
    """Positions of ``corr``'s assets in an order that puts correlated assets
    next to each other: average-linkage hierarchical clustering on the
    distance ``1 - correlation`` (undefined correlations count as 0), leaves
    in optimal order up to 200 assets (scipy).  Fewer than 3 assets keep
    their order."""
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    n = len(corr)
    if n < 3:
        return np.arange(n)
    c = np.nan_to_num(corr.to_numpy(dtype=np.float64), nan=0.0)
    c = (c + c.T) / 2.0
    d = np.clip(1.0 - c, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    condensed = squareform(d, checks=False)
    z = linkage(condensed, method="average")
    if n <= 200:
        z = optimal_leaf_ordering(z, condensed)
    return leaves_list(z)


def plot_correlation(corr: pd.DataFrame, path, *,
                     title: str = "Correlation of sleeve returns") -> Path:
    """Heatmap of a correlation matrix, assets ordered by cluster
    (:func:`cluster_order`), diverging colormap fixed to [-1, 1] with a
    colorbar; NaN cells grey.  Up to :data:`MANY_ASSETS` assets the values
    are written in the cells below the diagonal (two decimals, font sized to
    the cells); with more assets than fit, every k-th asset is labelled (the
    title says so)."""
    n = len(corr)
    side = min(12.5 if n <= 200 else 10.5, max(5.5, 0.55 * n + 3.0))
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    if n == 0:
        _no_data(ax, "no correlation data")
        _title(ax, title)
        return _save(fig, path)
    order = cluster_order(corr)
    values = corr.to_numpy(dtype=float)[np.ix_(order, order)]
    cmap = colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0,
                   interpolation="nearest" if n <= 300 else "antialiased", aspect="equal")
    xlabels = [str(corr.columns[i]) for i in order]
    ylabels = [str(corr.index[i]) for i in order]
    axis_pt = (side - 2.6) * 72.0  # approximate axes side in points
    cell_pt = axis_pt / n
    label_fs = max(6.0, min(10.0, 0.3 * cell_pt))
    # labels at least 1.8 font sizes apart and at most _MAX_LABELS per axis (each tick
    # label costs ~5 ms to lay out and draw)
    step = max(1, math.ceil(n * 1.8 * label_fs / axis_pt), math.ceil(n / _MAX_LABELS))
    ticks = np.arange(0, n, step)
    ax.set_xticks(ticks, [xlabels[i] for i in ticks], rotation=45 if step == 1 else 90,
                  ha="right" if step == 1 else "center", rotation_mode="anchor"
                  if step == 1 else "default", fontsize=label_fs)
    ax.set_yticks(ticks, [ylabels[i] for i in ticks], fontsize=label_fs)
    if n <= MANY_ASSETS:  # below the diagonal only: the matrix is symmetric
        fs = max(4.5, min(11.0, 0.22 * cell_pt))
        for i in range(n):
            for j in range(i):
                v = values[i, j]
                text = "n/a" if not math.isfinite(v) else f"{v:.2f}"
                color = "white" if math.isfinite(v) and abs(v) > 0.6 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=fs, color=color)
    if n <= 40:
        ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
        ax.grid(which="minor", color="white", lw=0.6)
        ax.tick_params(which="minor", length=0)
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
    cb.set_label("Pearson correlation of per-bar returns")
    note = "ordered by cluster"
    if n <= MANY_ASSETS and n > 1:
        note += ", values below the diagonal"
    if step > 1:
        note += f", every {_ordinal(step)} asset labelled"
    _title(ax, f"{title} ({n:,} assets, {note})" if n > MANY_ASSETS else f"{title} ({note})",
                 fontsize=12)
    return _save(fig, path)


# ------------------------------------------------------------------ 4 attribution

def plot_attribution(pnl: pd.Series, risk_share: pd.Series, path, *, currency: str = "",
                     title: str = "Attribution") -> Path:
    """Two panels sharing the asset order (best PnL on top): PnL per asset in
    currency (green gains, red losses) and each asset's share of portfolio
    variance in percent (negative = diversifying).  Beyond :data:`MAX_BARS`
    assets only the ``MAX_BARS - 5`` largest by |PnL| get a bar; the rest are
    summed into one grey "others" bar at the bottom (the title says so)."""
    pnl = pd.Series(pnl, dtype=float)
    risk_share = pd.Series(risk_share, dtype=float).reindex(pnl.index)
    n = len(pnl)
    shown_n = n if n <= MAX_BARS else MAX_BARS - 5
    rows = shown_n + (n > shown_n)
    fig = _figure(13, max(4.0, 0.36 * rows + 1.9))
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    if n == 0:
        _no_data(ax1)
        _no_data(ax2)
        fig.suptitle(title)
        return _save(fig, path)
    p_all = pnl.fillna(0.0)
    if shown_n < n:
        keep = p_all.abs().sort_values(ascending=False, kind="stable").index[:shown_n]
        rest = p_all.index.difference(keep, sort=False)
        title = (f"{title}: the {shown_n} assets with the largest |PnL| of {n:,}; "
                 f"the other {len(rest):,} summed as \"others\"")
    else:
        keep, rest = p_all.index, p_all.index[:0]
    order = p_all.reindex(keep).sort_values(ascending=True, kind="stable").index
    names = [str(a) for a in order]
    p = p_all.reindex(order).to_numpy()
    r = risk_share.reindex(order).to_numpy()
    colors1 = list(np.where(p >= 0, _POS, _NEG))
    colors2 = list(np.where(np.nan_to_num(r) >= 0, "#4c72b0", "#dd8452"))
    if len(rest):
        rr_rest = risk_share.reindex(rest).to_numpy()
        names = [f"others ({len(rest):,} assets)"] + names
        p = np.r_[p_all.reindex(rest).sum(), p]
        r = np.r_[np.nansum(rr_rest) if np.isfinite(rr_rest).any() else np.nan, r]
        colors1 = ["#8c8c8c"] + colors1
        colors2 = ["#8c8c8c"] + colors2
    y = np.arange(len(names))
    fs = 8 if len(names) > 12 else 9

    ax1.barh(y, p, color=colors1, height=0.7)
    ax1.axvline(0, color="#333333", lw=0.8)
    ax1.set_yticks(y, names, fontsize=fs + 1)
    ax1.xaxis.set_major_formatter(FuncFormatter(_money_tick))
    unit = f" ({currency})" if currency else " (account currency)"
    ax1.set_xlabel("PnL" + unit)
    _title(ax1, "Performance attribution: PnL per asset", fontsize=11)
    ax1.grid(True, axis="x", alpha=0.3)
    span = max(float(np.nanmax(np.abs(p))), 1e-12)
    for yi, v in zip(y, p):
        ax1.text(v + (0.01 * span if v >= 0 else -0.01 * span), yi, _money(v),
                 va="center", ha="left" if v >= 0 else "right", fontsize=fs)
    lo, hi = min(0.0, float(p.min())), max(0.0, float(p.max()))
    pad = 0.18 * span
    ax1.set_xlim(lo - (pad if lo < 0 else 0.02 * span), hi + (pad if hi > 0 else 0.02 * span))

    finite = np.isfinite(r)
    rr = np.where(finite, r, 0.0)
    ax2.barh(y, rr, color=colors2, height=0.7)
    ax2.axvline(0, color="#333333", lw=0.8)
    _pct_axis(ax2.xaxis)
    ax2.set_xlabel("Share of portfolio variance (%)")
    _title(ax2, "Risk attribution: share of variance", fontsize=11)
    ax2.grid(True, axis="x", alpha=0.3)
    rspan = max(float(np.max(np.abs(rr))), 1e-12)
    for yi, v, ok in zip(y, rr, finite):
        ax2.text(v + (0.01 * rspan if v >= 0 else -0.01 * rspan), yi,
                 f"{v:.1%}" if ok else "n/a", va="center",
                 ha="left" if v >= 0 else "right", fontsize=fs)
    rlo, rhi = min(0.0, float(rr.min())), max(0.0, float(rr.max()))
    ax2.set_xlim(rlo - (0.2 * rspan if rlo < 0 else 0.0), rhi + 0.2 * rspan)
    ax2.tick_params(axis="y", labelleft=False)
    ax1.set_ylim(-0.6, len(names) - 0.4)
    fig.suptitle(title, fontsize=13 if shown_n == n else 11.5)
    return _save(fig, path)


# ------------------------------------------------------------------ 5 frontier

def asset_frontier_points(returns: pd.DataFrame, periods_per_year: float) -> pd.DataFrame:
    """Each sleeve's ``volatility`` / ``return`` on the frontier's axes
    (annualised std, ``ddof=1``, and arithmetic mean of the rows where all
    returns are finite), computed in row blocks without copying ``returns``."""
    values = returns.to_numpy(dtype=np.float64)
    m = values.shape[1]
    s1, s2 = _column_sums(values)
    if not (np.isfinite(s1).all() and np.isfinite(s2).all()):
        finite = np.concatenate([np.isfinite(values[a:b]).all(axis=1)
                                 for a, b in _row_blocks(len(values), m)])
        values = values[finite]
        s1, s2 = _column_sums(values)
    n = len(values)
    mean = s1 / n if n else np.full(m, np.nan)
    # precise for returns; E[x^2] - E[x]^2 would lose digits only if |mean| were ~1e6 x the std
    var = np.maximum(s2 - s1 * s1 / n, 0.0) / (n - 1) if n > 1 else np.full(m, np.nan)
    ppy = float(periods_per_year)
    return pd.DataFrame({"volatility": np.sqrt(var) * math.sqrt(ppy), "return": mean * ppy},
                        index=returns.columns)


def _column_sums(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column: sum of x and of x^2 (one pass in row blocks, no temporaries)."""
    s1, s2 = np.zeros(values.shape[1]), np.zeros(values.shape[1])
    for a, b in _row_blocks(len(values), values.shape[1]):
        blk = values[a:b]
        s1 += blk.sum(axis=0)
        s2 += np.einsum("ij,ij->j", blk, blk)
    return s1, s2


_DIRS = [(1, 0, "left", "center"), (-1, 0, "right", "center"),
         (0.7, 0.7, "left", "bottom"), (0.7, -0.7, "left", "top"),
         (-0.7, 0.7, "right", "bottom"), (-0.7, -0.7, "right", "top"),
         (0, 1, "center", "bottom"), (0, -1, "center", "top")]
_DISTS = (6.0, 14.0, 24.0, 36.0, 50.0)


def _overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Summed overlap area of each (x0, y0, x1, y1) box with all ``others``."""
    if len(others) == 0:
        return np.zeros(len(boxes))
    w = (np.minimum(boxes[:, None, 2], others[None, :, 2])
         - np.maximum(boxes[:, None, 0], others[None, :, 0]))
    h = (np.minimum(boxes[:, None, 3], others[None, :, 3])
         - np.maximum(boxes[:, None, 1], others[None, :, 1]))
    return (np.clip(w, 0, None) * np.clip(h, 0, None)).sum(axis=1)


def _place_labels(points: np.ndarray, labels: list[str], fontsize: float,
                  obstacles: np.ndarray, bounds: tuple) -> list[tuple[float, float, str, str]]:
    """Greedy label placement in display points (1/72 in).

    ``points`` (n, 2) anchor positions, ``obstacles`` (m, 3) circles (x, y,
    radius) labels must avoid (markers, sampled lines), ``bounds`` the axes
    box.  For each label (top-most anchor first) the first candidate offset
    around its point, at growing distances, that overlaps no placed label
    and no obstacle and stays inside ``bounds`` wins; else the least
    overlapping.  Returns ``(dx, dy, ha, va)`` offsets in points per label.
    """
    cw, ch = 0.62 * fontsize, 1.3 * fontsize
    dist = np.repeat(_DISTS, len(_DIRS))
    ox = dist * np.tile([d[0] for d in _DIRS], len(_DISTS))
    oy = dist * np.tile([d[1] for d in _DIRS], len(_DISTS))
    has = [d[2] for d in _DIRS] * len(_DISTS)
    vas = [d[3] for d in _DIRS] * len(_DISTS)
    fx = np.array([{"left": 0.0, "right": -1.0, "center": -0.5}[a] for a in has])
    fy = np.array([{"bottom": 0.0, "top": -1.0, "center": -0.5}[a] for a in vas])
    obst = np.asarray(obstacles, dtype=float).reshape(-1, 3)
    obst_boxes = np.column_stack([obst[:, 0] - obst[:, 2], obst[:, 1] - obst[:, 2],
                                  obst[:, 0] + obst[:, 2], obst[:, 1] + obst[:, 2]])
    placed = np.zeros((0, 4))
    out: list = [None] * len(labels)
    for i in np.argsort(-points[:, 1], kind="stable"):
        x, y = points[i]
        w, h = cw * len(labels[i]), ch
        x0, y0 = x + ox + fx * w, y + oy + fy * h
        boxes = np.column_stack([x0, y0, x0 + w, y0 + h])
        cost = _overlaps(boxes, placed) + _overlaps(boxes, obst_boxes)
        outside = (np.clip(bounds[0] - boxes[:, 0], 0, None)
                   + np.clip(boxes[:, 2] - bounds[2], 0, None)
                   + np.clip(bounds[1] - boxes[:, 1], 0, None)
                   + np.clip(boxes[:, 3] - bounds[3], 0, None))
        cost = cost + outside * h * 4 + dist * 0.05  # prefer close placements
        # the nearest ring with a (nearly) free spot, else the least bad spot of all
        ring_best = cost.reshape(len(_DISTS), len(_DIRS)).min(axis=1)
        good = np.flatnonzero(np.minimum.accumulate(ring_best) < 5.0)
        upto = (good[0] + 1) * len(_DIRS) if len(good) else len(cost)
        j = int(np.argmin(cost[:upto]))
        placed = np.vstack([placed, boxes[j]])
        out[i] = (float(ox[j]), float(oy[j]), has[j], vas[j])
    return out


def _labelled_points(pts: pd.DataFrame) -> list:
    """Every asset up to :data:`MAX_BARS`, else the :data:`_LABELLED` best
    and worst by return / volatility."""
    if len(pts) <= MAX_BARS:
        return list(pts.index)
    vol = pts["volatility"].to_numpy(float)
    ratio = pd.Series(np.where(vol > 0, pts["return"].to_numpy(float) / np.where(vol > 0, vol, 1),
                               np.nan), index=pts.index).dropna().sort_values(kind="stable")
    return list(ratio.index[::-1][:_LABELLED]) + list(ratio.index[:_LABELLED])


def plot_frontier(frontier: pd.DataFrame | None, asset_points: pd.DataFrame, path, *,
                  portfolio: tuple | None = None, equal_weight: tuple | None = None,
                  target_weights: tuple | None = None,
                  title: str = "Efficient frontier of the sleeves") -> Path:
    """Long-only efficient frontier (``frontier`` with columns ``volatility``
    and ``return``; None or empty for none), each asset's point, the actual
    portfolio highlighted (star), the equal-weight mix (hollow diamond) and,
    when they differ from equal weights, the target weights (hollow square).
    Points are ``(volatility, return)`` annualised fractions, shown in %.
    Up to :data:`MAX_BARS` assets every point is labelled (labels placed to
    avoid each other and the markers) in its own colour; beyond, the points
    share one colour and only the :data:`_LABELLED` best and worst by
    return / volatility are labelled (the title says so)."""
    fig = _figure(11, 7)
    ax = fig.add_subplot()
    pts = asset_points.replace([np.inf, -np.inf], np.nan).dropna()
    have_frontier = frontier is not None and len(frontier) > 0
    if len(pts) == 0 and not have_frontier and portfolio is None:
        _no_data(ax, "no return data")
        _title(ax, title)
        return _save(fig, path)
    if have_frontier:
        f = frontier.sort_values("volatility")
        ax.plot(f["volatility"], f["return"], color="#1f3b73", lw=2.2,
                label="Efficient frontier (long-only)", zorder=3)
    else:
        ax.text(0.02, 0.98, "frontier not computed", transform=ax.transAxes, va="top",
                fontsize=9, color="#777777")
    many = len(pts) > MANY_ASSETS
    if many:
        ax.scatter(pts["volatility"], pts["return"], s=14, c="#4c72b0", alpha=0.55,
                   edgecolors="none", zorder=4, label=f"Assets ({len(pts):,})")
    else:
        colors = asset_colors(list(pts.index))
        ax.scatter(pts["volatility"], pts["return"], s=36, c=[colors[a] for a in pts.index],
                   edgecolors="#333333", linewidths=0.5, zorder=4, label="Assets")

    # (label, point, marker, face, edge, size)
    specials = []
    if equal_weight is not None and all(map(math.isfinite, equal_weight)):
        specials.append(("Equal weight", equal_weight, "D", "none", "#ff7f0e", 170))
    if (target_weights is not None and all(map(math.isfinite, target_weights))
            and (equal_weight is None or not np.allclose(target_weights, equal_weight,
                                                          rtol=1e-6, atol=1e-9))):
        specials.append(("Target weights", target_weights, "s", "none", "#9467bd", 150))
    if portfolio is not None and all(map(math.isfinite, portfolio)):
        specials.append(("Portfolio (actual)", portfolio, "*", "#d62728", "black", 300))
    for label, (v, r), marker, face, edge, size in specials:
        hollow = face == "none"
        ax.scatter([v], [r], marker=marker, s=size, facecolors=face, edgecolors=edge,
                   linewidths=2.0 if hollow else 0.8, zorder=6 if hollow else 7,
                   label=f"{label}: {v:.1%} vol, {r:+.1%} return")

    xs = np.r_[pts["volatility"].to_numpy(float), [s[1][0] for s in specials]]
    ys = np.r_[pts["return"].to_numpy(float), [s[1][1] for s in specials]]
    if have_frontier:
        xs = np.r_[xs, frontier["volatility"].to_numpy(float)]
        ys = np.r_[ys, frontier["return"].to_numpy(float)]
    x0, x1 = min(0.0, float(xs.min())), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    xr, yr = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    ax.set_xlim(x0, x1 + 0.22 * xr)
    ax.set_ylim(y0 - 0.08 * yr, y1 + 0.08 * yr)
    ax.axhline(0.0, color="#888888", lw=0.8, ls=":")
    _pct_axis(ax.xaxis)
    _pct_axis(ax.yaxis)
    ax.set_xlabel("Annualised volatility (%)")
    ax.set_ylabel("Annualised return (arithmetic mean, %)")
    named = _labelled_points(pts)
    if len(named) < len(pts):
        title = (f"{title} ({len(pts):,} assets; the {_LABELLED} best and {_LABELLED} worst "
                 "by return / volatility labelled)")
    _title(ax, title, fontsize=12)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncol=2 if len(specials) < 2 else 3, fontsize=9,
               frameon=False)
    if named:
        # settle the layout (no rendering), then place the labels in display points
        _canvas(fig)
        fig.get_layout_engine().execute(fig)
        to_pt = 72.0 / fig.dpi
        all_disp = ax.transData.transform(pts[["volatility", "return"]].to_numpy(float)) * to_pt
        obst = [np.column_stack([all_disp, np.full(len(all_disp), 4.5 if not many else 3.0)])]
        for _, (v, r), _mk, _f, _e, size in specials:
            px, py = ax.transData.transform((v, r)) * to_pt
            obst.append(np.array([[px, py, 0.6 * math.sqrt(size)]]))
        if have_frontier:
            fx = np.linspace(0, 1, 60)
            fv = np.interp(fx, np.linspace(0, 1, len(f)), f["volatility"].to_numpy(float))
            fr = np.interp(fx, np.linspace(0, 1, len(f)), f["return"].to_numpy(float))
            fd = ax.transData.transform(np.column_stack([fv, fr])) * to_pt
            obst.append(np.column_stack([fd, np.full(len(fd), 2.0)]))
        bb = ax.get_window_extent()
        bounds = (bb.x0 * to_pt, bb.y0 * to_pt, bb.x1 * to_pt, bb.y1 * to_pt)
        fs = 8 if len(named) > 10 else 9
        names = [str(a) for a in named]
        xy = pts.loc[named, ["volatility", "return"]].to_numpy(float)
        disp = ax.transData.transform(xy) * to_pt
        offsets = _place_labels(disp, names, fs, np.vstack(obst), bounds)
        for name, (v, r), (ox, oy, ha, va) in zip(names, xy, offsets):
            far = math.hypot(ox, oy) > 10
            ax.annotate(name, (v, r), xytext=(ox, oy), textcoords="offset points",
                        fontsize=fs, ha=ha, va=va, color="#222222", zorder=8,
                        arrowprops=(dict(arrowstyle="-", color="#888888", lw=0.6,
                                         shrinkA=0, shrinkB=3) if far else None))
        if many:  # the labelled points stand out of the cloud
            ax.scatter(xy[:, 0], xy[:, 1], s=30, facecolors="none", edgecolors="#222222",
                       linewidths=0.9, zorder=5)
    return _save(fig, path)


# ------------------------------------------------------------------ 6 rolling Sharpe

def rolling_window_bars(index: pd.DatetimeIndex, days: float = 30.0) -> int:
    """Bars in ``days`` days at the index's median bar spacing (at least 2)."""
    idx = pd.DatetimeIndex(index)
    if len(idx) < 2:
        return 2
    step = pd.Timedelta(int(np.median(np.diff(idx.as_unit("ns").asi8))), unit="ns")
    if step <= pd.Timedelta(0):
        return 2
    return max(2, int(round(pd.Timedelta(days=days) / step)))


def plot_rolling_sharpe(equity: pd.Series, path, *, window_days: float = 30.0,
                        title: str = "Rolling Sharpe ratio of the portfolio") -> Path:
    """Annualised Sharpe over a rolling window of ``window_days`` days of bars
    (bar count from the timestamps' median spacing; shortened to a quarter
    of the run when the run is shorter than two windows), zero line, the
    full-period Sharpe dashed."""
    fig = _figure(12, 4.5)
    ax = fig.add_subplot()
    eq = pd.Series(equity, dtype=float).dropna()
    if len(eq) < 4:
        _no_data(ax, "too few bars for a rolling Sharpe")
        _title(ax, title)
        return _save(fig, path)
    eq.index = _to_utc_index(eq.index)
    window = rolling_window_bars(eq.index, window_days)
    label_days = window_days
    if window * 2 > len(eq):
        window = max(2, len(eq) // 4)
        label_days = window * (eq.index[-1] - eq.index[0]) / (len(eq) - 1) / pd.Timedelta(days=1)
    rs = _m.rolling_sharpe(eq, window).replace([np.inf, -np.inf], np.nan).dropna()
    if len(rs) == 0:
        _no_data(ax, "rolling Sharpe undefined (flat equity)")
        _title(ax, title)
        return _save(fig, path)
    shown = downsample(rs)
    v = shown.to_numpy()
    x = _dates(shown.index)
    ax.plot(x, v, color="#1f3b73", lw=1.1, label="Rolling Sharpe")
    ax.fill_between(x, v, 0, where=v >= 0, color=_POS, alpha=0.25, lw=0,
                    interpolate=True)
    ax.fill_between(x, v, 0, where=v < 0, color=_NEG, alpha=0.25, lw=0,
                    interpolate=True)
    ax.axhline(0.0, color="#333333", lw=1.0)
    full = _m.sharpe_ratio(eq)
    if math.isfinite(full):
        ax.axhline(full, color="#d62728", lw=1.0, ls="--",
                   label=f"Full-period Sharpe ({full:.2f})")
    ax.set_ylabel("Sharpe ratio (annualised, rf = 0)")
    ax.set_xlabel("Date (UTC)")
    days_txt = f"{label_days:.0f}" if label_days >= 1 else f"{label_days:.2f}"
    _title(ax, f"{title} ({days_txt}-day window, {window:,} bars)", fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(*_dates(eq.index[[0, -1]]))
    fig.legend(loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    return _save(fig, path)


# ------------------------------------------------------------------ 7 multipliers

def _as_flags(column: pd.Series) -> np.ndarray:
    """A halted-style column (bools, 0/1 or their text) as a bool array."""
    if column.dtype == bool:
        return column.to_numpy()
    codes, uniques = pd.factorize(column)
    truth = np.array([str(u).strip().lower() in ("true", "1", "1.0") for u in uniques] + [False])
    return truth[codes]  # code -1 (missing) picks the trailing False


def _chunk_table(multipliers: pd.DataFrame) -> pd.DataFrame:
    """Per chunk: time, mean/min/max multiplier, mean drawdown and correlation
    factors, halted flag (timestamps parsed once per chunk, not per row)."""
    m = multipliers
    tcol = "chunk_start" if "chunk_start" in m.columns else "decided_at"
    cols = {"t": m[tcol], "multiplier": m["multiplier"],
            "halted": _as_flags(m["halted"]) if "halted" in m.columns else False}
    for c in ("drawdown", "correlation", "portfolio_risk"):
        if c in m.columns:
            cols[c] = m[c]
    key = "chunk" if "chunk" in m.columns else "t"
    if key == "chunk":
        cols["chunk"] = m["chunk"]
    frame = pd.DataFrame(cols, index=m.index)
    agg = {"t": ("t", "first"), "mult_mean": ("multiplier", "mean"),
           "mult_min": ("multiplier", "min"), "mult_max": ("multiplier", "max"),
           "halted": ("halted", "any")}
    for c in ("drawdown", "correlation", "portfolio_risk"):
        if c in frame.columns:
            agg[c] = (c, "mean")
    g = frame.groupby(key, sort=True).agg(**agg)
    g["t"] = _to_times(g["t"]).to_numpy()
    return g.sort_values("t", kind="stable").reset_index(drop=True)


def plot_multipliers(multipliers: pd.DataFrame | None, path, *,
                     events: pd.DataFrame | None = None,
                     title: str = "Risk multipliers and breaker timeline") -> Path:
    """Per daily chunk: the mean size multiplier across assets (its min-max
    range shaded), the mean drawdown and correlation factors (step lines),
    halted chunks shaded red and rebalances marked with triangles on top."""
    fig = _figure(12, 4.8)
    ax = fig.add_subplot()
    if multipliers is None or len(multipliers) == 0 or "multiplier" not in multipliers.columns:
        _no_data(ax, "no multipliers recorded")
        _title(ax, title)
        return _save(fig, path)
    g = _chunk_table(multipliers)
    t = _dates(g["t"])
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0  # days
    tt = np.append(t, t[-1] + step)

    def stairs(col):
        v = g[col].to_numpy(dtype=float)
        return np.append(v, v[-1])

    ax.fill_between(tt, stairs("mult_min"), stairs("mult_max"), step="post",
                    color="#1f3b73", alpha=0.15, lw=0, label="Multiplier range across assets")
    ax.step(tt, stairs("mult_mean"), where="post", color="#1f3b73", lw=2.0,
            label="Mean size multiplier", zorder=5)
    if "drawdown" in g:
        ax.step(tt, stairs("drawdown"), where="post", color="#d62728", lw=1.2, ls="--",
                label="Drawdown factor (mean)", zorder=6)
    if "correlation" in g:
        ax.step(tt, stairs("correlation"), where="post", color="#2ca02c", lw=1.2, ls="-.",
                label="Correlation factor (mean)", zorder=6)
    # halted spans: consecutive halted chunks merged
    halted = g["halted"].to_numpy()
    first = True
    i = 0
    while i < len(g):
        if halted[i]:
            j = i
            while j + 1 < len(g) and halted[j + 1]:
                j += 1
            ax.axvspan(tt[i], tt[j + 1], color=_HALT, alpha=0.6, lw=0, zorder=0,
                       label="Breaker halted" if first else None)
            first = False
            i = j + 1
        else:
            i += 1
    top = max(1.05, float(np.nanmax(g["mult_max"])) * 1.08)
    for c in ("drawdown", "correlation"):
        if c in g:
            top = max(top, float(np.nanmax(g[c])) * 1.08)
    ax.set_ylim(0.0, top * 1.06)
    reb = _event_times(events, "rebalance")
    if len(reb):
        ax.scatter(_dates(reb), np.full(len(reb), top * 1.02), marker="v", s=22, color=_REBAL,
                   zorder=6, label=f"Rebalance ({len(reb)})", clip_on=False)
    trips = _event_times(events, "trip")
    if len(trips):
        ax.vlines(_dates(trips), 0, 1, transform=ax.get_xaxis_transform(), color=_TRIP,
                  lw=1.0, label="Breaker trip")
    ax.set_ylabel("Factor (× base position size)")
    ax.set_xlabel("Chunk start (UTC)")
    _title(ax, title, fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(tt[0], tt[-1])
    fig.legend(loc="outside right upper", fontsize=8.5, frameon=False)
    return _save(fig, path)

