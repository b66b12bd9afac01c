"""Pure portfolio risk rules used by the coordinator (numpy, scipy BLAS and small numba helpers).

Units: drawdown is a positive fraction below a running peak (0.12 = 12 %);
multipliers and factors are plain multiples of the configured position size;
equities and margins are in account currency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.blas import dgemm


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


def step_breaker(state: BreakerState, path_max: float, path_last: float, policy: BreakerPolicy):
    """Advance the breaker over one chunk's portfolio equity (its max and last value); decide the next chunk.

    The breaker's peak is the running maximum of equity since the start (or
    since the last resume: on resume it re-arms with its peak reset to the
    current equity, otherwise a flattened portfolio would re-trip at once).
    Drawdown is measured at the end of the chunk. Flatten only on the trip.
    """
    peak = max(state.peak, float(path_max))
    last = float(path_last)
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


def clusters_from_correlation(corr: np.ndarray, valid: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of ``corr > threshold`` among ``valid`` assets (others stay alone)."""
    from raybt.kernels import dense_components_nb

    linked = (corr > threshold) & np.outer(valid, valid)
    np.fill_diagonal(linked, False)
    return dense_components_nb(linked)


def cluster_factors(labels: np.ndarray) -> np.ndarray:
    """1 / (size of each asset's cluster)."""
    if len(labels) == 0:
        return np.ones(0)
    sizes = np.bincount(labels, minlength=len(labels))
    return 1.0 / sizes[labels]


