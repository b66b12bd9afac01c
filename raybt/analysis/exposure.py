"""Exposure, leverage and margin over time, and rebalancing turnover (pure functions, numpy).

Exposure is rebuilt from the trades and each asset's parameters
(``run_info.json`` ``asset_params``), as the broker of the spec defines it:
a trade holds ``notional = units * entry_price * contract_size`` (account
currency, at its entry fill) and ``margin = notional / leverage`` (fixed
when the trade opens) from the close of its entry bar until its exit bar:
at the close of bar ``t`` it is open when ``entry_time <= t < exit_time``.
Gross exposure is the sum of |notional| of the open trades, net exposure
longs minus shorts, leverage gross exposure / portfolio equity, margin in
use the sum of the open trades' margins (the broker's ``margin held``).
Notional is at the entry price (the run folder does not keep the marks).

Each series is one ``np.bincount`` of +notional at the entry bar and
-notional at the exit bar, then a cumulative sum: no loop per bar or trade.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from raybt.analysis.nb import exposure_steps_nb, grid_positions_nb
from raybt.analysis.trades import asset_param_arrays, trade_arrays

__all__ = ["bar_positions", "exposure_frame", "exposure_summary", "rebalance_turnover"]

#: the trades' columns the exposure is built from
EXPOSURE_COLUMNS = ("asset", "side", "units", "entry_time", "entry_price", "exit_time")
#: a lookup table of bar positions is built when the index spans at most this many steps per bar
_LUT_SPAN = 8


def _ns(values) -> np.ndarray:
    return pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns").asi8


def bar_positions(index_ns: np.ndarray, times_ns: np.ndarray) -> np.ndarray:
    """``np.searchsorted(index_ns, times_ns, side="left")`` for a sorted
    ``index_ns``, faster when the times are bars of the index: when the
    index sits on a grid of its smallest spacing (a calendar with gaps
    included, spanning at most :data:`_LUT_SPAN` grid steps per bar) a
    lookup table from grid step to bar gives each time that is a bar its
    position in one gather; the others are searched."""
    index_ns = np.asarray(index_ns, dtype=np.int64)
    times_ns = np.asarray(times_ns, dtype=np.int64)
    n = len(index_ns)
    if n < 2 or len(times_ns) < 1024:
        return np.searchsorted(index_ns, times_ns, side="left")
    t0 = index_ns[0]
    step = int(np.diff(index_ns).min())
    span = (int(index_ns[-1]) - int(t0)) // step + 1 if step > 0 else 0
    offsets = index_ns - t0
    if step <= 0 or span > _LUT_SPAN * n or (offsets % step).any():
        return np.searchsorted(index_ns, times_ns, side="left")
    lut = np.zeros(span, dtype=np.int64)
    lut[offsets // step] = np.arange(n)
    pos = np.empty(len(times_ns), dtype=np.int64)
    if grid_positions_nb(lut, t0, step, index_ns, times_ns, pos):  # not bars: searched
        miss = pos < 0
        pos[miss] = np.searchsorted(index_ns, times_ns[miss], side="left")
    return pos


def exposure_frame(trades, index, asset_params: dict | None,
                   names: list) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(series, per_asset)``: per bar of ``index`` (the portfolio equity's
    timestamps) ``long``, ``short``, ``gross``, ``net`` notional and
    ``margin`` (account currency); per asset ``mean_gross`` and
    ``mean_margin`` (averages over all bars).  ``(None, None)`` without
    ``asset_params`` (exposure cannot be known without contract sizes and
    leverage), or when the trades lack a column of :data:`EXPOSURE_COLUMNS`.
    ``trades``: the trades table or its
    :class:`raybt.analysis.trades.TradeArrays`; one numba pass
    (:func:`raybt.analysis.nb.exposure_steps_nb`) and a cumulative sum."""
    p = asset_param_arrays(asset_params, names, ("contract_size", "leverage"))
    if p is None:
        return None, None
    idx_ns = _ns(pd.DatetimeIndex(index))
    n = len(idx_ns)
    t = trade_arrays(trades, names)
    if t is not None and set(t.missing) & set(EXPOSURE_COLUMNS):
        return None, None
    steps = np.zeros((3, n + 1))
    held = np.zeros((2, len(names)))
    if t is not None:
        enter = bar_positions(idx_ns, t.entry_ns)
        leave = bar_positions(idx_ns, t.exit_ns)
        exposure_steps_nb(t.asset, t.side == 1, t.units, t.entry_price, enter, leave,
                          p["contract_size"], p["leverage"], steps, held)
    level = np.cumsum(steps[:, :n], axis=1)
    # a closed book returns to exactly 0, not to a rounding residue
    level[np.abs(level) < 1e-9 * max(1.0, float(np.abs(steps).max(initial=0.0)))] = 0.0
    long_, short_, margin = level
    series = pd.DataFrame({"long": long_, "short": short_, "gross": long_ + short_,
                           "net": long_ - short_, "margin": margin}, index=index)
    per = pd.DataFrame({"mean_gross": held[0] / max(n, 1), "mean_margin": held[1] / max(n, 1)},
                       index=pd.Index(names, name="asset"))
    return series, per


