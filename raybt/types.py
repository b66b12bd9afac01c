"""Kernel-facing types: integer codes and numpy record dtypes.

Everything the numba kernel reads or writes is one of these record arrays,
one record per asset:

* ``PARAM_DT``   strategy + broker parameters (see ``spec/mean_reversion.md``);
* ``STATE_DT``   the complete per-asset simulation state between two chunks;
* ``INSTR_DT``   the coordinator's per-chunk instructions for one asset;
* ``TRADE_DT``   one closed trade.

Flags are stored as int64 (0/1) so the records stay plain numeric structs.
Bar indices in the kernel are *local* to the asset's own bar array.
"""

from __future__ import annotations

import numpy as np

# --- integer codes -----------------------------------------------------------

LONG = 1
SHORT = -1
FLAT = 0

# pending order decided at a close, filled at the next open
PENDING_NONE = 0
PENDING_EXIT = 1
PENDING_LONG = 2
PENDING_SHORT = 3

SIZING_FIXED = 0
SIZING_RISK = 1
SIZING_NAMES = ("fixed", "risk")

EXIT_SL = 0
EXIT_TP = 1
EXIT_SIGNAL = 2
EXIT_END = 3
EXIT_STOPOUT = 4
EXIT_BREAKER = 5
EXIT_REASON_NAMES = ("sl", "tp", "signal", "end", "stopout", "breaker")


# Tolerance on z-score comparisons (spec: "z within 1e-9 of the threshold").
Z_TOLERANCE = 1e-9
# Tolerance inside lot rounding: floor(x / lot + 1e-9) * lot.
LOT_EPSILON = 1e-9

# --- record dtypes -------------------------------------------------------------

PARAM_DT = np.dtype(
    [
        ("bb_period", np.int64),  # n, bars in the Bollinger window (>= 2)
        ("entry_z", np.float64),  # entry threshold, in standard deviations
        ("exit_z", np.float64),  # exit threshold, in standard deviations
        ("atr_period", np.int64),  # m, bars in the ATR mean (>= 1)
        ("sl_atr", np.float64),  # stop-loss distance in ATRs
        ("tp_atr", np.float64),  # take-profit distance in ATRs
        ("allow_short", np.int64),  # 0/1
        ("max_hold_bars", np.int64),  # 0 = off
        ("initial_cash", np.float64),  # initial_capital * weight, currency
        ("sizing", np.int64),  # SIZING_FIXED / SIZING_RISK
        ("size", np.float64),  # units for fixed sizing
        ("risk_per_trade", np.float64),  # fraction of equity risked at the SL
        ("lot_size", np.float64),  # units are rounded down to this (<= 0: none)
        ("contract_size", np.float64),  # currency per price unit per unit
        ("leverage", np.float64),  # margin held = notional / leverage
        ("stop_out_level", np.float64),  # close when equity < level * margin
        ("commission", np.float64),  # fraction of notional, each side
        ("spread", np.float64),  # price units, full spread
        ("slippage", np.float64),  # price units, each fill
    ],
    align=True,
)

STATE_DT = np.dtype(
    [
        ("next_bar", np.int64),  # local index of the next bar to simulate
        ("cash", np.float64),  # realised account balance, currency
        ("side", np.int64),  # LONG / SHORT / FLAT
        ("units", np.float64),
        ("entry_price", np.float64),  # fill price incl. spread/slippage
        ("entry_bar", np.int64),  # local bar index of the entry fill
        ("entry_commission", np.float64),
        ("margin", np.float64),  # margin held, fixed at entry, currency
        ("stop_loss", np.float64),  # price level
        ("take_profit", np.float64),  # price level
        ("pending", np.int64),  # PENDING_* order for the next open
        ("pending_dsl", np.float64),  # sl_atr * ATR of the signal bar
        ("pending_dtp", np.float64),  # tp_atr * ATR of the signal bar
        ("flatten_pending", np.int64),  # breaker flatten at the next bar's open
        ("last_equity", np.float64),  # equity at the last simulated close
        # rolling window sums for a fast z-score (see kernels/indicators.py)
        ("roll_ref", np.float64),  # shift: sums are of (close - roll_ref)
        ("roll_s1", np.float64),
        ("roll_s2", np.float64),
        ("roll_age", np.int64),  # bars since the sums were rebuilt exactly
        ("equal_run", np.int64),  # consecutive closes equal to the previous one
    ],
    align=True,
)

INSTR_DT = np.dtype(
    [
        ("size_multiplier", np.float64),  # applied to new entries' units
        ("halted", np.int64),  # 1: no new entries in this chunk
        ("flatten", np.int64),  # 1: close any open trade at the next open
        ("capital_adjustment", np.float64),  # cash moved into (+) the sleeve
        # portfolio exposure cap: a new entry's margin may not exceed this
        # (currency; +inf = only the spec's cap, margin <= equity)
        ("max_margin", np.float64),
    ],
    align=True,
)

TRADE_DT = np.dtype(
    [
        ("asset", np.int64),  # asset index within its group
        ("side", np.int64),  # LONG / SHORT
        ("units", np.float64),
        ("entry_bar", np.int64),  # local bar index
        ("entry_price", np.float64),
        ("exit_bar", np.int64),  # local bar index
        ("exit_price", np.float64),
        ("exit_reason", np.int64),  # EXIT_*
        ("pnl", np.float64),  # net of both commissions, currency
        ("commission", np.float64),  # entry + exit commission, currency
    ],
    align=True,
)


def neutral_instructions(n_assets: int) -> np.ndarray:
    """Instructions that change nothing: multiplier 1, not halted, no flatten, no cap."""
    instr = np.zeros(n_assets, dtype=INSTR_DT)
    instr["size_multiplier"] = 1.0
    instr["max_margin"] = np.inf
    return instr
