"""Numba kernel of the per-sleeve pass (arrays and scalars in, arrays out).

One read of each sleeve's equity column, in bar order, gives its returns,
its drawdown and its total return: no temporaries, whatever the size.  The
arithmetic is element by element the one of the numpy definitions it
replaces (``E_t / (E_{t-1} + F_t) - 1``, :func:`raybt.metrics.drawdown_series`,
the wealth index ``cumprod(1 + r)``), in the same order, with IEEE division
(``error_model="numpy"``: x / 0 is inf or NaN, as in numpy).
"""

from __future__ import annotations

import math

from numba import njit


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
                r = v / prev - 1.0
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
