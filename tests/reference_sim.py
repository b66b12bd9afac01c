"""Plain-Python reference of shared/spec/mean_reversion.md (for tests only).

Deliberately simple and written separately from the numba kernel: lists and
floats, indicators recomputed from their windows at every bar, one loop over
bars following the spec's numbered order of events. Formulas are evaluated
literally, left to right, as the spec writes them.

Portfolio instructions come as ``chunks``: ``[{"start": bar, "size_multiplier",
"halted", "flatten", "capital_adjustment", "max_margin"}, ...]`` (first start
0). At a chunk's first bar: cash += capital_adjustment; a halted/flatten chunk
cancels a pending entry; flatten closes an open trade at that open (reason
breaker, no spread) after a pending signal exit. Entries use the multiplier
and the exposure cap of the chunk they fill in; halted chunks decide no
entries.

``max_margin`` (currency, default +inf = off) is the portfolio's exposure cap:
a new entry's margin held may not exceed it. It is one more cap in the sizing
step where the spec caps margin held at the equity: after the size
multiplier, before the last rounding down to lots.
"""

from __future__ import annotations

import math

DEFAULTS = {
    "bb_period": 20, "entry_z": 2.0, "exit_z": 0.0, "atr_period": 14, "sl_atr": 1.5, "tp_atr": 3.0,
    "allow_short": True, "max_hold_bars": 0, "initial_capital": 100000.0, "weight": 1.0,
    "sizing": "fixed", "size": 1.0, "risk_per_trade": 0.01, "lot_size": 1.0, "contract_size": 1.0,
    "leverage": 1.0, "stop_out_level": 0.5, "commission": 0.0, "spread": 0.0, "slippage": 0.0,
}
TOL = 1e-9


def zscore(close, i, n):
    """z at bar i from the window's closes, or None (window short or all closes equal).

    Two passes over the window, on the closes' deviations from close[i]: the
    same z as from the closes themselves, but without the rounding of the
    price level. (Summing raw closes whose spread is 1e-8 of their level, the
    mean is off by ~1e-20 in price and z by ~1e-8, beyond the spec's 1e-9
    tolerance; the deviations are exact, and z comes out to ~1e-15.)
    """
    if i < n - 1:
        return None
    window = close[i - n + 1: i + 1]
    if all(x == window[0] for x in window):
        return None
    ref = close[i]
    mean = 0.0
    for x in window:
        mean = mean + (x - ref)
    mean = mean / n
    var = 0.0
    for x in window:
        var = var + ((x - ref) - mean) * ((x - ref) - mean)
    sd = math.sqrt(var / n)
    return (0.0 - mean) / sd


def true_range(high, low, close, i):
    if i == 0:
        return high[0] - low[0]
    return max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))


def atr(high, low, close, i, m):
    if i < m - 1:
        return None
    s = 0.0
    for k in range(i - m + 1, i + 1):
        s = s + true_range(high, low, close, k)
    return s / m


def floor_lot(x, lot):
    if lot <= 0:
        return x
    return math.floor(x / lot + 1e-9) * lot