class RollingBlockMoments:
    """Rolling first and second moments of block-summed asset returns, updated per chunk.

    The coordinator's correlation estimate. Per-bar returns are summed over
    blocks of ``block`` union-timeline positions aligned to the timeline
    (block j = positions ``[j*block, (j+1)*block)``; with 5-minute bars,
    clock hours); the window is the last ``window_bars // block`` complete
    blocks (a block still filling at a chunk end waits for the next chunk).
    Instead of re-reading the window every chunk, the sums ``s = sum x`` and
    ``S = sum x x^T`` over the window's blocks are updated as blocks enter and
    leave, and recomputed exactly from the window every time it has turned
    over once, so rounding does not accumulate. Everything is deterministic:
    the same appends give bit-identical estimates, whatever the engine.
    Non-finite returns count as 0.
    """

    def __init__(self, window_bars: int, n_assets: int, block: int = CORRELATION_BLOCK_BARS):
        self.block = max(int(block), 1)
        self.capacity = max(int(window_bars) // self.block, 3)
        self.n_assets = int(n_assets)
        self.ring = np.zeros((self.capacity, self.n_assets))
        self.count = 0  # blocks ever completed
        self.partial = np.zeros(self.n_assets)
        self.partial_block = -1  # id of the block being filled, -1 if none
        self.s = np.zeros(self.n_assets)
        self.S = np.zeros((self.n_assets, self.n_assets), order="F")  # Fortran order: BLAS updates it in place
        self.since_rebuild = 0

    @property
    def n_blocks(self) -> int:
        return min(self.count, self.capacity)

    def to_arrays(self) -> dict:
        """The whole state as plain arrays (a checkpoint; :meth:`from_arrays` rebuilds it exactly)."""
        return {"ring": self.ring.copy(), "partial": self.partial.copy(), "s": self.s.copy(),
                "S": np.array(self.S, order="F"),
                "counters": np.array([self.block, self.capacity, self.n_assets, self.count, self.partial_block,
                                      self.since_rebuild], dtype=np.int64)}

    @classmethod
    def from_arrays(cls, arrays: dict) -> "RollingBlockMoments":
        block, capacity, n_assets, count, partial_block, since_rebuild = (int(v) for v in arrays["counters"])
        moments = cls.__new__(cls)
        moments.block, moments.capacity, moments.n_assets = block, capacity, n_assets
        moments.count, moments.partial_block, moments.since_rebuild = count, partial_block, since_rebuild
        moments.ring = np.array(arrays["ring"], dtype=np.float64)
        moments.partial = np.array(arrays["partial"], dtype=np.float64)
        moments.s = np.array(arrays["s"], dtype=np.float64)
        moments.S = np.array(arrays["S"], dtype=np.float64, order="F")
        if moments.ring.shape != (capacity, n_assets) or moments.S.shape != (n_assets, n_assets):
            raise ValueError("correlation state has the wrong shape")
        return moments

    def append_chunk(self, equity: np.ndarray, previous: np.ndarray, t_start: int) -> tuple[float, float]:
        """Add one chunk's sleeve equities (assets x bars from union position ``t_start``).

        ``previous``: each sleeve's equity before the chunk (transfers
        included). Returns the portfolio equity path's (max, last), the path
        summed as :mod:`raybt.chunk_digest` sums it.
        """
        from raybt.chunk_digest import digest_chunk, path_extremes, portfolio_path

        if equity.shape[1] == 0:
            return -np.inf, np.nan
        digest = digest_chunk(equity, np.zeros(len(equity)), 0, t_start, previous, self.partial,
                              self.partial_block, self.block)
        self.push_chunk(digest.returns, digest.first_block, t_start, equity.shape[1])
        return path_extremes(portfolio_path([digest], len(equity)))

    def push_chunk(self, sums: np.ndarray, first_id: int, t_start: int, width: int) -> None:
        """Add one chunk's block-summed returns (:func:`~raybt.kernels.portfolio.block_returns_nb`, every asset)."""
        if width == 0:
            return
        last_id = first_id + len(sums) - 1
        if (t_start + width) % self.block == 0:
            complete, self.partial_block = sums, -1
        else:
            complete, self.partial, self.partial_block = sums[:-1], sums[-1].copy(), last_id
        self._push(complete)

    def _push(self, blocks: np.ndarray) -> None:
        if len(blocks) == 0:
            return
        if len(blocks) > self.capacity:
            blocks = blocks[-self.capacity:]
        k = len(blocks)
        rows = (self.count + np.arange(k)) % self.capacity
        evicted = self.ring[rows]  # slots never filled hold zeros, which change no sum
        self.ring[rows] = blocks
        self.count += k
        self.since_rebuild += k
        if self.since_rebuild >= self.capacity:
            window = np.asfortranarray(self.ring[: self.n_blocks])
            self.s = window.sum(axis=0)
            self.S = dgemm(1.0, window, window, trans_a=True)
            self.since_rebuild = 0
            return
        self.s = self.s + (blocks.sum(axis=0) - evicted.sum(axis=0))
        # S += B^T B - E^T E as one in-place BLAS call: [B; -E]^T [B; E]
        signed = np.asfortranarray(np.concatenate([blocks, -evicted]))
        rows = np.asfortranarray(np.concatenate([blocks, evicted]))
        self.S = dgemm(1.0, signed, rows, beta=1.0, c=self.S, trans_a=True, overwrite_c=True)

    def correlation(self):
        """(Pearson correlation matrix, valid mask) of the window's block returns; None with < 3 blocks."""
        m = self.n_blocks
        if m < 3:
            return None
        mean = self.s / m
        cov = self.S - m * np.outer(mean, mean)
        var = np.diag(cov).copy()
        valid = self.valid()
        std = np.sqrt(np.where(valid, var, 1.0))
        return cov / np.outer(std, std), valid

    def valid(self) -> np.ndarray:
        """Assets whose block returns vary over the window (the others cannot correlate)."""
        m = self.n_blocks
        var = np.diag(self.S) - self.s * self.s / m
        return var > np.abs(np.diag(self.S)) * 1e-12

    def clusters(self, threshold: float) -> np.ndarray | None:
        """Cluster labels (correlation above ``threshold``, single linkage); None before 3 blocks.

        Equal to ``clusters_from_correlation(*self.correlation(), threshold)``
        up to rounding at the threshold, computed in one numba pass over the
        sums (no n x n temporaries: 1,000 assets cost about 1 ms).
        """
        from raybt.kernels.graph import correlation_components_nb

        if self.n_blocks < 3:
            return None
        return correlation_components_nb(self.S.T, self.s, float(self.n_blocks),  # S is symmetric: .T is C-ordered
                                         float(threshold), self.valid())

    def factors(self, threshold: float) -> np.ndarray:
        """Correlation factor per asset: 1 / (size of its cluster); all 1 before 3 blocks."""
        labels = self.clusters(threshold)
        return np.ones(self.n_assets) if labels is None else cluster_factors(labels)


# --- exposure, multipliers, rebalancing -------------------------------------------------

def exposure_max_margin(portfolio_equity: float, max_entry_margin: float | None) -> float:
    """Margin cap (currency) of any single asset's new entry; +inf when off."""
    if max_entry_margin is None:
        return float("inf")
    return float(max_entry_margin) * max(float(portfolio_equity), 0.0)


def combine_multipliers(base_size, portfolio_risk, correlation, drawdown) -> np.ndarray:
    """Per-asset size multiplier = base size x portfolio risk x correlation x drawdown."""
    return (np.asarray(base_size, float) * np.asarray(portfolio_risk, float)
            * np.asarray(correlation, float) * np.asarray(drawdown, float))


_NS_PER_DAY = 86_400 * 10**9


def rebalance_due(prev_ns: int, next_ns: int, frequency: str) -> bool:
    """True when the chunk starting at ``next_ns`` opens a new UTC day/ISO week/month.

    Integer arithmetic on nanoseconds since the epoch (called once per chunk:
    no timestamp objects). ISO weeks start on Monday; 1970-01-01 was a
    Thursday, so ``(day + 3) // 7`` counts Monday-to-Sunday weeks.
    """
    if frequency == "none":
        return False
    a, b = int(prev_ns) // _NS_PER_DAY, int(next_ns) // _NS_PER_DAY  # UTC days since the epoch
    if frequency == "daily":
        return a != b
    if frequency == "weekly":
        return (a + 3) // 7 != (b + 3) // 7
    if frequency == "monthly":
        months = np.array([a, b], dtype="datetime64[D]").astype("datetime64[M]")
        return bool(months[0] != months[1])
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
