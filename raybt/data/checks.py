"""Warnings for valid but degenerate data and results (printed, never raised).

Bars that pass every rule of :mod:`raybt.data.loader` can still make a
backtest meaningless: constant prices (the Bollinger z-score is undefined,
no trade opens), bars without range (the ATR is 0, stops sit at the entry
price), prices so small that the PnL of a fixed-size position rounds to
nothing against the capital (Sharpe NaN), a spread larger than a typical
bar. :func:`degenerate_warnings` says so, one line per finding, in the
errors' style (``SOURCE: what, why``); :func:`result_warnings` does the same
for results without trades or with NaN metrics. Callers print them (prefixed
``warning:``) and keep them with the run.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd

#: share of bars from which unchanged closes / zero ranges are worth a warning
MOSTLY = 0.5
#: PnL of a typical bar move of a fixed-size position, as a fraction of the capital,
#: below which it rounds to nothing in the equity (float64 resolves ~1e-16)
NEGLIGIBLE_PNL = 1e-12
#: median close below which prices are called tiny when no parameters are given
TINY_PRICE = 1e-8
#: median bar range / median close below which the indicators work at float resolution
FLAT_RANGE = 1e-12


def _g(value: float) -> str:
    return f"{value:.4g}"


def _typical_move(close: np.ndarray) -> float:
    """The median of the nonzero bar-to-bar close moves (absolute, price units); 0.0 if none."""
    moves = np.abs(np.diff(close))
    moves = moves[moves > 0]
    return float(np.median(moves)) if len(moves) else 0.0


def degenerate_warnings(bars: pd.DataFrame, source: str, params: Mapping | None = None) -> list[str]:
    """Warning lines for validated ``bars`` (the loader's frame) that cannot give a meaningful backtest.

    ``source``: the file, or ``asset NAME``, that starts each line;
    ``params``: the asset's validated parameters (``raybt.broker``), which
    enable the checks that depend on sizing and costs. Empty when nothing
    is wrong. Findings:

    * close constant over all bars (z-score undefined: no trade), or unchanged
      from the previous bar on most bars;
    * high == low on every bar, or on most bars (ATR 0: stops at the entry price);
    * bar ranges below float resolution relative to the price;
    * prices so small that a fixed-size position's PnL rounds to nothing
      against the capital (or, without ``params``, a median close below 1e-8);
    * spread (+ 2 x slippage) at least the median bar range.
    """
    n = len(bars)
    if n < 2:
        return []
    close = bars["close"].to_numpy(dtype=np.float64)
    high = bars["high"].to_numpy(dtype=np.float64)
    low = bars["low"].to_numpy(dtype=np.float64)
    out = []
    rng = high - low
    median_close = float(np.median(close))
    median_range = float(np.median(rng))
    constant = bool(close.min() == close.max())
    if constant:
        out.append(f"{source}: close is constant ({_g(close[0])}) over all {n} bars: the Bollinger z-score is "
                   f"undefined, so no trade can open")
    else:
        unchanged = float(np.mean(close[1:] == close[:-1]))
        if unchanged >= MOSTLY:
            out.append(f"{source}: close unchanged from the previous bar on {unchanged:.0%} of bars: the z-score is "
                       f"undefined over flat windows, few or no trades")
    zero = float(np.mean(rng == 0))
    if zero == 1.0:
        out.append(f"{source}: high == low on every bar (no range): the ATR is 0, so stop-loss and take-profit "
                   f"sit at the entry price")
    elif zero >= MOSTLY:
        out.append(f"{source}: high == low on {zero:.0%} of bars: the ATR is often 0 (stops at the entry price)")
    if not constant and 0 < median_range / median_close < FLAT_RANGE:
        out.append(f"{source}: the median bar range is {_g(median_range / median_close)} of the price: the "
                   f"indicators work at float resolution")
    if params and {"sizing", "size", "contract_size", "initial_capital"} <= set(params):
        capital = float(params["initial_capital"]) * float(params.get("weight", 1.0))
        typical_move = _typical_move(close) if params["sizing"] == "fixed" else 0.0
        if typical_move > 0 and capital > 0:
            pnl = typical_move * float(params["size"]) * float(params["contract_size"])
            if pnl / capital < NEGLIGIBLE_PNL:
                out.append(f"{source}: a typical bar move ({_g(typical_move)}) x size {_g(params['size'])} x "
                           f"contract_size {_g(params['contract_size'])} is {_g(pnl)}, {_g(pnl / capital)} of the "
                           f"capital {_g(capital)}: the PnL rounds to nothing (Sharpe NaN); prices scaled wrong "
                           f"(median close {_g(median_close)})?")
        costs = float(params.get("spread", 0.0)) + 2 * float(params.get("slippage", 0.0))
        if costs > 0 and median_range > 0 and costs >= median_range:
            out.append(f"{source}: spread + 2 x slippage ({_g(costs)}) is at least the median bar range "
                       f"({_g(median_range)}): every trade pays more than a typical bar moves (price units?)")
    elif median_close < TINY_PRICE:
        out.append(f"{source}: prices are tiny (median close {_g(median_close)}): a fixed-size position's PnL "
                   f"rounds to nothing against the capital; prices scaled wrong?")
    return out


def result_warnings(metrics: Mapping[str, Mapping]) -> list[str]:
    """Warning lines for results that say nothing: ``{name: metrics}`` (``raybt.metrics``), e.g.
    ``result.metrics["assets"]`` or ``{"portfolio": result.metrics["portfolio"]}``.

    One line per name with no trades (``n_trades`` 0), per name whose
    numbers overflowed (an infinite volatility or final equity: sizes,
    leverage or contract sizes far too large), and per other name whose
    Sharpe is NaN (the equity never changed, or too few bars).
    """
    out = []
    for name, m in metrics.items():
        if not isinstance(m, Mapping):
            continue
        if m.get("n_trades") == 0:
            out.append(f"{name}: no trades")
        overflowed = [key for key in ("final_equity", "annual_volatility")
                      if isinstance(m.get(key), float) and math.isinf(m[key])]
        sharpe = m.get("sharpe")
        if overflowed:
            out.append(f"{name}: {' and '.join(k.replace('_', ' ') for k in overflowed)} overflowed to infinity "
                       f"(final equity {m.get('final_equity')!r}): are size, leverage or contract_size far too large?")
        elif isinstance(sharpe, float) and math.isnan(sharpe):
            out.append(f"{name}: Sharpe is NaN (the equity never changed, or too few bars)")
    return out
