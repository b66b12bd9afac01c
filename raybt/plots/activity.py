"""What the portfolio did: trades, exposure and leverage, weights and
turnover, costs.  See :mod:`raybt.plots.figures`; the quantities come from
:mod:`raybt.analysis.tearsheet`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullLocator

from raybt.analysis.trades import EXIT_REASONS, REASON_LABELS, SIDES
from raybt.plots import base as B
from raybt.plots.base import (
    _NEG,
    _POS,
    MANY_ASSETS,
    _date_axis,
    _dates,
    _figure,
    _money,
    _money_tick,
    _no_data,
    _pct_axis,
    _sample_rows,
    _title,
    _to_utc_index,
    asset_styles,
)

#: sleeves drawn one by one in the costs figure beyond MANY_ASSETS (the rest summed in its title)
TOP_N = 10
_NAMED = 3  # sleeves named at each end of the weights figure beyond MANY_ASSETS


def _unavailable(fig, path, title: str, message: str) -> Path:
    ax = fig.add_subplot()
    _no_data(ax, message)
    _title(ax, title)
    return B._save(fig, path)


# ------------------------------------------------------------------ trades

def _group_bars(ax, table: pd.DataFrame, labels: list[str], title: str) -> None:
    """Horizontal bars of each group's total PnL, with its count, win rate and average."""
    total = table["total_pnl"].to_numpy(float)
    y = np.arange(len(labels))[::-1]
    ax.barh(y, total, color=np.where(total >= 0, _POS, _NEG), height=0.6)
    ax.axvline(0, color="#333333", lw=0.8)
    ax.set_yticks(y, labels, fontsize=9)
    span = max(float(np.abs(total).max()), 1e-9)
    for yi, (_, r) in zip(y, table.iterrows()):  # one row per exit reason or side (a few)
        n = int(r["count"])
        text = (f"{n:,} trades, win {r['win_rate']:.0%}, avg {_money(r['avg_pnl'])}" if n
                else "no trades")
        ax.text(0.01 * span if r["total_pnl"] <= 0 else -0.01 * span, yi, text, fontsize=8,
                va="center", ha="left" if r["total_pnl"] <= 0 else "right", color="#222222",
                in_layout=False)
    ax.set_xlim(-1.15 * span, 1.15 * span)
    ax.xaxis.set_major_formatter(FuncFormatter(_money_tick))
    ax.set_xlabel("Total PnL (account currency)")
    _title(ax, title, fontsize=10.5)
    ax.grid(True, axis="x", alpha=0.3)


