"""Per-chunk portfolio bookkeeping for the coordinator (numba).

What the coordinator's decisions need from a chunk's sleeve equities (assets
x bars), computed where the equities are (a shard actor or the coordinator):
each asset's per-bar returns summed into correlation blocks of ``block``
union-timeline positions, and the per-bar sums of aligned blocks of assets
(added pairwise) from which the portfolio equity path is assembled
(:mod:`raybt.chunk_digest`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def sleeve_growth_nb(value, base):
    """A sleeve's growth factor over one bar, ``value / base``: its own return plus one.

    ``base`` is the sleeve's previous equity plus the cash a rebalance moved
    in at that bar (a transfer arrives before the bar's return, so it is not
    a return). 1 (a zero return) when the base is not positive (a sleeve
    stopped out to zero) or the ratio is not finite. The one definition of a
    sleeve's own return: the correlation blocks (:func:`block_returns_nb`),
    the coordinator's weight estimates and the result's sleeve index
    (:func:`sleeve_growth_rows_nb`) and the analysis of a saved run
    (:func:`raybt.analysis.nb.sleeve_columns_nb`) all call it.
    """
    if base > 0.0:
        growth = value / base
        if math.isfinite(growth):
            return growth
    return 1.0


@njit(cache=True)
def sleeve_growth_rows_nb(equity, base):
    """:func:`sleeve_growth_nb` elementwise over two arrays of one shape (assets x bars, any layout)."""
    out = np.empty(equity.shape)
    for a in range(equity.shape[0]):
        for t in range(equity.shape[1]):
            out[a, t] = sleeve_growth_nb(equity[a, t], base[a, t])
    return out


@njit(cache=True)
def block_returns_nb(equity, previous, t_start, block, partial, partial_block):
    """Each asset's per-bar returns of one chunk, summed into correlation blocks.

    ``equity``: assets x bars of the chunk (currency); ``previous``: each
    sleeve's equity before the chunk's first bar, rebalancing transfers
    included (the base of the first return); ``partial``/``partial_block``:
    the returns summed so far for the block still open from the previous
    chunk (``partial_block`` its id, -1 if none). A return is
    ``sleeve_growth_nb(e_t, e_{t-1}) - 1``. Block ``j`` covers positions ``[j*block, (j+1)*block)``.
    Each asset's sums depend on that asset's row only, so a shard of assets
    gives the same numbers for them as the whole portfolio does.

    Returns ``(block_sums, first_block_id)`` where ``block_sums[i]`` sums
    block ``first_block_id + i`` (the last row may be an unfinished block).
    """
    n_assets, width = equity.shape
    first_id = t_start // block
    last_id = (t_start + width - 1) // block
    sums = np.zeros((last_id - first_id + 1, n_assets))
    if partial_block == first_id:
        for a in range(n_assets):
            sums[0, a] = partial[a]
    first_block_end = (first_id + 1) * block - t_start  # k where the chunk's second block starts
    for a in range(n_assets):
        base = previous[a]
        row = 0
        block_end = first_block_end
        total = sums[0, a]
        for k in range(width):
            if k == block_end:  # the block id advanced: no integer division per bar
                sums[row, a] = total
                row += 1
                block_end += block
                total = sums[row, a]
            value = equity[a, k]
            total += sleeve_growth_nb(value, base) - 1.0
            base = value
        sums[row, a] = total
    return sums, first_id


@njit(cache=True)
def pairwise_rows_nb(equity, first, level, out):
    """``out[k]`` = the sum over rows ``first .. first + 2**level - 1`` of ``equity[:, k]``, added pairwise.

    The sum of an aligned block of ``2**level`` assets is (sum of its left
    half) + (sum of its right half), recursively down to single rows: the
    same additions whoever computes the block (a shard or the coordinator),
    so the portfolio's equity path does not depend on how assets are sharded.
    """
    size = 1 << level
    width = equity.shape[1]
    work = np.empty((size, width))
    for r in range(size):
        for k in range(width):
            work[r, k] = equity[first + r, k]
    while size > 1:
        half = size // 2
        for r in range(half):
            for k in range(width):
                work[r, k] = work[2 * r, k] + work[2 * r + 1, k]
        size = half
    for k in range(width):
        out[k] = work[0, k]
