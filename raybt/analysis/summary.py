"""Bundle a run's analysis (:func:`analyse_run`) and render it as plain text.

Units in the returned dicts are those of :mod:`raybt.metrics`: returns,
weights, shares, win rates and drawdowns are *fractions* (drawdowns
positive: 0.25 = 25 % below the peak), PnL in account currency, volatility
and Sharpe annualised by ``sqrt(periods_per_year)`` with risk-free 0.  Only
the text report shows percentages (columns marked ``%``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from raybt import metrics as _m
from raybt.analysis.attribution import (
    as_weight_series,
    asset_columns,
    capital_flows,
    equity_weights,
    pnl_attribution,
    portfolio_equity,
    return_contribution,
    risk_attribution,
    sleeve_returns,
)
from raybt.analysis.diversification import (
    annualised_sharpe,
    annualised_volatility,
    correlation_matrix,
    diversification_benefits,
)
from raybt.analysis.frontier import efficient_frontier, portfolio_point

__all__ = ["analyse_run", "analysis_to_json", "asset_table",
           "portfolio_summary_text", "write_portfolio_summary"]


def _trade_stats_by_asset(trades: pd.DataFrame | None, assets: list[str]) -> dict:
    out = {}
    for a in assets:
        sub = None if trades is None or len(trades) == 0 else trades[trades["asset"] == a]
        out[a] = _m.trade_stats(sub)
    return out


def _portfolio_trade_stats(trades: pd.DataFrame | None) -> dict:
    return _m.trade_stats(trades)


def _wealth_drawdown(r: pd.Series) -> float:
    """Max drawdown (positive fraction) of the wealth index ``cumprod(1 + r)``
    started at 1 (the first bar counts as a peak)."""
    r = r.replace([np.inf, -np.inf], np.nan).fillna(0.0).to_numpy()
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    peak = np.maximum.accumulate(wealth)
    return float(np.max(1.0 - wealth / peak))


def _time_weighted_return(r: pd.Series) -> float:
    r = r.replace([np.inf, -np.inf], np.nan).dropna().to_numpy()
    return float(np.prod(1.0 + r) - 1.0)


def asset_table(equity: pd.DataFrame, trades: pd.DataFrame | None = None, weights=None,
                metrics: dict | None = None, flows: pd.DataFrame | None = None,
                assets: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per asset (index = asset name). Columns:

    ``weight`` (the given target weight, else the average equity share),
    ``avg_weight`` (average share of portfolio equity), ``pnl`` (currency,
    flows excluded), ``return`` (the sleeve's total return: last / first - 1
    without flows, the time-weighted ``prod(1 + r) - 1`` of the flow-adjusted
    returns with them),
    ``contribution`` (pnl / initial portfolio equity), ``win_rate``,
    ``sharpe`` (annualised, on the sleeve's returns), ``max_drawdown``
    (positive fraction), ``annual_volatility``, ``n_trades``, ``risk_share``
    (share of portfolio variance at the average weights).

    Trade stats come from ``trades`` when given, else ``metrics["assets"]``.
    Without ``flows`` Sharpe and max drawdown equal :func:`raybt.metrics.
    compute_metrics` of the sleeve equity; with flows they are computed on the
    flow-adjusted (time-weighted) returns.
    """
    names = asset_columns(equity) if assets is None else list(assets)
    port = portfolio_equity(equity, names)
    ppy = _m.periods_per_year(port)
    rets = sleeve_returns(equity, names, flows)
    avg_w = equity_weights(equity, names)
    w = avg_w if weights is None else as_weight_series(weights, names)
    pnl = pnl_attribution(equity, names, flows)
    contrib = return_contribution(equity, names, flows)
    risk = risk_attribution(rets, avg_w)
    tstats = _trade_stats_by_asset(trades, names) if trades is not None else None
    asset_metrics = (metrics or {}).get("assets", {}) if metrics else {}
    rows = []
    for a in names:
        start = float(equity[a].iloc[0])
        if flows is None:
            mdd = _m.max_drawdown(equity[a])
        else:
            mdd = _wealth_drawdown(rets[a])
        if tstats is not None:
            n_trades, win = tstats[a]["n_trades"], tstats[a]["win_rate"]
        else:
            am = asset_metrics.get(a, {})
            n_trades = am.get("n_trades", 0) or 0
            win = am.get("win_rate")
            win = math.nan if win is None else win
        rows.append({
            "asset": a, "weight": float(w[a]), "avg_weight": float(avg_w[a]),
            "pnl": float(pnl[a]),
            "return": _time_weighted_return(rets[a]) if flows is not None
            else (float(equity[a].iloc[-1] / start - 1.0) if start else math.nan),
            "contribution": float(contrib[a]), "win_rate": float(win),
            "sharpe": annualised_sharpe(rets[a], ppy), "max_drawdown": mdd,
            "annual_volatility": annualised_volatility(rets[a], ppy),
            "n_trades": int(n_trades), "risk_share": float(risk[a]),
        })
    return pd.DataFrame(rows).set_index("asset")


