"""The coordinator's decisions as records: what it told every asset per chunk, and why; the events' columns."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: the columns of ``events``: ``drawdown`` from the portfolio's all-time peak (positive fraction);
#: ``breaker_drawdown`` the drawdown the breaker measured (from its own peak, reset at each resume) on
#: ``trip``/``resume`` rows, NaN on ``rebalance`` rows; ``equity`` the portfolio's at the decision
EVENT_COLUMNS = ("chunk", "decided_at", "event", "drawdown", "breaker_drawdown", "equity")

#: the factors of a size multiplier, in the order :class:`Decision` stores them
FACTORS = ("base", "portfolio_risk", "correlation", "drawdown", "multiplier")


class Decision(NamedTuple):
    """One chunk's decision: what the coordinator told every asset, and why."""

    chunk: int
    decided_at: int  # ns, the last bar the decision could see
    chunk_start: int  # ns, the chunk's first bar
    instructions: np.ndarray  # INSTR_DT, one per asset (global order)
    factors: np.ndarray  # (len(FACTORS), n_assets) float64
    reason: str  # '' | 'start' | 'breaker'


def multiplier_table(decisions, n_assets: int) -> dict:
    """``decisions`` (:class:`Decision`) as columns, one row per chunk and asset (global asset index)."""
    n, rows = n_assets, decisions
    if not rows:
        return {}

    def per_chunk(values):
        return np.repeat(np.asarray(values), n)

    instr = np.concatenate([r.instructions for r in rows])
    factors = np.stack([r.factors for r in rows])  # chunks x factors x assets
    table = {"chunk": per_chunk([r.chunk for r in rows]), "decided_at": per_chunk([r.decided_at for r in rows]),
             "chunk_start": per_chunk([r.chunk_start for r in rows]), "asset": np.tile(np.arange(n), len(rows)),
             "multiplier": instr["size_multiplier"].astype(np.float64)}
    for k, key in enumerate(FACTORS[:-1]):
        table[key] = factors[:, k, :].reshape(-1)
    table["halted"] = instr["halted"].astype(bool)
    table["flatten"] = instr["flatten"].astype(bool)
    table["max_margin"] = instr["max_margin"].astype(np.float64)
    table["capital_adjustment"] = instr["capital_adjustment"].astype(np.float64)
    table["reason"] = per_chunk(np.asarray([r.reason for r in rows], dtype=object))
    return table