def plot_trades(trade_analysis: dict | None, path, *, title: str = "Trades") -> Path:
    """Four panels from :func:`raybt.analysis.trades.trade_analysis`'s result:
    the distribution of trade PnL (the 0.5-99.5 % range, the trades beyond
    counted in the title; mean and median marked), of holding time (whole
    bars on a log axis, hours; trades closed on their entry bar counted in
    the title), total PnL by exit reason and by side (each bar annotated
    with its count, win rate and average PnL).  Max-hold exits are recorded
    as ``signal``.  Everything drawn is precomputed: no pass over the trades."""
    fig = _figure(13, 8.2)
    ta = trade_analysis or {}
    if not ta.get("n_trades"):
        return _unavailable(fig, path, title, "no trades")
    (a1, a2), (a3, a4) = fig.subplots(2, 2)
    ph, ps = ta["pnl_histogram"], ta["pnl"]
    edges, counts = np.asarray(ph["edges"]), np.asarray(ph["counts"])
    # two filled step outlines (losses red, gains green): two artists, not one per bin
    mids = (edges[:-1] + edges[1:]) / 2
    neg = np.where(mids < 0, counts, 0)
    a1.stairs(neg, edges, fill=True, color=_NEG, alpha=0.8)
    a1.stairs(counts - neg, edges, fill=True, color=_POS, alpha=0.8)
    a1.axvline(ps["mean"], color="#1f3b73", lw=1.4, label=f"mean {_money(ps['mean'])}")
    a1.axvline(ps["median"], color="#7b3294", lw=1.4, ls=(0, (4, 2)),
               label=f"median {_money(ps['median'])}")
    a1.xaxis.set_major_formatter(FuncFormatter(_money_tick))
    a1.set_xlabel("PnL per trade (account currency, net of commission)")
    a1.set_ylabel("Trades")
    a1.legend(fontsize=8.5, loc="upper left")
    _title(a1, f"PnL distribution ({ps['n']:,} trades; {ph['beyond']:,} beyond the 0.5-99.5 % "
               "range not shown)", fontsize=10.5)
    a1.grid(True, alpha=0.3)

    hh = ta.get("holding_histogram") or {"edges": [], "counts": [], "same_bar": 0}
    hs = ta["holding_hours"]
    edges, counts = np.asarray(hh["edges"]), np.asarray(hh["counts"])
    if len(counts):
        a2.stairs(counts, edges, fill=True, color="#4c72b0", alpha=0.85)
        a2.set_xscale("log")
        a2.xaxis.set_minor_locator(NullLocator())
        a2.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        med = float(hs["median"])
        a2.axvline(max(med, edges[0]), color="#7b3294", lw=1.4, ls=(0, (4, 2)),
                   label=f"median {med:.2f} h")
        a2.legend(fontsize=8.5, loc="upper right")
    else:
        _no_data(a2, "every trade closed on its entry bar" if hs.get("n") else "no holding times")
    a2.set_xlabel("Holding time, entry bar to exit bar (hours, log scale)")
    a2.set_ylabel("Trades per bin (whole bars)")
    same = hh["same_bar"]
    _title(a2, f"Holding time ({same:,} trades closed on their entry bar not shown)"
           if same else "Holding time", fontsize=10.5)
    a2.grid(True, alpha=0.3)

    _group_bars(a3, ta["by_exit_reason"].reindex(EXIT_REASONS),
                [REASON_LABELS[r] for r in EXIT_REASONS],
                "Total PnL by exit reason (max-hold exits count as signal)")
    _group_bars(a4, ta["by_side"].reindex(SIDES), SIDES, "Total PnL by side")
    fig.suptitle(title, fontsize=13)
    return B._save(fig, path)


# ------------------------------------------------------------------ exposure

