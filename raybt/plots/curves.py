"""Time-series figures: equity (portfolio vs sleeves) and the rolling
Sharpe ratio.  See :mod:`raybt.plots.figures`."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from raybt import metrics as _m
from raybt.plots import base as B
from raybt.plots.base import (
    _NEG,
    _POS,
    MANY_ASSETS,
    _BEST_WORST,
    _LOG_RATIO,
    _PORTFOLIO_COLOR,
    _block,
    _column_positions,
    _date_axis,
    _dates,
    _figure,
    _legend_outside,
    _no_data,
    _portfolio_series,
    _row_blocks,
    _sample_rows,
    _title,
    _to_utc_index,
    asset_styles,
    downsample,
    minmax_rows,
)


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
        return B._save(fig, path)

    sleeves = _Sleeves(equity, returns, assets)
    x = _dates(sleeves.times)
    handles: dict[str, object] = {}
    finals: dict[str, float] = {}
    if len(assets) <= MANY_ASSETS:
        styles = asset_styles(assets)
        lw = 1.0 if len(assets) <= 10 else 0.9
        for a in assets:
            g = sleeves.column(a)
            if g is None:
                continue
            handles[a] = _draw_line(ax, x, g, lw=lw, alpha=0.9, color=styles[a]["color"],
                                    ls=styles[a]["ls"], label=a)
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
    if len(assets) > MANY_ASSETS:  # a line of its own: the legend of long names takes width
        note = f"\n({len(assets):,} sleeves{net}: percentile bands, best and worst {k} named)"
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
    return B._save(fig, path)


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
        return B._save(fig, path)
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
        return B._save(fig, path)
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
    return B._save(fig, path)
