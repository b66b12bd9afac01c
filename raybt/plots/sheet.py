"""Returns by calendar month: the portfolio's year x month heatmap and the
sleeves' asset x month heatmap.  See :mod:`raybt.plots.figures`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.ticker import PercentFormatter

from raybt.plots import base as B
from raybt.plots.base import MANY_ASSETS, _figure, _no_data, _title
from raybt.plots.layout import _colorbar

#: sleeves shown at each end (best, worst by total return) of the per-asset heatmap
TOP_ASSETS = 15
#: cells written with their value up to this many (each text costs ~1-2 ms to draw)
_MAX_CELL_TEXT = 240
_CMAP = "RdYlGn"


def _cell_texts(ax, values: np.ndarray, vmax: float, fontsize: float) -> None:
    """Each finite cell's value in percent, white on the dark ends of the scale."""
    rows, cols = np.nonzero(np.isfinite(values))
    for i, j in zip(rows, cols):
        v = values[i, j]
        color = "white" if abs(v) > 0.62 * vmax else "#111111"
        # inside the cells: left out of the layout (measuring every cell text there costs as
        # much as drawing them)
        ax.text(j, i, f"{100 * v:.1f}", ha="center", va="center", fontsize=fontsize, color=color,
                in_layout=False)


def _scale(values: np.ndarray, clip_pct: float | None = None) -> tuple[float, bool]:
    """Symmetric colour limit: the largest |value| (or its ``clip_pct``
    percentile, when that is smaller) and whether values go beyond it."""
    a = np.abs(values[np.isfinite(values)])
    if not len(a):
        return 0.01, False
    top = float(a.max())
    lim = float(np.percentile(a, clip_pct)) if clip_pct is not None else top
    lim = max(lim, 1e-4)
    return lim, top > lim * (1 + 1e-9)


def plot_monthly_returns(table: pd.DataFrame, path, *,
                         title: str = "Monthly returns of the portfolio") -> Path:
    """Years (rows) x months and the compounded year (``table`` of
    :func:`raybt.analysis.periods.monthly_table`: columns ``Jan`` .. ``Dec``,
    ``Year``), each cell coloured on a red-green scale centred at 0 and
    written in percent; months outside the run are blank.  The months share
    one colour scale and the ``Year`` column its own (a year is larger)."""
    n_years = len(table)
    fig = _figure(12.5, max(2.6, 1.5 + 0.55 * n_years))
    if n_years == 0:
        ax = fig.add_subplot()
        _no_data(ax, "no monthly returns")
        _title(ax, title)
        return B._save(fig, path)
    ax, ax_y = fig.subplots(1, 2, gridspec_kw={"width_ratios": [12, 1.4]})
    months = table.drop(columns=["Year"]).to_numpy(dtype=float)
    years = table[["Year"]].to_numpy(dtype=float)
    cmap = colormaps[_CMAP].with_extremes(bad="#f2f2f2")
    fs = 9 if n_years <= 12 else 7.5
    for a, values, labels in ((ax, months, list(table.columns[:-1])), (ax_y, years, ["Year"])):
        vmax, _ = _scale(values)
        a.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto",
                 interpolation="nearest")
        _cell_texts(a, values, vmax, fs)
        a.set_xticks(np.arange(len(labels)), labels, fontsize=10)
        a.xaxis.tick_top()
        a.set_yticks(np.arange(n_years), [str(y) for y in table.index], fontsize=10)
        a.set_xticks(np.arange(-0.5, len(labels)), minor=True)
        a.set_yticks(np.arange(-0.5, n_years), minor=True)
        a.grid(which="minor", color="white", lw=1.5)
        a.tick_params(which="both", length=0)
    ax_y.tick_params(labelleft=False)
    fig.suptitle(f"{title} (%, compounded; UTC months; colour scale centred at 0)", fontsize=12)
    return B._save(fig, path)


def plot_asset_monthly_returns(monthly: pd.DataFrame, path, *, total: pd.Series | None = None,
                               title: str = "Monthly returns per sleeve") -> Path:
    """Sleeves (rows) x months (``monthly``: periods ``YYYY-MM`` x assets, the
    time-weighted sleeve returns net of rebalancing transfers) and their
    total, on a red-green scale centred at 0 (clipped at the 98th percentile
    of |return| when a few cells would flatten the rest; the title says so).
    Rows are ordered by total return (``total``, else the months
    compounded), best on top.  Beyond :data:`MANY_ASSETS` sleeves only the
    :data:`TOP_ASSETS` best and worst are shown, split by a line (the title
    says so).  Values are written while the cells are few enough; beyond,
    only the totals, and a colour bar gives the months' scale."""
    assets = list(monthly.columns)
    n = len(assets)
    if total is None:
        total = (1.0 + monthly.fillna(0.0)).prod() - 1.0 if len(monthly) else pd.Series(dtype=float)
    total = pd.Series(total, dtype=float).reindex(assets)
    order = total.sort_values(ascending=False, kind="stable", na_position="last").index
    split = None
    if n > MANY_ASSETS:
        k = min(TOP_ASSETS, n // 2)
        order = list(order[:k]) + list(order[-k:])
        split = k
    rows = len(order)
    fig = _figure(13, max(3.0, 1.7 + 0.3 * rows))
    if n == 0 or len(monthly) == 0:
        ax = fig.add_subplot()
        _no_data(ax, "no sleeve returns")
        _title(ax, title)
        return B._save(fig, path)
    ax, ax_t = fig.subplots(1, 2, gridspec_kw={"width_ratios": [max(len(monthly), 3), 1.6]})
    values = monthly[order].to_numpy(dtype=float).T
    totals = total.reindex(order).to_numpy(dtype=float)[:, None]
    cmap = colormaps[_CMAP].with_extremes(bad="#f2f2f2")
    clipped = False
    n_cells = values.size + len(totals)
    fs = 8 if rows <= 20 else 7
    for a, v, labels in ((ax, values, list(monthly.index)), (ax_t, totals, ["Total"])):
        vmax, over = _scale(v, 98.0 if v.size >= 50 else None)
        clipped |= over
        a.imshow(np.ma.masked_invalid(v), cmap=cmap, vmin=-vmax, vmax=vmax, aspect="auto",
                 interpolation="nearest")
        if n_cells <= _MAX_CELL_TEXT and len(monthly) <= 24:
            _cell_texts(a, v, vmax, fs)
        elif a is ax_t:  # the totals written all the same (one column), and a colour scale
            _cell_texts(a, v, vmax, fs)
            cb = _colorbar(fig, ax.images[0], [ax, ax_t], location="bottom", shrink=0.5,
                           label="Monthly return (the Total column has a scale of its own)",
                           fontsize=8.5)
            cb.ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        step = max(1, math.ceil(len(labels) / 24))
        a.set_xticks(np.arange(0, len(labels), step), labels[::step], rotation=90 if step > 1 or
                     len(labels) > 12 else 0, fontsize=8.5)
        a.xaxis.tick_top()
        a.set_yticks(np.arange(rows), [str(x) for x in order], fontsize=8.5 if rows <= 30 else 7)
        a.tick_params(length=0)
        if split is not None:
            a.axhline(split - 0.5, color="black", lw=2.0)
    ax_t.tick_params(labelleft=False)
    note = "%, compounded, net of rebalancing transfers"
    if split is not None:
        note += f"; the {split} best and {split} worst of {n:,} sleeves by total return"
    if clipped:
        note += "; colours clipped at the 98th percentile of |return|"
    fig.suptitle(f"{title}\n({note})", fontsize=11.5)
    return B._save(fig, path)
