"""AssetGroup: a shard of assets advanced together, one kernel call per chunk.

Plain Python over numpy arrays (no pandas, no Ray): the in-process engine uses
it directly and the Ray actors are thin shells around it, so both paths run
exactly the same code.

Time is the common (union) timeline of the whole portfolio: ``union_pos[a]``
gives, for each bar of asset ``a``, its index on that timeline. A chunk is a
half-open range ``[t_start, t_end)`` of union positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raybt.broker import initial_state
from raybt.kernels import advance_shard_nb, advance_shard_parallel_nb, compact_trades_nb
from raybt.types import INSTR_DT, STATE_DT, TRADE_DT


@dataclass(frozen=True)
class PackedBars:
    """Bars of several assets concatenated into flat contiguous arrays.

    Asset ``a`` owns ``[offsets[a], offsets[a+1])`` of ``open``, ``high``,
    ``low``, ``close`` (float64) and ``union_pos`` (int64, strictly increasing
    within an asset).
    """

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    union_pos: np.ndarray
    offsets: np.ndarray

    @property
    def n_assets(self) -> int:
        return self.offsets.shape[0] - 1

    def n_bars(self, asset: int) -> int:
        return int(self.offsets[asset + 1] - self.offsets[asset])


def pack_bars(opens, highs, lows, closes, union_positions) -> PackedBars:
    """Concatenate per-asset arrays (lists, one entry per asset) into :class:`PackedBars`."""
    lengths = [len(c) for c in closes]
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])

    def flat(parts, dtype):
        if not parts:
            return np.zeros(0, dtype=dtype)
        return np.ascontiguousarray(np.concatenate([np.asarray(x, dtype=dtype) for x in parts]))

    return PackedBars(
        flat(opens, np.float64), flat(highs, np.float64), flat(lows, np.float64),
        flat(closes, np.float64), flat(union_positions, np.int64), offsets,
    )


@dataclass
class ChunkReport:
    """What one chunk produced for a group.

    ``equity[a, k]``: asset a's equity (currency) at union position
    ``t_start + k``; ``trades``: ``TRADE_DT`` records closed in the chunk
    (``asset`` = index within the group, bars local to the asset), asset by
    asset in exit order; ``state``: copy of the ``STATE_DT`` records after it.
    """

    t_start: int
    t_end: int
    equity: np.ndarray
    trades: np.ndarray
    state: np.ndarray

    def to_wire(self) -> tuple:
        """Plain-array tuple for transport between processes.

        Record arrays travel as raw bytes (``uint8`` views): Ray serialises a
        tuple of plain arrays several times faster than a dataclass holding
        structured arrays. :meth:`from_wire` restores the exact records.
        """
        return (self.t_start, self.t_end, self.equity, self.trades.view(np.uint8), self.state.view(np.uint8))

    @classmethod
    def from_wire(cls, wire: tuple) -> "ChunkReport":
        t_start, t_end, equity, trades, state = wire
        return cls(t_start, t_end, equity, np.ascontiguousarray(trades).view(TRADE_DT),
                   np.ascontiguousarray(state).view(STATE_DT))


class AssetGroup:
    """A shard of assets with their bars, parameters and explicit kernel state."""

    def __init__(self, bars: PackedBars, params: np.ndarray, state: np.ndarray | None = None,
                 *, parallel: bool = False):
        if params.shape != (bars.n_assets,):
            raise ValueError("one PARAM_DT record per asset is required")
        self.bars = bars
        self.params = params
        self.state = initial_state(params) if state is None else state.copy()
        self._advance = advance_shard_parallel_nb if parallel else advance_shard_nb
        self._trade_buffer = np.zeros((bars.n_assets, 0), dtype=TRADE_DT)
        self._trade_counts = np.zeros(bars.n_assets, dtype=np.int64)

    @property
    def n_assets(self) -> int:
        return self.bars.n_assets

    def get_state(self) -> np.ndarray:
        return self.state.copy()

    def set_state(self, state: np.ndarray) -> None:
        if state.dtype != STATE_DT or state.shape != (self.n_assets,):
            raise ValueError("state must be STATE_DT records, one per asset")
        self.state = state.copy()

    def step(self, t_start: int, t_end: int, instructions: np.ndarray) -> ChunkReport:
        """Advance every asset over union positions [t_start, t_end)."""
        if instructions.dtype != INSTR_DT or instructions.shape != (self.n_assets,):
            raise ValueError("instructions must be INSTR_DT records, one per asset")
        width = t_end - t_start
        if self._trade_buffer.shape[1] < width:
            self._trade_buffer = np.zeros((self.n_assets, width), dtype=TRADE_DT)
        equity = np.empty((self.n_assets, width), dtype=np.float64)
        b = self.bars
        self._advance(
            b.open, b.high, b.low, b.close, b.union_pos, b.offsets, self.params,
            self.state, instructions, t_start, t_end, equity, self._trade_buffer,
            self._trade_counts,
        )
        trades = np.empty(int(self._trade_counts.sum()), dtype=TRADE_DT)
        if len(trades):
            compact_trades_nb(self._trade_buffer, self._trade_counts, trades)
        return ChunkReport(t_start, t_end, equity, trades, self.state.copy())
