"""The figures of a portfolio run report, one function per PNG.

Every ``plot_*`` function takes pandas inputs and an output path, draws on
its own :class:`matplotlib.figure.Figure` (no pyplot, so no global figure
state survives a call), writes a PNG and returns the path.  Conventions:
fractions are shown as percent, timestamps are UTC, long 5-minute series are
downsampled (:func:`downsample`) to a few thousand points before drawing so
a whole year renders in well under a second per figure.  Empty or
degenerate inputs give a figure with a "no data" note rather than an error.
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
from matplotlib.ticker import FuncFormatter, PercentFormatter  # noqa: E402

from raybt import metrics as _m  # noqa: E402

__all__ = [
    "DPI", "asset_colors", "asset_frontier_points", "downsample", "plot_attribution",
    "plot_correlation", "plot_drawdown", "plot_equity", "plot_frontier",
    "plot_multipliers", "plot_rolling_sharpe", "rolling_window_bars",
]

DPI = 110
MAX_POINTS = 2500
_PORTFOLIO_COLOR = "#111111"
_POS, _NEG = "#2e8b57", "#c0392b"
_TRIP, _RESUME, _REBAL, _HALT = "#c0392b", "#2e8b57", "#1f77b4", "#f4b6b6"

# candidate resampling steps, finest first
_STEPS = ["5min", "15min", "30min", "1h", "2h", "4h", "6h", "12h", "1D", "2D", "7D", "14D",
          "30D", "91D", "365D"]


# ------------------------------------------------------------------ helpers

def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _save(fig: Figure, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, facecolor="white")
    fig.clear()
    return path


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


def _to_utc_index(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(pd.to_datetime(index, utc=True))
    return idx


def _to_times(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(pd.Series(values), utc=True))


def downsample(data, max_points: int = MAX_POINTS, how: str = "last"):
    """Resample a time-indexed Series/DataFrame to at most ~``max_points`` rows.

    The step is the finest of 5min, 15min, ... 1D, 7D ... that keeps the row
    count under ``max_points``; ``how`` is the bucket aggregation (``"last"``
    for levels, ``"max"``/``"min"`` to keep extremes).  The first row is kept
    so normalised curves still start at their first value.  Short inputs and
    non-datetime indexes are returned unchanged.
    """
    if len(data) <= max_points or not isinstance(data.index, pd.DatetimeIndex):
        return data
    span = data.index[-1] - data.index[0]
    step = _STEPS[-1]
    for s in _STEPS:
        if span / pd.Timedelta(s) <= max_points:
            step = s
            break
    out = getattr(data.resample(step, label="right", closed="right"), how)()
    out = out.dropna(how="all")
    first = data.iloc[:1]
    if len(out) and out.index[0] > first.index[0]:
        out = pd.concat([first, out])
    return out


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
    ev = events.copy()
    ev["t"] = _to_times(ev["decided_at"]).to_numpy()
    kinds = ev["event"].astype(str).str.lower()
    spans, start = [], None
    for t, k in zip(ev["t"], kinds):
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


# ------------------------------------------------------------------ 1 equity

def plot_equity(equity: pd.DataFrame, path, *, returns: pd.DataFrame | None = None,
                assets: Iterable[str] | None = None, title: str = "Equity: portfolio vs sleeves"
                ) -> Path:
    """Portfolio equity (thick) and each asset's sleeve (thin), both as growth
    of 1.0 from the first bar.

    ``equity`` is the ``portfolio_equity`` frame.  When ``returns`` (the
    sleeves' flow-adjusted per-bar returns, e.g. ``analyse_run(...)["frames"]
    ["returns"]``) is given, a sleeve's curve is ``cumprod(1 + r)`` so
    rebalancing cash transfers do not show as jumps; otherwise it is the
    sleeve equity divided by its first non-zero value.
    """
    if assets is None:
        assets = [c for c in equity.columns if c not in ("equity", "drawdown")]
    assets = list(assets)
    fig = _figure(12, 6)
    ax = fig.add_subplot()
    port = _portfolio_series(equity)
    if len(port) == 0 or not np.isfinite(port.iloc[0]) or port.iloc[0] == 0:
        _no_data(ax, "no equity data")
        ax.set_title(title)
        return _save(fig, path)

    curves = {}
    for a in assets:
        if returns is not None and a in returns.columns:
            r = returns[a].replace([np.inf, -np.inf], np.nan).fillna(0.0)
            growth = (1.0 + r).cumprod()
            first = pd.Series([1.0], index=equity.index[:1])
            curves[a] = pd.concat([first, growth])
        else:
            s = equity[a].astype(float)
            nz = s[s != 0]
            if len(nz) == 0:
                continue
            curves[a] = s / nz.iloc[0]
    colors = asset_colors(assets)
    frame = pd.DataFrame(curves)
    frame["__portfolio__"] = port / port.iloc[0]
    frame = downsample(frame)

    lw = 1.0 if len(assets) <= 10 else 0.8
    handles = {}
    for a in curves:
        handles[a], = ax.plot(frame.index, frame[a], lw=lw, alpha=0.85, color=colors[a],
                              label=a)
    handles["Portfolio"], = ax.plot(frame.index, frame["__portfolio__"], lw=2.8,
                                    color=_PORTFOLIO_COLOR, label="Portfolio", zorder=10)
    ax.axhline(1.0, color="#888888", lw=0.8, ls=":", zorder=1)
    ax.set_title(title + (" (sleeves net of rebalancing transfers)" if returns is not None else ""),
                 fontsize=12)
    ax.set_ylabel("Growth of 1.0 (start = 1.0)")
    ax.set_xlabel("Date (UTC)")
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.margins(x=0.01)
    # legend ordered like the curves' final values (top to bottom)
    last = frame.ffill().iloc[-1].rename({"__portfolio__": "Portfolio"})
    order = last.reindex(list(handles)).fillna(-np.inf).sort_values(ascending=False).index
    _legend_outside(fig, ax, len(handles), handles=[handles[k] for k in order],
                    title="Ordered by final value" if len(handles) > 5 else None)
    return _save(fig, path)


# ------------------------------------------------------------------ 2 drawdown

def plot_drawdown(drawdown: pd.Series, path, *, events: pd.DataFrame | None = None,
                  breaker_level: float | None = None,
                  title: str = "Portfolio drawdown") -> Path:
    """Drawdown (positive fraction) filled downwards on a percent axis, with
    the breaker's trips (red), resumes (green) and halted spans (shaded)
    from ``events`` (columns ``decided_at``, ``event``) and an optional
    dashed line at the breaker threshold ``breaker_level``."""
    fig = _figure(12, 4.5)
    ax = fig.add_subplot()
    dd = pd.Series(drawdown, dtype=float).dropna()
    if len(dd) == 0:
        _no_data(ax, "no drawdown data")
        ax.set_title(title)
        return _save(fig, path)
    dd.index = _to_utc_index(dd.index)
    shown = -downsample(dd, how="max")
    ax.fill_between(shown.index, shown.to_numpy(), 0.0, color="#c0392b", alpha=0.35, lw=0,
                    step="post", label="Drawdown")
    ax.plot(shown.index, shown.to_numpy(), color="#8e1b10", lw=0.8, drawstyle="steps-post")
    end = dd.index[-1]
    for i, (t0, t1) in enumerate(_breaker_spans(events, end)):
        ax.axvspan(t0, t1, color="#777777", alpha=0.35, lw=0,
                   label="Breaker halted" if i == 0 else None)
    trips, resumes = _event_times(events, "trip"), _event_times(events, "resume")
    for i, t in enumerate(trips):
        ax.axvline(t, color=_TRIP, lw=1.2, ls="-", label="Breaker trip" if i == 0 else None)
    for i, t in enumerate(resumes):
        ax.axvline(t, color=_RESUME, lw=1.2, ls="--",
                   label="Breaker resume" if i == 0 else None)
    if breaker_level is not None and math.isfinite(breaker_level) and breaker_level > 0:
        ax.axhline(-breaker_level, color="#555555", lw=1.0, ls=":",
                   label=f"Breaker level ({breaker_level:.0%})")
    lo = min(float(shown.min()), -(breaker_level or 0.0))
    ax.set_ylim(lo * 1.12 if lo < 0 else -0.01, 0.0)
    _pct_axis(ax.yaxis)
    ax.set_ylabel("Drawdown from peak (%)")
    ax.set_xlabel("Date (UTC)")
    ax.set_title(f"{title} (max {float(dd.max()):.2%})", fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(dd.index[0], dd.index[-1])
    fig.legend(loc="outside lower center", ncol=5, fontsize=9, frameon=False)
    return _save(fig, path)


# ------------------------------------------------------------------ 3 correlation

def plot_correlation(corr: pd.DataFrame, path, *,
                     title: str = "Correlation of sleeve returns") -> Path:
    """Heatmap of a correlation matrix, values written in the cells (two
    decimals, font sized to the cells, so shrinking once the figure reaches
    its maximum size; omitted above 40 assets),
    diverging colormap fixed to [-1, 1] with a colorbar; NaN cells grey."""
    n = len(corr)
    side = min(18.0, max(5.5, 0.55 * n + 3.0))
    fig = _figure(side + 1.2, side)
    ax = fig.add_subplot()
    if n == 0:
        _no_data(ax, "no correlation data")
        ax.set_title(title)
        return _save(fig, path)
    values = corr.to_numpy(dtype=float)
    cmap = colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0,
                   interpolation="nearest", aspect="equal")
    labels = [str(c) for c in corr.columns]
    cell_pt = (side - 3.0) / n * 72.0  # approximate cell size in points
    label_fs = max(6.0, min(10.0, 0.3 * cell_pt))
    ax.set_xticks(range(n), labels, rotation=45, ha="right", rotation_mode="anchor",
                  fontsize=label_fs)
    ax.set_yticks(range(n), [str(i) for i in corr.index], fontsize=label_fs)
    if n <= 40:
        fs = max(4.5, min(11.0, 0.22 * cell_pt))
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text = "n/a" if not math.isfinite(v) else f"{v:.2f}"
                color = "white" if math.isfinite(v) and abs(v) > 0.6 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=fs, color=color)
    ax.set_xticks(np.arange(-0.5, n, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, n, 1), minor=True)
    ax.grid(which="minor", color="white", lw=0.6)
    ax.tick_params(which="minor", length=0)
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02)
    cb.set_label("Pearson correlation of per-bar returns")
    ax.set_title(title, fontsize=12)
    return _save(fig, path)


# ------------------------------------------------------------------ 4 attribution

def plot_attribution(pnl: pd.Series, risk_share: pd.Series, path, *, currency: str = "",
                     title: str = "Attribution") -> Path:
    """Two panels sharing the asset order (best PnL on top): PnL per asset in
    currency (green gains, red losses) and each asset's share of portfolio
    variance in percent (negative = diversifying)."""
    pnl = pd.Series(pnl, dtype=float)
    risk_share = pd.Series(risk_share, dtype=float).reindex(pnl.index)
    n = len(pnl)
    fig = _figure(13, max(4.0, 0.38 * n + 1.8))
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    if n == 0:
        _no_data(ax1)
        _no_data(ax2)
        fig.suptitle(title)
        return _save(fig, path)
    order = pnl.fillna(0.0).sort_values(ascending=True).index  # barh draws bottom-up
    y = np.arange(n)
    p = pnl.reindex(order).fillna(0.0).to_numpy()
    r = risk_share.reindex(order).to_numpy()
    fs = 8 if n > 12 else 9

    ax1.barh(y, p, color=np.where(p >= 0, _POS, _NEG), height=0.7)
    ax1.axvline(0, color="#333333", lw=0.8)
    ax1.set_yticks(y, [str(a) for a in order], fontsize=fs + 1)
    ax1.xaxis.set_major_formatter(FuncFormatter(_money_tick))
    unit = f" ({currency})" if currency else " (account currency)"
    ax1.set_xlabel("PnL" + unit)
    ax1.set_title("Performance attribution: PnL per asset", fontsize=11)
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
    ax2.barh(y, rr, color=np.where(rr >= 0, "#4c72b0", "#dd8452"), height=0.7)
    ax2.axvline(0, color="#333333", lw=0.8)
    _pct_axis(ax2.xaxis)
    ax2.set_xlabel("Share of portfolio variance (%)")
    ax2.set_title("Risk attribution: share of variance", fontsize=11)
    ax2.grid(True, axis="x", alpha=0.3)
    rspan = max(float(np.max(np.abs(rr))) if n else 0.0, 1e-12)
    for yi, v, ok in zip(y, rr, finite):
        ax2.text(v + (0.01 * rspan if v >= 0 else -0.01 * rspan), yi,
                 f"{v:.1%}" if ok else "n/a", va="center",
                 ha="left" if v >= 0 else "right", fontsize=fs)
    rlo, rhi = min(0.0, float(rr.min())), max(0.0, float(rr.max()))
    ax2.set_xlim(rlo - (0.2 * rspan if rlo < 0 else 0.0), rhi + 0.2 * rspan)
    ax2.tick_params(axis="y", labelleft=False)
    fig.suptitle(title, fontsize=13)
    return _save(fig, path)


# ------------------------------------------------------------------ 5 frontier

def asset_frontier_points(returns: pd.DataFrame, periods_per_year: float) -> pd.DataFrame:
    """Each sleeve's ``volatility`` / ``return`` on the frontier's axes
    (annualised std and arithmetic mean of the rows where all are finite)."""
    r = returns.replace([np.inf, -np.inf], np.nan).dropna(how="any")
    ppy = float(periods_per_year)
    return pd.DataFrame({"volatility": r.std(ddof=1) * math.sqrt(ppy),
                         "return": r.mean() * ppy})


def _overlap(b1, b2) -> float:
    """Overlap area of two (x0, y0, x1, y1) boxes."""
    w = min(b1[2], b2[2]) - max(b1[0], b2[0])
    h = min(b1[3], b2[3]) - max(b1[1], b2[1])
    return w * h if w > 0 and h > 0 else 0.0


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
    dirs = [(1, 0, "left", "center"), (-1, 0, "right", "center"),
            (0.7, 0.7, "left", "bottom"), (0.7, -0.7, "left", "top"),
            (-0.7, 0.7, "right", "bottom"), (-0.7, -0.7, "right", "top"),
            (0, 1, "center", "bottom"), (0, -1, "center", "top")]
    placed: list[tuple] = []
    out: list = [None] * len(labels)
    order = np.argsort(-points[:, 1], kind="stable")
    for i in order:
        x, y = points[i]
        w, h = cw * len(labels[i]), ch
        best, best_cost = None, math.inf
        for dist in (6.0, 14.0, 24.0, 36.0, 50.0):
            for dx, dy, ha, va in dirs:
                ox, oy = dx * dist, dy * dist
                x0 = x + ox - (0 if ha == "left" else w if ha == "right" else w / 2)
                y0 = y + oy - (0 if va == "bottom" else h if va == "top" else h / 2)
                box = (x0, y0, x0 + w, y0 + h)
                cost = sum(_overlap(box, q) for q in placed)
                for cx, cy, r in obstacles:
                    cost += _overlap(box, (cx - r, cy - r, cx + r, cy + r))
                outside = (max(0.0, bounds[0] - box[0]) + max(0.0, box[2] - bounds[2])
                           + max(0.0, bounds[1] - box[1]) + max(0.0, box[3] - bounds[3]))
                cost += outside * h * 4 + dist * 0.05  # prefer close placements
                if cost < best_cost:
                    best, best_cost = (ox, oy, ha, va, box), cost
            if best_cost < 5.0:
                break
        ox, oy, ha, va, box = best
        placed.append(box)
        out[i] = (ox, oy, ha, va)
    return out


def plot_frontier(frontier: pd.DataFrame | None, asset_points: pd.DataFrame, path, *,
                  portfolio: tuple | None = None, equal_weight: tuple | None = None,
                  target_weights: tuple | None = None,
                  title: str = "Efficient frontier of the sleeves") -> Path:
    """Long-only efficient frontier (``frontier`` with columns ``volatility``
    and ``return``; None or empty for none), each asset's point labelled
    (labels placed to avoid each other and the markers), the actual
    portfolio highlighted (star), the equal-weight mix (hollow diamond) and,
    when they differ from equal weights, the target weights (hollow square).
    Points are ``(volatility, return)`` annualised fractions, shown in %."""
    fig = _figure(11, 7)
    ax = fig.add_subplot()
    pts = asset_points.replace([np.inf, -np.inf], np.nan).dropna()
    have_frontier = frontier is not None and len(frontier) > 0
    if len(pts) == 0 and not have_frontier and portfolio is None:
        _no_data(ax, "no return data")
        ax.set_title(title)
        return _save(fig, path)
    if have_frontier:
        f = frontier.sort_values("volatility")
        ax.plot(f["volatility"], f["return"], color="#1f3b73", lw=2.2,
                label="Efficient frontier (long-only)", zorder=3)
    else:
        ax.text(0.02, 0.98, "frontier not computed", transform=ax.transAxes, va="top",
                fontsize=9, color="#777777")
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

    xs = list(pts["volatility"]) + [s[1][0] for s in specials]
    ys = list(pts["return"]) + [s[1][1] for s in specials]
    if have_frontier:
        xs += list(frontier["volatility"])
        ys += list(frontier["return"])
    x0, x1 = min(0.0, min(xs)), max(xs)
    y0, y1 = min(ys), max(ys)
    xr, yr = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    ax.set_xlim(x0, x1 + 0.22 * xr)
    ax.set_ylim(y0 - 0.08 * yr, y1 + 0.08 * yr)
    ax.axhline(0.0, color="#888888", lw=0.8, ls=":")
    _pct_axis(ax.xaxis)
    _pct_axis(ax.yaxis)
    ax.set_xlabel("Annualised volatility (%)")
    ax.set_ylabel("Annualised return (arithmetic mean, %)")
    ax.set_title(title, fontsize=12)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncol=2 if len(specials) < 2 else 3, fontsize=9,
               frameon=False)
    if len(pts):
        # settle the layout, then place the labels in display points
        fig.draw_without_rendering()
        to_pt = 72.0 / fig.dpi
        xy = pts[["volatility", "return"]].to_numpy(float)
        disp = ax.transData.transform(xy) * to_pt
        obst = [(px, py, 4.5) for px, py in disp]
        for _, (v, r), _mk, _f, _e, size in specials:
            px, py = ax.transData.transform((v, r)) * to_pt
            obst.append((px, py, 0.6 * math.sqrt(size)))
        if have_frontier:
            fx = np.linspace(0, 1, 60)
            fv = np.interp(fx, np.linspace(0, 1, len(f)), f["volatility"].to_numpy(float))
            fr = np.interp(fx, np.linspace(0, 1, len(f)), f["return"].to_numpy(float))
            fd = ax.transData.transform(np.column_stack([fv, fr])) * to_pt
            obst += [(px, py, 2.0) for px, py in fd]
        bb = ax.get_window_extent()
        bounds = (bb.x0 * to_pt, bb.y0 * to_pt, bb.x1 * to_pt, bb.y1 * to_pt)
        fs = 8 if len(pts) > 10 else 9
        names = [str(a) for a in pts.index]
        offsets = _place_labels(disp, names, fs, np.array(obst), bounds)
        for name, (v, r), (ox, oy, ha, va) in zip(names, xy, offsets):
            far = math.hypot(ox, oy) > 10
            ax.annotate(name, (v, r), xytext=(ox, oy), textcoords="offset points",
                        fontsize=fs, ha=ha, va=va, color="#222222", zorder=8,
                        arrowprops=(dict(arrowstyle="-", color="#888888", lw=0.6,
                                         shrinkA=0, shrinkB=3) if far else None))
    return _save(fig, path)


# ------------------------------------------------------------------ 6 rolling Sharpe

def rolling_window_bars(index: pd.DatetimeIndex, days: float = 30.0) -> int:
    """Bars in ``days`` days at the index's median bar spacing (at least 2)."""
    idx = pd.DatetimeIndex(index)
    if len(idx) < 2:
        return 2
    step = pd.Series(idx).diff().dropna().median()
    if not step or step <= pd.Timedelta(0):
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
        ax.set_title(title)
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
        ax.set_title(title)
        return _save(fig, path)
    shown = downsample(rs)
    v = shown.to_numpy()
    ax.plot(shown.index, v, color="#1f3b73", lw=1.1, label="Rolling Sharpe")
    ax.fill_between(shown.index, v, 0, where=v >= 0, color=_POS, alpha=0.25, lw=0,
                    interpolate=True)
    ax.fill_between(shown.index, v, 0, where=v < 0, color=_NEG, alpha=0.25, lw=0,
                    interpolate=True)
    ax.axhline(0.0, color="#333333", lw=1.0)
    full = _m.sharpe_ratio(eq)
    if math.isfinite(full):
        ax.axhline(full, color="#d62728", lw=1.0, ls="--",
                   label=f"Full-period Sharpe ({full:.2f})")
    ax.set_ylabel("Sharpe ratio (annualised, rf = 0)")
    ax.set_xlabel("Date (UTC)")
    days_txt = f"{label_days:.0f}" if label_days >= 1 else f"{label_days:.2f}"
    ax.set_title(f"{title} ({days_txt}-day window, {window:,} bars)", fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(eq.index[0], eq.index[-1])
    fig.legend(loc="outside lower center", ncol=2, fontsize=9, frameon=False)
    return _save(fig, path)


# ------------------------------------------------------------------ 7 multipliers

def _chunk_table(multipliers: pd.DataFrame) -> pd.DataFrame:
    """Per chunk: time, mean/min/max multiplier, mean drawdown and correlation
    factors, halted flag."""
    m = multipliers.copy()
    tcol = "chunk_start" if "chunk_start" in m.columns else "decided_at"
    m["t"] = _to_times(m[tcol]).to_numpy()
    if "halted" in m.columns:
        m["halted"] = m["halted"].astype(str).str.lower().isin(["true", "1", "1.0"])
    else:
        m["halted"] = False
    key = "chunk" if "chunk" in m.columns else "t"
    agg = {"t": ("t", "first"), "mult_mean": ("multiplier", "mean"),
           "mult_min": ("multiplier", "min"), "mult_max": ("multiplier", "max"),
           "halted": ("halted", "any")}
    for c in ("drawdown", "correlation", "portfolio_risk"):
        if c in m.columns:
            agg[c] = (c, "mean")
    g = m.groupby(key, sort=True).agg(**agg).sort_values("t")
    return g.reset_index(drop=True)


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
        ax.set_title(title)
        return _save(fig, path)
    g = _chunk_table(multipliers)
    t = pd.DatetimeIndex(g["t"])
    step = (pd.Series(t).diff().dropna().median() if len(t) > 1 else pd.Timedelta(days=1))
    t_end = t[-1] + step
    tt = t.append(pd.DatetimeIndex([t_end]))

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
        ax.scatter(reb, np.full(len(reb), top * 1.02), marker="v", s=22, color=_REBAL,
                   zorder=6, label=f"Rebalance ({len(reb)})", clip_on=False)
    trips = _event_times(events, "trip")
    for k, tr in enumerate(trips):
        ax.axvline(tr, color=_TRIP, lw=1.0, label="Breaker trip" if k == 0 else None)
    ax.set_ylabel("Factor (× base position size)")
    ax.set_xlabel("Chunk start (UTC)")
    ax.set_title(title, fontsize=12)
    ax.grid(True, alpha=0.3)
    _date_axis(ax)
    ax.set_xlim(tt[0], tt[-1])
    fig.legend(loc="outside right upper", fontsize=8.5, frameon=False)
    return _save(fig, path)

