"""Trade analysis and trading costs from the trades table (pure functions, numpy).

Inputs are the run's ``trades`` table (the spec's columns: ``asset, side,
units, entry_time, entry_price, exit_time, exit_price, exit_reason, pnl,
commission``; categoricals or text) and each asset's parameters
(``run_info.json`` ``asset_params``: ``contract_size``, ``spread``,
``slippage``, ``leverage``, ...).  The columns are read once into arrays
(:func:`trade_arrays`: integer codes, epoch nanoseconds, floats); every
statistic is then one grouped pass over them (numba kernels of
:mod:`raybt.analysis.nb`, or one sort for the PnL quantiles): no Python
loop per trade.

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

from typing import NamedTuple

import numpy as np
import pandas as pd

from raybt.analysis.nb import holding_counts_nb, mean_std_nb, trade_costs_nb, trade_groups_nb

__all__ = ["EXIT_REASONS", "REASON_LABELS", "SIDES", "TradeArrays", "asset_param_arrays",
           "category_codes", "holding_distribution", "holding_hours", "pnl_distribution",
           "trade_analysis", "trade_arrays", "trade_costs"]

#: exit reasons in display order (the spec's six)
EXIT_REASONS = ["signal", "sl", "tp", "end", "stopout", "breaker"]
REASON_LABELS = {"signal": "signal (z exit or max hold)", "sl": "stop-loss", "tp": "take-profit",
                 "end": "end of data", "stopout": "stop-out", "breaker": "breaker flatten"}
SIDES = ["long", "short"]
_QUANTILES = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]


def category_codes(column: pd.Series, categories: list) -> np.ndarray:
    """Each row's position in ``categories`` (-1 when absent): a categorical's
    codes mapped through its categories (no pass over the rows beyond one
    gather), other columns factorised once and only their distinct values
    looked up."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        cats = [str(c) for c in column.cat.categories]
        if cats == [str(c) for c in categories]:
            return codes.astype(np.int64)
        uniques = cats
    else:
        codes, uniques = pd.factorize(column)
        uniques = [str(u) for u in uniques]
    lookup = np.append(pd.Index(categories).get_indexer(uniques), -1)  # code -1 (missing) -> -1
    return lookup[codes]


def _ns(column) -> np.ndarray:
    """Epoch nanoseconds (UTC) of a time column: a view for datetime64[ns] columns."""
    dtype = getattr(column, "dtype", None)
    if isinstance(dtype, pd.DatetimeTZDtype) or (dtype is not None and dtype.kind == "M"):
        arr = column.array if isinstance(column, pd.Series) else pd.array(column)
        return arr.as_unit("ns").asi8  # UTC epoch for aware times; naive times count as UTC
    return pd.DatetimeIndex(pd.to_datetime(column, utc=True)).as_unit("ns").asi8


class TradeArrays(NamedTuple):
    """The trades table as arrays (one row per trade): ``asset`` (codes into
    ``names``), ``reason`` (into :data:`EXIT_REASONS`), ``side`` (into
    :data:`SIDES`; -1 for an unknown value), ``pnl``, ``commission``,
    ``units``, ``entry_price``, ``entry_ns``/``exit_ns`` (epoch ns, UTC);
    ``missing``: the spec's columns the table did not have (their codes are
    -1, their floats NaN, their times 0)."""

    names: list
    asset: np.ndarray
    reason: np.ndarray
    side: np.ndarray
    pnl: np.ndarray
    commission: np.ndarray
    units: np.ndarray
    entry_price: np.ndarray
    entry_ns: np.ndarray
    exit_ns: np.ndarray
    missing: tuple = ()

    def __len__(self) -> int:  # the number of trades (a NamedTuple's length would be its fields')
        return len(self.pnl)