def analyse_run(equity: pd.DataFrame, trades: pd.DataFrame | None = None, weights=None,
                metrics: dict | None = None, *, flows: pd.DataFrame | None = None,
                multipliers: pd.DataFrame | None = None, n_frontier: int = 40,
                max_weight: float = 1.0, include_frontier: bool = True) -> dict:
    """Everything in :mod:`raybt.analysis` for one run, for report writers.

    Arguments are the loaded run files: the ``portfolio_equity`` frame,
    ``trades`` (optional), ``weights`` (Series asset -> weight, or the
    ``weights.csv`` frame; optional) and ``metrics`` (``metrics.json`` as a
    dict; its ``"portfolio"`` part is used for the totals when given, else
    they are computed).  Capital flows: pass ``flows`` (see
    :func:`capital_flows`) or the ``multipliers.csv`` frame as
    ``multipliers``; without either, sleeve equity is taken at face value.

    Returns a dict; every key except ``"frames"`` holds plain floats, ints,
    strings, lists or dicts of them (NaN possible; :func:`analysis_to_json`
    makes it strict JSON):

    * ``assets``, ``periods_per_year``, ``flows_adjusted`` (bool);
    * ``portfolio``: totals (``initial_equity``, ``final_equity``, ``pnl``,
      ``total_return``, ``cagr``, ``annual_volatility``, ``sharpe``,
      ``sortino``, ``max_drawdown``, ``calmar``, ``n_trades``, ``win_rate``,
      ``profit_factor``, ``diversification_ratio``);
    * ``per_asset``: ``{asset: row of`` :func:`asset_table` ``}``;
    * ``pnl_attribution``, ``return_contribution``, ``risk_attribution``,
      ``average_weights``, ``weights``: ``{asset: float}``;
    * ``correlation``: ``{"assets": [...], "matrix": [[...]]}``;
    * ``diversification``: :func:`diversification_benefits`;
    * ``points``: ``{name: [volatility, return]}`` annualised, for
      ``portfolio`` (the actual equity curve), ``average_weights``,
      ``weights`` and ``equal_weight`` (fixed-weight mixes);
    * ``frontier``: ``{"volatility": [...], "return": [...]}`` (empty lists
      when it cannot be built);
    * ``frames``: DataFrames ``returns`` (sleeve returns), ``correlation``,
      ``frontier`` (None when it cannot be built or ``include_frontier`` is
      False), ``asset_table``.
    """
    assets = asset_columns(equity)
    if flows is None and multipliers is not None:
        flows = capital_flows(multipliers, equity.index, assets)
    port = portfolio_equity(equity, assets)
    ppy = _m.periods_per_year(port)
    rets = sleeve_returns(equity, assets, flows)
    avg_w = equity_weights(equity, assets)
    w = avg_w if weights is None else as_weight_series(weights, assets)
    table = asset_table(equity, trades, weights, metrics, flows, assets)
    corr = correlation_matrix(rets)
    benefits = diversification_benefits(equity, assets, flows)

    if metrics and metrics.get("portfolio"):
        pm = dict(metrics["portfolio"])
    else:
        pm = _m.compute_metrics(port, trades)
    if trades is not None:
        pm.update(_portfolio_trade_stats(trades))
    keys = ["initial_equity", "final_equity", "pnl", "total_return", "cagr",
            "annual_volatility", "sharpe", "sortino", "max_drawdown", "calmar",
            "n_trades", "win_rate", "profit_factor"]
    portfolio = {k: _num(pm.get(k)) for k in keys}
    portfolio["n_trades"] = int(pm.get("n_trades") or 0)
    portfolio["diversification_ratio"] = benefits["diversification_ratio"]

    r_port = _m.returns_from_equity(port)
    points = {"portfolio": [annualised_volatility(r_port, ppy), float(np.mean(r_port) * ppy)]}
    points["average_weights"] = list(portfolio_point(rets, avg_w, ppy))
    points["weights"] = list(portfolio_point(rets, w, ppy))
    points["equal_weight"] = list(portfolio_point(rets, pd.Series(1.0, index=assets), ppy))
    frontier = None
    try:
        if include_frontier:
            frontier = efficient_frontier(rets, n_points=n_frontier, max_weight=max_weight,
                                          periods_per_year=ppy)
    except ValueError:
        frontier = None

    return {
        "assets": assets,
        "periods_per_year": float(ppy),
        "flows_adjusted": flows is not None,
        "portfolio": portfolio,
        "per_asset": {a: {k: _num(v) for k, v in row.items()} for a, row in table.iterrows()},
        "pnl_attribution": _floats(table["pnl"]),
        "return_contribution": _floats(table["contribution"]),
        "risk_attribution": _floats(table["risk_share"]),
        "average_weights": _floats(avg_w),
        "weights": _floats(w),
        "correlation": {"assets": list(corr.columns),
                        "matrix": corr.to_numpy().tolist()},
        "diversification": benefits,
        "points": points,
        "frontier": ({"volatility": frontier["volatility"].tolist(),
                      "return": frontier["return"].tolist()} if frontier is not None
                     else {"volatility": [], "return": []}),
        "frames": {"returns": rets, "correlation": corr, "frontier": frontier,
                   "asset_table": table},
    }


