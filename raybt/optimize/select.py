"""Choosing one candidate per asset from a table of metrics (pure functions).

Preferences (thresholds from the grid file's ``selection:``,
:class:`~raybt.config.grid.SelectionRules`):

* ``balanced``: the highest Sharpe among candidates with
  ``max_drawdown <= rules.max_drawdown`` and ``n_trades >= rules.min_trades``;
* ``pnl``: the highest net PnL (any candidate with a finite PnL qualifies);
* ``drawdown``: the lowest max drawdown among candidates with ``pnl > 0`` and
  ``n_trades >= rules.min_trades``.

Ties are broken deterministically: ``balanced`` by higher PnL, then lower
candidate id; ``pnl`` by higher Sharpe, then lower id; ``drawdown`` by higher
PnL, then lower id (NaN counts as worst). No qualifying candidate -> ``None``
(the caller falls back to the asset's configured parameters and marks the
choice ``qualified: false``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from raybt.config.common import PREFERENCES
from raybt.config.grid import SelectionRules
from raybt.errors import ConfigError



def _col(frame: pd.DataFrame, prefix: str, name: str) -> np.ndarray:
    return frame[f"{prefix}{name}"].to_numpy(dtype=np.float64)


def _worst_last(values: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """Sort key (ascending = better) with NaN last."""
    key = -values if higher_is_better else values.copy()
    return np.where(np.isnan(key), np.inf, key)


def qualifying_mask(frame: pd.DataFrame, preference: str, rules: SelectionRules, prefix: str = "") -> np.ndarray:
    """Boolean mask of the rows that may be chosen under ``preference``."""
    pnl = _col(frame, prefix, "pnl")
    if preference == "pnl":
        return np.isfinite(pnl)
    trades = _col(frame, prefix, "n_trades")
    enough = trades >= rules.min_trades
    if preference == "balanced":
        sharpe = _col(frame, prefix, "sharpe")
        mdd = _col(frame, prefix, "max_drawdown")
        return enough & (mdd <= rules.max_drawdown) & np.isfinite(sharpe)
    if preference == "drawdown":
        mdd = _col(frame, prefix, "max_drawdown")
        return enough & (pnl > 0) & np.isfinite(mdd)
    raise ConfigError(f"unknown preference '{preference}' (use one of {', '.join(PREFERENCES)})")


def rank_candidates(frame: pd.DataFrame, preference: str, rules: SelectionRules, prefix: str = "",
                    id_column: str = "candidate") -> np.ndarray:
    """Positions (into ``frame``) of the qualifying rows, best first."""
    mask = qualifying_mask(frame, preference, rules, prefix)
    ids = frame[id_column].to_numpy(dtype=np.float64)
    pnl = _col(frame, prefix, "pnl")
    if preference == "balanced":
        keys = (ids, _worst_last(pnl, True), _worst_last(_col(frame, prefix, "sharpe"), True))
    elif preference == "pnl":
        keys = (ids, _worst_last(_col(frame, prefix, "sharpe"), True), _worst_last(pnl, True))
    else:
        keys = (ids, _worst_last(pnl, True), _worst_last(_col(frame, prefix, "max_drawdown"), False))
    order = np.lexsort(keys)  # last key is the primary one
    return order[mask[order]]


def select_candidate(frame: pd.DataFrame, preference: str, rules: SelectionRules, prefix: str = "",
                     id_column: str = "candidate"):
    """The label (index) of the best qualifying row of ``frame``, or ``None``."""
    ranked = rank_candidates(frame, preference, rules, prefix, id_column)
    return frame.index[ranked[0]] if len(ranked) else None


__all__ = ["PREFERENCES", "qualifying_mask", "rank_candidates", "select_candidate"]