def trade_arrays(trades, names: list) -> TradeArrays | None:
    """:class:`TradeArrays` of a trades table (None for None or no rows; a
    :class:`TradeArrays` is returned as it is)."""
    if isinstance(trades, TradeArrays):
        return trades
    if trades is None or len(trades) == 0:
        return None
    n = len(trades)
    missing = tuple(c for c in ("asset", "side", "units", "entry_time", "entry_price", "exit_time",
                                "exit_reason", "pnl", "commission") if c not in trades.columns)

    def floats(col):
        return trades[col].to_numpy(dtype=np.float64) if col in trades.columns else np.full(n, math.nan)

    def codes(col, categories):
        return category_codes(trades[col], categories) if col in trades.columns \
            else np.full(n, -1, dtype=np.int64)

    def times(col):
        return _ns(trades[col]) if col in trades.columns else np.zeros(n, dtype=np.int64)

    return TradeArrays(list(names), codes("asset", names), codes("exit_reason", EXIT_REASONS),
                       codes("side", SIDES), floats("pnl"), floats("commission"), floats("units"),
                       floats("entry_price"), times("entry_time"), times("exit_time"), missing)


def holding_hours(trades) -> np.ndarray:
    """Hours from each trade's entry bar to its exit bar (a trades table or :class:`TradeArrays`)."""
    if isinstance(trades, TradeArrays):
        return (trades.exit_ns - trades.entry_ns) / 3.6e12
    return (_ns(trades["exit_time"]) - _ns(trades["entry_time"])) / 3.6e12


_SUMS = ("count", "wins", "total", "gain", "loss", "n_loss", "hours")


def _group_sums(reason: np.ndarray, side: np.ndarray, pnl: np.ndarray,
                hold_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(by_reason, by_side)``: the sums of :data:`_SUMS` (holding time in
    hours) per exit reason and per side, (7, 6) and (7, 2) arrays.  One numba
    pass over the (reason, side) pairs when every trade has both
    (:func:`raybt.analysis.nb.trade_groups_nb`), one pass per key otherwise."""
    reason = np.asarray(reason, dtype=np.int64)
    side = np.asarray(side, dtype=np.int64)
    hold_ns = np.asarray(hold_ns, dtype=np.int64)
    k, m = len(EXIT_REASONS), len(SIDES)
    if (reason >= 0).all() and (side >= 0).all():
        out = np.zeros((len(_SUMS), k * m))
        trade_groups_nb(reason, side, m, pnl, hold_ns, out)
        both = out.reshape(len(_SUMS), k, m)
        by_reason, by_side = both.sum(axis=2), both.sum(axis=1)
    else:
        zeros = np.zeros(len(pnl), dtype=np.int64)
        by_reason, by_side = np.zeros((len(_SUMS), k)), np.zeros((len(_SUMS), m))
        trade_groups_nb(reason, zeros, 1, pnl, hold_ns, by_reason)
        trade_groups_nb(side, zeros, 1, pnl, hold_ns, by_side)
    by_reason[6] /= 3.6e12
    by_side[6] /= 3.6e12
    return by_reason, by_side


def _group_table(sums: np.ndarray, labels: list) -> pd.DataFrame:
    """count, wins, win_rate, avg_pnl, total_pnl, avg_win, avg_loss, profit_factor,
    avg_holding_hours per group, from :func:`_group_sums`."""
    count, wins, total, gain, loss, n_loss, hours = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        return pd.DataFrame({
            "count": count.astype(np.int64), "wins": wins.astype(np.int64),
            "win_rate": np.where(count > 0, wins / count, math.nan),
            "avg_pnl": np.where(count > 0, total / count, math.nan), "total_pnl": total,
            "avg_win": np.where(wins > 0, gain / wins, math.nan),
            "avg_loss": np.where(n_loss > 0, -loss / n_loss, math.nan),
            "profit_factor": np.where(loss > 0, gain / loss, np.where(gain > 0, math.inf, math.nan)),
            "avg_holding_hours": np.where(count > 0, hours / count, math.nan),
        }, index=pd.Index(labels, name="group"))


def _quantiles_sorted(xs: np.ndarray, qs) -> np.ndarray:
    """numpy's default (linear) quantiles of an ascending array."""
    h = (len(xs) - 1) * np.asarray(qs, dtype=np.float64)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, len(xs) - 1)
    return xs[lo] + (h - lo) * (xs[hi] - xs[lo])


def _summary(x: np.ndarray, q: np.ndarray, scale: float = 1.0) -> dict:
    """n, mean, std (of ``x`` / ``scale``) and the quantiles ``q`` (already scaled)."""
    mean, std = mean_std_nb(x)
    out = {"n": int(len(x)), "mean": float(mean / scale), "std": float(std / scale)}
    out.update({f"q{int(round(100 * a)):02d}": float(v) for a, v in zip(_QUANTILES, q)})
    out["median"] = out["q50"]
    return out


