"""Numba kernel of the per-sleeve pass (arrays and scalars in, arrays out).

One read of each sleeve's equity column, in bar order, gives its returns,
its drawdown and its total return: no temporaries, whatever the size.  A
return is the run's own definition, ``sleeve_growth_nb(E_t, E_{t-1} + F_t) - 1``
(:func:`raybt.kernels.portfolio.sleeve_growth_nb`: 0 where the base is not
positive or the ratio not finite); the rest is element by element the
arithmetic of the numpy definitions it replaces
(:func:`raybt.metrics.drawdown_series`, the wealth index ``cumprod(1 + r)``),
in the same order, with IEEE division (``error_model="numpy"``).
"""

from __future__ import annotations

import math

import numpy as np

from numba import njit

from raybt.kernels.portfolio import sleeve_growth_nb


@njit(cache=True, error_model="numpy")
def sleeve_columns_nb(V, R, flow_ptr, flow_rows, flow_amount, with_flows, want_returns,
                      want_stats, mdd_out, total_return_out):
    """Returns, max drawdown and total return of each column of ``V``.

    ``V`` (bars, b) sleeve equity; ``R`` (bars - 1, b) output returns (written
    when ``want_returns``); flows of column j are ``flow_rows[flow_ptr[j]:
    flow_ptr[j + 1]]`` (bars >= 1, ascending) with ``flow_amount``.  With
    ``want_stats``: without flows the drawdown is that of the equity
    (positive fraction below the running peak, 0 where the peak is not
    positive, NaN ignored) and the total return ``last / first - 1`` (NaN
    when first is 0); with flows both come from the wealth index of the
    finite returns (``max(1 - wealth / peak)`` with the start as a peak, and
    ``prod(1 + r) - 1``).  Needs ``want_returns`` when ``with_flows``.
    """
    T, b = V.shape
    for j in range(b):
        p = flow_ptr[j]
        p_end = flow_ptr[j + 1]
        peak = -math.inf
        mdd = math.nan
        skip = math.inf  # values >= peak * skip cannot deepen the drawdown (see below)
        wealth = 1.0
        wpeak = 1.0
        wmdd = 0.0
        wskip = 1.0 + 1e-9
        for t in range(T):
            v = V[t, j]
            if t >= 1 and want_returns:
                prev = V[t - 1, j]
                if p < p_end and flow_rows[p] == t:
                    prev = prev + flow_amount[p]
                    p += 1
                r = sleeve_growth_nb(v, prev) - 1.0  # the one definition of a sleeve's own return
                R[t - 1, j] = r
                if want_stats and with_flows:
                    g = 1.0 + r if math.isfinite(r) else 1.0
                    wealth = wealth * g
                    if wealth > wpeak or math.isnan(wealth):  # np.maximum: NaN wins
                        wpeak = wealth
                    # 1 - wealth / wpeak can only exceed the deepest drawdown so far
                    # when wealth < wpeak (1 - wmdd) (1 + 1e-9): skip the division
                    # otherwise (the margin dwarfs rounding: the maximum is exact)
                    if not wealth >= wpeak * wskip:
                        dd = 1.0 - wealth / wpeak
                        if dd > wmdd or math.isnan(dd):  # np.max: NaN wins
                            wmdd = dd
                            wskip = (1.0 - wmdd) * (1.0 + 1e-9)
            if want_stats and not with_flows:
                if v > peak or math.isnan(v) or math.isnan(peak):  # np.maximum.accumulate
                    peak = v if not math.isnan(peak) else peak
                if not (peak > 0 and v >= peak * skip):  # as for the wealth index above
                    dd = 1.0 - v / peak if peak > 0 else 0.0
                    if not math.isnan(dd) and (math.isnan(mdd) or dd > mdd):  # Series.max skips NaN
                        mdd = dd
                        skip = (1.0 - mdd) * (1.0 + 1e-9) if mdd >= 0 else math.inf
        if want_stats:
            if with_flows:
                mdd_out[j] = wmdd
                total_return_out[j] = wealth - 1.0
            else:
                mdd_out[j] = mdd
                first = V[0, j]
                total_return_out[j] = V[T - 1, j] / first - 1.0 if first != 0 else math.nan


@njit(cache=True, error_model="numpy")
def period_growth_nb(R, ends, out):
    """Compounded return of each column of ``R`` over consecutive row periods.

    ``R`` (rows, b) per-bar simple returns; period p covers rows
    ``[ends[p - 1], ends[p])`` (``ends[-1]`` = 0 before the first);
    ``out[p, j] = prod(1 + R[rows, j]) - 1`` over the finite returns, in row
    order (a non-finite return, a sleeve at zero equity, counts as 0, as in
    the wealth index above).  One read of each column.
    """
    n_periods = len(ends)
    b = R.shape[1]
    for j in range(b):
        start = 0
        for p in range(n_periods):
            g = 1.0
            for t in range(start, ends[p]):
                r = R[t, j]
                if math.isfinite(r):
                    g = g * (1.0 + r)
            out[p, j] = g - 1.0
            start = ends[p]