def exposure_summary(series: pd.DataFrame, equity: pd.Series) -> tuple[dict, pd.DataFrame]:
    """``(summary, ratios)``: ``ratios`` adds ``leverage`` (gross / equity)
    and ``margin_to_equity`` per bar; the summary has the mean and maximum of
    gross exposure, leverage, margin and margin / equity (``max_<key>`` and
    ``max_<key>_at``, its time), of net exposure the largest in absolute
    value (``max_abs_net``, signed), and ``time_in_market``: the share of
    bars with a trade open at the close."""
    eq = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        lev = np.where(eq > 0, series["gross"].to_numpy() / eq, math.nan)
        mte = np.where(eq > 0, series["margin"].to_numpy() / eq, math.nan)
    ratios = series.assign(leverage=lev, margin_to_equity=mte)
    out = {}
    for key in ("gross", "net", "leverage", "margin_to_equity", "margin"):
        v = ratios[key].to_numpy()
        fin = np.isfinite(v)
        out[f"mean_{key}"] = float(v[fin].mean()) if fin.any() else math.nan
        top = f"max_abs_{key}" if key == "net" else f"max_{key}"  # net: the largest either way
        if fin.any():
            i = int(np.nanargmax(np.abs(v) if key == "net" else v))
            out[top], out[f"{top}_at"] = float(v[i]), series.index[i].isoformat()
        else:
            out[top], out[f"{top}_at"] = math.nan, None
    out["time_in_market"] = float((series["gross"].to_numpy() > 0).mean()) if len(series) else math.nan
    return out, ratios


def rebalance_turnover(multipliers: pd.DataFrame | None, equity: pd.Series) -> pd.DataFrame:
    """One row per chunk whose start moved cash between sleeves: ``time``
    (chunk start), ``moved`` (currency moved, ``sum |capital_adjustment| / 2``:
    what leaves some sleeves arrives in others), ``turnover`` (``moved`` over
    the portfolio equity at the close before the chunk: the one-way share of
    the portfolio reallocated), ``assets`` (sleeves adjusted)."""
    cols = ["time", "moved", "turnover", "assets"]
    if multipliers is None or len(multipliers) == 0 or "capital_adjustment" not in multipliers:
        return pd.DataFrame(columns=cols)
    adj = multipliers["capital_adjustment"].to_numpy(dtype=np.float64)
    moved = adj != 0
    if not moved.any():
        return pd.DataFrame(columns=cols)
    key = "chunk" if "chunk" in multipliers.columns else "chunk_start"
    rows = np.flatnonzero(moved)
    m = pd.DataFrame({"k": multipliers[key].to_numpy()[rows], "abs": np.abs(adj[rows]), "row": rows})
    g = m.groupby("k", sort=True).agg(row=("row", "first"), moved=("abs", "sum"), assets=("abs", "size"))
    g["moved"] = g["moved"] / 2.0
    g["t"] = _ns(multipliers["chunk_start"].iloc[g["row"].to_numpy()])  # one time parsed per chunk
    g = g.sort_values("t", kind="stable")
    idx_ns = _ns(pd.DatetimeIndex(equity.index))
    pos = np.clip(np.searchsorted(idx_ns, g["t"].to_numpy(), side="left") - 1, 0, len(idx_ns) - 1)
    eq = np.asarray(equity, dtype=np.float64)[pos]
    with np.errstate(divide="ignore", invalid="ignore"):
        turnover = np.where(eq > 0, g["moved"].to_numpy() / eq, math.nan)
    times = pd.DatetimeIndex(g["t"].to_numpy().view("datetime64[ns]")).tz_localize("UTC")
    return pd.DataFrame({"time": times, "moved": g["moved"].to_numpy(), "turnover": turnover,
                         "assets": g["assets"].to_numpy().astype(np.int64)})