def pnl_distribution(pnl: np.ndarray, bins: int = 60) -> tuple[dict, dict]:
    """``(stats, histogram)`` of trade PnL from one sort: n, mean, std, min,
    max and the quantiles of :data:`_QUANTILES`; the histogram has ``bins``
    equal bins over the 0.5-99.5 % range (``edges``, ``counts``; each bin
    ``[a, b)``, the last ``[a, b]``, as ``np.histogram``) and ``beyond``,
    the trades outside it."""
    x = pnl[np.isfinite(pnl)]
    if not len(x):
        return {"n": 0}, {"edges": np.zeros(0), "counts": np.zeros(0, np.int64), "beyond": 0}
    xs = np.sort(x)
    q = _quantiles_sorted(xs, _QUANTILES + [0.005, 0.995])
    stats = _summary(x, q[:len(_QUANTILES)])
    stats.update(min=float(xs[0]), max=float(xs[-1]))
    lo, hi = float(q[-2]), float(q[-1])
    if hi <= lo:
        lo, hi = lo - 1.0, hi + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    cuts = np.searchsorted(xs, edges, side="left")
    cuts[-1] = np.searchsorted(xs, edges[-1], side="right")
    counts = np.diff(cuts)
    return stats, {"edges": edges, "counts": counts, "beyond": int(len(xs) - counts.sum())}


def holding_distribution(hold_ns: np.ndarray, bins: int = 45) -> tuple[dict, dict]:
    """``(stats, histogram)`` of holding times given in nanoseconds, reported
    in hours.  Holding times are whole bars, so they are counted per whole
    multiple of the shortest positive one (one numba pass,
    :func:`raybt.analysis.nb.holding_counts_nb`; exact quantiles from the
    cumulative counts; a sort when they are not whole multiples); the
    histogram has about ``bins`` log-spaced bins of whole multiples
    (``edges`` in hours, ``counts``) and ``same_bar``: trades closed on
    their entry bar (holding 0, left out of the log axis)."""
    hold_ns = np.asarray(hold_ns, dtype=np.int64)
    empty = {"edges": np.zeros(0), "counts": np.zeros(0, np.int64), "same_bar": 0}
    n = len(hold_ns)
    if not n:
        return {"n": 0}, empty
    unit_ns, counts = holding_counts_nb(hold_ns)
    unit = unit_ns / 3.6e12
    if len(counts):
        cum = np.cumsum(counts)
        h = (n - 1) * np.asarray(_QUANTILES)
        lo = np.floor(h).astype(np.int64)
        at = np.searchsorted(cum, lo, side="right")  # order statistic lo: first value with cum > lo
        at_hi = np.searchsorted(cum, np.minimum(lo + 1, n - 1), side="right")
        q = (at + (h - lo) * (at_hi - at)) * unit
    else:  # not whole multiples of one unit: sort
        q = _quantiles_sorted(np.sort(hold_ns), _QUANTILES) / 3.6e12
    stats = _summary(hold_ns, q, 3.6e12)
    stats.update(min=float(hold_ns.min()) / 3.6e12, max=float(hold_ns.max()) / 3.6e12)
    same = int(counts[0]) if len(counts) else int((hold_ns <= 0).sum())
    if same == n:
        return stats, dict(empty, same_bar=n)
    top = float(hold_ns.max()) / unit_ns
    m = np.unique(np.ceil(np.geomspace(1.0, max(top, 1.0) + 1.0, bins))).astype(np.int64)
    edges = np.r_[m - 0.5, m[-1] + 0.5] * unit
    if len(counts):  # bin i holds the multiples m[i] .. m[i + 1] - 1
        padded = np.r_[counts, np.zeros(max(0, m[-1] + 1 - len(counts)), np.int64)]
        cnt = np.add.reduceat(padded[:m[-1] + 1], m)
    else:
        cnt, _ = np.histogram(hold_ns[hold_ns > 0] / 3.6e12, bins=edges)
    return stats, {"edges": edges, "counts": cnt, "same_bar": same}