def _num(v):
    if v is None:
        return math.nan
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _floats(s: pd.Series) -> dict:
    return {str(k): float(v) for k, v in s.items()}


def analysis_to_json(result: dict) -> dict:
    """:func:`analyse_run`'s dict without ``frames``, NaN/inf -> None (strict JSON)."""
    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items() if k != "frames"}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (bool, np.bool_)):
            return bool(x)
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return float(x) if math.isfinite(x) else None
        if isinstance(x, pd.Timestamp):
            return x.isoformat()
        return x
    out = clean(result)
    json.dumps(out)  # raises if anything is left that JSON cannot hold
    return out


# ---------------------------------------------------------------- text report

def _fmt(v, spec: str, width: int) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return f"{'n/a':>{width}}"
    if spec.endswith("d"):
        v = int(round(v))
    return f"{format(v, spec):>{width}}"


def _pct(v) -> float:
    return math.nan if v is None or not math.isfinite(v) else 100.0 * v


def portfolio_summary_text(equity: pd.DataFrame, trades: pd.DataFrame | None = None,
                           metrics: dict | None = None, weights=None, *,
                           flows: pd.DataFrame | None = None,
                           multipliers: pd.DataFrame | None = None,
                           analysis: dict | None = None,
                           title: str = "Portfolio summary") -> str:
    """A plain-text report: header, per-asset table and portfolio totals.

    Per-asset columns: asset, weight %, PnL (currency), return % (the
    sleeve's total return, time-weighted when flows are given; see
    :func:`asset_table`), contribution % (PnL / initial portfolio
    equity), win rate %, Sharpe (annualised), max DD % (positive), trades.
    A ``TOTAL`` row closes the table; a ``Portfolio totals`` block follows
    with PnL, return, CAGR, Sharpe, max drawdown, trades, win rate and the
    diversification ratio.  Columns are fixed width and right-aligned (the
    asset column left-aligned); undefined values print as ``n/a``.
    """
    assets = asset_columns(equity)
    if analysis is not None:  # already computed for these files (the frontier, if any, is not used here)
        res = analysis
    else:
        if flows is None and multipliers is not None:
            flows = capital_flows(multipliers, equity.index, assets)
        res = analyse_run(equity, trades, weights, metrics, flows=flows, include_frontier=False)
    table: pd.DataFrame = res["frames"]["asset_table"]
    p = res["portfolio"]
    port = portfolio_equity(equity, assets)
    years = _m.years_spanned(port)

    name_w = max(5, max(len(a) for a in assets))
    cols = [("Weight %", 9, "weight", ".2f", True), ("PnL", 15, "pnl", ",.2f", False),
            ("Return %", 9, "return", ".2f", True), ("Contrib %", 10, "contribution", ".2f", True),
            ("Win %", 7, "win_rate", ".1f", True), ("Sharpe", 8, "sharpe", ".2f", False),
            ("Max DD %", 9, "max_drawdown", ".2f", True), ("Trades", 8, "n_trades", "d", False)]
    header = f"{'Asset':<{name_w}}" + "".join(f" {h:>{w}}" for h, w, *_ in cols)
    rule = "-" * name_w + "".join(" " + "-" * w for _, w, *_ in cols)

    def line(label, values: dict) -> str:
        out = f"{label:<{name_w}}"
        for _, width, key, spec, pct in cols:
            v = values.get(key)
            if pct and v is not None:
                v = _pct(float(v))
            out += " " + _fmt(v, spec, width)
        return out

    start, end = port.index[0], port.index[-1]
    lines = [title, "=" * len(title),
             f"Period            : {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M %Z}"
             f" ({len(port)} bars, {years:.2f} years)" if len(port) > 1 else "Period: n/a",
             f"Assets            : {len(assets)}",
             f"Initial equity    : {p['initial_equity']:,.2f}",
             f"Final equity      : {p['final_equity']:,.2f}",
             f"Capital flows     : {'excluded from asset PnL' if res['flows_adjusted'] else 'not adjusted'}",
             "", header, rule]
    for a, row in table.iterrows():
        lines.append(line(a, row.to_dict()))
    lines.append(rule)
    lines.append(line("TOTAL", {
        "weight": float(table["weight"].sum()), "pnl": p["pnl"],
        "return": p["total_return"], "contribution": float(table["contribution"].sum()),
        "win_rate": p["win_rate"], "sharpe": p["sharpe"],
        "max_drawdown": p["max_drawdown"], "n_trades": p["n_trades"]}))
    lines += ["", "Portfolio totals", "----------------"]
    totals = [("PnL", p["pnl"], ",.2f", ""), ("Total return", _pct(p["total_return"]), ".2f", " %"),
              ("CAGR", _pct(p["cagr"]), ".2f", " %"), ("Sharpe", p["sharpe"], ".3f", ""),
              ("Max drawdown", _pct(p["max_drawdown"]), ".2f", " %"),
              ("Trades", p["n_trades"], "d", ""), ("Win rate", _pct(p["win_rate"]), ".2f", " %"),
              ("Diversification ratio", p["diversification_ratio"], ".3f", "")]
    for label, v, spec, unit in totals:
        shown = _fmt(v, spec, 16)
        lines.append(f"  {label:<22}{shown}{unit if shown.strip() != 'n/a' else ''}")
    return "\n".join(lines) + "\n"


def write_portfolio_summary(path, equity: pd.DataFrame, trades: pd.DataFrame | None = None,
                            metrics: dict | None = None, weights=None, **kwargs) -> Path:
    """Write :func:`portfolio_summary_text` to ``path`` (UTF-8); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(portfolio_summary_text(equity, trades, metrics, weights, **kwargs),
                    encoding="utf-8")
    return path
