"""Trade analysis and trading costs from the trades table (pure functions, numpy).

Inputs are the run's ``trades`` table (the spec's columns: ``asset, side,
units, entry_time, entry_price, exit_time, exit_price, exit_reason, pnl,
commission``; categoricals or text) and each asset's parameters
(``run_info.json`` ``asset_params``: ``contract_size``, ``spread``,
``slippage``, ``leverage``, ...).  Every statistic is one grouped pass
(``np.bincount`` over integer codes): no loop per trade.

Costs, per the spec (``mean_reversion.md``, Prices and Money): entries and
signal exits fill ``spread / 2 + slippage`` price units worse than the open,
so each such fill costs ``(spread / 2 + slippage) * units * contract_size``;
SL/TP/gap/end/stop-out/breaker exits pay neither.  ``entry_price`` and
``exit_price`` are the fills, and ``pnl`` is net of both commissions, so

    gross PnL = pnl + commission + spread cost + slippage cost

and the costs sum to gross minus net PnL exactly (up to float rounding).
Max-hold exits are recorded as ``signal`` (they fill like one).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["EXIT_REASONS", "REASON_LABELS", "SIDES", "asset_param_arrays", "category_codes",
           "holding_hours", "trade_analysis", "trade_costs"]

#: exit reasons in display order (the spec's six)
EXIT_REASONS = ["signal", "sl", "tp", "end", "stopout", "breaker"]
REASON_LABELS = {"signal": "signal (z exit or max hold)", "sl": "stop-loss", "tp": "take-profit",
                 "end": "end of data", "stopout": "stop-out", "breaker": "breaker flatten"}
SIDES = ["long", "short"]
_QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]


def category_codes(column: pd.Series, categories: list) -> np.ndarray:
    """Each row's position in ``categories`` (-1 when absent), the column
    factorised once (categorical codes or a dictionary of its distinct
    values), only the distinct values looked up."""
    codes, uniques = pd.factorize(column)
    lookup = np.append(pd.Index(categories).get_indexer([str(u) for u in uniques]), -1)
    return lookup[codes]


def _ns(column) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(column, utc=True)).as_unit("ns").asi8


def holding_hours(trades: pd.DataFrame) -> np.ndarray:
    """Hours from each trade's entry bar to its exit bar."""
    return (_ns(trades["exit_time"]) - _ns(trades["entry_time"])) / 3.6e12