def bucket_stats(values: np.ndarray, n_buckets: int = 300) -> tuple[np.ndarray, ...]:
    """``(first_row, low, mean, high)`` of ``values`` over ``n_buckets``
    consecutive runs of about equal length (NaN skipped; a run of NaN gives
    NaN): three reductions, no loop."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    starts = np.unique(np.linspace(0, n, min(n_buckets, n), endpoint=False).astype(np.int64))
    ok = np.isfinite(v)
    count = np.add.reduceat(ok.astype(np.float64), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(np.where(ok, v, 0.0), starts) / count
    low = np.minimum.reduceat(np.where(ok, v, np.inf), starts)
    high = np.maximum.reduceat(np.where(ok, v, -np.inf), starts)
    empty = count == 0
    low[empty] = high[empty] = np.nan
    return starts, low, mean, high


def _bucket_hours(index: pd.DatetimeIndex, starts: np.ndarray) -> float:
    if len(starts) < 2:
        return math.nan
    return float((index[-1] - index[0]) / pd.Timedelta(hours=1)) / len(starts)


def plot_exposure(exposure: pd.DataFrame | None, path, *, note: str | None = None,
                  title: str = "Exposure, leverage and margin") -> Path:
    """Three panels over time (UTC) from ``exposure`` (per bar: ``gross``,
    ``net``, ``leverage``, ``margin_to_equity``; :func:`raybt.analysis.exposure.
    exposure_summary`'s frame): gross and net notional exposure (account
    currency, at entry prices), leverage (gross exposure / portfolio equity)
    and margin in use / equity.  Bar-level exposure jumps with every entry
    and exit, so each panel shows, over about 300 consecutive buckets of bars
    (:func:`bucket_stats`), the mean as a line and the range from minimum to
    maximum as a band (the title gives the bucket length); the peak is in
    the panel titles.  Without ``exposure`` the figure says why (``note``)."""
    fig = _figure(12.5, 8.0)
    if exposure is None or len(exposure) == 0:
        return _unavailable(fig, path, title, note or "exposure unavailable")
    a1, a2, a3 = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1.4, 1, 1]})
    index = _to_utc_index(exposure.index)
    x_all = _dates(index)

    def band(ax, col, color, label):
        starts, lo, mean, hi = bucket_stats(exposure[col].to_numpy(dtype=np.float64))
        x = x_all[starts]
        ax.fill_between(x, lo, hi, color=color, alpha=0.22, lw=0, step="post",
                        label=f"{label}: min-max" if label else None)
        ax.step(x, mean, where="post", color=color, lw=1.2,
                label=f"{label}: mean" if label else None)
        return starts

    starts = band(a1, "gross", "#1f3b73", "Gross (long + short)")
    band(a1, "net", "#d95f02", "Net (long - short)")
    a1.axhline(0, color="#333333", lw=0.7)
    a1.yaxis.set_major_formatter(FuncFormatter(_money_tick))
    a1.set_ylabel("Notional (currency)")
    a1.legend(fontsize=8.5, loc="upper right", ncol=2)
    g = exposure["gross"].to_numpy(dtype=np.float64)
    _title(a1, f"Exposure: open trades' notional at entry price (max gross {_money(np.nanmax(g))})",
           fontsize=10.5)
    band(a2, "leverage", "#1f3b73", None)
    a2.set_ylabel("Gross / equity (x)")
    lev = exposure["leverage"].to_numpy(dtype=np.float64)
    _title(a2, f"Leverage (mean {np.nanmean(lev):.2f}x, max {np.nanmax(lev):.2f}x)", fontsize=10.5)
    band(a3, "margin_to_equity", "#7b3294", None)
    _pct_axis(a3.yaxis)
    a3.set_ylabel("Margin / equity (%)")
    mte = exposure["margin_to_equity"].to_numpy(dtype=np.float64)
    _title(a3, f"Margin in use / equity (mean {np.nanmean(mte):.1%}, max {np.nanmax(mte):.1%})",
           fontsize=10.5)
    a3.set_xlabel("Date (UTC)")
    for a in (a1, a2, a3):
        a.grid(True, alpha=0.3)
    a2.set_ylim(bottom=0)
    a3.set_ylim(bottom=0)
    _date_axis(a3)
    a3.set_xlim(x_all[0], x_all[-1])
    hours = _bucket_hours(index, starts)
    per = (f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days") \
        if math.isfinite(hours) else "one bar"
    fig.suptitle(f"{title} (per bucket of ~{per}: mean line, min-max band)", fontsize=12.5)
    return B._save(fig, path)


# ------------------------------------------------------------------ weights

def _stacked_shares(fig, ax, x, shares: np.ndarray, assets: list,
                    weights_history: pd.DataFrame | None) -> None:
    """A few sleeves: their shares stacked (tab10 hues, hatched past ten), the
    target weights as dashed stair lines at the same stacked boundaries."""
    styles = asset_styles(assets)
    stacks = ax.stackplot(x, shares.T, colors=[styles[a]["color"] for a in assets],
                          labels=[str(a) for a in assets], alpha=0.85, lw=0)
    for k, poly in enumerate(stacks):
        if k >= 10:  # hues repeat past ten: a hatch tells them apart
            poly.set_hatch(["//", "..", "xx"][min(k // 10 - 1, 2)])
            poly.set_edgecolor("white")
    if weights_history is not None and len(weights_history):
        tw = weights_history.reindex(columns=assets).to_numpy(dtype=np.float64)
        tw = np.nan_to_num(tw) / np.nansum(tw, axis=1, keepdims=True)
        bounds = np.cumsum(tw, axis=1)[:, :-1].T
        tx = np.append(_dates(pd.to_datetime(weights_history["decided_at"], utc=True)), x[-1])
        for k, b in enumerate(bounds):
            ax.step(tx, np.append(b, b[-1]), where="post", color="black", lw=0.8, ls=(0, (3, 2)),
                    label="Target weights (stacked)" if k == 0 else None)
    ax.set_ylim(0, 1)
    _title(ax, "Each sleeve's share of equity, stacked", fontsize=10.5)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles[::-1], labels[::-1], loc="outside right upper", fontsize=7.5, frameon=False)


def _share_bands(fig, ax, x, shares: np.ndarray, assets: list,
                 weights_history: pd.DataFrame | None) -> None:
    """Many sleeves: the 5-95 % and 25-75 % bands and the median of the
    sleeves' shares at each time, the :data:`_NAMED` largest and smallest by
    mean share named, the target weights' range."""
    live = np.isfinite(shares).all(axis=0)
    s = shares[:, live]
    names = np.asarray(assets, dtype=object)[live]
    p5, p25, p50, p75, p95 = np.percentile(s, [5, 25, 50, 75, 95], axis=1)
    band = "#4c72b0"
    ax.fill_between(x, p5, p95, color=band, alpha=0.16, lw=0, label="5-95 % of sleeves")
    ax.fill_between(x, p25, p75, color=band, alpha=0.32, lw=0, label="25-75 % of sleeves")
    ax.plot(x, p50, color="#1f3b73", lw=1.2, ls=(0, (5, 2)), label="Median sleeve")
    order = np.argsort(-s.mean(axis=0), kind="stable")
    k = min(_NAMED, len(order) // 2)
    named = [(i, "Largest", c) for i, c in zip(order[:k], ["#006d2c", "#31a354", "#74c476"])] + \
        [(i, "Smallest", c) for i, c in zip(order[::-1][:k], ["#a50f15", "#de2d26", "#fb6a4a"])]
    for i, kind, color in named:
        ax.plot(x, s[:, i], color=color, lw=1.0, label=f"{kind}: {names[i]} (mean {s[:, i].mean():.2%})")
    if weights_history is not None and len(weights_history):
        tw = weights_history.reindex(columns=assets).to_numpy(dtype=np.float64)
        tw = np.nan_to_num(tw) / np.nansum(tw, axis=1, keepdims=True)
        tx = np.append(_dates(pd.to_datetime(weights_history["decided_at"], utc=True)), x[-1])
        lo, hi = tw.min(axis=1), tw.max(axis=1)
        if np.allclose(lo, hi):
            ax.step(tx, np.append(lo, lo[-1]), where="post", color="black", lw=1.0, ls=(0, (3, 2)),
                    label=f"Target weight (every sleeve: {lo[-1]:.2%})")
        else:
            ax.fill_between(tx, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post",
                            facecolor="none", edgecolor="black", hatch="//", lw=0.6,
                            label="Target weights (lowest to highest)")
    # limits from the data: shares near the target would be a flat line on a scale from 0
    _title(ax, f"Sleeves' shares of equity\n({len(assets):,} sleeves: percentile bands, the {k} largest "
               f"and {k} smallest by mean share named)", fontsize=10.5)
    fig.legend(loc="outside right upper", fontsize=7.5, frameon=False)


def plot_weights(equity: pd.DataFrame, assets: list, turnover: pd.DataFrame | None, path, *,
                 weights_history: pd.DataFrame | None = None,
                 title: str = "Weights and rebalancing") -> Path:
    """Top: each sleeve's share of portfolio equity over time (sleeve equity /
    their sum, at up to ~2,000 evenly spaced bars) against the target weights
    of ``weights_history`` (the start and every re-estimate), so drift
    between rebalances shows: stacked up to :data:`MANY_ASSETS` sleeves
    (:func:`_stacked_shares`); beyond, percentile bands across sleeves with
    the largest and smallest named (:func:`_share_bands`; the title says
    so).  Bottom: the one-way turnover of each rebalance (cash moved /
    portfolio equity; :func:`raybt.analysis.exposure.rebalance_turnover`)."""
    fig = _figure(12.5, 8.0)
    if len(equity) == 0 or not assets:
        return _unavailable(fig, path, title, "no sleeves")
    a1, a2 = fig.subplots(2, 1, gridspec_kw={"height_ratios": [2.2, 1]})
    rows = _sample_rows(len(equity), 2000)
    values = equity.iloc[rows][assets].to_numpy(dtype=np.float64)  # the sampled rows only
    with np.errstate(divide="ignore", invalid="ignore"):
        shares = values / values.sum(axis=1, keepdims=True)
    x = _dates(_to_utc_index(equity.index[rows]))
    if len(assets) <= MANY_ASSETS:
        _stacked_shares(fig, a1, x, shares, assets, weights_history)
    else:
        _share_bands(fig, a1, x, shares, assets, weights_history)
    a1.set_xlim(x[0], x[-1])
    _pct_axis(a1.yaxis)
    a1.set_ylabel("Share of portfolio equity (%)")
    _date_axis(a1)

    if turnover is not None and len(turnover):
        tt = _dates(_to_utc_index(pd.DatetimeIndex(turnover["time"])))
        width = max(0.6, 0.6 * float(np.median(np.diff(tt)))) if len(tt) > 1 else 1.0
        a2.bar(tt, turnover["turnover"].to_numpy(float), width=width, color="#4c72b0")
        total = float(turnover["turnover"].sum())
        _title(a2, f"Rebalance turnover: {len(turnover):,} rebalances moved "
                   f"{_money(float(turnover['moved'].sum()))} in all, {total:.1%} of equity "
                   "(one way: cash moved / portfolio equity)", fontsize=10.5)
        _pct_axis(a2.yaxis)
        a2.set_ylabel("Turnover (% of equity)")
        a2.grid(True, axis="y", alpha=0.3)
    else:
        _no_data(a2, "no rebalancing transfers")
    a2.set_xlim(x[0], x[-1])
    _date_axis(a2)
    a2.set_xlabel("Date (UTC)")
    fig.suptitle(title, fontsize=13)
    return B._save(fig, path)


# ------------------------------------------------------------------ costs

_COST_COLORS = {"commission": "#d95f02", "spread": "#7570b3", "slippage": "#e7298a"}


def plot_costs(costs: pd.DataFrame | None, portfolio: dict | None, path, *, available: bool = True,
               note: str | None = None, title: str = "Costs: gross PnL, commission, spread and "
               "slippage") -> Path:
    """Left: the portfolio's gross PnL, minus commission, spread and slippage,
    giving the net PnL of the trades (a waterfall). Right: per sleeve, gross
    PnL (bar outline), each cost stacked leftwards from it and the net PnL
    (black diamond), the largest costs on top; up to :data:`MANY_ASSETS`
    sleeves every one, beyond the :data:`TOP_N` with the largest costs, the
    rest summed in the panel's title.  ``costs``/``portfolio``: :func:`raybt.analysis.trades.
    trade_costs`; with ``available`` False (no asset parameters: spread and
    slippage unknown) the figure says so (``note``)."""
    fig = _figure(13.5, 7.0)
    if costs is None or portfolio is None or not available:
        return _unavailable(fig, path, title, note or "costs unavailable")
    a1, a2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    steps = [("Gross PnL", portfolio["gross_pnl"]), ("Commission", -portfolio["commission"]),
             ("Spread", -portfolio["spread"]), ("Slippage", -portfolio["slippage"])]
    level = 0.0
    for k, (name, v) in enumerate(steps):
        base = 0.0 if k == 0 else level
        color = (_POS if v >= 0 else _NEG) if k == 0 else _COST_COLORS[name.lower()]
        a1.bar(k, v, bottom=base, color=color, width=0.65)
        a1.text(k, base + v, _money(v + 0.0) if v != 0 else "0", ha="center",
                va="bottom" if v >= 0 else "top", fontsize=9)
        level = base + v
    net = portfolio["net_pnl"]
    a1.bar(len(steps), net, color=_POS if net >= 0 else _NEG, width=0.65, edgecolor="black")
    a1.text(len(steps), net, _money(net), ha="center", va="bottom" if net >= 0 else "top",
            fontsize=9, fontweight="bold")
    a1.axhline(0, color="#333333", lw=0.8)
    a1.set_xticks(range(len(steps) + 1), [s[0] for s in steps] + ["Net PnL"], fontsize=9)
    a1.yaxis.set_major_formatter(FuncFormatter(_money_tick))
    a1.set_ylabel("Account currency")
    share = portfolio.get("costs_to_gross", math.nan)
    _title(a1, f"Portfolio: costs {_money(portfolio['total_costs'])}"
               + (f" = {share:.0%} of |gross PnL|" if math.isfinite(share) else ""), fontsize=10.5)
    a1.grid(True, axis="y", alpha=0.3)
    lo, hi = a1.get_ylim()
    a1.set_ylim(lo - 0.06 * (hi - lo), hi + 0.06 * (hi - lo))

    c = costs.fillna(0.0)
    n = len(c)
    c = c.sort_values("total_costs", ascending=False, kind="stable")
    rest_note = ""
    if n > MANY_ASSETS:  # the largest costs; the rest summed in the title (a bar would dwarf them)
        rest = c.iloc[TOP_N:].sum()
        c = c.iloc[:TOP_N]
        rest_note = (f"\nthe {TOP_N} with the largest costs of {n:,}; the other {n - TOP_N:,}: gross "
                     f"{_money(rest['gross_pnl'])}, costs {_money(rest['total_costs'])}, net "
                     f"{_money(rest['net_pnl'])}")
    c = c.iloc[::-1]  # the largest costs on top
    y = np.arange(len(c))
    a2.barh(y, c["gross_pnl"], color="none", edgecolor="#333333", lw=1.0, height=0.7,
            label="Gross PnL")
    start = c["gross_pnl"].to_numpy(float).copy()
    for name in ("commission", "spread", "slippage"):
        v = c[name].to_numpy(float)
        a2.barh(y, -v, left=start, color=_COST_COLORS[name], height=0.45, label=name.capitalize())
        start = start - v
    a2.scatter(c["net_pnl"], y, marker="D", s=28, color="black", zorder=5, label="Net PnL")
    a2.axvline(0, color="#333333", lw=0.8)
    a2.set_yticks(y, [str(i) for i in c.index], fontsize=8.5)
    ends = np.r_[0.0, c["gross_pnl"].to_numpy(float), c["net_pnl"].to_numpy(float), start]
    lo, hi = float(np.nanmin(ends)), float(np.nanmax(ends))
    pad = 0.06 * max(hi - lo, 1e-9)
    a2.set_xlim(lo - pad, hi + pad)
    a2.xaxis.set_major_formatter(FuncFormatter(_money_tick))
    a2.set_xlabel("Account currency")
    _title(a2, f"Per sleeve: gross PnL, costs stacked from it, net PnL{rest_note}", fontsize=10.5)
    a2.grid(True, axis="x", alpha=0.3)
    fig.legend(*a2.get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize=9,
               frameon=False)
    fig.suptitle(f"{title} (entries and signal exits pay spread / 2 + slippage per unit)",
                 fontsize=12.5)
    return B._save(fig, path)
