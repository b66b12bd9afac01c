"""The mean-reversion strategy on a leveraged broker, one chunk at a time.

Implements ``shared/spec/mean_reversion.md`` exactly. The unit of work is a
*shard*: several assets, each with its own float64 bar arrays (typed lists,
one entry per asset, so the caller's columns are used without a copy), each
bar carrying its position on the common (union) timeline. A call advances
every asset of the shard over the union positions ``[t_start, t_end)``:

* inputs: bars, ``PARAM_DT`` params, ``INSTR_DT`` instructions (one per asset,
  in force for the whole chunk);
* state: ``STATE_DT`` records, read at the start and written back at the end,
  so a run can stop at any chunk boundary and resume exactly;
* outputs: ``equity_out[a, t - t_start]`` = asset a's equity at union position
  t (an asset with no bar at t carries its last equity forward), and the trades
  closed in the chunk in ``trades_out[a, :trade_counts[a]]`` (capacity: at most
  one trade closes per bar, so ``t_end - t_start`` slots per asset suffice).

Portfolio instructions (interpretation of the spec's brief section):

1. At the start of the chunk ``capital_adjustment`` is added to the cash.
2. A ``halted`` or ``flatten`` chunk cancels a pending *entry* decided at the
   previous close (a pending signal exit still fills).
3. ``flatten`` closes any open trade at the asset's first open in or after the
   chunk (reason ``breaker``, no spread/slippage), after a pending signal exit
   has filled at that open.
4. The ``size_multiplier`` applied is the one of the chunk in which the entry
   fills; ``halted`` blocks entry decisions at the closes of the chunk's bars.
5. ``max_margin`` (an extension for the portfolio's per-asset exposure cap)
   lowers the margin budget of new entries from ``equity`` to
   ``min(equity, max_margin)``; +inf leaves the spec's behaviour unchanged.

Units: prices in quote currency per unit, cash/equity/PnL in account
currency; commission is a fraction of notional; spread and slippage are price
units.

How an asset's bars are advanced (:func:`advance_asset_work_nb`), for speed
without changing a number (``tests/test_kernel_identical.py`` compares every
output bit for bit with the kernel as of commit f7a5f7f):

* bars go in blocks of ``Z_BLOCK_BARS``; the z-scores of a block's bars are
  computed first, in a pass of their own (:func:`rolling_zscores_nb`: they
  depend on the closes only), into a work row;
* the strategy then walks the block. A flat bar with nothing pending only
  tests z against the entry thresholds, and a bar of a trade entered earlier
  where no stop, stop-out or exit decision fires only updates the equity;
  each kind has a short loop of its own. Every other bar (fills, exits, the
  breaker, the last bar) takes the full step, the spec's events 1-7 in order;
* equity slots are indexed directly (consecutive union positions) or written
  compactly and spread over the union positions at the end (assets with gaps);
* with fixed sizing, the entry units are computed once per chunk and the
  margin cap is evaluated only when it may bind.
"""

from __future__ import annotations

import math

import numpy as np

from numba import njit, prange

from raybt.kernels.indicators import ZS_Z, atr_nb, rolling_zscores_nb, zscore_work_nb
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


@njit(cache=True)
def floor_lot_nb(units, lot_size):
    """Round units down to whole lots: floor(x / lot + 1e-9) * lot (lot <= 0: none).

    The floor stays a float (``np.floor``): ``math.floor`` gives an int64 in
    numba, which wraps past ~9.2e18 lots and made a huge size trade nothing."""
    if lot_size <= 0.0:
        return units
    return np.floor(units / lot_size + LOT_EPSILON) * lot_size


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


# Bars per block: the z-scores of a block's bars are computed in one pass into
# a work row, which the strategy pass then reads (it stays in L1 in between).
Z_BLOCK_BARS = 512


