"""Batch evaluation: many (parameter set, bar span) jobs on one asset in one numba call.

A *job* is one ``PARAM_DT`` record run over one span ``[start, end)`` of the
asset's bars. Each job is its own backtest: it starts flat with a fresh
``STATE_DT`` (``raybt.broker.initial_state``: cash = initial_capital * weight,
nothing pending) and fresh indicators -- the kernel's bar index is local to
the span (``off = start``), so the Bollinger window and the ATR only see bars
of the span (the first ``bb_period - 1`` bars of a span are warm-up, exactly
as at the start of a file), and an open trade is closed at the span's last
bar (``end``). A job therefore equals ``run_backtest(bars.iloc[start:end],
params)`` trade for trade and bit for bit in equity; this is what makes the
in-sample / out-of-sample split honest (the test span never inherits a
position or indicator history from the training span).

The kernel is :func:`raybt.kernels.mean_reversion.advance_asset_nb` with
neutral portfolio instructions, called chunk by chunk over a small equity /
trades buffer (the kernel's state makes chunking exact), while the metrics
are accumulated inline -- no per-bar arrays are kept:

* equity: first value (equity at the close of the span's first bar), last
  value, PnL = last - first (``compute_metrics``' ``pnl``), total return;
* simple bar-to-bar returns ``r = E_i / E_{i-1} - 1``: compensated
  (Neumaier) sums of r and r^2 -> mean and ddof=1 standard deviation;
* drawdown below the running peak (first value counts as a peak), maximum as
  a positive fraction;
* trades: count, wins (pnl > 0), gross profit, gross loss (positive),
  commission.

Ratios that need the span's timestamps (Sharpe's ``periods_per_year``) are
finished in :func:`metrics_from_raw` in Python, with the same formulas and
operation order as :mod:`raybt.metrics`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from raybt.kernels.mean_reversion import advance_asset_nb
from raybt.metrics import DAYS_PER_YEAR, NS_PER_DAY
from raybt.types import INSTR_DT, PARAM_DT, STATE_DT, TRADE_DT, neutral_instructions

# Bars simulated per kernel call inside a job (bounds the per-job buffers).
EVAL_CHUNK = 4096

# Columns of the raw result matrix returned by the batch kernels.
RAW_COLUMNS = (
    "n_bars", "initial_equity", "final_equity", "pnl", "total_return", "ret_mean", "ret_std",
    "max_drawdown", "n_trades", "wins", "gross_profit", "gross_loss", "total_commission",
)
N_RAW = len(RAW_COLUMNS)


@njit(cache=True)
def _neumaier_add(total, comp, x):
    t = total + x
    if abs(total) >= abs(x):
        comp += (total - t) + x
    else:
        comp += (x - t) + total
    return t, comp


@njit(cache=True)
def evaluate_job_nb(open_, high, low, close, union_pos, p, st, ins, start, end, eq, trades, out):
    """Run one parameter record over bars [start, end) from the fresh state ``st``; fill ``out``.

    ``eq`` (float64) and ``trades`` (TRADE_DT) are work buffers of equal length
    (the chunk size); ``out`` receives the ``RAW_COLUMNS`` values.
    """
    n_bars = end - start
    chunk = eq.shape[0]
    first = math.nan
    prev = math.nan
    peak = math.nan
    max_dd = 0.0
    s1 = 0.0
    c1 = 0.0
    s2 = 0.0
    c2 = 0.0
    n_ret = 0
    n_trades = 0
    wins = 0
    gross_profit = 0.0
    gross_loss = 0.0
    commission = 0.0
    k = 0
    t0 = start
    while t0 < end:
        t1 = min(end, t0 + chunk)
        nt = advance_asset_nb(0, open_, high, low, close, union_pos, start, start, n_bars, p, st, ins,
                              t0, t1, eq, trades)
        for i in range(t1 - t0):
            v = eq[i]
            if k == 0:
                first = v
                peak = v
            else:
                r = v / prev - 1.0
                s1, c1 = _neumaier_add(s1, c1, r)
                s2, c2 = _neumaier_add(s2, c2, r * r)
                n_ret += 1
                if v > peak:
                    peak = v
            if peak > 0.0:
                dd = 1.0 - v / peak
            else:
                dd = 0.0
            if dd > max_dd:
                max_dd = dd
            prev = v
            k += 1
        for i in range(nt):
            pnl = trades[i].pnl
            n_trades += 1
            if pnl > 0.0:
                wins += 1
                gross_profit += pnl
            elif pnl < 0.0:
                gross_loss -= pnl
            commission += trades[i].commission
        t0 = t1
    mean = math.nan
    std = math.nan
    if n_ret >= 1:
        total1 = s1 + c1
        mean = total1 / n_ret
        if n_ret >= 2:
            total2 = s2 + c2
            var = (total2 - total1 * mean) / (n_ret - 1)
            std = math.sqrt(var) if var > 0.0 else 0.0
    out[0] = n_bars
    out[1] = first
    out[2] = prev
    out[3] = prev - first
    out[4] = prev / first - 1.0
    out[5] = mean
    out[6] = std
    out[7] = max_dd
    out[8] = n_trades
    out[9] = wins
    out[10] = gross_profit
    out[11] = gross_loss
    out[12] = commission


@njit(cache=True)
def evaluate_batch_nb(open_, high, low, close, union_pos, params, states, instr, starts, ends, chunk, out):
    """Serial batch: job k = ``params[k]`` over ``[starts[k], ends[k])``; ``out[k]`` its raw metrics.

    ``states`` are fresh STATE_DT records (one per job, consumed), ``instr``
    one neutral INSTR_DT record. Used by the Ray tasks (one CPU each).
    """
    eq = np.empty(chunk, dtype=np.float64)
    trades = np.empty(chunk, dtype=TRADE_DT)
    for k in range(params.shape[0]):
        evaluate_job_nb(open_, high, low, close, union_pos, params[k], states[k], instr[0],
                        starts[k], ends[k], eq, trades, out[k])


@njit(cache=True, parallel=True)
def evaluate_batch_parallel_nb(open_, high, low, close, union_pos, params, states, instr, starts, ends,
                               chunk, out):
    """Same as :func:`evaluate_batch_nb`, jobs spread over numba threads (prange)."""
    for k in prange(params.shape[0]):
        eq = np.empty(chunk, dtype=np.float64)
        trades = np.empty(chunk, dtype=TRADE_DT)
        evaluate_job_nb(open_, high, low, close, union_pos, params[k], states[k], instr[0],
                        starts[k], ends[k], eq, trades, out[k])


def _f64(array) -> np.ndarray:
    """C-contiguous, writable float64 (one numba signature for local, Ray and read-only inputs)."""
    return np.require(np.asarray(array, dtype=np.float64), requirements=["C", "W"])


def evaluate_jobs(ohlc, params: np.ndarray, starts, ends, *, parallel: bool = False,
                  chunk: int = EVAL_CHUNK) -> np.ndarray:
    """Raw metrics (``(n_jobs, N_RAW)`` float64) of jobs on one asset.

    ``ohlc``: (4, n_bars) array-like (open, high, low, close); ``params``:
    PARAM_DT records, one per job; ``starts``/``ends``: the job spans.
    Every job starts from a fresh state (see the module docstring).
    """
    from raybt.broker import initial_state

    ohlc = np.asarray(ohlc)
    open_, high, low, close = (_f64(ohlc[i]) for i in range(4))
    n = close.shape[0]
    params = np.require(params, dtype=PARAM_DT, requirements=["C", "W"])
    starts = np.require(np.asarray(starts, dtype=np.int64), requirements=["C", "W"])
    ends = np.require(np.asarray(ends, dtype=np.int64), requirements=["C", "W"])
    if params.shape != starts.shape or starts.shape != ends.shape or params.ndim != 1:
        raise ValueError("params, starts and ends must be 1-d and of equal length")
    if len(starts) and (starts.min() < 0 or ends.max() > n or np.any(ends - starts < 1)):
        raise ValueError("every span must satisfy 0 <= start < end <= n_bars")
    states = np.require(initial_state(params), dtype=STATE_DT, requirements=["C", "W"])
    instr = neutral_instructions(1)
    assert instr.dtype == INSTR_DT
    union_pos = np.zeros(0, dtype=np.int64)  # bar k at union position k
    out = np.empty((len(params), N_RAW), dtype=np.float64)
    if len(params):
        fn = evaluate_batch_parallel_nb if parallel else evaluate_batch_nb
        fn(open_, high, low, close, union_pos, params, states, instr, starts, ends, int(chunk), out)
    return out


def span_periods_per_year(timestamps_ns, start: int, end: int) -> float:
    """``raybt.metrics.periods_per_year`` of the equity over bars [start, end)."""
    count = end - start
    if count < 2:
        return math.nan
    years = (int(timestamps_ns[end - 1]) - int(timestamps_ns[start])) / NS_PER_DAY / DAYS_PER_YEAR
    return (count - 1) / years if years and years > 0 else math.nan


def metrics_from_raw(raw: np.ndarray, ppy) -> dict:
    """Metric columns (numpy arrays) from raw rows and each row's periods_per_year.

    Same conventions as :func:`raybt.metrics.compute_metrics`: ``sharpe`` =
    mean / std(ddof=1) * sqrt(periods_per_year), NaN for zero or non-finite std
    or fewer than 2 returns; ``win_rate`` and ``profit_factor`` NaN without
    trades, ``profit_factor`` inf with wins and no losses.
    """
    raw = np.atleast_2d(np.asarray(raw, dtype=np.float64))
    ppy = np.broadcast_to(np.asarray(ppy, dtype=np.float64), (raw.shape[0],))
    col = {name: raw[:, i] for i, name in enumerate(RAW_COLUMNS)}
    mean, std = col["ret_mean"], col["ret_std"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = np.isfinite(std) & (std != 0)
        sharpe = np.where(ok, mean / np.where(ok, std, 1.0) * np.sqrt(ppy), np.nan)
        n_trades = col["n_trades"]
        win_rate = np.where(n_trades > 0, col["wins"] / np.where(n_trades > 0, n_trades, 1), np.nan)
        gp, gl = col["gross_profit"], col["gross_loss"]
        profit_factor = np.where(gl > 0, gp / np.where(gl > 0, gl, 1.0),
                                 np.where(gp > 0, np.inf, np.nan))
        profit_factor = np.where(n_trades > 0, profit_factor, np.nan)
        avg_trade = np.where(n_trades > 0, (gp - gl) / np.where(n_trades > 0, n_trades, 1), np.nan)
    return {
        "n_bars": col["n_bars"].astype(np.int64),
        "initial_equity": col["initial_equity"],
        "final_equity": col["final_equity"],
        "pnl": col["pnl"],
        "total_return": col["total_return"],
        "sharpe": sharpe,
        "max_drawdown": col["max_drawdown"],
        "n_trades": n_trades.astype(np.int64),
        "wins": col["wins"].astype(np.int64),
        "win_rate": win_rate,
        "profit_factor": profit_factor,
        "avg_trade_pnl": avg_trade,
        "gross_profit": gp,
        "gross_loss": gl,
        "total_commission": col["total_commission"],
    }


METRIC_COLUMNS = (
    "n_bars", "initial_equity", "final_equity", "pnl", "total_return", "sharpe", "max_drawdown",
    "n_trades", "wins", "win_rate", "profit_factor", "avg_trade_pnl", "gross_profit", "gross_loss",
    "total_commission",
)


def evaluate_params(bars, param_dicts, start: int = 0, end: int | None = None, *,
                    parallel: bool = False) -> list[dict]:
    """Convenience: metrics of validated parameter dicts on ``bars[start:end]`` (a bars DataFrame)."""
    from raybt.broker import param_records

    end = len(bars) if end is None else end
    ohlc = np.vstack([bars[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close")])
    recs = param_records(list(param_dicts))
    n = len(recs)
    raw = evaluate_jobs(ohlc, recs, np.full(n, start), np.full(n, end), parallel=parallel)
    ns = bars.index.as_unit("ns").asi8
    cols = metrics_from_raw(raw, span_periods_per_year(ns, start, end))
    return [{k: v[i].item() for k, v in cols.items()} for i in range(n)]


__all__ = [
    "EVAL_CHUNK", "METRIC_COLUMNS", "RAW_COLUMNS", "evaluate_batch_nb", "evaluate_batch_parallel_nb",
    "evaluate_job_nb", "evaluate_jobs", "evaluate_params", "metrics_from_raw", "span_periods_per_year",
]
