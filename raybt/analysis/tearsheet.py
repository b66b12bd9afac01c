"""The tear sheet of a run: returns by month and year, top drawdowns, the
breaker's own drawdown, trade analysis, costs, exposure and turnover.

:func:`tearsheet` computes them from a run's loaded files and returns
``(keys, frames)``: plain JSON-able values (fractions, account currency,
ISO times; NaN allowed, :func:`raybt.analysis.analysis_to_json` makes it
strict JSON) merged into :func:`raybt.analysis.analyse_run`'s result, and
the DataFrames the figures and tables draw from.  Each step is timed as
``analysis.<step>``: ``monthly_returns``, ``drawdowns``, ``breaker``,
``trade_columns`` (the trades table read into arrays once),
``trade_analysis``, ``costs``, ``exposure``, ``turnover``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from raybt.analysis.exposure import EXPOSURE_COLUMNS, exposure_frame, exposure_summary, rebalance_turnover
from raybt.analysis.periods import (
    breaker_drawdown,
    drawdown_periods,
    monthly_table,
    period_returns,
    sleeve_period_returns,
    yearly_from_monthly,
)
from raybt.analysis.trades import trade_analysis, trade_arrays, trade_costs
from raybt.phases import PhaseTimer, phase

__all__ = ["TOP_DRAWDOWNS", "breaker_summary", "tearsheet"]

#: rows of the top drawdowns table
TOP_DRAWDOWNS = 10
NO_PARAMS = ("unavailable: run_info.json has no asset_params (contract size, leverage, spread "
             "and slippage of each asset), written by runs of raybt 0.1 from issue 15 on")


def _iso(t) -> str | None:
    return None if t is None or pd.isna(t) else pd.Timestamp(t).isoformat()


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as dicts of plain values (times as ISO strings)."""
    out = []
    for row in frame.to_dict("records"):
        out.append({k: (_iso(v) if isinstance(v, (pd.Timestamp, type(pd.NaT))) else
                        bool(v) if isinstance(v, (bool, np.bool_)) else
                        int(v) if isinstance(v, (int, np.integer)) else float(v)
                        if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
    return out


def _table_dict(frame: pd.DataFrame) -> dict:
    """``{row label: {column: value}}`` with plain values."""
    return {str(i): r for i, r in zip(frame.index, _records(frame))}


def _series_dict(s: pd.Series) -> dict:
    return {str(k): float(v) for k, v in s.items()}


def _columns_dict(frame: pd.DataFrame) -> dict:
    """``{column: {row: value}}`` through one array (1,000 columns: no Series per column)."""
    rows = [str(i) for i in frame.index]
    return {str(c): dict(zip(rows, col)) for c, col in
            zip(frame.columns, frame.to_numpy(dtype=np.float64).T.tolist())}


def breaker_summary(events: pd.DataFrame | None, port: pd.Series) -> tuple[dict, pd.Series | None]:
    """``(summary, series)``: the breaker's trips and resumes and, when it
    tripped, the drawdown it measures per bar (:func:`raybt.analysis.periods.
    breaker_drawdown`; None without a trip).

    Each trip/resume row has ``time``, ``drawdown`` (from the all-time peak,
    recomputed from the equity at that bar), ``breaker_drawdown`` (what the
    breaker measured: ``events.csv``'s ``breaker_drawdown`` column when the
    run wrote it, else its ``drawdown`` on trip/resume rows, which older runs
    recorded from the breaker's peak) and ``breaker_drawdown_rebuilt`` (the
    same rebuilt from the equity: the series at that bar, before the reset
    on a resume row).  ``halted_days``: total time from trips to resumes
    (to the last bar when never resumed).
    """
    empty = {"trips": [], "resumes": [], "halted_days": 0.0, "halted_periods": 0}
    if events is None or len(events) == 0 or "event" not in events.columns:
        return empty, None
    kind = events["event"].astype(str).str.lower()
    rows = events[kind.isin(["trip", "resume"])]
    if not (kind == "trip").any():
        return empty, None
    times = pd.DatetimeIndex(pd.to_datetime(rows["decided_at"], utc=True))
    resumes = rows.loc[kind[rows.index] == "resume", "decided_at"]
    series = breaker_drawdown(port, resumes)
    measured = breaker_drawdown(port, resumes, after_resume=False).to_numpy()  # at a resume: before the reset
    v = port.to_numpy(dtype=np.float64)
    peak = np.maximum.accumulate(v)
    index = pd.DatetimeIndex(port.index)
    pos = np.clip(index.searchsorted(times if index.tz is not None else times.tz_localize(None)),
                  0, len(v) - 1)
    recorded = rows["breaker_drawdown"] if "breaker_drawdown" in rows.columns else rows["drawdown"]
    out = {"trips": [], "resumes": []}
    for k, t, p, rec in zip(kind[rows.index], times, pos, recorded.to_numpy(dtype=np.float64)):
        out["trips" if k == "trip" else "resumes"].append({
            "time": t.isoformat(), "drawdown": float(1.0 - v[p] / peak[p]) if peak[p] > 0 else 0.0,
            "breaker_drawdown": float(rec), "breaker_drawdown_rebuilt": float(measured[p])})
    trips = pd.DatetimeIndex([r["time"] for r in out["trips"]])
    resumes = pd.DatetimeIndex([r["time"] for r in out["resumes"]])
    end = index[-1] if index.tz is not None else index[-1].tz_localize("UTC")
    halted = 0.0
    for t in trips:  # one per trip (a handful)
        after = resumes[resumes > t]
        halted += ((after[0] if len(after) else end) - t) / pd.Timedelta(days=1)
    out["halted_days"] = float(halted)
    out["halted_periods"] = len(trips)
    return out, series


def tearsheet(equity: pd.DataFrame, port: pd.Series, returns: pd.DataFrame | None, names: list, *,
              trades: pd.DataFrame | None = None, multipliers: pd.DataFrame | None = None,
              events: pd.DataFrame | None = None, asset_params: dict | None = None,
              weights_history: pd.DataFrame | None = None,
              timer: PhaseTimer | None = None) -> tuple[dict, dict]:
    """The tear-sheet quantities of a run; see the module docstring.

    ``equity``: the ``portfolio_equity`` frame; ``port`` its portfolio
    equity; ``returns``: the sleeves' time-weighted per-bar returns
    (``frames["returns"]`` of :func:`raybt.analysis.analyse_run`); the other
    arguments are the loaded run files (each optional).

    Keys: ``monthly_returns`` / ``yearly_returns`` (``{"portfolio": {period:
    r}, "assets": {asset: {period: r}}}``), ``drawdowns`` (``count`` and the
    ``top`` deepest periods), ``breaker`` (:func:`breaker_summary`),
    ``trade_analysis`` (distributions, by exit reason, by side), ``costs``,
    ``exposure`` (summary, per asset means; ``available`` False without
    ``asset_params``), ``turnover`` (per rebalance and totals),
    ``weights_history`` (number of target weight sets).
    """
    keys, frames = {}, {}
    with phase(timer, "analysis.monthly_returns"):
        pm = period_returns(port, "M")
        py = period_returns(port, "Y")
        am = (sleeve_period_returns(returns, equity.index, names, "M") if returns is not None
              else pd.DataFrame(index=pm.index, columns=names, dtype=float))
        ay = yearly_from_monthly(am) if len(am) else pd.DataFrame(columns=names, dtype=float)
        frames.update(monthly_portfolio=pm, yearly_portfolio=py, monthly_table=monthly_table(pm, py),
                      monthly_assets=am, yearly_assets=ay)
        keys["monthly_returns"] = {"portfolio": _series_dict(pm), "assets": _columns_dict(am)}
        keys["yearly_returns"] = {"portfolio": _series_dict(py), "assets": _columns_dict(ay)}
    with phase(timer, "analysis.drawdowns"):
        dd = drawdown_periods(port)
        frames["drawdowns"] = dd.head(TOP_DRAWDOWNS)
        keys["drawdowns"] = {"count": int(len(dd)), "top": _records(dd.head(TOP_DRAWDOWNS))}
    with phase(timer, "analysis.breaker"):
        keys["breaker"], frames["breaker_drawdown"] = breaker_summary(events, port)
    with phase(timer, "analysis.trade_columns"):
        trades = trade_arrays(trades, names)  # the columns read once for the three steps below
    with phase(timer, "analysis.trade_analysis"):
        ta = trade_analysis(trades)
        frames["by_exit_reason"], frames["by_side"] = ta["by_exit_reason"], ta["by_side"]
        frames["trade_analysis"] = ta
        keys["trade_analysis"] = {k: (_table_dict(v) if isinstance(v, pd.DataFrame) else
                                      {h: (a.tolist() if isinstance(a, np.ndarray) else a)
                                       for h, a in v.items()} if k.endswith("_histogram") and v
                                      else v) for k, v in ta.items()}
    with phase(timer, "analysis.costs"):
        costs = trade_costs(trades, asset_params, names)
        frames["costs"] = costs["assets"]
        keys["costs"] = {"available": costs["available"], "portfolio": costs["portfolio"],
                         "assets": _table_dict(costs["assets"])}
        if not costs["available"]:
            lacking = [c for c in ("units", "exit_reason") if trades is not None and c in trades.missing]
            keys["costs"]["note"] = (NO_PARAMS if not asset_params or not lacking else
                                     f"unavailable: the trades table has no {', '.join(lacking)} column")
    with phase(timer, "analysis.exposure"):
        series, per = exposure_frame(trades, equity.index, asset_params, names)
        if series is None:
            lacking = [c for c in EXPOSURE_COLUMNS if trades is not None and c in trades.missing]
            frames["exposure"] = None
            keys["exposure"] = {"available": False, "note": NO_PARAMS if not asset_params else
                                f"unavailable: the trades table has no {', '.join(lacking)} column"}
        else:
            summary, frames["exposure"] = exposure_summary(series, port)
            keys["exposure"] = {"available": True, **summary, "assets": _table_dict(per)}
    with phase(timer, "analysis.turnover"):
        turnover = rebalance_turnover(multipliers, port)
        frames["turnover"] = turnover
        years = (port.index[-1] - port.index[0]) / pd.Timedelta(days=365.25) if len(port) > 1 else 0
        total = float(turnover["turnover"].sum()) if len(turnover) else 0.0
        keys["turnover"] = {
            "rebalances": _records(turnover), "n_rebalances": int(len(turnover)),
            "total_moved": float(turnover["moved"].sum()) if len(turnover) else 0.0,
            "total_turnover": total,
            "mean_turnover": float(turnover["turnover"].mean()) if len(turnover) else math.nan,
            "annualised_turnover": total / years if years > 0 else math.nan}
        frames["weights_history"] = weights_history
        keys["weights_history"] = {"n_estimates": 0 if weights_history is None
                                   else int(len(weights_history))}
    return keys, frames