def reference_run(open_, high, low, close, params=None, chunks=None):
    p = dict(DEFAULTS)
    p.update(params or {})
    o, h, l, c = list(map(float, open_)), list(map(float, high)), list(map(float, low)), list(map(float, close))
    N = len(c)
    cs = float(p["contract_size"])
    chunk_at = {int(ch["start"]): ch for ch in (chunks or [{"start": 0}])}

    cash = float(p["initial_capital"]) * float(p["weight"])
    trade = None  # dict while a trade is open
    pending = None  # None | "exit" | ("long"|"short", dSL, dTP)
    multiplier, halted, flatten_next, max_margin = 1.0, False, False, math.inf
    trades, equity = [], []

    def close_trade(j, price, reason):
        nonlocal cash, trade
        if trade["side"] == "long":
            gross = (price - trade["entry"]) * trade["units"] * cs
        else:
            gross = (trade["entry"] - price) * trade["units"] * cs
        exit_comm = p["commission"] * price * trade["units"] * cs
        cash = cash + gross
        cash = cash - exit_comm
        trades.append({
            "side": trade["side"], "units": trade["units"], "entry_bar": trade["bar"],
            "entry_price": trade["entry"], "exit_bar": j, "exit_price": price, "exit_reason": reason,
            "pnl": gross - trade["commission"] - exit_comm, "commission": trade["commission"] + exit_comm,
        })
        trade = None

    def unrealised(price):
        if trade["side"] == "long":
            return (price - trade["entry"]) * trade["units"] * cs
        return (trade["entry"] - price) * trade["units"] * cs

    for j in range(N):
        # portfolio instructions at a chunk's first bar
        if j in chunk_at:
            ch = chunk_at[j]
            multiplier = float(ch.get("size_multiplier", 1.0))
            max_margin = float(ch.get("max_margin", math.inf))
            halted = bool(ch.get("halted", False))
            flatten = bool(ch.get("flatten", False))
            cash = cash + float(ch.get("capital_adjustment", 0.0))
            if (halted or flatten) and isinstance(pending, tuple):
                pending = None
            flatten_next = flatten

        # 1. pending order at the open: signal exit first, then entry
        if pending == "exit":
            if trade["side"] == "long":
                close_trade(j, o[j] - p["spread"] / 2 - p["slippage"], "signal")
            else:
                close_trade(j, o[j] + p["spread"] / 2 + p["slippage"], "signal")
            pending = None
        elif isinstance(pending, tuple):
            side, dsl, dtp = pending
            pending = None
            if side == "long":
                fill = o[j] + p["spread"] / 2 + p["slippage"]
            else:
                fill = o[j] - p["spread"] / 2 - p["slippage"]
            equity_now = cash
            if p["sizing"] == "fixed":
                units = float(p["size"])
            elif dsl > 0:
                units = p["risk_per_trade"] * equity_now / (dsl * cs)
            else:
                units = 0.0
            units = floor_lot(units, p["lot_size"])
            units = units * multiplier
            if fill > 0:
                # margin held = units * fill * cs / leverage: <= equity, and <= the portfolio's cap
                units = min(units, equity_now * p["leverage"] / (fill * cs))
                units = min(units, max_margin * p["leverage"] / (fill * cs))
                units = floor_lot(units, p["lot_size"])
            else:
                units = 0.0
            if units > 0:
                commission = p["commission"] * fill * units * cs
                cash = cash - commission
                trade = {"side": side, "units": units, "entry": fill, "bar": j, "commission": commission,
                         "margin": units * fill * cs / p["leverage"],
                         "sl": fill - dsl if side == "long" else fill + dsl,
                         "tp": fill + dtp if side == "long" else fill - dtp}

        # breaker flatten at this open
        if flatten_next:
            if trade is not None:
                close_trade(j, o[j], "breaker")
            flatten_next = False

        # 2. gap check for a trade opened before this bar
        if trade is not None and trade["bar"] < j:
            if trade["side"] == "long":
                if o[j] <= trade["sl"]:
                    close_trade(j, o[j], "sl")
                elif o[j] >= trade["tp"]:
                    close_trade(j, o[j], "tp")
            else:
                if o[j] >= trade["sl"]:
                    close_trade(j, o[j], "sl")
                elif o[j] <= trade["tp"]:
                    close_trade(j, o[j], "tp")

        # 3. intrabar stops (stop-loss first)
        if trade is not None:
            if trade["side"] == "long":
                if l[j] <= trade["sl"]:
                    close_trade(j, trade["sl"], "sl")
                elif h[j] >= trade["tp"]:
                    close_trade(j, trade["tp"], "tp")
            else:
                if h[j] >= trade["sl"]:
                    close_trade(j, trade["sl"], "sl")
                elif l[j] <= trade["tp"]:
                    close_trade(j, trade["tp"], "tp")

        # 4. stop-out at the close
        if trade is not None and cash + unrealised(c[j]) < p["stop_out_level"] * trade["margin"]:
            close_trade(j, c[j], "stopout")

        # 5. end of data
        if trade is not None and j == N - 1:
            close_trade(j, c[j], "end")

        # 6. decisions at the close
        z = zscore(c, j, int(p["bb_period"]))
        if trade is not None:
            held = j - trade["bar"] + 1
            if p["max_hold_bars"] > 0 and held >= p["max_hold_bars"]:
                pending = "exit"
            elif z is not None:
                if trade["side"] == "long" and z >= p["exit_z"] - TOL:
                    pending = "exit"
                elif trade["side"] == "short" and z <= -p["exit_z"] + TOL:
                    pending = "exit"
        elif pending is None and j + 1 < N and not halted:
            a = atr(h, l, c, j, int(p["atr_period"]))
            if z is not None and a is not None:
                if z < -p["entry_z"] - TOL:
                    pending = ("long", p["sl_atr"] * a, p["tp_atr"] * a)
                elif p["allow_short"] and z > p["entry_z"] + TOL:
                    pending = ("short", p["sl_atr"] * a, p["tp_atr"] * a)

        # 7. equity at the close
        equity.append(cash + unrealised(c[j]) if trade is not None else cash)
    return trades, equity
