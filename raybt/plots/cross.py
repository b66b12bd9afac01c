"""Cross-asset figures: correlation heatmap, attribution bars and the
efficient frontier.  See :mod:`raybt.plots.figures`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.ticker import FuncFormatter

from raybt.plots import base as B
from raybt.plots.labels import place_labels
from raybt.plots.layout import _canvas, _colorbar, _text_sizes
from raybt.plots.base import (
    _NEG,
    _POS,
    MANY_ASSETS,
    MAX_BARS,
    _LABELLED,
    _MAX_LABELS,
    _figure,
    _money,
    _money_tick,
    _no_data,
    _ordinal,
    _pct_axis,
    _row_blocks,
    _title,
    asset_styles,
)


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
        return B._save(fig, path)
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
    # long asset names: the figure grows around them (tick labels, colorbar, title: ~1.5 in
    # across, ~1.1 in down) rather than the heatmap shrinking
    longest = sorted({xlabels[i] for i in ticks} | {ylabels[i] for i in ticks}, key=len)[-5:]
    widest = _text_sizes(fig, longest, label_fs)[:, 0].max() / 72.0
    down = widest * (0.71 if step == 1 else 1.0)  # the x labels, turned 45 or 90 degrees
    fig.set_size_inches(max(side + 1.2, axis_pt / 72.0 + widest + 1.5),
                        max(side, axis_pt / 72.0 + down + 1.1))
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
    _colorbar(fig, im, [ax], location="right", shrink=0.8,
              label="Pearson correlation of per-bar returns")
    note = "ordered by cluster"
    if n <= MANY_ASSETS and n > 1:
        note += ", values below the diagonal"
    if step > 1:
        note += f", every {_ordinal(step)} asset labelled"
    note = f"{n:,} assets, {note}" if n > MANY_ASSETS else note
    sep = " " if side >= 9 else "\n"  # a narrow figure (a few assets): the note on a line of its own
    _title(ax, f"{title}{sep}({note})", fontsize=12)
    return B._save(fig, path)


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
        return B._save(fig, path)
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
    return B._save(fig, path)


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


def _labelled_points(pts: pd.DataFrame) -> list:
    """Every asset up to :data:`MAX_BARS`, else the :data:`_LABELLED` best
    and worst by return / volatility."""
    if len(pts) <= MAX_BARS:
        return list(pts.index)
    vol = pts["volatility"].to_numpy(float)
    ratio = pd.Series(np.where(vol > 0, pts["return"].to_numpy(float) / np.where(vol > 0, vol, 1),
                               np.nan), index=pts.index).dropna().sort_values(kind="stable")
    return list(ratio.index[::-1][:_LABELLED]) + list(ratio.index[:_LABELLED])


def _fences(v: np.ndarray) -> tuple[float, float]:
    """Tukey's fences ``[Q1 - 1.5 IQR, Q3 + 1.5 IQR]`` of ``v`` (the whole
    line below five values: too few to call one an outlier)."""
    if len(v) < 5:
        return -math.inf, math.inf
    q1, q3 = np.percentile(v, [25, 75])
    return q1 - 1.5 * (q3 - q1), q3 + 1.5 * (q3 - q1)


def frontier_limits(points: pd.DataFrame, keep_x, keep_y) -> tuple[tuple, tuple]:
    """``((x0, x1), (y0, y1))`` of the frontier figure: every kept point
    (``keep_x``/``keep_y``: the frontier and the portfolio mixes) and every
    asset inside Tukey's fences of the assets' volatilities and returns
    (:func:`_fences`), so that one asset far out does not squeeze the rest;
    x starts at 0 (or below, for a negative value) with room on the right
    for labels."""
    v = points["volatility"].to_numpy(float)
    r = points["return"].to_numpy(float)
    fx, fy = _fences(v), _fences(r)
    inside = (v >= fx[0]) & (v <= fx[1]) & (r >= fy[0]) & (r <= fy[1])
    xs = np.r_[v[inside], np.asarray(keep_x, float)]
    ys = np.r_[r[inside], np.asarray(keep_y, float)]
    if not len(xs):
        xs, ys = v, r
    x0, x1 = min(0.0, float(xs.min())), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    xr, yr = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    return (x0, x1 + 0.22 * xr), (y0 - 0.08 * yr, y1 + 0.08 * yr)


def plot_frontier(frontier: pd.DataFrame | None, asset_points: pd.DataFrame, path, *,
                  portfolio: tuple | None = None, equal_weight: tuple | None = None,
                  target_weights: tuple | None = None, total_return: float | None = None,
                  periods_per_year: float | None = None,
                  title: str = "Efficient frontier of the sleeves") -> Path:
    """Long-only efficient frontier (``frontier`` with columns ``volatility``
    and ``return``; None or empty for none), each asset's point, the actual
    portfolio highlighted (star), the equal-weight mix (hollow diamond) and,
    when they differ from equal weights, the target weights (hollow square).

    Points are ``(volatility, return)`` annualised fractions, shown in %:
    the *annualised arithmetic mean* of the per-bar returns (mean times
    ``periods_per_year``), which the legend and title say, next to the run's
    compounded ``total_return`` when given (they differ: compounding and
    volatility drag).  The axes hold the frontier, the mixes and the assets
    inside Tukey's fences (:func:`frontier_limits`); an asset beyond is drawn
    at the edge with an arrowhead pointing its way, its label giving its
    value (the legend counts them).  Up to :data:`MAX_BARS` assets every
    point is labelled (labels placed to avoid each other and the markers),
    with a colour and marker of :func:`asset_styles`; beyond, the points
    share one colour and only the :data:`_LABELLED` best and worst by
    return / volatility are labelled (the title says so)."""
    fig = _figure(11, 7.4)
    ax = fig.add_subplot()
    pts = asset_points.replace([np.inf, -np.inf], np.nan).dropna()
    have_frontier = frontier is not None and len(frontier) > 0
    if len(pts) == 0 and not have_frontier and portfolio is None:
        _no_data(ax, "no return data")
        _title(ax, title)
        return B._save(fig, path)
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
    keep_x = [s_[1][0] for s_ in specials]
    keep_y = [s_[1][1] for s_ in specials]
    if have_frontier:
        f = frontier.sort_values("volatility")
        keep_x += f["volatility"].tolist()
        keep_y += f["return"].tolist()
    (x0, x1), (y0, y1) = frontier_limits(pts, keep_x, keep_y)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    # assets beyond the axes: drawn just inside the edge, pointing where they are
    v, r = pts["volatility"].to_numpy(float), pts["return"].to_numpy(float)
    inset_x, inset_y = 0.012 * (x1 - x0), 0.015 * (y1 - y0)
    out_x, out_y = (v < x0) | (v > x1), (r < y0) | (r > y1)
    out = out_x | out_y
    sv = np.where(out_x, np.clip(v, x0 + inset_x, x1 - inset_x), v)
    sr = np.where(out_y, np.clip(r, y0 + inset_y, y1 - inset_y), r)
    shown = pd.DataFrame({"volatility": sv, "return": sr}, index=pts.index)
    arrow = np.where(r < y0, "v", np.where(r > y1, "^", np.where(v > x1, ">", "<")))

    if have_frontier:
        ax.plot(f["volatility"], f["return"], color="#1f3b73", lw=2.2,
                label="Efficient frontier (long-only)", zorder=3)
    else:
        ax.text(0.02, 0.98, "frontier not computed", transform=ax.transAxes, va="top",
                fontsize=9, color="#777777")
    many = len(pts) > MANY_ASSETS
    inner = shown[~out]
    if many:
        ax.scatter(inner["volatility"], inner["return"], s=14, c="#4c72b0", alpha=0.55,
                   edgecolors="none", zorder=4, label=f"Assets ({len(pts):,})")
        for mk in ("v", "^", ">", "<"):
            sel = out & (arrow == mk)
            if sel.any():
                ax.scatter(sv[sel], sr[sel], s=30, marker=mk, c="#4c72b0", alpha=0.8,
                           edgecolors="none", zorder=4)
    else:
        styles = asset_styles(list(pts.index))
        for i, a in enumerate(pts.index):  # a few assets: one marker each
            ax.scatter([sv[i]], [sr[i]], s=60 if out[i] else 40,
                       marker=arrow[i] if out[i] else styles[a]["marker"],
                       color=styles[a]["color"], edgecolors="#333333", linewidths=0.5, zorder=4,
                       label="Assets (colour and marker per asset, each labelled)" if i == 0
                       else None)
    if out.any():
        ax.scatter([], [], marker="v", s=40, color="#777777",
                   label=f"{int(out.sum())} asset{'s' * bool(out.sum() > 1)} beyond the axes, "
                         "drawn at the edge (arrow: its direction; value in its label)")
    for label, (vv, rr), marker, face, edge, size in specials:
        hollow = face == "none"
        ax.scatter([vv], [rr], marker=marker, s=size, facecolors=face, edgecolors=edge,
                   linewidths=2.0 if hollow else 0.8, zorder=6 if hollow else 7,
                   label=f"{label}: {vv:.1%} vol, {rr:+.1%} annualised mean")

    ax.axhline(0.0, color="#888888", lw=0.8, ls=":")
    _pct_axis(ax.xaxis)
    _pct_axis(ax.yaxis)
    ax.set_xlabel("Annualised volatility (%)")
    ax.set_ylabel("Annualised mean return (arithmetic, %)")
    named = _labelled_points(pts)
    if len(named) < len(pts):
        title = (f"{title} ({len(pts):,} assets; the {_LABELLED} best and {_LABELLED} worst "
                 "by return / volatility labelled)")
    bars = f" ({periods_per_year:,.0f} bars a year)" if periods_per_year else ""
    note = f"y: mean per-bar return x bars per year{bars}, not compounded"
    if total_return is not None and math.isfinite(total_return):
        note += f"; the run's total return was {total_return:+.1%}"
    _title(ax, f"{title}\n{note}", fontsize=11)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    if named:
        # settle the layout (no rendering) and keep it (the draw would measure it again, and
        # the labels are placed on it), then place the labels in display points
        _canvas(fig)
        fig.get_layout_engine().execute(fig)
        fig.set_layout_engine("none")
        to_pt = 72.0 / fig.dpi
        all_disp = ax.transData.transform(shown.to_numpy(float)) * to_pt
        obst = [np.column_stack([all_disp, np.full(len(all_disp), 4.5 if not many else 3.0)])]
        for _, (vv, rr), _mk, _f, _e, size in specials:
            px, py = ax.transData.transform((vv, rr)) * to_pt
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
        where = pts.index.get_indexer(named)
        def label(a, i):  # beyond the axes: the coordinate that is off them, in the label
            off = ([f"{v[i]:.0%} vol"] if out_x[i] else []) + ([f"{r[i]:+.0%}"] if out_y[i] else [])
            return f"{a} ({', '.join(off)})" if off else str(a)

        names = [label(a, i) for a, i in zip(named, where)]
        xy = shown.to_numpy(float)[where]
        disp = ax.transData.transform(xy) * to_pt
        offsets = place_labels(disp, names, fs, np.vstack(obst), bounds,
                               sizes=_text_sizes(fig, names, fs))
        for name, (vv, rr), (ox, oy, ha, va) in zip(names, xy, offsets):
            far = math.hypot(ox, oy) > 10
            ax.annotate(name, (vv, rr), xytext=(ox, oy), textcoords="offset points",
                        fontsize=fs, ha=ha, va=va, color="#222222", zorder=8,
                        arrowprops=(dict(arrowstyle="-", color="#888888", lw=0.6,
                                         shrinkA=0, shrinkB=3) if far else None))
        if many:  # the labelled points stand out of the cloud
            ax.scatter(xy[:, 0], xy[:, 1], s=30, facecolors="none", edgecolors="#222222",
                       linewidths=0.9, zorder=5)
    return B._save(fig, path)
