"""Returns by calendar period and drawdown periods (pure functions, numpy/pandas).

Calendar periods are UTC months and years.  A period's return is compounded:

* portfolio: ``E[last bar of the period] / E[last bar of the previous period] - 1``
  (the first period from the first bar), the product of the per-bar returns
  whose later bar falls in the period (quantstats' ``monthly_returns`` on the
  same returns);
* sleeve: ``prod(1 + r) - 1`` of the sleeve's time-weighted returns (net of
  rebalancing transfers, :func:`raybt.analysis.sleeve_returns`) in the period,
  so a sleeve's months compound to its total return in the per-asset table.

Drawdown periods (:func:`drawdown_periods`) run from a peak (the last bar at
the running maximum) through the trough to the recovery (the first bar back
at or above the peak), or to the end of the run when not recovered.

The breaker's drawdown (:func:`breaker_drawdown`) is measured from the
breaker's own peak: the running maximum since the start, reset to the equity
at each resume (:func:`raybt.risk.step_breaker`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from raybt.analysis.nb import period_growth_nb

__all__ = ["MONTHS", "breaker_drawdown", "drawdown_periods", "monthly_table", "period_returns",
           "resume_positions", "sleeve_period_returns", "yearly_from_monthly"]

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _utc(index) -> pd.DatetimeIndex:
    idx = pd.DatetimeIndex(index)
    return idx.tz_convert("UTC") if idx.tz is not None else idx


def period_ends(index, freq: str = "M") -> tuple[np.ndarray, list[str]]:
    """``(ends, labels)``: the position of the last bar of each UTC month
    (``freq="M"``, labels ``YYYY-MM``) or year (``"Y"``, labels ``YYYY``) of a
    sorted index; a first period holding only the first bar (no return in
    it) is left out."""
    idx = _utc(index)
    if len(idx) == 0:
        return np.zeros(0, np.int64), []
    year = idx.year.to_numpy().astype(np.int64)
    key = year * 100 + (idx.month.to_numpy().astype(np.int64) if freq == "M" else 0)
    ends = np.r_[np.flatnonzero(key[1:] != key[:-1]), len(key) - 1].astype(np.int64)
    if len(ends) and ends[0] == 0:
        ends = ends[1:]
    k = key[ends]
    labels = ([f"{y:04d}-{m:02d}" for y, m in zip(k // 100, k % 100)] if freq == "M"
              else [f"{y:04d}" for y in k // 100])
    return ends, labels


def period_returns(equity: pd.Series, freq: str = "M") -> pd.Series:
    """Compounded return of ``equity`` (a Series on a DatetimeIndex) per UTC
    month (``"M"``) or year (``"Y"``), indexed by ``YYYY-MM`` / ``YYYY``."""
    v = np.asarray(equity, dtype=np.float64)
    ends, labels = period_ends(equity.index, freq)
    if not len(ends):
        return pd.Series(dtype=float, name="return")
    base = np.r_[v[0], v[ends[:-1]]]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = v[ends] / base - 1.0
    return pd.Series(out, index=pd.Index(labels, name="period"), name="return")


def sleeve_period_returns(returns: pd.DataFrame | np.ndarray, index, names: list,
                          freq: str = "M") -> pd.DataFrame:
    """Each sleeve's compounded return per period (periods x assets).

    ``returns``: the per-bar sleeve returns (rows = bars 1..N-1 of ``index``,
    the bars' equity index; :func:`raybt.analysis.sleeve_returns` or
    ``analyse_run(...)["frames"]["returns"]``); non-finite returns count as 0.
    One numba pass over each column (:func:`raybt.analysis.nb.period_growth_nb`).
    """
    R = returns.to_numpy(dtype=np.float64, copy=False) if isinstance(returns, pd.DataFrame) \
        else np.asarray(returns, dtype=np.float64)
    ends, labels = period_ends(index, freq)
    out = np.empty((len(ends), R.shape[1]))
    if len(ends):
        # period p holds the bars (ends[p-1], ends[p]]: return rows ends[p-1] .. ends[p] - 1
        period_growth_nb(R if R.flags.f_contiguous else np.asfortranarray(R), ends, out)
    return pd.DataFrame(out, index=pd.Index(labels, name="period"), columns=list(names))


def yearly_from_monthly(monthly: pd.DataFrame | pd.Series) -> pd.DataFrame | pd.Series:
    """Compound ``YYYY-MM`` rows into ``YYYY`` rows: ``prod(1 + r) - 1``."""
    years = pd.Index([str(p)[:4] for p in monthly.index], name="period")
    return (1.0 + monthly).groupby(years.to_numpy(), sort=True).prod().rename_axis("period") - 1.0


def monthly_table(monthly: pd.Series, yearly: pd.Series | None = None) -> pd.DataFrame:
    """Years x (``Jan`` .. ``Dec``, ``Year``): the quantstats-style pivot of
    :func:`period_returns` (NaN for months outside the run); ``Year`` is the
    compounded year (``yearly`` when given)."""
    if len(monthly) == 0:
        return pd.DataFrame(columns=MONTHS + ["Year"], dtype=float)
    year = [p[:4] for p in monthly.index]
    month = [MONTHS[int(p[5:7]) - 1] for p in monthly.index]
    table = pd.DataFrame({"year": year, "month": month, "r": monthly.to_numpy()}).pivot(
        index="year", columns="month", values="r").reindex(columns=MONTHS)
    table["Year"] = (yearly if yearly is not None else yearly_from_monthly(monthly)).reindex(
        table.index).to_numpy()
    table.index.name = None
    table.columns.name = None
    return table


# ------------------------------------------------------------------ drawdown periods

def drawdown_periods(equity: pd.Series, top: int | None = None) -> pd.DataFrame:
    """One row per drawdown period of ``equity``, deepest first.

    Columns: ``peak`` (time of the last bar at the running maximum before the
    fall), ``start`` (first bar below it), ``trough`` (first bar at the
    period's minimum), ``recovery`` (first bar back at or above the peak;
    NaT when not recovered), ``recovered`` (bool), ``depth`` (``1 - trough /
    peak``, positive fraction), ``peak_equity``, ``trough_equity``,
    ``length_days`` (peak to recovery, or to the last bar when not
    recovered), ``decline_days`` (peak to trough), ``recovery_days`` (trough
    to recovery; NaN when not recovered), ``bars`` (bars below the peak).
    Vectorised: one running maximum and a few reductions per period.
    ``top``: only the ``top`` deepest rows.
    """
    v = np.asarray(equity, dtype=np.float64)
    idx = pd.DatetimeIndex(equity.index)
    cols = ["peak", "start", "trough", "recovery", "recovered", "depth", "peak_equity",
            "trough_equity", "length_days", "decline_days", "recovery_days", "bars"]
    n = len(v)
    if n < 2:
        return pd.DataFrame(columns=cols)
    peak = np.maximum.accumulate(np.where(np.isnan(v), -np.inf, v))
    under = (v < peak) & (peak > 0)
    edges = np.diff(np.r_[0, under.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)  # exclusive: the recovery bar, or n
    if not len(starts):
        return pd.DataFrame(columns=cols)
    seg_min = np.minimum.reduceat(np.where(np.isnan(v), np.inf, v), starts)
    # the bars between two periods stand at new highs, so each reduction covers one period
    seg = np.cumsum(edges[:-1] == 1) - 1  # period of each bar (valid where under)
    at_min = under & (v == seg_min[np.clip(seg, 0, None)])
    first_min = np.unique(seg[at_min], return_index=True)
    trough = np.flatnonzero(at_min)[first_min[1]]
    peak_pos = starts - 1
    peak_val = v[peak_pos]
    recovered = stops < n
    ns = idx.as_unit("ns").asi8
    day = 86_400e9
    end_pos = np.where(recovered, stops, n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = 1.0 - seg_min / peak_val
    frame = pd.DataFrame({
        "peak": idx[peak_pos], "start": idx[starts], "trough": idx[trough],
        "recovery": idx[np.minimum(stops, n - 1)].where(recovered),
        "recovered": recovered, "depth": depth, "peak_equity": peak_val, "trough_equity": seg_min,
        "length_days": (ns[end_pos] - ns[peak_pos]) / day,
        "decline_days": (ns[trough] - ns[peak_pos]) / day,
        "recovery_days": np.where(recovered, (ns[end_pos] - ns[trough]) / day, math.nan),
        "bars": stops - starts,
    })
    order = np.argsort(-depth, kind="stable")
    if top is not None:
        order = order[:top]
    return frame.iloc[order].reset_index(drop=True)


def resume_positions(index, resumes) -> np.ndarray:
    """Bar positions of the resume decision times ``resumes`` in ``index``."""
    idx = _utc(index)
    times = (_utc(pd.DatetimeIndex(pd.to_datetime(pd.Series(resumes, dtype=object), utc=True)))
             if len(resumes) else pd.DatetimeIndex([], tz="UTC"))
    if idx.tz is None:
        times = times.tz_localize(None)
    return idx.searchsorted(times)


def breaker_drawdown(equity: pd.Series, resumes, *, after_resume: bool = True) -> pd.Series:
    """The drawdown the breaker measures, per bar: ``1 - E_t / peak_t`` with
    ``peak_t`` the running maximum of ``equity`` since the last resume at or
    before ``t`` (the resume bar itself included: the breaker re-arms with
    its peak at that bar's equity), since the first bar before any resume.
    ``resumes``: the resume decision times (``events.csv`` ``decided_at`` of
    ``resume`` rows).  Equals the all-time drawdown until the first resume.
    With ``after_resume=False`` a resume bar keeps the drawdown from the old
    peak (what the breaker measured when it decided to resume).
    """
    v = np.asarray(equity, dtype=np.float64)
    pos = resume_positions(equity.index, resumes) + (0 if after_resume else 1)
    cuts = np.unique(np.r_[0, pos])
    cuts = cuts[cuts < len(v)]
    peak = np.empty_like(v)
    for a, b in zip(cuts, np.r_[cuts[1:], len(v)]):  # one running maximum per resume
        np.maximum.accumulate(v[a:b], out=peak[a:b])
    with np.errstate(divide="ignore", invalid="ignore"):
        dd = np.where(peak > 0, 1.0 - v / peak, 0.0)
    return pd.Series(dd, index=equity.index, name="breaker_drawdown")
