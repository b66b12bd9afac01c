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
from numba import parallel_chunksize, types
from numba.typed import List

from raybt.broker import initial_state
from raybt.kernels import advance_shard_nb, advance_shard_parallel_nb, compact_trades_nb
from raybt.types import INSTR_DT, STATE_DT, TRADE_DT


#: Assets per task of the parallel kernel: threads take tasks as they come
#: (dynamic scheduling), so a thread that wakes late for a chunk, as sleeping
#: OpenMP threads do, leaves its share to the others instead of making them
#: wait at the end (measured on 2 cores, 100 assets x 1D chunks: 0.34 -> 0.31 s).
PARALLEL_ASSETS_PER_TASK = 4

#: numba types of a shard's per-asset arrays (read-only: plasma buffers and caller's columns alike).
BAR_ARRAY = types.Array(types.float64, 1, "C", readonly=True)
POS_ARRAY = types.Array(types.int64, 1, "C", readonly=True)
_NO_POSITIONS = np.zeros(0, dtype=np.int64)


def read_only(values, dtype=np.float64) -> np.ndarray:
    """``values`` as a contiguous read-only array: a view when already contiguous ``dtype``, else a copy."""
    array = np.ascontiguousarray(values, dtype=dtype).view()
    array.flags.writeable = False
    return array


def _typed_list(arrays, item_type) -> List:
    out = List.empty_list(item_type)
    for array in arrays:
        out.append(array)
    return out


@dataclass(frozen=True)
class ShardBars:
    """The bars of a shard's assets, one array per asset and column (no concatenation).

    ``opens[a]`` .. ``closes[a]``: asset ``a``'s float64 prices, read-only,
    usually zero-copy views of the caller's DataFrame columns or of the Ray
    object store; ``union_pos[a]``: each bar's position on the union
    timeline (int64), or empty when the asset's bars are the consecutive
    positions ``union_base[a], union_base[a] + 1, ...`` (the common case of
    assets sharing a calendar: nothing is stored). The typed lists are what
    the numba shard kernels take; ``arrays`` keeps the Python objects.
    """

    arrays: tuple  # per asset: (open, high, low, close, union_pos)
    opens: List
    highs: List
    lows: List
    closes: List
    union_pos: List
    union_base: np.ndarray

    @property
    def n_assets(self) -> int:
        return len(self.union_base)

    def n_bars(self, asset: int) -> int:
        return int(self.arrays[asset][3].shape[0])


def compact_positions(positions) -> tuple[np.ndarray, int]:
    """(union positions to store, base): nothing stored when they are consecutive."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) == 0:
        return _NO_POSITIONS, 0
    if int(positions[-1]) - int(positions[0]) == len(positions) - 1:
        return _NO_POSITIONS, int(positions[0])
    return read_only(positions, np.int64), 0


def shard_bars(opens, highs, lows, closes, union_positions) -> ShardBars:
    """:class:`ShardBars` from per-asset arrays (lists, one entry per asset).

    ``union_positions[a]``: an int64 array of asset a's union positions, or
    ``(stored, base)`` as returned by :func:`compact_positions`.
    """
    arrays, bases = [], []
    for o, h, lo, c, pos in zip(opens, highs, lows, closes, union_positions):
        stored, base = pos if isinstance(pos, tuple) else compact_positions(pos)
        arrays.append((read_only(o), read_only(h), read_only(lo), read_only(c), read_only(stored, np.int64)))
        bases.append(base)
    columns = list(zip(*arrays)) if arrays else [(), (), (), (), ()]
    return ShardBars(
        tuple(arrays), *(_typed_list(col, BAR_ARRAY) for col in columns[:4]),
        _typed_list(columns[4], POS_ARRAY), np.asarray(bases, dtype=np.int64),
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

    def __init__(self, bars: ShardBars, params: np.ndarray, state: np.ndarray | None = None,
                 *, parallel: bool = False):
        if params.shape != (bars.n_assets,):
            raise ValueError("one PARAM_DT record per asset is required")
        self.bars = bars
        self.params = params
        self.state = initial_state(params) if state is None else state.copy()
        self.parallel = parallel
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
        with parallel_chunksize(PARALLEL_ASSETS_PER_TASK if self.parallel else 0):
            self._advance(
                b.opens, b.highs, b.lows, b.closes, b.union_pos, b.union_base, self.params,
                self.state, instructions, t_start, t_end, equity, self._trade_buffer,
                self._trade_counts,
            )
        trades = np.empty(int(self._trade_counts.sum()), dtype=TRADE_DT)
        if len(trades):
            compact_trades_nb(self._trade_buffer, self._trade_counts, trades)
        return ChunkReport(t_start, t_end, equity, trades, self.state.copy())
