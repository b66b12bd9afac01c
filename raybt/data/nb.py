"""Numba kernels of the data edge: the loader's rules in one pass, the most common bar spacing.

Arrays in, a small array or a tuple of scalars out; numpy and numba only (no
pandas, no raybt). Timestamps are int64 nanoseconds since the Unix epoch
(UTC), prices and volume float64, rows counted from 0. A spacing is
``ns[i] - ns[i - 1]`` wrapping around on int64 overflow, as ``np.diff`` gives
it (a jump of more than 292 years reads as a negative spacing).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

# One compiled signature each (loaded from numba's cache when this module is imported): contiguous
# arrays, typed read-only so that writable and read-only arrays (Parquet's columns) alike use it.
_NS = types.Array(types.int64, 1, "C", readonly=True)
_COLUMN = types.Array(types.float64, 1, "C", readonly=True)

# Slots of check_bars_nb's result, in the order the loader reports them.
#: first non-finite value: 5 slots, one per column (open, high, low, close, volume)
NON_FINITE = 0
#: first row whose timestamp equals the previous row's
DUPLICATE = 5
#: first row whose timestamp is earlier than the previous row's
UNSORTED = 6
#: first price <= 0: 4 slots, one per price column (open, high, low, close)
NON_POSITIVE = 7
#: first high < low
HIGH_BELOW_LOW = 11
#: first high < max(open, close)
HIGH_BELOW_BODY = 12
#: first low > min(open, close)
LOW_ABOVE_BODY = 13
#: first volume < 0
NEGATIVE_VOLUME = 14
#: first positive price outside [PRICE_MIN, PRICE_MAX]: 4 slots, one per price column
OUT_OF_RANGE = 15
N_CHECKS = 19

#: The prices a backtest computes with: no real quote is near these, and between them the broker's
#: notional and the metrics' squares of returns and equity stay far from float64 overflow and
#: underflow (a 1e308 bad tick made every metric inf or NaN, with numpy's overflow warnings).
PRICE_MIN = 1e-100
PRICE_MAX = 1e100

#: rows per block of check_bars_nb's fast pass (a loop without branches, which LLVM vectorises)
BLOCK = 4096


@njit(cache=True, nogil=True, inline="always")
def _spacing_nb(later, earlier):
    """``later - earlier`` of int64 ns, wrapping around on overflow as numpy's int64 arithmetic does.

    (numba marks signed subtraction no-signed-wrap, so LLVM may fold ``a - b > 0`` into ``a > b``;
    unsigned subtraction wraps.)
    """
    return np.int64(np.uint64(later) - np.uint64(earlier))


@njit(cache=True, nogil=True, inline="always")
def _clean_nb(o, h, lo, c, v, step):
    """Whether a row breaks no rule: prices in [PRICE_MIN, PRICE_MAX], low <= open/close <= high, finite volume
    >= 0, a positive ``step`` from the previous timestamp. (NaN fails every comparison.)"""
    return ((PRICE_MIN <= lo) & (lo <= o) & (lo <= c) & (o <= h) & (c <= h) & (h <= PRICE_MAX)
            & (0.0 <= v) & (v < np.inf) & (step > 0))


@njit(cache=True, nogil=True)
def _note_row_nb(first, i, step, o, h, lo, c, v):
    """Record row ``i`` in every slot of ``first`` still at -1 whose rule the row breaks."""
    prices = (o, h, lo, c)
    for k in range(4):
        if first[NON_FINITE + k] < 0 and not np.isfinite(prices[k]):
            first[NON_FINITE + k] = i
        if first[NON_POSITIVE + k] < 0 and prices[k] <= 0.0:
            first[NON_POSITIVE + k] = i
        if first[OUT_OF_RANGE + k] < 0 and (0.0 < prices[k] < PRICE_MIN or PRICE_MAX < prices[k] < np.inf):
            first[OUT_OF_RANGE + k] = i
    if first[NON_FINITE + 4] < 0 and not np.isfinite(v):
        first[NON_FINITE + 4] = i
    if first[DUPLICATE] < 0 and step == 0:
        first[DUPLICATE] = i
    if first[UNSORTED] < 0 and step < 0:
        first[UNSORTED] = i
    if first[HIGH_BELOW_LOW] < 0 and h < lo:
        first[HIGH_BELOW_LOW] = i
    # h < max(o, c) and lo > min(o, c) as np.maximum/np.minimum give them for finite values
    # (a NaN anywhere is reported first, as a non-finite value)
    if first[HIGH_BELOW_BODY] < 0 and (h < o or h < c):
        first[HIGH_BELOW_BODY] = i
    if first[LOW_ABOVE_BODY] < 0 and (lo > o or lo > c):
        first[LOW_ABOVE_BODY] = i
    if first[NEGATIVE_VOLUME] < 0 and v < 0.0:
        first[NEGATIVE_VOLUME] = i


@njit(types.int64[::1](_NS, _COLUMN, _COLUMN, _COLUMN, _COLUMN, _COLUMN), cache=True, nogil=True)
def check_bars_nb(ns, open_, high, low, close, volume):
    """The first row breaking each of the loader's rules, or -1: an int64 array of ``N_CHECKS`` slots.

    ``ns``: int64 ns timestamps; ``open_ .. volume``: float64 columns of the
    same length (zeros for a missing volume); all contiguous. Slots as the
    module constants name them. Clean data costs one branch-free pass (about
    3 ns a row); from the first block holding a broken row on, each row is
    checked rule by rule.
    """
    first = np.full(N_CHECKS, -1, np.int64)
    n = len(ns)
    for start in range(0, n, BLOCK):
        broken = 0
        for i in range(start, min(start + BLOCK, n)):
            step = _spacing_nb(ns[i], ns[i - 1]) if i > 0 else 1
            broken += not _clean_nb(open_[i], high[i], low[i], close[i], volume[i], step)
        if broken == 0:
            continue
        for i in range(start, n):
            step = _spacing_nb(ns[i], ns[i - 1]) if i > 0 else 1
            if not _clean_nb(open_[i], high[i], low[i], close[i], volume[i], step):
                _note_row_nb(first, i, step, open_[i], high[i], low[i], close[i], volume[i])
        break
    return first


@njit(types.UniTuple(types.int64, 3)(_NS), cache=True, nogil=True)
def majority_spacing_nb(ns):
    """``(candidate, held, positives)`` over the positive spacings of int64 ns timestamps ``ns``.

    ``ns``: contiguous. ``positives``: how many spacings are > 0;
    ``candidate``: Boyer-Moore's majority vote among them (0 when there are
    none); ``held``: how many of them equal it. When ``2 * held > positives``
    the candidate is the most common positive spacing; otherwise no spacing
    holds a majority and the vote says nothing.
    """
    candidate, votes = 0, 0
    for i in range(1, len(ns)):
        step = _spacing_nb(ns[i], ns[i - 1])
        if step <= 0:
            continue
        if votes == 0:
            candidate, votes = step, 1
        elif step == candidate:
            votes += 1
        else:
            votes -= 1
    held, positives = 0, 0
    for i in range(1, len(ns)):  # without branches: vectorised
        step = _spacing_nb(ns[i], ns[i - 1])
        held += step == candidate
        positives += step > 0
    if positives == 0:
        held = 0  # the candidate 0 matched the zero spacings
    return candidate, held, positives
