"""Pure portfolio risk rules used by the coordinator (numpy only).

Units: drawdown is a positive fraction below a running peak (0.12 = 12 %);
multipliers and factors are plain multiples of the configured position size;
equities and margins are in account currency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components


def drawdown_scale(drawdown: float, dd_scale_start: float, max_portfolio_drawdown: float,
                   dd_scale_floor: float) -> float:
    """1 up to ``dd_scale_start``, linearly down to ``dd_scale_floor`` at the limit, floor beyond."""
    if drawdown <= dd_scale_start:
        return 1.0
    if drawdown >= max_portfolio_drawdown or max_portfolio_drawdown <= dd_scale_start:
        return float(dd_scale_floor)
    frac = (drawdown - dd_scale_start) / (max_portfolio_drawdown - dd_scale_start)
    return float(1.0 - frac * (1.0 - dd_scale_floor))


# --- circuit breaker -----------------------------------------------------------------

@dataclass(frozen=True)
class BreakerPolicy:
    """When the breaker trips and how it resumes.

    ``resume``: ``never``; ``cooldown`` (after ``cooldown_chunks`` halted
    chunks); ``recovery`` (once drawdown from the breaker's peak is below
    ``resume_drawdown``).
    """

    max_portfolio_drawdown: float
    flatten: bool = True
    resume: str = "cooldown"
    cooldown_chunks: int = 5
    resume_drawdown: float = 0.1


@dataclass(frozen=True)
class BreakerState:
    tripped: bool
    chunks_since_trip: int
    peak: float  # the reference peak equity the breaker measures drawdown from


@dataclass(frozen=True)
class BreakerDecision:
    halted: bool
    flatten: bool
    event: str  # '' | 'trip' | 'resume'
    drawdown: float


def step_breaker(state: BreakerState, equity_path: np.ndarray, policy: BreakerPolicy):
    """Advance the breaker over one chunk's portfolio equity; decide the next chunk.

    The breaker's peak is the running maximum of equity since the start (or
    since the last resume: on resume it re-arms with its peak reset to the
    current equity, otherwise a flattened portfolio would re-trip at once).
    Drawdown is measured at the end of the chunk. Flatten only on the trip.
    """
    peak = max(state.peak, float(np.max(equity_path))) if len(equity_path) else state.peak
    last = float(equity_path[-1]) if len(equity_path) else peak
    drawdown = 1.0 - last / peak if peak > 0 else 0.0
    if not state.tripped:
        if drawdown > policy.max_portfolio_drawdown:
            return (BreakerState(True, 0, peak),
                    BreakerDecision(True, bool(policy.flatten), "trip", drawdown))
        return BreakerState(False, 0, peak), BreakerDecision(False, False, "", drawdown)
    halted_chunks = state.chunks_since_trip + 1
    resume = (policy.resume == "cooldown" and halted_chunks >= policy.cooldown_chunks) or (
        policy.resume == "recovery" and drawdown < policy.resume_drawdown)
    if resume:
        return BreakerState(False, 0, last), BreakerDecision(False, False, "resume", drawdown)
    return BreakerState(True, halted_chunks, peak), BreakerDecision(True, False, "", drawdown)


# --- correlation -------------------------------------------------------------------------

CORRELATION_BLOCK_BARS = 12  # one hour of 5-minute bars


def block_returns(returns: np.ndarray, block: int) -> np.ndarray:
    """Sum per-bar returns over consecutive blocks of ``block`` rows (the oldest partial block dropped)."""
    returns = np.asarray(returns, dtype=np.float64)
    if block <= 1 or len(returns) < block:
        return returns
    usable = (len(returns) // block) * block
    tail = returns[len(returns) - usable:]
    return tail.reshape(-1, block, returns.shape[1]).sum(axis=1)


def correlation_clusters(returns: np.ndarray, threshold: float, block: int = CORRELATION_BLOCK_BARS) -> np.ndarray:
    """Cluster labels: assets linked when their return correlation exceeds ``threshold``.

    Correlations are estimated on returns summed over ``block``-bar blocks
    (hourly for 5-minute bars: less microstructure noise, and a 12x smaller
    matrix product per chunk). Clusters are connected components of the
    graph (single linkage). Rows with any NaN are dropped; an asset with zero
    variance, or a window with fewer than 3 rows, stays alone.
    """
    returns = block_returns(returns, block)
    n_assets = returns.shape[1] if returns.ndim == 2 else 0
    labels = np.arange(n_assets)
    if n_assets < 2:
        return labels
    rows = returns[np.all(np.isfinite(returns), axis=1)]
    if len(rows) < 3:
        return labels
    centred = rows - rows.mean(axis=0)
    norms = np.sqrt((centred * centred).sum(axis=0))
    valid = norms > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = (centred.T @ centred) / np.outer(norms, norms)
    linked = (corr > threshold) & np.outer(valid, valid)
    np.fill_diagonal(linked, False)
    _, labels = connected_components(csr_matrix(linked), directed=False)
    return labels


def correlation_factors(returns: np.ndarray, threshold: float, block: int = CORRELATION_BLOCK_BARS) -> np.ndarray:
    """1 / (size of the asset's correlation cluster): correlated bets do not stack."""
    labels = correlation_clusters(returns, threshold, block)
    if len(labels) == 0:
        return np.ones(0)
    sizes = np.bincount(labels, minlength=len(labels))
    return 1.0 / sizes[labels]


class RollingReturns:
    """Fixed-capacity ring buffer of per-bar asset returns (``capacity`` x ``n_assets``)."""

    def __init__(self, capacity: int, n_assets: int):
        self.capacity = int(capacity)
        self.buffer = np.full((self.capacity, n_assets), np.nan)
        self.count = 0  # rows ever appended
        self.head = 0  # next row to write

    def append(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float64)
        if len(block) >= self.capacity:
            self.buffer[:] = block[-self.capacity:]
            self.head = 0
        else:
            end = self.head + len(block)
            if end <= self.capacity:
                self.buffer[self.head:end] = block
            else:
                first = self.capacity - self.head
                self.buffer[self.head:] = block[:first]
                self.buffer[: len(block) - first] = block[first:]
            self.head = end % self.capacity
        self.count += len(block)

    def window(self) -> np.ndarray:
        """The last min(count, capacity) rows in time order."""
        if self.count < self.capacity:
            return self.buffer[: self.count].copy()
        return np.concatenate([self.buffer[self.head:], self.buffer[: self.head]])


# --- exposure, multipliers, rebalancing -------------------------------------------------

def exposure_max_margin(portfolio_equity: float, max_single_asset_weight: float | None) -> float:
    """Margin cap (currency) of any single asset's new entry; +inf when off."""
    if max_single_asset_weight is None:
        return float("inf")
    return float(max_single_asset_weight) * max(float(portfolio_equity), 0.0)


def combine_multipliers(base_size, portfolio_risk, correlation, drawdown) -> np.ndarray:
    """Per-asset size multiplier = base size x portfolio risk x correlation x drawdown."""
    return (np.asarray(base_size, float) * np.asarray(portfolio_risk, float)
            * np.asarray(correlation, float) * np.asarray(drawdown, float))


def rebalance_due(prev_ns: int, next_ns: int, frequency: str) -> bool:
    """True when the chunk starting at ``next_ns`` opens a new UTC day/ISO week/month."""
    if frequency == "none":
        return False
    a, b = pd.Timestamp(prev_ns, tz="UTC"), pd.Timestamp(next_ns, tz="UTC")
    if frequency == "daily":
        return a.normalize() != b.normalize()
    if frequency == "weekly":
        return a.isocalendar()[:2] != b.isocalendar()[:2]
    if frequency == "monthly":
        return (a.year, a.month) != (b.year, b.month)
    raise ValueError(f"unknown rebalance frequency {frequency!r}")


def rebalance_adjustments(sleeve_equity: np.ndarray, target_weights: np.ndarray) -> np.ndarray:
    """Cash moves bringing each sleeve to its target share of the total.

    The moves sum to zero: the rounding residual goes to the largest move.
    """
    sleeves = np.asarray(sleeve_equity, dtype=np.float64)
    moves = np.asarray(target_weights, dtype=np.float64) * sleeves.sum() - sleeves
    if len(moves):
        moves[np.argmax(np.abs(moves))] -= moves.sum()
    return moves
