"""raybt.analysis against a frozen copy of itself before issue 11 (commit f7a5f7f).

The first half of this file is that copy, docstrings removed and otherwise
verbatim: the SLSQP frontier (one solve per point), ``DataFrame.corr``, trade
statistics by one boolean mask per asset, dense capital-flow frames.  It is
the reference the tests below compare today's functions with, and the
baseline ``scripts/bench_analysis.py`` times.  Tolerances: 1e-12 relative
where only the summation order changed (moments, shares, per-asset
statistics), 1e-6 on the frontier (SLSQP's own accuracy is about 1e-8), and
exact equality for the text summary.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import raybt.analysis as A
from raybt import metrics as _m

# =====================================================================
# frozen reference: raybt/analysis at f7a5f7f
# =====================================================================

# ---- raybt/analysis/attribution.py at f7a5f7f

NON_ASSET_COLUMNS = ("equity", "drawdown")


def asset_columns(equity: pd.DataFrame) -> list[str]:
    return [c for c in equity.columns if c not in NON_ASSET_COLUMNS]


def _assets(equity: pd.DataFrame, assets: Iterable[str] | None) -> list[str]:
    names = asset_columns(equity) if assets is None else list(assets)
    missing = [a for a in names if a not in equity.columns]
    if missing:
        raise KeyError(f"assets not in the equity frame: {missing}")
    if not names:
        raise ValueError("no asset columns")
    return names


def _flows_frame(flows: pd.DataFrame | None, equity: pd.DataFrame,
                 assets: list[str]) -> pd.DataFrame:
    if flows is None:
        return pd.DataFrame(0.0, index=equity.index, columns=assets)
    return (flows.reindex(index=equity.index, columns=assets)
            .fillna(0.0).astype(np.float64))


def capital_flows(multipliers: pd.DataFrame, index: pd.DatetimeIndex,
                  assets: Iterable[str] | None = None) -> pd.DataFrame:
    index = pd.DatetimeIndex(index)
    if assets is None:
        assets = list(pd.unique(multipliers["asset"]))
    assets = list(assets)
    out = np.zeros((len(index), len(assets)))
    if len(multipliers) and len(index):
        m = multipliers[multipliers["capital_adjustment"].astype(float) != 0.0]
        col = {a: j for j, a in enumerate(assets)}
        m = m[m["asset"].isin(col)]
        if len(m):
            starts = pd.DatetimeIndex(pd.to_datetime(m["chunk_start"], utc=index.tz is not None))
            if index.tz is not None and starts.tz is None:
                starts = starts.tz_localize(index.tz)
            pos = index.searchsorted(starts)
            ok = pos < len(index)
            rows = pos[ok]
            cols = np.array([col[a] for a in m["asset"]])[ok]
            np.add.at(out, (rows, cols), m["capital_adjustment"].to_numpy(float)[ok])
    return pd.DataFrame(out, index=index, columns=assets)


def sleeve_returns(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                   flows: pd.DataFrame | None = None) -> pd.DataFrame:
    names = _assets(equity, assets)
    values = equity[names].to_numpy(dtype=np.float64)
    f = _flows_frame(flows, equity, names).to_numpy()
    base = values[:-1] + f[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = values[1:] / base
    # the run's one definition of a sleeve's return (raybt.kernels.portfolio.sleeve_growth_nb): 0 where the
    # base is not positive or the ratio not finite (a ruined sleeve stays at a zero return; this reference
    # kept IEEE's inf/NaN there until the analysis adopted the definition the engine and estimator use)
    r = np.where((base > 0) & np.isfinite(growth), growth, 1.0) - 1.0
    return pd.DataFrame(r, index=equity.index[1:], columns=names)


def portfolio_equity(equity: pd.DataFrame, assets: Iterable[str] | None = None) -> pd.Series:
    if "equity" in equity.columns:
        return equity["equity"].astype(np.float64)
    return equity[_assets(equity, assets)].sum(axis=1).rename("equity")


def pnl_attribution(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                    flows: pd.DataFrame | None = None) -> pd.Series:
    names = _assets(equity, assets)
    sleeves = equity[names].astype(np.float64)
    pnl = sleeves.iloc[-1] - sleeves.iloc[0]
    if flows is not None:
        pnl = pnl - _flows_frame(flows, equity, names).sum(axis=0)
    return pnl.rename("pnl")


def return_contribution(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                        flows: pd.DataFrame | None = None) -> pd.Series:
    names = _assets(equity, assets)
    initial = float(portfolio_equity(equity, names).iloc[0])
    return (pnl_attribution(equity, names, flows) / initial).rename("return_contribution")


def equity_weights(equity: pd.DataFrame, assets: Iterable[str] | None = None) -> pd.Series:
    names = _assets(equity, assets)
    sleeves = equity[names].astype(np.float64)
    total = sleeves.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = sleeves.div(total, axis=0)
    w = share.mean(axis=0, skipna=True)
    return (w / w.sum()).rename("weight")


def as_weight_series(weights, assets: Iterable[str] | None = None) -> pd.Series:
    if isinstance(weights, pd.DataFrame):
        if {"asset", "weight"} <= set(weights.columns):
            weights = weights.set_index("asset")["weight"]
        elif weights.shape[1] == 1:
            weights = weights.iloc[:, 0]
        else:
            raise ValueError("weights frame needs columns 'asset' and 'weight'")
    if isinstance(weights, dict):
        weights = pd.Series(weights, dtype=np.float64)
    if not isinstance(weights, pd.Series):
        arr = np.asarray(weights, dtype=np.float64).ravel()
        if assets is None or len(list(assets)) != len(arr):
            raise ValueError("array weights need a matching list of assets")
        return pd.Series(arr, index=list(assets), name="weight")
    weights = weights.astype(np.float64)
    if assets is not None:
        weights = weights.reindex(list(assets)).fillna(0.0)
    return weights.rename("weight")


def _clean_returns(returns: pd.DataFrame) -> pd.DataFrame:
    return returns.replace([np.inf, -np.inf], np.nan).dropna(how="any")


def risk_attribution(returns: pd.DataFrame, weights=None,
                     equity: pd.DataFrame | None = None) -> pd.Series:
    assets = list(returns.columns)
    if weights is None:
        if equity is not None:
            w = equity_weights(equity, assets)
        else:
            w = pd.Series(1.0 / len(assets), index=assets)
    else:
        w = as_weight_series(weights, assets)
    wv = w.to_numpy(dtype=np.float64)
    cov = np.atleast_2d(_clean_returns(returns).cov(ddof=1).to_numpy())
    marginal = cov @ wv
    total = float(wv @ marginal)
    if not math.isfinite(total) or total <= 0:
        return pd.Series(np.nan, index=assets, name="risk_share")
    return pd.Series(wv * marginal / total, index=assets, name="risk_share")


# ---- raybt/analysis/diversification.py at f7a5f7f

def correlation_matrix(returns: pd.DataFrame) -> pd.DataFrame:
    return _clean_returns(returns).corr(method="pearson")


def diversification_ratio(returns: pd.DataFrame, weights=None) -> float:
    assets = list(returns.columns)
    if weights is None:
        w = np.full(len(assets), 1.0 / len(assets))
    else:
        w = as_weight_series(weights, assets).to_numpy(dtype=np.float64)
    cov = np.atleast_2d(_clean_returns(returns).cov(ddof=1).to_numpy())
    sigma_p2 = float(w @ cov @ w)
    if not math.isfinite(sigma_p2) or sigma_p2 <= 0:
        return math.nan
    if len(assets) == 1:
        return 1.0
    return float(w @ np.sqrt(np.diag(cov))) / math.sqrt(sigma_p2)


def annualised_volatility(r, ppy: float) -> float:
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(ppy))


def annualised_sharpe(r, ppy: float) -> float:
    r = np.asarray(r, dtype=np.float64)
    r = r[np.isfinite(r)]
    if len(r) < 2:
        return math.nan
    sd = np.std(r, ddof=1)
    if sd == 0 or not np.isfinite(sd):
        return math.nan
    return float(np.mean(r) / sd * math.sqrt(ppy))


def diversification_benefits(equity: pd.DataFrame, assets: Iterable[str] | None = None,
                             flows: pd.DataFrame | None = None,
                             weights=None) -> dict:
    names = _assets(equity, assets)
    port = portfolio_equity(equity, names)
    ppy = _m.periods_per_year(port)
    rets = sleeve_returns(equity, names, flows)
    vols = np.array([annualised_volatility(rets[a], ppy) for a in names])
    sharpes = np.array([annualised_sharpe(rets[a], ppy) for a in names])
    avg_vol = float(np.nanmean(vols)) if np.isfinite(vols).any() else math.nan
    avg_sharpe = float(np.nanmean(sharpes)) if np.isfinite(sharpes).any() else math.nan
    port_vol = _m.annual_volatility(port)
    port_sharpe = _m.sharpe_ratio(port)
    w = equity_weights(equity, names) if weights is None else as_weight_series(weights, names)
    return {
        "avg_asset_volatility": avg_vol,
        "portfolio_volatility": float(port_vol),
        "volatility_reduction": (1.0 - port_vol / avg_vol) if avg_vol and math.isfinite(avg_vol) else math.nan,
        "avg_asset_sharpe": avg_sharpe,
        "portfolio_sharpe": float(port_sharpe),
        "sharpe_improvement": float(port_sharpe - avg_sharpe),
        "diversification_ratio": diversification_ratio(rets, w),
        "periods_per_year": float(ppy),
    }


# ---- raybt/analysis/frontier.py at f7a5f7f

def _moments(returns: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, float]:
    r = _clean_returns(returns).to_numpy(dtype=np.float64)
    if r.shape[0] < 2:
        raise ValueError("need at least 2 rows of finite returns")
    sd = r.std(axis=0, ddof=1)
    pos = sd[sd > 0]
    scale = float(pos.mean()) if len(pos) else 1.0
    rs = r / scale
    return rs.mean(axis=0), np.atleast_2d(np.cov(rs, rowvar=False, ddof=1)), scale


def _solve(cov: np.ndarray, mu: np.ndarray, max_weight: float, x0: np.ndarray,
           target: float | None) -> tuple[np.ndarray, bool]:
    n = len(mu)
    cons = [{"type": "eq", "fun": lambda w: np.sum(w) - 1.0,
             "jac": lambda w: np.ones(n)}]
    if target is not None:
        cons.append({"type": "eq", "fun": lambda w: mu @ w - target,
                     "jac": lambda w: mu})

    def run(start):
        res = minimize(lambda w: w @ cov @ w, start, jac=lambda w: 2.0 * cov @ w,
                       method="SLSQP", bounds=[(0.0, max_weight)] * n,
                       constraints=cons, options={"ftol": 1e-15, "maxiter": 1000})
        w = np.clip(res.x, 0.0, max_weight)
        w = w / w.sum()
        feasible = target is None or abs(mu @ w - target) <= 1e-8 * max(1.0, abs(target))
        return w, (bool(res.success) and feasible) or (feasible and np.all(np.isfinite(w))), \
            float(w @ cov @ w)

    w, ok, var = run(x0)
    if not bool(ok):
        w2, ok2, var2 = run(np.full(n, 1.0 / n))
        if ok2 and (not ok or var2 < var):
            w, ok = w2, ok2
    return w, bool(ok)


def _check_max_weight(n: int, max_weight: float) -> None:
    if not 0 < max_weight or max_weight * n < 1 - 1e-12:
        raise ValueError(f"max_weight={max_weight} infeasible for {n} assets "
                         "(need n * max_weight >= 1)")


def min_variance_weights(returns: pd.DataFrame, max_weight: float = 1.0) -> pd.Series:
    mu, cov, _ = _moments(returns)
    n = len(mu)
    _check_max_weight(n, max_weight)
    w, _ = _solve(cov, mu, max_weight, np.full(n, 1.0 / n), None)
    return pd.Series(w, index=list(returns.columns), name="weight")


def _max_mean_weights(mu: np.ndarray, max_weight: float) -> np.ndarray:
    w = np.zeros(len(mu))
    left = 1.0
    for i in np.argsort(-mu, kind="stable"):
        w[i] = min(max_weight, left)
        left -= w[i]
        if left <= 1e-15:
            break
    return w


def efficient_frontier(returns: pd.DataFrame, n_points: int = 40, max_weight: float = 1.0,
                       periods_per_year: float | None = None) -> pd.DataFrame:
    assets = list(returns.columns)
    mu, cov, scale = _moments(returns)
    n = len(mu)
    _check_max_weight(n, max_weight)
    n_points = max(int(n_points), 1)
    w_mv, ok_mv = _solve(cov, mu, max_weight, np.full(n, 1.0 / n), None)
    w_top = _max_mean_weights(mu, max_weight)
    lo, hi = float(mu @ w_mv), float(mu @ w_top)
    targets = np.linspace(lo, hi, n_points) if hi > lo else np.full(n_points, lo)
    rows, flags = [], []
    w = w_mv
    for k, t in enumerate(targets):
        if k == 0:
            w, ok = w_mv, ok_mv
        elif k == n_points - 1 and hi > lo and np.count_nonzero(w_top) == 1:
            w, ok = w_top, True  # a single asset: the only portfolio with that mean
        else:
            w, ok = _solve(cov, mu, max_weight, w, float(t))
        rows.append(w)
        flags.append(ok)
    W = np.array(rows)
    mean = W @ mu * scale
    std = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", W, cov, W), 0.0)) * scale
    if periods_per_year is not None:
        mean = mean * periods_per_year
        std = std * math.sqrt(periods_per_year)
    out = pd.DataFrame(W, columns=assets)
    out.insert(0, "return", mean)
    out.insert(0, "volatility", std)
    out.attrs["converged"] = flags
    return out


def portfolio_point(returns: pd.DataFrame, weights,
                    periods_per_year: float | None = None) -> tuple[float, float]:
    assets = list(returns.columns)
    w = as_weight_series(weights, assets).to_numpy(dtype=np.float64)
    w = w / w.sum()
    rp = _clean_returns(returns).to_numpy(dtype=np.float64) @ w
    mean, std = float(np.mean(rp)), float(np.std(rp, ddof=1))
    if periods_per_year is not None:
        return std * math.sqrt(periods_per_year), mean * periods_per_year
    return std, mean


def frontier_volatility_at(frontier: pd.DataFrame, ret: float) -> float:
    r = frontier["return"].to_numpy()
    v = frontier["volatility"].to_numpy()
    if ret <= r[0]:
        return float(v[0])
    if ret > r[-1]:
        return math.nan
    return float(np.interp(ret, r, v))


# ---- raybt/analysis/summary.py at f7a5f7f

def _trade_stats_by_asset(trades: pd.DataFrame | None, assets: list[str]) -> dict:
    out = {}
    for a in assets:
        sub = None if trades is None or len(trades) == 0 else trades[trades["asset"] == a]
        out[a] = _m.trade_stats(sub)
    return out


def _portfolio_trade_stats(trades: pd.DataFrame | None) -> dict:
    return _m.trade_stats(trades)


def _wealth_drawdown(r: pd.Series) -> float:
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(portfolio_summary_text(equity, trades, metrics, weights, **kwargs),
                    encoding="utf-8")
    return path


# ---- end of the frozen reference


# =====================================================================
# scenarios
# =====================================================================

ASSETS = ["EURUSD", "BTCUSD", "GOLD", "SPX"]


def scenario(kind: str = "plain", seed: int = 0, n_bars: int = 700) -> dict:
    """A run's loaded files: sleeves that sit flat part of the time (returns
    exactly 0), trades, target weights, metrics; ``kind`` adds rebalancing
    flows (``flows``), a sleeve that never trades (``flat``), a sleeve whose
    equity reaches 0 (``ruin``: non-finite returns after it) or no trades table
    (``notrades``)."""
    rng = np.random.default_rng(seed)
    n = len(ASSETS)
    on = rng.random((n_bars - 1, n)) < 0.6
    r = np.where(on, rng.normal(np.linspace(-2e-4, 4e-4, n), np.linspace(2e-3, 5e-3, n),
                                (n_bars - 1, n)), 0.0)
    r[:, 1] += 0.5 * r[:, 0]  # some correlation
    idx = pd.date_range("2024-01-01", periods=n_bars, freq="5min", tz="UTC", name="timestamp")
    flow = np.zeros((n_bars, n))
    mult = None
    if kind == "flows":
        rows = []
        for k in range(50, n_bars, 150):
            amounts = rng.normal(0, 50, n)
            amounts -= amounts.mean()
            flow[k] = amounts
            rows += [{"chunk_start": str(idx[k]), "asset": a, "capital_adjustment": float(x),
                      "reason": "rebalance"} for a, x in zip(ASSETS, amounts)]
        rows += [{"chunk_start": str(idx[0]), "asset": a, "capital_adjustment": 0.0,
                  "reason": ""} for a in ASSETS]
        mult = pd.DataFrame(rows)
    vals = np.empty((n_bars, n))
    vals[0] = [1000.0 * (i + 1) for i in range(n)]
    for t in range(1, n_bars):
        vals[t] = (vals[t - 1] + flow[t]) * (1 + r[t - 1])
    if kind == "flat":
        vals[:, 2] = 2500.0
    if kind == "ruin":
        vals[400:, 3] = 0.0
    eq = pd.DataFrame(vals, index=idx, columns=ASSETS)
    total = eq.sum(axis=1)
    eq.insert(0, "drawdown", _m.drawdown_series(total))
    eq.insert(0, "equity", total)
    trades = None
    if kind != "notrades":
        per = [7, 0, 12, 5]  # BTCUSD never trades
        names = [a for a, k in zip(ASSETS, per) for _ in range(k)] + ["OTHER"] * 3
        m = len(names)
        entry = idx[rng.integers(0, n_bars - 10, m)]
        trades = pd.DataFrame({
            "asset": names, "side": rng.choice(["long", "short"], m), "units": 1.0,
            "entry_time": entry, "entry_price": 1.0, "exit_time": entry + pd.Timedelta(minutes=25),
            "exit_price": 1.0, "exit_reason": rng.choice(["signal", "stop_loss", "take_profit"], m),
            "pnl": np.round(rng.normal(0, 5, m), 1), "commission": 0.1})
        trades.loc[0, "pnl"] = 0.0  # not a win
    weights = pd.Series([0.4, 0.3, 0.2, 0.1], index=ASSETS)
    metrics = {"portfolio": _m.json_safe(_m.compute_metrics(eq["equity"], trades)),
               "assets": {a: {"n_trades": 3, "win_rate": 0.5} for a in ASSETS}}
    return {"equity": eq, "trades": trades, "weights": weights, "metrics": metrics,
            "multipliers": mult}


KINDS = ["plain", "flows", "flat", "ruin", "notrades"]


def assert_not_above(new: pd.DataFrame, old: pd.DataFrame) -> None:
    """At every return both frontiers reach, the new volatility is at most the
    old one (interpolated between its rows) plus 1e-9 relative."""
    inside = (new["return"] >= old["return"].iloc[0]) & (new["return"] <= old["return"].iloc[-1])
    old_vol = np.interp(new["return"][inside], old["return"], old["volatility"])
    assert (new["volatility"][inside] <= old_vol * (1 + 1e-9) + 1e-18).all()


def assert_close_tree(new, old, rtol=1e-12, atol=1e-18, path="result"):
    """Same structure; floats equal to ``rtol`` (or ``atol``), NaN where NaN."""
    if isinstance(old, dict):
        assert set(new) == set(old), (path, set(new) ^ set(old))
        for k in old:
            assert_close_tree(new[k], old[k], rtol, atol, f"{path}[{k!r}]")
    elif isinstance(old, (list, tuple)):
        assert len(new) == len(old), path
        for i, (a, b) in enumerate(zip(new, old)):
            assert_close_tree(a, b, rtol, atol, f"{path}[{i}]")
    elif old is None or isinstance(old, (bool, np.bool_, str)):
        assert new == old, (path, new, old)
    elif isinstance(old, (int, np.integer)) and not isinstance(new, float):
        assert new == old, (path, new, old)
    else:
        a, b = float(new), float(old)
        if math.isnan(b):
            assert math.isnan(a), (path, a, b)
        else:
            assert a == pytest.approx(b, rel=rtol, abs=atol), (path, a, b)


# =====================================================================
# analyse_run, asset_table, the summary text: as before
# =====================================================================

def _both(kind, seed=0, **kw):
    s = scenario(kind, seed)
    args = (s["equity"], s["trades"], s["weights"], s["metrics"])
    # the reference predates the tear sheet (issue 15): compare what both compute
    new = A.analyse_run(*args, multipliers=s["multipliers"], tearsheet=False, **kw)
    old = analyse_run(*args, multipliers=s["multipliers"], **kw)
    return s, new, old


@pytest.mark.parametrize("kind", KINDS)
def test_analyse_run_matches_reference(kind):
    s, new, old = _both(kind, seed=3, n_frontier=12)
    skip = {"frames", "frontier", "asset_points"}
    assert set(new) - skip - {"frames"} == set(old) - {"frames", "frontier"}
    assert_close_tree({k: v for k, v in new.items() if k not in skip},
                      {k: v for k, v in old.items() if k not in skip})
    # frames
    pd.testing.assert_frame_equal(new["frames"]["asset_table"], old["frames"]["asset_table"],
                                  check_exact=False, rtol=1e-12, atol=1e-18)
    pd.testing.assert_frame_equal(new["frames"]["returns"], old["frames"]["returns"], check_exact=True)
    pd.testing.assert_frame_equal(new["frames"]["correlation"], old["frames"]["correlation"],
                                  check_exact=False, rtol=1e-12, atol=1e-14)
    # the frontier: same targets and volatilities to SLSQP's accuracy, never above it
    fn, fo = new["frames"]["frontier"], old["frames"]["frontier"]
    scale = fo["return"].abs().max()
    np.testing.assert_allclose(fn["return"], fo["return"], rtol=1e-6, atol=1e-9 * scale)
    np.testing.assert_allclose(fn["volatility"], fo["volatility"], rtol=1e-6,
                               atol=1e-9 * fo["volatility"].max())
    assert_not_above(fn, fo)
    np.testing.assert_allclose(fn[ASSETS].to_numpy(), fo[ASSETS].to_numpy(), atol=1e-6)
    assert new["frontier"]["volatility"] == fn["volatility"].tolist()
    # the sleeves on the frontier's axes, as raybt.plots computed them
    clean = old["frames"]["returns"].replace([np.inf, -np.inf], np.nan).dropna()
    ppy = old["periods_per_year"]
    for a in ASSETS:
        vol, ret = new["asset_points"][a]
        assert vol == pytest.approx(clean[a].std(ddof=1) * math.sqrt(ppy), rel=1e-12)
        assert ret == pytest.approx(clean[a].mean() * ppy, rel=1e-12, abs=1e-18)


@pytest.mark.parametrize("kind", KINDS)
def test_summary_text_is_unchanged(kind):
    s = scenario(kind, seed=5)
    args = (s["equity"], s["trades"], s["metrics"], s["weights"])
    new = A.portfolio_summary_text(*args, multipliers=s["multipliers"], title="T")
    old = portfolio_summary_text(*args, multipliers=s["multipliers"], title="T")
    assert new == old


@pytest.mark.parametrize("kind", KINDS)
def test_asset_table_and_benefits_match_reference(kind):
    s = scenario(kind, seed=7)
    eq, trades, mult = s["equity"], s["trades"], s["multipliers"]
    flows = capital_flows(mult, eq.index, ASSETS) if mult is not None else None
    pd.testing.assert_frame_equal(A.asset_table(eq, trades, s["weights"], s["metrics"], flows),
                                  asset_table(eq, trades, s["weights"], s["metrics"], flows),
                                  check_exact=False, rtol=1e-12, atol=1e-18)
    # a subset of the assets, trades of other assets ignored
    sub = ["GOLD", "EURUSD"]
    pd.testing.assert_frame_equal(A.asset_table(eq, trades, None, None, flows, assets=sub),
                                  asset_table(eq, trades, None, None, flows, assets=sub),
                                  check_exact=False, rtol=1e-12, atol=1e-18)
    assert_close_tree(A.diversification_benefits(eq, ASSETS, flows),
                      diversification_benefits(eq, ASSETS, flows))
    assert_close_tree(A.diversification_benefits(eq, sub, flows, weights=[0.3, 0.7]),
                      diversification_benefits(eq, sub, flows, weights=[0.3, 0.7]))


@pytest.mark.parametrize("kind", KINDS)
def test_public_functions_match_reference(kind):
    s = scenario(kind, seed=11)
    eq, mult = s["equity"], s["multipliers"]
    flows = capital_flows(mult, eq.index, ASSETS) if mult is not None else None
    if flows is not None:
        pd.testing.assert_frame_equal(A.capital_flows(mult, eq.index, ASSETS), flows, check_exact=True)
        pd.testing.assert_frame_equal(A.capital_flows(mult, eq.index), capital_flows(mult, eq.index),
                                      check_exact=True)
    rn, ro = A.sleeve_returns(eq, ASSETS, flows), sleeve_returns(eq, ASSETS, flows)
    pd.testing.assert_frame_equal(rn, ro, check_exact=True)
    pd.testing.assert_series_equal(A.pnl_attribution(eq, ASSETS, flows), pnl_attribution(eq, ASSETS, flows),
                                   check_exact=False, rtol=1e-12)
    pd.testing.assert_series_equal(A.return_contribution(eq, None, flows),
                                   return_contribution(eq, None, flows), check_exact=False, rtol=1e-12)
    pd.testing.assert_series_equal(A.equity_weights(eq, ASSETS), equity_weights(eq, ASSETS),
                                   check_exact=False, rtol=1e-12)
    pd.testing.assert_series_equal(A.equity_weights(eq, ["SPX", "GOLD"]), equity_weights(eq, ["SPX", "GOLD"]),
                                   check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(A.correlation_matrix(ro), correlation_matrix(ro),
                                  check_exact=False, rtol=1e-12, atol=1e-14)
    for w in (None, s["weights"], [1.0, 2.0, 0.0, 1.0]):
        pd.testing.assert_series_equal(A.risk_attribution(ro, w), risk_attribution(ro, w),
                                       check_exact=False, rtol=1e-10, atol=1e-15)
        assert_close_tree(A.diversification_ratio(ro, w), diversification_ratio(ro, w))
        if w is not None:
            assert_close_tree(A.portfolio_point(ro, w, 1000.0), portfolio_point(ro, w, 1000.0))
    pd.testing.assert_series_equal(A.risk_attribution(ro, equity=eq), risk_attribution(ro, equity=eq),
                                   check_exact=False, rtol=1e-10, atol=1e-15)


def test_json_is_unchanged():
    s, new, old = _both("flat", seed=2, n_frontier=6)
    a, b = A.analysis_to_json(new), analysis_to_json(old)
    a.pop("asset_points")
    for k in ("frontier",):
        a.pop(k), b.pop(k)
    assert_close_tree(a, b)
    # a constant sleeve's correlation is NaN in the frame and null in the JSON
    row = new["assets"].index("GOLD")
    assert all(v is None for v in a["correlation"]["matrix"][row])
    assert json.dumps(A.analysis_to_json(new), allow_nan=False)


# =====================================================================
# the frontier against SLSQP
# =====================================================================

def _random_returns(seed: int, n: int, T: int = 800, kind: str = "plain") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, n))
    cov = (a @ a.T / n + 0.5 * np.eye(n)) * 1e-6
    mu = rng.normal(1e-4, 2e-4, n)
    df = pd.DataFrame(rng.multivariate_normal(mu, cov, size=T), columns=[f"S{i}" for i in range(n)])
    if kind == "flat":   # a sleeve that never trades
        df["S0"] = 0.0
    elif kind == "dup":  # the same sleeve twice
        df["S1"] = df["S0"]
    elif kind == "tie":  # two sleeves with the same mean (up to rounding)
        for c in ("S0", "S1"):
            df[c] = df[c] - df[c].mean() + 3e-4
    return df


SLSQP_CASES = [(seed, n, u) for seed in range(4) for n in (2, 3, 5, 8, 13) for u in (1.0, 0.5, 0.3)
               if n * u >= 1]


@pytest.mark.parametrize("seed,n,u", SLSQP_CASES)
def test_frontier_agrees_with_slsqp(seed, n, u):
    r = _random_returns(seed, n)
    new = A.efficient_frontier(r, n_points=15, max_weight=u, periods_per_year=1000.0)
    old = efficient_frontier(r, n_points=15, max_weight=u, periods_per_year=1000.0)
    assert all(old.attrs["converged"])
    # SLSQP stops within ~1e-8 of the optimum: compare on the scale of each axis
    np.testing.assert_allclose(new["return"], old["return"], rtol=1e-7,
                               atol=1e-7 * old["return"].abs().max())
    np.testing.assert_allclose(new["volatility"], old["volatility"], rtol=1e-7)
    assert_not_above(new, old)
    np.testing.assert_allclose(new.iloc[:, 2:].to_numpy(), old.iloc[:, 2:].to_numpy(), atol=1e-6)
    np.testing.assert_allclose(A.min_variance_weights(r, u).to_numpy(),
                               min_variance_weights(r, u).to_numpy(), atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "dup", "tie"])
@pytest.mark.parametrize("seed,n,u", [(s, n, u) for s in range(3) for n in (2, 3, 6) for u in (1.0, 0.5)])
def test_degenerate_frontier_is_feasible_and_never_above_slsqp(kind, seed, n, u):
    r = _random_returns(seed, n, kind=kind)
    new = A.efficient_frontier(r, n_points=12, max_weight=u)
    old = efficient_frontier(r, n_points=12, max_weight=u)
    W = new.iloc[:, 2:].to_numpy()
    assert (W >= 0).all() and (W <= u).all()
    np.testing.assert_allclose(W.sum(axis=1), 1.0, atol=1e-12)
    assert (np.diff(new["volatility"]) >= -1e-12 * new["volatility"].max()).all()
    assert_not_above(new, old)
    assert new["return"].iloc[-1] == pytest.approx(old["return"].iloc[-1], rel=1e-12)
    if kind == "dup":  # duplicates share their weight equally
        np.testing.assert_allclose(W[:, 0], W[:, 1], atol=1e-15)
    if kind != "tie":  # a unique minimum variance (tie: SLSQP may stop at the wrong end of a face)
        assert new["volatility"].iloc[0] == pytest.approx(old["volatility"].iloc[0], rel=1e-6,
                                                          abs=1e-7 * old["volatility"].max())