def _group_table(codes: np.ndarray, labels: list, pnl: np.ndarray, hold: np.ndarray) -> pd.DataFrame:
    """count, wins, win_rate, avg_pnl, total_pnl, avg_win, avg_loss, profit_factor,
    avg_holding_hours per group (rows with code -1 are left out)."""
    k = len(labels)
    ok = codes >= 0
    c, p, h = codes[ok], pnl[ok], hold[ok]
    count = np.bincount(c, minlength=k).astype(np.int64)
    win = p > 0
    wins = np.bincount(c, weights=win, minlength=k)
    total = np.bincount(c, weights=p, minlength=k)
    gain = np.bincount(c, weights=np.where(win, p, 0.0), minlength=k)
    loss = -np.bincount(c, weights=np.where(p < 0, p, 0.0), minlength=k)
    n_loss = np.bincount(c, weights=p < 0, minlength=k)
    hours = np.bincount(c, weights=h, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame({
            "count": count, "wins": wins.astype(np.int64),
            "win_rate": np.where(count > 0, wins / count, math.nan),
            "avg_pnl": np.where(count > 0, total / count, math.nan), "total_pnl": total,
            "avg_win": np.where(wins > 0, gain / wins, math.nan),
            "avg_loss": np.where(n_loss > 0, -loss / n_loss, math.nan),
            "profit_factor": np.where(loss > 0, gain / loss, np.where(gain > 0, math.inf, math.nan)),
            "avg_holding_hours": np.where(count > 0, hours / count, math.nan),
        }, index=pd.Index(labels, name="group"))
    return table


def _distribution(x: np.ndarray) -> dict:
    x = x[np.isfinite(x)]
    if not len(x):
        return {"n": 0}
    q = np.quantile(x, _QUANTILES)
    out = {"n": int(len(x)), "mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1
           else math.nan, "min": float(x.min()), "max": float(x.max())}
    out.update({f"q{int(round(100 * a)):02d}": float(v) for a, v in zip(_QUANTILES, q)})
    out["median"] = out["q50"]
    return out


def trade_analysis(trades: pd.DataFrame | None) -> dict:
    """Statistics of all trades: ``n_trades``; ``pnl`` and ``holding_hours``
    distributions (n, mean, std, min, max, quantiles q01..q99, median);
    ``by_exit_reason`` (the six reasons, zero rows kept) and ``by_side``
    (long, short) as DataFrames of :func:`_group_table`'s columns; ``expectancy``
    (mean PnL), ``payoff_ratio`` (average win / |average loss|)."""
    if trades is None or len(trades) == 0:
        empty = _group_table(np.zeros(0, np.int64), EXIT_REASONS, np.zeros(0), np.zeros(0))
        return {"n_trades": 0, "pnl": {"n": 0}, "holding_hours": {"n": 0},
                "by_exit_reason": empty,
                "by_side": _group_table(np.zeros(0, np.int64), SIDES, np.zeros(0), np.zeros(0))}
    pnl = trades["pnl"].to_numpy(dtype=np.float64)
    hold = holding_hours(trades)
    reason = category_codes(trades["exit_reason"], EXIT_REASONS)
    side = category_codes(trades["side"], SIDES)
    total = _group_table(np.zeros(len(pnl), np.int64), ["all"], pnl, hold).iloc[0]
    return {
        "n_trades": int(len(pnl)), "pnl": _distribution(pnl), "holding_hours": _distribution(hold),
        "by_exit_reason": _group_table(reason, EXIT_REASONS, pnl, hold),
        "by_side": _group_table(side, SIDES, pnl, hold),
        "expectancy": float(total["avg_pnl"]),
        "payoff_ratio": float(total["avg_win"] / -total["avg_loss"])
        if total["avg_loss"] < 0 else math.nan,
    }


def asset_param_arrays(asset_params: dict | None, names: list, keys: tuple) -> dict | None:
    """``{key: array over names}`` from ``asset_params`` (NaN for a missing
    asset or key); None without ``asset_params``."""
    if not asset_params:
        return None
    out = {}
    for key in keys:
        vals = []
        for a in names:
            v = (asset_params.get(a) or {}).get(key)
            try:
                vals.append(float(v))
            except (TypeError, ValueError):
                vals.append(math.nan)
        out[key] = np.asarray(vals, dtype=np.float64)
    return out


def trade_costs(trades: pd.DataFrame | None, asset_params: dict | None, names: list) -> dict:
    """Gross PnL and costs, per asset and for the portfolio.

    Returns ``{"available": bool, "assets": DataFrame, "portfolio": dict}``;
    the frame (index ``names``) has ``n_trades``, ``gross_pnl``,
    ``commission``, ``spread``, ``slippage``, ``total_costs``, ``net_pnl``
    (the trades' ``pnl`` summed), ``costs_to_gross`` (total costs / |gross
    PnL|).  ``available`` is False without ``asset_params`` (then spread,
    slippage and gross PnL are NaN; commission and net PnL are still the
    trades'), or when an asset that traded has no contract size.
    """
    k = len(names)
    cols = ["n_trades", "gross_pnl", "commission", "spread", "slippage", "total_costs", "net_pnl",
            "costs_to_gross"]
    if trades is None or len(trades) == 0:
        frame = pd.DataFrame(0.0, index=pd.Index(names, name="asset"), columns=cols)
        frame["costs_to_gross"] = math.nan
        return {"available": asset_params is not None and bool(asset_params),
                "assets": frame, "portfolio": _portfolio_costs(frame)}
    a = category_codes(trades["asset"], names)
    ok = a >= 0
    a = a[ok]
    pnl = trades["pnl"].to_numpy(dtype=np.float64)[ok]
    comm = trades["commission"].to_numpy(dtype=np.float64)[ok]
    count = np.bincount(a, minlength=k).astype(np.int64)
    net = np.bincount(a, weights=pnl, minlength=k)
    commission = np.bincount(a, weights=comm, minlength=k)
    p = asset_param_arrays(asset_params, names, ("contract_size", "spread", "slippage"))
    if p is None:
        spread = slippage = np.full(k, math.nan)
        available = False
    else:
        units = trades["units"].to_numpy(dtype=np.float64)[ok]
        signal = category_codes(trades["exit_reason"], EXIT_REASONS)[ok] == 0
        legs = 1.0 + signal  # the entry, and a signal exit: the fills that pay spread and slippage
        size = units * p["contract_size"][a] * legs
        spread = np.bincount(a, weights=size * (p["spread"][a] / 2.0), minlength=k)
        slippage = np.bincount(a, weights=size * p["slippage"][a], minlength=k)
        available = bool(np.isfinite(spread[count > 0]).all() and np.isfinite(slippage[count > 0]).all())
    total = commission + spread + slippage
    gross = net + total
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(np.abs(gross) > 0, total / np.abs(gross), math.nan)
    frame = pd.DataFrame({"n_trades": count, "gross_pnl": gross, "commission": commission,
                          "spread": spread, "slippage": slippage, "total_costs": total,
                          "net_pnl": net, "costs_to_gross": share},
                         index=pd.Index(names, name="asset"))
    return {"available": available, "assets": frame, "portfolio": _portfolio_costs(frame)}


def _portfolio_costs(frame: pd.DataFrame) -> dict:
    out = {c: float(frame[c].sum(min_count=1)) for c in
           ("gross_pnl", "commission", "spread", "slippage", "total_costs", "net_pnl")}
    out["n_trades"] = int(frame["n_trades"].sum())
    g = out["gross_pnl"]
    out["costs_to_gross"] = out["total_costs"] / abs(g) if math.isfinite(g) and g != 0 else math.nan
    return out
