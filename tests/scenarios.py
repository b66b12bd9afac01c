"""Hand-made bar sequences, one per rule of the spec, with hand-checked outcomes.

Bars are built from closes: open = previous close (the first bar opens at its
close), high/low = max/min(open, close) +- ``wick``, with per-bar overrides.
With bb_period 3, atr_period 2, entry_z 1 and sl_atr = tp_atr = 1, the first
eight scenarios enter long at bar 4's open 9.5 (signal at bar 3: z = -1.397)
with ATR 0.4, so SL = 9.1 and TP = 9.9.

``expect``: list of (entry_bar, exit_bar, side, exit_reason) and optionally
``units``/``prices`` = [(entry_price, exit_price)], ``pnl`` per trade, and
``final_equity``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from reference_sim import zscore  # noqa: E402


def bars(closes, wick=0.05, opens=None, highs=None, lows=None):
    c = [float(x) for x in closes]
    o = [c[0]] + c[:-1]
    for i, v in (opens or {}).items():
        o[i] = v
    h = [max(a, b) + wick for a, b in zip(o, c)]
    lo = [min(a, b) - wick for a, b in zip(o, c)]
    for i, v in (highs or {}).items():
        h[i] = v
    for i, v in (lows or {}).items():
        lo[i] = v
    return o, h, lo, c


BASE = {"bb_period": 3, "atr_period": 2, "entry_z": 1.0, "exit_z": 0.0, "sl_atr": 1.0, "tp_atr": 1.0}
WIDE = dict(BASE, sl_atr=20, tp_atr=20)
DIP = [10, 10.1, 10.0, 9.5]
_Z3 = abs(zscore(DIP, 3, 3))  # |z| at the signal bar, about 1.397


def _s(name, closes_or_bars, params, expect, chunks=None, **facts):
    o, h, lo, c = closes_or_bars
    return {"name": name, "open": o, "high": h, "low": lo, "close": c, "params": params,
            "chunks": chunks, "expect": expect, **facts}


SCENARIOS = [
    _s("long_tp_intrabar_on_entry_bar", bars(DIP + [9.95, 9.95]), BASE,
       [(4, 4, "long", "tp")], prices=[(9.5, 9.9)]),
    _s("long_sl_on_entry_bar", bars(DIP + [9.2, 9.2], lows={4: 9.0}), BASE,
       [(4, 4, "long", "sl"), (5, 5, "long", "end")], prices=[(9.5, 9.1), (9.2, 9.2)]),
    _s("long_gap_through_sl", bars(DIP + [9.45, 9.0, 9.0], opens={5: 9.0}), BASE,
       [(4, 5, "long", "sl"), (6, 6, "long", "end")], prices=[(9.5, 9.0), (9.0, 9.0)]),
    _s("long_gap_through_tp", bars(DIP + [9.45, 10.2, 10.2], opens={5: 10.2}), BASE,
       [(4, 5, "long", "tp"), (6, 6, "short", "end")], prices=[(9.5, 10.2), (10.2, 10.2)]),
    _s("both_touched_stop_loss_first", bars(DIP + [9.5, 9.5], highs={4: 10.0}, lows={4: 9.0}), BASE,
       [(4, 4, "long", "sl")], prices=[(9.5, 9.1)]),
    _s("short_tp", bars([10, 9.9, 10.0, 10.5, 10.05, 10.05]), BASE,
       [(4, 4, "short", "tp")], prices=[(10.5, 10.1)]),
    _s("short_gap_through_sl", bars([10, 9.9, 10.0, 10.5, 10.55, 11.0, 11.0], opens={5: 11.0}), BASE,
       [(4, 5, "short", "sl"), (6, 6, "short", "end")], prices=[(10.5, 11.0), (11.0, 11.0)]),
    _s("allow_short_false", bars([10, 9.9, 10.0, 10.5, 10.05, 10.05]), dict(BASE, allow_short=False), []),
    _s("signal_exit_then_reentry", bars(DIP + [9.7, 10.0, 10.2, 9.5, 9.6, 9.6]), dict(BASE, sl_atr=5, tp_atr=5),
       [(4, 6, "long", "signal"), (7, 8, "short", "signal")], prices=[(9.5, 10.0), (10.2, 9.5)]),
    _s("max_hold_exit", bars(DIP + [9.4, 9.3, 9.2, 9.1]), dict(WIDE, max_hold_bars=2),
       [(4, 6, "long", "signal"), (7, 7, "long", "end")]),
    _s("end_of_data_close", bars(DIP + [9.45, 9.42]), WIDE,
       [(4, 5, "long", "end")], prices=[(9.5, 9.42)]),
    _s("no_entry_decided_on_last_bar", bars(DIP), BASE, []),
    _s("constant_closes_no_z", bars([10] * 8), BASE, []),
    _s("z_at_threshold_within_tolerance_no_entry", bars(DIP + [9.95, 9.95]), dict(BASE, entry_z=_Z3), []),
    _s("z_beyond_threshold_by_more_than_tolerance", bars(DIP + [9.95, 9.95]), dict(BASE, entry_z=_Z3 - 2e-9),
       [(4, 4, "long", "tp")]),
    _s("stop_out_with_leverage", bars(DIP + [8.0, 8.0], lows={4: 7.9}),
       dict(WIDE, size=100, leverage=10, initial_capital=100, lot_size=0.01),
       [(4, 4, "long", "stopout")]),
    _s("commission_spread_slippage", bars(DIP + [9.7, 10.0, 10.0]),
       dict(BASE, sl_atr=5, tp_atr=5, commission=0.001, spread=0.02, slippage=0.01, size=100),
       [(4, 6, "long", "signal")], prices=[(9.52, 9.98)], pnl=[44.05]),
    _s("risk_sizing_lot_rounding", bars(DIP + [9.95, 9.95]),
       dict(BASE, sizing="risk", risk_per_trade=0.01, lot_size=0.1, contract_size=100, leverage=100,
            initial_capital=1000),
       [(4, 4, "long", "tp")], units=[0.2], pnl=[8.0]),
    _s("leverage_caps_units", bars(DIP + [9.95, 9.95]), dict(BASE, size=1000, leverage=2, initial_capital=1000),
       [(4, 4, "long", "tp")], units=[210.0], pnl=[84.0]),
    _s("contract_size_scales_pnl", bars(DIP + [9.95, 9.95]), dict(BASE, contract_size=1000, leverage=100),
       [(4, 4, "long", "tp")], pnl=[400.0]),
    _s("halted_chunk_cancels_pending_entry", bars(DIP + [9.95, 9.95]), BASE, [],
       chunks=[{"start": 0}, {"start": 4, "halted": True}]),
    _s("flatten_closes_at_open_breaker", bars(DIP + [9.45, 9.42, 9.4]), WIDE,
       [(4, 5, "long", "breaker")], prices=[(9.5, 9.45)],
       chunks=[{"start": 0}, {"start": 5, "flatten": True, "halted": True}]),
    _s("flatten_after_pending_signal_exit", bars(DIP + [9.7, 10.0, 10.1, 10.1]), dict(BASE, sl_atr=5, tp_atr=5),
       [(4, 6, "long", "signal")], prices=[(9.5, 10.0)],
       chunks=[{"start": 0}, {"start": 6, "flatten": True, "halted": True}]),
    _s("size_multiplier_and_capital_adjustment", bars(DIP + [9.95, 9.95]), dict(BASE, size=10),
       [(4, 4, "long", "tp")], units=[5.0], final_equity=100502.0,
       chunks=[{"start": 0}, {"start": 4, "size_multiplier": 0.5, "capital_adjustment": 500.0}]),
    # the portfolio's exposure cap (max_margin): fill 9.5, leverage 2, equity 1000 allows 210 units;
    # a 500 cap allows 500 * 2 / 9.5 = 105.26 -> 105
    _s("max_margin_caps_units", bars(DIP + [9.95, 9.95]), dict(BASE, size=1000, leverage=2, initial_capital=1000),
       [(4, 4, "long", "tp")], units=[105.0], pnl=[42.0], chunks=[{"start": 0, "max_margin": 500.0}]),
    # after the multiplier, then lots: 1000 -> x0.5 = 500 -> cap 105.26 -> lots of 10: 100 (not 105 x 0.5 = 52)
    _s("max_margin_after_multiplier_then_lots", bars(DIP + [9.95, 9.95]),
       dict(BASE, size=1000, leverage=2, initial_capital=1000, lot_size=10),
       [(4, 4, "long", "tp")], units=[100.0], pnl=[40.0],
       chunks=[{"start": 0}, {"start": 4, "size_multiplier": 0.5, "max_margin": 500.0}]),
    # margin of 100 units at 9.5 is exactly 950: a cap of exactly 950 leaves them whole
    _s("max_margin_exactly_the_margin", bars(DIP + [9.95, 9.95]), dict(BASE, size=100),
       [(4, 4, "long", "tp")], units=[100.0], chunks=[{"start": 0, "max_margin": 950.0}]),
    _s("max_margin_zero_no_entry", bars(DIP + [9.95, 9.95]), dict(BASE, size=100), [],
       chunks=[{"start": 0, "max_margin": 0.0}]),
    # the cap of the chunk the entry fills in counts, not the one it was decided in
    _s("max_margin_of_the_fill_chunk", bars(DIP + [9.95, 9.95]), dict(BASE, size=10),
       [(4, 4, "long", "tp")], units=[10.0], chunks=[{"start": 0, "max_margin": 0.0}, {"start": 4}]),
    _s("max_margin_of_the_fill_chunk_blocks", bars(DIP + [9.95, 9.95]), dict(BASE, size=10), [],
       chunks=[{"start": 0}, {"start": 4, "max_margin": 0.0}]),
]