@njit(cache=True)
def advance_asset_nb(
    asset, open_, high, low, close, union_pos, union_base, off, n_bars, p, st, ins,
    t_start, t_end, equity_row, trades,
):
    """Advance one asset over union positions [t_start, t_end); return #trades closed.

    The asset's bars are ``[off, off + n_bars)`` of ``open_`` .. ``close``;
    bar ``j`` sits at union position ``union_pos[off + j]``, or, when
    ``union_pos`` is empty (the asset's bars are consecutive positions of
    the union timeline), at ``union_base + j``. ``equity_row`` (currency,
    ``t_end - t_start`` slots) receives the equity at every union position
    of the chunk, ``trades`` the trades closed in it. See
    :func:`advance_asset_work_nb`, which this calls with a fresh work array.
    """
    return advance_asset_work_nb(
        asset, open_, high, low, close, union_pos, union_base, off, n_bars, p, st, ins,
        t_start, t_end, equity_row, trades, zscore_work_nb(Z_BLOCK_BARS),
    )


@njit(cache=True)
def advance_asset_work_nb(
    asset, open_, high, low, close, union_pos, union_base, off, n_bars, p, st, ins,
    t_start, t_end, equity_row, trades, work,
):
    """:func:`advance_asset_nb` with a caller's work array (``zscore_work_nb(Z_BLOCK_BARS)``).

    Work is done block by block (``Z_BLOCK_BARS`` bars): first the z-score
    of every bar of the block (:func:`rolling_zscores_nb`, which depends on
    the closes only), then the strategy and broker over the block's bars.
    Most bars need little of the strategy: flat with nothing pending (only
    the entry test on z) or in a trade where no stop, stop-out or exit
    decision fires; each has a short loop of its own, and every other bar
    (fills, exits, flatten, the last bar) takes the full step, the spec's
    order of events 1-7.
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
    m = p.atr_period
    cs = p.contract_size
    commission = p.commission
    half_spread = p.spread / 2
    slippage = p.slippage
    entry_z = p.entry_z
    exit_z = p.exit_z
    long_entry_below = -entry_z - Z_TOLERANCE  # long entry when z < this
    short_entry_above = entry_z + Z_TOLERANCE  # short entry when z > this
    long_exit_from = exit_z - Z_TOLERANCE  # long exit when z >= this
    short_exit_to = -exit_z + Z_TOLERANCE  # short exit when z <= this
    sl_atr = p.sl_atr
    tp_atr = p.tp_atr
    allow_short = p.allow_short != 0
    # the short-entry test without the allow_short flag (z > inf never holds)
    short_signal_above = short_entry_above if allow_short else math.inf
    max_hold_bars = p.max_hold_bars
    stop_out_level = p.stop_out_level
    halted = ins.halted != 0
    size_multiplier = ins.size_multiplier
    max_margin = ins.max_margin
    last_bar = n_bars - 1
    # Fixed sizing: the units of entry_units_nb before its margin cap, and after
    # its final rounding when the cap does not bind (the same operations, done
    # once per chunk). The cap binds when units > budget * leverage / (fill *
    # contract_size); it is taken as not binding only with a relative margin of
    # 1e-12, far above the rounding of either side of that comparison.
    fixed_units = floor_lot_nb(p.size, p.lot_size) * size_multiplier
    fixed_sizing = p.sizing == SIZING_FIXED and fixed_units >= 0.0
    fixed_units_floored = floor_lot_nb(fixed_units, p.lot_size)
    leverage_cut = p.leverage * (1.0 - 1e-12)
    # entry decisions at closes j with entry_from <= j < entry_until (none when halted)
    entry_from = m - 1
    entry_until = -1 if halted else last_bar

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
    # the bar whose close orders the max-hold exit of the open trade (never when off)
    no_hold_limit = np.iinfo(np.int64).max
    hold_exit_bar = entry_bar + max_hold_bars - 1 if max_hold_bars > 0 else no_hold_limit
    # stop-out when the equity at a close is below this (currency)
    stop_out_equity = stop_out_level * margin

    # --- the chunk's bars [j, j_stop) and their equity slots -----------------
    width = t_end - t_start
    if dense:
        j_stop = min(n_bars, t_end - union_base)
        eq_base = union_base - t_start  # bar k's equity goes to equity_row[eq_base + k]
        lead = eq_base + j
    else:
        j_stop = j
        while j_stop < n_bars and union_pos[off + j_stop] < t_end:
            j_stop += 1
        # written compactly first (bar k at k - j), spread over the positions after the loop
        eq_base = -j
        lead = 0
    if j_stop <= j:
        j_stop = j
        lead = width
    elif (union_base + j if dense else union_pos[off + j]) < t_start:
        # equity slots are written by position: a bar before the chunk has none
        raise ValueError("advance_asset_nb: the asset's next bar lies before t_start (a chunk was skipped)")
    for k in range(min(lead, width)):  # union positions before the asset's first bar in the chunk
        equity_row[k] = last_equity
    j_first = j
    start_equity = last_equity

    n_trades = 0
    while j < j_stop:
        block_start = j
        block_end = min(j_stop, j + Z_BLOCK_BARS)
        # --- z of the block's bars into the work row ------------------------
        roll_ref, roll_s1, roll_s2, roll_age, equal_run = rolling_zscores_nb(
            close, off, j, block_end, n, entry_z, exit_z, roll_ref, roll_s1, roll_s2, roll_age, equal_run,
            work,
        )
        # --- the strategy over the block: z from the work row, equity written
        while j < block_end:
            if (pending == PENDING_NONE) & (flatten_pending == 0):
                if side == FLAT:
                    # --- flat, nothing to fill: the next entry signal ---------
                    while j < block_end:
                        z = work[ZS_Z, np.uint64(j - block_start)]
                        equity_row[np.uint64(eq_base + j)] = cash
                        if (z < long_entry_below) | (z > short_signal_above):
                            if (entry_from <= j) & (j < entry_until):
                                pending = PENDING_LONG if z < long_entry_below else PENDING_SHORT
                                atr = atr_nb(high, low, close, off, j, m)
                                pending_dsl = sl_atr * atr
                                pending_dtp = tp_atr * atr
                                j += 1
                                break
                        j += 1
                    last_equity = cash
                    continue
                if entry_bar < j:
                    # --- in a trade entered earlier: bars where nothing happens
                    quiet_end = min(block_end, last_bar)
                    while j < quiet_end:
                        g = np.uint64(off + j)
                        z = work[ZS_Z, np.uint64(j - block_start)]
                        c = close[g]
                        o = open_[g]
                        if side == LONG:
                            equity = cash + (c - entry_price) * units * cs
                            event = ((o <= stop_loss) | (o >= take_profit) | (low[g] <= stop_loss)
                                     | (high[g] >= take_profit) | (z >= long_exit_from))
                        else:
                            equity = cash + (entry_price - c) * units * cs
                            event = ((o >= stop_loss) | (o <= take_profit) | (high[g] >= stop_loss)
                                     | (low[g] <= take_profit) | (z <= short_exit_to))
                        if event | (equity < stop_out_equity) | (j >= hold_exit_bar):
                            break  # the full step below
                        equity_row[np.uint64(eq_base + j)] = equity
                        last_equity = equity
                        j += 1
                    if j == block_end:
                        continue

            # --- the full step for bar j: the spec's events 1-7 --------------
            g = np.uint64(off + j)
            z = work[ZS_Z, np.uint64(j - block_start)]
            o = open_[g]
            h = high[g]
            lo = low[g]
            c = close[g]
            # At most one trade closes per bar (a pending exit and a pending
            # entry never coexist), so steps 1-5 only choose the exit; it is
            # booked once.
            exit_reason = -1
            exit_price = 0.0

            # 1. pending order fills at the open: signal exit, then entry
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
                if fixed_sizing and fill > 0.0 and (
                        fixed_units * (fill * cs) < (cash if cash <= max_margin else max_margin) * leverage_cut):
                    # the cap on the margin is far from binding: the chunk's fixed units
                    new_units = fixed_units_floored
                else:
                    new_units = entry_units_nb(p, fill, cash, pending_dsl, size_multiplier, max_margin)
                if new_units > 0.0:
                    side = LONG if pending == PENDING_LONG else SHORT
                    units = new_units
                    entry_price = fill
                    entry_bar = j
                    if max_hold_bars > 0:
                        hold_exit_bar = entry_bar + max_hold_bars - 1
                    entry_commission = commission * fill * units * cs
                    cash = cash - entry_commission
                    margin = units * fill * cs / p.leverage
                    stop_out_equity = stop_out_level * margin
                    if side == LONG:
                        stop_loss = fill - pending_dsl
                        take_profit = fill + pending_dtp
                    else:
                        stop_loss = fill + pending_dsl
                        take_profit = fill - pending_dtp
            pending = PENDING_NONE

            if side != FLAT and exit_reason < 0:
                if flatten_pending != 0:
                    # portfolio breaker: flatten at this open, no spread
                    exit_reason = EXIT_BREAKER
                    exit_price = o
                elif entry_bar < j:
                    # 2. gap through a stop at the open (earlier entries)
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
                    # 3. intrabar stops at exact levels, stop-loss first
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
                    # 4. stop-out at the close; 5. end of data
                    equity = cash + unrealised_pnl_nb(side, entry_price, c, units, cs)
                    if equity < stop_out_equity:
                        exit_reason = EXIT_STOPOUT
                        exit_price = c
                    elif j == last_bar:
                        exit_reason = EXIT_END
                        exit_price = c
            flatten_pending = 0
            if exit_reason >= 0:
                cash = close_trade_nb(trades, n_trades, asset, side, units, entry_bar, entry_price,
                                      entry_commission, j, exit_price, exit_reason, cash, cs, commission)
                n_trades += 1
                side = FLAT

            # 6. decisions at the close
            if side != FLAT:
                exit_now = j >= hold_exit_bar
                want_z = not exit_now
            else:
                exit_now = False
                want_z = pending == PENDING_NONE and entry_from <= j and j < entry_until
            if want_z and not math.isnan(z):
                if side == LONG:
                    exit_now = z >= long_exit_from
                elif side == SHORT:
                    exit_now = z <= short_exit_to
                elif z < long_entry_below:
                    pending = PENDING_LONG
                elif allow_short and z > short_entry_above:
                    pending = PENDING_SHORT
                if pending == PENDING_LONG or pending == PENDING_SHORT:
                    atr = atr_nb(high, low, close, off, j, m)
                    pending_dsl = sl_atr * atr
                    pending_dtp = tp_atr * atr
            if exit_now:
                pending = PENDING_EXIT

            # 7. equity at the close
            if side != FLAT:
                last_equity = cash + unrealised_pnl_nb(side, entry_price, c, units, cs)
            else:
                last_equity = cash
            equity_row[np.uint64(eq_base + j)] = last_equity
            j += 1

    if dense:
        for k in range(max(0, eq_base + j), width):
            equity_row[k] = last_equity
    else:
        # spread the compact values over the union positions, last bar first
        # (bar k's value, at k - j_first, is read before any write reaches it)
        stop = width
        for k in range(j - 1, j_first - 1, -1):
            value = equity_row[k - j_first]
            pos = union_pos[off + k] - t_start
            for q in range(pos, stop):
                equity_row[q] = value
            stop = pos
        for q in range(stop):  # union positions before the asset's first bar in the chunk
            equity_row[q] = start_equity

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
    work = zscore_work_nb(Z_BLOCK_BARS)
    for a in range(union_base.shape[0]):
        close = closes[a]
        trade_counts[a] = advance_asset_work_nb(
            a, opens[a], highs[a], lows[a], close, union_pos[a], union_base[a], 0, close.shape[0],
            params[a], state[a], instructions[a], t_start, t_end,
            equity_out[a], trades_out[a], work,
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
        trade_counts[a] = advance_asset_work_nb(
            a, opens[a], highs[a], lows[a], close, union_pos[a], union_base[a], 0, close.shape[0],
            params[a], state[a], instructions[a], t_start, t_end,
            equity_out[a], trades_out[a], zscore_work_nb(Z_BLOCK_BARS),
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