@njit(cache=True, error_model="numpy")
def trade_groups_nb(reason, side, n_sides, pnl, hold_ns, out):
    """Per (reason, side) pair of trades (group ``reason * n_sides + side``;
    a trade with code -1 in either is left out) the sums ``out[:, g]`` =
    count, wins (pnl > 0), total pnl, gains, losses (as a positive sum),
    losing trades, holding time (ns); one pass."""
    for i in range(len(reason)):
        if reason[i] < 0 or side[i] < 0:
            continue
        g = reason[i] * n_sides + side[i]
        p = pnl[i]
        out[0, g] += 1.0
        if p > 0:
            out[1, g] += 1.0
            out[3, g] += p
        elif p < 0:
            out[4, g] -= p
            out[5, g] += 1.0
        out[2, g] += p
        out[6, g] += hold_ns[i]


@njit(cache=True)
def mean_std_nb(x):
    """``(mean, sample std)`` of ``x`` in two passes (as ``np.mean``/``np.std(ddof=1)``
    up to summation order); NaN std below two values."""
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    s = 0.0
    for v in x:
        s += v
    mean = s / n
    if n < 2:
        return mean, math.nan
    ss = 0.0
    for v in x:
        d = v - mean
        ss += d * d
    return mean, math.sqrt(ss / (n - 1))


@njit(cache=True)
def grid_positions_nb(lut, t0, step, index_ns, times_ns, out):
    """``out[i]``: the bar of ``times_ns[i]`` through the lookup table ``lut``
    of grid steps (``(t - t0) // step``), or -1 when it is not a bar of
    ``index_ns``; returns the number of such misses."""
    misses = 0
    span = len(lut)
    for i in range(len(times_ns)):
        d = times_ns[i] - t0
        k = d // step
        if d < 0 or k >= span or d % step != 0:
            out[i] = -1
            misses += 1
            continue
        pos = lut[k]
        if index_ns[pos] != times_ns[i]:
            out[i] = -1
            misses += 1
        else:
            out[i] = pos
    return misses


@njit(cache=True, error_model="numpy")
def trade_costs_nb(asset, signal, pnl, commission, units, contract_size, spread, slippage, out):
    """Per asset (``asset`` codes, -1 left out) the sums ``out[:, a]`` =
    trades, net pnl, commission, spread cost, slippage cost; a fill that
    pays spread and slippage costs ``(spread / 2 + slippage) * units *
    contract_size``: every entry, and the exit when ``signal``."""
    for i in range(len(asset)):
        a = asset[i]
        if a < 0:
            continue
        size = units[i] * contract_size[a] * (2.0 if signal[i] else 1.0)
        out[0, a] += 1.0
        out[1, a] += pnl[i]
        out[2, a] += commission[i]
        out[3, a] += size * (spread[a] / 2.0)
        out[4, a] += size * slippage[a]


@njit(cache=True, error_model="numpy")
def exposure_steps_nb(asset, short, units, entry_price, enter, leave, contract_size, leverage,
                      steps, per_asset):
    """The changes of long and short notional and of margin at each bar
    (``steps[k, bar]``: +amount at the entry bar, -amount at the exit bar)
    and, per asset, notional and margin times the bars held
    (``per_asset[0 | 1, a]``); notional ``|units * entry_price * contract_size|``,
    margin notional / leverage."""
    for i in range(len(asset)):
        a = asset[i]
        if a < 0:
            continue
        notional = abs(units[i] * entry_price[i] * contract_size[a])
        margin = notional / leverage[a]
        k = 1 if short[i] else 0
        steps[k, enter[i]] += notional
        steps[k, leave[i]] -= notional
        steps[2, enter[i]] += margin
        steps[2, leave[i]] -= margin
        held = leave[i] - enter[i]
        per_asset[0, a] += notional * held
        per_asset[1, a] += margin * held


@njit(cache=True)
def holding_counts_nb(hold):
    """``(unit, counts)``: the shortest positive holding time and the number
    of trades at each whole multiple of it (``counts[k]``: holding ``k *
    unit``), or ``(unit, empty)`` when some holding time is not a whole
    multiple or the multiples run beyond 64 million."""
    unit = 0
    top = 0
    for h in hold:
        if h > 0 and (unit == 0 or h < unit):
            unit = h
        if h > top:
            top = h
    if unit == 0:
        counts = np.zeros(1, np.int64)
        counts[0] = len(hold)
        return 1, counts
    if top // unit > 64_000_000:
        return unit, np.zeros(0, np.int64)
    counts = np.zeros(top // unit + 1, np.int64)
    for h in hold:
        if h % unit != 0:
            return unit, np.zeros(0, np.int64)
        counts[h // unit] += 1
    return unit, counts