def trade_analysis(trades, names: list | None = None) -> dict:
    """Statistics of all trades: ``n_trades``; ``pnl`` and ``holding_hours``
    distributions (n, mean, std, min, max, quantiles q01..q99, median) and
    their histograms (:func:`pnl_distribution`, :func:`holding_distribution`);
    ``by_exit_reason`` (the six reasons, zero rows kept) and ``by_side``
    (long, short) as DataFrames of :func:`_group_table`'s columns; ``expectancy``
    (mean PnL of the trades with a known exit reason: all of them in a run),
    ``payoff_ratio`` (average win / |average loss|).  ``trades``: the trades
    table or its :class:`TradeArrays`."""
    if trades is None or len(trades) == 0:
        none = np.zeros((len(_SUMS), 1))
        return {"n_trades": 0, "pnl": {"n": 0}, "holding_hours": {"n": 0},
                "pnl_histogram": None, "holding_histogram": None,
                "by_exit_reason": _group_table(np.repeat(none, len(EXIT_REASONS), axis=1), EXIT_REASONS),
                "by_side": _group_table(np.repeat(none, len(SIDES), axis=1), SIDES),
                "expectancy": math.nan, "payoff_ratio": math.nan}
    t = trade_arrays(trades, names if names is not None else [])
    hold_ns = t.exit_ns - t.entry_ns
    reason, side = _group_sums(t.reason, t.side, t.pnl, hold_ns)
    # all trades: the sum over the reasons when every trade has one (a run's do), else one more pass
    total = _group_table(reason.sum(axis=1, keepdims=True) if (t.reason >= 0).all() else
                         _group_sums(np.zeros(len(t), np.int64), np.zeros(len(t), np.int64), t.pnl,
                                     hold_ns)[0][:, :1], ["all"]).iloc[0]
    pnl_stats, pnl_hist = pnl_distribution(t.pnl)
    if "entry_time" in t.missing or "exit_time" in t.missing:
        hold_stats, hold_hist = {"n": 0}, None
    else:
        hold_stats, hold_hist = holding_distribution(hold_ns)
    return {
        "n_trades": int(len(t)), "pnl": pnl_stats, "holding_hours": hold_stats,
        "pnl_histogram": pnl_hist, "holding_histogram": hold_hist,
        "by_exit_reason": _group_table(reason, EXIT_REASONS),
        "by_side": _group_table(side, SIDES),
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


def trade_costs(trades, asset_params: dict | None, names: list) -> dict:
    """Gross PnL and costs, per asset and for the portfolio.

    Returns ``{"available": bool, "assets": DataFrame, "portfolio": dict}``;
    the frame (index ``names``) has ``n_trades``, ``gross_pnl``,
    ``commission``, ``spread``, ``slippage``, ``total_costs``, ``net_pnl``
    (the trades' ``pnl`` summed), ``costs_to_gross`` (total costs / |gross
    PnL|).  ``available`` is False without ``asset_params`` (then spread,
    slippage and gross PnL are NaN; commission and net PnL are still the
    trades'), or when an asset that traded has no contract size.  ``trades``:
    the trades table or its :class:`TradeArrays`; one numba pass
    (:func:`raybt.analysis.nb.trade_costs_nb`).
    """
    k = len(names)
    cols = ["n_trades", "gross_pnl", "commission", "spread", "slippage", "total_costs", "net_pnl",
            "costs_to_gross"]
    if trades is None or len(trades) == 0:
        frame = pd.DataFrame(0.0, index=pd.Index(names, name="asset"), columns=cols)
        frame["costs_to_gross"] = math.nan
        return {"available": asset_params is not None and bool(asset_params),
                "assets": frame, "portfolio": _portfolio_costs(frame)}
    t = trade_arrays(trades, names)
    p = asset_param_arrays(asset_params, names, ("contract_size", "spread", "slippage"))
    zeros = np.zeros(k)
    sums = np.zeros((5, k))
    trade_costs_nb(t.asset, t.reason == 0, t.pnl, t.commission, t.units,  # reason 0: signal
                   zeros if p is None else p["contract_size"], zeros if p is None else p["spread"],
                   zeros if p is None else p["slippage"], sums)
    count, net, commission, spread, slippage = sums
    count = count.astype(np.int64)
    if p is None or {"units", "exit_reason"} & set(t.missing):
        spread = slippage = np.full(k, math.nan)
        available = False
    else:
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
