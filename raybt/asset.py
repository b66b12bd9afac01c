"""AssetGroup: a shard of assets advanced together, one kernel call per chunk.

Plain Python over numpy arrays (no pandas, no Ray): the in-process engine uses
it directly and the Ray actors are thin shells around it, so both paths run
exactly the same code.

Time is the common (union) timeline of the whole portfolio: ``union_pos[a]``
gives, for each bar of asset ``a``, its index on that timeline. A chunk is a
half-open range ``[t_start, t_end)`` of union positions.

The kernels do not check bounds, so everything that could make them read or
write outside an array is refused here, in Python, with a ``ValueError``
(:class:`ShardError`) before a kernel call: columns of unequal length, union
positions that are negative or not strictly increasing (an unsorted index),
parameters with empty indicator windows, a chunk that does not follow the
state (a ``next_bar`` whose position is before ``t_start`` or beyond the bars).
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

#: Fewest asset-bars in a chunk for which a parallel group starts its threads: below it, starting and
#: joining them costs more than the work (the default universe at 1-hour chunks is 180 asset-bars a
#: chunk), and idle threads spinning on the second core slow whatever else runs there.
PARALLEL_MIN_ASSET_BARS = 20_000

#: numba types of a shard's per-asset arrays (read-only: plasma buffers and caller's columns alike).
BAR_ARRAY = types.Array(types.float64, 1, "C", readonly=True)
POS_ARRAY = types.Array(types.int64, 1, "C", readonly=True)
_NO_POSITIONS = np.zeros(0, dtype=np.int64)


class ShardError(ValueError):
    """Arrays or a call that would make a kernel read or write out of bounds (a bug upstream)."""


def _check_positions(positions: np.ndarray, what: str) -> None:
    """Union positions must be >= 0 and strictly increasing (the kernels walk them forwards)."""
    if positions.ndim != 1:
        raise ShardError(f"{what}: union positions must be 1-D, got shape {positions.shape}")
    if len(positions) == 0:
        return
    if int(positions[0]) < 0:
        raise ShardError(f"{what}: negative union position {int(positions[0])} at bar 0")
    step = np.diff(positions)
    if (step <= 0).any():
        j = int(np.flatnonzero(step <= 0)[0]) + 1
        raise ShardError(f"{what}: union positions not strictly increasing at bar {j} "
                         f"({int(positions[j - 1])} then {int(positions[j])}): bars unsorted or duplicated")


def read_only(values, dtype=np.float64) -> np.ndarray:
    """``values`` as a contiguous read-only array: a view when already contiguous ``dtype``, else a copy."""
    array = np.ascontiguousarray(values, dtype=dtype).view()
    array.flags.writeable = False
    return array


def _typed_list(arrays, item_type) -> List:
    """A typed list of ``arrays`` (each of numba type ``item_type``), built by cached kernels."""
    from raybt.kernels.lists import list_append_nb, list_of_nb

    if not arrays:
        return List.empty_list(item_type)
    out = list_of_nb(arrays[0])
    for array in arrays[1:]:
        list_append_nb(out, array)
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

    def __post_init__(self):
        n_assets = len(self.union_base)
        from raybt.kernels.lists import list_length_nb  # len() of a typed list would compile in every process

        if len(self.arrays) != n_assets or any(list_length_nb(lst) != n_assets for lst in
                                               (self.opens, self.highs, self.lows, self.closes, self.union_pos)):
            raise ShardError(f"shard: {n_assets} union bases but {len(self.arrays)} assets' arrays")
        for a, (o, h, lo, c, stored) in enumerate(self.arrays):
            what = f"shard asset {a}"
            if any(x.ndim != 1 for x in (o, h, lo, c)):
                raise ShardError(f"{what}: price arrays must be 1-D")
            n = c.shape[0]
            if not o.shape[0] == h.shape[0] == lo.shape[0] == n:
                raise ShardError(f"{what}: columns of unequal length (open {o.shape[0]}, high {h.shape[0]}, "
                                 f"low {lo.shape[0]}, close {n})")
            if len(stored):
                if len(stored) != n:
                    raise ShardError(f"{what}: {len(stored)} union positions for {n} bars")
                _check_positions(stored, what)
            elif int(self.union_base[a]) < 0:
                raise ShardError(f"{what}: negative union base {int(self.union_base[a])}")

    @property
    def n_assets(self) -> int:
        return len(self.union_base)

    def n_bars(self, asset: int) -> int:
        return int(self.arrays[asset][3].shape[0])

    def position(self, asset: int, bar: int) -> int:
        """Union position of local bar ``bar`` of ``asset`` (which must exist)."""
        stored = self.arrays[asset][4]
        return int(stored[bar]) if len(stored) else int(self.union_base[asset]) + int(bar)


def compact_positions(positions) -> tuple[np.ndarray, int]:
    """(union positions to store, base): nothing stored when they are consecutive.

    ShardError unless ``positions`` are >= 0 and strictly increasing (only
    then do its ends tell whether it is consecutive).
    """
    positions = np.asarray(positions, dtype=np.int64)
    _check_positions(positions, "union positions")
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


class AssetGroup:
    """A shard of assets with their bars, parameters and explicit kernel state."""

    def __init__(self, bars: ShardBars, params: np.ndarray, state: np.ndarray | None = None,
                 *, parallel: bool = False):
        if params.shape != (bars.n_assets,):
            raise ValueError("one PARAM_DT record per asset is required")
        for field_name in ("bb_period", "atr_period"):  # the kernels read that many bars back
            if len(params) and int(params[field_name].min()) < 1:
                a = int(np.argmin(params[field_name]))
                raise ShardError(f"shard asset {a}: {field_name} {int(params[field_name][a])} < 1")
        self.bars = bars
        self.params = params
        self.state = initial_state(params) if state is None else state.copy()
        self.parallel = parallel  # threads for chunks of PARALLEL_MIN_ASSET_BARS or more
        self._trade_buffer = np.zeros((bars.n_assets, 0), dtype=TRADE_DT)
        self._trade_counts = np.zeros(bars.n_assets, dtype=np.int64)
        self._n_bars = np.array([bars.n_bars(a) for a in range(bars.n_assets)], dtype=np.int64)
        self._checked_until = None  # t_end of the last step: a chunk starting there needs no state check

    @property
    def n_assets(self) -> int:
        return self.bars.n_assets

    def get_state(self) -> np.ndarray:
        return self.state.copy()

    def set_state(self, state: np.ndarray) -> None:
        if state.dtype != STATE_DT or state.shape != (self.n_assets,):
            raise ValueError("state must be STATE_DT records, one per asset")
        self.state = state.copy()
        self._checked_until = None

    def step(self, t_start: int, t_end: int, instructions: np.ndarray) -> ChunkReport:
        """Advance every asset over union positions [t_start, t_end)."""
        if instructions.dtype != INSTR_DT or instructions.shape != (self.n_assets,):
            raise ValueError("instructions must be INSTR_DT records, one per asset")
        t_start, t_end = int(t_start), int(t_end)
        if t_start != self._checked_until:
            self._check_chunk_start(t_start, t_end)
        width = t_end - t_start
        if self._trade_buffer.shape[1] < width:
            self._trade_buffer = np.zeros((self.n_assets, width), dtype=TRADE_DT)
        equity = np.empty((self.n_assets, width), dtype=np.float64)
        b = self.bars
        parallel = self.parallel and self.n_assets * width >= PARALLEL_MIN_ASSET_BARS
        advance = advance_shard_parallel_nb if parallel else advance_shard_nb
        with parallel_chunksize(PARALLEL_ASSETS_PER_TASK if parallel else 0):
            advance(
                b.opens, b.highs, b.lows, b.closes, b.union_pos, b.union_base, self.params,
                self.state, instructions, t_start, t_end, equity, self._trade_buffer,
                self._trade_counts,
            )
        self._checked_until = t_end  # every asset's next bar now sits at or after t_end
        trades = np.empty(int(self._trade_counts.sum()), dtype=TRADE_DT)
        if len(trades):
            compact_trades_nb(self._trade_buffer, self._trade_counts, trades)
        return ChunkReport(t_start, t_end, equity, trades, self.state.copy())

    def _check_chunk_start(self, t_start: int, t_end: int) -> None:
        """ShardError unless the kernels stay in bounds over [t_start, t_end) from the current state.

        The kernel writes bar ``j`` of the chunk at ``position(j) - t_start``,
        so every asset's next bar must lie at or after ``t_start``; and
        ``next_bar`` must index its bars. Checked when a chunk does not start
        where the last one ended (the first step, after :meth:`set_state`, or
        out of order); consecutive chunks keep it by construction.
        """
        if not 0 <= t_start <= t_end:
            raise ShardError(f"chunk [{t_start}, {t_end}): need 0 <= t_start <= t_end")
        next_bar = self.state["next_bar"]
        bad = (next_bar < 0) | (next_bar > self._n_bars)
        if bad.any():
            a = int(np.flatnonzero(bad)[0])
            raise ShardError(f"shard asset {a}: state next_bar {int(next_bar[a])} outside its "
                             f"{int(self._n_bars[a])} bars")
        for a in np.flatnonzero(next_bar < self._n_bars):
            position = self.bars.position(int(a), int(next_bar[a]))
            if position < t_start:
                raise ShardError(f"shard asset {int(a)}: next bar {int(next_bar[a])} sits at union position "
                                 f"{position}, before the chunk start {t_start} (chunks out of order?)")
