"""The strategy kernel as of commit f7a5f7f, frozen for tests (not part of the package).

``git show f7a5f7f:raybt/kernels/indicators.py`` followed by ``git show
f7a5f7f:raybt/kernels/mean_reversion.py``, unchanged except for the module
docstrings and the import of the indicators (both files are in this one
module), and for one fix made since: the rolled window sums are ill-conditioned
when the peak ``(close - ref)**2`` they have held since their rebuild (not only
the window's mean of it) exceeds ``ILL_CONDITIONED_RATIO`` times the variance
(``roll_peak`` below; hypothesis found 1e-4 prices that moved by 1e-8, then two
closes 1e-14 apart, where the rolled z was -3 instead of -1 and a trade opened
that the spec does not). ``tests/test_kernel_identical.py`` runs it next to the package's
kernel on the same inputs and asserts that equity, every trade field and the
final state are equal bit for bit: the package's kernel may be rewritten for
speed, never so that a number changes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from raybt.types import (
    EXIT_BREAKER,
    EXIT_END,
    EXIT_SIGNAL,
    EXIT_SL,
    EXIT_STOPOUT,
    EXIT_TP,
    FLAT,
    LONG,
    LOT_EPSILON,
    PENDING_EXIT,
    PENDING_LONG,
    PENDING_NONE,
    PENDING_SHORT,
    SHORT,
    SIZING_FIXED,
    Z_TOLERANCE,
)


# --- raybt/kernels/indicators.py @ f7a5f7f ------------------------------
# Rebuild the rolling sums exactly from the window every this many bars.
ROLL_REBUILD_BARS = 64
# The fast z decides a threshold comparison only when it is at least this far
# (relative to max(1, |threshold|)) from the threshold. Its worst-case error on
# a well-conditioned window is below 1e-10.
Z_GUARD = 1e-6
# A window with E[(x - ref)^2] / var above this is ill-conditioned for the
# rolling formula: use the exact z instead.
ILL_CONDITIONED_RATIO = 1e3


@njit(cache=True)
def exact_zscore_nb(close, off, j, n):
    """Exact z of the window ``close[off+j-n+1 .. off+j]`` (caller ensures sd > 0)."""
    start = off + j - n + 1
    total = 0.0
    for k in range(start, off + j + 1):
        total = total + close[k]
    mean = total / n
    squares = 0.0
    for k in range(start, off + j + 1):
        dev = close[k] - mean
        squares = squares + dev * dev
    sd = math.sqrt(squares / n)
    return (close[off + j] - mean) / sd


@njit(cache=True)
def rebuild_window_sums_nb(close, off, j, n):
    """Exact shifted sums of the window ending at local bar j: (ref, s1, s2)."""
    ref = close[off + j]
    s1 = 0.0
    s2 = 0.0
    for k in range(off + j - n + 1, off + j + 1):
        dev = close[k] - ref
        s1 = s1 + dev
        s2 = s2 + dev * dev
    return ref, s1, s2


@njit(cache=True)
def fast_zscore_nb(close_j, ref, s1, s2, inv_n):
    """z from the shifted window sums; NaN when the window is ill-conditioned.

    ``s1 = sum(x - ref)``, ``s2 = sum((x - ref)**2)`` over the window's n
    closes, ``inv_n = 1 / n``.
    """
    mean_dev = s1 * inv_n
    mean_square = s2 * inv_n
    var = mean_square - mean_dev * mean_dev
    if var <= 0.0 or mean_square > ILL_CONDITIONED_RATIO * var:
        return math.nan
    return (close_j - ref - mean_dev) / math.sqrt(var)


@njit(cache=True)
def guard_band_nb(threshold):
    """Half-width of the band around ``threshold`` where a rolling z cannot decide."""
    return Z_GUARD * max(1.0, abs(threshold))


@njit(cache=True)
def undecidable_zscore_nb(z, abs_entry_z, entry_band, abs_exit_z, exit_band):
    """True when a rolling z is NaN or inside the guard band of +-entry_z or +-exit_z.

    The thresholds come in +- pairs, so the test is on |z|; written so that a
    NaN z (every comparison false) counts as undecidable.
    """
    abs_z = abs(z)
    return not (abs(abs_z - abs_entry_z) >= entry_band and abs(abs_z - abs_exit_z) >= exit_band)


@njit(cache=True)
def true_range_nb(high, low, close, off, j):
    """TR at local bar j: high-low at the asset's first bar, else Wilder's TR."""
    g = off + j
    hl = high[g] - low[g]
    if j == 0:
        return hl
    prev_close = close[g - 1]
    hc = abs(high[g] - prev_close)
    lc = abs(low[g] - prev_close)
    return max(hl, max(hc, lc))


@njit(cache=True)
def atr_nb(high, low, close, off, j, m):
    """Simple mean of the last m true ranges ending at local bar j (j >= m-1)."""
    total = 0.0
    for k in range(j - m + 1, j + 1):
        total = total + true_range_nb(high, low, close, off, k)
    return total / m


# --- raybt/kernels/mean_reversion.py @ f7a5f7f --------------------------


@njit(cache=True)
def floor_lot_nb(units, lot_size):
    """Round units down to whole lots: floor(x / lot + 1e-9) * lot (lot <= 0: none)."""
    if lot_size <= 0.0:
        return units
    return math.floor(units / lot_size + LOT_EPSILON) * lot_size


@njit(cache=True)
def unrealised_pnl_nb(side, entry_price, price, units, contract_size):
    """Open-trade PnL marked at ``price`` (currency)."""
    if side == LONG:
        return (price - entry_price) * units * contract_size
    return (entry_price - price) * units * contract_size


@njit(cache=True)
def entry_units_nb(p, fill, cash, dsl, size_multiplier, max_margin):
    """Units for an entry filling at ``fill`` with the sleeve flat (equity = cash).

    The spec's cap keeps margin <= equity; the portfolio's exposure cap
    ``max_margin`` (+inf when off) can lower that budget further.
    """
    equity = cash
    if p.sizing == SIZING_FIXED:
        units = p.size
    elif dsl > 0.0:
        units = p.risk_per_trade * equity / (dsl * p.contract_size)
    else:
        return 0.0
    units = floor_lot_nb(units, p.lot_size)
    units = units * size_multiplier
    if fill <= 0.0:
        return 0.0
    margin_budget = equity if equity <= max_margin else max_margin
    cap = margin_budget * p.leverage / (fill * p.contract_size)
    if units > cap:
        units = cap
    return floor_lot_nb(units, p.lot_size)


@njit(cache=True)
def close_trade_nb(
    trades, n_trades, asset, side, units, entry_bar, entry_price, entry_commission,
    exit_bar, exit_price, reason, cash, contract_size, commission,
):
    """Book the exit of the open trade at ``exit_price``; return the new cash."""
    gross = unrealised_pnl_nb(side, entry_price, exit_price, units, contract_size)
    exit_commission = commission * exit_price * units * contract_size
    cash = cash + gross
    cash = cash - exit_commission
    rec = trades[n_trades]
    rec.asset = asset
    rec.side = side
    rec.units = units
    rec.entry_bar = entry_bar
    rec.entry_price = entry_price
    rec.exit_bar = exit_bar
    rec.exit_price = exit_price
    rec.exit_reason = reason
    rec.pnl = gross - entry_commission - exit_commission
    rec.commission = entry_commission + exit_commission
    return cash


@njit(cache=True)
def advance_asset_nb(
    asset, open_, high, low, close, union_pos, union_base, off, n_bars, p, st, ins,
    t_start, t_end, equity_row, trades,
):
    """Advance one asset over union positions [t_start, t_end); return #trades closed.

    The asset's bars are ``[off, off + n_bars)`` of ``open_`` .. ``close``;
    bar ``j`` sits at union position ``union_pos[off + j]``, or, when
    ``union_pos`` is empty (the asset's bars are consecutive positions of
    the union timeline), at ``union_base + j``.
    """
    dense = union_pos.shape[0] == 0
    # --- load the state into locals (written back at the end) ---------------
    j = st.next_bar
    cash = st.cash
    side = st.side
    units = st.units
    entry_price = st.entry_price
    entry_bar = st.entry_bar
    entry_commission = st.entry_commission
    margin = st.margin
    stop_loss = st.stop_loss
    take_profit = st.take_profit
    pending = st.pending
    pending_dsl = st.pending_dsl
    pending_dtp = st.pending_dtp
    flatten_pending = st.flatten_pending
    last_equity = st.last_equity
    roll_ref = st.roll_ref
    roll_s1 = st.roll_s1
    roll_s2 = st.roll_s2
    roll_age = st.roll_age
    equal_run = st.equal_run

    n = p.bb_period
    # the peak (close - ref)**2 of the bars the rolled sums have held since their rebuild at local
    # bar j - 1 - roll_age
    roll_peak = 0.0
    if j > n - 1:
        for k in range(off + max(0, j - roll_age - n), off + j):
            roll_peak = max(roll_peak, (close[k] - roll_ref) * (close[k] - roll_ref))
    inv_n = 1.0 / n
    m = p.atr_period
    cs = p.contract_size
    commission = p.commission
    half_spread = p.spread / 2
    slippage = p.slippage
    entry_z = p.entry_z
    exit_z = p.exit_z
    abs_entry_z = abs(entry_z)
    abs_exit_z = abs(exit_z)
    entry_band = guard_band_nb(entry_z)
    exit_band = guard_band_nb(exit_z)
    sl_atr = p.sl_atr
    tp_atr = p.tp_atr
    allow_short = p.allow_short != 0
    max_hold_bars = p.max_hold_bars
    stop_out_level = p.stop_out_level
    halted = ins.halted != 0
    size_multiplier = ins.size_multiplier
    max_margin = ins.max_margin

    # --- chunk-start instructions ------------------------------------------
    if ins.capital_adjustment != 0.0:
        cash = cash + ins.capital_adjustment
        if side != FLAT:
            last_equity = cash + unrealised_pnl_nb(side, entry_price, close[off + j - 1], units, cs)
        else:
            last_equity = cash
    if ins.flatten != 0:
        flatten_pending = 1
    if (halted or ins.flatten != 0) and (pending == PENDING_LONG or pending == PENDING_SHORT):
        pending = PENDING_NONE

    n_trades = 0
    width = t_end - t_start
    out = 0
    while j < n_bars:
        t = union_base + j if dense else union_pos[off + j]
        if t >= t_end:
            break
        while out < t - t_start:  # union positions where this asset has no bar
            equity_row[out] = last_equity
            out += 1
        g = off + j
        o = open_[g]
        h = high[g]
        lo = low[g]
        c = close[g]

        # --- indicators: equal-close run, rolling window sums, z ----------
        if j > 0 and c == close[g - 1]:
            equal_run += 1
        else:
            equal_run = 0
        z = math.nan
        if j >= n - 1:
            rebuild = j == n - 1 or roll_age >= ROLL_REBUILD_BARS
            if not rebuild:
                dev_new = c - roll_ref
                dev_old = close[g - n] - roll_ref
                roll_s1 = roll_s1 + (dev_new - dev_old)
                roll_s2 = roll_s2 + (dev_new * dev_new - dev_old * dev_old)
                roll_age += 1
                roll_peak = max(roll_peak, dev_new * dev_new)
                z = fast_zscore_nb(c, roll_ref, roll_s1, roll_s2, inv_n)
                roll_mean_dev = roll_s1 * inv_n
                if roll_peak > ILL_CONDITIONED_RATIO * (roll_s2 * inv_n - roll_mean_dev * roll_mean_dev):
                    z = math.nan
                rebuild = undecidable_zscore_nb(z, abs_entry_z, entry_band, abs_exit_z, exit_band)
            if rebuild:
                roll_ref, roll_s1, roll_s2 = rebuild_window_sums_nb(close, off, j, n)
                roll_age = 0
                roll_peak = 0.0
                for k in range(g - n + 1, g + 1):
                    roll_peak = max(roll_peak, (close[k] - roll_ref) * (close[k] - roll_ref))
                z = fast_zscore_nb(c, roll_ref, roll_s1, roll_s2, inv_n)
            if equal_run >= n - 1:  # all n closes equal: sd is zero, z undefined
                z = math.nan

        # At most one trade closes per bar (a pending exit and a pending entry
        # never coexist), so steps 1-5 only choose the exit; it is booked once.
        exit_reason = -1
        exit_price = 0.0

        # --- 1. pending order fills at the open: signal exit, then entry ----
        if pending == PENDING_EXIT:
            exit_reason = EXIT_SIGNAL
            if side == LONG:
                exit_price = o - half_spread - slippage
            else:
                exit_price = o + half_spread + slippage
        elif pending == PENDING_LONG or pending == PENDING_SHORT:
            if pending == PENDING_LONG:
                fill = o + half_spread + slippage
            else:
                fill = o - half_spread - slippage
            new_units = entry_units_nb(p, fill, cash, pending_dsl, size_multiplier, max_margin)
            if new_units > 0.0:
                side = LONG if pending == PENDING_LONG else SHORT
                units = new_units
                entry_price = fill
                entry_bar = j
                entry_commission = commission * fill * units * cs
                cash = cash - entry_commission
                margin = units * fill * cs / p.leverage
                if side == LONG:
                    stop_loss = fill - pending_dsl
                    take_profit = fill + pending_dtp
                else:
                    stop_loss = fill + pending_dsl
                    take_profit = fill - pending_dtp
        pending = PENDING_NONE

        if side != FLAT and exit_reason < 0:
            if flatten_pending != 0:
                # --- portfolio breaker: flatten at this open, no spread ----
                exit_reason = EXIT_BREAKER
                exit_price = o
            elif entry_bar < j:
                # --- 2. gap through a stop at the open (earlier entries) ---
                if side == LONG:
                    if o <= stop_loss:
                        exit_reason = EXIT_SL
                    elif o >= take_profit:
                        exit_reason = EXIT_TP
                else:
                    if o >= stop_loss:
                        exit_reason = EXIT_SL
                    elif o <= take_profit:
                        exit_reason = EXIT_TP
                exit_price = o
            if exit_reason < 0:
                # --- 3. intrabar stops at exact levels, stop-loss first ----
                if side == LONG:
                    if lo <= stop_loss:
                        exit_reason = EXIT_SL
                        exit_price = stop_loss
                    elif h >= take_profit:
                        exit_reason = EXIT_TP
                        exit_price = take_profit
                else:
                    if h >= stop_loss:
                        exit_reason = EXIT_SL
                        exit_price = stop_loss
                    elif lo <= take_profit:
                        exit_reason = EXIT_TP
                        exit_price = take_profit
            if exit_reason < 0:
                # --- 4. stop-out at the close; 5. end of data --------------
                equity = cash + unrealised_pnl_nb(side, entry_price, c, units, cs)
                if equity < stop_out_level * margin:
                    exit_reason = EXIT_STOPOUT
                    exit_price = c
                elif j == n_bars - 1:
                    exit_reason = EXIT_END
                    exit_price = c
        flatten_pending = 0
        if exit_reason >= 0:
            cash = close_trade_nb(trades, n_trades, asset, side, units, entry_bar, entry_price,
                                  entry_commission, j, exit_price, exit_reason, cash, cs, commission)
            n_trades += 1
            side = FLAT

        # --- 6. decisions at the close --------------------------------------
        if side != FLAT:
            exit_now = max_hold_bars > 0 and j - entry_bar + 1 >= max_hold_bars
            want_z = not exit_now
        else:
            exit_now = False
            want_z = pending == PENDING_NONE and j + 1 < n_bars and not halted and j >= m - 1
        if want_z and not math.isnan(z):
            if side == LONG:
                exit_now = z >= exit_z - Z_TOLERANCE
            elif side == SHORT:
                exit_now = z <= -exit_z + Z_TOLERANCE
            elif z < -entry_z - Z_TOLERANCE:
                pending = PENDING_LONG
            elif allow_short and z > entry_z + Z_TOLERANCE:
                pending = PENDING_SHORT
            if pending == PENDING_LONG or pending == PENDING_SHORT:
                atr = atr_nb(high, low, close, off, j, m)
                pending_dsl = sl_atr * atr
                pending_dtp = tp_atr * atr
        if exit_now:
            pending = PENDING_EXIT

        # --- 7. equity at the close -----------------------------------------
        if side != FLAT:
            last_equity = cash + unrealised_pnl_nb(side, entry_price, c, units, cs)
        else:
            last_equity = cash
        equity_row[out] = last_equity
        out += 1
        j += 1

    while out < width:
        equity_row[out] = last_equity
        out += 1

    # --- write the state back ----------------------------------------------
    st.next_bar = j
    st.cash = cash
    st.side = side
    st.units = units if side != FLAT else 0.0
    st.entry_price = entry_price
    st.entry_bar = entry_bar
    st.entry_commission = entry_commission
    st.margin = margin if side != FLAT else 0.0
    st.stop_loss = stop_loss
    st.take_profit = take_profit
    st.pending = pending
    st.pending_dsl = pending_dsl
    st.pending_dtp = pending_dtp
    st.flatten_pending = flatten_pending
    st.last_equity = last_equity
    st.roll_ref = roll_ref
    st.roll_s1 = roll_s1
    st.roll_s2 = roll_s2
    st.roll_age = roll_age
    st.equal_run = equal_run
    return n_trades


@njit(cache=True)
def advance_shard_nb(
    opens, highs, lows, closes, union_pos, union_base, params, state, instructions,
    t_start, t_end, equity_out, trades_out, trade_counts,
):
    """Advance every asset of a shard over union positions [t_start, t_end).

    Serial over assets (for Ray actors: one thread each). One entry per
    asset: ``opens``/``highs``/``lows``/``closes`` numba typed lists of
    read-only float64 arrays (the asset's bars, zero-copy views of its
    columns), ``union_pos`` a typed list of int64 arrays (each bar's union
    position; empty when the bars are consecutive union positions from
    ``union_base[a]``), ``union_base`` int64 (n_assets,), params PARAM_DT
    (n_assets,), state STATE_DT (n_assets,) updated in place, instructions
    INSTR_DT (n_assets,); equity_out float64 (n_assets, t_end-t_start)
    written, trades_out TRADE_DT (n_assets, >= t_end-t_start) written,
    trade_counts int64 (n_assets,) written.
    """
    for a in range(union_base.shape[0]):
        close = closes[a]
        trade_counts[a] = advance_asset_nb(
            a, opens[a], highs[a], lows[a], close, union_pos[a], union_base[a], 0, close.shape[0],
            params[a], state[a], instructions[a], t_start, t_end,
            equity_out[a], trades_out[a],
        )


# A separate function rather than njit(parallel=True)(same function): numba's
# on-disk cache is keyed by the function's bytecode, so two dispatchers of one
# Python function would share (and overwrite) one cache entry.
@njit(cache=True, parallel=True)
def advance_shard_parallel_nb(
    opens, highs, lows, closes, union_pos, union_base, params, state, instructions,
    t_start, t_end, equity_out, trades_out, trade_counts,
):
    """Same as :func:`advance_shard_nb`, assets spread over numba threads (prange)."""
    for k in prange(union_base.shape[0]):
        a = np.int64(k)  # prange counts in uint64; typed lists are indexed by int64
        close = closes[a]
        trade_counts[a] = advance_asset_nb(
            a, opens[a], highs[a], lows[a], close, union_pos[a], union_base[a], 0, close.shape[0],
            params[a], state[a], instructions[a], t_start, t_end,
            equity_out[a], trades_out[a],
        )


@njit(cache=True)
def compact_trades_nb(trades_out, trade_counts, out):
    """Copy the per-asset trade regions into ``out`` (asset by asset); return the count."""
    k = 0
    for a in range(trades_out.shape[0]):
        for i in range(trade_counts[a]):
            out[k] = trades_out[a, i]
            k += 1
    return k
